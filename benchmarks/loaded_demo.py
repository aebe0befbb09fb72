"""Does the demo settle with both cores busy? A benchmark-style check, not a timed test.

Starts ``--hogs`` CPU-bound processes (default: one per core), runs the demo (``python -m
fedcoin.dev.demo`` with its defaults, or ``--demo-args``) ``--runs`` times in a row, and prints
one JSON line per run: the load average before and during the run, the round windows the demo
used, the wall time until the demo ended, whether every round settled, and whether the demo's
own checks passed (``unaccounted=0`` and ``audit: OK``). Exits non-zero if any run failed.

Run: ``.venv/bin/python benchmarks/loaded_demo.py --runs 3`` (results are appended to
``benchmarks/results/loaded_demo.jsonl``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shlex
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "loaded_demo.jsonl"

HOG = "import time\nwhile True:\n    sum(i * i for i in range(10000))\n"


def _sample_load(stop: threading.Event, samples: list[float]) -> None:
    while not stop.wait(2.0):
        samples.append(os.getloadavg()[0])


def one_run(i: int, demo_args: list[str], hogs: int, timeout: float) -> dict:
    procs = [subprocess.Popen([sys.executable, "-c", HOG], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
             for _ in range(hogs)]
    time.sleep(3)  # let the hogs take the cores
    before = os.getloadavg()[0]
    stop, samples = threading.Event(), []
    sampler = threading.Thread(target=_sample_load, args=(stop, samples), daemon=True)
    sampler.start()
    t0 = time.monotonic()
    try:
        proc = subprocess.run([sys.executable, "-m", "fedcoin.dev.demo", *demo_args], cwd=ROOT, capture_output=True,
                              text=True, timeout=timeout, stdin=subprocess.DEVNULL,
                              env=dict(os.environ, PYTHONUNBUFFERED="1"))
        out, rc = proc.stdout + proc.stderr, proc.returncode
    except subprocess.TimeoutExpired as e:
        out, rc = (e.stdout or "") + (e.stderr or "") if isinstance(e.stdout, str) else "", 124
    wall = time.monotonic() - t0
    stop.set()
    for p in procs:
        p.kill()
        p.wait()
    windows = re.findall(r"commit window (\d+) s, reveal window (\d+) s", out)
    last = next((line for line in reversed(out.splitlines()) if line.startswith("V=")), "")
    return {
        "run": i, "rc": rc, "wall_s": round(wall, 1), "load_before": round(before, 2),
        "load_during_max": round(max(samples, default=before), 2),
        "load_during_mean": round(sum(samples) / len(samples), 2) if samples else None,
        "hogs": hogs, "windows": windows[:1], "settled": "unaccounted=0" in last and "audit: OK" in out,
        "late_commits": out.count("FedCoinCommitWindowClosed"), "tracebacks": out.count("Traceback"),
        "accounting": last, "demo_args": demo_args, "machine": f"{platform.machine()} {os.cpu_count()} cores",
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--hogs", type=int, default=os.cpu_count() or 2, help="CPU-bound processes (default: one per core)")
    ap.add_argument("--timeout", type=float, default=900, help="seconds per demo run")
    ap.add_argument("--demo-args", default="", help="arguments passed to the demo (quoted)")
    args = ap.parse_args()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    ok = True
    for i in range(1, args.runs + 1):
        row = one_run(i, shlex.split(args.demo_args), args.hogs, args.timeout)
        print(json.dumps(row), flush=True)
        with OUT.open("a") as f:
            f.write(json.dumps(row) + "\n")
        ok &= row["rc"] == 0 and row["settled"]
    print("PASS: every loaded demo run settled" if ok else "FAIL: a loaded demo run did not settle")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
