"""The one place deployed addresses and constructor parameters live.

Addresses: ``$FEDCOIN_HOME/deployments/<chainId>.json``. ``FEDCOIN_HOME`` defaults to
``<repo>/.fedcoin`` (gitignored) in a source checkout and to ``~/.fedcoin`` for an installed
package. Every tool (``fedcoin deploy``, ``brownie run deploy``, the demo, miners, the server)
writes and reads addresses through :func:`record_deployment` and :func:`deployed_address`.

File format::

    {"chainId": 31337,
     "contracts": {"FedCoin": {"address": "0x…", "txHash": "0x…", "block": 1,
                               "deployer": "0x…", "params": {…}, "recordedAt": 1700000000}}}

Constructor parameters: :class:`DeployParams` — its defaults are the project's defaults and
both deploy paths use :meth:`DeployParams.as_args`.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from fedcoin.home import fedcoin_home

CONTRACT_NAME = "FedCoin"


@dataclass(frozen=True)
class DeployParams:
    """FedCoin's constructor parameters (defaults are the project defaults).

    D, p, the windows and the claim expiry are per task (:class:`fedcoin.chain.types.TaskConfig`,
    chosen by the requester at createTask); the contract itself only fixes these.

    Attributes:
        min_bond: smallest commit bond, wei (0.01 ether); also the least margin by which a bond
            must exceed the smallest one to displace it from a full attempt.
        max_iterations: the largest iteration count a reveal may record (recorded, never weighted).
        target_block_time: seconds from publication to a complete qualifying set (difficulty target).
    """

    min_bond: int = 10**16
    max_iterations: int = 100_000
    target_block_time: int = 600

    def as_args(self) -> list[int]:
        """Positional constructor arguments, in the Solidity order."""
        return [self.min_bond, self.max_iterations, self.target_block_time]


def deployment_file(chain_id: int) -> Path:
    return fedcoin_home() / "deployments" / f"{int(chain_id)}.json"


def record_deployment(
    chain_id: int, address: str, *, tx_hash: str | None = None, block: int | None = None,
    deployer: str | None = None, params: DeployParams | None = None, name: str = CONTRACT_NAME,
) -> Path:
    """Record (atomically) that ``name`` lives at ``address`` on ``chain_id``; return the file."""
    path = deployment_file(chain_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = load_deployments(chain_id)
    data.setdefault("contracts", {})[name] = {
        "address": address, "txHash": tx_hash, "block": block, "deployer": deployer,
        "params": asdict(params) if params else None, "recordedAt": int(time.time()),
    }
    data["chainId"] = int(chain_id)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=1, sort_keys=True)
        f.write("\n")
    os.replace(tmp, path)
    return path


def load_deployments(chain_id: int) -> dict:
    """The whole record for ``chain_id`` (empty dict when nothing was deployed)."""
    path = deployment_file(chain_id)
    if not path.exists():
        return {}
    return json.loads(path.read_text())


def deployed_address(chain_id: int, name: str = CONTRACT_NAME) -> str:
    """The recorded address of ``name`` on ``chain_id``.

    Raises:
        LookupError: nothing recorded (the message says where it looked and what to run).
    """
    entry = load_deployments(chain_id).get("contracts", {}).get(name)
    if not entry:
        raise LookupError(
            f"no {name} deployment recorded for chain {chain_id} in {deployment_file(chain_id)}; "
            "run `fedcoin deploy --rpc URL` or `brownie run deploy --network NAME`"
        )
    return entry["address"]
