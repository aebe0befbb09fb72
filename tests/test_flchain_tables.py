"""FLChain Tables V and VI (scripts/flchain_tables.py): the 55 000 / 5 000 / 10 000 split, the
trainers' shards, and the --quick run (2 trainers, 50 SGD steps, 4 000 / 1 000 / 2 000 rows)."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from fedcoin_testkit import load_script


fl = load_script("flchain_tables")


@pytest.fixture(scope="module")
def mnist():
    from fl_server.data import load_mnist

    return load_mnist()


def test_split_is_55k_5k_10k_disjoint_and_deterministic(mnist):
    pool = len(mnist.train) + len(mnist.val)
    tr, va = fl.split_indices(pool, seed=0)
    assert (len(tr), len(va), pool) == (55_000, 5_000, 60_000)
    assert len(np.intersect1d(tr, va)) == 0 and len(np.unique(tr)) == 55_000 and len(np.unique(va)) == 5_000
    again = fl.split_indices(pool, seed=0)
    assert np.array_equal(tr, again[0]) and np.array_equal(va, again[1])
    assert not np.array_equal(tr, fl.split_indices(pool, seed=1)[0])

    train, val, test = fl.flchain_split(mnist, seed=0)
    assert (len(train), len(val), len(test)) == (55_000, 5_000, 10_000)
    pooled_y = np.concatenate([mnist.train.y, mnist.val.y])
    assert np.array_equal(train.y, pooled_y[tr]) and np.array_equal(val.y, pooled_y[va])
    assert np.array_equal(test.x, mnist.test.x)


@pytest.mark.parametrize("k, rows", [(4, 13_750), (10, 5_500)])
def test_shards_are_equal_disjoint_cover_and_deterministic(k, rows):
    s = fl.shard_indices(55_000, k, seed=0)
    assert s.shape == (k, rows)
    assert np.array_equal(np.sort(s.ravel()), np.arange(55_000))
    assert np.array_equal(s, fl.shard_indices(55_000, k, seed=0))


def test_averaging_schedule_ends_every_round_and_the_run():
    avg = fl.averaging_schedule(1500, 214)
    assert np.flatnonzero(avg).tolist() == [213, 427, 641, 855, 1069, 1283, 1497, 1499]
    assert not fl.averaging_schedule(10, None).any()


@pytest.fixture(scope="module")
def quick(tmp_path_factory, mnist):
    del mnist  # built the MNIST cache once for the module
    out = tmp_path_factory.mktemp("flchain")
    rows = fl.main(["--quick", "--seed", "0", "--out", str(out)])
    with open(out / "flchain_tables.csv") as f:
        reader = csv.DictReader(f)
        return rows, reader.fieldnames, list(reader), out


def test_quick_run_writes_the_documented_csv_and_png(quick):
    rows, fields, csv_rows, out = quick
    assert tuple(fields) == fl.COLUMNS
    assert len(csv_rows) == len(rows) == 2 + 2 * 2 + 1  # alone ×2, collaborative ×2 per local-steps value, full
    assert {r["setting"] for r in csv_rows} == {"alone", "collaborative", "full"}
    assert all(0.0 <= float(r[f]) <= 1.0 for r in csv_rows for f in ("val_acc", "test_acc"))
    assert (out / "flchain_tables.png").stat().st_size > 0


def test_collaboration_is_no_worse_than_training_alone(quick):
    rows = quick[0]
    alone = np.mean([r["test_acc"] for r in rows if r["setting"] == "alone"])
    collab = [r for r in rows if r["setting"] == "collaborative"]
    assert all(r["test_acc"] >= alone - 0.01 for r in collab)
    # every trainer holds the same global model after the last aggregation
    for L in {r["local_steps"] for r in collab}:
        assert len({(r["val_acc"], r["test_acc"]) for r in collab if r["local_steps"] == L}) == 1
