"""End to end on a real Anvil: the FL server in-process, miners as real ``fedcoin mine``
processes, and faults injected on purpose (a mismatched reveal, a silent miner, a SIGKILL
right after a commit, a tampered blob, an unreachable RPC).

Rounds run on wall-clock deadlines (no time travel): miners are separate processes that
must see the same clock as the chain.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from fedcoin.protocol import fixedpoint as fp
from fedcoin.roles.accounting import task_accounting
from fedcoin.roles.audit import audit
from fedcoin.chain import ContractRevert, FedCoin, connect
from fedcoin.dev.devnet import Anvil
from fedcoin.content.store import LocalStore
from fedcoin_testkit import ETH, default_params, dev_accounts
from fl_server.data import load_digits
from fl_server.server import FLServer, ServerConfig
from miners.journal import COMMITTED, Journal

ROOT = Path(__file__).resolve().parent.parent
COMMIT_WINDOW, REVEAL_WINDOW = 25, 20  # the contract's shortest window is 20 s
CONFIG = ServerConfig(data="digits", arch="logreg-64-10", samples_per_client=40, local_steps=5, batch_size=10,
                      lr=0.5, val_size=200, poll_interval=0.2, round_timeout=240)
N_CLIENTS = 4


@pytest.fixture(scope="module")
def chain():
    with Anvil(accounts=40) as node:
        yield node


@pytest.fixture(scope="module")
def splits():
    return load_digits()


class Round:
    """One task of one round with its own contract, store and journal."""

    def __init__(self, chain, tmp_path: Path, splits):
        self.url = chain.url
        self.w3 = connect(chain.url)
        acc = dev_accounts()
        self.requester, self.server, self.clients = acc[0], acc[1], acc[30:30 + N_CLIENTS]
        self.miners = acc[20:23]
        self.fc = FedCoin.deploy(self.w3, self.requester, default_params())
        # the task's own windows (the server no longer chooses deadlines); relative D = 0.2 (default)
        self.task = self.fc.create_task(self.server.address, [c.address for c in self.clients], 1, ETH,
                                        commit_window=COMMIT_WINDOW, reveal_window=REVEAL_WINDOW).task_id
        self.store_dir = tmp_path / "store"
        self.store = LocalStore(self.store_dir)
        self.journal = tmp_path / "journal"
        self.tmp = tmp_path
        self.srv = FLServer(self.fc.as_account(self.server), self.task, self.clients, self.store, CONFIG,
                            splits=splits)
        self.procs: list[subprocess.Popen] = []

    def miner(self, account, *, name: str, env: dict | None = None) -> subprocess.Popen:
        """A ``fedcoin mine`` process; its key goes in the environment, never in argv."""
        log = open(self.tmp / f"{name}.log", "a")
        e = dict(os.environ, FEDCOIN_PRIVATE_KEY=account.key.to_0x_hex(), PYTHONUNBUFFERED="1", **(env or {}))
        cmd = [sys.executable, "-m", "fedcoin.cli", "mine", "--rpc", self.url, "--contract", self.fc.address,
               "--store", f"local:{self.store_dir}", "--journal", str(self.journal), "--task", str(self.task),
               "--no-progress", "--poll", "0.3", "--seed", "7"]
        p = subprocess.Popen(cmd, env=e, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=ROOT)
        assert account.key.to_0x_hex() not in " ".join(cmd)
        self.procs.append(p)
        return p

    def log(self, name: str) -> str:
        return (self.tmp / f"{name}.log").read_text()

    def serve(self) -> threading.Thread:
        """Run the server (train, register, publish, wait until settled) in a thread."""
        self.server_error: list[BaseException] = []

        def go():
            try:
                self.srv.run(wait=True)
            except BaseException as e:  # surfaced by the test
                self.server_error.append(e)

        t = threading.Thread(target=go, daemon=True)
        t.start()
        return t

    def wait_published(self, timeout: float = 120) -> None:
        wait_for(lambda: self.fc.published_events(self.task, 0), timeout, "the round to be published")

    def close(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait()


def wait_for(pred, timeout: float, what: str):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def wait_chain_time(fc: FedCoin, t: int) -> None:
    wait_for(lambda: time.time() > t + 1, t - time.time() + 30, f"chain time {t}")


@pytest.fixture
def rnd(chain, tmp_path, splits):
    r = Round(chain, tmp_path, splits)
    yield r
    r.close()


def test_honest_miner_wins_over_a_mismatched_and_a_silent_miner_and_every_wei_is_accounted(rnd):
    honest, cheat, silent = rnd.miners
    balances_before = {a.address: rnd.w3.eth.get_balance(a.address) for a in (cheat, silent)}
    rnd.miner(honest, name="honest")
    server = rnd.serve()
    rnd.wait_published()

    fc_cheat, fc_silent = rnd.fc.as_account(cheat), rnd.fc.as_account(silent)
    bond = rnd.fc.min_bond()
    committed_vec = fp.encode_vector([0.25] * N_CLIENTS)
    _, salt = fc_cheat.commit_vector(rnd.task, 0, committed_vec, 100)
    fc_silent.commit_vector(rnd.task, 0, fp.encode_vector([0.1] * N_CLIENTS), 100)

    info = rnd.fc.get_round(rnd.task, 0)
    wait_chain_time(rnd.fc, info.commit_deadline)
    with pytest.raises(ContractRevert) as err:
        fc_cheat.reveal(rnd.task, 0, fp.encode_vector([0.3] * N_CLIENTS), 100, salt)  # not what it committed
    assert err.value.name == "FedCoinCommitmentMismatch"

    server.join(timeout=CONFIG.round_timeout)
    assert not rnd.server_error, rnd.server_error
    fin = rnd.fc.round_finalized(rnd.task, 0)
    assert fin is not None and fin["winner"] == honest.address, rnd.log("honest")
    wait_for(lambda: rnd.procs[0].poll() is not None, 60, "the honest miner to exit")
    assert rnd.procs[0].returncode == 0, rnd.log("honest")

    # the two bonds that were never validly revealed were forfeited to the requester, never to a miner
    _, _, sap = rnd.fc.round_prices(rnd.task, 0)
    withdrawn = sum(e["amount"] for e in rnd.fc.withdrawn_events(account=honest.address))
    assert withdrawn == sap + bond  # all of SapPrice (the only qualifier) + its own bond back
    for a in (cheat, silent):
        assert rnd.w3.eth.get_balance(a.address) < balances_before[a.address] - bond
        assert rnd.fc.credits(a.address) == 0
    forfeited = [e for e in rnd.fc.credited_events(task_id=rnd.task) if e["reason"] == 4]
    assert [(e["account"], e["amount"]) for e in forfeited] == [(rnd.requester.address, 2 * bond)]

    acc = task_accounting(rnd.fc, rnd.task)
    assert acc.unaccounted == 0 and acc.ok and acc.V == ETH
    assert acc.clients + acc.server + acc.miners + acc.refunded == ETH
    assert rnd.fc.balance() == rnd.fc.liabilities()
    assert audit(rnd.fc).ok


def test_miner_killed_right_after_its_commit_reveals_from_its_journal_after_restart(rnd):
    (miner, *_rest) = rnd.miners
    first = rnd.miner(miner, name="crashing", env={"FEDCOIN_MINER_FAULT": "kill-after-commit"})
    server = rnd.serve()
    wait_for(lambda: first.poll() is not None, 150, "the miner to kill itself after committing")
    assert first.returncode == -signal.SIGKILL

    entries = list(Journal(rnd.journal).entries(miner=miner.address))
    assert len(entries) == 1 and entries[0].status == COMMITTED
    # a loaded machine may miss attempt 0's commit window (the round re-opens): read the attempt it committed in
    on_chain = rnd.fc.get_commitment(rnd.task, 0, entries[0].attempt, miner.address)
    assert on_chain.hash.hex() == entries[0].commitment[2:] and not on_chain.revealed

    rnd.miner(miner, name="restarted")  # a fresh process: only the chain and the journal remain
    server.join(timeout=CONFIG.round_timeout)
    assert not rnd.server_error, rnd.server_error
    fin = rnd.fc.round_finalized(rnd.task, 0)
    assert fin is not None and fin["winner"] == miner.address, rnd.log("restarted")
    reveals = rnd.fc.reveals(rnd.task, 0)
    assert [list(r.values) for r in reveals] == [entries[0].values]
    assert "revealed" in rnd.log("restarted")


def test_every_miner_refuses_a_task_with_a_tampered_update_blob_and_commits_nothing(rnd):
    rnd.srv.run(wait=False)  # trains, registers and publishes; does not wait for miners
    regs = rnd.fc.registrations(rnd.task, 0)
    victim = regs[1]
    path = rnd.store._path(victim["locator"])
    blob = bytearray(path.read_bytes())
    blob[-1] ^= 0x01  # one flipped bit in a stored update
    path.write_bytes(bytes(blob))

    names = ["miner-a", "miner-b"]
    for acct, name in zip(rnd.miners, names):
        rnd.miner(acct, name=name)
    for name in names:
        wait_for(lambda: "REFUSED" in rnd.log(name), 90, f"{name} to refuse the task")
        text = rnd.log(name)
        assert f"update of client {victim['client']} (#1)" in text
        assert victim["locator"] in text
        assert "Nothing committed" in text
    assert rnd.fc.committed_events(rnd.task, 0) == []


def test_miner_reports_an_unreachable_rpc_clearly(tmp_path):
    acct = dev_accounts()[5]
    proc = subprocess.run(
        [sys.executable, "-m", "fedcoin.cli", "mine", "--rpc", "http://127.0.0.1:9", "--contract",
         "0x" + "11" * 20, "--journal", str(tmp_path / "j"), "--no-progress"],
        env=dict(os.environ, FEDCOIN_PRIVATE_KEY=acct.key.to_0x_hex()), capture_output=True, text=True,
        timeout=120, cwd=ROOT, stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 2
    assert "cannot reach http://127.0.0.1:9" in proc.stderr


def test_the_demo_command_runs_a_whole_task_and_accounts_for_every_wei(tmp_path):
    """The demo under Record-and-Reward's options: a data-cost-gated task, a CSVES-Th server and
    one faulty simulated client. Which updates pass τ = 0.45 depends on the demo's training
    (lr 0.1, batch 50 on 40 rows: weak), so the table is checked against the rule itself: every
    excluded update is paid 0, and the others get TrainPrice · n_k / Σ n over positive S̄."""
    env = dict(os.environ, FEDCOIN_HOME=str(tmp_path / "home"), PYTHONUNBUFFERED="1")
    proc = subprocess.run(
        [sys.executable, "-m", "fedcoin.dev.demo", "--clients", "4", "--miners", "2", "--data", "digits",
         "--arch", "logreg-64-10", "--samples-per-client", "40", "--val-size", "200", "--local-steps", "20",
         "--commit-window", "25", "--reveal-window", "20", "--out", str(tmp_path / "out"),
         "--payment", "data-cost-gated", "--csves", "th", "--csves-tau", "0.45", "--faulty", "1"],
        env=env, capture_output=True, text=True, timeout=400, cwd=ROOT, stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    last = proc.stdout.strip().splitlines()[-1]
    m = re.fullmatch(r"V=(\d+) clients=(\d+) server=(\d+) miners=(\d+) refunded=(\d+) unaccounted=0", last)
    assert m, last
    V, *parts = map(int, m.groups())
    assert V == 10 * ETH and sum(parts) == V
    assert "audit: OK 1 blocks" in proc.stdout
    assert "payment data-cost-gated, CSVES-th (tau 0.45)" in proc.stdout
    table = proc.stdout.split("Payouts under 'data-cost-gated'")[1].split("PoSap block records")[0]
    assert "n_k" in table and "check" in table
    rows = [line.split() for line in table.splitlines() if re.match(r"\s+0\s+0x", line)]
    assert len(rows) == 4 and sum(r[2].endswith("!") for r in rows) == 1, table
    parsed = [(int(n), check, float(c), int(amount)) for _, _, _, n, check, c, amount, _ in rows]
    assert all(check in ("ok", "csves-th") for _, check, _, _ in parsed), table
    assert all(amount == 0 and c == 0.0 for _, check, c, amount in parsed if check != "ok"), table
    train = 7 * ETH  # one round, split 7000/1000/2000 of V = 10 ETH
    paid_n = sum(n for n, check, c, _ in parsed if check == "ok" and c > 0)
    assert [amount for *_, amount in parsed] == [
        train * n // paid_n if check == "ok" and c > 0 else 0 for n, check, c, _ in parsed], table
    assert list((tmp_path / "out").glob("run-*/shapley_by_type.png"))
