"""FedCoin on Flower: the strategy's reply checks and record conversion, and a real local Flower
deployment — ``flower-superlink`` and three ``flower-supernode`` processes on 127.0.0.1 (no
Ray), each SuperNode with its own keystore and data folder, a ``fedcoin mine`` process — run
through one round to payouts with ``flwr run``.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("flwr")

from fl_server.flower.strategy import Reply, from_record, registered_replies, to_record  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "flower-node-password"


def test_only_replies_the_chain_registered_count():
    regs = [("0xA", b"\x01" * 32, "local:0x01", 40), ("0xB", b"\x02" * 32, "local:0x02", 30)]
    h1, h2 = "0x" + "01" * 32, "0x" + "02" * 32
    replies = [
        Reply(1, "0xA", h1, "local:0x01", 40),     # registered exactly: counts
        Reply(2, "0xB", h2, "local:0x02", 31),     # n_k differs from the registration
        Reply(3, "0xC", h1, "local:0x01", 40),     # not registered at all
        Reply(4, "0xA", h1, "local:0x01", 40),     # a second reply for A
        None,                                      # no FedCoin record
    ]
    ok, ignored = registered_replies(replies, regs)
    assert [r.node_id for r in ok] == [1]
    assert [r.node_id if r else None for r, _ in ignored] == [2, 3, 4, None]
    assert "registered" in ignored[0][1] and "no registration" in ignored[1][1] and "second" in ignored[2][1]


def test_array_records_round_trip_bit_exactly():
    params = {"w0": np.arange(6, dtype=np.float32).reshape(2, 3) - 0.0, "b0": np.array([-0.0, np.nan], np.float32)}
    back = from_record(to_record(params), list(params))
    assert set(back) == set(params)
    for k in params:
        assert back[k].tobytes() == params[k].tobytes()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_port(port: int, proc: subprocess.Popen, log: Path, timeout: float = 90) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"exited {proc.returncode}:\n{log.read_text()}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.3)
    raise AssertionError(f"nothing listens on 127.0.0.1:{port} after {timeout}s:\n{log.read_text()}")


@pytest.mark.slow
def test_a_flower_deployment_runs_a_round_to_payouts(tmp_path):
    from eth_account import Account

    from fedcoin.chain import FedCoin, RoundStatus, connect
    from fedcoin.chain.keys import write_keystore
    from fedcoin.content.spec import parse
    from fedcoin.dev.devnet import Anvil
    from fedcoin.roles.accounting import task_accounting
    from fedcoin.roles.accounts import fund
    from fedcoin.roles.audit import audit
    from fedcoin.roles.collect import claim
    from fedcoin_testkit import default_params, dev_accounts
    from fl_server.data import load_digits
    from fl_server.partition import partition

    bin_dir = Path(sys.executable).parent
    procs: list[subprocess.Popen] = []
    with Anvil(accounts=2) as node:
        w3 = connect(node.url)
        fc = FedCoin.deploy(w3, dev_accounts()[0], default_params())
        accts = {n: Account.create() for n in ("requester", "server", "miner", "c0", "c1", "c2")}
        ks = {}
        for n, a in accts.items():
            ks[n] = write_keystore(a, tmp_path / "keys" / f"{n}.json", PASSWORD)
            fund(w3, a.address, 10 * 10**18)
        clients = [accts[f"c{k}"] for k in range(3)]
        task = fc.as_account(accts["requester"]).create_task(  # the task's own windows: short for a test
            accts["server"].address, [c.address for c in clients], 1, 10**18, registration_window=300,
            commit_window=30, reveal_window=20).task_id
        d = load_digits()
        part = partition(d.train, num_clients=3, samples_per_client=40, num_classes=10, seed=0)
        for k in range(3):
            c = part.clients[k].data
            (tmp_path / f"c{k}").mkdir()
            np.savez(tmp_path / f"c{k}" / "data.npz", x_train=c.x, y_train=c.y, x_val=c.x[:5], y_val=c.y[:5],
                     x_test=d.test.x[:10], y_test=d.test.y[:10])

        flwr_home = tmp_path / "flwr"
        flwr_home.mkdir()
        link = _free_port()
        (flwr_home / "config.toml").write_text(
            f'[superlink]\ndefault = "fedcoin"\n\n[superlink.fedcoin]\naddress = "127.0.0.1:{link}"\ninsecure = true\n')
        env = {k: v for k, v in os.environ.items() if not k.startswith("FEDCOIN_")}
        env.update(FLWR_HOME=str(flwr_home), FLWR_TELEMETRY_ENABLED="0", FLWR_DISABLE_UPDATE_CHECK="1",
                   FEDCOIN_KEYSTORE_PASSWORD=PASSWORD, PYTHONUNBUFFERED="1")
        logs = tmp_path / "logs"
        logs.mkdir()

        def start(name, cmd, extra_env=None):
            out = open(logs / f"{name}.log", "w")
            p = subprocess.Popen(cmd, env=dict(env, **(extra_env or {})), cwd=ROOT, stdout=out,
                                 stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
            procs.append(p)
            return p

        store = f"local:{tmp_path / 'store'}"
        try:
            t0 = time.time()
            # the ServerApp runs in the SuperLink's environment: the server's keystore is named there
            sl = start("superlink", [str(bin_dir / "flower-superlink"), "--insecure",
                                     "--disable-runtime-dependency-installation", "--host", "127.0.0.1",
                                     "--port", str(link)], {"FEDCOIN_KEYSTORE": str(ks["server"])})
            _wait_port(link, sl, logs / "superlink.log")
            for k in range(3):
                node_config = f'keystore="{ks[f"c{k}"]}" data="npz:{tmp_path / f"c{k}" / "data.npz"}"'
                start(f"supernode-{k}", [str(bin_dir / "flower-supernode"), "--insecure", "--superlink",
                                         f"127.0.0.1:{link}", "--port", str(_free_port()), "--node-config", node_config])
            start("miner", [sys.executable, "-m", "fedcoin.cli", "mine", "--rpc", node.url, "--contract", fc.address,
                            "--task", str(task), "--store", store, "--journal", str(tmp_path / "journal"),
                            "--no-progress", "--poll", "0.3"], {"FEDCOIN_KEYSTORE": str(ks["miner"])})
            run_config = (f'task={task} contract="{fc.address}" rpc="{node.url}" store="{store}" data="digits" '
                          f'arch="logreg-64-10" val-size=200 local-steps=5 batch-size=10 lr=0.5 poll=0.3 round-timeout=400')
            run = subprocess.run([str(bin_dir / "flwr"), "run", str(ROOT / "fl_server" / "flower" / "app"), "fedcoin",
                                  "--run-config", run_config, "--stream"], env=env, cwd=tmp_path, capture_output=True,
                                 text=True, timeout=600, stdin=subprocess.DEVNULL)
            took = time.time() - t0
            out = run.stdout + run.stderr
            assert run.returncode == 0, out
            assert "1 round(s) run through Flower" in out and "task status completed" in out, out

            # the round: every node registered from its own account, the spec is the chain's registrations
            assert fc.get_round(task, 0).status == RoundStatus.FINALIZED, out + (logs / "miner.log").read_text()
            regs = fc.registered_clients(task, 0)
            assert sorted(regs) == sorted(c.address for c in clients)
            spec = parse(fc_store_get(store, fc, task))
            assert [u.client for u in spec.updates] == regs and spec.included == (0, 1, 2)
            assert "3 registered repl(ies) aggregated, 0 ignored, 0 failed" in out, out

            # payouts: each data owner claims its own with a proof from events
            fin = fc.round_finalized(task, 0)
            for c in clients:
                amount = fin["amounts"][regs.index(c.address)]
                got = claim(fc.as_account(c), task)
                assert got == amount
            assert fc.get_task(task).unclaimed == 0
            assert task_accounting(fc, task).unaccounted == 0 and audit(fc).ok
            argv = " ".join(" ".join(map(str, p.args)) for p in procs)  # no key on any command line
            assert not any(a.key.hex().removeprefix("0x") in argv for a in accts.values())
            print(f"Flower deployment: one round to payouts in {took:.0f}s")
        finally:
            for p in procs:
                if p.poll() is None:
                    p.terminate()
            for p in procs:
                try:
                    p.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()


def fc_store_get(store_url: str, fc, task: int) -> bytes:
    from fedcoin.content.store import open_store

    ev = fc.published_events(task, 0)[-1]
    return open_store(store_url).get(ev.args["specLocator"], bytes(ev.args["specHash"]))
