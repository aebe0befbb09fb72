"""Where the project's external tools live, and how the offline Solidity compiler is installed.

The Solidity compiler is solcjs (the npm ``solc`` package) behind ``tools/solc-launcher.cjs``,
which gives it native solc's ``--version`` / ``--standard-json`` surface. The launcher is
installed as ``$SOLCX_BINARY_PATH/solc-v<SOLC_VERSION>`` so that py-solc-x, ``brownie compile``
and slither all find it. A native ``solc`` of the pinned version on ``PATH`` is preferred.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

#: The one Solidity version the project compiles with (also pinned in package.json).
SOLC_VERSION = "0.8.28"

ROOT = Path(__file__).resolve().parents[2]


class ToolchainError(RuntimeError):
    """A required external tool is missing; the message says how to install it."""


def solcx_dir() -> Path:
    """The folder py-solc-x searches for ``solc-v<version>`` (``$SOLCX_BINARY_PATH``)."""
    env = os.environ.get("SOLCX_BINARY_PATH")
    return Path(env) if env else ROOT / ".solcx"


def _native_solc() -> str | None:
    exe = shutil.which("solc")
    if not exe:
        return None
    try:
        out = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    m = re.search(r"Version: (\d+\.\d+\.\d+)", out)
    return exe if m and m.group(1) == SOLC_VERSION else None


def install_solc_launcher() -> Path:
    """Install (idempotently) the compiler where py-solc-x looks, and return its path."""
    target_dir = solcx_dir()
    target_dir.mkdir(parents=True, exist_ok=True)
    target = target_dir / f"solc-v{SOLC_VERSION}"
    native = _native_solc()
    if native:
        body = f'#!/bin/sh\nexec "{native}" "$@"\n'
    else:
        launcher = ROOT / "tools" / "solc-launcher.cjs"
        module = ROOT / "node_modules" / "solc"
        if not module.is_dir():
            raise ToolchainError(f"solcjs is not installed at {module}: run `npm ci` in {ROOT}")
        body = f'#!/bin/sh\nexec node "{launcher}" "$@"\n'
    if not target.exists() or target.read_text() != body:
        target.write_text(body)
        target.chmod(0o755)
    return target


def solc_path() -> Path:
    """Path of the installed compiler launcher (installing it if needed)."""
    os.environ.setdefault("SOLCX_BINARY_PATH", str(solcx_dir()))
    return install_solc_launcher()


def anvil_path() -> str:
    """Path of the Anvil binary: ``$FEDCOIN_ANVIL``, the npm package's, or one on ``PATH``."""
    env = os.environ.get("FEDCOIN_ANVIL")
    if env:
        return env
    local = ROOT / "node_modules" / ".bin" / "anvil"
    if local.exists():
        return str(local)
    found = shutil.which("anvil")
    if found:
        return found
    raise ToolchainError("anvil not found: run `npm ci` (package @foundry-rs/anvil) or set FEDCOIN_ANVIL")


def install_user_default(target: Path) -> Path | None:
    """Also offer the compiler at py-solc-x's default folder (``~/.solcx``), so ``brownie run``
    and ``brownie compile`` find it outside ``make`` without ``$SOLCX_BINARY_PATH``. A file
    already there (a real solc, or ours) is left alone. Returns the link made, if any."""
    default = Path.home() / ".solcx" / target.name
    if default.exists() or default.is_symlink() or default.resolve() == target.resolve():
        return None
    try:
        default.parent.mkdir(parents=True, exist_ok=True)
        default.symlink_to(target)
    except OSError:
        return None
    return default


if __name__ == "__main__":  # `python -m fedcoin.dev.toolchain` installs the launcher
    installed = install_solc_launcher()
    print(installed)
    linked = install_user_default(installed)
    if linked:
        print(f"{linked} -> {installed} (py-solc-x's default folder, for brownie outside make)")
