"""The miners' check behind FLChain's report (b), on a real Anvil with the real FL server: round
1's global model must be FedAvg of round 0's included updates. An honest server's model matches
to the bit; a server that shifts it is caught, and an in-process miner attests it WRONG in the
AggregateJury right after its commit, which makes FLChain's Aggregate report upheld."""

from __future__ import annotations

import time

import pytest

from fedcoin.chain import FedCoin
from fedcoin.content.spec import parse
from fedcoin.content.store import LocalStore
from fedcoin.flchain.binding import FLChain, FLChainParams, ReportState
from fedcoin_testkit import ETH, advance, default_params, dev_accounts, revert, snapshot, w3_for
from fl_server.data import load_digits
from fl_server.server import FLServer, ServerConfig
from miners.aggregate_check import check_aggregate
from miners.journal import Journal
from miners.miner import Miner, MinerConfig
from fedcoin.protocol import fixedpoint as fp

CONFIG = ServerConfig(data="digits", arch="logreg-64-10", samples_per_client=30, local_steps=5, batch_size=10,
                      lr=0.5, val_size=200, poll_interval=0.05, round_timeout=60)


class ShiftingServer(FLServer):
    """Publishes w_1 + 0.01 as round 1's global model (a fault injected on purpose)."""

    def global_model(self, rnd):
        w = super().global_model(rnd)
        return {k: v + 0.01 for k, v in w.items()} if rnd == 1 else w


@pytest.fixture(scope="module")
def task_env(anvil, tmp_path_factory):
    w3 = w3_for(anvil)
    snap = snapshot(w3)
    acc = dev_accounts()
    requester, server, clients, miners = acc[0], acc[1], acc[30:34], acc[24:26]
    fc = FedCoin.deploy(w3, requester, default_params())
    flc = FLChain.deploy(w3, requester, fedcoin=fc.address, auth=acc[39].address, params=FLChainParams())
    yield dict(w3=w3, fc=fc, flc=flc, requester=requester, server=server, clients=clients, miners=miners,
               store=LocalStore(tmp_path_factory.mktemp("store")), splits=load_digits(), detector=acc[38])
    revert(w3, snap)


def _task(task_env, server_cls):
    fc, flc = task_env["fc"], task_env["flc"]
    tid = fc.as_account(task_env["requester"]).create_task(task_env["server"].address, [c.address for c in task_env["clients"]],
                                                      2, ETH).task_id
    srv = server_cls(fc.as_account(task_env["server"]), tid, task_env["clients"], task_env["store"], CONFIG, splits=task_env["splits"])
    return tid, srv


def _mine_and_finalize(task_env, tid, rnd):
    fc = task_env["fc"]
    m = fc.as_account(task_env["miners"][0])
    values = fp.encode_vector([0.01] * len(task_env["clients"]))
    _, salt = m.commit_vector(tid, rnd, values, 10)
    r = fc.get_round(tid, rnd)
    advance(task_env["w3"], r.commit_deadline - fc.latest_timestamp() + 1)
    m.reveal(tid, rnd, values, 10, salt)
    advance(task_env["w3"], r.reveal_deadline - fc.latest_timestamp() + 1)
    m.finalize(tid, rnd)


def _spec(task_env, tid, rnd):
    ev = task_env["fc"].published_events(tid, rnd)[-1]
    return parse(task_env["store"].get(ev.args["specLocator"], bytes(ev.args["specHash"])))


def test_an_honest_servers_next_model_is_the_aggregate_to_the_bit(task_env):
    tid, srv = _task(task_env, FLServer)
    srv.run(wait=False)
    assert check_aggregate(task_env["fc"], task_env["store"], tid, 0, _spec(task_env, tid, 0)) is None  # w_0: nothing to check
    _mine_and_finalize(task_env, tid, 0)
    srv.run(wait=False)
    v = check_aggregate(task_env["fc"], task_env["store"], tid, 1, _spec(task_env, tid, 1))
    assert not v.wrong and v.max_abs_diff == 0.0, v


def test_a_shifted_model_is_attested_wrong_and_the_server_loses_its_deposit(task_env, tmp_path):
    fc, flc, store = task_env["fc"], task_env["flc"], task_env["store"]
    tid, srv = _task(task_env, ShiftingServer)
    p = FLChainParams()
    flc.as_account(task_env["requester"]).require_trainers(tid, p.min_deposit)
    for who in [task_env["server"], *task_env["clients"]]:
        flc.as_account(who).register(b"\x01" * 32, "local:0x00")
        flc.as_account(who).join(tid)
    srv.run(wait=False)
    _mine_and_finalize(task_env, tid, 0)
    srv.run(wait=False)
    v = check_aggregate(fc, store, tid, 1, _spec(task_env, tid, 1))
    assert v.wrong and v.max_abs_diff == pytest.approx(0.01, rel=1e-3), v
    lines: list[str] = []
    miner = task_env["miners"][1]
    m = Miner(fc.as_account(miner), store, Journal(tmp_path / "j"), MinerConfig(poll_s=0.1, seed=1, max_perms=64),
              task=tid, log=lines.append, progress=False, jury=flc.jury(miner))
    jury = flc.jury()
    t0 = time.monotonic()
    while jury.attestation(tid, 1, 0, miner.address) == 0 and time.monotonic() - t0 < 120:
        m.tick()
    assert jury.attestation(tid, 1, 0, miner.address) == 2, lines  # WRONG
    assert any("attested the global model WRONG" in line for line in lines), lines
    r = fc.get_round(tid, 1)
    for deadline in (r.commit_deadline, r.reveal_deadline):  # the miner reveals, then finalizes
        advance(task_env["w3"], deadline - fc.latest_timestamp() + 1)
        m.tick()
    assert fc.get_round(tid, 1).status == 2, lines  # the miner revealed and finalized
    flc.as_account(task_env["detector"]).report_aggregate(fc, tid, 1)
    assert flc.get_report(flc.report_count() - 1).state == ReportState.UPHELD
    assert flc.get_trainer(task_env["server"].address).deposit == 0
    assert flc.balance() == flc.liabilities() and fc.balance() == fc.liabilities()
