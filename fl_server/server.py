"""The FL server on the chain: train a task's rounds, let each client register its own update,
publish each round's Shapley task, and resume after a crash from what the chain and the store hold.

One round ``r`` of :meth:`FLServer.run_round`:

1. w_r, the global model before the round (:meth:`FLServer.global_model`): w_0 from the seed,
   then w_{q+1} = A(w_q, the updates *registered on-chain* in round q, fetched from the store and
   checked against their registered hashes, in registration order). The chain is the record:
   nothing the server merely remembers decides the model.
2. The registration period: the clients — separate parties, each a ``fedcoin client``
   process (:mod:`fl_server.client`) or a Flower SuperNode with its own key — train on their
   own data, upload Δ_k and register ``(r, keccak256(Δ_k bytes), locator, n_k)`` from their own
   accounts. The server holds no client key: it waits until every listed client registered or
   the registration deadline passed (:meth:`FLServer.registration_deadline`), whichever is first.
   *Simulation* (``--simulate-clients``, the demo, the figures): the server is handed the
   clients' accounts and runs one :class:`fl_server.client.DataOwner` per client in-process —
   the same code as ``fedcoin client`` — with client k training on partition k and its own key
   ``fold_in(key(seed), k)``, so a re-run after a crash yields bit-identical updates. Clients
   already registered are skipped.
3. The spec (:mod:`fedcoin.content.spec`) lists the registered updates in registration order; the
   global model, the validation set and the spec go to the store; the server publishes the
   spec's hash and locator with commit and reveal deadlines counted from the latest block time.
   A round already published is never published again.

Resume: :meth:`FLServer.run` starts at the task's ``current_round`` on-chain; whatever of that
round already happened (registrations, publication) is read from the chain and skipped. Store
writes are idempotent (content addressed), so a crash between "upload" and "register" only
means the upload is repeated with the same bytes.

Between rounds the server waits for the miners to finalize (the contract then advances
``current_round``). If a round's reveal deadline passes and nobody finalizes, the server calls
``finalize`` itself so that the round settles (re-opens with a relaxed difficulty or pays out),
as anyone may.

Step 3 waits for nothing more: a listed client that did not register by the deadline is
simply not in the round (it earns nothing for it).

Extension points (Flower-style): :class:`ServerHooks` methods are called after each step; tests
use them to inject crashes at exact places.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from fedcoin.chain import RoundStatus, TaskStatus
from fedcoin.ml import fedavg as fedavg_rule
from fedcoin.ml.fedavg import DEFAULT_RULE, Aggregation
from fedcoin.ml.models import Arch, Params
from fedcoin.ml.serialization import dataset_to_bytes, params_from_bytes, params_to_bytes
from fedcoin.content import checks, csves_gate, trainer_gate
from fedcoin.content.spec import TaskSpec, build_spec
from fedcoin.content.store import ContentStore, content_hash

from .client import DataOwner, TrainingConfig, next_global_model
from .data import Splits, load_dataset
from .fedavg import FedAvg, Strategy
from .partition import Partition, partition, shares_partition

log = logging.getLogger("fedcoin.server")



class ServerError(RuntimeError):
    """The server cannot go on (the message says why and what to do)."""


class RoundTimeout(ServerError):
    """A published round was not settled in time."""


@dataclass(frozen=True)
class ServerConfig:
    """Everything that determines the training, hence the bytes of every update.

    Resuming a task requires the same values (a different seed or dataset would give other
    updates; the server detects it by comparing w_0 with round 0's spec).

    Attributes:
        data: dataset source (:func:`fl_server.data.load_dataset`).
        arch: architecture id; default ``mlp-<d>-200-<classes>``.
        samples_per_client: n_k of every client.
        iid: IID clients instead of the paper's quality types.
        shares: one fraction of the training pool per listed client: clients then hold uneven,
            overlapping IID shares (:func:`fl_server.partition.shares_partition`, Record-and-
            Reward's Fig. 7) and ``samples_per_client`` and ``iid`` are ignored. None (default):
            the partition above, unchanged.
        seed: seeds the partition, w_0 and every round's local training.
        lr, local_steps, batch_size: local SGD (paper: 20 local iterations).
        aggregation: ``fedavg-weighted`` or ``fedavg-uniform``.
        metric: utility metric named in the spec.
        val_size: rows of the validation set published for the Shapley utility (0 = all).
        poll_interval: seconds between chain polls while waiting for a round to settle.
        round_timeout: give up waiting for a round after this many seconds (None: never).
        csves: a CSVES gate for every round (``"th"``, ``"tr"``, ``"th+tr"``; None: none),
            with ``csves_m`` validation rows per declared class and threshold ``csves_tau``
            (the paper: 0.1); see :mod:`fedcoin.content.checks` and docs/rr.md.
        flchain: the FLChain (address) serving this FedCoin whose trainer requirement the server
            applies: when the task requires trainers there, the update of a client that had not
            joined when it registered is excluded as ``unregistered-trainer``
            (:mod:`fedcoin.content.trainer_gate`; miners re-check it). None: no check.
    """

    data: str = "mnist"
    arch: str | None = None
    samples_per_client: int = 500
    iid: bool = False
    shares: tuple[float, ...] | None = None
    seed: int = 0
    lr: float = 0.1
    local_steps: int = 20
    batch_size: int = 50
    aggregation: str = DEFAULT_RULE
    metric: str = "neg_cross_entropy"
    val_size: int = 1000
    poll_interval: float = 2.0
    round_timeout: float | None = None
    csves: str | None = None
    csves_m: int = 10
    csves_tau: float = 0.1
    flchain: str | None = None


class ServerHooks:
    """Called after each step of a round (override any; all default to doing nothing)."""

    def on_round_start(self, rnd: int, global_params: Params) -> None: ...

    def on_update_stored(self, rnd: int, client: str, locator: str) -> None: ...

    def on_update_registered(self, rnd: int, client: str, tx_hash: str) -> None: ...

    def on_spec_stored(self, rnd: int, spec: TaskSpec, locator: str) -> None: ...

    def on_published(self, rnd: int, tx_hash: str) -> None: ...

    def on_round_settled(self, rnd: int, status: int) -> None: ...


@dataclass
class RoundReport:
    round: int
    registered_now: list[str] = field(default_factory=list)
    already_registered: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    published_now: bool = False
    spec_hash: str = ""
    spec_locator: str = ""
    val_loss: float = float("nan")
    val_accuracy: float = float("nan")
    gas_fees: int = 0


@dataclass
class Summary:
    task_id: int
    rounds: list[RoundReport] = field(default_factory=list)
    task_status: int = 0
    server_credit: int = 0

    def lines(self) -> list[str]:
        status = TaskStatus(self.task_status).name.capitalize() if self.task_status else "unknown"
        out = [f"task {self.task_id}: {len(self.rounds)} round(s) handled, task status {status}"]
        for r in self.rounds:
            out.append(
                f"  round {r.round}: {len(r.registered_now) + len(r.already_registered)} update(s) registered"
                + (f" ({len(r.registered_now)} by the simulation now)" if r.registered_now else "") + ", "
                f"{'published' if r.published_now else 'already published'} spec {r.spec_hash[:18]}… "
                f"({r.spec_locator}), val loss {r.val_loss:.4f}, val acc {r.val_accuracy:.4f}, "
                f"gas {r.gas_fees / 1e18:.6f} ETH"
                + (f", {len(r.missing)} client(s) did not register" if r.missing else "")
            )
        out.append(f"  server credit on the contract: {self.server_credit / 1e18:.6f} ETH")
        return out


class FLServer:
    """Runs one task's FL rounds against a FedCoin contract.

    Args:
        fc: the contract bindings acting as the server's account.
        task_id: the task.
        clients: only for a simulation: the simulated clients' accounts (``LocalAccount``),
            each run as an in-process :class:`~fl_server.client.DataOwner`. Empty (the normal
            path): the clients are separate processes and the server only waits for them.
        store: where updates, models, validation set and specs go.
        config: training settings (see :class:`ServerConfig`).
        strategy: defaults to :class:`FedAvg` built from ``config``.
        hooks: :class:`ServerHooks`.
        splits: a preloaded dataset (otherwise loaded from ``config.data``).
    """

    def __init__(self, fc, task_id: int, clients: Sequence = (), store: ContentStore | None = None,
                 config: ServerConfig = ServerConfig(),
                 *, strategy: Strategy | None = None, hooks: ServerHooks | None = None, splits: Splits | None = None):
        self.fc, self.task_id, self.store, self.config = fc, int(task_id), store, config
        self.hooks = hooks or ServerHooks()
        if store is None:
            raise ServerError("the server needs a content store")
        self.accounts = {a.address: a for a in clients}
        self.splits = splits or load_dataset(config.data)
        arch = Arch.parse(config.arch) if config.arch else Arch(
            "mlp", (self.splits.num_features, 200, self.splits.num_classes))
        self.strategy = strategy or FedAvg(arch, lr=config.lr, local_steps=config.local_steps,
                                           batch_size=config.batch_size, rule=config.aggregation)
        self.arch = self.strategy.arch
        self.listed = list(fc.task_clients(self.task_id))  # ascending, as the contract lists them
        self._partition: Partition | None = None
        self._key = jax.random.key(config.seed)
        self.owners: dict[str, DataOwner] = {}
        if self.accounts:
            training = TrainingConfig(config.lr, config.local_steps, config.batch_size)
            for k, client in enumerate(self.listed):
                if client in self.accounts:
                    self.owners[client] = DataOwner(
                        fc.as_account(self.accounts[client]), self.task_id, self.partition.clients[k].data, store,
                        arch=self.arch, init_seed=config.seed, key=self.client_key(k), training=training)
        val = self.splits.val if not config.val_size else self.splits.val.take(config.val_size)
        self.val = val
        self._val_blob = dataset_to_bytes(val.x, val.y)
        self._globals: dict[int, Params] = {}
        self._flchain = None
        if config.flchain:
            from fedcoin.flchain.binding import TrainerGateError, flchain_for

            try:
                self._flchain = flchain_for(fc, config.flchain)
            except TrainerGateError as e:
                raise ServerError(f"--flchain: {e}") from None

    @property
    def partition(self) -> Partition:
        """The simulated clients' data (client k = listed client k), drawn on first use."""
        if self._partition is None and self.config.shares is not None:
            self._partition = shares_partition(self.splits.train, self.config.shares, num_clients=len(self.listed),
                                               num_classes=self.splits.num_classes, seed=self.config.seed)
        elif self._partition is None:
            self._partition = partition(
                self.splits.train, num_clients=len(self.listed), samples_per_client=self.config.samples_per_client,
                iid=self.config.iid, num_classes=self.splits.num_classes, seed=self.config.seed)
        return self._partition

    def client_key(self, k: int) -> jax.Array:
        """Simulated client k's training key (round r trains with ``round_key(client_key(k), r)``)."""
        return jax.random.fold_in(self._key, k)

    # ---------------------------------------------------------------- chain state

    def task(self):
        return self.fc.get_task(self.task_id)

    def accept(self) -> bool:
        """Accept the task if it is still waiting for its server; True if this call accepted."""
        info = self.task()
        if info.status == TaskStatus.CREATED:
            if info.server != self.fc.account.address:
                raise ServerError(f"task {self.task_id} names server {info.server}, not {self.fc.account.address}")
            self.fc.accept_task(self.task_id)
            return True
        if info.status not in (TaskStatus.ACCEPTED, TaskStatus.COMPLETED):
            raise ServerError(f"task {self.task_id} has status {info.status.name.capitalize()}; nothing to run")
        return False

    # ---------------------------------------------------------------- the model

    def registered_updates(self, rnd: int) -> list[tuple[str, bytes, str, int]]:
        """``[(client, hash, locator, n_k)]`` registered in round ``rnd``, in registration order."""
        return [
            (e.args["client"], bytes(e.args["updateHash"]), e.args["locator"], int(e.args["dataCost"]))
            for e in self.fc.registrations(self.task_id, rnd)
        ]

    def global_model(self, rnd: int) -> Params:
        """w_rnd, rebuilt from w_0 and the *included* updates of earlier rounds (cached).

        Round r − 1's included updates are those its published spec did not exclude, so a NaN,
        a wrong shape or an unavailable blob never reaches the next global model.
        """
        if rnd in self._globals:
            return self._globals[rnd]
        if rnd == 0:
            w = self.strategy.initialize(key=fedavg_rule.init_key(self._key))
            self._check_initial_model(w)
        else:
            prev = self.global_model(rnd - 1)
            spec = self.published_spec(rnd - 1)
            if spec is None:
                raise ServerError(f"round {rnd - 1} of task {self.task_id} was never published; cannot build w_{rnd}")
            w = next_global_model(self.store, spec, self.arch, prev=prev)
        self._globals[rnd] = w
        return w

    def published_spec(self, rnd: int) -> TaskSpec | None:
        """Round ``rnd``'s spec as published on-chain (fetched and checked against its hash)."""
        from fedcoin.content.spec import published_spec

        return published_spec(self.fc, self.store, self.task_id, rnd)

    def _check_initial_model(self, w0: Params) -> None:
        """If round 0 was published, its spec's w_0 must be ours (same seed, data and model)."""
        from fedcoin.content.spec import parse

        ev = self.fc.published_events(self.task_id, 0)
        if not ev:
            return
        spec = parse(self.store.get(ev[0].args["specLocator"], bytes(ev[0].args["specHash"])))
        mine = "0x" + content_hash(params_to_bytes({k: np.asarray(v) for k, v in w0.items()})).hex()
        if spec.global_model.hash != mine or spec.arch != self.arch.id:
            raise ServerError(
                f"task {self.task_id} round 0 was published with model {spec.arch} w_0 {spec.global_model.hash}, "
                f"but this configuration gives {self.arch.id} w_0 {mine}: resume with the original "
                f"--seed/--data/--arch settings"
            )

    # ---------------------------------------------------------------- one round

    def run_round(self, rnd: int) -> RoundReport:
        """Register every missing update of round ``rnd`` and publish its Shapley task (idempotent)."""
        rep = RoundReport(rnd)
        info = self.fc.get_round(self.task_id, rnd)
        w = self.global_model(rnd)
        m = self.strategy.evaluate(rnd, w, self.val)
        rep.val_loss, rep.val_accuracy = m["loss"], m["accuracy"]
        self.hooks.on_round_start(rnd, w)
        if info.status == RoundStatus.OPEN:
            self._register_simulated(rnd, w, rep)
            self.wait_registrations(rnd, rep)
            self._publish(rnd, w, rep)
        else:
            ev = self.fc.published_events(self.task_id, rnd)
            rep.already_registered = [c for c, *_ in self.registered_updates(rnd)]
            if ev:
                rep.spec_hash = "0x" + bytes(ev[0].args["specHash"]).hex()
                rep.spec_locator = ev[0].args["specLocator"]
        return rep

    def _register_simulated(self, rnd: int, w: Params, rep: RoundReport) -> None:
        """Simulation only: every simulated client not yet registered trains and registers itself."""
        done = {c for c, *_ in self.registered_updates(rnd)}
        rep.already_registered = sorted(done)
        for client, owner in self.owners.items():
            if client in done:
                continue
            got = owner.register(rnd, w)
            if got.outcome == "already":
                rep.already_registered.append(client)
                continue
            if got.outcome != "registered":
                continue
            self.hooks.on_update_stored(rnd, client, got.locator)
            rep.registered_now.append(client)
            rep.gas_fees += got.fee
            self.hooks.on_update_registered(rnd, client, got.tx_hash)

    def registration_deadline(self, rnd: int) -> int:
        """When round ``rnd``'s registration period ends (block time): the round's start plus
        the task's on-chain registration window (before it the contract lets the server publish
        only once every listed client registered). The windows are the requester's, set at
        ``createTask``: a server does not choose them."""
        del rnd  # the current round: the contract records when it started
        return int(self.task().registration_deadline)

    def wait_registrations(self, rnd: int, rep: RoundReport | None = None) -> list[str]:
        """Wait until every listed client registered for ``rnd`` or the deadline passed (judged
        by the next block's time) with at least one registration; returns the listed clients
        that did not register. ``round_timeout`` bounds the wait."""
        deadline = self.registration_deadline(rnd)
        said = False
        start = time.monotonic()
        while True:
            if self.config.round_timeout is not None and time.monotonic() - start > self.config.round_timeout:
                raise RoundTimeout(f"round {rnd} of task {self.task_id}: no client registered within "
                                   f"{self.config.round_timeout:.0f}s")
            registered = set(self.fc.registered_clients(self.task_id, rnd))
            missing = [c for c in self.listed if c not in registered]
            now = self.fc.next_block_time()
            if not missing or (now > deadline and registered):
                break  # with nobody registered yet the server keeps waiting: publishing needs one
            if not said:
                log.info("round %d: %d/%d client(s) registered; waiting until all have or the deadline (%ds)",
                         rnd, len(registered), len(self.listed), deadline - now)
                said = True
            time.sleep(self.config.poll_interval)
        if rep is not None:
            rep.missing = missing
            rep.already_registered = [c for c in self.fc.registered_clients(self.task_id, rnd)
                                      if c not in set(rep.registered_now)]
        if missing:
            log.info("round %d: registration closed with %d of %d client(s); %d did not register",
                     rnd, len(self.listed) - len(missing), len(self.listed), len(missing))
        return missing

    def build_spec(self, rnd: int, w: Params) -> TaskSpec:
        """The round's spec from what is registered on-chain (uploads w_r and the validation set).

        Every registration is checked (:mod:`fedcoin.content.checks`: a joined trainer when the
        task requires trainers on ``config.flchain``, fetchable, hash, shape, finite, norm and
        data-cost bounds); those that fail are listed as excluded with the
        first failing check, so one hostile client cannot stop the round.
        """
        regs = self.registered_updates(rnd)
        if not regs:
            raise ServerError(f"no update is registered for round {rnd}; nothing to publish")
        gate = None
        if self.config.csves:
            c = csves_gate.Csves.for_round(self.config.csves, m=self.config.csves_m, tau=self.config.csves_tau,
                                       chain_id=self.fc.chain_id, contract=self.fc.address, task_id=self.task_id,
                                       round=rnd)
            gate = csves_gate.CsvesContext(c, {k: np.asarray(v) for k, v in w.items()}, np.asarray(self.val.x),
                                       np.asarray(self.val.y), self.arch.sizes[-1])
        verdicts = checks.check_registrations(
            self.store, self.arch, checks.registrations_from_events(self.fc.registrations(self.task_id, rnd)),
            csves=gate, trainers=trainer_gate.trainer_gate(self._flchain, self.task_id))
        if not verdicts.included:
            raise ServerError(f"round {rnd}: every registered update fails the checks "
                              f"({', '.join(f'#{e.index} {e.reason}' for e in verdicts.excluded)}); nothing to value")
        for e in verdicts.excluded:
            log.warning("round %d: excluding registration #%d of %s: %s (%s)", rnd, e.index, e.client, e.reason, e.detail)
        g_hash, g_loc = self.store.put_checked(params_to_bytes({k: np.asarray(v) for k, v in w.items()}))
        v_hash, v_loc = self.store.put_checked(self._val_blob)
        return build_spec(
            chain_id=self.fc.chain_id, contract=self.fc.address, task_id=self.task_id, round=rnd, arch=self.arch,
            global_model=(g_hash, g_loc), updates=regs, validation=(v_hash, v_loc), validation_n=len(self.val),
            aggregation=self.config.aggregation, metric=self.config.metric,
            excluded=[(e.index, e.reason) for e in verdicts.excluded],
            payment=self.fc.payment_rule(self.task_id), csves=gate.csves.to_json() if gate else None,
        )

    def _publish(self, rnd: int, w: Params, rep: RoundReport) -> None:
        spec = self.build_spec(rnd, w)
        data = spec.encode()
        locator = self.store.put(data)
        self.hooks.on_spec_stored(rnd, spec, locator)
        # the contract sets the deadlines from the task's own commit and reveal windows
        tx = self.fc.publish_shapley_task(
            self.task_id, rnd, content_hash(data), locator, Aggregation.from_rule(self.config.aggregation),
            excluded=spec.excluded_indices)
        rep.published_now, rep.spec_hash, rep.spec_locator = True, "0x" + spec.hash().hex(), locator
        rep.gas_fees += tx.fee
        self.hooks.on_published(rnd, tx.tx_hash)

    # ---------------------------------------------------------------- waiting

    def round_settled(self, rnd: int) -> bool:
        t = self.task()
        return t.status in (TaskStatus.COMPLETED, TaskStatus.REFUNDED) or t.current_round > rnd

    def wait_round_settled(self, rnd: int) -> int:
        """Block until round ``rnd`` is finalized or abandoned; returns the round's status."""
        from fedcoin.chain import ContractRevert

        from fedcoin.chain import RPCUnavailable

        start = time.monotonic()
        down_since = None
        while True:
            try:
                if self.round_settled(rnd):
                    break
                info = self.fc.get_round(self.task_id, rnd)
                if down_since is not None:
                    log.warning("node is back after %.0fs; still waiting for round %d", time.monotonic() - down_since, rnd)
                    down_since = None
                # judged by the next block's time: on an on-demand chain nobody mines while nobody
                # sends, so the latest block's time may never pass the deadline by itself
                if info.status == RoundStatus.PUBLISHED and self.fc.next_block_time() > info.reveal_deadline:
                    try:  # nobody finalized (maybe nobody committed): settle it so the task moves on
                        self.fc.finalize(self.task_id, rnd)
                        continue
                    except ContractRevert as e:
                        log.info("finalize of round %d reverted: %s", rnd, e)
            except RPCUnavailable as e:  # a node outage is waited out, however long
                if down_since is None:
                    down_since = time.monotonic()
                    log.warning("node unreachable while waiting for round %d (%s); retrying", rnd, e)
                time.sleep(min(30.0, 4 * self.config.poll_interval))
                continue
            if self.config.round_timeout is not None and time.monotonic() - start > self.config.round_timeout:
                raise RoundTimeout(f"round {rnd} of task {self.task_id} was not settled within "
                                   f"{self.config.round_timeout:.0f}s (status {info.status.name})")
            time.sleep(self.config.poll_interval)
        status = self.fc.get_round(self.task_id, rnd).status
        self.hooks.on_round_settled(rnd, status)
        return status

    # ---------------------------------------------------------------- the loop

    def run(self, *, max_rounds: int | None = None, wait: bool = True, progress: bool = False) -> Summary:
        """Accept if needed, then run rounds from the task's current round on.

        Args:
            max_rounds: handle at most this many rounds in this call.
            wait: wait for each round to settle before the next (without it, only the current
                round is handled).
            progress: tqdm bar over the task's rounds.
        """
        self.accept()
        info = self.task()
        summary = Summary(self.task_id)
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=info.rounds, initial=info.current_round, desc=f"task {self.task_id} rounds", unit="round")
        try:
            while info.status == TaskStatus.ACCEPTED and (max_rounds is None or len(summary.rounds) < max_rounds):
                rnd = info.current_round
                rep = self.run_round(rnd)
                summary.rounds.append(rep)
                if bar is not None:
                    bar.set_postfix(val_acc=f"{rep.val_accuracy:.3f}", registered=len(rep.registered_now))
                if not wait:
                    break
                self.wait_round_settled(rnd)
                if bar is not None:
                    bar.update(1)
                info = self.task()
        finally:
            if bar is not None:
                bar.close()
        final = self.task()
        summary.task_status = final.status
        summary.server_credit = self.fc.credits(self.fc.account.address)
        return summary

