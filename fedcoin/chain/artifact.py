"""The contract artifacts (ABI + bytecode) shipped inside the package.

A miner or server installed with pip reads them from here, so it needs neither Node nor a
compiler; :mod:`fedcoin.dev.build` writes them and ``tests/test_artifacts.py`` fails when they
drift from a fresh compile of ``contracts/``.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

ARTIFACTS_DIR = Path(__file__).resolve().parent.parent / "artifacts"


@lru_cache(maxsize=None)
def _read(path: Path) -> str:
    return path.read_text()


def load_artifact(name: str) -> dict:
    """The shipped artifact of contract ``name``: ``{"abi": [...], "bytecode": "0x...", ...}``."""
    path = ARTIFACTS_DIR / f"{name}.json"
    if not path.exists():
        raise FileNotFoundError(f"no shipped artifact {path}; run `make artifacts` (python -m fedcoin.dev.build)")
    return json.loads(_read(path))


def code_matches(name: str, code: bytes) -> bool:
    """True when ``code`` (``eth_getCode``) is the shipped runtime code of contract ``name``,
    ignoring the bytes the constructor fills in (its immutables) and the metadata hash.

    This is how a CLI makes sure an address holds *this* FedCoin before it sends value to it:
    an address with other code that happens to accept ether fails the check.
    """
    art = load_artifact(name)
    want = bytearray.fromhex(art["deployedBytecode"][2:])
    got = bytearray(code)
    if len(got) != len(want):
        return False
    for refs in art.get("immutableReferences", {}).values():
        for ref in refs:
            start, length = int(ref["start"]), int(ref["length"])
            want[start:start + length] = bytes(length)
            got[start:start + length] = bytes(length)
    return _strip_metadata(bytes(got)) == _strip_metadata(bytes(want))


def _strip_metadata(code: bytes) -> bytes:
    """Drop solc's CBOR metadata trailer (its last two bytes give its length)."""
    if len(code) < 2:
        return code
    n = int.from_bytes(code[-2:], "big") + 2
    return code[:-n] if n <= len(code) else code
