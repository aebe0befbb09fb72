"""The SQLite event index (fedcoin/roles/index.py) on a real Anvil: it holds exactly the chain's
events, resumes where it stopped (a crash mid-batch loses nothing and duplicates nothing),
rewinds what a reorg replaced, clears itself on a chain reset, and what reads through it
(``audit``, ``request --status``) still checks the chain: a tampered row is caught."""

from __future__ import annotations

import io
import json
import sqlite3
import subprocess
import sys

import pytest

from fedcoin.chain import EVENT_NAMES
from fedcoin.dev.toolchain import ROOT
from fedcoin.roles.audit import audit
from fedcoin.roles.explorer.plots import write_plots
from fedcoin.roles.index import EventIndex, IndexedFedCoin, default_index_path, indexed
from fedcoin.roles.request import print_status
from fedcoin_testkit import ETH, revert, snapshot, w3_for
from explorer_chain import build_history


@pytest.fixture(scope="module")
def hist(anvil):
    w3 = w3_for(anvil)
    fc, a = build_history(w3)
    return w3, fc, a


def _all(fc_or_idx):
    return {n: fc_or_idx.events(n) for n in EVENT_NAMES}


def test_the_index_holds_exactly_the_events_the_chain_returns(hist, tmp_path):
    w3, fc, a = hist
    with EventIndex.for_fedcoin(fc, tmp_path / "i.sqlite") as idx:
        rep = idx.sync()
        assert rep.events == idx.count() == sum(len(v) for v in _all(fc).values()) > 60
        assert _all(idx) == _all(fc)
        # filters on indexed and non-indexed arguments behave like eth_getLogs topic filters
        assert idx.events("Revealed", taskId=1, round=1) == fc.revealed_events(1, 1)
        assert idx.events("Credited", account=a.server.address) == fc.credited_events(a.server.address)
        assert idx.events("Claimed", to_block=fc.claimed_events()[0].block_number) == fc.claimed_events()[:1]
        assert idx.head == (w3.eth.block_number, "0x" + bytes(w3.eth.get_block("latest")["hash"]).hex())


def test_every_event_of_the_abi_is_indexed_without_a_list_in_the_code(hist, tmp_path):
    w3, fc, a = hist
    with EventIndex.for_fedcoin(fc, tmp_path / "i.sqlite") as idx:
        assert set(idx.by_name) == {i["name"] for i in fc.abi if i["type"] == "event"} >= set(EVENT_NAMES)


def test_a_crash_mid_batch_leaves_whole_batches_and_the_next_run_resumes(hist, tmp_path):
    w3, fc, a = hist

    class Crashing(EventIndex):
        calls = 0

        def _fetch_batch(self, frm, to):
            Crashing.calls += 1
            if Crashing.calls == 4:
                raise KeyboardInterrupt  # killed while reading the 4th batch
            return super()._fetch_batch(frm, to)

    path = tmp_path / "i.sqlite"
    idx = Crashing.for_fedcoin(fc, path, batch=5)
    with pytest.raises(KeyboardInterrupt):
        idx.sync()
    assert idx.head[0] == 14  # blocks 0..14: three whole batches of 5
    assert {r["block_number"] for r in idx.rows()} <= set(range(15))
    idx.close()
    with EventIndex.for_fedcoin(fc, path, batch=7) as again:
        rep = again.sync()
        assert rep.from_block == 15 and not rep.reset and not rep.rewound
        assert _all(again) == _all(fc)  # nothing lost, nothing twice


def test_a_reorg_is_rewound_to_the_common_ancestor_and_reindexed(hist, tmp_path):
    w3, fc, a = hist
    snap = snapshot(w3)
    try:
        with EventIndex.for_fedcoin(fc, tmp_path / "i.sqlite") as idx:
            idx.sync()
            base = w3.eth.block_number
            req = fc.as_account(a.requester)
            req.create_task(a.server.address, [c.address for c in a.clients], 1, ETH)
            req.create_task(a.server.address, [c.address for c in a.clients], 1, 2 * ETH)
            idx.sync()
            assert len(idx.events("TaskCreated")) == 4
            revert(w3, snap)  # the two blocks vanish; a different block takes height base + 1
            snap = snapshot(w3)
            fc.as_account(a.requester).create_task(a.server.address, [c.address for c in a.clients], 1, 3 * ETH)
            rep = idx.sync()
            assert rep.rewound == 2 and rep.from_block == base + 1
            assert _all(idx) == _all(fc)
            assert [e.args["budget"] for e in idx.events("TaskCreated")][-1] == 3 * ETH
    finally:
        revert(w3, snap)


def test_a_chain_reset_clears_the_index(hist, tmp_path):
    w3, fc, a = hist
    path = tmp_path / "i.sqlite"
    with EventIndex.for_fedcoin(fc, path) as idx:
        idx.sync()
    db = sqlite3.connect(path)
    with db:  # as if the file had been filled from another chain with the same id (a previous Anvil)
        db.execute("UPDATE meta SET value = ? WHERE key = 'genesis_hash'", ("0x" + "11" * 32,))
        db.execute("UPDATE events SET args = '{}' WHERE name = 'TaskCreated'")
    db.close()
    with EventIndex.for_fedcoin(fc, path) as idx:
        rep = idx.sync()
        assert rep.reset and rep.from_block == 0
        assert _all(idx) == _all(fc)


def test_audit_and_request_status_read_through_the_index_and_still_catch_a_tampered_row(hist, tmp_path):
    w3, fc, a = hist
    path = tmp_path / "i.sqlite"
    assert indexed(fc, path) is fc  # no index file: the chain itself
    EventIndex.for_fedcoin(fc, path).close()
    ifc = indexed(fc, path)
    assert isinstance(ifc, IndexedFedCoin)
    assert str(audit(ifc)) == "OK 3 blocks"
    out = io.StringIO()
    assert print_status(ifc, 1, out) is True
    plain = io.StringIO()
    print_status(fc, 1, plain)
    assert out.getvalue() == plain.getvalue()

    db = sqlite3.connect(path)
    (rowid, args), = db.execute("SELECT rowid, args FROM events WHERE name = 'Revealed' AND task_id = 1 AND round = 1 "
                                "ORDER BY block_number LIMIT 1")
    d = json.loads(args)
    d["values"][0] += 1
    with db:
        db.execute("UPDATE events SET args = ? WHERE rowid = ?", (json.dumps(d), rowid))
    db.close()
    res = audit(indexed(fc, path))
    assert not res.ok and res.failure.height == 1 and res.failure.check == "reveals"


def test_default_path_is_keyed_by_chain_and_contract(hist):
    w3, fc, a = hist
    p = default_index_path(fc.chain_id, fc.address)
    assert p.name == f"{fc.chain_id}-{fc.address}.sqlite" and p.parent.name == "index"


def test_fedcoin_index_cli_indexes_and_fails_in_one_line_on_a_dead_rpc(hist, anvil, tmp_path):
    w3, fc, a = hist
    db = tmp_path / "cli.sqlite"
    cmd = [sys.executable, "-m", "fedcoin.cli", "index", "--rpc", anvil.url, "--contract", fc.address, "--db", str(db)]
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert p.returncode == 0, p.stderr
    n = sum(len(v) for v in _all(fc).values())
    assert f"{n} events in all" in p.stdout and "indexed blocks 0.." in p.stdout
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert "no new blocks" in p.stdout
    bad = subprocess.run([sys.executable, "-m", "fedcoin.cli", "index", "--rpc", "http://127.0.0.1:9", "--db",
                          str(tmp_path / "x.sqlite")], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1
    assert bad.stderr.startswith("fedcoin index: ") and "127.0.0.1:9" in bad.stderr


def test_fedcoin_plot_writes_the_explorers_charts_as_png(hist, tmp_path):
    w3, fc, a = hist
    with EventIndex.for_fedcoin(fc, tmp_path / "i.sqlite") as idx:
        idx.sync()
        paths = write_plots(idx, fc, 1, tmp_path / "plots")
        assert [p.name for p in paths] == ["consensus_round0.png", "consensus_round1.png", "payouts.png", "difficulty.png"]
        assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and p.stat().st_size > 5000 for p in paths)
        with pytest.raises(LookupError, match="task 9"):
            write_plots(idx, fc, 9, tmp_path / "none")
