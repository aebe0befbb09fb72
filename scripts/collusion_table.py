"""Collusion table: c colluding miners of M under the paper's rule and under the robust rule.

Run it with ``.venv/bin/python scripts/collusion_table.py`` (starts its own Anvil; loopback
only). It writes ``docs/figures/collusion.csv`` and prints the Markdown table pasted into the
README ("Robust PoSap: what c colluders can do").

The round: K = 4 clients with true Shapley values (0.30, 0.25, 0.20, 0.15); M = 5 miners; the
M − c honest ones reveal the truth plus a small, different error each (≤ 0.002, well inside D);
the c colluders reveal (1, −1, −1, −1) — all of TrainPrice to client 0 — and claim the largest
recordable iteration count (100,000, the old contract's cap) while honest miners claim 300.
Absolute D = 0.1, p = 2.

* **Paper rule** (:mod:`fedcoin.protocol.paper_rule`, an off-chain simulation of the previous
  contract): S̄ = iteration-weighted mean, a miner qualifies when ‖S − S̄‖₂ ≤ D. Stakes play no part.
* **Robust rule** (the deployed contract, a real round on Anvil): the stake-weighted lower median,
  verified on chain; verdicts from the ``Judged`` events. Three stake regimes: all bonds equal;
  each colluder bonding 3× an honest miner; each honest miner bonding 3× a colluder.

Columns: does an honest miner qualify; how far the centre moved from the honest miners' own
median (‖c − c_honest‖₂ in units of D); the share of TrainPrice that moved (half the L1 distance
between the round's client amounts and the amounts the honest median alone would give).
"""

from __future__ import annotations

import csv
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from eth_account import Account  # noqa: E402

from fedcoin.chain import FedCoin, Verdict, connect  # noqa: E402
from fedcoin.chain.deployment import DeployParams  # noqa: E402
from fedcoin.dev.devnet import Anvil, dev_private_keys  # noqa: E402
from fedcoin.protocol import fixedpoint as fp  # noqa: E402
from fedcoin.protocol import paper_rule, posap  # noqa: E402

OUT = Path(__file__).resolve().parent.parent / "docs" / "figures" / "collusion.csv"
M, D, ETH = 5, 10**17, 10**18
TRUTH = [0.30, 0.25, 0.20, 0.15]
ATTACK = fp.encode_vector([1.0, -1.0, -1.0, -1.0])
HONEST_ITERS, ATTACK_ITERS = 300, 100_000
REGIMES = {"equal stakes": (1, 1), "colluders 3x": (3, 1), "honest 3x": (1, 3)}  # (colluder, honest) bond units
WINDOW = 100


def honest(i: int) -> list[int]:
    return fp.encode_vector([x + 0.001 * ((i + j) % 3 - 1) for j, x in enumerate(TRUTH)])


def shift_in_d(a, b) -> float:
    return math.sqrt(posap.p_distance(a, b, 2)) / D


def moved(amounts, reference) -> float:
    return sum(abs(x - y) for x, y in zip(amounts, reference)) / 2 / (sum(reference) or 1)


def paper_row(c: int) -> dict:
    vecs = [ATTACK] * c + [honest(i) for i in range(M - c)]
    iters = [ATTACK_ITERS] * c + [HONEST_ITERS] * (M - c)
    mean = paper_rule.weighted_mean(vecs, iters, cap=ATTACK_ITERS)
    ref = posap.weighted_lower_median(vecs[c:], [1] * (M - c))
    train = posap.round_prices(ETH, 1, 0)[0]
    amounts, _ = posap.client_payouts(train, mean)
    ref_amounts, _ = posap.client_payouts(train, ref)
    qual = any(paper_rule.qualifies(posap.p_distance(v, mean, 2), D, 2) for v in vecs[c:])
    return dict(rule="paper (iteration-weighted mean)", stakes="(not used)", c=c, M=M, honest_qualifies=qual,
                centre_shift_D=shift_in_d(mean, ref), train_moved=moved(amounts, ref_amounts))


def robust_row(node_url: str, c: int, regime: str, fc: FedCoin, accts: dict) -> dict:
    w3 = fc.w3
    unit = fc.min_bond()
    cb, hb = REGIMES[regime]
    req, srv, clients, miners = accts["requester"], accts["server"], accts["clients"], accts["miners"]
    tid = fc.as_account(req).create_task(srv.address, [x.address for x in clients], 1, ETH, difficulty=D,
                                         relative=False, p=2, registration_window=WINDOW, commit_window=WINDOW,
                                         reveal_window=WINDOW).task_id
    fc.as_account(srv).accept_task(tid)
    for cl in clients:
        fc.as_account(cl).register_update(tid, 0, b"\x01" * 32, "l", 10)
    fc.as_account(srv).publish_shapley_task(tid, 0, b"\x02" * 32, "s")
    plan = [(ATTACK, ATTACK_ITERS, cb * unit)] * c + [(honest(i), HONEST_ITERS, hb * unit) for i in range(M - c)]
    salts = [fc.as_account(m).commit_vector(tid, 0, v, it, bond=b)[1] for m, (v, it, b) in zip(miners, plan)]
    w3.provider.make_request("evm_increaseTime", [WINDOW + 1])
    w3.provider.make_request("evm_mine", [])
    for m, (v, it, _), s in zip(miners, plan, salts):
        fc.as_account(m).reveal(tid, 0, v, it, s)
    w3.provider.make_request("evm_increaseTime", [WINDOW + 1])
    w3.provider.make_request("evm_mine", [])
    res = fc.as_account(req).finalize(tid, 0)
    judged = {e["miner"]: Verdict(e["verdict"]) for e in res.events if e.name == "Judged"}
    fin = res.event("RoundFinalized") if "RoundFinalized" in [e.name for e in res.events] else None
    ref = posap.weighted_lower_median([v for v, _, _ in plan[c:]], [b for _, _, b in plan[c:]])
    train = posap.round_prices(ETH, 1, 0)[0]
    ref_amounts, _ = posap.client_payouts(train, ref)
    centre = list(fin["centre"]) if fin else fc.centre(tid, 0)
    amounts = list(fin["amounts"]) if fin else [0] * len(ref)
    qual = any(judged.get(m.address) == Verdict.QUALIFIED for m in miners[c:M])
    return dict(rule="robust (stake-weighted median)", stakes=regime, c=c, M=M, honest_qualifies=qual,
                centre_shift_D=shift_in_d(centre, ref), train_moved=moved(amounts, ref_amounts) if fin else 1.0)


def main() -> int:
    rows = [paper_row(c) for c in range(1, M)]
    with Anvil(accounts=12) as node:
        w3 = connect(node.url)
        keys = dev_private_keys(12)
        acc = [Account.from_key(k) for k in keys]
        accts = {"requester": acc[0], "server": acc[1], "clients": acc[2:6], "miners": acc[6:6 + M]}
        fc = FedCoin.deploy(w3, acc[0], DeployParams())
        for regime in REGIMES:
            for c in range(1, M):
                rows.append(robust_row(node.url, c, regime, fc, accts))
    OUT.parent.mkdir(parents=True, exist_ok=True)
    with OUT.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        for r in rows:
            w.writerow({k: (f"{v:.4f}" if isinstance(v, float) else v) for k, v in r.items()})
    print("| rule | stakes | c of M | honest miner qualifies | centre shift (D) | TrainPrice moved |")
    print("| --- | --- | ---: | :---: | ---: | ---: |")
    for r in rows:
        print(f"| {r['rule']} | {r['stakes']} | {r['c']} of {r['M']} | {'yes' if r['honest_qualifies'] else 'no'} | "
              f"{r['centre_shift_D']:.2f} | {r['train_moved']:.1%} |")
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
