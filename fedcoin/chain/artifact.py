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
