"""FLChain beside FedCoin end to end, with real processes on a real Anvil: trainers register
with deposits; two requesters' requests get collaboration intentions and the federations are
allocated by Algorithm 1 (fedcoin/flchain/federation.py) from the on-chain intentions; each
FedCoin task lists its allocated trainers and requires them on FLChain, and they join. Task A
runs two rounds with a real FL server process (``fedcoin server --flchain``, honest clients
simulated with their own keys, as tests/test_liveness.py does) and two real miner processes
that re-check the trainer requirement (``fedcoin mine --flchain``); in
round 1 one trainer registers a NaN update, the miners exclude it (non-finite) and the round
finalizes; an outsider reports it with the round's spec bytes from the content store, and is
rewarded, the round's honest trainers compensated, the requester credited the rest (to the wei,
rules.confiscation). Both rounds are recorded; A's model is listed and is Problematic (no sale).
Task B, a clean one-round task run by the same miners at the same time, is listed, sold to a
buyer, and its revenue claimed by contribution × reliability (rules.sale_split). Every trainer
releases its deposit after completion and everyone withdraws: both contracts end with balance ==
liabilities, FLChain with nothing left, and every wei is accounted for.

Task B exists because an upheld report makes its task's model Problematic for good (FLChain's
rule): the sale needs a clean task, and running it concurrently with task A costs no extra rounds.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import pytest
from eth_utils import keccak

from fedcoin.chain import ContractRevert, FedCoin, TaskStatus, connect
from fedcoin.content.store import LocalStore, content_hash
from fedcoin.dev.devnet import Anvil
from fedcoin.flchain import audit as fl_audit
from fedcoin.flchain import rules
from fedcoin.flchain.binding import FLChain, FLChainParams, ModelStatus, ReportState, TrainerStatus
from fedcoin.flchain.federation import Intention, allocate
from fedcoin.ml.models import init_params
from fedcoin.ml.serialization import params_to_bytes
from fedcoin_testkit import ETH, advance, default_params, dev_accounts
from fl_server.data import load_digits
from fl_server.server import FLServer
from test_liveness import ARCH, CONFIG, Party, _blob, wait_for

ROOT = Path(__file__).resolve().parent.parent
P = FLChainParams()
WINDOWS = dict(registration_window=60, commit_window=25, reveal_window=20)
#: test_liveness's CONFIG as ``fedcoin server`` flags
SERVER_ARGS = ["--data", CONFIG.data, "--arch", ARCH.id, "--samples", str(CONFIG.samples_per_client),
               "--local-steps", str(CONFIG.local_steps), "--batch-size", str(CONFIG.batch_size), "--lr", str(CONFIG.lr),
               "--val-size", str(CONFIG.val_size), "--poll", str(CONFIG.poll_interval),
               "--round-timeout", str(CONFIG.round_timeout)]


class TaskView(Party):
    """One task of the shared FedCoin, seen through test_liveness's Party helpers (spec,
    amounts, logs, assert_clean) without Party's own deployment, miners and server thread;
    ``srv`` is a server that does not run (it rebuilds the global models from the specs)."""

    def __init__(self, url: str, tmp: Path, fc: FedCoin, task: int, srv: FLServer, store: LocalStore):
        self.url, self.tmp, self.w3, self.fc, self.task, self.srv, self.store = url, tmp, fc.w3, fc, task, srv, store
        self.store_dir = store.root
        self.procs, self.errors = [], []

    def serve_process(self, server, clients, flc: FLChain, *extra: str) -> subprocess.Popen:
        """``fedcoin server`` for this task, simulating ``clients`` with their keys (never in argv)."""
        name = f"server-{self.task}"
        env = dict(os.environ, FEDCOIN_PRIVATE_KEY=server.key.to_0x_hex(), PYTHONUNBUFFERED="1",
                   FEDCOIN_CLIENT_KEYS=",".join(c.key.to_0x_hex() for c in clients))
        cmd = [sys.executable, "-m", "fedcoin.cli", "server", "--rpc", self.url, "--contract", self.fc.address,
               "--task", str(self.task), "--store", f"local:{self.store_dir}", "--flchain", flc.address,
               "--simulate-clients", *SERVER_ARGS, *extra]
        p = subprocess.Popen(cmd, env=env, stdout=open(self.tmp / f"{name}.log", "w"), stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL, cwd=ROOT)
        self.procs.append(p)
        return p


@pytest.fixture(scope="module")
def node():
    with Anvil(accounts=40) as a:
        yield a


def _miner(url: str, tmp: Path, fc: FedCoin, flc: FLChain, account, name: str) -> subprocess.Popen:
    """A ``fedcoin mine`` process on every task of ``fc`` (no --task), checking trainers on ``flc``."""
    log = open(tmp / f"{name}.log", "a")
    env = dict(os.environ, FEDCOIN_PRIVATE_KEY=account.key.to_0x_hex(), PYTHONUNBUFFERED="1")
    cmd = [sys.executable, "-m", "fedcoin.cli", "mine", "--rpc", url, "--contract", fc.address, "--flchain",
           flc.address, "--store", f"local:{tmp / 'store'}", "--journal", str(tmp / "journal"), "--no-progress",
           "--poll", "0.3"]
    return subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=ROOT)


def _credited(flc: FLChain, account: str) -> int:
    return sum(int(e.args["amount"]) for e in flc.events("CreditedBy", account=account))


def test_flchain_trainers_federation_report_record_and_sale_end_to_end(node, tmp_path):
    t0 = time.time()
    url = node.url
    w3 = connect(url)
    acc = dev_accounts()
    requester, server_a, server_b, miners = acc[0], acc[1], acc[2], acc[20:22]
    trainers, auth, buyer, detector = acc[30:35], acc[37], acc[38], acc[39]
    fc = FedCoin.deploy(w3, requester, default_params())
    flc = FLChain.deploy(w3, requester, fedcoin=fc.address, auth=auth.address, params=P)
    by_addr = {a.address: a for a in trainers}
    inflow = 0  # every wei sent to FLChain, to account for at the end

    # 1. trainers register with deposits (d = 1 ETH each)
    for t in trainers:
        desc = f'{{"features":64,"labels":10,"samples":40,"owner":"{t.address}"}}'.encode()
        flc.as_account(t).register(keccak(desc), "local:0x" + keccak(desc).hex(), value=P.min_deposit)
        inflow += P.min_deposit
    assert all(flc.get_trainer(t.address).status == TrainerStatus.QUALIFIED for t in trainers)
    for srv in (server_a, server_b):  # each server's deposit answers for its global models
        flc.as_account(srv).register(keccak(b"server"), "local:0x00", value=P.min_deposit)
        inflow += P.min_deposit

    # 2. two requests; intentions on chain; Algorithm 1 allocates the federations from them
    deadline = fc.latest_timestamp() + 60
    req_a = flc.publish_request(keccak(b"digits logreg A"), "local:0xa", 3, deadline).event("RequestPublished")["requestId"]
    req_b = flc.publish_request(keccak(b"digits logreg B"), "local:0xb", 2, deadline).event("RequestPublished")["requestId"]
    # (income, cost) per trainer and request: trainers 0-2 profit most from A, 3-4 from B
    wants = {req_a: [(10, 1)] * 3 + [(3, 1)] * 2, req_b: [(5, 1)] * 3 + [(8, 1)] * 2}
    for rid, terms in wants.items():
        for t, (income, cost) in zip(trainers, terms):
            flc.as_account(t).post_intention(rid, ETH, income * 10**15, cost * 10**15)
            inflow += P.intention_fee
    posted = [Intention(int(e.args["requestId"]), e.args["trainer"], int(e.args["expectedPrice"]),
                        int(e.args["expectedIncome"]), int(e.args["cost"])) for e in flc.events("IntentionPosted")]
    assert len(posted) == 10
    seats = {rid: flc.get_request(rid)["seats"] for rid in (req_a, req_b)}
    fed = allocate(seats, {t.address: flc.reliability(t.address) for t in trainers}, posted)
    assert sorted(fed[req_a]) == sorted(t.address for t in trainers[:3])
    assert sorted(fed[req_b]) == sorted(t.address for t in trainers[3:])
    advance(w3, 61)  # intentions closed: the allocation is final

    # 3. the FedCoin tasks list the allocated trainers, require them on FLChain; they join
    task_a = fc.create_task(server_a.address, fed[req_a], 2, 2 * ETH, **WINDOWS).task_id
    # B's round runs beside A's round 0 on the same two miners, which prepare A's first: a longer
    # commit window, so that it settles in its first attempt (and still before A's round 1 ends)
    task_b = fc.create_task(server_b.address, fed[req_b], 1, ETH, **dict(WINDOWS, commit_window=45)).task_id
    for tid, rid in ((task_a, req_a), (task_b, req_b)):
        assert set(fc.task_clients(tid)) == set(fed[rid])  # the allocated set is the task's client list
        flc.require_trainers(tid, P.min_deposit, request_id=rid)
        flc.as_account(server_a if tid == task_a else server_b).join(tid)  # the server first
        for c in fed[rid]:
            flc.as_account(by_addr[c]).join(tid)
            assert flc.get_join(tid, c).amount == P.min_deposit
    assert all(flc.get_trainer(t.address).frozen == P.min_deposit for t in trainers)
    checks = fl_audit.check_all(flc, fc)  # what `fedcoin audit` recomputes
    assert [(c.task_id, c.ok) for c in checks] == [(task_a, True), (task_b, True)]

    # 4. the FL server processes (trainer check on) and two miner processes (re-checking it)
    store = LocalStore(tmp_path / "store")
    cfg = dataclasses.replace(CONFIG, flchain=flc.address)
    splits = load_digits()
    listed_a = fc.task_clients(task_a)
    offender = by_addr[listed_a[-1]]
    honest_a = [by_addr[c] for c in listed_a[:-1]]
    # task B's clients hold IID shares, so that both contribute and the sale is split between them
    srv_a = FLServer(fc.as_account(server_a), task_a, (), store, cfg, splits=splits)
    srv_b = FLServer(fc.as_account(server_b), task_b, (), store, dataclasses.replace(cfg, iid=True), splits=splits)
    srv_b_clients = [by_addr[c] for c in fed[req_b]]
    a, b = TaskView(url, tmp_path, fc, task_a, srv_a, store), TaskView(url, tmp_path, fc, task_b, srv_b, store)
    procs = [_miner(url, tmp_path, fc, flc, m, f"m{i + 1}") for i, m in enumerate(miners)]
    try:
        fc.as_account(server_a).accept_task(task_a)  # so that the offender registers round 0 itself
        good = init_params(ARCH, key=jax.random.key(3))
        small = {k: 0.01 * np.asarray(v) for k, v in good.items()}
        nan = {k: np.array(v) for k, v in small.items()}
        nan["w0"][0, 0] = np.nan
        off = fc.as_account(offender)
        blob0 = _blob(small)  # round 0: a valid update
        off.register_update(task_a, 0, content_hash(blob0), store.put(blob0), 40)
        servers = [a.serve_process(server_a, honest_a, flc), b.serve_process(server_b, srv_b_clients, flc, "--iid")]
        wait_for(lambda: fc.get_task(task_a).current_round == 1, 200, "task A's round 0 to finalize")
        blob1 = _blob(nan)  # round 1: NaN
        off.register_update(task_a, 1, content_hash(blob1), store.put(blob1), 40)
        for p, view in zip(servers, (a, b)):
            p.wait(timeout=cfg.round_timeout)
            assert p.returncode == 0, view.log(f"server-{view.task}")
        assert fc.get_task(task_a).status == TaskStatus.COMPLETED and fc.get_task(task_b).status == TaskStatus.COMPLETED
        ran = time.time() - t0
    finally:
        for p in procs + a.procs + b.procs:
            if p.poll() is None:
                p.terminate()
                p.wait(timeout=30)
    for name in ("m1", "m2", f"server-{task_a}", f"server-{task_b}"):
        assert f"trainer check: FLChain {flc.address}" in a.log(name), a.log(name)
    assert "2 round(s) handled" in a.log(f"server-{task_a}") and "excluding registration" in a.log(f"server-{task_a}")
    a.assert_clean("m1", "m2")
    b.assert_clean("m1", "m2")

    # 5. the miners excluded the NaN update, and only it; the round finalized
    assert a.spec(0).excluded == () and b.spec(0).excluded == ()
    spec1 = a.spec(1)
    bad = next(i for i, u in enumerate(spec1.updates) if u.client == offender.address)
    assert [(e.index, e.reason) for e in spec1.excluded] == [(bad, "non-finite")]
    assert a.amounts(1)[offender.address] == 0 and fc.is_excluded(task_a, 1, bad)

    # 6. an outsider reports it, with the round's spec bytes from the store
    ev = fc.published_events(task_a, 1)[-1]
    spec_bytes = store.get(ev.args["specLocator"], fc.get_round(task_a, 1).spec_hash)
    assert rules.exclusion_reason(spec_bytes, bad) == "non-finite"
    before = {x: flc.credits(x) for x in [detector.address, requester.address, *listed_a]}
    res = flc.as_account(detector).report_invalid_update(fc, spec_bytes, task_a, 1, bad)
    inflow += P.report_fee
    rid = res.event("ReportFiled")["reportId"]
    assert flc.get_report(rid).state == ReportState.UPHELD
    honest = len(spec1.updates) - len(spec1.excluded)
    reward, each, rest = rules.confiscation(P.min_deposit, P.reward_bps, P.compensation_bps, honest)
    gained = {x: flc.credits(x) - v for x, v in before.items()}
    assert gained[detector.address] == P.report_fee + reward
    assert all(gained[c.address] == each for c in honest_a) and gained[offender.address] == 0
    assert gained[requester.address] == rest and reward + each * honest + rest == P.min_deposit
    tr = flc.get_trainer(offender.address)
    assert (tr.status, tr.deposit, tr.frozen, tr.upheld) == (TrainerStatus.SUSPENDED, 0, 0, 1)
    assert flc.is_problematic(task_a) and not flc.is_problematic(task_b)

    # 7. every round recorded; the servers list the final models
    for tid, rounds in ((task_a, 2), (task_b, 1)):
        for r in range(rounds):
            flc.as_account(detector).record_round(fc, tid, r)
            assert flc.is_recorded(tid, r)
    price = ETH + 7

    def list_final(srv: FLServer, who, tid: int):
        raw = params_to_bytes({k: np.asarray(v) for k, v in srv.global_model(fc.get_task(tid).rounds).items()})
        return flc.as_account(who).list_model(tid, price, content_hash(raw), store.put(raw)).event("ModelListed")["modelId"]

    model_a = list_final(srv_a, server_a, task_a)
    assert flc.model_status(model_a) == ModelStatus.PROBLEMATIC
    with pytest.raises(ContractRevert, match="FLChainNotForSale"):
        flc.as_account(buyer).buy(model_a)
    sellers = flc.task_trainers(task_b)
    assert set(sellers) == set(fed[req_b])  # both trainers contributed (positive consensus values)
    contrib = [flc.contribution(task_b, t) for t in sellers]
    rely = [flc.reliability(t) for t in sellers]
    for t, r in zip(sellers, rely):
        x = flc.get_trainer(t)
        assert r == rules.reliability(x.rounds, x.positive, x.eval_count, x.eval_sum, x.upheld)
    want, dust = rules.sale_split(price, contrib, rely)
    assert len(want) == 2 and all(want) and sum(want) + dust == price
    model_b = list_final(srv_b, server_b, task_b)
    assert flc.model_status(model_b) == ModelStatus.ON_SALE
    listing = flc.listing(model_b).args
    assert [int(x) for x in listing["amounts"]] == want and int(listing["dust"]) == dust

    # 8. a buyer buys; the trainers claim the revenue by contribution
    flc.as_account(buyer).buy(model_b)
    inflow += price
    for t, amount in zip(sellers, want):
        got = flc.as_account(by_addr[t]).claim_sales(model_b)
        assert got.event("SalesClaimed")["amount"] == amount and flc.claimed_sales(model_b, t) == amount
    assert flc.credits(server_b.address) == dust

    # the miners attested round 1's global model right: the honest server keeps its deposit
    wrong, wrong_stake, revealed = flc.jury().verdict(task_a, 1)
    assert not wrong and wrong_stake == 0 and revealed > 0
    atts = [flc.jury().attestation(task_a, 1, fc.get_round(task_a, 1).attempt, m.address) for m in miners]
    assert 1 in atts and 2 not in atts, atts  # 1: "right"

    # 9. deposits released after completion (not the offender's: confiscated), then everyone withdraws
    by_addr.update({server_a.address: server_a, server_b.address: server_b})
    for tid, members in ((task_a, [c.address for c in honest_a] + [server_a.address]),
                         (task_b, fed[req_b] + [server_b.address])):
        for c in members:
            flc.as_account(by_addr[c]).release(tid)
            assert flc.get_join(tid, c).released
    with pytest.raises(ContractRevert, match="FLChainNothingToRelease"):
        flc.as_account(offender).release(task_a)
    for t in [*trainers, server_a, server_b]:
        x = flc.get_trainer(t.address)
        assert x.frozen == 0
        if x.deposit:
            flc.as_account(t).withdraw_deposit(x.deposit)
    everyone = [requester.address, server_a.address, server_b.address, auth.address, buyer.address, detector.address,
                *(t.address for t in trainers)]
    for x in everyone:
        if flc.credits(x):
            flc.as_account(next(y for y in acc if y.address == x)).withdraw()

    # 10. both contracts: balance == liabilities; FLChain emptied, every wei accounted for
    assert fc.balance() == fc.liabilities()
    assert flc.balance() == flc.liabilities() == 0
    withdrawn = {x: sum(int(e.args["amount"]) for e in flc.events("Withdrawn", account=x)) for x in everyone}
    for x in everyone:
        assert _credited(flc, x) == withdrawn[x] + flc.credits(x), x
    claimed = sum(int(e.args["amount"]) for e in flc.events("SalesClaimed"))
    assert inflow == sum(withdrawn.values()) + claimed + flc.balance()
    assert sum(int(e.args["amount"]) for e in flc.events("Withdrawn")) == sum(withdrawn.values())
    attempts = [fc.get_round(task_a, 0).attempt, fc.get_round(task_a, 1).attempt, fc.get_round(task_b, 0).attempt]
    print(f"FLChain e2e: rounds ran in {ran:.0f}s (attempts A0, A1, B0: {attempts}), {time.time() - t0:.0f}s in all; "
          f"report {rid}: reward {reward}, "
          f"{honest} x {each} compensation, rest {rest}; sale {want} + dust {dust}")
