"""Reproduce Tables V and VI of *FLChain: A Blockchain for Auditable Federated Learning with
Trust and Incentive* (Bao et al.): the accuracy of each trainer alone against the accuracy after
collaborative training, with 4 and with 10 trainers, and of one model trained on the full set.

Run it with ``.venv/bin/python scripts/flchain_tables.py`` (no chain, no network; ``--quick``
for a tiny smoke run). It writes ``<out>/flchain_tables.csv`` (columns :data:`COLUMNS`) and
``<out>/flchain_tables.png``, and prints the tables with the paper's figures beside ours, the
machine and the wall time.

The simulation (our readings where the paper is silent; ``docs/figures.md`` discusses them):

* **Data.** MNIST 55 000 / 5 000 / 10 000 (:func:`flchain_split`): the cached 50 000 training and
  10 000 validation rows are concatenated and permuted by ``--seed``; the first 55 000 are the
  training set, the next 5 000 the validation set; the test set is MNIST's 10 000 test rows.
* **Trainers.** K = ``--trainers`` (4 and 10) equal IID shards of the training set
  (:func:`shard_indices`, seeded by ``(seed, K)``): 13 750 and 5 500 rows. Trainer k's *own*
  validation share is the k-th of K equal contiguous chunks of the validation set.
* **SGD.** Every model sees ``--iterations`` (1 500) plain SGD steps of batch ``--batch`` (64),
  learning rate ``--lr`` (0.5), on the mean cross-entropy, from one shared Glorot
  initialisation. Batches are drawn epoch by epoch without replacement (a fresh permutation per
  epoch, the last partial batch dropped), so "1 epoch" is one pass over a trainer's shard.
* **Alone.** Trainer k runs the 1 500 steps on its shard only.
* **Collaborative.** FedAvg with every trainer in every round: each round each trainer runs
  ``local_steps`` SGD steps from the global model, then the server forms the next global model
  with :func:`fedcoin.ml.fedavg.aggregate` (weighted by n_k; the shards are equal, so this is
  the plain mean). Our reading of "1 500 iterations, 1 epoch": 1 500 SGD steps per trainer in
  total (the same budget as alone) in rounds of one local epoch (``local_steps`` = ``epoch`` =
  ⌊n_k / batch⌋: 214 steps for K = 4, 85 for K = 10), the last round cut short so that the
  total is exactly 1 500 (8 rounds for K = 4, 18 for K = 10). The run always ends with an
  aggregation, so after collaboration every trainer holds the same global model.
  ``--local-steps`` takes more values as a sensitivity check (1: average after every step,
  i.e. synchronous SGD on a K × 64 batch; 1 500: one-shot averaging).
* **Full.** One model, the 1 500 steps on all 55 000 rows (about 1.75 epochs).
* **Accuracy.** ``val_acc`` on the whole 5 000-row validation set, ``test_acc`` on the 10 000
  test rows, ``own_val_acc`` on the trainer's own validation share.
* **Models.** ``--arch``: softmax regression ``logreg-784-10`` (primary; the paper's model is a
  "simple" MNIST classifier it does not specify) and the MLP ``mlp-784-200-10``.
"""

from __future__ import annotations

import argparse
import csv
import sys
import textwrap
import time
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from fedcoin.dev.machine import describe as describe_machine  # noqa: E402
from fedcoin.ml import fedavg as fedavg_rule  # noqa: E402
from fedcoin.ml.models import Arch, Params, accuracy, apply, cross_entropy, init_params  # noqa: E402
from fl_server.data import Dataset, Splits  # noqa: E402

#: The paper's figures as we compare with them: mean single-trainer accuracy, accuracy after
#: collaboration, and the full-set model (the same for both tables).
PAPER = {4: {"alone": 0.958, "collaborative": 0.97, "full": 0.977},
         10: {"alone": 0.952, "collaborative": 0.97, "full": 0.977}}
COLUMNS = ("trainers", "model", "setting", "trainer", "local_steps", "rounds", "iterations", "train_rows",
           "val_acc", "test_acc", "own_val_acc")


# ------------------------------------------------------------------------------------ the data


def split_indices(n_pool: int, *, seed: int, n_train: int = 55_000,
                  n_val: int = 5_000) -> tuple[np.ndarray, np.ndarray]:
    """``(train [n_train], val [n_val])``: disjoint rows of a pool of ``n_pool``, from a permutation
    seeded by ``seed``."""
    if n_train + n_val > n_pool:
        raise ValueError(f"cannot take {n_train} + {n_val} rows from a pool of {n_pool}")
    perm = np.random.default_rng(seed).permutation(n_pool)
    return perm[:n_train], perm[n_train:n_train + n_val]


def flchain_split(splits: Splits, *, seed: int, n_train: int = 55_000, n_val: int = 5_000,
                  n_test: int | None = None) -> tuple[Dataset, Dataset, Dataset]:
    """The paper's MNIST split from our 50 000 / 10 000 / 10 000 cache.

    Args:
        splits: :func:`fl_server.data.load_mnist`'s splits (train and val are pooled, in that
            order, and split by :func:`split_indices`).
        seed: seeds the permutation of the pooled rows.
        n_train, n_val: rows of the new training and validation sets.
        n_test: the first ``n_test`` test rows (default: all).

    Returns:
        ``(train [n_train], val [n_val], test)`` datasets.
    """
    x = np.concatenate([splits.train.x, splits.val.x])
    y = np.concatenate([splits.train.y, splits.val.y])
    tr, va = split_indices(len(y), seed=seed, n_train=n_train, n_val=n_val)
    test = splits.test if n_test is None else splits.test.take(n_test)
    return Dataset(x[tr], y[tr]), Dataset(x[va], y[va]), test


def shard_indices(n: int, k: int, *, seed: int) -> np.ndarray:
    """``[k, n // k]`` row indices: k equal, disjoint IID shards of ``n`` rows (a remainder of
    ``n mod k`` rows is left out), seeded by ``(seed, k)``."""
    return np.random.default_rng([seed, k]).permutation(n)[: (n // k) * k].reshape(k, n // k)


# ------------------------------------------------------------------------------------ training


@partial(jax.jit, static_argnames=("k", "n", "batch", "steps"))
def epoch_batches(key: jax.Array, *, k: int, n: int, batch: int, steps: int) -> jax.Array:
    """``[steps, k, batch]`` int32 row indices of each step's minibatch for ``k`` trainers of
    ``n`` rows: trainer i draws a fresh permutation of ``range(n)`` per epoch with the key
    ``fold_in(key, i)`` and cuts it into ⌊n / batch⌋ batches (the partial last batch dropped)."""
    per_epoch = n // batch
    if per_epoch < 1:
        raise ValueError(f"a shard of {n} rows has no full batch of {batch}")
    epochs = -(-steps // per_epoch)

    def one(i):
        keys = jax.random.split(jax.random.fold_in(key, i), epochs)
        perms = jax.vmap(lambda kk: jax.random.permutation(kk, n))(keys)
        return perms[:, : per_epoch * batch].reshape(epochs * per_epoch, batch)[:steps]

    return jnp.swapaxes(jax.vmap(one)(jnp.arange(k, dtype=jnp.uint32)), 0, 1).astype(jnp.int32)


def averaging_schedule(steps: int, local_steps: int | None) -> np.ndarray:
    """``[steps]`` bool: aggregate after step t? Every ``local_steps`` steps and after the last
    one; ``None``: never (each trainer alone)."""
    avg = np.zeros(steps, bool)
    if local_steps is not None:
        avg[local_steps - 1::local_steps] = True
        avg[-1] = True
    return avg


@partial(jax.jit, static_argnames=("arch",))
def train(arch: Arch, params: Params, xs: jax.Array, ys: jax.Array, n_k: jax.Array, lr: jax.Array,
          batches: jax.Array, average: jax.Array) -> Params:
    """K trainers' SGD from one initialisation, FedAvg-aggregated after the flagged steps.

    Args:
        params: the shared initial model w_0.
        xs: ``[K, n, d]`` float32 shards; ys: ``[K, n]`` int32 labels.
        n_k: ``[K]`` float32 data sizes (the FedAvg weights).
        lr: scalar float32.
        batches: ``[T, K, B]`` int32 row indices of each step's minibatch per trainer.
        average: ``[T]`` bool: replace every trainer's model by the aggregate after step t.

    Returns:
        Each trainer's final model, stacked ``{name: [K, ...]}``.
    """
    K = xs.shape[0]
    coef = fedavg_rule.coalition_coefficients(fedavg_rule.weights(n_k, fedavg_rule.DEFAULT_RULE),
                                              jnp.ones((K,), bool))
    grad = jax.vmap(jax.grad(lambda p, x, y: cross_entropy(apply(arch, p, x), y)))
    take = jax.vmap(lambda a, i: a[i])

    def aggregate(local, glob):
        # Δ_k = w_k − w_t and the one FedAvg rule, as the FL server does it
        new = fedavg_rule.aggregate(glob, {n: local[n] - glob[n][None] for n in glob}, coef)
        return {n: jnp.broadcast_to(new[n][None], local[n].shape) for n in new}, new

    def step(carry, inp):
        local, glob = carry
        idx, avg = inp
        g = grad(local, take(xs, idx), take(ys, idx))
        local = {n: local[n] - lr * g[n] for n in local}
        return jax.lax.cond(avg, aggregate, lambda lo, gl: (lo, gl), local, glob), None

    local0 = {n: jnp.broadcast_to(v[None], (K, *v.shape)) for n, v in params.items()}
    (local, _), _ = jax.lax.scan(step, (local0, params), (batches, average))
    return local


@partial(jax.jit, static_argnames=("arch",))
def accuracies(arch: Arch, stacked: Params, x: jax.Array, y: jax.Array) -> jax.Array:
    """``[K]`` accuracy of each stacked model on the shared ``x`` [n, d], ``y`` [n]."""
    return jax.vmap(lambda p: accuracy(apply(arch, p, x), y))(stacked)


@partial(jax.jit, static_argnames=("arch",))
def own_accuracies(arch: Arch, stacked: Params, xs: jax.Array, ys: jax.Array) -> jax.Array:
    """``[K]`` accuracy of model k on its own ``xs[k]`` [n, d], ``ys[k]`` [n]."""
    return jax.vmap(lambda p, x, y: accuracy(apply(arch, p, x), y))(stacked, xs, ys)


# ------------------------------------------------------------------------------------ the tables


def simulate(splits: Splits, *, trainers=(4, 10), archs=("logreg-784-10",), local_steps=("epoch",),
             iterations: int = 1500, lr: float = 0.5, batch: int = 64, seed: int = 0, n_train: int = 55_000,
             n_val: int = 5_000, n_test: int | None = None, log=print) -> list[dict]:
    """Every (model, K): each trainer alone, FedAvg for each ``local_steps`` entry (an int or
    ``"epoch"``), and the full-set model. Returns rows with the columns :data:`COLUMNS`."""
    train_ds, val, test = flchain_split(splits, seed=seed, n_train=n_train, n_val=n_val, n_test=n_test)
    log(f"[flchain] data: train {len(train_ds)}, val {len(val)}, test {len(test)}")
    k_init, k_batch, k_full = jax.random.split(jax.random.key(seed), 3)
    xv, yv, xt, yt = map(jnp.asarray, (val.x, val.y, test.x, test.y))
    lr_ = jnp.float32(lr)
    rows = []

    def evaluate(arch, models, shares):
        """(val [K], test [K], own-share val [K] or None) of stacked models."""
        va, te = (np.asarray(accuracies(arch, models, a, b)) for a, b in ((xv, yv), (xt, yt)))
        if shares is None:
            return va, te, [None] * len(va)
        own = own_accuracies(arch, models, xv[shares], yv[shares])
        return va, te, [float(v) for v in own]

    for arch_id in archs:
        arch = Arch.parse(arch_id)
        p0 = init_params(arch, key=k_init)
        full = None
        for K in trainers:
            t = time.perf_counter()
            shards = shard_indices(len(train_ds), K, seed=seed)
            n = shards.shape[1]
            shares = jnp.arange((len(val) // K) * K).reshape(K, -1)
            xs, ys = jnp.asarray(train_ds.x[shards]), jnp.asarray(train_ds.y[shards])
            n_k = jnp.full((K,), n, jnp.float32)
            batches = epoch_batches(k_batch, k=K, n=n, batch=batch, steps=iterations)
            base = dict(trainers=K, model=arch.id, iterations=iterations, train_rows=n)

            def run(L):
                models = train(arch, p0, xs, ys, n_k, lr_, batches, jnp.asarray(averaging_schedule(iterations, L)))
                return evaluate(arch, models, shares)

            for k, (va, te, own) in enumerate(zip(*run(None))):
                rows.append(base | dict(setting="alone", trainer=k + 1, local_steps="", rounds="",
                                        val_acc=float(va), test_acc=float(te), own_val_acc=own))
            for spec in local_steps:
                L = n // batch if spec == "epoch" else int(spec)
                for k, (va, te, own) in enumerate(zip(*run(L))):
                    rows.append(base | dict(setting="collaborative", trainer=k + 1, local_steps=L,
                                            rounds=-(-iterations // L), val_acc=float(va), test_acc=float(te),
                                            own_val_acc=own))
            if full is None:  # one full-set model per architecture, listed under every K
                b = epoch_batches(k_full, k=1, n=len(train_ds), batch=batch, steps=iterations)
                m = train(arch, p0, jnp.asarray(train_ds.x)[None], jnp.asarray(train_ds.y)[None],
                          jnp.full((1,), len(train_ds), jnp.float32), lr_, b,
                          jnp.asarray(averaging_schedule(iterations, None)))
                va, te, _ = evaluate(arch, m, None)
                full = dict(setting="full", trainer="all", local_steps="", rounds="", train_rows=len(train_ds),
                            val_acc=float(va[0]), test_acc=float(te[0]), own_val_acc=None)
            rows.append(base | full)
            log(f"[flchain] {arch.id}, K = {K}: alone, collaborative ({', '.join(map(str, local_steps))}) and "
                f"full trained ({time.perf_counter() - t:.1f} s)")
    return rows


def _sel(rows, **kw):
    return [r for r in rows if all(r[k] == v for k, v in kw.items())]


def _mean(group, field):
    return float(np.mean([r[field] for r in group]))


def configurations(rows: list[dict], batch: int = 64, primary: str = "epoch"):
    """``(model, K, alone rows, primary collaborative rows, full row)`` per configuration."""
    for arch_id in dict.fromkeys(r["model"] for r in rows):
        for K in dict.fromkeys(r["trainers"] for r in _sel(rows, model=arch_id)):
            rs = _sel(rows, model=arch_id, trainers=K)
            alone = _sel(rs, setting="alone")
            L = alone[0]["train_rows"] // batch if primary == "epoch" else int(primary)
            yield arch_id, K, alone, _sel(rs, setting="collaborative", local_steps=L), _sel(rs, setting="full")[0]


def markdown(rows: list[dict], batch: int = 64, primary: str = "epoch") -> str:
    """Per (model, K) a per-trainer table; a summary with the paper's figures; the collaborative
    model by local steps per round."""
    out = []
    for arch_id, K, alone, collab, full in configurations(rows, batch, primary):
        out += [f"\n**{arch_id}, {K} trainers** ({alone[0]['train_rows']} rows each; collaborative: "
                f"{collab[0]['rounds']} rounds of {collab[0]['local_steps']} local steps)\n",
                "| trainer | alone val | alone test | alone own-val | collab. val | collab. test | collab. own-val |",
                "|---|---:|---:|---:|---:|---:|---:|"]
        for a, c in zip(alone, collab):
            cells = [a["val_acc"], a["test_acc"], a["own_val_acc"], c["val_acc"], c["test_acc"], c["own_val_acc"]]
            out.append(f"| {a['trainer']} | " + " | ".join(f"{v:.4f}" for v in cells) + " |")
        cells = [_mean(g, f) for g in (alone, collab) for f in ("val_acc", "test_acc", "own_val_acc")]
        out.append("| mean | " + " | ".join(f"{v:.4f}" for v in cells) + " |")
        out.append(f"| full set ({full['train_rows']} rows) | {full['val_acc']:.4f} | {full['test_acc']:.4f} | | | | |")

    out += ["\n**Summary: val / test accuracy, ours, and the paper's figures**\n",
            "| model | trainers | single trainer (mean) | collaborative | full set | paper: single / collab. / full |",
            "|---|---:|---:|---:|---:|---|"]
    for arch_id, K, alone, collab, full in configurations(rows, batch, primary):
        p = PAPER.get(K)
        paper = f"{p['alone']:.3f} / ≈ {p['collaborative']:.2f} / {p['full']:.3f}" if p else "—"
        cell = [f"{_mean(g, 'val_acc'):.4f} / {_mean(g, 'test_acc'):.4f}" for g in (alone, collab, [full])]
        out.append(f"| {arch_id} | {K} | " + " | ".join(cell) + f" | {paper} |")

    out += ["\n**Collaborative model by local steps per round** (the same SGD budget per trainer)\n",
            "| model | trainers | local steps | rounds | val | test |", "|---|---:|---:|---:|---:|---:|"]
    for r in _sel(rows, setting="collaborative", trainer=1):
        out.append(f"| {r['model']} | {r['trainers']} | {r['local_steps']} | {r['rounds']} | "
                   f"{r['val_acc']:.4f} | {r['test_acc']:.4f} |")
    return "\n".join(out)


def plot(rows: list[dict], path: Path, title: str, batch: int = 64) -> None:
    """One panel per (model, K): test (bars) and validation (dots) accuracy of each trainer
    alone, of the collaborative model and of the full-set model; the paper's figures dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    confs = list(configurations(rows, batch))
    archs = list(dict.fromkeys(c[0] for c in confs))
    ks = list(dict.fromkeys(c[1] for c in confs))
    fig, axes = plt.subplots(len(archs), len(ks), figsize=(4.5 * len(ks), 3.2 * len(archs)), squeeze=False)
    lo = min(r[f] for r in rows for f in ("val_acc", "test_acc"))
    for arch_id, K, alone, collab, full in confs:
        ax = axes[archs.index(arch_id), ks.index(K)]
        bars = alone + [collab[0], full]
        labels = [f"T{r['trainer']}" for r in alone] + ["collab.", "full"]
        colors = ["tab:blue"] * len(alone) + ["tab:green", "tab:grey"]
        x = np.arange(len(bars))
        ax.bar(x, [r["test_acc"] for r in bars], color=colors, label="test")
        ax.plot(x, [r["val_acc"] for r in bars], "k.", label="validation")
        for key, ls in (("alone", "--"), ("collaborative", ":"), ("full", "-.")):
            if K in PAPER:
                ax.axhline(PAPER[K][key], color="tab:red", ls=ls, lw=1, label=f"paper {key}")
        ax.set_xticks(x, labels, fontsize=7 if K > 6 else 9)
        ax.set_ylim(max(0.0, lo - 0.02), 1.0)
        ax.set_title(f"{arch_id}, {K} trainers", fontsize=9)
        ax.grid(axis="y", alpha=0.3)
    for ax in axes[:, 0]:
        ax.set_ylabel("accuracy")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=7, frameon=False)
    fig.suptitle(textwrap.fill(title, 60 * len(ks)), fontsize=8)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _ints(s: str) -> tuple[int, ...]:
    return tuple(int(v) for v in s.split(",") if v)


def main(argv=None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--trainers", default="4,10", help="comma-separated numbers of trainers")
    ap.add_argument("--iterations", type=int, default=1500, help="SGD steps of every model")
    ap.add_argument("--lr", type=float, default=0.5)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--arch", default="logreg-784-10,mlp-784-200-10", help="comma-separated architecture ids")
    ap.add_argument("--local-steps", default="epoch,1,1500",
                    help="comma-separated local steps per FedAvg round ('epoch' = one pass over a shard); "
                         "the first is the one the tables use")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "figures")
    ap.add_argument("--quick", action="store_true", help="2 trainers, 50 steps, 4 000 / 1 000 / 2 000 rows")
    a = ap.parse_args(argv)
    sizes = dict(n_train=55_000, n_val=5_000, n_test=None)
    if a.quick:
        a.trainers, a.iterations, a.arch, a.local_steps = "2", 50, "logreg-784-10", "epoch,1"
        sizes = dict(n_train=4_000, n_val=1_000, n_test=2_000)
    local_steps = tuple(s for s in a.local_steps.split(","))
    if not local_steps or any(s != "epoch" and not (s.isdigit() and int(s) >= 1) for s in local_steps):
        ap.error("--local-steps must be a comma-separated list of positive integers or 'epoch'")

    from fl_server.data import load_mnist

    wall = time.perf_counter()
    print(f"[flchain] machine: {describe_machine()}", flush=True)
    rows = simulate(load_mnist(), trainers=_ints(a.trainers), archs=tuple(a.arch.split(",")), local_steps=local_steps,
                    iterations=a.iterations, lr=a.lr, batch=a.batch, seed=a.seed, **sizes,
                    log=lambda s: print(s, flush=True))
    a.out.mkdir(parents=True, exist_ok=True)
    with open(a.out / "flchain_tables.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS)
        w.writeheader()
        for r in rows:
            w.writerow({k: ("" if v is None else f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()})
    per_round = "one local epoch" if local_steps[0] == "epoch" else f"{local_steps[0]} local steps"
    title = (f"MNIST, {sizes['n_train']} training rows, {a.iterations} SGD steps, batch {a.batch}, lr {a.lr}, "
             f"seed {a.seed}; collaborative = FedAvg, {per_round} per round")
    plot(rows, a.out / "flchain_tables.png", title, a.batch)
    elapsed = time.perf_counter() - wall
    print(f"\nFLChain Tables V and VI ({title}).")
    print(markdown(rows, a.batch, local_steps[0]))
    print(f"\n[flchain] wrote {a.out / 'flchain_tables.csv'} and {a.out / 'flchain_tables.png'}")
    print(f"[flchain] wall time {elapsed:.1f} s; machine after the run: {describe_machine()}")
    return rows


if __name__ == "__main__":
    main()
