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


def test_a_second_process_cannot_take_an_accounts_lock(tmp_path):
    import subprocess
    import sys

    from miners.journal import JournalLocked

    miner = "0xDef0000000000000000000000000000000000002"
    Journal(tmp_path).lock(miner)  # held by this process for its lifetime
    code = ("import sys; from miners.journal import Journal, JournalLocked\n"
            f"try:\n    Journal({str(tmp_path)!r}).lock({miner!r})\nexcept JournalLocked as e:\n"
            "    print(e); sys.exit(3)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 3, out.stderr
    assert f"pid {__import__('os').getpid()}" in out.stdout and "Stop the other one first" in out.stdout
    # another account in the same journal is free
    other = subprocess.run([sys.executable, "-c", code.replace(miner, "0x" + "77" * 20)], capture_output=True, timeout=60)
    assert other.returncode == 0
    assert JournalLocked.__mro__[1] is JournalError


def test_cursor_and_refusals_persist_per_chain_genesis_and_miner(tmp_path):
    j = Journal(tmp_path)
    key = (31337, "0x" + "aa" * 32, "0xAbC0000000000000000000000000000000000001",
           "0x00000000000000000000000000000000000000A1")
    assert j.cursor(*key) == 0 and j.refusals(*key) == {}
    j.set_cursor(*key, 1234)
    j.refuse(*key, 3, 1, "update #2 holds NaN")
    again = Journal(tmp_path)
    assert again.cursor(*key) == 1234 and again.refusals(*key) == {"3-1": "update #2 holds NaN"}
    reset = (31337, "0x" + "bb" * 32, *key[2:])  # same chain id, new genesis: a reset chain
    assert again.cursor(*reset) == 0 and again.refusals(*reset) == {}
    # a second account sharing the directory keeps its own: it must see (and say) its own refusal
    other = (*key[:3], "0x00000000000000000000000000000000000000B2")
    assert again.cursor(*other) == 0 and again.refusals(*other) == {}
    assert [e for e in again.entries()] == []  # bookkeeping files are not entries


def test_stale_entries_are_set_aside_not_deleted(tmp_path):
    j = Journal(tmp_path)
    e = _entry(genesis="0x" + "aa" * 32)
    j.write(e)
    dst = j.set_aside(e, "chain was reset")
    assert list(j.entries()) == [] and dst.exists() and "reset" in dst.with_suffix(".why").read_text()
