"""The miner journal keeps exactly what a reveal needs, durably and atomically."""

import pytest

from miners.journal import COMMITTED, PREPARED, REVEALED, SETTLED, Entry, Journal, JournalError


def _entry(**kw) -> Entry:
    base = dict(
        chain_id=31337, contract="0xAbC0000000000000000000000000000000000001", task_id=3, round=1,
        attempt=0, miner="0xDef0000000000000000000000000000000000002",
        values=[10**30, -(10**30), 0, 123456789012345678901234567890], iterations=2500,
        salt="0x" + "ab" * 32, commitment="0x" + "cd" * 32,
    )
    base.update(kw)
    return Entry(**base)


def test_entry_round_trips_with_exact_big_ints(tmp_path):
    j = Journal(tmp_path)
    e = _entry()
    j.write(e)
    got = j.get(31337, e.contract.upper().replace("0X", "0x"), 3, 1, 0, e.miner)
    assert got == e
    assert got.values[3] == 123456789012345678901234567890


def test_update_records_status_and_transactions(tmp_path):
    j = Journal(tmp_path)
    e = _entry()
    j.write(e)
    j.update(e, status=COMMITTED, commit="0x01")
    j.update(e, status=REVEALED, reveal="0x02")
    got = Journal(tmp_path).get(e.chain_id, e.contract, e.task_id, e.round, e.attempt, e.miner)
    assert got.status == REVEALED and got.txs == {"commit": "0x01", "reveal": "0x02"}
    with pytest.raises(ValueError, match="unknown status"):
        j.update(e, status="bogus")


def test_open_entries_skip_settled_and_filter_by_miner(tmp_path):
    j = Journal(tmp_path)
    a = _entry(round=1)
    b = _entry(round=2, status=SETTLED)
    c = _entry(round=3, miner="0x9990000000000000000000000000000000000009")
    for e in (a, b, c):
        j.write(e)
    assert [e.round for e in j.entries(open_only=True)] == [1, 3]
    assert [e.round for e in j.entries(miner=a.miner)] == [1, 2]
    assert [e.status for e in j.entries(miner=c.miner)] == [PREPARED]


def test_leftover_temporary_file_from_a_crash_is_ignored(tmp_path):
    j = Journal(tmp_path)
    e = _entry()
    j.write(e)
    (tmp_path / f"{e.key}.tmp999").write_text('{"torn": ')  # a crash mid-write
    assert list(j.entries()) == [e]


def test_corrupt_entry_raises_an_error_naming_the_file(tmp_path):
    j = Journal(tmp_path)
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(JournalError, match="broken.json"):
        list(j.entries())
