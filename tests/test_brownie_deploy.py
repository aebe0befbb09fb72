"""The brownie layer: `brownie run deploy` against an Anvil subprocess (the `make demo` path),
recording the address where fedcoin.chain.deployment reads it, and `fedcoin deploy` with a key from
the environment."""

from __future__ import annotations

import os
import subprocess
import sys

from fedcoin.chain import FedCoin, connect
from fedcoin.chain.deployment import DeployParams, deployed_address
from fedcoin.dev.devnet import Anvil, dev_private_keys
from fedcoin.dev.toolchain import ROOT


def test_brownie_run_deploy_records_a_working_contract(tmp_path, monkeypatch):
    monkeypatch.setenv("FEDCOIN_HOME", str(tmp_path))
    from fedcoin.dev.brownie_net import brownie_deploy

    with Anvil(accounts=2) as node:
        address = brownie_deploy(node.url)
        assert address == deployed_address(31337)
        fc = FedCoin(connect(node.url), address)
        assert fc.params() == DeployParams()
        assert (tmp_path / "deployments" / "31337.json").exists()


def test_fedcoin_deploy_cli_takes_the_key_from_the_environment(tmp_path):
    env = dict(os.environ, FEDCOIN_HOME=str(tmp_path), FEDCOIN_PRIVATE_KEY=dev_private_keys(1)[0])
    with Anvil(accounts=1) as node:
        proc = subprocess.run([sys.executable, "-m", "fedcoin.cli", "deploy", "--rpc", node.url, "--max-iterations", "777"],
                              cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
        assert proc.returncode == 0, proc.stderr
        address = proc.stdout.split("FedCoin deployed at ")[1].split()[0]
        fc = FedCoin(connect(node.url), address)
        assert fc.max_iterations() == 777 and fc.min_bond() == DeployParams().min_bond
        assert address in (tmp_path / "deployments" / "31337.json").read_text()


def test_fedcoin_deploy_reports_an_unreachable_rpc(tmp_path):
    env = dict(os.environ, FEDCOIN_HOME=str(tmp_path), FEDCOIN_PRIVATE_KEY=dev_private_keys(1)[0])
    from fedcoin.dev.devnet import free_port

    proc = subprocess.run([sys.executable, "-m", "fedcoin.cli", "deploy", "--rpc", f"http://127.0.0.1:{free_port()}"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    assert proc.returncode == 1 and "cannot reach the Ethereum RPC" in proc.stderr
