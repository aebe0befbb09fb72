"""The FL server on a real Anvil: crash at chosen points, resume, and nothing is registered or
published twice; the next round's global model is rebuilt from the chain and the store."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from fedcoin.protocol import fixedpoint as fp
from fedcoin.chain import FedCoin
from fedcoin.ml.serialization import params_from_bytes, params_to_bytes
from fedcoin.content.spec import parse
from fedcoin.content.store import LocalStore, content_hash
from fedcoin_testkit import ETH, advance, default_params, dev_accounts, revert, snapshot, w3_for
from fl_server.data import load_digits
from fedcoin.chain import RoundStatus, TaskStatus
from fedcoin.ml.fedavg import aggregate_all
from fl_server.server import (
    FLServer,
    ServerConfig,
    ServerError,
    ServerHooks,
)

CONFIG = ServerConfig(data="digits", arch="logreg-64-10", samples_per_client=30, local_steps=5, batch_size=10,
                      lr=0.5, val_size=200, poll_interval=0.05,
                      round_timeout=60)


class SimulatedCrash(Exception):
    """Injected on purpose: the server process 'dies' here."""


class CrashAt(ServerHooks):
    def __init__(self, *, after_registrations=None, on_spec_stored=False, on_published=False):
        self.after_registrations, self.spec, self.published = after_registrations, on_spec_stored, on_published
        self.registered = 0

    def on_update_registered(self, rnd, client, tx_hash):
        self.registered += 1
        if self.after_registrations is not None and self.registered >= self.after_registrations:
            raise SimulatedCrash(f"after {self.registered} registrations")

    def on_spec_stored(self, rnd, spec, locator):
        if self.spec:
            raise SimulatedCrash("after the spec was stored, before publishing")

    def on_published(self, rnd, tx_hash):
        if self.published:
            raise SimulatedCrash("right after publishing")


@pytest.fixture(scope="module")
def task_env(anvil, tmp_path_factory):
    w3 = w3_for(anvil)
    snap = snapshot(w3)
    acc = dev_accounts()
    requester, server, clients, miner = acc[0], acc[1], acc[30:34], acc[25]
    fc = FedCoin.deploy(w3, requester, default_params())
    task_id = fc.create_task(server.address, [c.address for c in clients], 2, ETH).task_id
    store = LocalStore(tmp_path_factory.mktemp("store"))
    yield dict(w3=w3, fc=fc, server=server, clients=clients, miner=miner, task=task_id, store=store,
               splits=load_digits())
    revert(w3, snap)


def _server(task_env, hooks=None, config=CONFIG):
    return FLServer(task_env["fc"].as_account(task_env["server"]), task_env["task"], task_env["clients"], task_env["store"], config,
                    hooks=hooks, splits=task_env["splits"])


def _registrations(task_env, rnd):
    return [(e.args["client"], e.args["index"]) for e in task_env["fc"].registrations(task_env["task"], rnd)]


def _mine_and_finalize(task_env, rnd):
    """Play one honest miner so that the round settles and the task moves on."""
    m = task_env["fc"].as_account(task_env["miner"])
    values = fp.encode_vector([0.01] * len(task_env["clients"]))
    _, salt = m.commit_vector(task_env["task"], rnd, values, 10)
    r = task_env["fc"].get_round(task_env["task"], rnd)  # the task's own windows set the deadlines
    advance(task_env["w3"], r.commit_deadline - task_env["fc"].latest_timestamp() + 1)
    m.reveal(task_env["task"], rnd, values, 10, salt)
    advance(task_env["w3"], r.reveal_deadline - task_env["fc"].latest_timestamp() + 1)
    m.finalize(task_env["task"], rnd)


def test_crash_mid_registration_then_resume_registers_each_client_once(task_env):
    with pytest.raises(SimulatedCrash):
        _server(task_env, CrashAt(after_registrations=2)).run(wait=False)
    assert len(_registrations(task_env, 0)) == 2
    assert task_env["fc"].get_task(task_env["task"]).status == 2  # accepted before the crash

    summary = _server(task_env).run(wait=False)  # a fresh process: nothing remembered but chain + store
    rep = summary.rounds[0]
    assert len(rep.registered_now) == 2 and len(rep.already_registered) == 2 and rep.published_now
    regs = _registrations(task_env, 0)
    assert sorted(c for c, _ in regs) == sorted(c.address for c in task_env["clients"])
    assert [i for _, i in regs] == [0, 1, 2, 3]
    assert len(task_env["fc"].published_events(task_env["task"], 0)) == 1

    # the published spec is in the store under its on-chain hash and lists exactly those updates
    ev = task_env["fc"].published_events(task_env["task"], 0)[0]
    spec = parse(task_env["store"].get(ev.args["specLocator"], bytes(ev.args["specHash"])))
    assert [u.client for u in spec.updates] == [c for c, _ in regs]
    assert spec.round == 0 and spec.task_id == task_env["task"] and spec.arch == "logreg-64-10"
    assert task_env["fc"].get_round(task_env["task"], 0).spec_hash == spec.hash()


def test_resuming_a_published_round_publishes_nothing_again(task_env):
    summary = _server(task_env).run(wait=False)
    assert not summary.rounds[0].published_now and summary.rounds[0].registered_now == []
    assert len(task_env["fc"].published_events(task_env["task"], 0)) == 1
    assert len(_registrations(task_env, 0)) == 4


def test_a_different_seed_is_refused_on_resume(task_env):
    with pytest.raises(ServerError, match="original"):
        _server(task_env, config=ServerConfig(**{**CONFIG.__dict__, "seed": 1})).run(wait=False)


def test_no_round_is_lost_across_a_crash_before_publication(task_env):
    _mine_and_finalize(task_env, 0)
    assert task_env["fc"].get_task(task_env["task"]).current_round == 1
    with pytest.raises(SimulatedCrash):
        _server(task_env, CrashAt(on_spec_stored=True)).run(wait=False)
    assert len(_registrations(task_env, 1)) == 4 and task_env["fc"].published_events(task_env["task"], 1) == []

    rep = _server(task_env).run(wait=False).rounds[0]
    assert rep.round == 1 and rep.published_now and rep.registered_now == []
    assert task_env["fc"].get_round(task_env["task"], 1).status == RoundStatus.PUBLISHED

    # w_1 in round 1's spec is FedAvg of w_0 and round 0's registered updates, recomputed here
    fc, store = task_env["fc"], task_env["store"]
    spec0 = parse(store.get(fc.published_events(task_env["task"], 0)[0].args["specLocator"], fc.get_round(task_env["task"], 0).spec_hash))
    spec1 = parse(store.get(rep.spec_locator, fc.get_round(task_env["task"], 1).spec_hash))
    w0 = {k: jnp.asarray(v) for k, v in params_from_bytes(store.get(spec0.global_model.locator, spec0.global_model.hash)).items()}
    deltas = [{k: jnp.asarray(v) for k, v in params_from_bytes(store.get(u.locator, u.hash)).items()} for u in spec0.updates]
    w1 = aggregate_all(w0, deltas, jnp.asarray(spec0.n_k))
    assert spec1.global_model.hash == "0x" + content_hash(params_to_bytes({k: np.asarray(v) for k, v in w1.items()})).hex()


def test_the_server_finishes_the_task_when_rounds_settle(task_env):
    _mine_and_finalize(task_env, 1)
    summary = _server(task_env).run()  # nothing left to do: the task is complete
    assert summary.rounds == [] and summary.task_status == TaskStatus.COMPLETED
    assert summary.server_credit > 0


def test_cli_runs_a_round_with_keys_from_the_environment(task_env, anvil, monkeypatch, tmp_path, capsys):
    from fedcoin.cli import main

    fc = task_env["fc"]
    acc = dev_accounts()
    task = fc.create_task(acc[2].address, [a.address for a in acc[34:37]], 1, ETH).task_id
    monkeypatch.setenv("FEDCOIN_PRIVATE_KEY", acc[2].key.hex())
    monkeypatch.setenv("FEDCOIN_CLIENT_KEYS", ",".join(a.key.hex() for a in acc[34:37]))
    monkeypatch.delenv("FEDCOIN_KEYSTORE", raising=False)
    rc = main(["server", "--rpc", anvil.url, "--contract", fc.address, "--task", str(task),
               "--store", f"local:{tmp_path}", "--data", "digits", "--arch", "logreg-64-10", "--samples", "20",
               "--local-steps", "3", "--val-size", "100", "--no-wait", "--simulate-clients"])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert f"task {task}: 1 round(s) handled" in out and "3 update(s) registered (3 by the simulation now)" in out
    assert len(fc.registrations(task, 0)) == 3 and len(fc.published_events(task, 0)) == 1


def test_shares_give_each_listed_client_its_fraction_of_the_pool(task_env):
    import dataclasses

    pool = len(task_env["splits"].train)
    srv = _server(task_env, config=dataclasses.replace(CONFIG, shares=(0.1, 0.2, 0.3, 0.5)))
    assert srv.partition.n_k.tolist() == [round(s * pool) for s in (0.1, 0.2, 0.3, 0.5)]
    assert [srv.owners[c].n_k for c in srv.listed] == srv.partition.n_k.tolist()
    with pytest.raises(ValueError, match="4 clients, 2 shares given"):
        _server(task_env, config=dataclasses.replace(CONFIG, shares=(0.1, 0.2)))
