"""``fedcoin flchain <verb>`` and ``fedcoin deploy --flchain`` on a real Anvil: every verb's help,
the happy paths of the trainer, requester, server, buyer and auth commands, the index answering
for-sale / under-judgement / problematic after real events (and after a revert), and bad input
that names the problem and sends nothing (the account's nonce and balance unchanged)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from conftest import chain_env
from eth_utils import keccak
from fedcoin_testkit import ETH, vec
from round_driver import play_round

from fedcoin.cli import main
from fedcoin.content.store import LocalStore
from fedcoin.dev.devnet import free_port
from fedcoin.dev.toolchain import ROOT
from fedcoin.flchain.binding import FLChain, FLChainParams, ModelStatus, ReportState, TrainerStatus
from fedcoin.roles.flchain_index import FLChainIndex

env = chain_env(n_clients=3, n_miners=2)
P = FLChainParams()
KEY_VARS = ("FEDCOIN_PRIVATE_KEY", "FEDCOIN_KEYSTORE", "FEDCOIN_KEYSTORE_PASSWORD")
#: A round's spec as FLChain reads it: it excludes registration 2 as non-finite.
SPEC = b'{"excluded":[{"client":"0x00","index":2,"reason":"non-finite"}],"x":1}'
DATA = {"features": 784, "samples": 1000, "labels": list(range(10))}


@pytest.fixture(scope="module")
def flc(env):
    w3, fc, a = env
    return FLChain.deploy(w3, a.requester, fedcoin=fc.address, auth=a.outsider.address, params=P)


@pytest.fixture(autouse=True)
def home(monkeypatch, tmp_path):
    for k in KEY_VARS:
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("FEDCOIN_HOME", str(tmp_path))
    return tmp_path


@pytest.fixture
def run(anvil, flc, monkeypatch, capsys):
    """``run(who, *argv)`` -> (rc, stdout, stderr) of ``fedcoin flchain *argv --rpc … --flchain …``
    signed by ``who`` (None: no key)."""

    def _run(who, *argv, rpc=None, address=True):
        if who is None:
            monkeypatch.delenv("FEDCOIN_PRIVATE_KEY", raising=False)
        else:
            monkeypatch.setenv("FEDCOIN_PRIVATE_KEY", who.key.to_0x_hex())
        extra = ["--rpc", rpc or anvil.url] + (["--flchain", flc.address] if address else [])
        capsys.readouterr()
        rc = main(["flchain", *argv, *extra])
        out, err = capsys.readouterr()
        return rc, out, err

    return _run


def _state(w3, who):
    return w3.eth.get_transaction_count(who.address), w3.eth.get_balance(who.address)


def _data_file(tmp_path, name="data.json", doc=None):
    p = tmp_path / name
    p.write_text(json.dumps(doc or DATA))
    return p


# ----------------------------------------------------------------------------- help

LEAVES = [
    "register", "update", "deposit", "withdraw-deposit", "available", "withdraw", "require", "join", "release",
    "request", "intention", "federation", "report update", "report aggregate", "report unqualified", "judge", "record", "list", "buy",
    "evaluate", "claim-sales", "delist", "show trainer", "show model", "show report", "show request",
    "query for-sale", "query judgement", "query problematic", "query models", "index", "deploy",
    "", "report", "show", "query",
]


@pytest.mark.parametrize("verb", LEAVES)
def test_every_verb_has_help(verb, capsys):
    with pytest.raises(SystemExit) as e:
        main(["flchain", *verb.split(), "--help"])
    out = capsys.readouterr().out
    assert e.value.code == 0 and out.startswith(f"usage: fedcoin flchain {verb}".rstrip()), out


# ----------------------------------------------------------------------------- deploy


def test_deploy_flchain_records_it_where_open_flchain_looks(env, anvil, monkeypatch, capsys):
    from fedcoin.chain.deployment import deployed_address
    from fedcoin.flchain.binding import open_flchain

    w3, fc, a = env
    monkeypatch.setenv("FEDCOIN_PRIVATE_KEY", a.requester.key.to_0x_hex())
    before = _state(w3, a.requester)
    rc = main(["deploy", "--rpc", anvil.url, "--flchain", "--reward-bps", "9000", "--compensation-bps", "2000"])
    assert rc == 2 and "exceed 10000" in capsys.readouterr().err and _state(w3, a.requester) == before
    rc = main(["deploy", "--rpc", anvil.url, "--auth", a.outsider.address])
    assert rc == 2 and "need --flchain" in capsys.readouterr().err and _state(w3, a.requester) == before
    rc = main(["deploy", "--rpc", anvil.url, "--flchain", "--auth", a.outsider.address, "--min-deposit", "2ether",
               "--report-fee", "20000000000000000"])
    out = capsys.readouterr().out
    assert rc == 0 and "FLChain deployed at" in out, out
    f = open_flchain(anvil.url)
    assert f.address == deployed_address(31337, "FLChain")
    assert f.fedcoin().address == deployed_address(31337) and f.auth() == a.outsider.address
    assert (f.min_deposit(), f.report_fee(), f.intention_fee()) == (2 * ETH, 2 * ETH // 100, P.intention_fee)
    # and beside an existing FedCoin, the recorded one by default
    rc = main(["flchain", "deploy", "--rpc", anvil.url])
    assert rc == 0 and open_flchain(anvil.url).address != f.address
    assert open_flchain(anvil.url).fedcoin().address == deployed_address(31337)


# ----------------------------------------------------------------------------- trainers, tasks, federation


def test_trainer_and_requester_commands_end_to_end(env, flc, run, tmp_path, home):
    from fedcoin.roles.flchain_cli import federation

    w3, fc, a = env
    c0, c1, c2 = a.clients
    data = _data_file(tmp_path)
    rc, out, err = run(c0, "register", "--data", str(data), "--deposit", "1.5")
    assert rc == 0, err
    tr = flc.get_trainer(c0.address)
    assert tr.status == TrainerStatus.QUALIFIED and tr.deposit == 3 * ETH // 2
    assert tr.data_hash == keccak(data.read_bytes())
    locator = flc.events("TrainerRecord", trainer=c0.address)[-1].args["dataLocator"]
    assert LocalStore(home / "store").get(locator, tr.data_hash) == data.read_bytes()
    # a second registration is refused before anything is sent
    n = _state(w3, c0)
    rc, _, err = run(c0, "register", "--data", str(data))
    assert rc == 2 and "already registered" in err and _state(w3, c0) == n
    # a new record version
    rc, _, err = run(c0, "update", "--data", str(_data_file(tmp_path, "v2.json", {"samples": 2000})))
    assert rc == 0, err
    assert flc.get_trainer(c0.address).version == 2
    # deposits
    assert run(c0, "deposit", "0.5")[0] == 0 and flc.get_trainer(c0.address).deposit == 2 * ETH
    n = _state(w3, c0)
    rc, _, err = run(c0, "withdraw-deposit", "1.5")  # 0.5 would stay: below the minimum
    assert rc == 2 and "below the minimum deposit" in err and _state(w3, c0) == n
    rc, _, err = run(c0, "withdraw-deposit", "1")
    assert rc == 0, err
    assert flc.get_trainer(c0.address).deposit == ETH and flc.credits(c0.address) == 0
    assert run(c0, "available", "no")[0] == 0 and not flc.get_trainer(c0.address).available
    assert run(c0, "available", "yes")[0] == 0 and flc.get_trainer(c0.address).available
    # a task requiring trainers, joined through the CLI
    for c in (c1, c2):
        flc.as_account(c).register(keccak(b"d"), "local:0x00")
    tid = fc.as_account(a.requester).create_task(a.server.address, [c.address for c in a.clients], 1, ETH).task_id
    rc, _, err = run(a.requester, "require", str(tid), "--deposit", "1")
    assert rc == 0, err
    assert flc.required_deposit(tid) == ETH
    rc, _, err = run(c0, "join", str(tid))
    assert rc == 2 and "has not joined it yet" in err  # the server's deposit goes at stake first
    _server_joins(flc, a, tid)
    rc, out, err = run(c0, "join", str(tid))
    assert rc == 0 and "freezing 1.000000 ETH" in out, err
    assert flc.joined_at(tid, c0.address) > 0 and flc.get_trainer(c0.address).frozen == ETH
    rc, _, err = run(c0, "join", str(tid))
    assert rc == 2 and "already joined" in err
    rc, _, err = run(c0, "release", str(tid))
    assert rc == 2 and "is created" in err
    # federation: a request, two intentions, the allocation recomputed from the chain
    desc = _data_file(tmp_path, "model.json", {"model": "mlp", "task": "mnist"})
    rc, out, err = run(a.requester, "request", "--desc", str(desc), "--seats", "1", "--deadline", "3600")
    assert rc == 0 and "request 0 published" in out, err
    assert run(c1, "intention", "0", "--price", "1", "--income", "2", "--cost", "0.5")[0] == 0
    assert run(c2, "intention", "0", "--price", "1", "--income", "3", "--cost", "0.5")[0] == 0
    rc, out, _ = run(None, "federation", "0", "--json")
    got = json.loads(out)["0"]
    assert rc == 0 and [t["address"] for t in got["trainers"]] == [c2.address] and got["intentions"] == 2
    assert got == {k: v for k, v in federation(flc, [0])[0].items()}
    rc, out, _ = run(None, "show", "request", "0", "--json")
    assert rc == 0 and json.loads(out)["seats"] == 1 and json.loads(out)["desc_hash"] == "0x" + keccak(desc.read_bytes()).hex()
    rc, out, _ = run(None, "show", "trainer", c0.address, "--json")
    shown = json.loads(out)
    assert rc == 0 and shown["status"] == "qualified" and shown["frozen"] == ETH and shown["version"] == 2
    assert shown["reliability_ppm"] == flc.reliability(c0.address) == 300_000


def _spec_round(w3, fc, a, tid, store, spec=SPEC, excluded=(2,), values=(0.40, 0.10, 0.0)):
    """Round 0 of ``tid``: every client registers, the server publishes ``spec`` from the store
    (its keccak on chain), two miners agree on ``values``, and the round is finalized."""
    locator = store.put(spec)
    for c in a.clients:
        fc.as_account(c).register_update(tid, 0, b"\x01" * 32, f"cid-{c.address}", 100)
    fc.as_account(a.server).publish_shapley_task(tid, 0, keccak(spec), locator, excluded=excluded)
    v = vec(list(values))
    play_round(w3, fc, a, tid, 0, [v, v], [10, 10], register=False)
    fc.as_account(a.outsider).finalize(tid, 0)
    return locator


def _server_joins(flc, a, tid):
    """The task's server registers (once) and joins its task: trainers can join only after it."""
    if flc.get_trainer(a.server.address).status == 0:
        flc.as_account(a.server).register(keccak(b"server"), "local:0x00", value=10 * ETH)
    flc.as_account(a.server).join(tid)


def _joined_task(fc, flc, a):
    tid = fc.as_account(a.requester).create_task(a.server.address, [c.address for c in a.clients], 1, ETH,
                                                 difficulty=10**17, p=2, relative=False, registration_window=100,
                                                 commit_window=100, reveal_window=100).task_id
    flc.as_account(a.requester).require_trainers(tid, P.min_deposit)
    _server_joins(flc, a, tid)
    for c in a.clients:
        flc.as_account(c).join(tid)
    fc.as_account(a.server).accept_task(tid)
    return tid


def test_reports_marketplace_and_the_index_answer_after_real_events(env, flc, run, home, tmp_path):
    w3, fc, a = env
    c0, c1, c2 = a.clients
    detector, buyer = a.miners
    auth = a.outsider
    store = LocalStore(home / "store")
    for c in a.clients:
        flc.as_account(c).register(keccak(b"d"), "local:0x00", value=3 * ETH)
    # task A: a clean round; its model goes on sale
    ta = _joined_task(fc, flc, a)
    _spec_round(w3, fc, a, ta, store, spec=b'{"excluded":[]}', excluded=(), values=(0.4, 0.1, 0.2))
    rc, _, err = run(a.server, "list", str(ta), "--price", "1", "--model-locator", "local:0x" + "00" * 32,
                     "--model-hash", "0x" + "11" * 32)
    assert rc == 2 and "not recorded yet: fedcoin flchain record" in err
    assert run(detector, "record", str(ta), "0")[0] == 0 and flc.is_recorded(ta, 0)
    model_blob = store.put(b"model A weights")
    rc, out, err = run(a.server, "list", str(ta), "--price", "1", "--model-locator", model_blob)
    assert rc == 0 and "model 0 listed" in out, err
    assert flc.get_model(0).model_hash == keccak(b"model A weights")
    # task B: registration 2 excluded as non-finite; the report is upheld, the model problematic
    tb = _joined_task(fc, flc, a)
    spec_locator = _spec_round(w3, fc, a, tb, store)
    blob = store.root / spec_locator[len("local:0x"):][:2] / spec_locator[len("local:0x"):]
    blob.write_bytes(SPEC.replace(b"non-finite", b"nan-finite"))  # tampered in the store
    before = _state(w3, detector)
    rc, _, err = run(detector, "report", "update", str(tb), "0", "2")
    assert rc == 2 and "but the round's on-chain specHash is" in err and _state(w3, detector) == before
    blob.write_bytes(SPEC)
    rc, _, err = run(detector, "report", "update", str(tb), "0", "1")
    assert rc == 2 and "included registration 1" in err and _state(w3, detector) == before
    rc, out, err = run(detector, "report", "update", str(tb), "0", "2")
    assert rc == 0 and "report 0: upheld" in out, err
    assert flc.get_trainer(c2.address).status == TrainerStatus.SUSPENDED and flc.is_problematic(tb)
    rc, _, err = run(detector, "report", "update", str(tb), "0", "2")
    assert rc == 2 and "already reported" in err
    assert run(detector, "record", str(tb), "0")[0] == 0
    rc, out, err = run(a.server, "list", str(tb), "--price", "2", "--model-locator", "local:0x" + "22" * 32,
                       "--model-hash", "0x" + "22" * 32)
    assert rc == 0 and flc.model_status(1) == ModelStatus.PROBLEMATIC, err
    # an unqualified report waits for auth
    rc, out, err = run(detector, "report", "unqualified", c0.address)
    assert rc == 0 and "report 1 is pending" in out, err
    # the index: the three queries
    rc, out, _ = run(None, "query", "for-sale", "0")
    assert rc == 0 and out.startswith("model 0: for sale"), out
    assert run(None, "query", "for-sale", "1")[1].startswith("model 1: not for sale")
    assert run(None, "query", "problematic", "1")[1].startswith("model 1: problematic")
    assert run(None, "query", "problematic", "0")[1].startswith("model 0: not problematic")
    rc, out, _ = run(None, "query", "judgement", c0.address)
    assert rc == 0 and f"{c0.address}: under judgement (pending reports 1)" in out, out
    assert "not under judgement" in run(None, "query", "judgement", c1.address)[1]
    assert "model 0: under judgement" in run(None, "query", "judgement", "0")[1]  # c0 trained model 0
    rc, out, _ = run(None, "query", "models", "--status", "on-sale", "--json")
    assert [m["model_id"] for m in json.loads(out)["models"]] == [0]
    rc, _, err = run(None, "query", "for-sale", "9")
    assert rc == 2 and "model 9 is not listed" in err
    # buying: the problematic one is refused before sending, the listed one is bought
    before = _state(w3, buyer)
    rc, _, err = run(buyer, "buy", "1")
    assert rc == 2 and "is not for sale: it is problematic" in err and _state(w3, buyer) == before
    rc, _, err = run(buyer, "buy", "7")
    assert rc == 2 and "model 7 does not exist" in err and _state(w3, buyer) == before
    rc, _, err = run(buyer, "evaluate", "0", "5")
    assert rc == 2 and "did not buy model 0" in err and _state(w3, buyer) == before
    assert run(buyer, "buy", "0")[0] == 0 and flc.get_model(0).sales == 1
    assert run(buyer, "evaluate", "0", "5")[0] == 0
    rc, _, err = run(buyer, "evaluate", "0", "4")
    assert rc == 2 and "already evaluated" in err
    # auth judges; the trainer is no longer under judgement
    before = _state(w3, c1)
    rc, _, err = run(c1, "judge", "1", "rejected")
    assert rc == 2 and "only auth" in err and _state(w3, c1) == before
    assert run(auth, "judge", "1", "rejected")[0] == 0 and flc.get_report(1).state == ReportState.REJECTED
    assert "not under judgement" in run(None, "query", "judgement", c0.address)[1]
    rc, _, err = run(auth, "judge", "1", "upheld")
    assert rc == 2 and "is rejected, not pending" in err
    # sales: each trainer of model 0 claims its share once
    amount, _ = flc.sale_proof(0, c0.address)
    bal = w3.eth.get_balance(c0.address)
    rc, out, err = run(c0, "claim-sales", "0")
    assert rc == 0, err
    assert flc.claimed_sales(0, c0.address) == amount and w3.eth.get_balance(c0.address) > bal
    assert "nothing to claim" in run(c0, "claim-sales", "0")[1]
    # the index follows a delisting, and a revert of it (a reorg, as far as the index can tell)
    snap = w3.provider.make_request("evm_snapshot", [])["result"]
    assert run(a.server, "delist", "0")[0] == 0
    assert "not for sale" in run(None, "query", "for-sale", "0")[1]
    assert w3.provider.make_request("evm_revert", [snap])["result"] is True
    w3.provider.make_request("evm_mine", [])
    assert run(None, "query", "for-sale", "0")[1].startswith("model 0: for sale")
    with FLChainIndex.for_flchain(flc) as idx:
        idx.sync()
        assert idx.is_for_sale(0) and not idx.is_for_sale(1) and idx.is_problematic(1)
        assert not idx.under_judgement(c0.address) and idx.pending_reports(0) == []
        assert [m.model_id for m in idx.models(ModelStatus.PROBLEMATIC)] == [1]
        assert idx.report(0).state == ReportState.UPHELD
    rc, out, _ = run(None, "show", "model", "1", "--json")
    assert json.loads(out)["status"] == "problematic" and json.loads(out)["listed_status"] == "problematic"
    rc, out, _ = run(None, "show", "report", "0", "--json")
    assert rc == 0 and json.loads(out)["state"] == "upheld" and json.loads(out)["kind"] == "invalid_update"
    rc, out, _ = run(None, "index")
    assert rc == 0 and "2 model(s), 2 report(s)" in out, out
    credit = flc.credits(detector.address)
    assert credit > P.report_fee and run(detector, "withdraw")[0] == 0 and flc.credits(detector.address) == 0
    assert "no FLChain credit" in run(detector, "withdraw")[1]


def test_index_queries_agree_with_a_direct_reading_of_the_rows(tmp_path):
    """The benchmark's synthetic rows, answered by SQL and by plain Python over the same rows."""
    import importlib.util

    from fedcoin.chain.artifact import load_artifact

    spec = importlib.util.spec_from_file_location("_flchain_query_bench", ROOT / "benchmarks" / "flchain_query_bench.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    with FLChainIndex(tmp_path / "x.sqlite", None, "0x" + "12" * 20, load_artifact("FLChain")["abi"]) as idx:
        bench.fill(idx, 400, 400, 60, seed=3)
        models = {m: (t, st) for m, t, _l, _p, st, _b in idx.db.execute("SELECT * FROM flc_models")}
        bad = {t for (t,) in idx.db.execute("SELECT task_id FROM flc_problematic")}
        pending = {a for (a,) in idx.db.execute("SELECT accused FROM flc_reports WHERE state = 1")}
        trainers = {}
        for m, t in idx.db.execute("SELECT * FROM flc_model_trainers"):
            trainers.setdefault(m, set()).add(t)
        on_sale = [m for m, (t, st) in sorted(models.items()) if st == ModelStatus.ON_SALE and t not in bad]
        assert [r.model_id for r in idx.models(ModelStatus.ON_SALE)] == on_sale and 0 < len(on_sale) < 400
        for m, (t, st) in models.items():
            assert idx.is_for_sale(m) == (m in on_sale)
            assert idx.is_problematic(m) == (t in bad or st == ModelStatus.PROBLEMATIC)
            assert idx.under_judgement(m) == bool(trainers[m] & pending)
            # the effective status is the contract's modelStatus: a delisted model stays unavailable,
            # though it is still problematic (its task had a report upheld)
            eff = ModelStatus.PROBLEMATIC if st == ModelStatus.ON_SALE and t in bad else ModelStatus(st)
            assert idx.model(m).status == eff
        assert sorted(m.model_id for s in ModelStatus for m in idx.models(s)) == sorted(models)
        some = sorted(pending)[0]
        assert idx.under_judgement(some) and idx.pending_reports(some)
        with pytest.raises(KeyError, match="model 400 is not listed"):
            idx.is_for_sale(400)


# ----------------------------------------------------------------------------- bad input


def _bad_checksum(addr: str) -> str:
    i = next(i for i, ch in enumerate(addr) if ch.isalpha() and i > 1)
    return addr[:i] + addr[i].swapcase() + addr[i + 1:]


#: name -> (argv given the context, what the one-line error says); the signer is client 0, a
#: registered trainer with 3 ETH deposited, 1 ETH of it frozen for task ``req`` (which requires
#: trainers); task ``plain`` requires none; request 0 is open.
BAD = {
    "zero deposit": (lambda x: ["deposit", "0"], "must be positive"),
    "negative deposit": (lambda x: ["deposit", "-1"], "must be positive"),
    "not an amount": (lambda x: ["deposit", "lots"], "is not an amount"),
    "fractional wei": (lambda x: ["deposit", "0.5wei"], "not a whole number of wei"),
    "register twice": (lambda x: ["register", "--data", x["data"]], "already registered"),
    "register not json": (lambda x: ["register", "--data", x["notjson"]], "is not JSON"),
    "register zero deposit": (lambda x: ["register", "--data", x["data"], "--deposit", "0"], "must be positive"),
    "bad address": (lambda x: ["report", "unqualified", "0x1234"], "is not an address"),
    "bad checksum": (lambda x: ["report", "unqualified", _bad_checksum(x["c1"])], "bad EIP-55 checksum"),
    "zero address": (lambda x: ["report", "unqualified", "0x" + "00" * 20], "zero address"),
    "report a non-trainer": (lambda x: ["report", "unqualified", x["c1"]], "not a registered trainer"),
    "join without requirement": (lambda x: ["join", x["plain"]], "requires no trainers"),
    "join an unknown task": (lambda x: ["join", "99"], "task 99 does not exist"),
    "require for another's task": (lambda x: ["require", x["plain"], "--deposit", "1"], "requester is"),
    "withdraw frozen deposit": (lambda x: ["withdraw-deposit", "3"], "2.000000 ETH (2000000000000000000 wei) free"),
    "unknown model": (lambda x: ["buy", "0"], "model 0 does not exist"),
    "delist unknown": (lambda x: ["delist", "3"], "model 3 does not exist"),
    "score out of range": (lambda x: ["evaluate", "0", "6"], "between 1 and 5"),
    "unknown request": (lambda x: ["intention", "4", "--price", "1", "--income", "1", "--cost", "0"],
                        "request 4 does not exist"),
    "negative cost": (lambda x: ["intention", "0", "--price", "1", "--income", "1", "--cost", "-2"],
                      "must be 0 or more"),
    "judge as non-auth": (lambda x: ["judge", "0", "upheld"], "only auth"),
    "record an unfinalized round": (lambda x: ["record", x["req"], "0"], "not finalized"),
    "report an unfinalized round": (lambda x: ["report", "update", x["req"], "0", "0"], "not finalized"),
    "report round 0's model": (lambda x: ["report", "aggregate", x["req"], "0"], "ROUND 0"),
    "report a round the task does not have": (lambda x: ["report", "aggregate", x["req"], "1"], "has rounds 0..0"),
    "list as non-server": (lambda x: ["list", x["req"], "--price", "1", "--model-locator", "x"], "server is"),
    "list zero price": (lambda x: ["list", x["req"], "--price", "0", "--model-locator", "x"], "must be positive"),
    "release unjoined": (lambda x: ["release", x["plain"]], "is created"),
    "not an id": (lambda x: ["record", "one", "0"], "is not an integer"),
}


@pytest.mark.parametrize("name", BAD)
def test_bad_input_names_the_problem_and_sends_nothing(env, flc, run, tmp_path, name):
    w3, fc, a = env
    c0 = a.clients[0]
    flc.as_account(c0).register(keccak(b"d"), "local:0x00", value=3 * ETH)
    clients = [c.address for c in a.clients]
    tid_plain = fc.as_account(a.requester).create_task(a.server.address, clients, 1, ETH).task_id
    tid_req = fc.as_account(a.requester).create_task(a.server.address, clients, 1, ETH).task_id
    flc.as_account(a.requester).require_trainers(tid_req, ETH)
    _server_joins(flc, a, tid_req)
    flc.as_account(c0).join(tid_req)
    flc.as_account(a.requester).publish_request(keccak(b"m"), "local:0x00", 1, fc.next_block_time() + 3600)
    (tmp_path / "bad.json").write_text("{not json")
    ctx = {"data": str(_data_file(tmp_path)), "notjson": str(tmp_path / "bad.json"), "plain": str(tid_plain),
           "req": str(tid_req), "c1": a.clients[1].address}
    argv_of, message = BAD[name]
    argv = argv_of(ctx)
    before = (_state(w3, c0), flc.balance(), fc.balance())
    rc, out, err = run(c0, *argv)
    assert rc == 2 and message in err, (out, err)
    assert err.startswith("fedcoin flchain ") and len(err.strip().splitlines()) == 1 and "nothing" in err
    assert (_state(w3, c0), flc.balance(), fc.balance()) == before


def test_require_names_a_closed_request_only(env, flc, run):
    """`require --request` refuses a request still taking intentions (its allocation could
    change), then records the request once it has closed."""
    from fedcoin_testkit import advance

    w3, fc, a = env
    tid = fc.as_account(a.requester).create_task(a.server.address, [c.address for c in a.clients], 1, ETH).task_id
    rid = flc.as_account(a.requester).publish_request(keccak(b"m"), "local:0x00", 1, fc.next_block_time() + 100) \
        .event("RequestPublished")["requestId"]
    n = _state(w3, a.requester)
    rc, _, err = run(a.requester, "require", str(tid), "--deposit", "1", "--request", str(rid))
    assert rc == 2 and "not final yet" in err and _state(w3, a.requester) == n
    advance(w3, flc.get_request(rid)["deadline"] - fc.latest_timestamp() + 1)
    rc, _, err = run(a.requester, "require", str(tid), "--deposit", "1", "--request", str(rid))
    assert rc == 0, err
    assert flc.task_request(tid) == rid and flc.required_deposit(tid) == ETH


def test_no_key_and_no_flchain_are_clear(env, flc, run, anvil, monkeypatch, capsys):
    w3, fc, a = env
    rc, _, err = run(None, "deposit", "1")
    assert rc == 2 and "no signing key" in err
    rc, _, err = run(a.clients[0], "deposit", "1", address=False)
    assert rc == 2 and "no FLChain deployment recorded for chain 31337" in err
    monkeypatch.setenv("FEDCOIN_PRIVATE_KEY", a.clients[0].key.to_0x_hex())
    rc = main(["flchain", "deposit", "1", "--rpc", anvil.url, "--flchain", fc.address])
    assert rc == 2 and "is not this version of FLChain" in capsys.readouterr().err


def test_unreachable_rpc_is_a_clear_error_with_a_nonzero_exit(env, run):
    w3, fc, a = env
    dead = f"http://127.0.0.1:{free_port()}"
    before = _state(w3, a.clients[0])
    rc, _, err = run(a.clients[0], "deposit", "1", rpc=dead)
    assert rc == 2 and f"cannot reach the Ethereum RPC at {dead}" in err and _state(w3, a.clients[0]) == before
    proc = subprocess.run([sys.executable, "-m", "fedcoin.cli", "flchain", "show", "trainer", a.clients[0].address,
                           "--rpc", dead], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL, env=dict(os.environ))
    assert proc.returncode == 2 and "cannot reach the Ethereum RPC" in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
