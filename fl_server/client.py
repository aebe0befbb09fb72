"""One data owner of a FedCoin task: its own key, its own data, its own process (``fedcoin client``).

A :class:`DataOwner` does what the protocol asks of a client, and nothing a server could do
for it:

1. **The round's global model, checked against the chain.** w_0 comes from the task's model
   card (architecture and init seed, the server's ``--arch``/``--seed``). For r ≥ 1,
   w_r = A(w_{r−1}, the updates round r−1's spec included), where the spec's hash is the one
   published on-chain, w_{r−1} is fetched from the spec's locator and checked against the
   spec's hash, and every update is checked against the hash its client *registered on-chain*
   (:func:`next_global_model`: the one FedAvg rule, so the bytes equal the server's). Once the
   round is published, the client compares the spec's w_r with the model it trained on and
   says so if they differ.
2. **Local training in JAX** (:func:`fl_server.fedavg.local_sgd`) with its own key
   (round r: :func:`fedcoin.ml.fedavg.round_key` of the client's key), so a restart retrains
   the identical update.
3. **Upload Δ and register** ``(round, keccak256(Δ), locator, n_k)`` from its own account.
4. **Claim** every payout of a finalized round with a Merkle proof rebuilt from events.

Restartable at any point: the chain is the record. A client registered for the round skips
training (the contract refuses a second registration anyway, and a ``FedCoinAlreadyRegistered``
revert of a transaction sent before a crash counts as done); claims are made for every
finalized round not yet claimed, so none is lost; store writes are content addressed.

The server's in-process simulation (``fedcoin server --simulate-clients``, the demo and the
figures) builds one :class:`DataOwner` per simulated client and calls the same
:meth:`DataOwner.register`.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, field
from typing import Callable, TextIO

import jax
import jax.numpy as jnp
import numpy as np

from fedcoin.chain import ContractRevert, RoundStatus, TaskStatus
from fedcoin.content.spec import TaskSpec, published_spec
from fedcoin.content.store import ContentStore, content_hash
from fedcoin.ml import fedavg as fedavg_rule
from fedcoin.ml.models import Arch, Params, init_params
from fedcoin.content.csves_gate import declaration_metadata
from fedcoin.ml.csves import declared_classes
from fedcoin.ml.serialization import params_from_bytes, params_to_bytes

from .data import Dataset
from .fedavg import local_sgd


class ClientError(RuntimeError):
    """The client cannot go on (the message says why and what to do)."""


@dataclass(frozen=True)
class TrainingConfig:
    """Local SGD of one client (paper: 20 local iterations).

    Attributes:
        lr: learning rate; local_steps: minibatch steps per round; batch_size: rows per step.
    """

    lr: float = 0.1
    local_steps: int = 20
    batch_size: int = 50


def params_hash(params: Params) -> bytes:
    """keccak256 of the safetensors bytes of ``params`` (what specs name)."""
    return content_hash(params_to_bytes({k: np.asarray(v) for k, v in params.items()}))


def fetch_params(store: ContentStore, locator: str, expected_hash: bytes, arch: Arch) -> Params:
    """Parameters from the store, checked against ``expected_hash`` (never trusted unchecked)."""
    return {k: jnp.asarray(v) for k, v in params_from_bytes(store.get(locator, expected_hash), arch).items()}


def next_global_model(store: ContentStore, spec: TaskSpec, arch: Arch, prev: Params | None = None) -> Params:
    """w_{r+1} = A(w_r, the updates spec r included), with the one FedAvg rule.

    Args:
        spec: round r's spec (already checked against its on-chain hash).
        prev: w_r if the caller has it; else fetched from the spec's global model and checked.

    Every update is fetched and checked against the hash the spec lists, which is the hash
    its client registered on-chain (the spec's update list is the chain's registrations, in
    registration order; miners refuse any other). The server's next model and every
    client's are therefore the same bytes.
    """
    if prev is None:
        prev = fetch_params(store, spec.global_model.locator, spec.global_model.hash_bytes(), arch)
    ups = [spec.updates[i] for i in spec.included]
    if not ups:
        raise ClientError(f"round {spec.round}'s spec includes no update; there is no next model")
    deltas = [fetch_params(store, u.locator, u.hash_bytes(), arch) for u in ups]
    return fedavg_rule.aggregate_all(prev, fedavg_rule.stack(deltas), jnp.asarray([u.n_k for u in ups]),
                                     rule=spec.aggregation)


def initial_model(arch: Arch, init_seed: int) -> Params:
    """w_0 of a task whose model card is (``arch``, ``init_seed``): the server's w_0."""
    return init_params(arch, key=fedavg_rule.init_key(jax.random.key(init_seed)))


@dataclass
class Registered:
    """What :meth:`DataOwner.register` did for a round."""

    round: int
    outcome: str  # "registered" | "already" | "closed"
    update_hash: str = ""
    locator: str = ""
    n_k: int = 0
    model_hash: str = ""
    tx_hash: str = ""
    fee: int = 0


@dataclass
class RoundLine:
    """The one-line summary of a round, from this client's side."""

    round: int
    parts: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return f"round {self.round}: " + "; ".join(self.parts)


class DataOwner:
    """One client: ``fc`` acts as the client's own account.

    Args:
        fc: the contract, bound to this client's account.
        task_id: the task.
        data: the client's local training data (n_k = ``len(data)``).
        store: where updates are uploaded and models and specs fetched from.
        arch: the model (round ≥ 1 takes it from the previous spec and checks it agrees).
        init_seed: the task's model-card seed (the server's ``--seed``), for w_0.
        key: this client's training key; round r trains with ``round_key(key, r)``.
        training: local SGD settings.
    """

    def __init__(self, fc, task_id: int, data: Dataset, store: ContentStore, *, arch: Arch, init_seed: int = 0,
                 key: jax.Array, training: TrainingConfig = TrainingConfig()):
        if fc.account is None:
            raise ClientError("a client needs its own account to register and claim")
        self.fc, self.task_id, self.data, self.store = fc, int(task_id), data, store
        self.arch, self.init_seed, self.key, self.training = arch, init_seed, key, training
        self.address = fc.account.address
        self._models: dict[int, Params] = {}
        self._x, self._y = jnp.asarray(data.x), jnp.asarray(data.y)

    @property
    def n_k(self) -> int:
        return len(self.data)

    def replace_data(self, data: Dataset) -> None:
        """Simulation only: swap this owner's local data (the demo's faulty clients)."""
        self.data = data
        self._x, self._y = jnp.asarray(data.x), jnp.asarray(data.y)

    # ------------------------------------------------------------------ the model

    def model_for_round(self, rnd: int) -> Params:
        """w_rnd from the chain (see the module docstring); cached."""
        if rnd not in self._models:
            if rnd == 0:
                self._models[0] = initial_model(self.arch, self.init_seed)
            else:
                spec = published_spec(self.fc, self.store, self.task_id, rnd - 1)
                if spec is None:
                    raise ClientError(f"round {rnd - 1} of task {self.task_id} was never published; no w_{rnd}")
                if spec.arch != self.arch.id:
                    raise ClientError(f"the task's model is {spec.arch}, this client was started with {self.arch.id}: "
                                      f"restart it with --arch {spec.arch}")
                self._models[rnd] = next_global_model(self.store, spec, self.arch, prev=self._models.get(rnd - 1))
        return self._models[rnd]

    def train(self, rnd: int, w: Params) -> bytes:
        """Δ = local_sgd(w) − w as safetensors bytes (deterministic in (key, rnd, w, data)), with
        this client's declared classes in the blob's metadata (Record-and-Reward's Alg. 1: c_i = 1
        iff it holds class i; the CSVES gate samples its validation rows from them)."""
        c = self.training
        local = local_sgd(self.arch, w, self._x, self._y, jnp.int32(self.n_k), jnp.float32(c.lr),
                          key=fedavg_rule.round_key(self.key, rnd), steps=c.local_steps, batch_size=c.batch_size)
        classes = declared_classes(np.asarray(self.data.y), self.arch.sizes[-1])
        return params_to_bytes({k: np.asarray(local[k] - w[k]) for k in w}, declaration_metadata(classes))

    # ------------------------------------------------------------------ chain actions

    def register(self, rnd: int, w: Params | None = None) -> Registered:
        """Train, upload and register round ``rnd``'s update, unless already registered (idempotent).

        Args:
            w: the round's global model when the caller already holds it (the simulation
                passes the server's, which is the same bytes); else :meth:`model_for_round`.
        """
        if self.fc.is_registered(self.task_id, rnd, self.address):
            return Registered(rnd, "already")
        info = self.fc.get_round(self.task_id, rnd)
        if info.status != RoundStatus.OPEN:
            return Registered(rnd, "closed")
        w = self.model_for_round(rnd) if w is None else w
        blob = self.train(rnd, w)
        h, locator = self.store.put_checked(blob)
        rec = Registered(rnd, "registered", "0x" + h.hex(), locator, self.n_k, "0x" + params_hash(w).hex())
        try:
            tx = self.fc.register_update(self.task_id, rnd, h, locator, self.n_k)
        except ContractRevert as e:
            if e.name == "FedCoinAlreadyRegistered":  # a transaction sent before a crash was mined
                rec.outcome = "already"
                return rec
            if e.name in ("FedCoinWrongRoundStatus", "FedCoinWrongRound", "FedCoinRegistrationClosed"):
                rec.outcome = "closed"
                return rec
            raise
        rec.tx_hash, rec.fee = tx.tx_hash, tx.fee
        return rec

    def unclaimed(self) -> list[tuple[int, int]]:
        """``[(round, amount)]`` of finalized rounds that owe this client and are not claimed."""
        out = []
        for e in self.fc.update_registered_events(self.task_id, None, client=self.address):
            rnd = e.args["round"]
            if self.fc.get_round(self.task_id, rnd).status != RoundStatus.FINALIZED:
                continue
            amount, _ = self.fc.payout_proof(self.task_id, rnd, self.address)
            if amount > 0 and not self.fc.is_claimed(self.task_id, rnd, self.address):
                out.append((rnd, amount))
        return sorted(set(out))

    def claim_all(self) -> list[tuple[int, int, str]]:
        """Claim every unclaimed payout; ``[(round, amount, tx_hash)]``."""
        done = []
        for rnd, amount in self.unclaimed():
            try:
                tx = self.fc.claim(self.task_id, rnd)
            except ContractRevert as e:
                if e.name == "FedCoinAlreadyClaimed":
                    continue
                raise
            done.append((rnd, amount, tx.tx_hash))
        return done

    # ------------------------------------------------------------------ the loop

    def round_outcome(self, rnd: int) -> list[str]:
        """How round ``rnd`` ended for this client (for its summary line)."""
        from fedcoin.protocol import fixedpoint

        info = self.fc.get_round(self.task_id, rnd)
        if info.status == RoundStatus.ABANDONED:
            return ["abandoned (no consensus): no payout"]
        if info.status != RoundStatus.FINALIZED:
            return [f"{info.status.name.lower()}"]
        if not self.fc.is_registered(self.task_id, rnd, self.address):
            return ["finalized without this client"]
        ev = self.fc.round_finalized(self.task_id, rnd)
        clients = self.fc.registered_clients(self.task_id, rnd)
        i = clients.index(self.address)
        amount = int(ev.args["amounts"][i])
        centre = fixedpoint.decode(int(ev.args["centre"][i])) if "centre" in ev.args else float("nan")
        claimed = self.fc.is_claimed(self.task_id, rnd, self.address)
        return [f"finalized, centre={centre:+.5f}, payout {amount} wei" + (", claimed" if claimed and amount else "")]

    def run(self, *, poll: float = 2.0, timeout: float | None = None, max_rounds: int | None = None,
            out: TextIO = sys.stderr, on_poll: Callable[[], None] | None = None) -> "ClientSummary":
        """Take part in the task until it ends (or ``max_rounds`` rounds settled here), claiming as it goes."""
        start = time.monotonic()
        summary = ClientSummary(self.task_id, self.address)
        said: set[tuple[int, str]] = set()
        settled_seen: set[int] = set()

        def say(rnd: int, what: str, msg: str) -> None:
            if (rnd, what) not in said:
                said.add((rnd, what))
                print(msg, file=out, flush=True)

        while True:
            if on_poll:
                on_poll()
            t = self.fc.get_task(self.task_id)
            if t.status == TaskStatus.NONE:
                raise ClientError(f"task {self.task_id} does not exist on {self.fc.address}")
            if self.address not in self.fc.task_clients(self.task_id):
                raise ClientError(f"{self.address} is not a listed client of task {self.task_id}")
            if t.status == TaskStatus.CREATED:
                say(-1, "accept", f"task {self.task_id}: waiting for the server {t.server} to accept")
            elif t.status == TaskStatus.ACCEPTED:
                rnd = t.current_round
                info = self.fc.get_round(self.task_id, rnd)
                if info.status == RoundStatus.OPEN and not self.fc.is_registered(self.task_id, rnd, self.address):
                    say(rnd, "train", f"round {rnd}: training on {self.n_k} local rows "
                                      f"({self.training.local_steps} SGD steps)…")
                    rec = self.register(rnd)
                    summary.registrations.append(rec)
                    if rec.outcome == "registered":
                        say(rnd, "reg", f"round {rnd}: registered update {rec.update_hash[:12]}… n_k={rec.n_k} "
                                        f"on model {rec.model_hash[:12]}… (tx {rec.tx_hash[:12]}…)")
                    elif rec.outcome == "closed":
                        say(rnd, "closed", f"round {rnd}: registration closed before this client registered")
                elif info.status == RoundStatus.PUBLISHED:
                    self._check_published(rnd, say)
            for rnd, amount, tx in self.claim_all():
                summary.claimed.append((rnd, amount))
                say(rnd, "claim", f"round {rnd}: claimed {amount} wei (tx {tx[:12]}…)")
            t = self.fc.get_task(self.task_id)
            settled = t.current_round if t.status == TaskStatus.ACCEPTED else (
                t.rounds if t.status == TaskStatus.COMPLETED else t.current_round)
            for rnd in range(settled):
                if rnd not in settled_seen and self.fc.get_round(self.task_id, rnd).status in (
                        RoundStatus.FINALIZED, RoundStatus.ABANDONED):
                    settled_seen.add(rnd)
                    line = RoundLine(rnd, self.round_outcome(rnd))
                    summary.lines.append(str(line))
                    print(line, file=out, flush=True)
            if t.status in (TaskStatus.COMPLETED, TaskStatus.REFUNDED) and not self.unclaimed():
                summary.task_status = t.status
                break
            if max_rounds is not None and len(settled_seen) >= max_rounds:
                summary.task_status = t.status
                break
            if timeout is not None and time.monotonic() - start > timeout:
                raise ClientError(f"task {self.task_id} not finished within {timeout:.0f}s "
                                  f"(status {t.status.name}, round {t.current_round}); run again to resume")
            time.sleep(poll)
        return summary

    def _check_published(self, rnd: int, say) -> None:
        if not self.fc.is_registered(self.task_id, rnd, self.address) or (rnd, "spec") in getattr(self, "_checked", set()):
            return
        self._checked = getattr(self, "_checked", set()) | {(rnd, "spec")}
        spec = published_spec(self.fc, self.store, self.task_id, rnd)
        if spec is None:
            return
        mine = "0x" + params_hash(self.model_for_round(rnd)).hex()
        if spec.global_model.hash != mine:
            say(rnd, "mismatch", f"round {rnd}: WARNING the published spec's global model {spec.global_model.hash[:12]}… "
                                 f"is not the model this client trained on ({mine[:12]}…): its update was valued "
                                 f"against another model")
        for e in spec.excluded:
            if e.client == self.address:
                say(rnd, "excluded", f"round {rnd}: the server excluded this client's update: {e.reason}")
        say(rnd, "published", f"round {rnd}: published with {len(spec.included)} included update(s); "
                              f"waiting for the miners")


@dataclass
class ClientSummary:
    task_id: int
    address: str
    registrations: list[Registered] = field(default_factory=list)
    claimed: list[tuple[int, int]] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)
    task_status: int = 0

    def final_line(self) -> str:
        total = sum(a for _, a in self.claimed)
        st = TaskStatus(self.task_status).name.lower() if self.task_status else "running"
        return (f"client {self.address} task {self.task_id} ({st}): {sum(r.outcome == 'registered' for r in self.registrations)} "
                f"update(s) registered now, {len(self.claimed)} payout(s) claimed now, {total} wei")


# ------------------------------------------------------------------------------------- data


def client_data(source: str, *, partition_spec: str | None = None, samples: int = 500, partition_seed: int = 0,
                iid: bool = False, limit: int | None = None) -> tuple[Dataset, int, str]:
    """(training data, number of classes, description) for one client.

    Args:
        source: a dataset :func:`fl_server.data.load_dataset` reads (``npz:FILE``, ``idx:DIR``,
            ``mnist``, ``digits``); the client trains on its ``train`` split.
        partition_spec: ``"k/K"`` = client k (0-based) of K of the paper's quality types, drawn
            from the source's pool as the server's simulation draws them (for demos).
        samples: rows per client of a partition; limit: use at most this many rows.
    """
    from .data import load_dataset
    from .partition import partition

    splits = load_dataset(source)
    num_classes = max(splits.num_classes, 10)
    if partition_spec is None:
        data = splits.train if not limit else splits.train.take(limit)
        return data, num_classes, f"{source}: {len(data)} rows"
    try:
        k, K = (int(p) for p in partition_spec.split("/"))
    except ValueError:
        raise ClientError(f"--partition {partition_spec!r}: expected k/K, e.g. 3/20") from None
    if not 0 <= k < K:
        raise ClientError(f"--partition {partition_spec!r}: need 0 <= k < K")
    part = partition(splits.train, num_clients=K, samples_per_client=samples, iid=iid,
                     num_classes=splits.num_classes, seed=partition_seed)
    c = part.clients[k]
    kind = "IID" if c.type < 0 else f"type T{c.type}, labels {list(c.labels)}"
    return c.data, num_classes, f"{source} partition {k}/{K} ({kind}): {c.n} rows"


# ------------------------------------------------------------------------------------- CLI


def configure(parser: argparse.ArgumentParser) -> None:
    from fedcoin.chain.keys import add_key_arguments

    d = TrainingConfig()
    parser.description = ("one data owner of a task: fetch the round's global model (checked against the chain), "
                          "train locally, upload the update, register it from this account, claim the payouts")
    parser.formatter_class = argparse.ArgumentDefaultsHelpFormatter
    parser.add_argument("--rpc", default="http://127.0.0.1:8545", help="Ethereum JSON-RPC URL")
    parser.add_argument("--contract", default=None, help="FedCoin address (default: the recorded deployment)")
    parser.add_argument("--task", type=int, required=True, help="task id")
    parser.add_argument("--store", default="local", help="local | local:DIR | ipfs:http://127.0.0.1:5001 (the server's)")
    add_key_arguments(parser)
    g = parser.add_argument_group("data (this client's own)")
    g.add_argument("--data", required=True, help="npz:FILE | idx:DIR | mnist | digits (trains on its train split)")
    g.add_argument("--partition", default=None, metavar="k/K",
                   help="demo: client k of K quality-typed clients drawn from --data (as the server's simulation)")
    g.add_argument("--samples", type=int, default=500, help="rows per client with --partition")
    g.add_argument("--partition-seed", type=int, default=0, help="seed of --partition (the server's --seed)")
    g.add_argument("--iid", action="store_true", help="with --partition: IID instead of quality types")
    g.add_argument("--limit", type=int, default=None, help="use at most this many rows (default: all)")
    m = parser.add_argument_group("model (the task's model card: the server's settings)")
    m.add_argument("--arch", default=None, help="model id (default mlp-<features>-200-<classes>)")
    m.add_argument("--init-seed", type=int, default=0, help="seed of w_0 (the server's --seed)")
    t = parser.add_argument_group("local training (this client's choice)")
    t.add_argument("--seed", type=int, default=None, help="this client's training seed (default: from its address)")
    t.add_argument("--lr", type=float, default=d.lr)
    t.add_argument("--local-steps", type=int, default=d.local_steps)
    t.add_argument("--batch-size", type=int, default=d.batch_size)
    r = parser.add_argument_group("running")
    r.add_argument("--poll", type=float, default=2.0, help="seconds between chain polls")
    r.add_argument("--timeout", type=float, default=None, help="give up after SECONDS (default: never)")
    r.add_argument("--max-rounds", type=int, default=None, help="stop after this many rounds settled")


def seed_from_address(address: str) -> int:
    """A client's default training seed: the low 31 bits of its address."""
    return int(address, 16) & 0x7FFFFFFF


def run(args) -> int:
    from fedcoin.chain import ChainError, RPCUnavailable, open_fedcoin
    from fedcoin.chain.keys import KeyLoadError, account_from_args
    from fedcoin.content.store import StoreError, open_store

    try:
        account = account_from_args(args)
        fc = open_fedcoin(args.rpc, args.contract, account)
        if not 1 <= args.task <= fc.task_count():
            raise ClientError(f"task {args.task} does not exist on {fc.address} (taskCount is {fc.task_count()})")
        if account.address not in fc.task_clients(args.task):
            raise ClientError(f"{account.address} is not a listed client of task {args.task}: nothing to do")
        data, num_classes, what = client_data(args.data, partition_spec=args.partition, samples=args.samples,
                                              partition_seed=args.partition_seed, iid=args.iid, limit=args.limit)
        arch = Arch.parse(args.arch) if args.arch else Arch("mlp", (int(data.x.shape[1]), 200, num_classes))
        seed = args.seed if args.seed is not None else seed_from_address(account.address)
        owner = DataOwner(fc, args.task, data, open_store(args.store), arch=arch, init_seed=args.init_seed,
                          key=jax.random.key(seed),
                          training=TrainingConfig(args.lr, args.local_steps, args.batch_size))
        print(f"client {account.address} on task {args.task} at {fc.address}: {what}, model {arch.id}, "
              f"store {args.store}", file=sys.stderr, flush=True)
        summary = owner.run(poll=args.poll, timeout=args.timeout, max_rounds=args.max_rounds)
    except (ClientError, KeyLoadError, RPCUnavailable, LookupError, ValueError, FileNotFoundError, StoreError) as e:
        print(f"fedcoin client: {e}", file=sys.stderr)
        return 1 if isinstance(e, (ClientError, RPCUnavailable, StoreError)) else 2
    except ContractRevert as e:
        print(f"fedcoin client: the contract refused a transaction: {e}", file=sys.stderr)
        return 1
    except ChainError as e:
        print(f"fedcoin client: {e}", file=sys.stderr)
        return 1
    print(summary.final_line())
    return 0
