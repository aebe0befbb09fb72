"""The paper's quality-typed clients: label counts per type, seeds, IID, and the EMD table; and
Record-and-Reward's uneven, overlapping shares."""

from __future__ import annotations

import numpy as np
import pytest

from fl_server.data import Dataset, load_digits
from fl_server.partition import client_types, emd_table, emd_to_global, partition, shares_partition


@pytest.fixture(scope="module")
def digits():
    return load_digits(seed=0)


def test_type_j_holds_exactly_ten_minus_j_labels_uniformly(digits):
    part = partition(digits.train, num_clients=20, samples_per_client=40, seed=1)
    assert [c.type for c in part.clients] == client_types(20) == [j for j in range(10) for _ in range(2)]
    for c in part.clients:
        counts = c.label_counts()
        held = np.flatnonzero(counts)
        assert len(held) == 10 - c.type == len(c.labels)
        assert tuple(held) == c.labels
        assert counts.sum() == 40
        assert counts[held].max() - counts[held].min() <= 1  # uniform over its labels


def test_partition_is_seeded_and_disjoint_when_the_pool_allows(digits):
    a = partition(digits.train, num_clients=10, samples_per_client=30, seed=7)
    b = partition(digits.train, num_clients=10, samples_per_client=30, seed=7)
    c = partition(digits.train, num_clients=10, samples_per_client=30, seed=8)
    assert all(np.array_equal(x.data.x, y.data.x) for x, y in zip(a.clients, b.clients))
    assert any(not np.array_equal(x.data.y, y.data.y) for x, y in zip(a.clients, c.clients))
    assert a.pool_wraps == 0
    rows = [r.tobytes() for cl in a.clients for r in cl.data.x]
    pool_dupes = len(digits.train.x) - len({r.tobytes() for r in digits.train.x})
    assert len(rows) - len(set(rows)) <= pool_dupes


def test_per_client_sample_counts_and_iid(digits):
    part = partition(digits.train, num_clients=3, samples_per_client=[10, 20, 30], iid=True, seed=0)
    assert part.n_k.tolist() == [10, 20, 30]
    assert {c.type for c in part.clients} == {-1}
    with pytest.raises(ValueError, match="samples_per_client"):
        partition(digits.train, num_clients=3, samples_per_client=[10, 20])


def test_emd_of_type_j_is_j_over_10_and_the_papers_table_is_j_over_50():
    uniform = np.full(10, 0.1)
    for j in range(10):
        p = np.zeros(10)
        p[: 10 - j] = 1 / (10 - j)
        emd, paper = emd_to_global(p, uniform)
        assert emd == pytest.approx(j / 10)
        assert paper == pytest.approx(0.02 * j)  # the paper's Table 2: 0, 0.02, ..., 0.18


def test_measured_emd_table_tracks_the_exact_values(digits):
    part = partition(digits.train, num_clients=20, samples_per_client=40, seed=0)
    table = emd_table(part, digits.train.y)
    assert [r["type"] for r in table] == list(range(10))
    for r in table:
        assert abs(r["emd"] - r["emd_exact"]) < 0.05
        assert abs(r["emd_paper"] - r["emd_paper_exact"]) < 0.01
    assert [r["emd"] for r in table] == sorted(r["emd"] for r in table)


def _indexed_pool(n=1000):
    """A pool whose row i carries i in its first feature, so a client's rows name their indices."""
    x = np.zeros((n, 3), np.float32)
    x[:, 0] = np.arange(n)
    return Dataset(x, (np.arange(n) % 10).astype(np.int32))


def _indices(client):
    return client.data.x[:, 0].astype(np.int64)


def test_shares_give_round_share_times_pool_distinct_examples_per_client():
    pool = _indexed_pool(1000)
    shares = np.linspace(0.1, 0.5, 10)
    part = shares_partition(pool, shares, num_clients=10, seed=0)
    assert part.n_k.tolist() == [round(s * 1000) for s in shares]
    for c in part.clients:
        idx = _indices(c)
        assert len(np.unique(idx)) == len(idx)  # without replacement within a client
        assert np.array_equal(c.data.y, pool.y[idx])
        assert c.type == -1 and c.labels == tuple(range(10))
    assert part.pool_wraps == 9


def test_shares_overlap_between_clients():
    part = shares_partition(_indexed_pool(1000), [0.5, 0.5, 0.3], seed=1)
    a, b, c = (set(_indices(cl).tolist()) for cl in part.clients)
    # independent halves share about a quarter of the pool; a split would share nothing
    assert 150 < len(a & b) < 350
    assert a & c and b & c


def test_shares_are_seeded():
    pool = _indexed_pool(500)
    a, b, c = (shares_partition(pool, [0.2, 0.4], seed=s) for s in (3, 3, 4))
    assert all(np.array_equal(x.data.x, y.data.x) for x, y in zip(a.clients, b.clients))
    assert any(not np.array_equal(x.data.x, y.data.x) for x, y in zip(a.clients, c.clients))


@pytest.mark.parametrize("shares, match", [
    ([0.1, 0.0], r"\(0, 1\]"),
    ([-0.2, 0.3], r"\(0, 1\]"),
    ([0.5, 1.5], r"\(0, 1\]"),
    ([0.5, float("nan")], r"\(0, 1\]"),
    ([], "got none"),
    ([0.0004], "is no example"),
])
def test_bad_shares_are_refused_with_the_reason(shares, match):
    with pytest.raises(ValueError, match=match):
        shares_partition(_indexed_pool(1000), shares)


def test_the_wrong_number_of_shares_is_refused():
    with pytest.raises(ValueError, match="3 clients, 2 shares given"):
        shares_partition(_indexed_pool(1000), [0.1, 0.2], num_clients=3)


def test_labels_are_those_present_in_the_share(digits):
    part = shares_partition(digits.train, [0.005, 1.0], seed=0)
    small, whole = part.clients
    assert small.labels == tuple(np.unique(small.data.y).tolist())
    assert whole.labels == tuple(range(10)) and whole.n == len(digits.train)
