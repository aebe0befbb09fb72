"""Every party a separate process with its own key, as the README's "separate parties" runs them:
a requester (its own key: `fedcoin request` deposits V, `fedcoin withdraw` collects its refunds), the FL server (``fedcoin server``, no client key),
three data owners (``fedcoin client``, each with its own keystore and its own data folder) and
two miners (``fedcoin mine``), through two rounds to claims and withdrawals on a real Anvil,
with every wei accounted for and the block records audited.

Keys are fresh keystores made with ``fedcoin account new`` (passwords in the environment) and
funded with ``fedcoin account fund`` (two of them; the rest in-process, same function); nothing here uses a development key for a party.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from fedcoin.chain import FedCoin, TaskStatus, connect
from fedcoin.chain.keys import load_account
from fedcoin.dev.devnet import Anvil
from fedcoin.roles.accounting import task_accounting
from fedcoin.roles.accounts import fund
from fedcoin.roles.audit import audit
from fedcoin_testkit import default_params, dev_accounts
from fl_server.data import load_digits
from fl_server.partition import partition

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "correct horse battery staple"
COMMIT, REVEAL, REGISTRATION = 40, 20, 90
MODEL = ["--arch", "logreg-64-10"]
TRAIN = ["--local-steps", "5", "--batch-size", "10", "--lr", "0.5"]


def fedcoin(*args: str, env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fedcoin.cli", *args], env=env or dict(os.environ), cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def keyed(ks: Path) -> dict:
    """The environment of a party whose key is the keystore ``ks`` (never a key in argv)."""
    env = {k: v for k, v in os.environ.items() if k not in ("FEDCOIN_PRIVATE_KEY",)}
    return dict(env, FEDCOIN_KEYSTORE=str(ks), FEDCOIN_KEYSTORE_PASSWORD=PASSWORD, PYTHONUNBUFFERED="1")


def wait_for(pred, timeout: float, what: str):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.3)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@pytest.fixture(scope="module")
def node():
    with Anvil(accounts=2) as a:
        yield a


def test_separate_parties_run_two_rounds_to_claims_and_withdrawals(node, tmp_path):
    t_start = time.time()
    url = node.url
    w3 = connect(url)
    fc = FedCoin.deploy(w3, dev_accounts()[0], default_params())
    base = ["--rpc", url, "--contract", fc.address]

    # accounts: one keystore per party, made and funded through the CLI
    names = ["requester", "server", "miner-0", "miner-1", "client-0", "client-1", "client-2"]
    keys = tmp_path / "keys"
    env_pw = dict(os.environ, FEDCOIN_KEYSTORE_PASSWORD=PASSWORD)
    ks = {}
    for n in names:
        r = fedcoin("account", "new", "--name", n, "--dir", str(keys), env=env_pw)
        assert r.returncode == 0, r.stderr
        address, path = r.stdout.split()
        ks[n] = Path(path)
        assert oct(ks[n].stat().st_mode & 0o777) == "0o600" and address.startswith("0x")
        assert PASSWORD not in r.stdout + r.stderr
        if n in ("requester", "client-0"):  # the CLI path once per kind of party, the rest in-process
            r = fedcoin("account", "fund", "--keystore", path, "--value", "20ether", "--rpc", url)
            assert r.returncode == 0 and "+20000000000000000000 wei" in r.stdout, r.stdout + r.stderr
        else:
            fund(w3, address, 20 * 10**18)
    listing = fedcoin("account", "list", "--dir", str(keys), "--rpc", url).stdout
    assert listing.count("20.000000 ETH") == len(names), listing
    addr = {n: load_account(ks[n], environ={"FEDCOIN_KEYSTORE_PASSWORD": PASSWORD}).address for n in names}
    clients = [n for n in names if n.startswith("client")]

    # each client's own data folder: its share of the digits (an npz, as data owners keep them)
    d = load_digits()
    part = partition(d.train, num_clients=3, samples_per_client=40, num_classes=10, seed=0)
    for k, n in enumerate(clients):
        folder = tmp_path / n
        folder.mkdir()
        c = part.clients[k].data
        np.savez(folder / "data.npz", x_train=c.x, y_train=c.y, x_val=c.x[:5], y_val=c.y[:5],
                 x_test=d.test.x[:20], y_test=d.test.y[:20])

    procs: dict[str, subprocess.Popen] = {}
    logs = tmp_path / "logs"
    logs.mkdir()

    def start(name: str, *args: str) -> subprocess.Popen:
        out = open(logs / f"{name}.log", "w")
        p = subprocess.Popen([sys.executable, "-m", "fedcoin.cli", *args], env=keyed(ks[name]), cwd=ROOT,
                             stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        procs[name] = p
        return p

    def log(name: str) -> str:
        return (logs / f"{name}.log").read_text()

    store = f"local:{tmp_path / 'store'}"  # the shared content store (IPFS in a real deployment)
    t0 = time.time()
    print(f"7 keystores made (and 2 funded) through the CLI in {t0 - t_start:.0f}s")
    try:
        # the requester deposits V from its own key, as a process, with the task's (short) windows
        req = fedcoin("request", *base, "--server", addr["server"], "--clients", ",".join(addr[c] for c in clients),
                      "--value", "3ether", "--rounds", "2", "--registration-window", str(REGISTRATION),
                      "--commit-window", str(COMMIT), "--reveal-window", str(REVEAL), env=keyed(ks["requester"]))
        assert req.returncode == 0, req.stdout + req.stderr
        task = int(re.search(r"task (\d+) created on", req.stdout + req.stderr).group(1))
        t = fc.get_task(task)
        assert (t.requester, t.budget, t.commit_window, t.reveal_window) == (addr["requester"], 3 * 10**18, COMMIT, REVEAL)
        start("server", "server", *base, "--task", str(task), "--store", store, "--data", "digits", *MODEL,
              "--val-size", "200", "--poll", "0.3", "--round-timeout", "300")
        for n in clients:
            start(n, "client", *base, "--task", str(task), "--store", store, "--data",
                  f"npz:{tmp_path / n / 'data.npz'}", *MODEL, *TRAIN, "--poll", "0.5", "--timeout", "400")
        for i in range(2):
            start(f"miner-{i}", "mine", *base, "--task", str(task), "--store", store, "--journal",
                  str(tmp_path / "journal"), "--no-progress", "--poll", "0.3", "--seed", str(i))

        for n in ("server", *clients):
            procs[n].wait(timeout=420)
            assert procs[n].returncode == 0, f"{n}:\n{log(n)}"
        took = time.time() - t0
        assert fc.get_task(task).status == TaskStatus.COMPLETED
        for i in range(2):  # the miners' work is done; stop them before they collect for themselves
            procs[f"miner-{i}"].terminate()
            procs[f"miner-{i}"].wait(timeout=30)

        # every client registered from its own account in both rounds and claimed its payouts itself
        for rnd in (0, 1):
            assert sorted(fc.registered_clients(task, rnd)) == sorted(addr[c] for c in clients)
            assert fc.round_finalized(task, rnd) is not None
        for n in clients:
            text = log(n)
            assert "round 0: registered update" in text and "round 1: registered update" in text, text
            assert "WARNING" not in text and "Traceback" not in text, text
            assert re.search(r"2 update\(s\) registered now", text), text
            for rnd in (0, 1):
                fin = fc.round_finalized(task, rnd)
                i = fc.registered_clients(task, rnd).index(addr[n])
                assert fc.is_claimed(task, rnd, addr[n]) == (fin["amounts"][i] > 0)
        assert "2 round(s) handled" in log("server") and "did not register" not in log("server")
        assert log("server").count("3 update(s) registered, published") == 2, log("server")

        # status shows who is owed what and how to collect it; then everyone withdraws
        st = fedcoin("status", *base, "--task", str(task))
        assert st.returncode == 0, st.stderr
        assert "fedcoin withdraw" in st.stdout and "unaccounted=0" in st.stdout, st.stdout
        for n in ("server", "miner-0", "miner-1", "requester"):
            before = fc.credits(addr[n])
            r = fedcoin("withdraw", *base, env=keyed(ks[n]))
            assert r.returncode == 0, r.stderr
            if before:
                assert f"will withdraw {before / 1e18:.6f} ETH ({before} wei)" in r.stdout
                assert f"collected {before / 1e18:.6f} ETH ({before} wei)" in r.stdout
            assert fc.credits(addr[n]) == 0
        again = fedcoin("claim", *base, "--task", str(task), env=keyed(ks["client-0"]))
        assert again.returncode == 0 and "nothing to claim" in again.stdout, again.stdout + again.stderr

        acc = task_accounting(fc, task)
        assert acc.ok and acc.unaccounted == 0, acc
        assert audit(fc).ok
        t = fc.get_task(task)
        assert t.escrow == 0 and t.unclaimed == 0 and fc.balance() == 0  # nothing left in the contract
        print(f"separate parties: 2 rounds to payouts in {took:.0f}s; {acc}")
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.kill()
                p.wait()
