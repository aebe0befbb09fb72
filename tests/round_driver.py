"""The one round driver of the contract tests: register, publish, commit/reveal hand-made
vectors, finalize, claim — on a real Anvil, with no FL server and no miner process — plus the
:class:`Ledger` that checks every account's ether to the wei."""

from __future__ import annotations

from fedcoin_testkit import TEST_TASK, advance


class Ledger:
    """Tracks each account's expected ether: what it paid in fees and deposits, and received.

    Wrap every transaction of a tracked account in :meth:`tx` (with the value it sent) and every
    payment it receives in :meth:`receive`; :meth:`check` then asserts each balance to the wei.
    """

    def __init__(self, w3, accounts):
        self.w3 = w3
        self.start = {a.address: w3.eth.get_balance(a.address) for a in accounts}
        self.delta = {a.address: 0 for a in accounts}

    def tx(self, who, res, value=0):
        if who.address in self.delta:
            self.delta[who.address] -= res.fee + value
        return res

    def receive(self, who, amount):
        self.delta[who.address] += amount

    def check(self):
        for addr, d in self.delta.items():
            assert self.w3.eth.get_balance(addr) == self.start[addr] + d, addr


def _untracked(who, res, value=0):
    return res

COMMIT_WINDOW, REVEAL_WINDOW = TEST_TASK["commit_window"], TEST_TASK["reveal_window"]


def new_task(fc, a, rounds=1, value=10**18, clients=None, **overrides):
    """A task of the requester for the server and ``clients`` (default: all), with the contract
    tests' parameters (:data:`fedcoin_testkit.TEST_TASK`, single fields overridden); returns its id."""
    cfg = dict(TEST_TASK, **overrides)
    clients = [c.address for c in (a.clients if clients is None else clients)]
    return fc.as_account(a.requester).create_task(a.server.address, clients, rounds, value, **cfg).task_id


def play_round(w3, fc, a, task_id, rnd, vectors, iterations, *, reveal_mask=None, bonds=None, register=True,
               ledger=None, miners=None, excluded=(), data_costs=None, spec_hash=b"\x05" * 32):
    """Register every client (unless ``register`` is False; client j declares
    ``data_costs[j]``, default 100), publish (with ``excluded``), and
    miner i (of ``miners``, default ``a.miners``) commits ``vectors[i]`` with bond
    ``bonds.get(i, minBond)``; miners with a false ``reveal_mask`` entry never reveal. Time is
    then past the reveal deadline. Every transaction is recorded in ``ledger`` when one is given.
    Returns the salts."""
    track = ledger.tx if ledger is not None else _untracked
    miners = a.miners if miners is None else miners
    if register:
        for j, c in enumerate(a.clients):
            n = 100 if data_costs is None else data_costs[j]
            track(c, fc.as_account(c).register_update(task_id, rnd, bytes([rnd + 1]) * 32, f"cid-{c.address}", n))
        track(a.server, fc.as_account(a.server).publish_shapley_task(task_id, rnd, spec_hash, "spec",
                                                                     excluded=excluded))
    salts = []
    min_bond = fc.min_bond()
    for i, m in enumerate(miners[:len(vectors)]):
        bond = (bonds or {}).get(i, min_bond)
        res, salt = fc.as_account(m).commit_vector(task_id, rnd, vectors[i], iterations[i], bond=bond)
        track(m, res, bond)
        salts.append(salt)
    r = fc.get_round(task_id, rnd)
    _to(w3, fc, r.commit_deadline + 1)
    for i, m in enumerate(miners[:len(vectors)]):
        if reveal_mask is None or reveal_mask[i]:
            track(m, fc.as_account(m).reveal(task_id, rnd, vectors[i], iterations[i], salts[i]))
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
