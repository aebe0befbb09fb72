"""pyDVL's permutation Monte-Carlo Shapley on the round utility (run in the benchmark venv).

Usage: ``.venv-bench/bin/python benchmarks/pydvl_runner.py ROUND.npz N_PERMS SEED``; prints one
JSON object. pyDVL (0.10, numpy < 2) cannot share the main venv with JAX 0.10 (numpy >= 2), so
the benchmark runs it in a subprocess on the same utility implemented in NumPy
(:mod:`numpy_shapley`). The players are the K clients: pyDVL's ``Dataset`` holds the client
indices, and the utility maps a subset of indices to v(C).
"""

from __future__ import annotations

import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from numpy_shapley import NumpyRound  # noqa: E402


def main() -> None:
    path, n_perms, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    import pydvl
    from joblib import parallel_config
    from pydvl.valuation import Dataset, MaxSamples, PermutationSampler, ShapleyValuation
    from pydvl.valuation.utility.base import UtilityBase

    rnd = NumpyRound(np.load(path))
    calls = [0]

    class RoundUtility(UtilityBase):
        def __call__(self, sample) -> float:
            if sample is None or len(sample.subset) == 0:
                return 0.0
            calls[0] += 1
            return rnd.utility(sample.subset)

    data = Dataset(np.arange(rnd.K, dtype=np.float64)[:, None], np.zeros(rnd.K))
    sampler = PermutationSampler(seed=seed)
    valuation = ShapleyValuation(RoundUtility(), sampler, is_done=MaxSamples(sampler, n_perms), progress=False)
    t0 = time.perf_counter()
    with parallel_config(n_jobs=1):
        valuation.fit(data)
    dt = time.perf_counter() - t0
    values = valuation.result.values
    print(json.dumps({
        "pydvl_version": pydvl.__version__, "numpy_version": np.__version__, "seconds": dt,
        "utility_calls": calls[0], "samples": int(sampler.n_samples), "phi": [float(v) for v in values],
    }))


if __name__ == "__main__":
    main()
