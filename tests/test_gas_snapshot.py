"""Gas per operation against the committed table (``benchmarks/results/gas.json``, written by
``make bench-gas``): a change that moves any operation's gas by more than ``TOLERANCE`` fails
here, so gas drift is seen in review and the table is re-measured with the change."""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import gas as gas_bench  # noqa: E402  (benchmarks/gas.py: the same measurement as the table)

#: Allowed relative drift per operation. Calldata of random hashes and fresh addresses moves a
#: few hundred gas between runs; anything beyond 1% is a change in the contract.
TOLERANCE = 0.01
CONFIG = (10, 2)  # the first row of benchmarks/gas.py's CONFIGS, measured with the same seed


@pytest.fixture(scope="module")
def measured(anvil):
    k, m = CONFIG
    rng = random.Random(gas_bench.SEED)
    return {r["op"]: r["gas"] for r in gas_bench.measure(anvil.url, k, m, rng)}


def committed() -> dict[str, int]:
    rows = json.loads((ROOT / "benchmarks" / "results" / "gas.json").read_text())
    return {r["op"]: r["gas"] for r in rows if (r["K"], r["M"]) == CONFIG}


def test_the_committed_table_covers_every_measured_operation(measured):
    assert set(measured) == set(committed()) and len(measured) >= 7


@pytest.mark.parametrize("op", sorted(committed()))
def test_gas_stays_within_tolerance_of_the_committed_table(measured, op):
    table = committed()[op]
    drift = (measured[op] - table) / table
    print(f"{op}: measured {measured[op]:,} vs table {table:,} ({drift:+.2%})")
    assert abs(drift) <= TOLERANCE, f"{op} gas moved {drift:+.2%} (>{TOLERANCE:.0%}): re-run `make bench-gas`"
