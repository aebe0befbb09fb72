"""The FL server on the chain: train a task's rounds, let each client register its own update,
publish each round's Shapley task, and resume after a crash from what the chain and the store hold.

One round ``r`` of :meth:`FLServer.run_round`:

1. w_r, the global model before the round (:meth:`FLServer.global_model`): w_0 from the seed,
   then w_{q+1} = A(w_q, the updates *registered on-chain* in round q, fetched from the store and
   checked against their registered hashes, in registration order). The chain is the record:
   nothing the server merely remembers decides the model.
2. Every simulated client trains locally (one ``vmap``ped batch, keys derived from
   ``(seed, round)``, so a re-run after a crash yields bit-identical updates).
3. Each client not yet registered for ``r`` uploads its Δ_k (safetensors) to the store, then
   registers ``(r, keccak256(Δ_k bytes), locator, n_k)`` from *its own account*. Clients already
   registered are skipped (the contract would reject a second registration anyway, and a
   ``FedCoinAlreadyRegistered`` revert from a transaction that raced a crash is accepted as
   "already done").
4. The spec (:mod:`fedcoin.content.spec`) lists the registered updates in registration order; the
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
from fedcoin.content import checks
from fedcoin.content.spec import TaskSpec, build_spec
from fedcoin.content.store import ContentStore, content_hash

from .data import Splits, load_dataset
from .fedavg import ClientBatch, FedAvg, Strategy
from .partition import Partition, partition

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
        seed: seeds the partition, w_0 and every round's local training.
        lr, local_steps, batch_size: local SGD (paper: 20 local iterations).
        aggregation: ``fedavg-weighted`` or ``fedavg-uniform``.
        metric: utility metric named in the spec.
        val_size: rows of the validation set published for the Shapley utility (0 = all).
        commit_window, reveal_window: seconds from publication to the commit deadline, and
            from the commit to the reveal deadline.
        poll_interval: seconds between chain polls while waiting for a round to settle.
        round_timeout: give up waiting for a round after this many seconds (None: never).
    """

    data: str = "mnist"
    arch: str | None = None
    samples_per_client: int = 500
    iid: bool = False
    seed: int = 0
    lr: float = 0.1
    local_steps: int = 20
    batch_size: int = 50
    aggregation: str = DEFAULT_RULE
    metric: str = "neg_cross_entropy"
    val_size: int = 1000
    commit_window: int = 600
    reveal_window: int = 600
    poll_interval: float = 2.0
    round_timeout: float | None = None


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
    missing_keys: list[str] = field(default_factory=list)
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
        out = [f"task {self.task_id}: {len(self.rounds)} round(s) handled, task status {self.task_status}"]
        for r in self.rounds:
            out.append(
                f"  round {r.round}: {len(r.registered_now)} registered now, {len(r.already_registered)} found "
                f"on-chain, {'published' if r.published_now else 'already published'} spec {r.spec_hash[:18]}… "
                f"({r.spec_locator}), val loss {r.val_loss:.4f}, val acc {r.val_accuracy:.4f}, "
                f"gas {r.gas_fees / 1e18:.6f} ETH"
                + (f", no key for {len(r.missing_keys)} client(s)" if r.missing_keys else "")
            )
        out.append(f"  server credit on the contract: {self.server_credit / 1e18:.6f} ETH")
        return out


class FLServer:
    """Runs one task's FL rounds against a FedCoin contract.

    Args:
        fc: the contract bindings acting as the server's account.
        task_id: the task.
        clients: the simulated clients' accounts (``LocalAccount``); each listed client without
            an account here simply does not participate.
        store: where updates, models, validation set and specs go.
        config: training settings (see :class:`ServerConfig`).
        strategy: defaults to :class:`FedAvg` built from ``config``.
        hooks: :class:`ServerHooks`.
        splits: a preloaded dataset (otherwise loaded from ``config.data``).
    """

    def __init__(self, fc, task_id: int, clients: Sequence, store: ContentStore, config: ServerConfig = ServerConfig(),
                 *, strategy: Strategy | None = None, hooks: ServerHooks | None = None, splits: Splits | None = None):
        self.fc, self.task_id, self.store, self.config = fc, int(task_id), store, config
        self.hooks = hooks or ServerHooks()
        self.accounts = {a.address: a for a in clients}
        self.splits = splits or load_dataset(config.data)
        arch = Arch.parse(config.arch) if config.arch else Arch(
            "mlp", (self.splits.num_features, 200, self.splits.num_classes))
        self.strategy = strategy or FedAvg(arch, lr=config.lr, local_steps=config.local_steps,
                                           batch_size=config.batch_size, rule=config.aggregation)
        self.arch = self.strategy.arch
        self.listed = list(fc.task_clients(self.task_id))  # ascending, as the contract lists them
        self.partition: Partition = partition(
            self.splits.train, num_clients=len(self.listed), samples_per_client=config.samples_per_client,
            iid=config.iid, num_classes=self.splits.num_classes, seed=config.seed)
        self.batch = ClientBatch.from_clients(self.partition.clients)
        val = self.splits.val if not config.val_size else self.splits.val.take(config.val_size)
        self.val = val
        self._val_blob = dataset_to_bytes(val.x, val.y)
        self._globals: dict[int, Params] = {}
        key = jax.random.key(config.seed)
        self._key = key

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
            raise ServerError(f"task {self.task_id} has status {info.status}; nothing to run")
        return False

    # ---------------------------------------------------------------- the model

    def training_key(self, rnd: int) -> jax.Array:
        """Round ``rnd``'s local-training key (the task's schedule, :func:`fedcoin.ml.fedavg.round_key`)."""
        return fedavg_rule.round_key(self._key, rnd)

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
            ups = [spec.updates[i] for i in spec.included]
            deltas = [
                {k: jnp.asarray(v) for k, v in params_from_bytes(self.store.get(u.locator, u.hash), self.arch).items()}
                for u in ups
            ]
            w = self.strategy.aggregate_fit(rnd - 1, prev, fedavg_rule.stack(deltas), jnp.asarray([u.n_k for u in ups]))
        self._globals[rnd] = w
        return w

    def published_spec(self, rnd: int) -> TaskSpec | None:
        """Round ``rnd``'s spec as published on-chain (fetched and checked against its hash)."""
        from fedcoin.content.spec import parse

        ev = self.fc.published_events(self.task_id, rnd)
        if not ev:
            return None
        return parse(self.store.get(ev[-1].args["specLocator"], bytes(ev[-1].args["specHash"])))

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
            self._register_all(rnd, w, rep)
            self._publish(rnd, w, rep)
        else:
            ev = self.fc.published_events(self.task_id, rnd)
            rep.already_registered = [c for c, *_ in self.registered_updates(rnd)]
            if ev:
                rep.spec_hash = "0x" + bytes(ev[0].args["specHash"]).hex()
                rep.spec_locator = ev[0].args["specLocator"]
        return rep

    def _register_all(self, rnd: int, w: Params, rep: RoundReport) -> None:
        from fedcoin.chain import ContractRevert

        done = {c for c, *_ in self.registered_updates(rnd)}
        todo = [k for k, c in enumerate(self.listed) if c not in done]
        rep.already_registered = sorted(done)
        if not todo:
            return
        # all clients train in one batch, every time: the updates do not depend on who is missing
        deltas = self.strategy.fit(rnd, w, self.batch, key=self.training_key(rnd))
        for k in todo:
            client = self.listed[k]
            account = self.accounts.get(client)
            if account is None:
                rep.missing_keys.append(client)
                continue
            blob = params_to_bytes({name: np.asarray(v[k]) for name, v in deltas.items()})
            h, locator = self.store.put_checked(blob)
            self.hooks.on_update_stored(rnd, client, locator)
            try:
                tx = self.fc.as_account(account).register_update(
                    self.task_id, rnd, h, locator, int(self.batch.n[k]))
            except ContractRevert as e:
                if e.name == "FedCoinAlreadyRegistered":  # a transaction sent before a crash got mined
                    rep.already_registered.append(client)
                    continue
                raise
            rep.registered_now.append(client)
            rep.gas_fees += tx.fee
            self.hooks.on_update_registered(rnd, client, tx.tx_hash)

    def build_spec(self, rnd: int, w: Params) -> TaskSpec:
        """The round's spec from what is registered on-chain (uploads w_r and the validation set).

        Every registration is checked (:mod:`fedcoin.content.checks`: fetchable, hash, shape,
        finite, norm and data-cost bounds); those that fail are listed as excluded with the
        first failing check, so one hostile client cannot stop the round.
        """
        regs = self.registered_updates(rnd)
        if not regs:
            raise ServerError(f"no update is registered for round {rnd}; nothing to publish")
        verdicts = checks.check_registrations(
            self.store, self.arch, checks.registrations_from_events(self.fc.registrations(self.task_id, rnd)))
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
        )

    def _publish(self, rnd: int, w: Params, rep: RoundReport) -> None:
        spec = self.build_spec(rnd, w)
        data = spec.encode()
        locator = self.store.put(data)
        self.hooks.on_spec_stored(rnd, spec, locator)
        now = self.fc.latest_timestamp()
        commit_deadline = now + self.config.commit_window
        tx = self.fc.publish_shapley_task(
            self.task_id, rnd, content_hash(data), locator, commit_deadline,
            commit_deadline + self.config.reveal_window, Aggregation.from_rule(self.config.aggregation))
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

