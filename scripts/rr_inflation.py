"""Data-cost inflation: what a client gains by declaring ``--factor`` × its real n, under three
payment rules, and what it does to the model (``docs/rr.md``, "Data-cost inflation (measured)").

Run it with ``.venv/bin/python scripts/rr_inflation.py`` (no chain, no network; ``--quick`` for
a tiny run on the bundled digits, K = 5). It prints the share table, the model figures, the
wall time and the machine, and writes ``<out>/rr_inflation.csv``.

Setup (one FL round, as the FL server simulates it):

* **Data.** MNIST via :func:`fl_server.data.load_dataset`; K clients of the paper's quality types
  (:func:`fl_server.partition.partition`, client k of K has type ``(10k) // K``: K = 10 gives
  T0 … T9, one each), ``--rows`` real rows each. The validation set of the game and of the model
  figures is the dataset's validation split (MNIST: 10 000 rows).
* **Round.** w_0 = the server's initial model for ``--seed`` (:func:`fl_server.client.initial_model`),
  each client's update from :func:`fl_server.fedavg.local_sgd` with the default
  :class:`fl_server.client.TrainingConfig` (20 steps, batch 50, lr 0.1) and the simulated
  client's key ``round_key(fold_in(key(seed), k), 0)`` — what ``DataOwner.train`` computes.
* **Inflation.** The inflater declares ``factor · n`` while its data and its update (the same
  bytes) are unchanged. Two inflaters in turn: the good client (client 0, T0) and the poor one
  (the last client: T9 holds one digit at K = 10).
* **Shapley.** Exact (all 2^K coalitions, :func:`miners.shapley.exact_shapley` on
  :func:`miners.shapley.fl_game`) of the round's :class:`fedcoin.ml.utility.RoundGame`, metric
  negative validation cross-entropy, aggregation weighted by the *declared* n_k.
* **Payment rules.** ``shapley`` (FedCoin on chain): the Shapley vector as fixed point, paid by
  :func:`fedcoin.protocol.posap.client_payouts` (TrainPrice pro rata to the positive entries) —
  the contract's rule. ``data-cost`` (Record-and-Reward) and ``data-cost-gated`` are NOT on chain;
  they are computed here from their definitions: TrainPrice pro rata to the declared n_k over
  the accepted updates (here: every registered update; none fails the server's checks), and the
  same restricted to the updates whose Shapley value is > 0. Wei amounts use the contract's
  floor division (train · x // Σx); a share is amount / TrainPrice.
* **Mitigations.** ``cap-1x`` / ``cap-2x``: a cap on declared n fixed at task creation (1.0× and
  2× the real n); a declaration above it is refused at registration, so the inflater's best
  declaration is the cap. ``uniform``: aggregation ``fedavg-uniform`` (n leaves the model and the
  Shapley game, not a data-cost payment). ``CSVES-Th``: the verdict of the inflater's update on
  its class-sampled validation set (:mod:`fedcoin.ml.csves`), which is a function of the update
  bytes, the declared classes and the seed only — never of n.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from eth_utils import keccak  # noqa: E402

from fedcoin.dev.machine import describe as describe_machine  # noqa: E402
from fedcoin.ml import csves  # noqa: E402
from fedcoin.ml import fedavg as fedavg_rule  # noqa: E402
from fedcoin.ml.models import Arch  # noqa: E402
from fedcoin.ml.serialization import params_to_bytes  # noqa: E402
from fedcoin.ml.utility import RoundGame  # noqa: E402
from fedcoin.protocol import fixedpoint, posap  # noqa: E402
from fl_server.client import TrainingConfig, initial_model  # noqa: E402
from fl_server.data import load_dataset  # noqa: E402
from fl_server.fedavg import evaluate_params, local_sgd  # noqa: E402
from fl_server.partition import partition  # noqa: E402
from miners.shapley import exact_shapley, fl_game  # noqa: E402
from fedcoin.ml.fedavg import Aggregation  # noqa: E402

WEIGHTED, UNIFORM = Aggregation.WEIGHTED.rule, Aggregation.UNIFORM.rule

#: The payment rules compared (only `shapley` is on chain today).
PAYMENT_RULES = ("shapley", "data-cost", "data-cost-gated")
#: A task's budget V (10 ETH, the demo's) and its single round's TrainPrice (70 %).
BUDGET = 10 * 10**18
TRAIN_PRICE = posap.round_prices(BUDGET, 1, 0)[0]
CSV_FIELDS = ("case", "inflater", "type", "mitigation", "aggregation", "declared_factor", "rule",
              "honest_share", "inflated_share", "gain", "honest_phi", "inflated_phi",
              "honest_val_acc", "inflated_val_acc", "honest_val_loss", "inflated_val_loss",
              "csves_th_error_honest", "csves_th_error_inflated", "csves_th_honest", "csves_th_inflated")


# ------------------------------------------------------------------------------ payment rules


def pay_shapley(train: int, phi) -> list[int]:
    """FedCoin: the contract's rule on the fixed-point Shapley vector (``posap.client_payouts``)."""
    return posap.client_payouts(train, fixedpoint.encode_vector([float(p) for p in phi]))[0]


def pay_data_cost(train: int, n_declared, accepted=None) -> list[int]:
    """R&R (off chain, from its definition): train · n_k // Σ_accepted n_j for accepted k, else 0."""
    n = [int(x) for x in n_declared]
    acc = [True] * len(n) if accepted is None else [bool(a) for a in accepted]
    total = sum(x for x, a in zip(n, acc) if a)
    return [train * x // total if a and total else 0 for x, a in zip(n, acc)]


def pay_data_cost_gated(train: int, n_declared, phi) -> list[int]:
    """R&R's amount among the updates whose Shapley value is > 0 (off chain, from its definition).

    The gate is the sign of the fixed-point Shapley entry, the same test as the contract's."""
    centre = fixedpoint.encode_vector([float(p) for p in phi])
    return pay_data_cost(train, n_declared, [c > 0 for c in centre])


def shares(train: int, n_declared, phi) -> dict[str, np.ndarray]:
    """Each client's share of TrainPrice (amount / TrainPrice) under every rule."""
    amounts = {"shapley": pay_shapley(train, phi), "data-cost": pay_data_cost(train, n_declared),
               "data-cost-gated": pay_data_cost_gated(train, n_declared, phi)}
    return {r: np.array(a, dtype=object).astype(float) / train for r, a in amounts.items()}


# ------------------------------------------------------------------------------ the round


@dataclass
class Round:
    """One simulated FL round's fixed inputs: w_0, the K updates, the real n_k, the validation set."""

    arch: Arch
    w0: dict
    updates: dict  # stacked [K, ...]
    n_real: np.ndarray
    types: list[int]
    labels: list[tuple[int, ...]]
    val_x: np.ndarray
    val_y: np.ndarray
    dataset: str


def build_round(*, dataset: str, clients: int, rows: int, seed: int, iid: bool = False) -> Round:
    splits = load_dataset(dataset)
    arch = Arch("logreg", (splits.num_features, 10))
    part = partition(splits.train, num_clients=clients, samples_per_client=rows, iid=iid,
                     num_classes=splits.num_classes, seed=seed)
    if part.pool_wraps:
        raise SystemExit(f"{clients} × {rows} rows exhaust a label pool of {dataset}; use fewer rows")
    w0 = initial_model(arch, seed)
    cfg = TrainingConfig()
    key = jax.random.key(seed)  # the server's task key; client k's is fold_in(key, k)
    deltas = []
    for k, c in enumerate(part.clients):
        local = local_sgd(arch, w0, jnp.asarray(c.data.x), jnp.asarray(c.data.y), jnp.int32(c.n),
                          jnp.float32(cfg.lr), key=fedavg_rule.round_key(jax.random.fold_in(key, k), 0),
                          steps=cfg.local_steps, batch_size=cfg.batch_size)
        deltas.append({n: local[n] - w0[n] for n in w0})
    return Round(arch, w0, fedavg_rule.stack(deltas), part.n_k.copy(), [c.type for c in part.clients],
                 [c.labels for c in part.clients], splits.val.x, splits.val.y, dataset)


def evaluate(rd: Round, n_declared, aggregation: str) -> dict:
    """The round's game under the declared n: exact Shapley, and the next global model's figures."""
    game = RoundGame.create(rd.arch, rd.w0, rd.updates, np.asarray(n_declared, np.float32), rd.val_x, rd.val_y,
                            aggregation=aggregation)
    phi = exact_shapley(fl_game(game, row_chunk=512, coalition_batch=256), batch_size=1024)
    model = fedavg_rule.aggregate_all(rd.w0, rd.updates, np.asarray(n_declared), rule=aggregation)
    loss, acc = evaluate_params(rd.arch, model, jnp.asarray(rd.val_x), jnp.asarray(rd.val_y))
    return {"phi": phi, "model": model, "val_loss": float(loss), "val_acc": float(acc)}


def registered_update(rd: Round, k: int, n_declared: int) -> tuple[bytes, int]:
    """What client k registers: (Δ_k's safetensors bytes, declared n). Inflation changes only n."""
    return params_to_bytes({n: np.asarray(v[k]) for n, v in rd.updates.items()}), int(n_declared)


def csves_th_of_registration(rd: Round, k: int, registration: tuple[bytes, int], *, seed: int,
                             val_size: int = 100) -> tuple[float, bool]:
    """CSVES-Th (Alg. 4) of a registration: error of T_k + Δ on the class-sampled set and verdict.

    The inputs are the update bytes, the declared classes (client k's labels) and a seed; the
    declared n (``registration[1]``) is not one of them — the scheme cannot see it."""
    from fedcoin.ml.serialization import params_from_bytes

    blob, _n_unused = registration
    delta = params_from_bytes(blob)
    classes = rd.labels[k]
    idx = csves.class_sampled_indices(rd.val_y, classes, max(1, val_size // len(classes)),
                                      keccak(seed.to_bytes(32, "big") + k.to_bytes(32, "big")))
    t_prime = {n: rd.w0[n] + jnp.asarray(delta[n]) for n in rd.w0}
    err = csves.validation_error(t_prime, rd.arch, rd.val_x[idx], rd.val_y[idx])
    return err, csves.csves_th(err)


def type_name(t: int) -> str:
    return "IID" if t < 0 else f"T{t}"


# ------------------------------------------------------------------------------ the experiment


def run(*, dataset: str = "mnist", clients: int = 10, rows: int = 500, factor: float = 10.0, seed: int = 0,
        iid: bool = False, log=print) -> dict:
    """Every case, rule and mitigation; returns ``{"rows": [...], "round": Round, "results": {...}}``."""
    rd = build_round(dataset=dataset, clients=clients, rows=rows, seed=seed, iid=iid)
    n = rd.n_real.astype(np.int64)
    K = len(n)
    inflaters = {"good": 0, "poor": K - 1}
    cap_levels = {"cap-1x": 1.0, "cap-2x": 2.0}

    def declared(k: int, f: float) -> np.ndarray:
        d = n.copy()
        d[k] = int(round(f * n[k]))
        return d

    cache: dict = {}

    def ev(n_decl: np.ndarray, aggregation: str) -> dict:
        key = (tuple(int(x) for x in n_decl), aggregation)
        if key not in cache:
            cache[key] = evaluate(rd, n_decl, aggregation)
        return cache[key]

    out_rows = []
    for case, k in inflaters.items():
        scenarios = [("none", WEIGHTED, factor)]
        # a cap c·n at task creation: a declaration above it is refused, so the best is min(f, c)·n
        scenarios += [(m, WEIGHTED, min(factor, c)) for m, c in cap_levels.items()]
        scenarios.append(("uniform", UNIFORM, factor))
        for mitigation, aggregation, f in scenarios:
            hon, inf = ev(n, aggregation), ev(declared(k, f), aggregation)
            sh_h, sh_i = shares(TRAIN_PRICE, n, hon["phi"]), shares(TRAIN_PRICE, declared(k, f), inf["phi"])
            reg_h, reg_i = registered_update(rd, k, n[k]), registered_update(rd, k, declared(k, f)[k])
            th_h, th_i = csves_th_of_registration(rd, k, reg_h, seed=seed), csves_th_of_registration(rd, k, reg_i, seed=seed)
            for rule in PAYMENT_RULES:
                h, i = float(sh_h[rule][k]), float(sh_i[rule][k])
                out_rows.append({
                    "case": case, "inflater": k, "type": type_name(rd.types[k]), "mitigation": mitigation,
                    "aggregation": aggregation, "declared_factor": f, "rule": rule,
                    "honest_share": h, "inflated_share": i, "gain": (i / h) if h > 0 else (float("inf") if i > 0 else 1.0),
                    "honest_phi": float(hon["phi"][k]), "inflated_phi": float(inf["phi"][k]),
                    "honest_val_acc": hon["val_acc"], "inflated_val_acc": inf["val_acc"],
                    "honest_val_loss": hon["val_loss"], "inflated_val_loss": inf["val_loss"],
                    "csves_th_error_honest": th_h[0], "csves_th_error_inflated": th_i[0],
                    "csves_th_honest": th_h[1], "csves_th_inflated": th_i[1],
                    "_shares_honest": sh_h[rule], "_shares_inflated": sh_i[rule],
                })
    log(f"round: {dataset}, K={K}, n={n.tolist()}, types={[type_name(t) for t in rd.types]}, "
        f"validation rows {len(rd.val_y)}, TrainPrice {TRAIN_PRICE} wei")
    return {"rows": out_rows, "round": rd, "results": cache, "n": n, "inflaters": inflaters}


def print_tables(res: dict, log=print) -> None:
    rows = res["rows"]
    log("\ncase   inflater  mitigation  agg       f     rule             honest share  inflated share  gain ×")
    for r in rows:
        log(f"{r['case']:<6} {r['inflater']:>2} {r['type']:<5} {r['mitigation']:<11} {r['aggregation'][7:]:<9} "
            f"{r['declared_factor']:>4.1f}  {r['rule']:<16} {r['honest_share']:>12.6f}  {r['inflated_share']:>14.6f}  "
            f"{r['gain']:>6.3f}")
    log("\ncase   mitigation  agg       f     φ honest     φ inflated   val acc honest→inflated  val loss honest→inflated  "
        "CSVES-Th err honest/inflated (verdict)")
    for r in rows:
        if r["rule"] != "shapley":
            continue
        log(f"{r['case']:<6} {r['mitigation']:<11} {r['aggregation'][7:]:<9} {r['declared_factor']:>4.1f}  "
            f"{r['honest_phi']:>+11.6f}  {r['inflated_phi']:>+11.6f}  {r['honest_val_acc']:.4f} → {r['inflated_val_acc']:.4f}"
            f"          {r['honest_val_loss']:.4f} → {r['inflated_val_loss']:.4f}           "
            f"{r['csves_th_error_honest']:.3f}/{r['csves_th_error_inflated']:.3f} "
            f"({r['csves_th_honest']}/{r['csves_th_inflated']})")
    hon = res["results"][(tuple(int(x) for x in res["n"]), WEIGHTED)]
    log("\nhonest Shapley vector (weighted): " + " ".join(f"{p:+.4f}" for p in hon["phi"]))


def write_csv(rows: list[dict], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=CSV_FIELDS, extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow({k: (f"{v:.12g}" if isinstance(v, float) else v) for k, v in r.items() if k in CSV_FIELDS})


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clients", type=int, default=10)
    ap.add_argument("--rows", type=int, default=500, help="real rows per client")
    ap.add_argument("--factor", type=float, default=10.0, help="declared n / real n of the inflater")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data", default="mnist")
    ap.add_argument("--iid", action="store_true", help="IID clients instead of the quality types")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "figures")
    ap.add_argument("--quick", action="store_true", help="digits, K = 5, 100 rows each (for the test)")
    a = ap.parse_args(argv)
    if a.quick:
        a.data, a.clients, a.rows = "digits", 5, 100
    t0 = time.time()
    res = run(dataset=a.data, clients=a.clients, rows=a.rows, factor=a.factor, seed=a.seed, iid=a.iid)
    print_tables(res)
    path = a.out / "rr_inflation.csv"
    write_csv(res["rows"], path)
    wall = time.time() - t0
    res["wall_s"] = wall
    print(f"\nwrote {path}\nwall time {wall:.1f} s; machine: {describe_machine()}")
    return res


if __name__ == "__main__":
    main()
