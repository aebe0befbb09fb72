"""Recompute a task's federation from the chain and compare it with the task's client list.

A task whose requester named a federation request in ``requireTrainers`` claims that its listed
clients are the request's Algorithm 1 allocation. The inputs are all on chain and fixed by then:
every request whose intention deadline had passed at the ``TrainersRequired`` block (a request's
deadline is later than its publication, so no request can join that set afterwards), the
``IntentionPosted`` events up to that block, and each trainer's ``reliability`` *at* that block.
Anyone recomputes :func:`fedcoin.flchain.federation.allocate` over them; ``fedcoin audit`` does.
"""

from __future__ import annotations

from dataclasses import dataclass

from eth_utils import to_checksum_address

from fedcoin.flchain.federation import Intention, allocate


@dataclass(frozen=True)
class FederationCheck:
    """The outcome for one task: its request, the recomputed allocation and the listed clients."""

    task_id: int
    request_id: int
    allocated: tuple[str, ...]
    listed: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return set(self.allocated) == set(self.listed)

    def __str__(self) -> str:
        if self.ok:
            return f"task {self.task_id}: clients = request {self.request_id}'s allocation ({len(self.listed)} trainers)"
        extra = sorted(set(self.listed) - set(self.allocated))
        missing = sorted(set(self.allocated) - set(self.listed))
        return (f"task {self.task_id}: clients differ from request {self.request_id}'s allocation "
                f"(listed but not allocated: {extra}; allocated but not listed: {missing})")


def federation_at(flc, block: int) -> dict[int, list[str]]:
    """The Algorithm 1 allocation over every request closed at ``block``, from the chain."""
    ts = flc.w3.eth.get_block(block)["timestamp"]
    requests = {e.args["requestId"]: e for e in flc.events("RequestPublished", to_block=block)}
    closed = {rid: int(e.args["seats"]) for rid, e in requests.items() if int(e.args["deadline"]) <= ts}
    intents = [Intention(int(e.args["requestId"]), e.args["trainer"], int(e.args["expectedPrice"]),
                         int(e.args["expectedIncome"]), int(e.args["cost"]))
               for e in flc.events("IntentionPosted", to_block=block) if e.args["requestId"] in closed]
    trainers = {i.trainer for i in intents}
    rely = {t: flc.contract.functions.reliability(t).call(block_identifier=block) for t in trainers}
    return allocate(closed, rely, intents)


def check_task(flc, fc, task_id: int) -> FederationCheck | None:
    """The federation check of ``task_id`` (None: the task names no request)."""
    evs = flc.events("TrainersRequired", taskId=task_id)
    if not evs or int(evs[-1].args["request"]) == 0:
        return None
    ev = evs[-1]
    rid = int(ev.args["request"]) - 1
    alloc = federation_at(flc, ev.block_number).get(rid, [])
    return FederationCheck(task_id, rid, tuple(to_checksum_address(t) for t in alloc),
                           tuple(to_checksum_address(c) for c in fc.task_clients(task_id)))


def check_all(flc, fc) -> list[FederationCheck]:
    """The federation check of every task that names a request, in task order."""
    tasks = sorted({int(e.args["taskId"]) for e in flc.events("TrainersRequired")})
    return [c for c in (check_task(flc, fc, t) for t in tasks) if c is not None]
