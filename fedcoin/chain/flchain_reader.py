"""The FLChain views the trainer check reads (``requiredDeposit``, ``joinedAt``, ``fedcoin``),
and which FLChain a server or miner reads them from.

A read-only binding on the chain floor, so that miners and the FL server can apply FLChain's
trainer requirement (:mod:`fedcoin.content.trainer_gate`) without the full FLChain binding
(:mod:`fedcoin.flchain.binding`); it reads the same shipped artifact.
"""

from __future__ import annotations

from typing import Callable

from eth_utils import to_checksum_address

from fedcoin.chain.artifact import code_matches
from fedcoin.chain.binding import ContractBinding


class TrainerGateError(ValueError):
    """The FLChain named for the trainer check is unusable (no code, not FLChain, serves another FedCoin)."""


class FLChainReader(ContractBinding):
    """The three FLChain views the trainer check needs (read-only)."""

    ARTIFACT = "FLChain"

    def required_deposit(self, task_id: int) -> int:
        return self._call("requiredDeposit", task_id)

    def joined_at(self, task_id: int, trainer: str) -> int:
        return self._call("joinedAt", task_id, to_checksum_address(trainer))

    def fedcoin_address(self) -> str:
        return to_checksum_address(self._call("fedcoin"))


def flchain_reader(fc, address: str) -> FLChainReader:
    """A read-only FLChain at ``address`` on ``fc``'s chain, checked to be the shipped FLChain
    serving ``fc`` (so no other contract decides which updates are excluded).

    Raises:
        TrainerGateError: not an address, no code, not FLChain's code, or another FedCoin's FLChain.
    """
    try:
        address = to_checksum_address(address)
    except (ValueError, TypeError):
        raise TrainerGateError(f"{address!r} is not an FLChain address") from None
    code = fc.tx.rpc(lambda: fc.w3.eth.get_code(address), "eth_getCode")
    if not code:
        raise TrainerGateError(f"no contract code at {address} (wrong FLChain address or chain?)")
    if not code_matches("FLChain", bytes(code)):
        raise TrainerGateError(f"the contract at {address} is not this version of FLChain")
    flc = FLChainReader(fc.w3, address)
    serves = flc.fedcoin_address()
    if serves != to_checksum_address(fc.address):
        raise TrainerGateError(f"the FLChain at {address} serves FedCoin {serves}, not {fc.address}")
    return flc


def resolve_flchain(fc, address: str | None = None, *, off: bool = False,
                    log: Callable[[str], None] | None = None) -> FLChainReader | None:
    """The FLChain a server or miner checks trainers against (None: no check).

    ``off``: none. ``address``: that one, strictly (:func:`flchain_reader` errors propagate).
    Otherwise the FLChain recorded for the chain when one is recorded and serves ``fc``; a
    recorded one that does not (a stale record, another FedCoin's) is skipped with a ``log`` line.

    Raises:
        TrainerGateError: ``address`` is given and unusable.
    """
    if off:
        return None
    if address:
        return flchain_reader(fc, address)
    from fedcoin.chain.deployment import deployed_address

    try:
        recorded = deployed_address(fc.chain_id, "FLChain")
    except LookupError:
        return None
    try:
        return flchain_reader(fc, recorded)
    except TrainerGateError as e:
        if log is not None:
            log(f"the recorded FLChain is not used for the trainer check: {e}")
        return None
