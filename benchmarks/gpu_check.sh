#!/usr/bin/env bash
# GPU check of the Shapley engine, < 5 minutes: 2,500 permutations at K = 100, MLP 784-200-10,
# 10,000 rows (compile and steady-state time, device name) and the time-to-accuracy row.
# Usage: benchmarks/gpu_check.sh [--tiny] [--synthetic]   (--tiny: a CPU smoke run of the path)
# Lines go to stdout and to ${OUT:-benchmarks/results}/gpu_check.jsonl.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
DEST=${OUT:-benchmarks/results}
mkdir -p "$DEST"
# one GPU, no host-device splitting; keep XLA from grabbing 75 % of HBM up front
export XLA_PYTHON_CLIENT_PREALLOCATE=${XLA_PYTHON_CLIENT_PREALLOCATE:-false}
"$PY" -c 'import jax; print("# devices:", jax.devices())' >&2
exec timeout 290 "$PY" benchmarks/gpu_check.py --out "$DEST/gpu_check.jsonl" "$@"
