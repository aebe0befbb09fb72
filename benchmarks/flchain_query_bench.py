"""FLChain query latency: the SQLite index (fedcoin/roles/flchain_index.py) against the paper's Table VIII.

FLChain's paper answers "is this model for sale / under judgement / problematic?" with a Merkle
hash tree per record and a distributed double counting Bloom filter, and reports (Table VIII)
15.68 ms to query the MHT, 13.42 ms to query the DDCBF and 33.31 ms in all. Here the same
questions are SQLite lookups on an index of the contract's events. Two measurements:

1. **Scale** (synthetic rows inserted directly into the derived tables, as many as ``--sizes``
   models and as many reports, over a pool of trainers): per query, the latency over
   ``--queries`` random ids, mean, median and 99th percentile.
2. **Real chain** (an Anvil with FedCoin and FLChain, two tasks played with the contract tests'
   round driver: one model on sale, one problematic after an upheld InvalidUpdate report, and
   ``--reports`` pending Unqualified reports): the index synced from scratch over the real
   events, then the same queries, and for comparison the on-chain views that answer them
   (``modelStatus`` by ``eth_call``) — the counterpart of the paper's MHT lookup.

Prints one JSON line per figure, the first one with the machine (fedcoin.dev.machine.describe)::

    .venv/bin/python benchmarks/flchain_query_bench.py                  # 1,000 / 10,000 / 100,000
    .venv/bin/python benchmarks/flchain_query_bench.py --sizes 10000 --no-chain
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from fedcoin.chain.artifact import load_artifact  # noqa: E402
from fedcoin.flchain.binding import ModelStatus, ReportKind, ReportState  # noqa: E402
from fedcoin.roles.flchain_index import FLChainIndex  # noqa: E402

#: FLChain's Table VIII (ms): query the MHT, query the DDCBF, total.
PAPER_MS = {"mht": 15.68, "ddcbf": 13.42, "total": 33.31}


def _addr(i: int) -> str:
    from eth_utils import to_checksum_address

    return to_checksum_address(f"0x{i + 1:040x}")


def fill(idx: FLChainIndex, n_models: int, n_reports: int, n_trainers: int, seed: int = 0) -> dict:
    """Synthetic derived rows: ``n_models`` models over n_models // 4 tasks (80 % listed on sale,
    10 % unavailable, 10 % listed problematic), 3 trainers each; ``n_reports`` reports (70 %
    Unqualified, a third of them pending; 30 % InvalidUpdate, half upheld, which makes their task
    problematic)."""
    rng = random.Random(seed)
    trainers = [_addr(i) for i in range(n_trainers)]
    n_tasks = max(1, n_models // 4)
    models, mt = [], []
    for m in range(n_models):
        r = rng.random()
        st = ModelStatus.ON_SALE if r < 0.8 else ModelStatus.UNAVAILABLE if r < 0.9 else ModelStatus.PROBLEMATIC
        models.append((m, rng.randrange(1, n_tasks + 1), trainers[0], str(10**18), int(st), m))
        mt += [(m, t) for t in rng.sample(trainers, 3)]
    reports, problematic = [], []
    for i in range(n_reports):
        if rng.random() < 0.7:
            state = ReportState.PENDING if rng.random() < 1 / 3 else rng.choice((ReportState.UPHELD, ReportState.REJECTED))
            reports.append((i, int(ReportKind.UNQUALIFIED), trainers[1], rng.choice(trainers), 0, 0, int(state), i))
        else:
            task = rng.randrange(1, n_tasks + 1)
            upheld = rng.random() < 0.5
            reports.append((i, int(ReportKind.INVALID_UPDATE), trainers[1], rng.choice(trainers), task, 0,
                            int(ReportState.UPHELD if upheld else ReportState.REJECTED), i))
            if upheld:
                problematic.append((task, i))
    db = idx.db
    db.execute("BEGIN")
    db.executemany("INSERT INTO flc_models VALUES (?, ?, ?, ?, ?, ?)", models)
    db.executemany("INSERT OR IGNORE INTO flc_model_trainers VALUES (?, ?)", mt)
    db.executemany("INSERT INTO flc_reports VALUES (?, ?, ?, ?, ?, ?, ?, ?)", reports)
    db.executemany("INSERT OR IGNORE INTO flc_problematic VALUES (?, ?)", problematic)
    db.execute("COMMIT")
    db.execute("ANALYZE")
    return {"models": n_models, "reports": n_reports, "trainers": n_trainers, "tasks": n_tasks,
            "problematic_tasks": len({t for t, _ in problematic})}


def timed(fn, args: list) -> dict:
    """Latency of ``fn(a)`` for each ``a`` (ms): mean, median, p99, max."""
    fn(args[0])  # warm the page cache and the statement cache
    ts = []
    for a in args:
        t0 = time.perf_counter_ns()
        fn(a)
        ts.append((time.perf_counter_ns() - t0) / 1e6)
    ts.sort()
    return {"n": len(ts), "mean_ms": round(statistics.fmean(ts), 4), "p50_ms": round(ts[len(ts) // 2], 4),
            "p99_ms": round(ts[min(len(ts) - 1, int(len(ts) * 0.99))], 4), "max_ms": round(ts[-1], 4)}


def queries(idx: FLChainIndex, model_ids: list[int], trainers: list[str]) -> dict:
    def total(m):  # the three answers a buyer wants about one model
        return idx.is_for_sale(m), idx.under_judgement(m), idx.is_problematic(m)

    return {
        "is_for_sale": timed(idx.is_for_sale, model_ids),
        "under_judgement_trainer": timed(idx.under_judgement, trainers),
        "under_judgement_model": timed(idx.under_judgement, model_ids),
        "is_problematic": timed(idx.is_problematic, model_ids),
        "models_on_sale_first_100": timed(lambda _: idx.models(ModelStatus.ON_SALE, limit=100), model_ids[:200]),
        "total_three_queries": timed(total, model_ids),
    }


def scale(sizes: list[int], n_queries: int, emit) -> None:
    abi = load_artifact("FLChain")["abi"]
    rng = random.Random(1)
    with tempfile.TemporaryDirectory() as d:
        for n in sizes:
            path = Path(d) / f"scale-{n}.sqlite"
            with FLChainIndex(path, None, _addr(10**6), abi) as idx:
                t0 = time.perf_counter()
                info = fill(idx, n, n, max(100, n // 5))
                fill_s = time.perf_counter() - t0
                mids = [rng.randrange(n) for _ in range(n_queries)]
                trs = [_addr(rng.randrange(info["trainers"])) for _ in range(n_queries)]
                res = queries(idx, mids, trs)
            emit({"part": "scale", **info, "fill_s": round(fill_s, 2), "file_mib": round(path.stat().st_size / 2**20, 1),
                  "queries": res, "paper_table_viii_ms": PAPER_MS})


def real_chain(n_reports: int, n_queries: int, emit) -> None:
    from eth_utils import keccak
    from fedcoin_testkit import ETH, actors, default_params, dev_accounts, vec, w3_for
    from round_driver import play_round

    from fedcoin.chain import FedCoin
    from fedcoin.dev.devnet import Anvil
    from fedcoin.flchain.binding import FLChain, FLChainParams

    spec = b'{"excluded":[{"client":"0x00","index":2,"reason":"non-finite"}],"x":1}'
    with Anvil(accounts=40) as node, tempfile.TemporaryDirectory() as d:
        w3 = w3_for(node)
        a = actors(n_clients=3, n_miners=2)
        fc = FedCoin.deploy(w3, a.requester, default_params())
        p = FLChainParams()
        flc = FLChain.deploy(w3, a.requester, fedcoin=fc.address, auth=a.outsider.address, params=p)
        t0 = time.perf_counter()
        for c in a.clients:
            flc.as_account(c).register(keccak(b"d"), "local:0x00", value=3 * ETH)
        for k, (excluded, values, sp) in enumerate((((), (0.4, 0.1, 0.2), b"{}"), ((2,), (0.4, 0.1, 0.0), spec))):
            tid = fc.as_account(a.requester).create_task(
                a.server.address, [c.address for c in a.clients], 1, ETH, difficulty=10**17, p=2, relative=False,
                registration_window=100, commit_window=100, reveal_window=100).task_id
            flc.as_account(a.requester).require_trainers(tid, p.min_deposit)
            for c in a.clients:
                flc.as_account(c).join(tid)
            fc.as_account(a.server).accept_task(tid)
            for c in a.clients:
                fc.as_account(c).register_update(tid, 0, b"\x01" * 32, f"cid-{c.address}", 100)
            fc.as_account(a.server).publish_shapley_task(tid, 0, keccak(sp), "spec", excluded=excluded)
            v = vec(list(values))
            play_round(w3, fc, a, tid, 0, [v, v], [10, 10], register=False)
            fc.as_account(a.outsider).finalize(tid, 0)
            if excluded:
                flc.as_account(a.miners[0]).report_invalid_update(fc, sp, tid, 0, 2)
            flc.record_round(fc, tid, 0)
            flc.as_account(a.server).list_model(tid, ETH, keccak(b"m%d" % k), f"local:m{k}")
        # pending Unqualified reports against freshly registered trainers
        pool = dev_accounts()[5:20] + dev_accounts()[22:39]  # neither the actors nor the reporter
        extra = pool[:max(1, min(n_reports, len(pool)))]
        for t in extra:
            flc.as_account(t).register(keccak(b"e"), "local:0x00")
            flc.as_account(a.miners[0]).report_unqualified(t.address)
        gen_s = time.perf_counter() - t0
        with FLChainIndex.for_flchain(flc, Path(d) / "real.sqlite") as idx:
            rep = idx.sync()
            rng = random.Random(2)
            mids = [rng.randrange(2) for _ in range(n_queries)]
            trs = [rng.choice([c.address for c in a.clients] + [t.address for t in extra]) for _ in range(n_queries)]
            assert idx.is_for_sale(0) and idx.is_problematic(1) and idx.under_judgement(extra[0].address)
            res = queries(idx, mids, trs)
            inc = [idx.sync().seconds * 1000 for _ in range(20)]  # a sync with nothing new: the freshness cost
        chain_q = timed(flc.model_status, mids[:500])
        emit({"part": "real_chain", "blocks": w3.eth.block_number, "events": rep.events, "models": 2,
              "reports": flc.report_count(), "generate_s": round(gen_s, 1), "initial_sync_s": round(rep.seconds, 3),
              "noop_sync_ms": round(statistics.median(inc), 2), "queries": res,
              "chain_view_modelStatus_eth_call": chain_q,
              "total_index_plus_view_ms": round(res["total_three_queries"]["mean_ms"] + chain_q["mean_ms"], 3),
              "paper_table_viii_ms": PAPER_MS})


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1000,10000,100000", help="models (and reports) per scale run")
    ap.add_argument("--queries", type=int, default=10_000, help="queries per figure")
    ap.add_argument("--reports", type=int, default=20, help="pending reports on the real chain (at most 32)")
    ap.add_argument("--no-chain", action="store_true", help="skip the real-Anvil part")
    ap.add_argument("--out", type=Path, default=None, help="also append the JSON lines to this file")
    args = ap.parse_args()
    from fedcoin.dev.machine import describe

    def emit(rec: dict) -> None:
        line = json.dumps(rec)
        print(line, flush=True)
        if args.out:
            with open(args.out, "a") as f:
                f.write(line + "\n")

    emit({"part": "meta", "command": "benchmarks/flchain_query_bench.py " + " ".join(sys.argv[1:]),
          "machine": describe(), "sqlite": __import__("sqlite3").sqlite_version})
    scale([int(x) for x in args.sizes.split(",") if x.strip()], args.queries, emit)
    if not args.no_chain:
        real_chain(args.reports, min(args.queries, 2000), emit)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
