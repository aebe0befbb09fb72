"""Gas per FLChain operation for K trainers, on Anvil with EIP-7825's per-transaction cap.

One FedCoin task of K joined trainers and two miners, one round finalized with trainer 0's
update excluded (reason ``non-finite``) in a spec of realistic size (one canonical update entry
per trainer), then: the upheld report (K − 1 compensation credits), recordRound, listModel, a
sale, a claim, an evaluation, release and withdrawDeposit. Register/join/claim/release: the
largest figure over the callers.

Writes ``benchmarks/results/flchain_gas.json``. Run: ``python benchmarks/flchain_gas.py``.
"""

from __future__ import annotations

import json
import random
import sys
import time
from pathlib import Path

from eth_account import Account
from eth_utils import keccak

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fedcoin.chain import FedCoin, connect
from fedcoin.chain.deployment import DeployParams
from fedcoin.dev.devnet import Anvil, dev_private_keys
from fedcoin.flchain.binding import FLChain, FLChainParams
from fedcoin.protocol import fixedpoint as fp
from fedcoin.protocol.constants import TX_GAS_CAP

KS = (10, 100)
SEED = 2002_11711
OUT = Path(__file__).resolve().parent / "results" / "flchain_gas.json"


def _spec(clients, excluded: int) -> bytes:
    """A canonical-JSON-shaped spec: FLChain reads only its hash and the exclusion entry."""
    ups = ",".join(f'{{"client":"{c.address}","hash":"0x{"ab" * 32}","locator":"local:0x{"cd" * 32}","n_k":500}}'
                   for c in clients)
    return (f'{{"excluded":[{{"client":"{clients[excluded].address}","index":{excluded},"reason":"non-finite"}}],'
            f'"updates":[{ups}],"version":3}}').encode()


def _round(w3, fc, server, outsider, miners, tid, trainers, excluded, rng, before_finalize=None) -> bytes:
    """Register every trainer's update, publish (excluding ``excluded``), two miners agree,
    ``before_finalize(tid)`` if given (the miners' attestations), finalize."""
    for i, t in enumerate(trainers):
        fc.as_account(t).register_update(tid, 0, rng.randbytes(32), f"bafy{i:060d}", 500)
    spec = _spec(trainers, 0 if excluded is None else excluded)
    fc.as_account(server).publish_shapley_task(tid, 0, keccak(spec), "local:spec",
                                               excluded=[] if excluded is None else [excluded])
    values = [rng.uniform(0.01, 1.0) / len(trainers) for _ in trainers]
    if excluded is not None:
        values[excluded] = 0.0
    vec = fp.encode_vector(values)
    salts = [fc.as_account(mi).commit_vector(tid, 0, vec, 1000)[1] for mi in miners]
    for _ in range(2):
        w3.provider.make_request("evm_increaseTime", [1001])
        w3.provider.make_request("evm_mine", [])
        if salts:
            for mi, s in zip(miners, salts):
                fc.as_account(mi).reveal(tid, 0, vec, 1000, s)
            salts = []
    if before_finalize is not None:
        before_finalize(tid)
    fc.as_account(outsider).finalize(tid, 0)
    return spec


def measure(url: str, k: int, rng: random.Random) -> list[dict]:
    w3 = connect(url)
    requester, server, outsider = (Account.from_key(x) for x in dev_private_keys(3))
    trainers = sorted((Account.from_key(rng.randbytes(32)) for _ in range(k + 1)), key=lambda a: int(a.address, 16))
    miners = [Account.from_key(rng.randbytes(32)) for _ in range(2)]
    buyers = [Account.from_key(rng.randbytes(32)) for _ in range(2)]
    for a in trainers + miners + buyers:
        w3.provider.make_request("anvil_setBalance", [a.address, hex(10**21)])
    fc = FedCoin.deploy(w3, requester, DeployParams(max_iterations=10_000))
    p = FLChainParams()
    flc = FLChain.deploy(w3, requester, fedcoin=fc.address, auth=outsider.address, params=p)
    rows: dict[str, int] = {}

    def top(op, res):
        rows[op] = max(rows.get(op, 0), res.gas_used)

    def task(members):
        tid = fc.create_task(server.address, [t.address for t in members], 1, 10**20, difficulty=10**17,
                             relative=False, registration_window=1000, commit_window=1000,
                             reveal_window=1000).task_id
        top("requireTrainers", flc.as_account(requester).require_trainers(tid, p.min_deposit))
        flc.as_account(server).join(tid)  # the server's deposit first
        for t in members:
            top("join", flc.as_account(t).join(tid))
        fc.as_account(server).accept_task(tid)
        return tid

    for t in trainers:
        top("register", flc.as_account(t).register(keccak(b"data"), "local:0x" + "ef" * 32, value=3 * p.min_deposit))
    flc.as_account(server).register(keccak(b"server"), "local:0x00", value=10 * p.min_deposit)
    # task A: K trainers, trainer 0's update excluded, reported (K - 1 compensations)
    bad = trainers[:k]
    tid = task(bad)
    spec = _round(w3, fc, server, outsider, miners, tid, bad, 0, rng)
    top("reportInvalidUpdate", flc.as_account(outsider).report_invalid_update(fc, spec, tid, 0, 0))
    # task B: K clean trainers (the suspended one replaced), recorded, listed, sold, claimed
    clean = trainers[1:]
    tid = task(clean)
    jury = flc.jury()

    def attest(t):
        for mi in miners:
            top("attest (AggregateJury)", jury.as_account(mi).attest(t, 0, False))

    _round(w3, fc, server, outsider, miners, tid, clean, None, rng, before_finalize=attest)
    # both miners attested "right": the report is decided (rejected) by reading the jury's verdict;
    # an upheld one adds the K - 1 compensation credits, as reportInvalidUpdate above
    top("reportAggregate (rejected)", flc.as_account(outsider).report_aggregate(fc, tid, 0))
    top("recordRound", flc.as_account(outsider).record_round(fc, tid, 0))
    top("listModel", flc.as_account(server).list_model(tid, 10**18 + 7, keccak(b"m"), "local:m"))
    for b in buyers:
        top("buy", flc.as_account(b).buy(0))
        top("evaluate", flc.as_account(b).evaluate(0, 4))
    for t in clean[:20]:
        top("claimSales", flc.as_account(t).claim_sales(0))
        top("release", flc.as_account(t).release(tid))
        top("withdrawDeposit", flc.as_account(t).withdraw_deposit(p.min_deposit))
        top("withdraw", flc.as_account(t).withdraw())
    assert fc.balance() == fc.liabilities() and flc.balance() == flc.liabilities()
    print(f"K={k}: spec of {len(spec):,} bytes in the report's calldata", file=sys.stderr)
    return [{"op": op, "K": k, "gas": gas} for op, gas in rows.items()]


def main() -> int:
    rng = random.Random(SEED)
    results = []
    t0 = time.monotonic()
    with Anvil(accounts=3, tx_gas_cap=True) as node:
        for k in KS:
            for r in measure(node.url, k, rng):
                print(f"{r['op']:>20} K={r['K']:<5} gas={r['gas']:>10,}")
                results.append(r)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(results, indent=1) + "\n")
    ok = all(r["gas"] < TX_GAS_CAP for r in results)
    print(f"{'PASS' if ok else 'FAIL'}  every op < {TX_GAS_CAP:,}; wrote {OUT} in {time.monotonic() - t0:.0f}s")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
