"""Helpers shared by the contract tests: compiled test contracts, time travel, snapshots,
a ready task, and a full-state fingerprint for "a rejection changes nothing" checks."""

from __future__ import annotations

import functools
import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path

from eth_account import Account
from web3 import Web3

from fedcoin.protocol import fixedpoint as fp
from fedcoin.chain import FedCoin, connect
from fedcoin.chain.deployment import DeployParams
from fedcoin.chain.errors import ErrorDecoder
from fedcoin.chain.rpc import Transactor
from fedcoin.dev.devnet import dev_private_keys

ETH = 10**18


@functools.lru_cache(maxsize=1)
def compiled() -> dict:
    """Every contract under contracts/ (test contracts included), compiled once per process."""
    from fedcoin.dev.build import compile_contracts

    return compile_contracts()


@functools.lru_cache(maxsize=1)
def dev_accounts(n: int = 40) -> list:
    return [Account.from_key(k) for k in dev_private_keys(n)]


def w3_for(anvil) -> Web3:
    return connect(anvil.url)


def deploy_test_contract(w3: Web3, account, name: str, *args):
    """Deploy a contracts/test/ contract; return a web3 contract object."""
    art = compiled()[name]
    data = w3.eth.contract(abi=art["abi"], bytecode=art["bytecode"]).constructor(*args)._build_transaction(
        {"from": account.address})["data"]
    res = Transactor(w3, account, ErrorDecoder(art["abi"])).send({"data": data}, f"deploy {name}", to=None)
    return w3.eth.contract(address=res.receipt["contractAddress"], abi=art["abi"])


def send_contract_tx(fc: FedCoin, fn, value: int = 0):
    """Send a call to a test contract's function ``fn`` (bound web3 function) signed by fc.account."""
    data = fn._encode_transaction_data()
    return fc.tx.send({"data": data, "value": value}, fn.fn_name, to=fn.address)


def advance(w3: Web3, seconds: int) -> None:
    w3.provider.make_request("evm_increaseTime", [int(seconds)])
    w3.provider.make_request("evm_mine", [])


def snapshot(w3: Web3) -> str:
    return w3.provider.make_request("evm_snapshot", [])["result"]


def revert(w3: Web3, snap: str) -> None:
    assert w3.provider.make_request("evm_revert", [snap])["result"] is True


@dataclass
class Actors:
    requester: object
    server: object
    clients: list
    miners: list
    outsider: object


def actors(n_clients: int = 3, n_miners: int = 3) -> Actors:
    acc = dev_accounts()
    return Actors(acc[0], acc[1], acc[2:2 + n_clients], acc[20:20 + n_miners], acc[39])


def fingerprint(fc: FedCoin, addresses, task_ids=(), rounds=((),)) -> dict:
    """Everything a rejected call must leave unchanged."""
    out = {
        "balance": fc.balance(), "totals": fc.totals(),
        "taskCount": fc.task_count(), "blockCount": fc.block_count(),
        "eth": {a: fc.w3.eth.get_balance(a) for a in addresses},
        "credits": {a: fc.credits(a) for a in addresses},
    }
    for t in task_ids:
        out[f"task{t}"] = fc.get_task(t)
        info = out[f"task{t}"]
        for r in range(info.rounds):
            out[f"task{t}r{r}"] = fc.get_round(t, r)
    return out


def vec(xs) -> list[int]:
    return fp.encode_vector(xs)


def default_params(**kw) -> DeployParams:
    base = dict(min_bond=10**16, max_iterations=1000, target_block_time=600)
    base.update(kw)
    return DeployParams(**base)


#: The contract tests' task parameters: absolute D = 0.1 (p = 2) and short windows, so that the
#: hand-made vectors below have a known geometry; registration 100 s, commit 100 s, reveal 100 s.
TEST_TASK = dict(difficulty=10**17, p=2, relative=False, registration_window=100, commit_window=100,
                 reveal_window=100, claim_window=86400)


def load_script(name: str):
    """Import ``scripts/<name>.py`` as a module (registered in ``sys.modules``, which its
    dataclasses need), so a test can call its functions and ``main``."""
    path = Path(__file__).resolve().parents[1] / "scripts" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"_script_{name}", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod
