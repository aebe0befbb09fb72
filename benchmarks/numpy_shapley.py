"""NumPy baselines for the Shapley benchmark (no JAX: also imported by the pyDVL runner).

* :class:`NumpyRound` — the round utility of ``fedcoin.ml.utility`` in plain NumPy float32.
* :meth:`NumpyRound.alg1` — the paper's Algorithm 1 as the reference code does it: walk the
  permutation, keep the aggregate as a running (weighted) mean, re-evaluate the whole model on the
  validation set for every prefix, average marginals into S.
"""

from __future__ import annotations

import numpy as np


class NumpyRound:
    """One round's utility from arrays saved by the benchmark (``np.load`` of the .npz).

    Keys: ``p_w0, p_b0, ...`` (w_t), ``u_w0, ...`` ([K, ...] updates), ``n_k``, ``x``, ``y``,
    ``n_layers``, ``uniform`` (0/1), ``accuracy`` (0/1).
    """

    def __init__(self, arrays):
        self.L = int(arrays["n_layers"])
        names = [f"{t}{i}" for i in range(self.L) for t in ("w", "b")]
        self.params = {n: np.asarray(arrays["p_" + n], np.float32) for n in names}
        self.updates = {n: np.asarray(arrays["u_" + n], np.float32) for n in names}
        self.omega = np.ones_like(arrays["n_k"], dtype=np.float32) if int(arrays["uniform"]) else np.asarray(arrays["n_k"], np.float32)
        self.x = np.asarray(arrays["x"], np.float32)
        self.y = np.asarray(arrays["y"], np.int64)
        self.accuracy = bool(int(arrays["accuracy"]))
        self.K = self.omega.shape[0]
        self.base = self.metric(self.params)

    def metric(self, p) -> float:
        h = self.x @ p["w0"] + p["b0"]
        for i in range(1, self.L):
            h = np.maximum(h, 0.0) @ p[f"w{i}"] + p[f"b{i}"]
        if self.accuracy:
            return float(np.mean(h.argmax(axis=1) == self.y))
        m = h.max(axis=1, keepdims=True)
        lse = np.log(np.exp(h - m).sum(axis=1)) + m[:, 0]
        return float(-np.mean(lse - h[np.arange(h.shape[0]), self.y]))

    def utility(self, members) -> float:
        """v(C) for a list/array of client indices, aggregating from scratch."""
        members = np.asarray(members, np.int64)
        if members.size == 0:
            return 0.0
        a = self.omega[members] / self.omega[members].sum()
        p = {n: self.params[n] + np.tensordot(a, self.updates[n][members], axes=1) for n in self.params}
        return self.metric(p) - self.base

    def alg1(self, perms: np.ndarray, callback=None) -> np.ndarray:
        """Algorithm 1 over ``perms [T, K]`` with an incrementally updated (running-mean) model.

        ``callback(t, S)`` after every permutation (return True to stop early).
        """
        S = np.zeros(self.K)
        for t, perm in enumerate(perms, start=1):
            model = {n: v.copy() for n, v in self.params.items()}
            total = np.float32(0.0)
            v_prev = 0.0
            for k in perm:
                total += self.omega[k]
                frac = self.omega[k] / total
                for n in model:  # running weighted mean of w_t + Δ_k
                    model[n] += frac * (self.params[n] + self.updates[n][k] - model[n])
                v = self.metric(model) - self.base
                S[k] = (t - 1) / t * S[k] + (v - v_prev) / t
                v_prev = v
            if callback is not None and callback(t, S):
                break
        return S
