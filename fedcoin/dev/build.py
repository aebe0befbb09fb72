"""Compile ``contracts/`` with the pinned solc and write the artifacts shipped in the package.

The artifacts (ABI + bytecode) live in ``fedcoin/artifacts/`` so that a miner installed with
pip needs neither Node nor a compiler. ``tests/test_artifacts.py`` fails if they drift from a
fresh compile. Run ``python -m fedcoin.dev.build`` (``make artifacts``) after editing a contract.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from fedcoin.chain.artifact import ARTIFACTS_DIR
from fedcoin.dev.toolchain import ROOT, SOLC_VERSION, solc_path

CONTRACTS_DIR = ROOT / "contracts"

#: The contracts whose artifacts ship in the package. Test-only contracts live under
#: ``contracts/test/`` (a reentrancy attacker, a harness exposing library functions): the
#: tests compile them with :func:`compile_contracts` and they are never written to
#: ``fedcoin/artifacts/``. Libraries with internal functions only are inlined into FedCoin.
SHIPPED_CONTRACTS = ("FedCoin", "FLChain", "AggregateJury")

#: Compiler settings shared with brownie-config.yaml (keep the two in step).
SETTINGS = {
    "optimizer": {"enabled": True, "runs": 200},
    "evmVersion": "cancun",
    "outputSelection": {"*": {"*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object",
                                    "evm.deployedBytecode.immutableReferences", "storageLayout"]}},
}


class CompileError(RuntimeError):
    """solc reported errors; the message carries them formatted."""


def compile_contracts(contracts_dir: Path = CONTRACTS_DIR) -> dict[str, dict]:
    """Compile every ``.sol`` file under ``contracts_dir``; return artifacts by contract name.

    Only deployable contracts (non-empty bytecode) defined under ``contracts_dir`` are returned.
    """
    import solcx

    solc = solc_path()
    sources = {
        str(p.relative_to(contracts_dir.parent)): {"content": p.read_text()}
        for p in sorted(contracts_dir.rglob("*.sol"))
    }
    if not sources:
        raise CompileError(f"no .sol files under {contracts_dir}")
    out = solcx.compile_standard(
        {"language": "Solidity", "sources": sources, "settings": SETTINGS},
        solc_binary=solc,
        allow_paths=[str(contracts_dir.parent)],
        base_path=str(contracts_dir.parent),
    )
    errors = [e for e in out.get("errors", []) if e.get("severity") == "error"]
    if errors:
        raise CompileError("\n".join(e.get("formattedMessage", e["message"]) for e in errors))
    artifacts: dict[str, dict] = {}
    for source, contracts in out["contracts"].items():
        for name, c in contracts.items():
            bytecode = c["evm"]["bytecode"]["object"]
            if not bytecode:
                continue
            artifacts[name] = {
                "contractName": name,
                "sourceName": source,
                "compiler": f"solc {SOLC_VERSION}",
                "settings": {k: v for k, v in SETTINGS.items() if k != "outputSelection"},
                "abi": c["abi"],
                "bytecode": "0x" + bytecode,
                "deployedBytecode": "0x" + c["evm"]["deployedBytecode"]["object"],
                # where the constructor writes immutables into the runtime code: masked when a
                # CLI checks that an address holds this FedCoin (fedcoin.chain.artifact)
                "immutableReferences": c["evm"]["deployedBytecode"].get("immutableReferences", {}),
                # how structs sit in storage: FedCoin's getTask/getRound return raw storage words,
                # decoded with this by fedcoin.chain.types.decode_words
                "storageLayout": c.get("storageLayout", {}),
            }
    return artifacts


def shipped(artifacts: dict[str, dict]) -> dict[str, dict]:
    """The subset of ``artifacts`` that ships in the package (:data:`SHIPPED_CONTRACTS`)."""
    return {name: artifacts[name] for name in SHIPPED_CONTRACTS}


def write_artifacts(artifacts: dict[str, dict], out_dir: Path = ARTIFACTS_DIR) -> list[Path]:
    """Write the shipped artifacts (only :data:`SHIPPED_CONTRACTS`) as ``<Name>.json``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, art in sorted(shipped(artifacts).items()):
        path = out_dir / f"{name}.json"
        path.write_text(json.dumps(art, indent=1, sort_keys=True) + "\n")
        written.append(path)
    return written


def main() -> int:
    try:
        paths = write_artifacts(compile_contracts())
    except CompileError as e:
        print(e, file=sys.stderr)
        return 1
    for p in paths:
        print(f"wrote {p.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
