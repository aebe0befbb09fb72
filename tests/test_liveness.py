"""Liveness under faults, end to end with real processes on a real Anvil: hostile clients are
excluded and the round still settles, miners and the server ride out a node restart, a round
nobody commits to still settles, a second miner process on one key refuses to start.

Rounds run on wall-clock deadlines (no time travel), as users' rounds do.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from fedcoin.chain import FedCoin, RoundStatus, connect
from fedcoin.content.spec import parse
from fedcoin.content.store import LocalStore, content_hash
from fedcoin.dev.devnet import Anvil, free_port
from fedcoin.ml.models import Arch, init_params
from fedcoin.ml.serialization import params_to_bytes
from fedcoin.roles.accounting import task_accounting
from fedcoin.roles.audit import audit
from fedcoin_testkit import ETH, default_params, dev_accounts
from fl_server.data import load_digits
from fl_server.server import FLServer, ServerConfig

ROOT = Path(__file__).resolve().parent.parent
ARCH = Arch.parse("logreg-64-10")
CONFIG = ServerConfig(data="digits", arch=ARCH.id, samples_per_client=40, local_steps=5, batch_size=10, lr=0.5,
                      val_size=200, poll_interval=0.2, round_timeout=300)


def wait_for(pred, timeout: float, what: str):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


class Party:
    """A task on its own contract, with a store, a journal and miner processes."""

    def __init__(self, url: str, tmp: Path, *, n_clients: int, server_keys: int, rounds: int = 1,
                 commit_window: int = 25, reveal_window: int = 20, config: ServerConfig = CONFIG, **task):
        self.url, self.tmp = url, tmp
        self.w3 = connect(url)
        acc = dev_accounts()
        self.requester, self.server, self.clients, self.miners = acc[0], acc[1], acc[30:30 + n_clients], acc[20:23]
        self.fc = FedCoin.deploy(self.w3, self.requester, default_params())
        self.task = self.fc.create_task(self.server.address, [c.address for c in self.clients], rounds, ETH,
                                        registration_window=60, commit_window=commit_window,
                                        reveal_window=reveal_window, **task).task_id
        self.fc.as_account(self.server).accept_task(self.task)
        self.store_dir = tmp / "store"
        self.store = LocalStore(self.store_dir)
        self.journal = tmp / "journal"
        listed = self.fc.task_clients(self.task)  # ascending, as the contract lists them
        self.listed = [next(c for c in self.clients if c.address == a) for a in listed]
        self.srv = FLServer(self.fc.as_account(self.server), self.task, self.listed[:server_keys], self.store, config,
                            splits=load_digits())
        self.procs: list[subprocess.Popen] = []
        self.errors: list[BaseException] = []

    def miner(self, account, name: str, *extra: str) -> subprocess.Popen:
        log = open(self.tmp / f"{name}.log", "a")
        env = dict(os.environ, FEDCOIN_PRIVATE_KEY=account.key.to_0x_hex(), PYTHONUNBUFFERED="1")
        cmd = [sys.executable, "-m", "fedcoin.cli", "mine", "--rpc", self.url, "--contract", self.fc.address,
               "--store", f"local:{self.store_dir}", "--journal", str(self.journal), "--task", str(self.task),
               "--no-progress", "--poll", "0.3", *extra]
        p = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=ROOT)
        self.procs.append(p)
        return p

    def log(self, name: str) -> str:
        return (self.tmp / f"{name}.log").read_text()

    def spec(self, rnd: int = 0):
        """Round ``rnd``'s published spec, fetched by its on-chain hash."""
        ev = self.fc.published_events(self.task, rnd)[-1]
        return parse(self.store.get(ev["specLocator"], self.fc.get_round(self.task, rnd).spec_hash))

    def amounts(self, rnd: int = 0) -> dict:
        """Round ``rnd``'s amount per registered client (the round must have settled)."""
        fin = self.fc.round_finalized(self.task, rnd)
        assert fin is not None, self.log("m1")
        return dict(zip(self.fc.registered_clients(self.task, rnd), fin["amounts"]))

    def assert_clean(self, *miners: str) -> None:
        """No miner crashed or refused, every wei is accounted for and the audit holds."""
        for name in miners:
            assert "Traceback" not in self.log(name) and "REFUSED" not in self.log(name)
        acc = task_accounting(self.fc, self.task)
        assert acc.unaccounted == 0 and audit(self.fc).ok

    def serve(self) -> threading.Thread:
        def go():
            try:
                self.srv.run(wait=True)
            except BaseException as e:  # surfaced by the test
                self.errors.append(e)

        t = threading.Thread(target=go, daemon=True)
        t.start()
        return t

    def close(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait()


@pytest.fixture(scope="module")
def node():
    with Anvil(accounts=40) as a:
        yield a


def _blob(params) -> bytes:
    return params_to_bytes({k: np.asarray(v, np.float32) for k, v in params.items()})


def test_hostile_clients_are_excluded_and_the_round_settles_paying_the_others(node, tmp_path):
    """A NaN update, an unavailable blob, a wrong-shape update and dataCost = 1e12, each registered
    by its own client: the spec excludes each with its reason, both miners mine the rest, the
    round settles, the bad clients get nothing and the honest ones are paid."""
    p = Party(node.url, tmp_path, n_clients=6, server_keys=2)
    try:
        honest, bad = p.listed[:2], p.listed[2:]
        good = init_params(ARCH, key=__import__("jax").random.key(3))
        small = {k: 0.01 * np.asarray(v) for k, v in good.items()}
        nan = {k: np.array(v) for k, v in small.items()}
        nan["w0"][0, 0] = np.nan
        wrong = init_params(Arch.parse("mlp-64-8-10"), key=__import__("jax").random.key(4))
        blobs = {
            "non-finite": (_blob(nan), 40),
            "unavailable": (b"never uploaded", 40),
            "undecodable": (_blob(wrong), 40),
            # above the off-chain bound (1e9) but under the task's on-chain cap (2^64 - 1)
            "data-cost-out-of-range": (_blob(small), 10**12),
        }
        for client, (reason, (blob, n_k)) in zip(bad, blobs.items()):
            h = content_hash(blob)
            loc = f"local:0x{h.hex()}" if reason == "unavailable" else p.store.put(blob)
            p.fc.as_account(client).register_update(p.task, 0, h, loc, n_k)
        for m, name in zip(p.miners[:2], ("m1", "m2")):
            p.miner(m, name)
        server = p.serve()
        server.join(timeout=CONFIG.round_timeout)
        assert not p.errors, p.errors
        spec = p.spec()
        got = {spec.updates[e.index].client: e.reason for e in spec.excluded}
        assert got == {c.address: r for c, r in zip(bad, blobs)}, got
        amounts = p.amounts()
        assert all(amounts[c.address] == 0 for c in bad)
        assert sum(amounts[c.address] for c in honest) > 0
        p.assert_clean("m1", "m2")
        print(f"excluded {got}; honest amounts {[amounts[c.address] for c in honest]}")
    finally:
        p.close()


def test_a_faulty_client_under_data_cost_gated_with_csves_th_is_excluded_and_the_others_paid_by_n(node, tmp_path):
    """Record-and-Reward's design on the robust protocol: a task paying ``data-cost-gated``, the
    server gating each round with CSVES-Th (τ = 0.6: on digits with 20 local steps honest clients
    reach 0.07-0.30 on their class-sampled rows, a label-permuted one 0.70-0.90), three honest
    simulated clients and one faulty client (its own key, labels permuted at random, classes
    declared honestly). The spec excludes the faulty update as ``csves-th``; both miner processes
    recompute the verdicts, agree and mine; the round pays the others pro rata to n_k and the
    faulty client nothing; every wei is accounted for and the audit holds."""
    import jax
    import jax.numpy as jnp

    from fedcoin.content import csves_gate
    from fedcoin.ml.csves import declared_classes
    from fedcoin.protocol import posap
    from fl_server.fedavg import local_sgd

    cfg = dataclasses.replace(CONFIG, csves="th", csves_tau=0.6, local_steps=20)
    p = Party(node.url, tmp_path, n_clients=4, server_keys=3, config=cfg, payment="data-cost-gated")
    try:
        honest, faulty = p.listed[:3], p.listed[3]
        data = p.srv.partition.clients[0].data  # a full-class share, its labels permuted
        y = np.random.default_rng(5).permutation(10)[np.asarray(data.y)]
        w0 = p.srv.global_model(0)
        local = local_sgd(ARCH, w0, jnp.asarray(data.x), jnp.asarray(y), jnp.int32(len(y)), jnp.float32(0.5),
                          key=jax.random.key(9), steps=20, batch_size=10)
        blob = params_to_bytes({k: np.asarray(local[k] - w0[k]) for k in w0},
                               csves_gate.declaration_metadata(declared_classes(np.asarray(data.y), 10)))
        p.fc.as_account(faulty).register_update(p.task, 0, content_hash(blob), p.store.put(blob), len(y))
        for m, name in zip(p.miners[:2], ("m1", "m2")):
            p.miner(m, name)
        server = p.serve()
        server.join(timeout=cfg.round_timeout)
        assert not p.errors, p.errors
        spec = p.spec()
        assert spec.payment == "data-cost-gated" and spec.csves["gate"] == "th"
        assert {spec.updates[e.index].client: e.reason for e in spec.excluded} == {faulty.address: "csves-th"}
        amounts = p.amounts()
        fin = p.fc.round_finalized(p.task, 0)
        train = p.fc.round_prices(p.task, 0)[0]
        costs = p.fc.data_costs(p.task, 0)
        want, _ = posap.client_payouts(train, list(fin["centre"]), payment="data-cost-gated",
                                       data_costs=costs, excluded=spec.excluded_indices)
        assert list(fin["amounts"]) == want
        assert amounts[faulty.address] == 0
        paid = [c for c in honest if amounts[c.address] > 0]
        assert paid, amounts
        n = dict(zip(amounts, costs))  # amounts is keyed in registration order
        total_n = sum(n[c.address] for c in paid)
        assert all(amounts[c.address] == train * n[c.address] // total_n for c in paid)
        p.assert_clean("m1", "m2")
        print(f"data-cost-gated + CSVES-Th: amounts {list(amounts.values())}; faulty {faulty.address[:8]} got 0")
    finally:
        p.close()


def test_miners_and_the_server_carry_on_when_the_node_restarts_mid_round(tmp_path):
    state = tmp_path / "anvil-state.json"
    chain = Anvil(accounts=40, port=free_port(), extra_args=["--state", str(state)]).start()
    p = Party(chain.url, tmp_path, n_clients=3, server_keys=3)
    try:
        miner = p.miner(p.miners[0], "m1")
        server = p.serve()
        wait_for(lambda: p.fc.committed_events(p.task, 0), 150, "the miner's commit")
        chain.stop()  # SIGTERM: Anvil dumps its state
        down_at = time.time()
        time.sleep(6)  # longer than the binding's own retries: the processes must wait it out
        chain.start()  # same port, state loaded
        print(f"node down for {time.time() - down_at:.1f}s")
        server.join(timeout=CONFIG.round_timeout)
        assert not p.errors, p.errors
        assert p.fc.round_finalized(p.task, 0) is not None, p.log("m1")
        assert miner.poll() in (None, 0), p.log("m1")
        text = p.log("m1")
        assert "node unreachable" in text and "node is back" in text and "Traceback" not in text
        assert task_accounting(p.fc, p.task).unaccounted == 0
    finally:
        p.close()
        chain.stop()


@pytest.mark.parametrize("block_time", [None, 1])
def test_a_round_nobody_commits_to_moves_on_within_its_windows(tmp_path, block_time):
    """No miner at all, on an on-demand chain and on one with a block time: the server judges
    the reveal deadline by the next block's time and finalizes when it is due, so the commit-less
    round re-opens (relaxed D, next attempt) within commit + reveal window + a few polls — and so,
    attempt after attempt, it is abandoned within (re-opens + 1) × (commit + reveal window)."""
    import dataclasses

    extra = ["--block-time", str(block_time)] if block_time else []
    with Anvil(accounts=40, extra_args=extra) as chain:
        p = Party(chain.url, tmp_path, n_clients=2, server_keys=2, commit_window=20, reveal_window=20)
        t0 = time.time()
        server = p.serve()
        wait_for(lambda: p.fc.published_events(p.task, 0), 120, "publication")
        published = time.time()
        info = p.fc.get_round(p.task, 0)
        window = info.reveal_deadline - info.published_at
        ev = wait_for(lambda: p.fc.reopened_events(p.task, 0), window + 45, "the commit-less round to re-open")
        took = time.time() - published
        print(f"block_time={block_time}: commit-less round re-opened {took:.1f}s after publication "
              f"(commit + reveal window {window}s; setup {published - t0:.1f}s)")
        assert took <= window + 30 and ev[0]["attempt"] == 1
        r = p.fc.get_round(p.task, 0)
        assert r.status == RoundStatus.PUBLISHED and r.attempt == 1 and r.difficulty > info.difficulty
        assert not p.errors, p.errors
        p.srv.config = dataclasses.replace(p.srv.config, round_timeout=0)  # let the server thread end
        server.join(timeout=30)


def test_a_second_miner_process_on_the_same_key_refuses_and_no_bond_is_lost(node, tmp_path):
    p = Party(node.url, tmp_path, n_clients=3, server_keys=3)
    try:
        first = p.miner(p.miners[0], "first")
        wait_for(lambda: "journal" in p.log("first"), 60, "the first miner to start")
        second = p.miner(p.miners[0], "second")
        wait_for(lambda: second.poll() is not None, 90, "the second miner to refuse")
        assert second.returncode == 2 and "already using account" in p.log("second")
        server = p.serve()
        server.join(timeout=CONFIG.round_timeout)
        assert not p.errors, p.errors
        assert first.poll() in (None, 0)
        reveals = p.fc.reveals(p.task, 0)
        assert [r.miner for r in reveals] == [p.miners[0].address]  # the bond came back with its reveal
        assert task_accounting(p.fc, p.task).unaccounted == 0
    finally:
        p.close()
