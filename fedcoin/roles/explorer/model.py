"""What the explorer shows, built from the event index plus a few live views of the contract.

Every per-event rule lives here, in one place: :func:`task_list`, :func:`task_view`,
:func:`chain_view` and :func:`balances` turn indexed rows into plain JSON-ready dicts, and the
page (``static/app.js``) only draws them. When the protocol's events change, this module is the
one to follow them.

Trust: the index is a cache. What the chain can say cheaply is read from views (task and round
status, ``blockCount``, ``lastRecordHash``, each record's stored hash, credits, claimed flags),
and the record chain is re-verified in the page from the indexed fields (``app.js``): a tampered
row shows up as a broken link.

Numbers: integers at or above 2**53 (wei, fixed-point vectors) are sent as decimal strings, so
JavaScript loses no digit (the page reads them with ``BigInt``).
"""

from __future__ import annotations

from math import isqrt
from typing import Any

from fedcoin.chain.types import CreditReason, RoundStatus, TaskStatus
from fedcoin.protocol import posap

SAFE = 2**53

#: The payment rules a task can choose (``TaskConfigured.payment``; posap.PAYMENT_RULES codes).
PAYMENT_RULES = {0: "Shapley (pro rata to positive S̄)", 1: "data cost (pro rata to n_k)",
                 2: "data cost, gated by positive S̄"}


def jsonable(v: Any) -> Any:
    """Big integers as strings, bytes as hex, containers recursively."""
    if isinstance(v, bool) or v is None:
        return v
    if isinstance(v, int):
        return str(v) if abs(v) >= SAFE else v
    if isinstance(v, (bytes, bytearray)):
        return "0x" + bytes(v).hex()
    if isinstance(v, dict):
        return {k: jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [jsonable(x) for x in v]
    return v


def _ev(r: dict) -> dict:
    """An indexed row as the page's event: its args plus block, log index, tx and time."""
    return {**r["args"], "block": r["block_number"], "log": r["log_index"], "tx": r["tx_hash"], "time": r["timestamp"]}


def _rule(code: int) -> str:
    return PAYMENT_RULES.get(int(code), f"rule {code}")


def _payments(idx, task_id: int | None = None) -> dict[int, int]:
    """Each task's payment rule code from its ``TaskConfigured`` event (absent: 0, shapley)."""
    rows = idx.rows("TaskConfigured", task_id=task_id) if task_id is not None else idx.rows("TaskConfigured")
    return {r["task_id"]: int(r["args"].get("payment", 0)) for r in rows}


def _task_item(row: dict, settled: int, payment: int = 0) -> dict:
    a = row["args"]
    return {"id": a["taskId"], "requester": a["requester"], "server": a["server"], "budget": a["budget"],
            "rounds": a["rounds"], "split": [a["trainBps"], a["comBps"], a["sapBps"]], "payment_rule": _rule(payment),
            "settled": settled, "clients": len(a["clients"]),
            "created": {"block": row["block_number"], "time": row["timestamp"]}}


def _task_status(fc, tid: int) -> str:
    try:
        return TaskStatus(fc.get_task(tid).status).name
    except Exception:  # the chain no longer has it (the index is ahead of a reorg): say so
        return "UNKNOWN"


def task_list(idx, fc) -> list[dict]:
    """Every task: budget, split, payment rule, status (view), rounds settled (events)."""
    settled: dict[int, int] = {}
    for r in idx.rows("RoundFinalized"):
        settled[r["task_id"]] = settled.get(r["task_id"], 0) + 1
    pay = _payments(idx)
    return [_task_item(r, settled.get(r["task_id"], 0), pay.get(r["task_id"], 0)) | {"status": _task_status(fc, r["task_id"])}
            for r in idx.rows("TaskCreated")]


def _display_distance(dist: int, p: int) -> int:
    """‖S − centre‖_p in fixed point (p = 2 distances are Σd²: take the square root)."""
    return isqrt(dist) if p == 2 else dist


def attempt_centre(reveals: list[dict], bonds: dict, k: int) -> list[int]:
    """The consensus centre of an attempt that did not settle (the chain emits only the settled
    attempt's): the contract's rule applied to its reveals — the stake-weighted lower median,
    weights = the commitments' bonds (:func:`fedcoin.protocol.posap.weighted_lower_median`)."""
    return posap.weighted_lower_median([r["values"] for r in reveals], [bonds.get(r["miner"], 1) for r in reveals], k=k)


def _round_view(fc, tid: int, rnd: int, rows: list[dict], cap: int) -> dict:
    by = {}
    for r in rows:
        by.setdefault(r["name"], []).append(_ev(r))
    regs = sorted(by.get("UpdateRegistered", []), key=lambda e: e["index"])
    clients = [e["client"] for e in regs]
    pubs = by.get("ShapleyTaskPublished", [])
    reopens = by.get("RoundReopened", [])
    fin = by.get("RoundFinalized", [])
    fin = fin[-1] if fin else None
    try:
        info = fc.get_round(tid, rnd)
    except Exception:
        info = None
    p = info.p if info is not None and pubs else 2
    relative = bool(info.relative) if info is not None else False
    judged = {e["miner"]: e for e in by.get("Judged", [])}
    attempts = []
    d = pubs[-1]["difficulty"] if pubs else None
    n_attempts = len(reopens) + 1 if pubs else 0
    for att in range(n_attempts):
        if att > 0:
            d = reopens[att - 1]["difficulty"]
        commits = [e for e in by.get("Committed", []) if e["attempt"] == att]
        reveals = {e["miner"]: e for e in by.get("Revealed", []) if e["attempt"] == att}
        settled_here = fin is not None and att == n_attempts - 1
        ended = settled_here or att < n_attempts - 1 or bool(by.get("RoundAbandoned"))
        bonds = {e["miner"]: e["bond"] for e in commits}
        centre = (list(fin["centre"]) if settled_here else
                  attempt_centre(list(reveals.values()), bonds, len(clients)) if ended and reveals else None)
        miners = []
        for c in sorted(commits, key=lambda e: e["seq"]):
            rv = reveals.get(c["miner"])
            row = {"miner": c["miner"], "seq": c["seq"], "stake": c["bond"], "commitment": c["commitment"],
                   "committed": c["time"], "revealed": rv["time"] if rv else None,
                   "iterations": rv["iterations"] if rv else None, "values": rv["values"] if rv else None,
                   "distance": None, "qualified": None, "outcome": "pending"}
            if rv and centre is not None:
                dist = posap.p_distance(rv["values"], centre, p)
                row["distance"] = _display_distance(dist, p)
                row["qualified"] = posap.qualifies(dist, d, p, centre=centre, relative=relative)
            if ended:
                j = judged.get(c["miner"]) if settled_here else None
                if rv is None:
                    row["outcome"] = "forfeited (no reveal)" if settled_here or att < n_attempts - 1 else "no reveal"
                elif settled_here and fin["winner"] == c["miner"]:
                    row["outcome"] = "recorded representative"
                elif j is not None:
                    row["outcome"] = {0: "qualified", 1: "bond returned", 2: "slashed"}[int(j["verdict"])]
                else:
                    row["outcome"] = "qualified" if row["qualified"] else "not qualified (no consensus: bond returned)"
            miners.append(row)
        attempts.append({"attempt": att, "difficulty": d, "p": p, "centre": centre, "miners": miners,
                         "settled": settled_here})
    claims = {e["client"]: e for e in by.get("Claimed", [])}
    payouts = []
    if fin is not None:
        for i, c in enumerate(clients):
            amount = fin["amounts"][i] if i < len(fin["amounts"]) else 0
            cl = claims.get(c)
            payouts.append({"client": c, "value": fin["centre"][i] if i < len(fin["centre"]) else 0, "amount": amount,
                            "claimed": cl is not None, "claimed_time": cl["time"] if cl else None})
    if info is not None:
        status, live = RoundStatus(info.status).name, {"commits": info.commit_count, "reveals": info.reveal_count,
                                                       "registered": info.registered, "attempt": info.attempt}
    else:
        status, live = "UNKNOWN", {}
    return {"round": rnd, "status": status, "live": live, "registrations": regs, "clients": clients,
            "publications": pubs, "reopened": reopens, "attempts": attempts,
            "finalized": fin, "payouts": payouts, "abandoned": by.get("RoundAbandoned", [])}


def task_view(idx, fc, tid: int) -> dict | None:
    """One task: its creation, and per round registrations, spec, commits/reveals, consensus and payouts."""
    created = idx.rows("TaskCreated", task_id=tid)
    if not created:
        return None
    c = created[-1]
    a = c["args"]
    rows = idx.rows(task_id=tid)
    per_round: dict[int, list[dict]] = {}
    task_events = []
    for r in rows:
        if r["round"] is None:
            task_events.append(_ev(r) | {"name": r["name"]})
        else:
            per_round.setdefault(r["round"], []).append(r)
    cap = fc.max_iterations()
    rounds = [_round_view(fc, tid, rnd, per_round[rnd], cap) for rnd in sorted(per_round)]
    try:
        t = fc.get_task(tid)
        live = {"status": TaskStatus(t.status).name, "current_round": t.current_round, "escrow": t.escrow,
                "unclaimed": t.unclaimed, "bonds": t.bonds}
    except Exception:
        live = {"status": "UNKNOWN"}
    item = _task_item(c, len(idx.rows("RoundFinalized", task_id=tid)), _payments(idx, tid).get(tid, 0)) | {"status": live["status"]}
    return {"task": item, "clients": a["clients"], "live": live, "rounds": rounds, "events": task_events}


def chain_view(idx, fc) -> dict:
    """The PoSap record chain as indexed (with what the page needs to re-verify every link) and
    the chain's own anchors: ``blockCount``, ``lastRecordHash`` and each record's stored hash."""
    fins = {(r["task_id"], r["round"]): r["args"] for r in idx.rows("RoundFinalized")}
    regs: dict[tuple[int, int], list] = {}
    for r in idx.rows("UpdateRegistered"):
        regs.setdefault((r["task_id"], r["round"]), []).append(r["args"])
    reveals: dict[tuple, list] = {}
    for r in idx.rows("Revealed"):
        reveals.setdefault((r["task_id"], r["round"], r["args"]["miner"]), []).append(r["args"])
    count = fc.block_count()
    blocks = []
    for r in idx.rows("PoSapBlock"):
        a = r["args"]
        key = (a["taskId"], a["round"])
        fin = fins.get(key)
        clients = [x["client"] for x in sorted(regs.get(key, []), key=lambda x: x["index"])]
        won = reveals.get((a["taskId"], a["round"], a["winner"]), [])
        h = a["height"]
        try:
            stored = fc.get_block(h).record_hash if h < count else None
        except Exception:
            stored = None
        blocks.append({**a, "time": r["timestamp"], "block": r["block_number"],
                       "chain_record_hash": stored, "mean": fin["centre"] if fin else None,
                       "amounts": fin["amounts"] if fin else None, "clients": clients,
                       "winner_values": won[-1]["values"] if won else None})
    diff = [{"block": r["block_number"], "time": r["timestamp"], "old": r["args"]["oldDifficulty"],
             "new": r["args"]["newDifficulty"], "elapsed": r["args"].get("elapsed"), "task": r["args"].get("taskId")}
            for r in idx.rows("DifficultyAdjusted")]
    # D is per task: the latest adjustment's result (None before any)
    return {"blocks": blocks, "block_count": count, "last_record_hash": fc.last_record_hash(),
            "difficulty": diff, "current_difficulty": diff[-1]["new"] if diff else None}


def collect_commands(rpc_url: str, contract: str, credit: int, unclaimed: list[dict]) -> str | None:
    """The commands that collect what a party is owed: ``fedcoin claim`` per task with unclaimed
    payouts, ``fedcoin withdraw`` for credit (the signer's key from a keystore or
    ``$FEDCOIN_PRIVATE_KEY``). The one place the page's command text is spelled."""
    base = f"--rpc {rpc_url} --contract {contract}"
    cmds = [f"fedcoin claim {base} --task {t}" for t in sorted({u["task"] for u in unclaimed})]
    if credit:
        cmds.append(f"fedcoin withdraw {base}")
    return "; ".join(cmds) or None


def balances(idx, fc, rpc_url: str) -> list[dict]:
    """Every party seen in the events: credit owed (view), unclaimed client payouts (events,
    each checked with ``isClaimed``), and the command that collects it."""
    parties: dict[str, set] = {}

    def role(addr: str, what: str) -> None:
        parties.setdefault(addr, set()).add(what)

    for r in idx.rows("TaskCreated"):
        role(r["args"]["requester"], "requester")
        role(r["args"]["server"], "server")
        for c in r["args"]["clients"]:
            role(c, "client")
    for r in idx.rows("Committed"):
        role(r["args"]["miner"], "miner")
    unclaimed: dict[str, list] = {}
    regs: dict[tuple, list] = {}
    for r in idx.rows("UpdateRegistered"):
        regs.setdefault((r["task_id"], r["round"]), []).append(r["args"])
    claimed = {(r["task_id"], r["round"], r["args"]["client"]) for r in idx.rows("Claimed")}
    for r in idx.rows("RoundFinalized"):
        tid, rnd = r["task_id"], r["round"]
        clients = [x["client"] for x in sorted(regs.get((tid, rnd), []), key=lambda x: x["index"])]
        for c, amount in zip(clients, r["args"]["amounts"]):
            if amount and (tid, rnd, c) not in claimed and not fc.is_claimed(tid, rnd, c):
                unclaimed.setdefault(c, []).append({"task": tid, "round": rnd, "amount": amount})
    credited: dict[str, dict] = {}
    for r in idx.rows("Credited"):
        a = r["args"]
        reason = CreditReason(a["reason"]).name if a["reason"] in iter(CreditReason) else str(a["reason"])
        d = credited.setdefault(a["account"], {})
        d[reason] = d.get(reason, 0) + a["amount"]
    out = []
    for addr in sorted(parties):
        credit = fc.credits(addr)
        owed = unclaimed.get(addr, [])
        cmd = collect_commands(rpc_url, fc.address, credit, owed)
        out.append({"address": addr, "roles": sorted(parties[addr]), "credit": credit, "unclaimed": owed,
                    "owed": credit + sum(u["amount"] for u in owed), "credited": credited.get(addr, {}),
                    "command": cmd})
    return out


def summary(idx, fc) -> dict:
    """Where the index and the chain stand (the page polls this to update live)."""
    n, h = idx.head
    return {"chain_id": fc.chain_id, "contract": fc.address, "index_head": {"number": n, "hash": h},
            "events": idx.count(), "block_count": fc.block_count(), "difficulty": None}  # D is per task
