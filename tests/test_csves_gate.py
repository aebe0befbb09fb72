"""The CSVES gate of a round (fedcoin/content/checks.py), offline and against the miners'
input check: the declaration bound in the update blob, CSVES-Th recomputed from public bytes
(integer comparison with τ), CSVES-Tr on the self-reported v_E, the derived seed, and a miner
refusing a spec whose CSVES verdicts, seed or payment rule differ from its own."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fedcoin.content import checks, csves_gate
from fedcoin.content.spec import TaskSpec
from fedcoin.content.store import LocalStore, content_hash
from fedcoin.ml.csves import declared_classes
from fedcoin.ml.models import Arch
from fedcoin.ml.serialization import SerializationError, params_from_bytes, params_to_bytes
from fl_server.client import initial_model
from fl_server.data import load_digits
from fl_server.fedavg import local_sgd
from fl_server.partition import partition

ARCH = Arch.parse("logreg-64-10")
SEED = csves_gate.csves_seed(31337, "0x" + "11" * 20, 1, 0)


@pytest.fixture(scope="module")
def world():
    sp = load_digits()
    part = partition(sp.train, num_clients=4, samples_per_client=40, seed=0)
    w0 = initial_model(ARCH, 0)
    return sp, part, w0


def _update(w0, data, *, permute=False, steps=20, v_e=None, classes=None):
    y = np.asarray(data.y)
    if permute:
        y = np.random.default_rng(5).permutation(10)[y]
    local = local_sgd(ARCH, w0, jnp.asarray(data.x), jnp.asarray(y), jnp.int32(len(y)), jnp.float32(0.5),
                      key=jax.random.key(1), steps=steps, batch_size=10)
    declared = declared_classes(np.asarray(data.y), 10) if classes is None else classes
    meta = csves_gate.declaration_metadata(declared, v_e) if declared != "none" else None
    return params_to_bytes({k: np.asarray(local[k] - w0[k]) for k in w0}, meta)


def _ctx(sp, w0, gate="th", tau=0.6, m=10):
    c = csves_gate.Csves(gate, m, int(tau * 10**6), SEED)
    return csves_gate.CsvesContext(c, {k: np.asarray(v) for k, v in w0.items()}, np.asarray(sp.val.x)[:200],
                               np.asarray(sp.val.y)[:200], 10)


def _verdict(raw, sp, w0, **kw):
    reason, out = checks.check_blob(raw, content_hash(raw), ARCH, 40, _ctx(sp, w0, **kw))
    return reason, out


def test_honest_updates_pass_and_a_label_permuted_one_fails_csves_th(world):
    sp, part, w0 = world
    for c in part.clients:
        assert _verdict(_update(w0, c.data), sp, w0)[0] is None
    reason, detail = _verdict(_update(w0, part.clients[0].data, permute=True), sp, w0)
    assert reason == "csves-th" and "is not below tau = 0.6" in detail


def test_declaration_is_bound_in_the_blob_and_metadata_keeps_the_bytes_deterministic(world):
    sp, part, w0 = world
    a, b = _update(w0, part.clients[1].data), _update(w0, part.clients[1].data)
    assert a == b  # one metadata key: the same update gives the same bytes, hence the same hash
    meta = csves_gate.blob_metadata(a)
    assert csves_gate.declared_classes(meta, 10) == declared_classes(np.asarray(part.clients[1].data.y), 10)
    assert params_from_bytes(a, ARCH).keys() == set(ARCH.shapes())  # metadata does not disturb decoding
    with pytest.raises(SerializationError, match="at most one metadata entry"):
        params_to_bytes({"w0": np.zeros((64, 10), np.float32)}, {"a": "1", "b": "2"})


@pytest.mark.parametrize("classes", ["none", (), (3, 1), (0, 10), (2, 2)])
def test_a_missing_or_malformed_declaration_is_csves_undeclared(world, classes):
    sp, part, w0 = world
    assert _verdict(_update(w0, part.clients[0].data, classes=classes), sp, w0)[0] == "csves-undeclared"


def test_declaring_fewer_classes_changes_the_rows_it_is_judged_on(world):
    """A client that declares one easy class is judged on that class's rows only (the paper's
    design: the device's own classes); the seed and m fix which rows, so it cannot pick them."""
    sp, part, w0 = world
    from fedcoin.ml import csves as cs

    rows_all = cs.class_sampled_indices(np.asarray(sp.val.y)[:200], tuple(range(10)), 10, SEED)
    rows_one = cs.class_sampled_indices(np.asarray(sp.val.y)[:200], (3,), 10, SEED)
    assert set(rows_one) < set(rows_all) and len(rows_one) == 10


def test_the_threshold_is_compared_in_integers(world):
    sp, part, w0 = world
    raw = _update(w0, part.clients[0].data, steps=1)
    from fedcoin.ml import csves as cs

    idx = cs.class_sampled_indices(np.asarray(sp.val.y)[:200], tuple(range(10)), 10, SEED)
    err = cs.validation_error({k: np.asarray(w0[k]) + v for k, v in params_from_bytes(raw, ARCH).items()}, ARCH,
                              np.asarray(sp.val.x)[:200][idx], np.asarray(sp.val.y)[:200][idx])
    at = int(round(err * 10**6))  # τ exactly at the error: rejected (strict), one ppm above: accepted
    assert _verdict(raw, sp, w0, tau=at / 10**6)[0] == "csves-th"
    assert _verdict(raw, sp, w0, tau=(at + 1) / 10**6)[0] is None


def test_csves_tr_reads_the_self_reported_trajectory_only(world):
    sp, part, w0 = world
    d = part.clients[0].data
    assert _verdict(_update(w0, d, v_e=[0.9, 0.6, 0.4]), sp, w0, gate="tr")[0] is None
    assert _verdict(_update(w0, d, v_e=[0.4, 0.6, 0.9]), sp, w0, gate="tr")[0] == "csves-tr"
    assert _verdict(_update(w0, d), sp, w0, gate="tr")[0] == "csves-undeclared"
    # the lie nobody can catch: a label-permuted update reporting a falling trajectory passes Tr ...
    bad = _update(w0, d, permute=True, v_e=[0.9, 0.5, 0.1])
    assert _verdict(bad, sp, w0, gate="tr")[0] is None
    # ... and fails the verified Th gate of th+tr
    assert _verdict(bad, sp, w0, gate="th+tr")[0] == "csves-th"


def test_the_seed_is_derived_from_the_round_and_nothing_else():
    s = csves_gate.csves_seed(31337, "0x" + "11" * 20, 1, 0)
    assert s == SEED and len(s) == 32
    assert len({csves_gate.csves_seed(31337, "0x" + "11" * 20, 1, r) for r in range(5)}) == 5
    assert csves_gate.csves_seed(1, "0x" + "11" * 20, 1, 0) != s
    with pytest.raises(ValueError, match="unknown CSVES gate"):
        csves_gate.Csves.for_round("both", m=10, tau=0.1, chain_id=1, contract="0x" + "11" * 20, task_id=1, round=0)
    with pytest.raises(ValueError, match="0 < tau <= 1"):
        csves_gate.Csves.for_round("th", m=10, tau=0.0, chain_id=1, contract="0x" + "11" * 20, task_id=1, round=0)


# ------------------------------------------------------------------ a miner's check, on chain


@pytest.fixture(scope="module")
def published(anvil, tmp_path_factory, world):
    """A data-cost-gated task with a CSVES-Th server: three honest simulated clients and one
    faulty (label-permuted) client registered; the honest spec built but not yet published."""
    from fedcoin.chain import FedCoin
    from fedcoin_testkit import ETH, default_params, dev_accounts, revert, snapshot, w3_for
    from fl_server.server import FLServer, RoundReport, ServerConfig

    sp, _part, _w0 = world
    w3 = w3_for(anvil)
    snap = snapshot(w3)
    acc = dev_accounts()
    requester, server, clients = acc[0], acc[1], acc[30:34]
    fc = FedCoin.deploy(w3, requester, default_params())
    tid = fc.create_task(server.address, [c.address for c in clients], 1, ETH, payment="data-cost-gated").task_id
    store = LocalStore(tmp_path_factory.mktemp("gate-store"))
    cfg = ServerConfig(data="digits", arch=ARCH.id, samples_per_client=40, local_steps=20, batch_size=10, lr=0.5,
                       val_size=200, csves="th", csves_tau=0.6)
    listed = [next(c for c in clients if c.address == a) for a in fc.task_clients(tid)]
    srv = FLServer(fc.as_account(server), tid, listed[:3], store, cfg, splits=sp)
    srv.accept()
    w = srv.global_model(0)
    raw = _update({k: np.asarray(v) for k, v in w.items()}, srv.partition.clients[0].data, permute=True)
    fc.as_account(listed[3]).register_update(tid, 0, content_hash(raw), store.put(raw), 40)
    srv._register_simulated(0, w, RoundReport(0))
    spec = srv.build_spec(0, w)
    yield dict(w3=w3, fc=fc.as_account(server), tid=tid, store=store, spec=spec, faulty=listed[3].address)
    revert(w3, snap)


def _publish_and_load(p, spec: TaskSpec):
    from fedcoin_testkit import revert, snapshot
    from miners.inputs import load_round

    snap = snapshot(p["w3"])
    try:
        data = spec.encode()
        p["fc"].publish_shapley_task(p["tid"], 0, content_hash(data), p["store"].put(data), excluded=spec.excluded_indices)
        return load_round(p["fc"], p["store"], p["tid"], 0)
    finally:
        revert(p["w3"], snap)


def test_miners_accept_the_honest_gated_spec(published):
    spec = published["spec"]
    faulty = [i for i, u in enumerate(spec.updates) if u.client == published["faulty"]]
    assert [(e.index, e.reason) for e in spec.excluded] == [(faulty[0], "csves-th")]
    inputs = _publish_and_load(published, spec)
    assert inputs.included == tuple(i for i in range(4) if i != faulty[0]) and inputs.game.n_players == 3


def _tampered(spec: TaskSpec, **change) -> TaskSpec:
    return dataclasses.replace(spec, **change)


@pytest.mark.parametrize("case, message", [
    ("include the faulty update", "the spec says included, this miner's checks say csves-th"),
    ("exclude an honest update too", "the spec says csves-th, this miner's checks say included"),
    ("choose the seed", "CSVES seed"),
    ("loosen tau to 1 but keep the exclusion", "the spec says csves-th, this miner's checks say included"),
    ("claim another payment rule", "the task's on-chain rule is 'data-cost-gated'"),
])
def test_miners_refuse_a_spec_whose_csves_verdicts_seed_or_rule_differ_from_theirs(published, case, message):
    from fedcoin.content.spec import ExcludedRef
    from miners.inputs import TaskRefused

    spec = published["spec"]
    bad = spec.excluded[0]
    honest = next(i for i in range(len(spec.updates)) if i != bad.index)
    gate = dict(spec.csves)
    if case == "include the faulty update":
        t = _tampered(spec, excluded=())
    elif case == "exclude an honest update too":
        both = sorted([bad, ExcludedRef(honest, spec.updates[honest].client, "csves-th")], key=lambda e: e.index)
        t = _tampered(spec, excluded=tuple(both))
    elif case == "choose the seed":
        t = _tampered(spec, csves={**gate, "seed": "0x" + "77" * 32})
    elif case == "loosen tau to 1 but keep the exclusion":
        # miners judge by the spec's own published gate: under τ = 1 the faulty update passes
        # their run, so an exclusion that the stated gate does not justify is refused
        t = _tampered(spec, csves={**gate, "tau_ppm": 10**6}, excluded=(bad,))
    else:
        t = _tampered(spec, payment="shapley")
    with pytest.raises(TaskRefused, match=message):
        _publish_and_load(published, t)
