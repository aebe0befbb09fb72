"""Gas per FedCoin operation for K clients and M miners, on Anvil with EIP-7825's
per-transaction cap enforced (``--enable-tx-gas-limit``, 16,777,216).

Writes ``benchmarks/results/gas.json``: a list of ``{"op", "K", "M", "gas"}`` for register,
publish, commit, reveal, finalize, claim, claimTo and withdraw (register/commit/reveal/claim: the
largest figure over all callers; withdraw: the recorded representative's). Vectors mix signs
(negative int256 words are all non-zero bytes, the expensive case for calldata); every miner's
vector is close to the others, so all of them qualify and finalize pays (and credits) each one —
the most expensive finalize. (1000, 7) is the commit cap at K = 1000 (7168 / 1000): the largest
finalize the contract admits.

Run: ``python benchmarks/gas.py`` (``make bench-gas``).
"""

from __future__ import annotations

import json
import random
import sys
import time
from pathlib import Path

from eth_account import Account

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without install

from fedcoin.protocol import fixedpoint as fp
from fedcoin.protocol import posap
from fedcoin.chain import FedCoin, connect
from fedcoin.chain.deployment import DeployParams
from fedcoin.dev.devnet import Anvil, dev_private_keys
from fedcoin.protocol.constants import TX_GAS_CAP

CONFIGS = [(10, 2), (10, 10), (100, 2), (100, 10), (1000, 2), (1000, 5), (1000, 7)]
#: The measurement's seed (tests/test_gas_snapshot.py re-measures the first config with it).
SEED = 2002_11711
OUT = Path(__file__).resolve().parent / "results" / "gas.json"


def fund(w3, accounts):
    for a in accounts:
        w3.provider.make_request("anvil_setBalance", [a.address, hex(10**21)])


def measure(url: str, k: int, m: int, rng: random.Random) -> list[dict]:
    w3 = connect(url)
    keys = dev_private_keys(3)
    requester, server, finalizer = (Account.from_key(x) for x in keys)
    # accounts from the seeded rng: the same addresses (hence Merkle proofs and calldata) every run
    clients = [Account.from_key(rng.randbytes(32)) for _ in range(k)]
    miners = [Account.from_key(rng.randbytes(32)) for _ in range(m)]
    fund(w3, clients + miners)
    fc = FedCoin.deploy(w3, requester, DeployParams(max_iterations=10_000))
    to = Account.from_key(rng.randbytes(32))
    cap = fc.commit_cap(k)
    if m > cap:
        print(f"K={k} M={m}: skipped, above the commit cap of {cap} for K={k}", file=sys.stderr)
        return []
    # absolute D = 0.1 (p = 2): the vectors below lie within it of their median
    tid = fc.create_task(server.address, [c.address for c in clients], 1, 10**20, difficulty=10**17,
                         relative=False, registration_window=1000, commit_window=1000, reveal_window=1000).task_id
    fc.as_account(server).accept_task(tid)
    rows = []
    reg = 0
    for i, c in enumerate(clients):
        reg = max(reg, fc.as_account(c).register_update(tid, 0, rng.randbytes(32), f"bafy{i:060d}", 1000 + i).gas_used)
    rows.append(("register", reg))
    rows.append(("publish", fc.as_account(server).publish_shapley_task(
        tid, 0, rng.randbytes(32), "bafyspec" + "0" * 52).gas_used))
    base = [rng.uniform(-0.5, 1.0) / k for _ in range(k)]
    vectors = [fp.encode_vector([b + rng.gauss(0, 1e-4) for b in base]) for _ in miners]
    salts, commit = [], 0
    for mi, v in zip(miners, vectors):
        res, salt = fc.as_account(mi).commit_vector(tid, 0, v, 1000)
        commit = max(commit, res.gas_used)
        salts.append(salt)
    rows.append(("commit", commit))
    w3.provider.make_request("evm_increaseTime", [1001])
    w3.provider.make_request("evm_mine", [])
    rev = 0
    for mi, v, s in zip(miners, vectors, salts):
        rev = max(rev, fc.as_account(mi).reveal(tid, 0, v, 1000, s).gas_used)
    rows.append(("reveal", rev))
    w3.provider.make_request("evm_increaseTime", [1001])
    w3.provider.make_request("evm_mine", [])
    fin = fc.as_account(finalizer).finalize(tid, 0)
    rows.append(("finalize", fin.gas_used))
    ev = fin.event("RoundFinalized")
    amounts = list(ev["amounts"])
    payees = [c for c, a in zip(clients, amounts) if a > 0]
    claim = 0
    for c in payees[1:21]:
        claim = max(claim, fc.as_account(c).claim(tid, 0).gas_used)
    rows.append(("claim", claim))
    sig = fc.as_account(payees[0]).sign_claim_to(tid, 0, to.address)
    rows.append(("claimTo", fc.as_account(finalizer).claim_to(tid, 0, payees[0].address, to.address, sig).gas_used))
    winner = next(x for x in miners if x.address == ev["winner"])
    rows.append(("withdraw", fc.as_account(winner).withdraw().gas_used))
    assert fc.balance() == fc.liabilities()
    return [{"op": op, "K": k, "M": m, "gas": gas} for op, gas in rows]


def main() -> int:
    rng = random.Random(SEED)
    results = []
    t0 = time.monotonic()
    with Anvil(accounts=3, tx_gas_cap=True) as node:
        for k, m in CONFIGS:
            rows = measure(node.url, k, m, rng)
            for r in rows:
                print(f"{r['op']:>9} K={r['K']:<5} M={r['M']:<3} gas={r['gas']:>10,}")
            results += rows
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(results, indent=1) + "\n")
    by = {(r["op"], r["K"], r["M"]): r["gas"] for r in results}
    checks = {
        "finalize K=100 M=10 <= 3,000,000": by[("finalize", 100, 10)] <= 3_000_000,
        "claim < 100,000": all(r["gas"] < 100_000 for r in results if r["op"] == "claim"),
        f"every op K=1000 M=5 < {TX_GAS_CAP:,}": all(r["gas"] < TX_GAS_CAP for r in results if (r["K"], r["M"]) == (1000, 5)),
    }
    for name, ok in checks.items():
        print(f"{'PASS' if ok else 'FAIL'}  {name}")
    print(f"wrote {OUT} in {time.monotonic() - t0:.0f}s")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
