"""A FedCoin strategy for Flower's ServerApp: Flower's own ``FedAvg``, with the chain as the record.

Flower runs the rounds (``Strategy.start``: configure → send → receive → aggregate); FedCoin
decides what a round *is*:

``configure_train``
    tells every SuperNode which task, contract and chain round it trains for (plus the model
    card and the server's suggested local-SGD settings), next to the global model's arrays.
``aggregate_train``
    1. keeps only the replies that the chain vouches for (:func:`registered_replies`): a reply
       names (client, hash, locator, n_k) and counts only if that exact registration is on-chain
       for the round; any other reply is logged and ignored;
    2. waits for the registration period to end (every listed client registered, or the
       deadline), then builds the spec from the chain's registrations, checks every update
       (:mod:`fedcoin.content.checks`), publishes the round's Shapley task and waits for the
       miners to settle it (:class:`fl_server.server.FLServer`, the same code as ``fedcoin
       server``);
    3. returns the next global model: FedAvg over exactly the updates the published spec
       included, in registration order (:func:`fl_server.client.next_global_model`), so
       anyone with the chain and the store recomputes the same bytes.

Flower's round counter starts at 1 on every ``start``; the chain round is always read from the
contract (``current_round``), so a restarted ServerApp goes on where the task is.
"""

from __future__ import annotations

from dataclasses import dataclass
from logging import INFO, WARNING
from typing import Iterable, Sequence

import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, Message, MetricRecord
from flwr.serverapp.strategy import FedAvg
from flwr.supercore import log as flwr_log

from fedcoin.ml.models import Params



def log(level: int, msg: str, *args) -> None:
    """Flower's logger (what ``flwr run --stream`` shows)."""
    flwr_log(level, msg, *args)

#: The key of the ConfigRecord a FedCoin ClientApp replies with.
REPLY_KEY = "fedcoin"


def to_record(params: Params) -> ArrayRecord:
    """Parameters as an ArrayRecord (tensors in sorted-name order)."""
    return ArrayRecord([np.asarray(params[k], np.float32) for k in sorted(params)])


def from_record(record: ArrayRecord, names: Sequence[str]) -> dict[str, np.ndarray]:
    """The inverse of :func:`to_record` for a model with tensor ``names``."""
    arrays = record.to_numpy_ndarrays()
    names = sorted(names)
    if len(arrays) != len(names):
        raise ValueError(f"expected {len(names)} arrays ({names}), got {len(arrays)}")
    return dict(zip(names, arrays))


@dataclass(frozen=True)
class Reply:
    """What a FedCoin ClientApp says it registered."""

    node_id: int
    client: str
    hash: str
    locator: str
    n_k: int


def parse_reply(node_id: int, content) -> Reply | None:
    """The (client, hash, locator, n_k) of a reply, or None when it carries none."""
    rec = content.config_records.get(REPLY_KEY) if hasattr(content, "config_records") else None
    if rec is None:
        return None
    try:
        return Reply(int(node_id), str(rec["client"]), str(rec["hash"]).lower(), str(rec["locator"]), int(rec["n-k"]))
    except (KeyError, TypeError, ValueError):
        return None


def registered_replies(replies: Iterable[Reply | None], registrations: Sequence[tuple[str, bytes, str, int]]
                       ) -> tuple[list[Reply], list[tuple[Reply | None, str]]]:
    """Split replies into those the chain vouches for and the rest (with why).

    Args:
        replies: parsed replies (None for a reply that carried no FedCoin record).
        registrations: the round's on-chain registrations ``(client, hash, locator, n_k)``.

    A reply counts only if its client registered exactly that hash, locator and n_k; one
    registration vouches for one reply at most.
    """
    regs = {c: ("0x" + bytes(h).hex(), loc, int(n)) for c, h, loc, n in registrations}
    ok, ignored, used = [], [], set()
    for r in replies:
        if r is None:
            ignored.append((r, "no FedCoin record in the reply"))
        elif r.client not in regs:
            ignored.append((r, f"{r.client} has no registration this round"))
        elif regs[r.client] != (r.hash, r.locator, r.n_k):
            ignored.append((r, f"{r.client} registered {regs[r.client]}, the reply says {(r.hash, r.locator, r.n_k)}"))
        elif r.client in used:
            ignored.append((r, f"a second reply for {r.client}"))
        else:
            used.add(r.client)
            ok.append(r)
    return ok, ignored


class FedCoinFedAvg(FedAvg):
    """Flower's FedAvg whose aggregation is FedCoin's round (see the module docstring).

    Args:
        server: the chain side (:class:`fl_server.server.FLServer` without simulated clients).
        rpc_url: the JSON-RPC URL nodes are told (each node may use its own).
        store: the content store URL nodes are told.
        fraction_train, min_train_nodes, min_available_nodes: Flower's sampling; by default
            every listed client's node must be connected and is asked to train.
    """

    def __init__(self, server, *, rpc_url: str, store: str, min_available_nodes: int | None = None,
                 min_train_nodes: int | None = None):
        n = len(server.listed)
        super().__init__(fraction_train=1.0, fraction_evaluate=0.0,
                         min_train_nodes=n if min_train_nodes is None else min_train_nodes,
                         min_available_nodes=n if min_available_nodes is None else min_available_nodes)
        self.server, self.rpc_url, self.store_url = server, rpc_url, store
        self.rounds: list = []
        self._chain_round: int | None = None

    def configure_train(self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid) -> Iterable[Message]:
        rnd = self.server.task().current_round
        self._chain_round = rnd
        c = self.server.config
        config.update({
            "fedcoin-rpc": self.rpc_url, "fedcoin-contract": self.server.fc.address,
            "fedcoin-chain-id": int(self.server.fc.chain_id), "fedcoin-task": self.server.task_id,
            "fedcoin-round": int(rnd), "fedcoin-store": self.store_url, "fedcoin-arch": self.server.arch.id,
            "fedcoin-init-seed": int(c.seed), "lr": float(c.lr), "local-steps": int(c.local_steps),
            "batch-size": int(c.batch_size),
        })
        log(INFO, "FedCoin round %d (Flower round %d): asking the nodes to train", rnd, server_round)
        return super().configure_train(server_round, arrays, config, grid)

    def aggregate_train(self, server_round: int, replies: Iterable[Message]) -> tuple[ArrayRecord | None, MetricRecord | None]:
        valid, errors = self._check_and_log_replies(replies, is_train=True, validate=False)
        rnd = self._chain_round if self._chain_round is not None else self.server.task().current_round
        ok, ignored = registered_replies(
            [parse_reply(m.metadata.src_node_id, m.content) for m in valid], self.server.registered_updates(rnd))
        for r, why in ignored:
            log(WARNING, "round %d: ignoring a reply%s: %s", rnd, f" from node {r.node_id}" if r else "", why)
        rep = self.server.run_round(rnd)  # waits for the registration period, then publishes
        self.server.wait_round_settled(rnd)
        self.rounds.append(rep)
        w_next = self.server.global_model(rnd + 1)
        metrics = MetricRecord({"registered-replies": len(ok), "ignored-replies": len(ignored),
                                "failed-replies": len(errors), "registered": len(rep.registered_now) + len(rep.already_registered),
                                "val-accuracy-before": float(rep.val_accuracy)})
        log(INFO, "FedCoin round %d settled: %d registered repl(ies) aggregated, %d ignored, %d failed", rnd, len(ok),
                 len(ignored), len(errors))
        return to_record(w_next), metrics
