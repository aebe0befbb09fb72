"""The PoSap mining loop: watch → fetch → compute → commit → reveal → finalize → withdraw.

One :class:`Miner` per account. Each :meth:`Miner.tick` does whatever is due, so the loop is
restartable at any point: all durable state is on the chain or in the :mod:`miners.journal`.

Time: deadlines are block timestamps. The miner estimates the next block's time as
``max(latest block timestamp, wall clock)``, which is right on Anvil (it stamps blocks with
wall-clock time) and on public chains (whose clocks track wall time); a node whose clock runs
behind wall time would make the miner stop sampling early, never late.
"""

from __future__ import annotations

import math
import os
import secrets
import signal
import sys
import time
from dataclasses import dataclass, field
from typing import Callable

import jax

from fedcoin.protocol import fixedpoint
from fedcoin.chain import ChainError, ContractRevert, FedCoin, RoundStatus, RPCUnavailable, TaskStatus
from fedcoin.protocol.constants import ZERO_HASH
from fedcoin.protocol.commitment import commitment_hash, new_salt
from fedcoin.protocol.posap import P_INF
from fedcoin.content.store import ContentStore
from miners import shapley
from miners.inputs import TaskRefused, load_round
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
        safety_s: stop sampling this long before the commit deadline (time to send the commit).
        sampler: a :data:`miners.shapley.SAMPLERS` name.
        control_variate: sample v − u with u's Shapley values added back (unbiased; about a
            quarter of plain sampling's error at K=20, see docs/shapley.md); costs K utility
            evaluations and a few seconds once per round.
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
    sampler: str = "antithetic_stratified"
    control_variate: bool = True
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

    game: shapley.Game | None = None
    state: shapley.ShapleyState | None = None
    refused: str | None = None


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
    """

    fc: FedCoin
    store: ContentStore
    journal: Journal
    config: MinerConfig = field(default_factory=MinerConfig)
    task: int | None = None
    log: Callable[[str], None] = lambda m: print(m, file=sys.stderr, flush=True)
    progress: bool = True

    def __post_init__(self):
        self.me = self.fc.account.address
        self._from_block = 0
        self._rounds: set[tuple[int, int]] = set()
        self._work: dict[tuple[int, int], _Work] = {}
        seed = self.config.seed if self.config.seed is not None else secrets.randbits(31)
        self._key = jax.random.key(seed)
        self._max_iter = None
        self.summaries: list[str] = []

    # ------------------------------------------------------------------ helpers

    def now(self) -> int:
        """Estimated timestamp of the next block."""
        return max(self.fc.latest_timestamp(), int(time.time()))

    def _say(self, msg: str) -> None:
        self.log(f"[miner {self.me[:8]}] {msg}")

    def _cap(self) -> int:
        if self._max_iter is None:
            self._max_iter = int(self.fc.max_iterations())
        return self._max_iter

    # ------------------------------------------------------------------ discovery

    def discover(self) -> None:
        """Add rounds with a (re-)published Shapley task since the last look.

        Reads ``ShapleyTaskPublished`` / ``RoundReopened`` logs; where the node cannot serve
        logs, falls back to polling every task's current round through views.
        """
        head = self.fc.w3.eth.block_number
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

    # ------------------------------------------------------------------ one tick

    def tick(self) -> bool:
        """Do everything that is due now; return True if anything was done."""
        self.discover()
        did = False
        for entry in list(self.journal.entries(miner=self.me, open_only=True)):
            if entry.chain_id == self.fc.chain_id and entry.contract.lower() == self.fc.address.lower():
                did |= self._advance(entry)
        for task_id, round in sorted(self._rounds):
            did |= self._maybe_mine(task_id, round)
        did |= self._maybe_withdraw()
        return did

    def idle(self) -> bool:
        """No open journal entry and no round still open for mining."""
        if any(e.contract.lower() == self.fc.address.lower() for e in self.journal.entries(miner=self.me, open_only=True)):
            return False
        for task_id, round in self._rounds:
            if self.fc.get_round(task_id, round).status == RoundStatus.PUBLISHED:
                return False
        return True

    def run(self, *, until: Callable[[], bool] | None = None, max_idle_s: float | None = None) -> None:
        """Tick until ``until()`` is true, or nothing was due for ``max_idle_s`` seconds."""
        idle_since = time.monotonic()
        while not (until and until()):
            try:
                if self.tick():
                    idle_since = time.monotonic()
            except RPCUnavailable as e:
                self._say(f"RPC unavailable, retrying: {e}")
            if max_idle_s is not None and time.monotonic() - idle_since > max_idle_s and self.idle():
                return
            time.sleep(self.config.poll_s)

    # ------------------------------------------------------------------ mining

    def _maybe_mine(self, task_id: int, round: int) -> bool:
        info = self.fc.get_round(task_id, round)
        work = self._work.setdefault((task_id, round), _Work())
        if info.status != RoundStatus.PUBLISHED:
            self._rounds.discard((task_id, round))
            self._work.pop((task_id, round), None)
            return False
        if work.refused or self.now() >= info.commit_deadline - self.config.safety_s:
            return False
        if self.journal.get(self.fc.chain_id, self.fc.address, task_id, round, info.attempt, self.me):
            return False
        if self.fc.get_commitment(task_id, round, info.attempt, self.me).hash != ZERO_HASH:
            return False  # committed by another process of this account: not ours to manage
        try:
            self._mine(task_id, round, info, work)
        except TaskRefused as e:
            work.refused = str(e)
            self._say(f"REFUSED task {task_id} round {round}: {e}. Nothing committed.")
        return True

    def _mine(self, task_id: int, round: int, info, work: _Work) -> None:
        if work.game is None:
            inputs = load_round(self.fc, self.store, task_id, round)
            if self.config.ray is None:
                work.game = shapley.fl_game(inputs.game, control_variate=self.config.control_variate)
            else:  # scale-out over Ray workers (optional extra): miners/shapley/distributed.py
                from miners.shapley.distributed import RayGame

                work.game = RayGame(inputs.game, self.config.ray, control_variate=self.config.control_variate)
        D = fixedpoint.decode(info.difficulty)
        p = math.inf if info.p == P_INF else int(info.p)
        cap = self.config.max_perms or self._cap()
        budget_s = info.commit_deadline - self.now() - self.config.safety_s
        deadline = time.time() + budget_s
        bar = None
        if self.progress:
            from tqdm import tqdm

            bar = tqdm(total=cap, desc=f"task {task_id} r{round} a{info.attempt}", unit="perm",
                       leave=False, file=sys.stderr, dynamic_ncols=True)

        def progress(est):
            if bar is not None:
                bar.n = min(est.iterations, cap)
                bar.set_postfix_str(f"err={est.err_p:.2e} D={D:.1e} left={max(0.0, deadline - time.time()):.0f}s")

        self._key, sub = jax.random.split(self._key)
        run_until = shapley.run_until if self.config.ray is None else (lambda _g, **kw: work.game.run_until(**kw))
        res = run_until(
            work.game, key=sub, D=self.config.margin * D, p=p, confidence=self.config.confidence,
            deadline=deadline, max_perms=cap, sampler=self.config.sampler, state=work.state, progress=progress,
        )
        if bar is not None:
            bar.close()
        work.state = res.state
        if res.iterations == 0:
            self._say(f"task {task_id} round {round}: no time to sample before the commit deadline")
            return
        values = fixedpoint.encode_vector(res.phi.tolist())
        salt = new_salt()
        c = commitment_hash(self.fc.chain_id, self.fc.address, task_id, round, self.me, values, res.iterations, salt)
        entry = Entry(
            chain_id=self.fc.chain_id, contract=self.fc.address, task_id=task_id, round=round,
            attempt=int(info.attempt), miner=self.me, values=values, iterations=int(res.iterations),
            salt="0x" + salt.hex(), commitment="0x" + c.hex(),
        )
        self.journal.write(entry)  # durable before the commit leaves this process
        self._say(
            f"task {task_id} round {round} attempt {info.attempt}: {res.iterations} permutations, "
            f"err_p={res.err_p:.3e} (D={D:.3e}, p={'inf' if p == math.inf else p}, {res.reason}, "
            f"{res.elapsed_s:.1f}s); committing"
        )
        self._send_commit(entry)

    def _send_commit(self, entry: Entry) -> None:
        try:
            tx = self.fc.commit(entry.task_id, entry.round, bytes.fromhex(entry.commitment[2:]), bond=self.config.bond)
        except ContractRevert as e:
            self.journal.update(entry, status=ABANDONED)
            self._say(f"task {entry.task_id} round {entry.round}: commit rejected ({e.name}{e.args_}); bond not at stake")
            return
        self.journal.update(entry, status=COMMITTED, commit=tx.tx_hash)
        if os.environ.get(FAULT_ENV) == "kill-after-commit":
            os.kill(os.getpid(), signal.SIGKILL)

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
        self._say(f"task {e.task_id} round {e.round}: revealed (bond credited back)")
        return True

    def _settled(self, e: Entry) -> None:
        info = self.fc.get_round(e.task_id, e.round)
        if info.status == RoundStatus.PUBLISHED and info.attempt == e.attempt:
            return  # finalize did not go through; try again next tick
        fin = self.fc.round_finalized(e.task_id, e.round) if info.status == RoundStatus.FINALIZED else None
        if fin is not None:
            won = fin["winner"].lower() == self.me.lower()
            outcome = "WON" if won else f"lost to {fin['winner'][:10]}"
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
