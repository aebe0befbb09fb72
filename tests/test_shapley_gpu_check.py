"""benchmarks/gpu_check.sh runs end to end (on a CPU, with its --tiny config)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_gpu_check_script_runs_with_the_tiny_config(tmp_path):
    env = dict(os.environ, OUT=str(tmp_path), PYTHON=sys.executable, JAX_PLATFORMS="cpu")
    out = subprocess.run(["bash", os.path.join(ROOT, "benchmarks", "gpu_check.sh"), "--tiny", "--synthetic"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    lines = [json.loads(l) for l in (tmp_path / "gpu_check.jsonl").read_text().splitlines()]
    kinds = [l["impl"] for l in lines]
    assert kinds == ["meta", "gpu_perms", "gpu_tta"]
    assert lines[0]["tiny"] and lines[0]["device"] and lines[0]["bounds"]["flops"] > 0
    perms = lines[1]
    assert perms["perms"] == 48 and 0 < perms["steady_s"] <= perms["compile_plus_first_s"] + perms["steady_s"]
    tta = lines[2]
    assert tta["reference_perms"] >= 20 * 48 and tta["reference_rel_err_bound_95"] < 0.05
    assert "0.1" in tta["hit"]  # the default estimator reaches 10% within the tiny budget
