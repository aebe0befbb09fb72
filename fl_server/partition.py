"""Clients as in the FedCoin paper (§6.1): ten quality types T0…T9.

A client of type Tj holds data spread uniformly over ``10 − j`` labels: T0 sees every digit
(IID-like), T9 sees a single digit. The labels a client holds are a seeded random subset of the
classes, drawn per client, so that several clients of one type together still cover more
labels than one of them (the paper does not say how labels are chosen; this is our choice).

Clients are assigned types in blocks: client k of K has type ``(k * T) // K`` with T = 10 types
(K = 20: clients 0, 1 are T0, clients 2, 3 are T1, …; K = 100: ten clients per type, the
paper's setting). With ``iid=True`` every client draws uniformly from the whole pool instead.

Samples are drawn *without replacement across clients* (no two clients share an example)
until a label's pool is exhausted; only then is that label's pool reshuffled and reused
(``Partition.pool_wraps`` counts how often that happened; 0 means all client data is disjoint).

Record-and-Reward's Fig. 7 setting (:func:`shares_partition`): each client holds a given
fraction of the pool (e.g. 0.1 … 0.5), drawn uniformly without replacement *within* a client
but independently *across* clients, so shares overlap, as in that paper, where clients hold
random portions of one training set rather than a split of it.

Distance to the global distribution (:func:`emd_to_global`): for categorical labels with ground
distance 1 between different labels, the earth mover's distance between two label
distributions p and q is their total variation ½·Σ_c |p_c − q_c|. For type Tj against a uniform
global distribution over C = 10 classes this is exactly j/10. The paper's Table 2 lists
0, 0.02, …, 0.18, i.e. j/50 = Σ_c |p_c − q_c| / C: the L1 distance averaged over the classes.
Both are reported (``emd`` and ``emd_paper``); they rank the types identically and differ by the
constant factor C/2 = 5.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .data import Dataset

NUM_TYPES = 10


@dataclass(frozen=True)
class Client:
    """One simulated data owner.

    Attributes:
        index: position in the client list (0-based).
        type: quality type j (holds ``num_classes − j`` labels), or -1 for an IID client.
        labels: the labels it holds (sorted).
        data: its local training data.
    """

    index: int
    type: int
    labels: tuple[int, ...]
    data: Dataset

    @property
    def n(self) -> int:
        return len(self.data)

    def label_counts(self, num_classes: int = 10) -> np.ndarray:
        return np.bincount(self.data.y, minlength=num_classes)


@dataclass(frozen=True)
class Partition:
    clients: tuple[Client, ...]
    num_classes: int
    pool_wraps: int

    @property
    def n_k(self) -> np.ndarray:
        """[K] int: samples per client (the data cost registered on-chain)."""
        return np.array([c.n for c in self.clients], np.int64)

    def of_type(self, j: int) -> list[Client]:
        return [c for c in self.clients if c.type == j]


def client_types(num_clients: int, num_types: int = NUM_TYPES) -> list[int]:
    """Type of each client, assigned in blocks: ``(k * num_types) // num_clients``.

    Examples:
        >>> client_types(20)[:6]
        [0, 0, 1, 1, 2, 2]
    """
    return [(k * num_types) // num_clients for k in range(num_clients)]


def _split_evenly(n: int, parts: int) -> list[int]:
    base, extra = divmod(n, parts)
    return [base + (1 if i < extra else 0) for i in range(parts)]


class _Pools:
    """Per-label index pools handed out without replacement until exhausted."""

    def __init__(self, y: np.ndarray, num_classes: int, rng: np.random.Generator):
        self.rng = rng
        self.idx = [rng.permutation(np.flatnonzero(y == c)) for c in range(num_classes)]
        self.pos = [0] * num_classes
        self.reused = 0

    def take(self, label: int, n: int) -> np.ndarray:
        pool = self.idx[label]
        if len(pool) == 0:
            raise ValueError(f"label {label} has no examples in the training pool")
        out = []
        while n > 0:
            if self.pos[label] >= len(pool):
                self.idx[label] = pool = self.rng.permutation(pool)
                self.pos[label] = 0
                self.reused += 1  # one more wrap: examples from here on are shared with earlier clients
            k = min(n, len(pool) - self.pos[label])
            out.append(pool[self.pos[label] : self.pos[label] + k])
            self.pos[label] += k
            n -= k
        return np.concatenate(out)


def partition(
    pool: Dataset,
    *,
    num_clients: int = 20,
    samples_per_client: int | list[int] = 500,
    iid: bool = False,
    num_classes: int = 10,
    types: list[int] | None = None,
    seed: int = 0,
) -> Partition:
    """Split a training pool among simulated clients of the paper's quality types.

    Args:
        pool: the training data the clients draw from (never the validation or test set).
        num_clients: K (default 20; the paper's experiment uses 100 = 10 per type).
        samples_per_client: n_k, one number for all clients or one per client.
        iid: every client samples uniformly from the whole pool (types ignored, type = -1).
        types: explicit type per client (default :func:`client_types`).
        seed: seeds the label subsets and the sampling.

    Returns:
        A :class:`Partition`; each client's data is shuffled.
    """
    rng = np.random.default_rng(seed)
    ns = [samples_per_client] * num_clients if isinstance(samples_per_client, int) else list(samples_per_client)
    if len(ns) != num_clients or min(ns) < 1:
        raise ValueError(f"samples_per_client must be a positive int or {num_clients} positive ints, got {samples_per_client}")
    types = list(types) if types is not None else client_types(num_clients, NUM_TYPES)
    if len(types) != num_clients or any(not 0 <= t < num_classes for t in types):
        raise ValueError(f"types must be {num_clients} values in 0..{num_classes - 1}, got {types}")
    clients: list[Client] = []
    reused = 0
    if iid:
        order = rng.permutation(len(pool))
        pos = 0
        for k, n in enumerate(ns):
            if pos + n > len(order):
                order, pos = rng.permutation(len(pool)), 0
                reused += 1
            idx = order[pos : pos + n]
            pos += n
            clients.append(Client(k, -1, tuple(range(num_classes)), Dataset(pool.x[idx], pool.y[idx])))
        return Partition(tuple(clients), num_classes, reused)
    pools = _Pools(pool.y, num_classes, rng)
    for k, (t, n) in enumerate(zip(types, ns)):
        n_labels = num_classes - t
        labels = np.sort(rng.choice(num_classes, size=n_labels, replace=False))
        per_label = _split_evenly(n, n_labels)
        # give the remainder to a random subset of the labels, not always the smallest ones
        per_label = list(np.array(per_label)[rng.permutation(n_labels)])
        idx = np.concatenate([pools.take(int(c), int(m)) for c, m in zip(labels, per_label) if m > 0])
        idx = idx[rng.permutation(len(idx))]
        clients.append(Client(k, t, tuple(int(c) for c in labels), Dataset(pool.x[idx], pool.y[idx])))
    return Partition(tuple(clients), num_classes, pools.reused)


def shares_partition(pool: Dataset, shares, *, num_clients: int | None = None, num_classes: int = 10,
                     seed: int = 0) -> Partition:
    """Clients holding uneven, overlapping IID shares of the pool (Record-and-Reward, Fig. 7).

    Client k holds ``round(shares[k] * len(pool))`` examples drawn uniformly without replacement
    from the whole pool, independently of the other clients: two clients may hold the same
    example (the paper's clients sample one training set; they do not split it). Every client is
    IID (type −1) and lists the labels present in its share.

    Args:
        pool: the training data the clients draw from.
        shares: one fraction in (0, 1] per client.
        num_clients: if given, ``len(shares)`` must equal it (the task's listed clients).
        seed: seeds the draws; the same seed gives the same clients.

    Returns:
        A :class:`Partition` whose ``pool_wraps`` is K − 1: every client after the first draws
        from the whole pool again.

    Raises:
        ValueError: a share outside (0, 1], one that rounds to no example, or the wrong count.

    Examples:
        >>> from fl_server.data import load_digits
        >>> pool = load_digits().train
        >>> shares_partition(pool, [0.1, 0.5]).n_k.tolist() == [round(0.1 * len(pool)), round(0.5 * len(pool))]
        True
    """
    shares = [float(s) for s in shares]
    if not shares:
        raise ValueError("shares must list one fraction per client; got none")
    if num_clients is not None and len(shares) != num_clients:
        raise ValueError(f"shares must list one fraction per client: {num_clients} clients, "
                         f"{len(shares)} shares given")
    bad = [s for s in shares if not 0 < s <= 1]  # NaN fails this test too
    if bad:
        raise ValueError(f"every share must be a fraction of the pool in (0, 1]; got {bad}")
    sizes = [int(round(s * len(pool))) for s in shares]
    if min(sizes) < 1:
        raise ValueError(f"share {shares[sizes.index(min(sizes))]} of a {len(pool)}-example pool is no example")
    rng = np.random.default_rng(seed)
    clients = []
    for k, n in enumerate(sizes):
        idx = rng.choice(len(pool), size=n, replace=False)  # already in random order
        y = pool.y[idx]
        clients.append(Client(k, -1, tuple(int(c) for c in np.unique(y)), Dataset(pool.x[idx], y)))
    return Partition(tuple(clients), num_classes, len(clients) - 1)


# --------------------------------------------------------------------------------------------
# distances


def label_distribution(y: np.ndarray, num_classes: int = 10) -> np.ndarray:
    """Empirical label distribution [C] (float64, sums to 1)."""
    c = np.bincount(np.asarray(y), minlength=num_classes).astype(np.float64)
    return c / c.sum()


def emd_to_global(p: np.ndarray, q: np.ndarray) -> tuple[float, float]:
    """Earth mover's distance between label distributions ``p`` and ``q`` (ground distance 1
    between different labels, i.e. total variation ½·Σ|p−q|), and the paper's normalization
    Σ|p−q|/C. Returns ``(emd, emd_paper)``."""
    d = np.abs(np.asarray(p, np.float64) - np.asarray(q, np.float64))
    return float(d.sum() / 2), float(d.sum() / len(d))


def emd_table(part: Partition, global_labels: np.ndarray) -> list[dict]:
    """Per type: the exact value for a uniform global distribution and the mean measured over
    that type's clients against ``global_labels`` (e.g. the training pool's labels).

    Returns:
        ``[{"type": j, "labels": 10 - j, "clients": n, "emd_exact": j/10, "emd": …,
        "emd_paper_exact": j/50, "emd_paper": …}, ...]`` for every type present.
    """
    C = part.num_classes
    q = label_distribution(global_labels, C)
    rows = []
    for j in sorted({c.type for c in part.clients}):
        cs = part.of_type(j)
        vals = np.array([emd_to_global(label_distribution(c.data.y, C), q) for c in cs])
        exact = j / C if j >= 0 else 0.0
        rows.append(
            {
                "type": j,
                "labels": C - j if j >= 0 else C,
                "clients": len(cs),
                "emd_exact": exact,
                "emd": float(vals[:, 0].mean()),
                "emd_paper_exact": exact * 2 / C,
                "emd_paper": float(vals[:, 1].mean()),
            }
        )
    return rows
