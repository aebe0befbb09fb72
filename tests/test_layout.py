"""The tree says the architecture: floors that import only downward, and each shared concept
defined exactly once.

Floors of the shared package (lowest first): ``home``, then ``protocol`` and ``ml`` (pure), then
``content`` (spec, stores) and ``chain`` (the binding), then ``roles`` (requester, accounting,
audit, deploy). ``dev`` (devnet, IPFS dev node, compiler launcher, build, demo) sits apart: no
shared floor, miner or server module imports it, so a pip-installed miner never needs it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CODE_DIRS = ("fedcoin", "miners", "fl_server")

#: What each floor may import from the project (besides itself).
ALLOWED = {
    "fedcoin.home": set(),
    "fedcoin.protocol": {"fedcoin.protocol"},
    "fedcoin.ml": {"fedcoin.ml"},
    "fedcoin.content": {"fedcoin.home", "fedcoin.ml", "fedcoin.protocol", "fedcoin.content"},
    "fedcoin.chain": {"fedcoin.home", "fedcoin.protocol", "fedcoin.chain"},
    "fedcoin.flchain": {"fedcoin.home", "fedcoin.protocol", "fedcoin.chain", "fedcoin.flchain"},
    "fedcoin.roles": {"fedcoin.home", "fedcoin.protocol", "fedcoin.ml", "fedcoin.content", "fedcoin.chain",
                      "fedcoin.flchain", "fedcoin.roles"},
    "miners": {"fedcoin.home", "fedcoin.protocol", "fedcoin.ml", "fedcoin.content", "fedcoin.chain",
               "fedcoin.flchain", "miners"},
    "fl_server": {"fedcoin.home", "fedcoin.protocol", "fedcoin.ml", "fedcoin.content", "fedcoin.chain",
                  "fedcoin.flchain", "fl_server"},
}


def _modules():
    for d in CODE_DIRS:
        for path in sorted((ROOT / d).rglob("*.py")):
            rel = path.relative_to(ROOT).with_suffix("")
            name = ".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts)
            yield name, path


def _project_imports(path: Path) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
    return {m for m in out if m.split(".")[0] in CODE_DIRS}


def _floor(module: str) -> str | None:
    for floor in sorted(ALLOWED, key=len, reverse=True):
        if module == floor or module.startswith(floor + "."):
            return floor
    return None


def _violations(name: str, imports: set[str]) -> list[str]:
    floor = _floor(name)
    if floor is None:
        return []
    bad = []
    for imp in imports:
        target = _floor(imp)
        if imp == "fedcoin" or target in ALLOWED[floor]:
            continue
        if target is None and not imp.startswith("fedcoin.dev"):
            target = imp  # e.g. fedcoin.cli
        bad.append(f"{name} imports {imp}")
    return bad


@pytest.mark.parametrize("name,path", list(_modules()), ids=lambda v: v if isinstance(v, str) else "")
def test_every_module_imports_only_from_its_floor_or_below(name, path):
    assert _violations(name, _project_imports(path)) == []


def test_the_floor_check_catches_an_upward_import():
    assert _violations("fedcoin.protocol.posap", {"fedcoin.roles.audit"}) == [
        "fedcoin.protocol.posap imports fedcoin.roles.audit"]
    assert _violations("miners.miner", {"fedcoin.dev.devnet"}) == ["miners.miner imports fedcoin.dev.devnet"]
    assert _violations("fedcoin.ml.utility", {"fedcoin.ml.models"}) == []


def _definitions(pattern_of):
    """Every (module, line) in the project's Python code where ``pattern_of(node)`` is true."""
    hits = []
    for d in (*CODE_DIRS, "scripts", "benchmarks"):
        for path in sorted((ROOT / d).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                if pattern_of(node):
                    hits.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    return hits


def _assigns(name):
    def match(node):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
        return any(isinstance(t, ast.Name) and t.id == name for t in targets)
    return match


@pytest.mark.parametrize("name,where", [
    ("TX_GAS_CAP", "fedcoin/protocol/constants.py"),
    ("ANVIL_CHAIN_ID", "fedcoin/protocol/constants.py"),
    ("ZERO_HASH", "fedcoin/protocol/constants.py"),
    ("RULES", "fedcoin/ml/fedavg.py"),
    ("METRICS", "fedcoin/ml/utility.py"),
    ("ANVIL_MNEMONIC", "fedcoin/chain/keys.py"),
])
def test_each_shared_constant_is_defined_exactly_once(name, where):
    hits = _definitions(_assigns(name))
    assert len(hits) == 1 and hits[0].startswith(where + ":"), hits


@pytest.mark.parametrize("name,where", [
    ("TaskStatus", "fedcoin/chain/types.py"), ("RoundStatus", "fedcoin/chain/types.py"),
    ("CreditReason", "fedcoin/chain/types.py"), ("Aggregation", "fedcoin/ml/fedavg.py"),
    ("round_key", "fedcoin/ml/fedavg.py"), ("init_key", "fedcoin/ml/fedavg.py"),
    ("aggregate_all", "fedcoin/ml/fedavg.py"), ("coalition_coefficients", "fedcoin/ml/fedavg.py"),
])
def test_each_enum_rule_and_key_schedule_is_defined_exactly_once(name, where):
    hits = _definitions(lambda n: isinstance(n, (ast.ClassDef, ast.FunctionDef)) and n.name == name)
    assert len(hits) == 1 and hits[0].startswith(where + ":"), hits


def test_every_solidity_enum_has_an_intenum_mirror_in_member_order():
    import re

    from fedcoin.chain import types
    from fedcoin.flchain import binding as flchain  # FLChain's enums live beside its binding

    sol = (ROOT / "contracts").rglob("*.sol")
    enums = {}
    for path in sol:
        for name, body in re.findall(r"enum\s+(\w+)\s*\{([^}]*)\}", path.read_text()):
            enums[name] = [m.strip() for m in body.split(",") if m.strip()]
    assert enums, "no Solidity enums found"
    for name, members in enums.items():
        mirror = getattr(types, name, None) or getattr(flchain, name)
        assert [m.name.replace("_", "").lower() for m in mirror] == [m.lower() for m in members], name


def test_rule_names_are_spelled_only_in_the_fedavg_module():
    from fedcoin.ml.fedavg import RULES

    def literal(node):
        return isinstance(node, ast.Constant) and node.value in RULES
    hits = [h for h in _definitions(literal) if not h.startswith("fedcoin/ml/fedavg.py:")]
    assert hits == []
