"""Reproduce Tables II–V of *Record and Reward Federated Learning Contributions with Blockchain*
(Martinez et al.): how often CSVES-Tr and CSVES-Th accept valid and faulty uploads, by the
number of classes a device holds.

Run it with ``.venv/bin/python scripts/rr_tables.py`` (no chain, no network; ``--quick`` for a
tiny run on the bundled digits). It writes ``<out>/rr_tables.csv`` (one row per scheme, data
kind and number of classes, plus an ``all`` row each) and ``<out>/rr_tables.png``, and prints the
table with the paper's overall figures beside ours, the wall time and the machine.

The simulation (our choices where the paper is silent; ``docs/rr.md`` discusses them):

* **Data.** MNIST's 50 000 training rows; a random 5 % (``--pretrain-frac``) is held out to
  pre-train the global model, the other 95 % is the pool devices draw from. The owner's
  validation pool is MNIST's separate 10 000-row validation split.
* **Devices.** ``--devices`` devices (1 000); device i holds ``--points`` rows (1 000) of
  c_i ~ Uniform{1, …, 9} classes, a random subset of the 10 digits, split evenly between them
  and drawn without replacement within the device (devices may share rows: 10⁶ draws from a
  47 500-row pool).
* **Global model T_k.** Logistic regression ``logreg-784-10`` (the paper does not specify the
  model of these tables; the smallest reasonable one, so that 1 000 devices fit a 2-core CPU),
  Glorot init, then ``--pretrain-epochs`` (1) epoch of SGD on the held-out 5 % (0: T_k is the
  random initialisation). Every device starts from this same T_k.
* **Validation set.** ``--val-size`` (100) points: m = ⌊100 / c_i⌋ per declared class (so
  96–100 points), drawn by :func:`fedcoin.ml.csves.class_sampled_indices` with the device's
  seed keccak256(seed32 ‖ uint256(i)) — the same rows any miner rebuilds.
* **Local training.** ``--epochs`` (5) epochs of minibatch SGD (batch ``--batch`` 10, lr
  ``--lr`` 0.1); v_E records the class-sampled error of T_k and then every ``--every`` (50)
  steps, i.e. twice an epoch: 11 points for the defaults.
* **Data kinds.** ``valid``; ``permuted`` (the primary faulty kind: the device's labels randomly
  permuted among its own rows, so the label histogram and hence the declared classes are
  unchanged, but a label says nothing about its image — with one class this is the identity);
  ``shifted`` (every label y → (y + 1) mod 10; the device declares the shifted classes, as a
  device cannot know its labels are wrong); ``noise`` (the images replaced by uniform noise,
  labels kept). The same device, classes, rows and training key are used for every kind.
* **Schemes.** CSVES-Tr: the least-squares slope of v_E < 0. CSVES-Th: v_E[-1] < τ = 0.1
  (``--tau``).
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from eth_utils import keccak  # noqa: E402

from fedcoin.dev.machine import describe as describe_machine  # noqa: E402
from fedcoin.ml import csves  # noqa: E402
from fedcoin.ml.models import Arch, init_params  # noqa: E402

KINDS = ("valid", "permuted", "shifted", "noise")
FAULTY = KINDS[1:]
SCHEMES = ("CSVES-Tr", "CSVES-Th")
#: The paper's overall acceptance rates (valid, faulty), as approximate figures; the paper's
#: per-class rows are not reproduced here because we only had these totals to compare with.
PAPER = {("CSVES-Tr", "valid"): 0.60, ("CSVES-Tr", "faulty"): 0.33,
         ("CSVES-Th", "valid"): 0.99, ("CSVES-Th", "faulty"): 0.75}
COLUMNS = ("scheme", "data", "n_classes", "devices", "accepted", "rate",
           "mean_first_error", "mean_last_error", "mean_slope")


def device_seed(seed: int, i: int) -> bytes:
    """Device i's 32-byte class-sampling seed: keccak256(uint256(seed) ‖ uint256(i))."""
    return keccak(csves.seed_bytes(seed) + i.to_bytes(32, "big"))


def make_devices(train_y: np.ndarray, pool: np.ndarray, *, devices: int, points: int, max_classes: int,
                 num_classes: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``(n_classes [D], rows [D, points])``: each device's class count and its training rows."""
    by_class = [pool[train_y[pool] == c] for c in range(num_classes)]
    n_cls = rng.integers(1, max_classes + 1, devices)
    rows = np.empty((devices, points), np.int64)
    for i, c in enumerate(n_cls):
        classes = np.sort(rng.choice(num_classes, c, replace=False))
        counts = [len(a) for a in np.array_split(np.arange(points), c)]
        rows[i] = np.concatenate([rng.choice(by_class[k], n, replace=False) for k, n in zip(classes, counts)])
    return n_cls, rows


def faulty(kind: str, x: np.ndarray, y: np.ndarray, num_classes: int, rng: np.random.Generator):
    """One device's data of ``kind`` from its valid ``(x [n, d], y [n])``."""
    if kind == "valid":
        return x, y
    if kind == "permuted":
        return x, rng.permutation(y)
    if kind == "shifted":
        return x, ((y + 1) % num_classes).astype(y.dtype)
    if kind == "noise":
        return rng.random(x.shape, dtype=np.float32), y
    raise ValueError(f"unknown data kind {kind!r}; expected one of {KINDS}")


def simulate(splits, *, devices: int = 1000, points: int = 1000, epochs: int = 5, batch: int = 10,
             lr: float = 0.1, every: int = 50, seed: int = 0, kinds=KINDS, max_classes: int = 9,
             val_size: int = 100, pretrain_frac: float = 0.05, pretrain_epochs: int = 1,
             chunk: int = 250, log=print) -> dict:
    """Run every device under every data kind; per-device trajectories and verdicts.

    Returns:
        ``{"n_classes": [D], "kinds": {kind: {"first", "last", "slope", "tr": [D], "th"...}},
        "tk_test_error": float, "arch": str, "records": int}`` (``th`` is filled in by
        :func:`verdicts`, which applies τ).
    """
    t0 = time.perf_counter()
    C = splits.num_classes
    arch = Arch("logreg", (splits.num_features, C))
    rng = np.random.default_rng(seed)
    N = len(splits.train)
    order = rng.permutation(N)
    n_hold = max(batch, int(round(pretrain_frac * N)))
    hold, pool = order[:n_hold], order[n_hold:]
    n_cls, rows = make_devices(splits.train.y, pool, devices=devices, points=points,
                               max_classes=min(max_classes, C), num_classes=C, rng=rng)
    R = csves.n_records(points, epochs=epochs, batch_size=batch, every=every)
    log(f"[rr] data {splits.name}: pool {len(pool)}, held-out {n_hold}, validation pool {len(splits.val)}; "
        f"{devices} devices x {points} points, classes per device 1..{min(max_classes, C)} "
        f"({time.perf_counter() - t0:.1f} s)")

    # T_k: logistic regression, pre-trained on the held-out rows
    t = time.perf_counter()
    k_init, k_pre, k_dev = jax.random.split(jax.random.key(seed), 3)
    p0 = init_params(arch, key=k_init)
    tk = p0
    if pretrain_epochs > 0:  # 0: T_k is the random initialisation itself
        tk, _ = csves.train_with_trajectory(arch, p0, splits.train.x[hold], splits.train.y[hold],
                                            splits.test.x, splits.test.y, key=k_pre, epochs=pretrain_epochs,
                                            batch_size=batch, lr=lr, every=pretrain_epochs * (n_hold // batch))
    tk_err = csves.validation_error(tk, arch, splits.test.x, splits.test.y)
    how = f"{pretrain_epochs} epoch(s) on {n_hold} held-out rows" if pretrain_epochs > 0 else "random initialisation"
    log(f"[rr] T_k = {arch.id}, {how}: test error {tk_err:.4f} ({time.perf_counter() - t:.1f} s)")

    out = {k: {f: np.zeros(devices) for f in ("first", "last", "slope")} | {"tr": np.zeros(devices, bool)}
           for k in kinds}
    for kind in kinds:
        t = time.perf_counter()
        for lo in range(0, devices, chunk):
            ids = np.arange(lo, min(devices, lo + chunk))
            xs, ys, xv, yv, vm = [], [], [], [], []
            for i in ids:
                x, y = faulty(kind, splits.train.x[rows[i]], splits.train.y[rows[i]], C,
                              np.random.default_rng([seed, 1 + KINDS.index(kind), int(i)]))
                classes = csves.declared_classes(y, C)
                vi = csves.class_sampled_indices(splits.val.y, classes, max(1, val_size // len(classes)),
                                                 device_seed(seed, int(i)))
                pad = val_size - len(vi)
                if pad < 0:
                    raise ValueError(f"device {i}: {len(vi)} validation rows exceed --val-size {val_size}")
                xs.append(x), ys.append(y)
                xv.append(splits.val.x[np.r_[vi, np.zeros(pad, np.int64)]])
                yv.append(splits.val.y[np.r_[vi, np.zeros(pad, np.int64)]])
                vm.append(np.r_[np.ones(len(vi), bool), np.zeros(pad, bool)])
            keys = jax.vmap(jax.random.fold_in, (None, 0))(k_dev, jnp.asarray(ids, jnp.uint32))
            _, v_E = csves.train_many(arch, tk, np.stack(xs), np.stack(ys), np.stack(xv), np.stack(yv),
                                      np.stack(vm), keys=keys, epochs=epochs, batch_size=batch, lr=lr,
                                      every=every)
            for j, i in enumerate(ids):
                acc, slope = csves.csves_tr(v_E[j])
                o = out[kind]
                o["first"][i], o["last"][i], o["slope"][i], o["tr"][i] = v_E[j][0], v_E[j][-1], slope, acc
        log(f"[rr] {kind:8s}: {devices} devices trained, {R} records each ({time.perf_counter() - t:.1f} s; "
            f"load average {os.getloadavg()[0]:.2f})")
    return dict(n_classes=n_cls, kinds=out, tk_test_error=tk_err, arch=arch.id, records=R)


def table_rows(res: dict, *, tau: float = csves.DEFAULT_TAU) -> list[dict]:
    """One row per scheme, data kind and number of classes (then ``all``), with the columns
    :data:`COLUMNS`."""
    n_cls = res["n_classes"]
    rows = []
    for scheme in SCHEMES:
        for kind, o in res["kinds"].items():
            acc = o["tr"] if scheme == "CSVES-Tr" else np.array([csves.csves_th(e, tau) for e in o["last"]])
            groups = [(int(c), n_cls == c) for c in np.unique(n_cls)] + [("all", np.ones(len(n_cls), bool))]
            for c, sel in groups:
                k = int(sel.sum())
                rows.append(dict(scheme=scheme, data=kind, n_classes=c, devices=k, accepted=int(acc[sel].sum()),
                                 rate=float(acc[sel].mean()), mean_first_error=float(o["first"][sel].mean()),
                                 mean_last_error=float(o["last"][sel].mean()),
                                 mean_slope=float(np.nanmean(o["slope"][sel])) if k else float("nan")))
    return rows


def markdown(rows: list[dict]) -> str:
    """The acceptance rates as one Markdown table: n_classes down, scheme × data across, the
    paper's overall figures in the last line."""
    cols = [(s, k) for s in SCHEMES for k in dict.fromkeys(r["data"] for r in rows)]
    by = {(r["scheme"], r["data"], r["n_classes"]): r for r in rows}
    classes = list(dict.fromkeys(r["n_classes"] for r in rows))
    head = "| classes | devices | " + " | ".join(f"{s[6:]} {k}" for s, k in cols) + " |"
    lines = [head, "|" + "---:|" * (2 + len(cols))]
    for c in classes:
        r0 = by[(cols[0][0], cols[0][1], c)]
        cells = [f"{by[(s, k, c)]['rate']:.3f}" for s, k in cols]
        lines.append(f"| {c} | {r0['devices']} | " + " | ".join(cells) + " |")
    paper = [f"{PAPER[(s, 'valid' if k == 'valid' else 'faulty')]:.2f}" if (k == "valid" or k == "permuted")
             else "" for s, k in cols]
    lines.append("| paper (overall) | | " + " | ".join(paper) + " |")
    return "\n".join(lines)


def plot(rows: list[dict], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for ax, scheme in zip(axes, SCHEMES):
        for kind in dict.fromkeys(r["data"] for r in rows):
            rs = [r for r in rows if r["scheme"] == scheme and r["data"] == kind and r["n_classes"] != "all"]
            ax.plot([r["n_classes"] for r in rs], [r["rate"] for r in rs], "o-", label=kind)
        for label, ls in (("valid", "--"), ("faulty", ":")):
            ax.axhline(PAPER[(scheme, label)], color="grey", ls=ls, lw=1, label=f"paper overall, {label}")
        ax.set_title(scheme)
        ax.set_xlabel("classes held by the device")
        ax.set_ylim(-0.03, 1.03)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("acceptance rate")
    axes[0].legend(fontsize=8, loc="center right")  # the Tr panel's right middle is empty
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--devices", type=int, default=1000)
    ap.add_argument("--points", type=int, default=1000, help="training rows per device")
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--batch", type=int, default=10)
    ap.add_argument("--lr", type=float, default=0.1)
    ap.add_argument("--every", type=int, default=50, help="record the validation error every N SGD steps")
    ap.add_argument("--val-size", type=int, default=100, help="class-sampled set size; m = val_size // classes")
    ap.add_argument("--tau", type=float, default=csves.DEFAULT_TAU)
    ap.add_argument("--pretrain-frac", type=float, default=0.05)
    ap.add_argument("--pretrain-epochs", type=int, default=1, help="0: T_k is the random initialisation")
    ap.add_argument("--kinds", default=",".join(KINDS), help=f"comma-separated subset of {','.join(KINDS)}")
    ap.add_argument("--chunk", type=int, default=250, help="devices trained per vmapped call")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data", default=None, help="mnist (default), digits, idx:DIR, npz:FILE")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "figures")
    ap.add_argument("--quick", action="store_true", help="tiny sizes on the bundled digits (for tests)")
    a = ap.parse_args(argv)
    if a.quick:
        a.devices, a.points, a.epochs, a.every, a.chunk = 18, 40, 2, 2, 9
        a.data = a.data or "digits"
    kinds = tuple(k for k in a.kinds.split(",") if k)
    if not kinds or any(k not in KINDS for k in kinds):
        ap.error(f"--kinds must be a comma-separated subset of {','.join(KINDS)}")

    from fl_server.data import load_dataset

    wall = time.perf_counter()
    print(f"[rr] machine: {describe_machine()}", flush=True)
    splits = load_dataset(a.data or "mnist")
    res = simulate(splits, devices=a.devices, points=a.points, epochs=a.epochs, batch=a.batch, lr=a.lr,
                   every=a.every, seed=a.seed, kinds=kinds, val_size=a.val_size, pretrain_frac=a.pretrain_frac,
                   pretrain_epochs=a.pretrain_epochs, chunk=a.chunk, log=lambda s: print(s, flush=True))
    rows = table_rows(res, tau=a.tau)
    a.out.mkdir(parents=True, exist_ok=True)
    with open(a.out / "rr_tables.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS)
        w.writeheader()
        for r in rows:
            w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()})
    title = (f"{splits.name}: {a.devices} devices x {a.points} points, {a.epochs} epochs, {res['arch']} "
             f"(T_k test error {res['tk_test_error']:.3f}), tau={a.tau}, seed {a.seed}")
    plot(rows, a.out / "rr_tables.png", title)
    elapsed = time.perf_counter() - wall
    print(f"\nAcceptance rates ({title}); rows: classes held, columns: scheme and data kind.")
    print("Paper: overall figures only (valid, faulty); its faulty data is compared with our 'permuted'.\n")
    print(markdown(rows))
    print(f"\n[rr] wrote {a.out / 'rr_tables.csv'} and {a.out / 'rr_tables.png'}")
    print(f"[rr] wall time {elapsed:.1f} s; machine after the run: {describe_machine()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
