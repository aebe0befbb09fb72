"""FLChain's trainer requirement as an update check: ``unregistered-trainer``.

A FedCoin task's requester may require, on FLChain (``contracts/FLChain.sol``), that its clients
be registered trainers who froze a deposit for it (``requireTrainers``; trainers then ``join``).
The contract relies on one rule, which the server applies and every miner re-checks before it
commits, like every other check of :mod:`fedcoin.content.checks`:

    when ``requiredDeposit(taskId) != 0``, the update of a client that had not joined the task
    when it registered — ``joinedAt(taskId, client) == 0`` or ``joinedAt > `` the block number
    of its ``UpdateRegistered`` event — is excluded with reason ``unregistered-trainer``.

The verdict is deterministic: ``requiredDeposit`` can only be set while the task is still
``Created`` (before any registration exists), ``joinedAt`` is written once and never changes,
and the registration's block number is in its event. A client that joins after registering has
``joinedAt`` > that block for ever, so every miner that reads FLChain at any later time reaches
the same verdict. It costs one ``eth_call`` for the requirement and one ``joinedAt`` per
registered client; with no requirement (or no FLChain), nothing more is read.

The check runs first, before a blob is fetched (an unjoined client's bytes are never looked at),
so its verdict takes precedence over every other reason, ``unavailable`` included.

Which FLChain: the one serving the task's FedCoin (its immutable ``fedcoin()`` must be that
FedCoin's address). The server (``fedcoin server --flchain``) and the miners (``fedcoin mine
--flchain``) default to the FLChain recorded for the chain (``deployed_address(chain_id,
"FLChain")``) when it serves their FedCoin, and to no FLChain otherwise; the reader and that
resolution are in :mod:`fedcoin.flchain.binding` (this module reads no chain itself: it takes
any object with ``required_deposit(task)``, ``joined_at(task, client)`` and ``address``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

#: The exclusion reason of this check.
REASON = "unregistered-trainer"


@dataclass
class TrainerGate:
    """A task's trainer requirement, read from FLChain once per round's check.

    Attributes:
        task_id: the FedCoin task.
        required_deposit: FLChain's ``requiredDeposit(task_id)`` (> 0: a gate exists only then).
        joined_at: ``client -> FLChain.joinedAt(task_id, client)`` (block number, 0: never).
        flchain: the FLChain address (for messages).
    """

    task_id: int
    required_deposit: int
    joined_at: Callable[[str], int]
    flchain: str = ""
    _cache: dict = field(default_factory=dict, repr=False)

    def joined(self, client: str) -> int:
        """``joinedAt`` of ``client`` (one eth_call per client per gate)."""
        key = client.lower()
        if key not in self._cache:
            self._cache[key] = int(self.joined_at(client))
        return self._cache[key]

    def verdict(self, client: str, block: int) -> tuple[str, str] | None:
        """``(REASON, detail)`` when the update of ``client`` registered at ``block`` is excluded."""
        if int(block) <= 0:
            raise ValueError(f"the trainer check needs the block of {client}'s UpdateRegistered event")
        j = self.joined(client)
        if j == 0:
            return REASON, (f"{client} has not joined task {self.task_id} on FLChain {self.flchain} "
                            f"(it requires a frozen deposit of {self.required_deposit} wei)")
        if j > int(block):
            return REASON, (f"{client} joined task {self.task_id} at block {j}, after registering this "
                            f"update at block {block}")
        return None


def trainer_gate(flc, task_id: int) -> TrainerGate | None:
    """The task's gate from FLChain ``flc`` (None when ``flc`` is None or the task has no requirement).

    ``flc``: :class:`fedcoin.flchain.binding.FLChain` (or any object with its three views)."""
    if flc is None:
        return None
    need = int(flc.required_deposit(task_id))
    if need == 0:
        return None
    return TrainerGate(int(task_id), need, lambda c: flc.joined_at(task_id, c), flc.address)
