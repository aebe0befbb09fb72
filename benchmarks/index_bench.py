"""Event-index throughput: a 100-round task on a real Anvil, indexed from scratch.

Plays R rounds (3 clients, 3 miners, every round settled and claimed) with the contract tests'
round driver, then times :meth:`fedcoin.roles.index.EventIndex.sync` into a fresh SQLite file
for a few batch sizes, and one incremental sync after one more block. Prints one JSON line per
measurement (events, blocks, seconds, events/s).

    .venv/bin/python benchmarks/index_bench.py --rounds 100
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from fedcoin.chain import FedCoin  # noqa: E402
from fedcoin.dev.devnet import Anvil  # noqa: E402
from fedcoin.roles.index import EventIndex  # noqa: E402
from fedcoin_testkit import ETH, TEST_TASK, actors, default_params, vec, w3_for  # noqa: E402
from round_driver import claim_all, finalize, play_round  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=100, help="rounds of the task (default %(default)s)")
    args = ap.parse_args()
    with Anvil(accounts=40) as node:
        w3 = w3_for(node)
        a = actors(n_clients=3, n_miners=3)
        fc = FedCoin.deploy(w3, a.requester, default_params())
        t0 = time.perf_counter()
        tid = fc.create_task(a.server.address, [c.address for c in a.clients], args.rounds, 100 * ETH,
                             **TEST_TASK).task_id
        fc.as_account(a.server).accept_task(tid)
        for rnd in range(args.rounds):
            vs = [vec([0.40, 0.30, 0.05])] * 3  # identical: every round settles whatever D drifts to
            play_round(w3, fc, a, tid, rnd, vs, [100, 200, 300])
            finalize(fc, a, tid, rnd)
            claim_all(fc, a, tid, rnd)
        gen = time.perf_counter() - t0
        blocks = w3.eth.block_number
        machine = f"{platform.processor() or platform.machine()}, {platform.system()} {platform.release()}"
        print(json.dumps({"generated_rounds": args.rounds, "blocks": blocks, "seconds": round(gen, 1), "machine": machine}))
        with tempfile.TemporaryDirectory() as d:
            for batch in (2000, 100, 10):
                with EventIndex.for_fedcoin(fc, Path(d) / f"b{batch}.sqlite", batch=batch) as idx:
                    rep = idx.sync()
                    print(json.dumps({"batch": batch, "events": rep.events, "blocks": blocks, "batches": rep.batches,
                                      "seconds": round(rep.seconds, 3), "events_per_s": round(rep.events / rep.seconds)}))
            with EventIndex.for_fedcoin(fc, Path(d) / "b2000.sqlite") as idx:
                fc.as_account(a.server).withdraw()
                rep = idx.sync()
                print(json.dumps({"incremental": True, "events": rep.events, "seconds": round(rep.seconds, 4)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
