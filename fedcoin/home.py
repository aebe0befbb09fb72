"""Where FedCoin keeps local state on this machine (one place for every role).

``$FEDCOIN_HOME`` if set; else ``<repo>/.fedcoin`` when running from a source checkout
(gitignored); else ``~/.fedcoin``. Below it: ``deployments/<chainId>.json`` (deployed
addresses), ``store/`` (the local content store), ``journal/`` (miner journals), ``cache/``
(the converted MNIST) and ``demo/`` (demo runs).
"""

from __future__ import annotations

import os
from pathlib import Path

_REPO = Path(__file__).resolve().parent.parent


def fedcoin_home() -> Path:
    """The state folder (see the module docstring); not created here."""
    env = os.environ.get("FEDCOIN_HOME")
    if env:
        return Path(env).expanduser()
    if (_REPO / "pyproject.toml").exists() and (_REPO / "contracts").is_dir():
        return _REPO / ".fedcoin"
    return Path.home() / ".fedcoin"
