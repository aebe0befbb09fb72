"""The requester (fedcoin/roles/request.py, scripts/request.py) on a real Anvil: deposits through the
CLI with a key from the environment or a keystore, --follow until the task completes, --status,
`brownie run request`, and rejections that name the problem and move no funds."""

from __future__ import annotations

from fedcoin.chain import ContractRevert

import os
import subprocess
import sys
import threading
import time

import pytest

from fedcoin.roles import request
from fedcoin.chain import FedCoin
from fedcoin.chain.deployment import record_deployment
from fedcoin.dev.devnet import dev_private_keys, free_port
from fedcoin.chain.keys import write_keystore
from fedcoin.dev.toolchain import ROOT
from conftest import chain_env
from fedcoin_testkit import ETH, actors, default_params, revert, snapshot, vec, w3_for
from round_driver import claim_all, finalize, play_round

P = default_params()
KEY_VARS = ("FEDCOIN_PRIVATE_KEY", "FEDCOIN_KEYSTORE", "FEDCOIN_KEYSTORE_PASSWORD")


env = chain_env(n_clients=3, n_miners=2, params=P)


@pytest.fixture(autouse=True)
def no_keys_in_the_environment(monkeypatch, tmp_path):
    for k in KEY_VARS:
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("FEDCOIN_HOME", str(tmp_path))


def requester_env(a) -> dict:
    return dict(os.environ, FEDCOIN_PRIVATE_KEY=a.requester.key.to_0x_hex())


def base_args(anvil, fc, a, **over) -> list[str]:
    args = {"--rpc": anvil.url, "--contract": fc.address, "--server": a.server.address,
            "--clients": ",".join(c.address for c in a.clients), "--value": "1.5ether", "--rounds": "2"}
    args.update(over)
    return [x for k, v in args.items() if v is not None for x in (k, v)]


def test_cli_deposits_v_with_the_key_from_the_environment(env, anvil):
    w3, fc, a = env
    argv = [sys.executable, "-m", "fedcoin.cli", "request", *base_args(anvil, fc, a, **{"--split": "6000,1500,2500"})]
    key = a.requester.key.to_0x_hex()
    assert not any(key[2:] in x for x in argv)  # the key travels in the environment only
    proc = subprocess.run(argv, cwd=ROOT, env=requester_env(a), capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("task 1 created on ")
    t = fc.get_task(1)
    assert (t.requester, t.server, t.budget, t.rounds) == (a.requester.address, a.server.address, 3 * ETH // 2, 2)
    assert (t.train_bps, t.com_bps, t.sap_bps) == (6000, 1500, 2500)
    assert fc.task_clients(1) == sorted((c.address for c in a.clients), key=lambda x: int(x, 16))
    assert fc.balance() == 3 * ETH // 2


def test_payment_rule_and_cap_reach_the_chain(env, anvil, monkeypatch, capsys):
    w3, fc, a = env
    monkeypatch.setenv("FEDCOIN_PRIVATE_KEY", a.requester.key.to_0x_hex())
    rc = request.main(base_args(anvil, fc, a, **{"--payment": "data-cost-gated", "--max-data-cost": "500"}))
    out = capsys.readouterr().out
    assert rc == 0 and "payment data-cost-gated, n_k capped at 500" in out, out
    t = fc.get_task(1)
    assert (fc.payment_rule(1), t.max_data_cost) == ("data-cost-gated", 500)
    assert fc.task_configured_events(1)[0]["maxDataCost"] == 500


def test_keystore_file_signs_the_deposit(env, anvil, tmp_path, monkeypatch, capsys):
    w3, fc, a = env
    path = write_keystore(a.requester, tmp_path / "requester.json", "correct horse")
    monkeypatch.setenv("FEDCOIN_KEYSTORE_PASSWORD", "correct horse")
    clients = tmp_path / "clients.txt"
    clients.write_text("# listed clients\n" + "\n".join(c.address.lower() for c in a.clients) + "\n")
    rc = request.main(["--keystore", str(path), *base_args(anvil, fc, a, **{"--clients": f"@{clients}",
                                                                           "--value": "2500000000000000000"})])
    assert rc == 0, capsys.readouterr().err
    assert fc.get_task(1).requester == a.requester.address and fc.get_task(1).budget == 25 * ETH // 10
    monkeypatch.setenv("FEDCOIN_KEYSTORE_PASSWORD", "wrong")
    assert request.main(["--keystore", str(path), *base_args(anvil, fc, a)]) == 2
    assert "wrong password" in capsys.readouterr().err and fc.task_count() == 1


def _bad_checksum(addr: str) -> str:
    i = next(i for i, ch in enumerate(addr) if ch.isalpha() and i > 1)
    return addr[:i] + addr[i].swapcase() + addr[i + 1:]


REJECTIONS = {
    "malformed server": (lambda a, u: {"--server": "0x1234"}, "is not an address"),
    "bad checksum": (lambda a, u: {"--server": _bad_checksum(a.server.address)}, "bad EIP-55 checksum"),
    "zero server": (lambda a, u: {"--server": "0x" + "00" * 20}, "zero address"),
    "split not 10000": (lambda a, u: {"--split": "7000,1000,1999"}, "sum to 9999, they must sum to 10000"),
    "split not three": (lambda a, u: {"--split": "7000,3000"}, "expected three"),
    "requester as client": (lambda a, u: {"--clients": f"{a.clients[0].address},{a.requester.address}"},
                            "requester 0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266 is listed as a client"),
    "server as client": (lambda a, u: {"--clients": a.server.address}, "also listed as a client"),
    "duplicate client": (lambda a, u: {"--clients": f"{a.clients[0].address},{a.clients[0].address.lower()}"},
                         "listed twice"),
    "zero value": (lambda a, u: {"--value": "0"}, "must be positive"),
    "fractional wei": (lambda a, u: {"--value": "0.5wei"}, "not a whole number of wei"),
    "unknown unit": (lambda a, u: {"--value": "3bitcoin"}, "unknown unit"),
    "zero rounds": (lambda a, u: {"--rounds": "0"}, "between 1 and 1000"),
    "more than the balance": (lambda a, u: {"--value": "1000000ether"}, "less than V="),
    "unreachable rpc": (lambda a, u: {"--rpc": u}, "cannot reach the Ethereum RPC at http://127.0.0.1:"),
    "no contract": (lambda a, u: {"--contract": "0x" + "ab" * 20}, "no contract code at"),
    "no deployment record": (lambda a, u: {"--contract": None}, "no FedCoin deployment recorded for chain 31337"),
    "missing clients": (lambda a, u: {"--clients": None}, "missing --clients"),
    "zero data-cost cap": (lambda a, u: {"--max-data-cost": "0"}, "--max-data-cost 0: must be between 1 and"),
    "data-cost cap not an integer": (lambda a, u: {"--max-data-cost": "lots"}, "must be an integer"),
    "data-cost cap above 2^64": (lambda a, u: {"--max-data-cost": str(2**64)}, "must be between 1 and"),
}


@pytest.mark.parametrize("name", REJECTIONS)
def test_bad_request_is_rejected_with_a_clear_message_and_moves_nothing(env, anvil, monkeypatch, capsys, name):
    w3, fc, a = env
    monkeypatch.setenv("FEDCOIN_PRIVATE_KEY", a.requester.key.to_0x_hex())
    dead = f"http://127.0.0.1:{free_port()}"
    over, message = REJECTIONS[name]
    before = (w3.eth.get_balance(a.requester.address), w3.eth.get_transaction_count(a.requester.address),
              fc.task_count(), fc.balance())
    rc = request.main(base_args(anvil, fc, a, **over(a, dead)))
    err = capsys.readouterr().err
    assert rc == 2 and message in err, err
    assert err.startswith("fedcoin request: ") and len(err.strip().splitlines()) == 1
    if name == "unreachable rpc":
        assert dead in err
    assert (w3.eth.get_balance(a.requester.address), w3.eth.get_transaction_count(a.requester.address),
            fc.task_count(), fc.balance()) == before


def test_request_to_a_contract_that_is_not_fedcoin_sends_nothing(env, anvil, monkeypatch, capsys):
    """An address holding other code that accepts ether (here a ReentrantActor, which has a
    payable receive) is refused before any transaction: V stays with the requester."""
    from fedcoin_testkit import deploy_test_contract

    w3, fc, a = env
    other = deploy_test_contract(w3, a.outsider, "ReentrantActor", fc.address)
    monkeypatch.setenv("FEDCOIN_PRIVATE_KEY", a.requester.key.to_0x_hex())
    before = (w3.eth.get_balance(a.requester.address), w3.eth.get_transaction_count(a.requester.address),
              w3.eth.get_balance(other.address))
    rc = request.main(base_args(anvil, fc, a, **{"--contract": other.address}))
    err = capsys.readouterr().err
    assert rc == 2 and "is not this version of FedCoin" in err and "nothing was sent" in err, err
    assert (w3.eth.get_balance(a.requester.address), w3.eth.get_transaction_count(a.requester.address),
            w3.eth.get_balance(other.address)) == before


def test_missing_key_is_rejected(env, anvil, capsys):
    _, fc, a = env
    assert request.main(base_args(anvil, fc, a)) == 2
    assert "no signing key" in capsys.readouterr().err and fc.task_count() == 0


def test_follow_waits_for_the_task_and_prints_where_every_wei_went(env, anvil):
    w3, fc, a = env
    record_deployment(31337, fc.address)  # --contract defaults to the recorded deployment
    argv = [sys.executable, "-m", "fedcoin.cli", "request",
            *base_args(anvil, fc, a, **{"--contract": None, "--rounds": "1", "--value": "1ether"}),
            "--follow", "--poll", "0.2", "--timeout", "90"]
    proc = subprocess.Popen(argv, cwd=ROOT, env=requester_env(a), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, stdin=subprocess.DEVNULL)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(ln.rstrip("\n") for ln in proc.stdout), daemon=True)

    def wait_for(*texts: str) -> None:
        deadline = time.monotonic() + 60
        while not any(text in ln for ln in lines for text in texts):
            assert proc.poll() is None and time.monotonic() < deadline, (lines, proc.stderr.read())
            time.sleep(0.05)

    try:
        reader.start()
        wait_for("task 1 created")
        fc.as_account(a.server).accept_task(1)
        wait_for("round 1/1 Open")
        play_round(w3, fc, a, 1, 0, [vec([0.3, 0.2, 0.1]), vec([0.3, 0.2, 0.1])], [10, 10])
        # nobody finalizes: the follower sees the reveal deadline due by the next block's time and
        # settles the round itself, so the task completes without anyone else
        proc.wait(timeout=90)
        reader.join(timeout=10)
        assert any("finalized round 0 (its reveal deadline had passed)" in ln for ln in lines), lines
        claim_all(fc, a, 1, 0)
        reader.join(timeout=10)
        err = proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, (err, lines)
    assert any(ln.startswith("task 1: Completed") for ln in lines)
    from fedcoin.roles.accounting import format_line, task_accounting

    acc = task_accounting(fc, 1)
    assert acc.ok and acc.V == ETH and acc.clients_unclaimed == 0
    assert lines[-1] == format_line(acc) and lines[-1].endswith(" unaccounted=0") and "escrowed" not in lines[-1]


def test_status_prints_the_accounting_of_an_existing_task(env, anvil, capsys):
    w3, fc, a = env
    tid = fc.as_account(a.requester).create_task(a.server.address, [c.address for c in a.clients], 2, ETH).task_id
    assert request.main(["--rpc", anvil.url, "--contract", fc.address, "--status", "--task", str(tid)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[-1] == f"V={ETH} clients=0 server=0 miners=0 refunded=0 escrowed={ETH} unaccounted=0"
    assert request.main(["--rpc", anvil.url, "--contract", fc.address, "--status", "--task", "7"]) == 2
    assert "task 7 does not exist" in capsys.readouterr().err


@pytest.mark.parametrize("key_source", ["env", "anvil-dev-account"])
def test_brownie_run_request_deposits_from_environment_variables(env, anvil, monkeypatch, key_source):
    from eth_account import Account

    from fedcoin.dev.brownie_net import brownie_env, brownie_exe, brownie_lock, ensure_brownie_network

    w3, fc, a = env
    record_deployment(31337, fc.address)
    requester = dev_private_keys(31)[30] if key_source == "env" else dev_private_keys(1)[0]
    if key_source == "env":
        monkeypatch.setenv("FEDCOIN_PRIVATE_KEY", requester)
    for var, val in {"FEDCOIN_SERVER": a.server.address, "FEDCOIN_CLIENTS": ",".join(c.address for c in a.clients),
                     "FEDCOIN_V_WEI": str(ETH + 1), "FEDCOIN_ROUNDS": "3", "FEDCOIN_SPLIT": "7000,1000,2000"}.items():
        monkeypatch.setenv(var, val)
    with brownie_lock():
        ensure_brownie_network(anvil.url, "fedcoin-request-test")
        proc = subprocess.run([brownie_exe(), "run", "request", "--network", "fedcoin-request-test"], cwd=ROOT,
                              env=brownie_env(), capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "task 1 created on " + fc.address in proc.stdout
    address = Account.from_key(requester).address
    assert ("signing with Anvil's development account " + address in proc.stdout) == (key_source != "env")
    t = fc.get_task(1)
    assert t.requester == address and t.budget == ETH + 1 and t.rounds == 3


def test_argv_from_env_maps_every_variable():
    argv = request.argv_from_env({"FEDCOIN_SERVER": "0xS", "FEDCOIN_V_WEI": "5", "FEDCOIN_FOLLOW": "1",
                                  "FEDCOIN_TASK": "3", "FEDCOIN_STATUS": "yes", "FEDCOIN_ROUNDS": ""}, "http://x")
    assert argv == ["--rpc", "http://x", "--server", "0xS", "--value", "5", "--task", "3", "--follow", "--status"]


@pytest.mark.parametrize("text,wei", [("1", 1), ("1.5ether", 15 * 10**17), ("20 gwei", 20 * 10**9), ("0.000000001ETH", 10**9)])
def test_value_units(text, wei):
    assert request.parse_value(text) == wei
