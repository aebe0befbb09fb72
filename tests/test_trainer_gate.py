"""FLChain's trainer requirement as an update check (fedcoin/content/trainer_gate.py): offline,
then on a real Anvil — the server excludes the update of a client that had not joined the task
when it registered (``unregistered-trainer``), each miner re-checks it against FLChain's
``joinedAt`` and the registration's block and refuses a spec that disagrees, and the CLIs'
``--flchain`` resolution (explicit, recorded, off)."""

from __future__ import annotations

import argparse
import dataclasses

import numpy as np
import pytest
from eth_utils import keccak

from fedcoin.flchain.binding import FLChain, TrainerGateError, flchain_for, resolve_flchain
from fedcoin.content import checks, trainer_gate
from fedcoin.content.spec import ExcludedRef, TaskSpec, parse
from fedcoin.content.store import LocalStore, content_hash
from fedcoin.ml.models import Arch
from fedcoin.ml.serialization import params_to_bytes

ARCH = Arch.parse("logreg-64-10")
U = trainer_gate.REASON


# ------------------------------------------------------------------ offline


def _gate(joined: dict[str, int], calls: list | None = None):
    def joined_at(c):
        if calls is not None:
            calls.append(c)
        return joined.get(c, 0)

    return trainer_gate.TrainerGate(7, 10**18, joined_at, "0xFLC")


def test_the_verdict_is_joined_at_against_the_registration_block():
    calls = []
    g = _gate({"a": 10, "b": 12, "c": 11}, calls)
    assert g.verdict("a", 11) is None  # joined before
    assert g.verdict("c", 11) is None  # joined in the registration's block
    reason, detail = g.verdict("b", 11)
    assert reason == U and "joined task 7 at block 12, after registering this update at block 11" in detail
    reason, detail = g.verdict("d", 11)
    assert reason == U and "has not joined task 7" in detail and "1000000000000000000 wei" in detail
    g.verdict("a", 20)
    assert calls == ["a", "c", "b", "d"]  # one joinedAt per client: the values never change once set
    with pytest.raises(ValueError, match="needs the block"):
        g.verdict("a", 0)


def test_the_check_runs_first_and_never_fetches_an_unjoined_clients_blob(tmp_path):
    store = LocalStore(tmp_path)
    good = params_to_bytes({k: np.zeros(s, np.float32) for k, s in ARCH.shapes().items()})
    regs = [
        checks.Registration(0, "a", content_hash(good), store.put(good), 10, block=5),
        checks.Registration(1, "b", content_hash(b"x"), "local:0x" + content_hash(b"x").hex(), 10, block=5),  # unavailable
        checks.Registration(2, "c", content_hash(good), store.put(good), 10, block=5),
    ]
    v = checks.check_registrations(store, ARCH, regs, trainers=_gate({"a": 3, "c": 6}))
    assert v.included == (0,) and [(e.index, e.reason) for e in v.excluded] == [(1, U), (2, U)]
    # the miners' run with the server's "unavailable" listing: the trainer verdict still wins
    v = checks.check_registrations(store, ARCH, regs, trainers=_gate({"a": 3, "c": 6}),
                                   unavailable=lambda r: r.index == 1)
    assert [(e.index, e.reason) for e in v.excluded] == [(1, U), (2, U)]
    # without a gate nothing changes
    v = checks.check_registrations(store, ARCH, regs)
    assert [(e.index, e.reason) for e in v.excluded] == [(1, "unavailable")]


def test_the_reason_is_in_the_spec_format_and_registrations_carry_their_block():
    assert checks.REASONS[0] == U and U in checks.REASONS
    from fedcoin.chain.types import Event

    ev = Event("UpdateRegistered", {"index": 0, "client": "a", "updateHash": b"\x01" * 32, "locator": "l",
                                    "dataCost": 3}, block_number=42, log_index=0, tx_hash="0x")
    assert checks.registrations_from_events([ev])[0].block == 42
    assert checks.registrations_from_events([dict(ev.args, blockNumber=9)])[0].block == 9


# ------------------------------------------------------------------ on chain


@pytest.fixture(scope="module")
def world(anvil, tmp_path_factory):
    """A FedCoin task requiring trainers on an FLChain, four listed clients: two joined before
    the task was accepted (simulated by the server), one registered and joined only afterwards,
    one a registered trainer that never joined (its blob never uploaded). The server's spec is
    built, not published."""
    from fedcoin.chain import FedCoin
    from fedcoin.flchain.binding import FLChain, FLChainParams
    from fedcoin_testkit import ETH, default_params, dev_accounts, revert, snapshot, w3_for
    from fl_server.data import load_digits
    from fl_server.server import FLServer, RoundReport, ServerConfig

    w3 = w3_for(anvil)
    snap = snapshot(w3)
    acc = dev_accounts()
    requester, server, clients, auth = acc[0], acc[1], acc[30:34], acc[37]
    fc = FedCoin.deploy(w3, requester, default_params())
    flc = FLChain.deploy(w3, requester, fedcoin=fc.address, auth=auth.address, params=FLChainParams())
    tid = fc.create_task(server.address, [c.address for c in clients], 1, ETH).task_id
    listed = [next(c for c in clients if c.address == a) for a in fc.task_clients(tid)]
    early, late, never = listed[:2], listed[2], listed[3]
    for c in listed:
        flc.as_account(c).register(keccak(b"data"), "local:0x00")
    flc.require_trainers(tid, flc.min_deposit())
    flc.as_account(server).register(keccak(b"server"), "local:0x00")
    flc.as_account(server).join(tid)  # the server's deposit goes at stake first
    for c in early:
        flc.as_account(c).join(tid)
    store = LocalStore(tmp_path_factory.mktemp("trainer-gate-store"))
    cfg = ServerConfig(data="digits", arch=ARCH.id, samples_per_client=40, local_steps=5, batch_size=10, lr=0.5,
                       val_size=200, flchain=flc.address)
    srv = FLServer(fc.as_account(server), tid, early, store, cfg, splits=load_digits())
    srv.accept()
    w = srv.global_model(0)
    small = params_to_bytes({k: 0.01 * np.ones(np.shape(v), np.float32) for k, v in w.items()})
    fc.as_account(late).register_update(tid, 0, content_hash(small), store.put(small), 40)
    flc.as_account(late).join(tid)  # after its registration: too late for this round
    missing = b"never uploaded"
    fc.as_account(never).register_update(tid, 0, content_hash(missing), "local:0x" + content_hash(missing).hex(), 40)
    srv._register_simulated(0, w, RoundReport(0))
    spec = srv.build_spec(0, w)
    no_req = fc.create_task(server.address, [c.address for c in clients], 1, ETH).task_id
    yield dict(w3=w3, fc=fc.as_account(server), flc=flc, reader=flchain_for(fc, flc.address), tid=tid, no_req=no_req, store=store, spec=spec, srv=srv,
               early=[c.address for c in early], late=late.address, never=never.address, requester=requester)
    revert(w3, snap)


def _index(spec: TaskSpec, address: str) -> int:
    return next(i for i, u in enumerate(spec.updates) if u.client == address)


def _publish_and_load(p, spec: TaskSpec, *, flchain="default"):
    from fedcoin_testkit import revert, snapshot
    from miners.inputs import load_round

    snap = snapshot(p["w3"])
    try:
        data = spec.encode()
        p["fc"].publish_shapley_task(p["tid"], 0, content_hash(data), p["store"].put(data), excluded=spec.excluded_indices)
        return load_round(p["fc"], p["store"], p["tid"], 0, flchain=p["reader"] if flchain == "default" else flchain)
    finally:
        revert(p["w3"], snap)


def test_the_server_excludes_unjoined_and_late_joined_clients_and_miners_agree(world):
    spec = world["spec"]
    late, never = _index(spec, world["late"]), _index(spec, world["never"])
    assert sorted((e.index, e.reason) for e in spec.excluded) == sorted([(late, U), (never, U)])
    assert parse(spec.encode()) == spec  # the spec format accepts the reason
    flc = world["flc"]
    regs = world["fc"].registrations(world["tid"], 0)
    by = {e.args["client"]: e.block_number for e in regs}
    assert flc.joined_at(world["tid"], world["late"]) > by[world["late"]]  # joined, but after registering
    assert flc.joined_at(world["tid"], world["never"]) == 0
    assert all(0 < flc.joined_at(world["tid"], c) <= by[c] for c in world["early"])
    inputs = _publish_and_load(world, spec)
    assert inputs.included == tuple(sorted(_index(spec, c) for c in world["early"])) and inputs.game.n_players == 2


@pytest.mark.parametrize("case, message", [
    ("include the never-joined update", "the spec says included, this miner's checks say unregistered-trainer"),
    ("include the late joiner's update", "the spec says included, this miner's checks say unregistered-trainer"),
    ("exclude a joined client as unregistered", "the spec says unregistered-trainer, this miner's checks say included"),
    ("call the never-joined update unavailable", "the spec says unavailable, this miner's checks say unregistered-trainer"),
    ("a miner that reads no FLChain", "it reads no FLChain"),
])
def test_miners_refuse_a_spec_whose_trainer_verdicts_differ_from_theirs(world, case, message):
    from miners.inputs import TaskRefused

    spec = world["spec"]
    late, never = _index(spec, world["late"]), _index(spec, world["never"])
    joined = _index(spec, world["early"][0])
    keep = {e.index: e for e in spec.excluded}
    flchain = "default"
    if case == "include the never-joined update":
        keep.pop(never)
    elif case == "include the late joiner's update":
        keep.pop(late)
    elif case == "exclude a joined client as unregistered":
        keep[joined] = ExcludedRef(joined, spec.updates[joined].client, U)
    elif case == "call the never-joined update unavailable":
        keep[never] = ExcludedRef(never, spec.updates[never].client, "unavailable")
    else:
        flchain = None
    t = dataclasses.replace(spec, excluded=tuple(keep[i] for i in sorted(keep)))
    with pytest.raises(TaskRefused, match=message):
        _publish_and_load(world, t, flchain=flchain)


def test_a_spec_without_the_trainer_verdicts_is_refused_and_the_check_costs_one_call_per_registration(world):
    """A server that drops the check (no exclusions for the unjoined clients) is caught by a
    miner reading FLChain; the check reads one ``joinedAt`` per registration, and nothing past
    ``requiredDeposit`` for a task without a requirement."""
    from miners.inputs import TaskRefused

    spec = world["spec"]
    clean = dataclasses.replace(spec, excluded=tuple(e for e in spec.excluded if e.reason != U))
    with pytest.raises(TaskRefused, match="this miner's checks say unregistered-trainer"):
        _publish_and_load(world, clean)
    flc = world["flc"]
    calls = []
    real = flc.joined_at
    flc.joined_at = lambda *a: calls.append(a) or real(*a)
    try:
        assert trainer_gate.trainer_gate(flc, world["no_req"]) is None and calls == []
        g = trainer_gate.trainer_gate(flc, world["tid"])
        for e in world["fc"].registrations(world["tid"], 0):
            g.verdict(e.args["client"], e.block_number)
        assert len(calls) == 4  # one joinedAt per registration
    finally:
        del flc.joined_at
    assert trainer_gate.trainer_gate(None, world["tid"]) is None


def test_flchain_resolution_explicit_recorded_and_off(world, tmp_path, monkeypatch):
    from fedcoin.chain.deployment import record_deployment
    from fedcoin.chain import FedCoin
    from fedcoin_testkit import default_params, dev_accounts

    monkeypatch.setenv("FEDCOIN_HOME", str(tmp_path))  # never this worker's shared record
    fc, flc = world["fc"], world["flc"]
    assert resolve_flchain(fc) is None  # nothing recorded: off
    got = resolve_flchain(fc, flc.address)
    assert isinstance(got, FLChain) and got.address == flc.address
    assert got.required_deposit(world["tid"]) == flc.min_deposit() and got.required_deposit(world["no_req"]) == 0
    with pytest.raises(TrainerGateError, match="not this version of FLChain"):
        resolve_flchain(fc, fc.address)
    with pytest.raises(TrainerGateError, match="no contract code"):
        resolve_flchain(fc, "0x" + "12" * 20)
    other = FedCoin.deploy(world["w3"], dev_accounts()[0], default_params())
    with pytest.raises(TrainerGateError, match=f"serves FedCoin {fc.address}, not {other.address}"):
        resolve_flchain(other, flc.address)
    record_deployment(fc.chain_id, flc.address, name="FLChain")
    assert resolve_flchain(fc).address == flc.address  # recorded and serving fc: used
    assert resolve_flchain(fc, off=True) is None
    said = []
    assert resolve_flchain(other, log=said.append) is None  # recorded for another FedCoin: skipped
    assert said and "serves FedCoin" in said[0]


def test_the_clis_take_flchain_and_refuse_an_unusable_one(world, tmp_path, monkeypatch, capsys):
    """``fedcoin mine --flchain`` and ``fedcoin server --flchain`` (in process: the resolution runs
    before any mining or training)."""
    from fedcoin_testkit import dev_accounts
    from fl_server import cli as server_cli
    from miners import cli as miner_cli

    monkeypatch.setenv("FEDCOIN_HOME", str(tmp_path))
    monkeypatch.setenv("FEDCOIN_PRIVATE_KEY", dev_accounts()[22].key.to_0x_hex())
    rpc = world["w3"].provider.endpoint_uri
    fc = world["fc"]

    def parsed(configure, *argv):
        p = argparse.ArgumentParser()
        configure(p)
        return p.parse_args(list(argv))

    args = parsed(miner_cli.configure, "--rpc", rpc, "--contract", fc.address, "--flchain", fc.address,
                  "--journal", str(tmp_path / "j"), "--task", str(world["tid"]))
    assert miner_cli.run(args) == 2
    assert "--flchain: the contract at" in capsys.readouterr().err
    args = parsed(server_cli.configure, "--rpc", rpc, "--contract", fc.address, "--task", str(world["tid"]),
                  "--flchain", "0x" + "12" * 20)
    assert server_cli.run(args) == 1
    assert "no contract code at" in capsys.readouterr().err
    args = parsed(server_cli.configure, "--task", "1", "--flchain", world["flc"].address, "--no-flchain")
    assert args.flchain == world["flc"].address and args.no_flchain
