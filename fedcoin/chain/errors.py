"""The chain binding's errors, and the decoder that turns revert data into them.

Reverts — whether caught while estimating gas or from a mined failed transaction — raise
:class:`ContractRevert` carrying the custom error's name and decoded arguments::

    try:
        fc.register_update(task_id, 0, h, "cid", 100)
    except ContractRevert as e:
        assert e.name == "FedCoinNotListedClient" and e.args_ == (client,)
"""

from __future__ import annotations

from typing import Any, Sequence

from eth_abi import decode as abi_decode
from eth_utils import keccak
from web3.exceptions import ContractLogicError, Web3RPCError

from fedcoin.chain.abi import normalize


class ChainError(RuntimeError):
    """Base class of this module's errors."""


class RPCUnavailable(ChainError, ConnectionError):
    """The JSON-RPC endpoint cannot be reached (after retries)."""


class ContractRevert(ChainError):
    """A call or transaction reverted.

    Attributes:
        name: the custom error's name (``"FedCoinNotListedClient"``), ``"Error"`` for
            ``Error(string)``, ``"Panic"`` for ``Panic(uint256)``, or ``"Unknown"``.
        args_: the decoded arguments as a tuple (addresses checksummed, bytes as ``bytes``).
        data: the raw revert data.
        receipt: the failed transaction's receipt when it was mined, else None.
    """

    def __init__(self, name: str, args_: tuple, data: bytes, receipt: Any = None, function: str = ""):
        self.name = name
        self.args_ = tuple(args_)
        self.data = bytes(data)
        self.receipt = receipt
        self.function = function
        where = f" in {function}" if function else ""
        super().__init__(f"{name}{self.args_!r}{where}")


class TransactionTimeout(ChainError, TimeoutError):
    """A sent transaction was not mined in time (it may still be mined later)."""


class ErrorDecoder:
    """Turns revert data into (name, args) using an ABI's ``error`` entries."""

    def __init__(self, abi: Sequence[dict]):
        self._by_selector: dict[bytes, tuple[str, list[str]]] = {
            bytes.fromhex("08c379a0"): ("Error", ["string"]),
            bytes.fromhex("4e487b71"): ("Panic", ["uint256"]),
        }
        for item in abi:
            if item.get("type") == "error":
                types = [i["type"] for i in item["inputs"]]
                sig = f"{item['name']}({','.join(types)})"
                self._by_selector[keccak(text=sig)[:4]] = (item["name"], types)

    def decode(self, data: bytes) -> tuple[str, tuple]:
        data = bytes(data)
        if len(data) < 4 or data[:4] not in self._by_selector:
            return "Unknown", (data,)
        name, types = self._by_selector[data[:4]]
        try:
            args = abi_decode(types, data[4:])
        except Exception:  # noqa: BLE001 - malformed data is reported raw
            return name, (data[4:],)
        return name, tuple(normalize(a) for a in args)

    def from_exception(self, e: BaseException, function: str = "", receipt: Any = None) -> ContractRevert | None:
        data = _revert_data(e)
        if data is None:
            return None
        name, args = self.decode(data)
        return ContractRevert(name, args, data, receipt=receipt, function=function)


def _revert_data(e: BaseException) -> bytes | None:
    raw = getattr(e, "data", None)
    if isinstance(raw, dict):
        raw = raw.get("data")
    if raw is None and isinstance(e, Web3RPCError):
        resp = getattr(e, "rpc_response", None) or {}
        raw = (resp.get("error") or {}).get("data")
        if isinstance(raw, dict):
            raw = raw.get("data")
    if raw is None and isinstance(e, ContractLogicError):
        return b""
    if isinstance(raw, str):
        if raw.startswith("Reverted "):
            raw = raw[len("Reverted "):]
        try:
            return bytes.fromhex(raw[2:] if raw.startswith("0x") else raw)
        except ValueError:
            return None
    if isinstance(raw, (bytes, bytearray)):
        return bytes(raw)
    return None
