"""Deploying with brownie from Python: point a brownie network at an RPC URL and run
``brownie run deploy`` against it.

* :func:`ensure_brownie_network` — idempotently points a live brownie network (default
  ``fedcoin-local``) at an RPC URL by editing ``~/.brownie/network-config.yaml`` (brownie 1.22
  crashes on network settings in a project's brownie-config, so they cannot live there);
* :func:`brownie_deploy` — runs ``brownie run deploy --network NAME`` and returns the address
  it recorded (:mod:`fedcoin.chain.deployment`).

Both hold an exclusive file lock while the network entry is rewritten and used, so two
demos or tests on one machine never deploy to each other's Anvil.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import subprocess
import sys
from pathlib import Path

from fedcoin.chain.deployment import deployed_address
from fedcoin.dev.toolchain import ROOT, solcx_dir

NETWORK_ID = "fedcoin-local"
from fedcoin.protocol.constants import ANVIL_CHAIN_ID


def brownie_exe() -> str:
    """The brownie console script next to this interpreter (or on PATH)."""
    local = Path(sys.executable).with_name("brownie")
    return str(local) if local.exists() else "brownie"


def brownie_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("SOLCX_BINARY_PATH", str(solcx_dir()))
    env["PATH"] = os.pathsep.join([str(ROOT / "node_modules" / ".bin"), str(Path(sys.executable).parent), env.get("PATH", "")])
    return env


@contextlib.contextmanager
def brownie_lock():
    """Exclusive lock on the brownie network entry (``~/.brownie/fedcoin-network.lock``,
    next to the config it protects, whatever ``FEDCOIN_HOME`` is)."""
    path = Path.home() / ".brownie" / "fedcoin-network.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def ensure_brownie_network(url: str, network_id: str = NETWORK_ID, chain_id: int = ANVIL_CHAIN_ID) -> Path:
    """Add or update the live network ``network_id`` -> ``url`` in brownie's network config."""
    import yaml

    cfg_path = Path.home() / ".brownie" / "network-config.yaml"
    if not cfg_path.exists():  # brownie writes its default config on first use
        subprocess.run([brownie_exe(), "networks", "list"], env=brownie_env(), cwd=ROOT,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False, timeout=300)
    cfg = yaml.safe_load(cfg_path.read_text()) if cfg_path.exists() else {}
    cfg = cfg or {}
    live = cfg.setdefault("live", [])
    env = next((e for e in live if e.get("name") == "FedCoin"), None)
    if env is None:
        env = {"name": "FedCoin", "networks": []}
        live.append(env)
    entry = {"name": "FedCoin local Anvil", "id": network_id, "host": url, "chainid": chain_id}
    nets = [n for n in env.setdefault("networks", []) if n.get("id") != network_id]
    # an id must be unique across environments
    for e in live:
        e["networks"] = [n for n in e.get("networks", []) if n.get("id") != network_id]
    env["networks"] = nets + [entry]
    cfg_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = cfg_path.with_suffix(".yaml.tmp")
    tmp.write_text(yaml.safe_dump(cfg, sort_keys=False))
    os.replace(tmp, cfg_path)
    return cfg_path


def forget_brownie_deployments(chain_id: int) -> None:
    """Drop brownie's own record of deployments on ``chain_id`` (``build/deployments``).

    brownie reloads that record whenever it connects to a live network and aborts when a
    contract is missing, which is always the case on a fresh Anvil. Our record of addresses is
    :mod:`fedcoin.chain.deployment`; brownie's is a cache, cleared only for Anvil's chain id.
    """
    import json
    import shutil

    root = ROOT / "build" / "deployments"
    shutil.rmtree(root / str(chain_id), ignore_errors=True)
    map_path = root / "map.json"
    if map_path.exists():
        data = json.loads(map_path.read_text() or "{}")
        if data.pop(str(chain_id), None) is not None:
            map_path.write_text(json.dumps(data, indent=2, sort_keys=True))


def brownie_deploy(url: str, *, network_id: str = NETWORK_ID, timeout: float = 900) -> str:
    """``brownie run deploy --network network_id`` against ``url``; return the recorded address."""
    from fedcoin.chain import connect

    chain_id = connect(url).eth.chain_id
    with brownie_lock():
        ensure_brownie_network(url, network_id, chain_id)
        if chain_id == ANVIL_CHAIN_ID:
            forget_brownie_deployments(chain_id)
        proc = subprocess.run(
            [brownie_exe(), "run", "deploy", "--network", network_id], cwd=ROOT, env=brownie_env(),
            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout,
        )
    if proc.returncode != 0:
        raise RuntimeError(f"brownie run deploy failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return deployed_address(chain_id)
