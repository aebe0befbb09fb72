"""The PoSap mining loop: watch → fetch → compute → commit → reveal → finalize → withdraw.

One :class:`Miner` per account. Each :meth:`Miner.tick` does whatever is due, so the loop is
restartable at any point: all durable state is on the chain or in the :mod:`miners.journal`.

Time: deadlines are block timestamps, judged by the block a transaction will land in
(:meth:`fedcoin.chain.FedCoin.next_block_time`: the latest block on an on-demand chain can be
minutes old). Every transaction is estimated against the pending block first, so a node whose
clock lags gets a decoded revert, never a wasted bond.

Faults are contained: an error in one round (a blob that will not decode, a vector out of the
fixed-point range, a spec whose exclusions differ from this miner's checks) refuses that round
with a one-line reason, persisted in the journal so a restart does not retry it; an error
while revealing or finalizing is logged and retried on the next tick (the bond is at stake);
a node outage is waited out with backoff, and the loop carries on when the node is back.

Under load the miner keeps the commit deadline: inputs are fetched, verified and compiled as
soon as a round is seen (the first sampling step is the compile, and its samples count), the
commit is sent before ``deadline − margin`` where the margin adapts to the measured commit
latency and step time, and when the error bound has not reached ½·D by then the miner commits
what it has (an honest, less accurate vector) rather than nothing.
"""

from __future__ import annotations

import math
import os
import secrets
import signal
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import requests

import jax

from fedcoin.protocol import fixedpoint
from fedcoin.chain import ChainError, ContractRevert, FedCoin, RoundStatus, RPCUnavailable, TaskStatus
from fedcoin.chain.types import Verdict
from fedcoin.protocol.constants import ZERO_HASH
from fedcoin.protocol.commitment import commitment_hash, new_salt
from fedcoin.protocol.posap import P_INF, SLASH_MULTIPLE
from fedcoin.content.store import ContentStore
from fedcoin.protocol.fixedpoint import FixedPointRangeError
from miners import shapley
from miners.inputs import RoundInputs, TaskRefused, load_round
from miners.journal import ABANDONED, COMMITTED, PREPARED, REVEALED, SETTLED, Entry, Journal


#: Fault injection for the crash-safety tests (never set in normal use): ``kill-after-commit``
#: makes the process SIGKILL itself right after its commit transaction is mined.
FAULT_ENV = "FEDCOIN_MINER_FAULT"


@dataclass
class MinerConfig:
    """How a miner works a round.

    Attributes:
        confidence: confidence level of the error bound that decides convergence.
        margin: sample until the bound is at most ``margin × D`` (below 1 leaves room for
            the other miners' error: two estimates each within D/2 of the truth are within D
            of each other).
        safety_s: the least time kept before the commit deadline to send the commit; the
            miner widens it to 3× the measured commit latency plus one sampling step.
        sampler: a :data:`miners.shapley.SAMPLERS` name, or ``"auto"``:
            :func:`miners.shapley.default_sampler` for the round's control variate (``plain``
            with the pairwise game, ``antithetic_stratified`` otherwise).
        control_variate: :func:`miners.shapley.fl_game`'s choice: sample v minus a cheap game
            whose exact Shapley values are added back (unbiased). ``True``/``"auto"``: the
            pairwise game up to 300 clients (K + K² evaluations once per round, about K
            permutations' worth; about 29× fewer permutations than ``"linear"`` at K = 100 on
            real rounds, docs/shapley.md), else ``"linear"``; ``"none"``: plain.
        max_perms: permutation budget per round (default: the contract's iteration cap).
        bond: wei to bond per commitment (default: the contract's minimum).
        finalize: call ``finalize`` when the reveal window closes (anyone may).
        withdraw: withdraw credits (returned bonds, rewards) when there are any.
        poll_s: seconds between ticks when idle.
        seed: PRNG seed (default: random per process).
        ray: Ray cluster address (``"auto"``: a local cluster on 127.0.0.1) to spread the
            sampling over (:mod:`miners.shapley.distributed`); ``None``: in this process.
    """

    confidence: float = 0.95
    margin: float = 0.5
    safety_s: float = 3.0
    sampler: str = "auto"
    control_variate: bool | str = True
    max_perms: int | None = None
    bond: int | None = None
    finalize: bool = True
    withdraw: bool = True
    poll_s: float = 1.0
    seed: int | None = None
    ray: str | None = None


@dataclass
class _Work:
    """In-memory state of a round being mined (estimator state survives a re-open)."""

    inputs: RoundInputs | None = None
    game: shapley.Game | None = None
    state: shapley.ShapleyState | None = None
    refused: str | None = None
    sampler: str = "antithetic_stratified"  # the config's, with "auto" resolved for this round
    step_s: float = 0.0  # measured duration of one sampling step (compile excluded)
    aggregate_wrong: bool | None = None  # this miner's verdict on the round's global model (jury)


@dataclass
class Miner:
    """A PoSap miner for one account.

    Args:
        fc: contract binding signed by the miner's account.
        store: content store holding specs and blobs.
        journal: crash-safe journal (:class:`miners.journal.Journal`).
        config: :class:`MinerConfig`.
        task: only mine this task (``None``: every task).
        log: where one-line messages go.
        progress: show a progress bar while sampling.
        jury: an :class:`fedcoin.flchain.binding.AggregateJury` signed by the miner's account:
            after each commit the miner attests whether the round's global model is the
            aggregate of the previous round (:mod:`miners.aggregate_check`); ``None``: no jury.
        flchain: the FLChain serving ``fc`` whose trainer requirement the miner re-checks
            (:func:`fedcoin.flchain.binding.flchain_for`; None: none).
    """

    fc: FedCoin
    store: ContentStore
    journal: Journal
    config: MinerConfig = field(default_factory=MinerConfig)
    task: int | None = None
    log: Callable[[str], None] = lambda m: print(m, file=sys.stderr, flush=True)
    progress: bool = True
    jury: Any = None
    flchain: object | None = None

    def __post_init__(self):
        self.me = self.fc.account.address
        self._rounds: set[tuple[int, int]] = set()
        self._work: dict[tuple[int, int], _Work] = {}
        seed = self.config.seed if self.config.seed is not None else secrets.randbits(31)
        self._key = jax.random.key(seed)
        self._max_iter = None
        self._commit_latency_s = 0.0
        self._genesis: str | None = None
        self._from_block: int | None = None
        self._retries: dict[str, int] = {}
        self.summaries: list[str] = []

    # ------------------------------------------------------------------ helpers

    def now(self) -> int:
        """Timestamp the next block will carry (:meth:`FedCoin.next_block_time`)."""
        return self.fc.next_block_time()

    @property
    def genesis(self) -> str:
        """0x-hex hash of the chain's block 0: with the chain id, which chain this is."""
        if self._genesis is None:
            self._genesis = "0x" + bytes(self.fc.tx.rpc(lambda: self.fc.w3.eth.get_block(0), "eth_getBlockByNumber")["hash"]).hex()
        return self._genesis

    def _meta_key(self) -> tuple[int, str, str, str]:
        """(chain id, genesis, contract, miner): what the journal's cursor and refusals are kept per."""
        return self.fc.chain_id, self.genesis, self.fc.address, self.me

    def check_journal(self) -> list[str]:
        """Set aside this account's entries written on another chain with this chain id (a reset
        dev chain): they can never be revealed here. Returns one line per entry set aside."""
        lines = []
        for e in list(self.journal.entries(miner=self.me, open_only=True)):
            if e.chain_id != self.fc.chain_id or not e.genesis or e.genesis == self.genesis:
                continue
            why = (f"written on chain {e.chain_id} with genesis {e.genesis[:12]}…, but this node's genesis is "
                   f"{self.genesis[:12]}…: the chain was reset, this commitment no longer exists")
            self.journal.set_aside(e, why)
            lines.append(f"journal: set aside task {e.task_id} round {e.round} attempt {e.attempt} ({why})")
        for line in lines:
            self._say(line)
        return lines

    def _safety_s(self, work: _Work) -> float:
        """Seconds kept before the commit deadline: never less than the configured floor."""
        return max(self.config.safety_s, 3.0 * self._commit_latency_s + work.step_s)

    def _say(self, msg: str) -> None:
        self.log(f"[miner {self.me[:8]}] {msg}")

    def _cap(self) -> int:
        if self._max_iter is None:
            self._max_iter = int(self.fc.max_iterations())
        return self._max_iter

    # ------------------------------------------------------------------ discovery

    def discover(self) -> None:
        """Add rounds with a (re-)published Shapley task since the last look.

        Reads ``ShapleyTaskPublished`` / ``RoundReopened`` logs from the block after the last one
        read (persisted in the journal, so a restart does not rescan from block 0); where the
        node cannot serve logs, falls back to polling every task's current round through views.
        """
        if self._from_block is None:
            self._from_block = self.journal.cursor(*self._meta_key())
            if self._from_block:
                # rounds published before the cursor may still be open: look at the current rounds
                tasks = [self.task] if self.task is not None else range(1, self.fc.task_count() + 1)
                for t in tasks:
                    info = self.fc.get_task(t)
                    if info.status == TaskStatus.ACCEPTED:
                        self._rounds.add((t, int(info.current_round)))
        head = self.fc.tx.rpc(lambda: self.fc.w3.eth.block_number, "eth_blockNumber")
        if head < self._from_block:
            return  # no new block since the last look
        try:
            for name in ("ShapleyTaskPublished", "RoundReopened"):
                for e in self.fc.events(name, from_block=self._from_block, to_block=head,
                                        **({"taskId": self.task} if self.task is not None else {})):
                    self._rounds.add((int(e["taskId"]), int(e["round"])))
        except RPCUnavailable:
            raise
        except (ChainError, ValueError) as e:  # no log support: poll views instead
            self._say(f"event query failed ({e}); polling task views instead")
            tasks = [self.task] if self.task is not None else range(1, self.fc.task_count() + 1)
            for t in tasks:
                info = self.fc.get_task(t)
                if info.status == TaskStatus.ACCEPTED:
                    self._rounds.add((t, int(info.current_round)))
        self._from_block = head + 1
        self.journal.set_cursor(*self._meta_key(), self._from_block)

    # ------------------------------------------------------------------ one tick

    def tick(self) -> bool:
        """Do everything that is due now; return True if anything was done.

        A node outage propagates (``run`` waits it out); any other error is contained to the
        round it happened in.
        """
        self.discover()
        did = False
        for entry in list(self.journal.entries(miner=self.me, open_only=True)):
            if entry.chain_id == self.fc.chain_id and entry.contract.lower() == self.fc.address.lower():
                did |= self._contained(f"task {entry.task_id} round {entry.round}", self._advance, entry)
        for task_id, round in sorted(self._rounds):
            did |= self._contained(f"task {task_id} round {round}", self._maybe_mine, task_id, round)
        did |= bool(self._contained("withdraw", self._maybe_withdraw))
        return did

    def _contained(self, what: str, fn, *args) -> bool:
        """``fn(*args)``; an error other than a node outage is logged (with the number of times it
        happened) and swallowed, so one round's trouble never stops the others."""
        try:
            out = fn(*args)
            self._retries.pop(what, None)
            return bool(out)
        except Exception as e:  # noqa: BLE001 - containment is the point; outages re-raised
            if is_outage(e):
                raise
            n = self._retries[what] = self._retries.get(what, 0) + 1
            if n in (1, 2, 5) or n % 20 == 0:
                self._say(f"{what}: {type(e).__name__}: {e} (attempt {n}; will retry)")
            return False

    def idle(self) -> bool:
        """No open journal entry and no round still open for mining."""
        if any(e.contract.lower() == self.fc.address.lower() for e in self.journal.entries(miner=self.me, open_only=True)):
            return False
        for task_id, round in self._rounds:
            if self.fc.get_round(task_id, round).status == RoundStatus.PUBLISHED:
                return False
        return True

    def run(self, *, until: Callable[[], bool] | None = None, max_idle_s: float | None = None) -> None:
        """Tick until ``until()`` is true, or nothing was due for ``max_idle_s`` seconds.

        A node outage (connection refused, timeouts) is waited out with backoff (up to 30 s
        between tries), however long it lasts: the journal holds every commitment, so nothing
        is lost while the node is away.
        """
        idle_since = time.monotonic()
        down_since: float | None = None
        backoff = self.config.poll_s
        while True:
            try:
                if until and until():
                    return
                if self.tick():
                    idle_since = time.monotonic()
                if down_since is not None:
                    self._say(f"node is back after {time.monotonic() - down_since:.0f}s; carrying on")
                    down_since, backoff = None, self.config.poll_s
                if max_idle_s is not None and time.monotonic() - idle_since > max_idle_s and self.idle():
                    return
            except Exception as e:  # noqa: BLE001 - only outages reach here (tick contains the rest)
                if not is_outage(e):
                    raise
                if down_since is None:
                    down_since = time.monotonic()
                    self._say(f"node unreachable ({type(e).__name__}: {str(e)[:120]}); retrying with backoff, "
                              f"pending reveals are safe in the journal")
                backoff = min(30.0, backoff * 2)
                time.sleep(backoff)
                continue
            time.sleep(self.config.poll_s)

    # ------------------------------------------------------------------ mining

    def _maybe_mine(self, task_id: int, round: int) -> bool:
        info = self.fc.get_round(task_id, round)
        work = self._work.setdefault((task_id, round), _Work())
        if info.status != RoundStatus.PUBLISHED:
            self._rounds.discard((task_id, round))
            self._work.pop((task_id, round), None)
            return False
        if work.refused is None:
            work.refused = self.journal.refusals(*self._meta_key()).get(f"{task_id}-{round}")
        if work.refused:
            return False
        if self.journal.get(self.fc.chain_id, self.fc.address, task_id, round, info.attempt, self.me):
            return False
        if self.fc.get_commitment(task_id, round, info.attempt, self.me).hash != ZERO_HASH:
            return False  # committed by another process of this account: not ours to manage
        try:
            if work.game is None:
                self._prepare(task_id, round, info, work)
            if self.now() >= info.commit_deadline - self._safety_s(work):
                return False
            self._mine(task_id, round, info, work)
        except TaskRefused as e:
            self._refuse(task_id, round, work, str(e))
        except (FixedPointRangeError, ValueError, ArithmeticError) as e:  # e.g. a NaN or |φ| > 1e9 estimate
            self._refuse(task_id, round, work, f"cannot commit a valid vector ({type(e).__name__}: {e})")
        return True

    def _refuse(self, task_id: int, round: int, work: _Work, reason: str) -> None:
        reason = " ".join(str(reason).split())[:300]
        work.refused = reason
        self.journal.refuse(*self._meta_key(), task_id, round, reason)
        self._say(f"REFUSED task {task_id} round {round}: {reason}. Nothing committed; not retried.")

    def _prepare(self, task_id: int, round: int, info, work: _Work) -> None:
        """Fetch and verify the inputs, build the fast game and run its first (compiling) step.

        Done as soon as the round is seen, so the commit window is spent sampling; the first
        step's samples are kept in the state.
        """
        t0 = time.monotonic()
        work.inputs = load_round(self.fc, self.store, task_id, round, flchain=self.flchain)
        if self.config.ray is None:
            work.game = shapley.fl_game(work.inputs.game, control_variate=self.config.control_variate)
        else:  # scale-out over Ray workers (optional extra): miners/shapley/distributed.py
            from miners.shapley.distributed import RayGame

            work.game = RayGame(work.inputs.game, self.config.ray, control_variate=self.config.control_variate)
        t1 = time.monotonic()
        work.sampler = self.config.sampler
        if work.sampler == "auto":
            work.sampler = shapley.default_sampler(self.config.control_variate, work.inputs.game.n_players)
        if self.config.ray is None:
            self._key, sub = jax.random.split(self._key)
            one_step = max(shapley.block_size(work.sampler, work.game.n_players), 32)
            res = shapley.run_until(work.game, key=sub, D=0.0, p=2, max_perms=one_step, sampler=work.sampler)
            work.state = res.state
        if self.jury is not None:
            self._check_aggregate(task_id, round, work)
        n_in, n_all = len(work.inputs.included), work.inputs.n_registered
        self._say(f"task {task_id} round {round}: inputs verified ({n_in} of {n_all} updates in the game"
                  f"{'; excluded: ' + ', '.join(f'#{e.index} {e.reason}' for e in work.inputs.spec.excluded) if n_in < n_all else ''}), "
                  f"loaded in {t1 - t0:.1f}s, compiled in {time.monotonic() - t1:.1f}s")

    def _mine(self, task_id: int, round: int, info, work: _Work) -> None:
        D = fixedpoint.decode(info.difficulty)
        p = math.inf if info.p == P_INF else int(info.p)
        cap = self.config.max_perms or self._cap()
        relative = bool(getattr(info, "relative", False))

        def target_for(phi) -> float:
            # a relative D is a fraction of ‖centre‖_p: aim at margin × D × ‖φ̂‖_p of the running estimate
            if not relative:
                return self.config.margin * D
            return self.config.margin * D * float(np.linalg.norm(np.asarray(phi, np.float64), ord=p))

        run_until = shapley.run_until if self.config.ray is None else (lambda _g, **kw: work.game.run_until(**kw))
        deadline = time.time() + (info.commit_deadline - self.now()) - self._safety_s(work)
        target = self.config.margin * D
        if relative and work.state is not None:
            target = target_for(shapley.estimate(work.state, p=p, confidence=self.config.confidence).phi)
        elif relative:  # no estimate yet (Ray): one short run to learn ‖φ̂‖
            self._key, sub = jax.random.split(self._key)
            first = run_until(work.game, key=sub, D=0.0, p=p, confidence=self.config.confidence, deadline=deadline,
                              max_perms=min(cap, 64), sampler=work.sampler, state=work.state)
            work.state, target = first.state, target_for(first.phi)
        show = _Progress(f"task {task_id} r{round} a{info.attempt}", target, deadline, enabled=self.progress)

        def progress(est):
            show.target = target_for(est.phi) if relative else show.target
            show.update(est)

        for _ in range(64 if relative else 1):
            self._key, sub = jax.random.split(self._key)
            res = run_until(
                work.game, key=sub, D=target, p=p, confidence=self.config.confidence,
                deadline=deadline, max_perms=cap, sampler=work.sampler, state=work.state, progress=progress,
            )
            work.state = res.state
            if not relative or res.reason != "converged" or res.err_p <= target_for(res.phi):
                break
            target = target_for(res.phi)  # ‖φ̂‖ moved: re-aim from the running estimate and carry on
        show.close()
        work.state = res.state
        if res.iterations:
            work.step_s = max(work.step_s, res.elapsed_s / max(1, math.ceil(res.iterations / 32)))
        if res.iterations == 0:
            self._say(f"task {task_id} round {round}: no time to sample before the commit deadline")
            return
        values = fixedpoint.encode_vector(work.inputs.expand(res.phi.tolist()))
        salt = new_salt()
        c = commitment_hash(self.fc.chain_id, self.fc.address, task_id, round, self.me, values, res.iterations, salt)
        entry = Entry(
            chain_id=self.fc.chain_id, contract=self.fc.address, task_id=task_id, round=round,
            attempt=int(info.attempt), miner=self.me, values=values, iterations=int(res.iterations),
            salt="0x" + salt.hex(), commitment="0x" + c.hex(), genesis=self.genesis,
            bond=int(self.config.bond or 0),
        )
        self.journal.write(entry)  # durable before the commit leaves this process
        why = {"converged": "error bound reached ½·D", "deadline": "commit deadline near: committing what it has",
               "max_perms": "permutation budget spent"}.get(res.reason, res.reason)
        self._say(
            f"task {task_id} round {round} attempt {info.attempt}: {res.iterations} permutations, "
            f"err_p={res.err_p:.3e} vs target {target:.3e} (D={D:.3e}, p={'inf' if p == math.inf else p}; {why}; "
            f"{res.elapsed_s:.1f}s); committing"
        )
        self._send_commit(entry)

    def _send_commit(self, entry: Entry) -> None:
        t0 = time.monotonic()
        try:
            tx = self.fc.commit(entry.task_id, entry.round, bytes.fromhex(entry.commitment[2:]), bond=self.config.bond)
            latency = time.monotonic() - t0
            self._commit_latency_s = latency if not self._commit_latency_s else 0.5 * (self._commit_latency_s + latency)
        except ContractRevert as e:
            self.journal.update(entry, status=ABANDONED)
            self._say(f"task {entry.task_id} round {entry.round}: commit rejected ({e.name}{e.args_}); bond not at stake")
            return
        self.journal.update(entry, status=COMMITTED, commit=tx.tx_hash)
        if os.environ.get(FAULT_ENV) == "kill-after-commit":
            os.kill(os.getpid(), signal.SIGKILL)
        self._attest(entry)

    # ------------------------------------------------------------------ the aggregate jury

    def _check_aggregate(self, task_id: int, round: int, work: _Work) -> None:
        """This miner's verdict on the round's global model; a failure only skips the attestation."""
        from miners.aggregate_check import check_aggregate

        try:
            v = check_aggregate(self.fc, self.store, task_id, round, work.inputs.spec)
        except Exception as e:  # a missing earlier spec or blob: attest nothing rather than guess
            self._say(f"task {task_id} round {round}: global model not checked ({type(e).__name__}: {e}); "
                      "no attestation")
            return
        if v is not None:
            work.aggregate_wrong = v.wrong
            self._say(f"task {task_id} round {round}: {v.detail}")

    def _attest(self, e: Entry) -> None:
        """Attest once per attempt, after the commitment is on chain; errors are contained."""
        work = self._work.get((e.task_id, e.round))
        if self.jury is None or work is None or work.aggregate_wrong is None:
            return
        try:
            if self.jury.attestation(e.task_id, e.round, e.attempt, self.me) != 0:
                return
            self.jury.attest(e.task_id, e.round, work.aggregate_wrong)
            self._say(f"task {e.task_id} round {e.round}: attested the global model "
                      f"{'WRONG' if work.aggregate_wrong else 'right'} in the AggregateJury")
        except (ContractRevert, ChainError) as err:
            self._say(f"task {e.task_id} round {e.round}: attestation not sent ({err})")

    # ------------------------------------------------------------------ after commit

    def _advance(self, e: Entry) -> bool:
        """Move a journal entry forward: re-commit, reveal, finalize or settle."""
        info = self.fc.get_round(e.task_id, e.round)
        same_attempt = info.status == RoundStatus.PUBLISHED and info.attempt == e.attempt
        on_chain = self.fc.get_commitment(e.task_id, e.round, e.attempt, e.miner)
        now = self.now()
        if e.status == PREPARED:
            if on_chain.hash == bytes.fromhex(e.commitment[2:]):
                self.journal.update(e, status=COMMITTED)
                return True
            if same_attempt and now < info.commit_deadline:
                self._say(f"task {e.task_id} round {e.round}: re-sending the journaled commitment")
                self._send_commit(e)
            else:
                self.journal.update(e, status=ABANDONED)
            return True
        if e.status == COMMITTED:
            if on_chain.revealed:
                self.journal.update(e, status=REVEALED)
                return True
            if not same_attempt:
                self.journal.update(e, status=SETTLED)
                self._say(f"task {e.task_id} round {e.round}: attempt {e.attempt} closed before our reveal")
                return True
            if info.commit_deadline < now <= info.reveal_deadline:
                return self._reveal(e)
            return False
        if e.status == REVEALED:
            if not same_attempt:
                self._settled(e)
                return True
            if now > info.reveal_deadline and self.config.finalize:
                try:
                    self.fc.finalize(e.task_id, e.round)
                except ContractRevert as err:  # someone else finalized first
                    self._say(f"task {e.task_id} round {e.round}: finalize not needed ({err.name})")
                self._settled(e)
                return True
        return False

    def _reveal(self, e: Entry) -> bool:
        try:
            tx = self.fc.reveal(e.task_id, e.round, e.values, e.iterations, bytes.fromhex(e.salt[2:]))
        except ContractRevert as err:
            if err.name == "FedCoinOutsideRevealWindow":
                return False  # the node's clock has not reached the window yet
            raise
        self.journal.update(e, status=REVEALED, reveal=tx.tx_hash)
        self._say(f"task {e.task_id} round {e.round}: revealed (the bond comes back at finalize if within "
                  f"{SLASH_MULTIPLE}·D of the centre)")
        return True

    def _settled(self, e: Entry) -> None:
        info = self.fc.get_round(e.task_id, e.round)
        if info.status == RoundStatus.PUBLISHED and info.attempt == e.attempt:
            return  # finalize did not go through; try again next tick
        fin = self.fc.round_finalized(e.task_id, e.round) if info.status == RoundStatus.FINALIZED else None
        if fin is not None:
            won = fin["winner"].lower() == self.me.lower()
            mine = [j for j in self.fc.judged_events(e.task_id, e.round, miner=self.me)
                    if j.block_number == fin.block_number]
            if not mine:
                outcome = "settled without this miner's reveal (bond forfeited)"
            else:
                v, reward = Verdict(mine[-1]["verdict"]), mine[-1]["reward"]
                outcome = {Verdict.QUALIFIED: f"QUALIFIED, SapPrice share {reward} wei + bond back",
                           Verdict.RETURNED: "beyond D: bond back, no reward",
                           Verdict.SLASHED: f"beyond {SLASH_MULTIPLE}·D: bond slashed"}[v]
                outcome += " (the block's representative)" if won else f" (block representative {fin['winner'][:10]})"
        elif info.status == RoundStatus.PUBLISHED:
            outcome = f"no winner: re-opened as attempt {info.attempt} with D={fixedpoint.decode(info.difficulty):.2e}"
        else:
            outcome = "abandoned (no qualifying miner)"
        msg = f"task {e.task_id} round {e.round} attempt {e.attempt}: {outcome}"
        self.summaries.append(msg)
        self._say(msg)
        self.journal.update(e, status=SETTLED)

    def _maybe_withdraw(self) -> bool:
        if not self.config.withdraw:
            return False
        owed = self.fc.credits(self.me)
        if owed <= 0:
            return False
        self.fc.withdraw()
        self._say(f"withdrew {owed} wei")
        return True


def is_outage(e: BaseException) -> bool:
    """True for a failure of the node or the network (worth waiting out), not of the request."""
    if isinstance(e, RPCUnavailable):
        return True
    if isinstance(e, (ContractRevert, ChainError)):
        return False
    return isinstance(e, (ConnectionError, TimeoutError, requests.ConnectionError, requests.Timeout))


class _Progress:
    """A one-line display of sampling against the real target: error bound vs ½·D, time left."""

    def __init__(self, desc: str, target: float, deadline: float, *, enabled: bool):
        self.desc, self.target, self.deadline = desc, target, deadline
        self.bar = None
        if enabled and sys.stderr.isatty():  # a log file gets the one-line summaries, not bar redraws
            from tqdm import tqdm

            self.bar = tqdm(total=None, desc=desc, bar_format="{desc}: {postfix}", leave=False, file=sys.stderr,
                            dynamic_ncols=True)

    def update(self, est) -> None:
        if self.bar is None:
            return
        left = max(0.0, self.deadline - time.time())
        err = est.err_p if math.isfinite(est.err_p) else float("inf")
        self.bar.set_postfix_str(f"{est.iterations} perms, error bound {err:.2e} → target {self.target:.2e}, "
                                 f"{left:.0f}s to commit")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
