"""Static analysis: slither over contracts/ finds no high or medium issue that is not triaged
(with its reason) in slither.triage.json."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from fedcoin.dev.toolchain import ROOT, solc_path


def slither_exe() -> str:
    local = Path(sys.executable).with_name("slither")
    return str(local) if local.exists() else (shutil.which("slither") or "slither")


def test_no_untriaged_high_or_medium_findings(tmp_path):
    out = tmp_path / "slither.json"
    env = dict(os.environ, PATH=os.pathsep.join([str(ROOT / "node_modules" / ".bin"), os.environ.get("PATH", "")]))
    proc = subprocess.run(
        [slither_exe(), "contracts", "--solc", str(solc_path()), "--solc-standard-json",
         "--config-file", "slither.config.json", "--json", str(out)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )
    report = json.loads(out.read_text())
    assert report["success"], report.get("error") or proc.stderr[-2000:]
    triage = json.loads((ROOT / "slither.triage.json").read_text())["accepted"]
    accepted = {(t["check"], t["contract"], t["function"]) for t in triage}
    assert all(t["reason"].strip() for t in triage)
    found = []
    for r in report["results"].get("detectors", []):
        if r["impact"] not in ("High", "Medium"):
            continue
        fn = next((e for e in r["elements"] if e["type"] == "function"), None)
        key = (r["check"], fn["type_specific_fields"]["parent"]["name"] if fn else "", fn["name"] if fn else "")
        if key not in accepted:
            found.append(f"{r['impact']} {r['check']}: {r['description'].strip()}")
    assert not found, "untriaged slither findings:\n" + "\n".join(found)
