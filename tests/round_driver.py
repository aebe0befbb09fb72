"""Drive FedCoin rounds by hand on Anvil for the requester/accounting/audit tests: register,
publish, commit/reveal hand-made vectors, finalize, claim (no FL server, no miner process)."""

from __future__ import annotations

from fedcoin_testkit import advance

COMMIT_WINDOW, REVEAL_WINDOW = 100, 100


def play_round(w3, fc, a, task_id, rnd, vectors, iterations, *, reveal_mask=None, bonds=None, register=True):
    """Register every client (unless ``register`` is False), publish, every miner commits
    ``vectors[i]``; miners with a false ``reveal_mask`` entry never reveal. Returns the salts."""
    if register:
        for c in a.clients:
            fc.as_account(c).register_update(task_id, rnd, bytes([rnd + 1]) * 32, f"cid-{c.address}", 100)
        now = fc.latest_timestamp()
        fc.as_account(a.server).publish_shapley_task(task_id, rnd, b"\x05" * 32, "spec",
                                                     now + COMMIT_WINDOW, now + COMMIT_WINDOW + REVEAL_WINDOW)
    salts = []
    for i, m in enumerate(a.miners[:len(vectors)]):
        res, salt = fc.as_account(m).commit_vector(task_id, rnd, vectors[i], iterations[i], bond=(bonds or {}).get(i))
        salts.append(salt)
    r = fc.get_round(task_id, rnd)
    _to(w3, fc, r.commit_deadline + 1)
    for i, m in enumerate(a.miners[:len(vectors)]):
        if reveal_mask is None or reveal_mask[i]:
            fc.as_account(m).reveal(task_id, rnd, vectors[i], iterations[i], salts[i])
    _to(w3, fc, r.reveal_deadline + 1)
    return salts


def _to(w3, fc, timestamp):
    now = fc.latest_timestamp()
    if now < timestamp:
        advance(w3, timestamp - now)


def finalize(fc, a, task_id, rnd):
    """Finalize as an outsider (reveals and clients read from events)."""
    return fc.as_account(a.outsider).finalize(task_id, rnd)


def abandon(w3, fc, a, task_id, rnd, far_vectors, iterations, reveal_mask=None):
    """Play a round where nobody qualifies, then let every re-open lapse until it is abandoned."""
    play_round(w3, fc, a, task_id, rnd, far_vectors, iterations, reveal_mask=reveal_mask)
    res = finalize(fc, a, task_id, rnd)
    while "RoundAbandoned" not in [e.name for e in res.events]:
        _to(w3, fc, fc.get_round(task_id, rnd).reveal_deadline + 1)
        res = finalize(fc, a, task_id, rnd)
    return res


def claim_all(fc, a, task_id, rnd, only=None):
    """Every client with a positive amount (or those in ``only``) claims its payout."""
    ev = fc.round_finalized(task_id, rnd)
    clients = fc.registered_clients(task_id, rnd)
    for c in a.clients:
        if only is not None and c not in only:
            continue
        if ev.args["amounts"][clients.index(c.address)]:
            fc.as_account(c).claim(task_id, rnd)
