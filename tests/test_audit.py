"""`fedcoin audit` (fedcoin/roles/audit.py) on a real Anvil: a valid chain of PoSap block records
(one won only after a re-open) audits OK; tampered inputs are caught at the first broken link,
named by block and check."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest

from fedcoin.roles import audit as audit_mod
from fedcoin.roles.audit import audit, check_chain, collect
from fedcoin.chain import FedCoin
from fedcoin.protocol.commitment import reveal_accumulator
from fedcoin.dev.devnet import free_port
from fedcoin.dev.toolchain import ROOT
from fedcoin_testkit import ETH, actors, default_params, vec, w3_for
from round_driver import claim_all, finalize, new_task, play_round

P = default_params()


@pytest.fixture(scope="module")
def chain3(anvil):
    """A fresh contract with 3 blocks: task 1 rounds 0-1, task 2 round 0 (won at attempt 1)."""
    w3 = w3_for(anvil)
    a = actors(n_clients=3, n_miners=3)
    fc = FedCoin.deploy(w3, a.requester, P)
    t1 = new_task(fc, a, rounds=2, value=2 * ETH + 3)
    fc.as_account(a.server).accept_task(t1)
    for rnd in range(2):
        vs = [vec([0.40, 0.30, -0.05 + rnd / 1000]), vec([0.42, 0.28, -0.04]), vec([0.9, -0.5, 0.7])]
        play_round(w3, fc, a, t1, rnd, vs, [100, 300, 5], reveal_mask=[True, True, rnd == 0])
        finalize(fc, a, t1, rnd)
        claim_all(fc, a, t1, rnd)
    t2 = new_task(fc, a)
    fc.as_account(a.server).accept_task(t2)
    play_round(w3, fc, a, t2, 0, [vec([5, 0, 0]), vec([0, 5, 0])], [1, 1])  # centre 0: nobody qualifies
    assert "RoundReopened" in [e.name for e in finalize(fc, a, t2, 0).events]
    play_round(w3, fc, a, t2, 0, [vec([0.2, 0.1, 0.3]), vec([0.2, 0.1, 0.31])], [7, 9], register=False)
    finalize(fc, a, t2, 0)
    assert fc.block_count() == 3
    return fc, collect(fc)


def test_valid_chain_audits_ok(chain3):
    fc, inputs = chain3
    res = audit(fc)
    assert res.ok and res.blocks == 3 and str(res) == "OK 3 blocks"
    assert inputs.blocks[2].attempt == 1  # the re-opened round's winning attempt is the one checked
    assert inputs.blocks[2].record.difficulty == 2 * inputs.blocks[2].published_difficulty
    assert len(inputs.adjustments) == 3  # one per block (each settled by 2 qualifiers), checked per task
    assert [a[1] for a in inputs.adjustments] == [1, 1, 2]
    assert inputs.adjustments[0][4] != inputs.adjustments[0][3]  # D actually moved


def _block(inputs, h, **changes):
    blocks = list(inputs.blocks)
    blocks[h] = dataclasses.replace(blocks[h], **changes)
    return dataclasses.replace(inputs, blocks=tuple(blocks))


def _tamper_vector(inputs, h, fix_acc: bool):
    """Change one revealed value in block h; optionally forge the reveal accumulator to match."""
    b = inputs.blocks[h]
    r0 = b.reveals[0]
    forged = (dataclasses.replace(r0, values=(r0.values[0] + 10**15,) + tuple(r0.values[1:])),) + b.reveals[1:]
    acc = reveal_accumulator((r.miner, r.seq, r.iterations, r.values) for r in forged) if fix_acc else b.reveal_acc
    return _block(inputs, h, reveals=forged, reveal_acc=acc)


def _tamper_record(inputs, h, **fields):
    b = inputs.blocks[h]
    rec = dataclasses.replace(b.record, **fields)
    ev = dict(b.events[0])
    for ev_name, rec_name in audit_mod._RECORD_FIELDS:
        ev[ev_name] = getattr(rec, rec_name)
    return _block(inputs, h, record=rec, events=(ev,))


def _tamper_finalized(inputs, h, key, fn):
    b = inputs.blocks[h]
    return _block(inputs, h, finalized=dict(b.finalized, **{key: fn(b.finalized[key])}))


def _tamper_adjustment(inputs, n, field, fn):
    adj = list(inputs.adjustments)
    pos, tid, rnd, old, new, elapsed = adj[n]
    vals = {"old": old, "new": new, "elapsed": elapsed}
    vals[field] = fn(vals[field])
    adj[n] = (pos, tid, rnd, vals["old"], vals["new"], vals["elapsed"])
    return dataclasses.replace(inputs, adjustments=tuple(adj))


def _tamper_judged(inputs, h):
    b = inputs.blocks[h]
    j0 = dict(b.judged[0], reward=b.judged[0]["reward"] + 1)
    return _block(inputs, h, judged=(j0,) + b.judged[1:])


TAMPERINGS = {
    "revealed vector": (lambda i: _tamper_vector(i, 1, fix_acc=False), 1, "reveals"),
    "revealed vector with forged accumulator": (lambda i: _tamper_vector(i, 1, fix_acc=True), 1, "centre"),
    "dropped reveal": (lambda i: _block(i, 2, reveals=i.blocks[2].reveals[:1]), 2, "reveals"),
    "prev hash (record and event)": (lambda i: _tamper_record(i, 1, prev_hash=b"\x11" * 32), 1, "prev_hash"),
    "record hash": (lambda i: _tamper_record(i, 0, record_hash=b"\x22" * 32), 0, "record_hash"),
    "event differs from view": (lambda i: _block(i, 2, events=(dict(i.blocks[2].events[0], centreHash=b"\x33" * 32),)),
                                2, "event.centreHash"),
    "missing event": (lambda i: _block(i, 0, events=()), 0, "event"),
    "client amounts": (lambda i: _tamper_finalized(i, 0, "amounts", lambda x: [x[0] - 1, x[1] + 1, *x[2:]]), 0, "amounts"),
    "registration order": (lambda i: _block(i, 1, clients=tuple(reversed(i.blocks[1].clients))), 1, "clients"),
    "bond (weight of the centre)": (lambda i: _block(i, 0, bonds=(1,) + i.blocks[0].bonds[1:]), 0, "reveals.bonds"),
    "verdict reward": (lambda i: _tamper_judged(i, 0), 0, "verdicts"),
    "difficulty": (lambda i: _block(i, 2, published_difficulty=i.blocks[2].published_difficulty * 4), 2, "difficulty"),
    "prices": (lambda i: _block(i, 1, budget=i.blocks[1].budget + 10**6), 1, "prices"),
    "difficulty adjustment result": (lambda i: _tamper_adjustment(i, 1, "new", lambda d: d + 1), 1,
                                     "difficulty_adjustment.new"),
    "difficulty adjustment chain": (lambda i: _tamper_adjustment(i, 1, "old", lambda d: d * 2), 1,
                                    "difficulty_adjustment.old"),
    "block time behind an adjustment": (lambda i: _block(i, 0, commit_times=tuple(t + 1 for t in i.blocks[0].commit_times)),
                                        0, "difficulty_adjustment.elapsed"),
    "published before the previous adjustment": (lambda i: _block(i, 1, published_at=(0, 0)), 1,
                                                 "published_difficulty"),
    "missing adjustment": (lambda i: dataclasses.replace(i, adjustments=i.adjustments[:2]), 2,
                           "difficulty_adjustment"),
}


@pytest.mark.parametrize("name", TAMPERINGS)
def test_tampered_input_is_named_by_block_and_check(chain3, name):
    _, inputs = chain3
    tamper, height, check = TAMPERINGS[name]
    res = check_chain(tamper(inputs))
    assert not res.ok
    assert (res.failure.height, res.failure.check) == (height, check), str(res)
    assert str(res).startswith(f"BROKEN block {height} (task ") and f": {check}: expected " in str(res)
    assert res.blocks == height  # blocks before the broken one were fine


def test_winner_is_recomputed_not_trusted(chain3):
    """The record names a miner who did not win: the recomputed winner differs (record hash forged too)."""
    _, inputs = chain3
    b = inputs.blocks[0]
    other = next(r.miner for r in b.reveals if r.miner != b.record.winner)
    forged = _tamper_record(inputs, 0, winner=other)
    rec = forged.blocks[0].record
    from fedcoin.protocol import posap
    rh = posap.record_hash(0, rec.task_id, rec.round, rec.winner, rec.centre_hash, rec.winner_hash, rec.prev_hash,
                           rec.difficulty, rec.payouts_root)
    forged = _tamper_record(forged, 0, record_hash=rh)
    res = check_chain(forged)
    assert (res.failure.height, res.failure.check) == (0, "winner")
    assert res.failure.expected == b.record.winner and res.failure.found == other


def test_chain_head_must_match_the_last_record(chain3):
    _, inputs = chain3
    res = check_chain(dataclasses.replace(inputs, last_record_hash=b"\x44" * 32))
    assert not res.ok and res.failure.check == "head" and res.failure.height is None
    res = check_chain(dataclasses.replace(inputs, blocks=inputs.blocks[:2]))
    assert res.failure.check == "block_count"


def test_audit_cli_prints_ok(chain3, anvil):
    fc, _ = chain3
    proc = subprocess.run([sys.executable, "-m", "fedcoin.cli", "audit", "--rpc", anvil.url, "--contract", fc.address],
                          cwd=ROOT, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "OK 3 blocks"


def test_audit_cli_rejects_unreachable_rpc_and_missing_contract(chain3, anvil, capsys):
    url = f"http://127.0.0.1:{free_port()}"
    assert audit_mod.main(["--rpc", url, "--contract", chain3[0].address]) == 2
    assert url in capsys.readouterr().err
    assert audit_mod.main(["--rpc", anvil.url, "--contract", "0x" + "12" * 20]) == 2
    assert "no contract code" in capsys.readouterr().err
