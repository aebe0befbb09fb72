"""ABI plumbing shared by the binding's parts: value normalisation, canonical types, selectors."""

from __future__ import annotations

from typing import Any

from eth_utils import function_abi_to_4byte_selector, to_checksum_address
from hexbytes import HexBytes


def normalize(v: Any) -> Any:
    """Decoded ABI value -> plain Python: bytes as ``bytes``, addresses checksummed, lists kept."""
    if isinstance(v, (bytes, HexBytes)):
        return bytes(v)
    if isinstance(v, str) and v.startswith("0x") and len(v) == 42:
        return to_checksum_address(v)
    if isinstance(v, (list, tuple)):
        return type(v)(normalize(x) for x in v) if isinstance(v, tuple) else [normalize(x) for x in v]
    return v



def canonical_type(inp: dict) -> str:
    """The canonical type string of an ABI input (tuples expanded), as event signatures use it."""
    t = inp["type"]
    if t.startswith("tuple"):
        inner = ",".join(canonical_type(c) for c in inp["components"])
        return f"({inner}){t[5:]}"
    return t



def selector(abi_item: dict) -> bytes:
    """The 4-byte selector of a function ABI entry."""
    return function_abi_to_4byte_selector(abi_item)
