"""Real FedCoin rounds for the Shapley benchmarks: MNIST, the paper's quality types, FedAvg.

:func:`mnist_round` trains FedAvg exactly as the FL server does (``fl_server.fedavg.FedAvg``:
20 local SGD steps of batch 50 at lr 0.1, FedAvg weighted by n_k; clients of types T0…T9 in
blocks, 500 samples each) and returns the game of one round: w_t before the round, the K
clients' updates, the first ``n_val`` validation rows, negative cross-entropy.
"""

from __future__ import annotations

import functools


@functools.lru_cache(maxsize=None)
def _splits():
    from fl_server.data import load_dataset

    return load_dataset("mnist")


def mnist_round(K: int, n_val: int, *, valued_round: int = 3, samples: int = 500, seed: int = 0,
                hidden: int = 200):
    """The ``valued_round``-th (1-based) round's :class:`fedcoin.ml.utility.RoundGame`."""
    import jax

    from fedcoin.ml.models import Arch
    from fedcoin.ml.utility import RoundGame
    from fl_server.fedavg import ClientBatch, FedAvg
    from fl_server.partition import partition

    splits = _splits()
    arch = Arch.parse(f"mlp-{splits.num_features}-{hidden}-{splits.num_classes}")
    part = partition(splits.train, num_clients=K, samples_per_client=samples, num_classes=splits.num_classes,
                     seed=seed)
    batch = ClientBatch.from_clients(part.clients)
    strategy = FedAvg(arch, lr=0.1, local_steps=20, batch_size=50)
    k_init, k_rounds = jax.random.split(jax.random.key(seed))  # as FLServer / scripts/figure4.py
    w = strategy.initialize(key=k_init)
    val = splits.val.take(n_val)
    for rnd in range(valued_round):
        deltas = strategy.fit(rnd, w, batch, key=jax.random.fold_in(k_rounds, rnd))
        if rnd + 1 == valued_round:
            return RoundGame.create(arch, w, deltas, batch.n, val.x, val.y, aggregation=strategy.rule,
                                    metric="neg_cross_entropy")
        w = strategy.aggregate_fit(rnd, w, deltas, batch.n)
    raise ValueError("valued_round must be >= 1")
