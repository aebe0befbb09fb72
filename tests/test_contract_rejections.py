"""Every rejection: the custom error with its arguments, and nothing changed (balances,
credits, totals, task and round state)."""

from __future__ import annotations

import pytest

from fedcoin.protocol import fixedpoint as fp
from fedcoin.chain import ContractRevert, FedCoin
from fedcoin.protocol.merkle import payout_tree
from fedcoin.protocol.posap import Reveal
from conftest import chain_env
from fedcoin_testkit import ETH, TEST_TASK, actors, advance, default_params, fingerprint, revert, snapshot, vec, w3_for

P = default_params()
A = actors(n_clients=3, n_miners=3)
ADDRS = [A.requester.address, A.server.address, *(c.address for c in A.clients), *(m.address for m in A.miners),
         A.outsider.address]
CLIENTS = [c.address for c in A.clients]
S = [vec([0.3, 0.2, 0.1]), vec([0.31, 0.19, 0.1]), vec([0.29, 0.21, 0.1])]


env = chain_env(n_clients=3, n_miners=3, params=P)


def rejects(fc, task_ids, call, name, args=None):
    before = fingerprint(fc, ADDRS, task_ids)
    with pytest.raises(ContractRevert) as e:
        call()
    assert e.value.name == name, e.value
    if args is not None:
        assert e.value.args_ == tuple(args)
    assert fingerprint(fc, ADDRS, task_ids) == before
    return e.value


def as_(fc, who):
    return fc.as_account(who)


def created(fc, rounds=1, **kw):
    return as_(fc, A.requester).create_task(A.server.address, CLIENTS, rounds, ETH, **dict(TEST_TASK, **kw)).task_id


def accepted(fc, rounds=1):
    tid = created(fc, rounds)
    as_(fc, A.server).accept_task(tid)
    return tid


def registered(fc, rounds=1, n=3):
    tid = accepted(fc, rounds)
    for c in A.clients[:n]:
        as_(fc, c).register_update(tid, 0, b"\x01" * 32, "loc", 10)
    return tid


def published(fc, rounds=1, excluded=()):
    tid = registered(fc, rounds)
    as_(fc, A.server).publish_shapley_task(tid, 0, b"\x02" * 32, "spec", excluded=excluded)
    return tid


def committed(fc, w3):
    tid = published(fc)
    salts = [as_(fc, m).commit_vector(tid, 0, S[i], 10)[1] for i, m in enumerate(A.miners)]
    return tid, salts


def revealed(fc, w3):
    tid, salts = committed(fc, w3)
    advance(w3, 101)
    for i, m in enumerate(A.miners):
        as_(fc, m).reveal(tid, 0, S[i], 10, salts[i])
    advance(w3, 100)
    return tid


def finalized(fc, w3):
    tid = revealed(fc, w3)
    ev = as_(fc, A.outsider).finalize(tid, 0).event("RoundFinalized")
    return tid, list(ev["amounts"])


# ---------------------------------------------------------------- createTask

@pytest.mark.parametrize("case", ["zero_budget", "zero_server", "split", "rounds0", "rounds_big", "no_clients",
                                  "requester_client", "server_client", "zero_client", "duplicate", "unsorted",
                                  "deadline", "d0", "d_abs_big", "d_rel_big", "p", "reg_short", "commit_long",
                                  "reveal_short", "claim_short", "claim_long"])
def test_create_task_rejects_bad_input(env, case):
    w3, fc, _ = env
    r = as_(fc, A.requester)
    c = sorted(CLIENTS, key=lambda x: int(x, 16))
    now = fc.latest_timestamp()
    cfg = lambda **kw: r.create_task(A.server.address, c, 1, ETH, **dict(TEST_TASK, **kw))  # noqa: E731
    week = 7 * 86400
    calls = {
        "d0": (lambda: cfg(difficulty=0), "FedCoinBadDifficulty", (0, False)),
        "d_abs_big": (lambda: cfg(difficulty=2**120 + 1), "FedCoinBadDifficulty", (2**120 + 1, False)),
        "d_rel_big": (lambda: cfg(difficulty=5 * 10**17 + 1, relative=True), "FedCoinBadDifficulty", (5 * 10**17 + 1, True)),
        "p": (lambda: cfg(p=3), "FedCoinBadP", (3,)),
        "reg_short": (lambda: cfg(registration_window=19), "FedCoinBadWindow", (0, 19)),
        "commit_long": (lambda: cfg(commit_window=week + 1), "FedCoinBadWindow", (1, week + 1)),
        "reveal_short": (lambda: cfg(reveal_window=0), "FedCoinBadWindow", (2, 0)),
        "claim_short": (lambda: cfg(claim_window=86399), "FedCoinBadWindow", (3, 86399)),
        "claim_long": (lambda: cfg(claim_window=365 * 86400 + 1), "FedCoinBadWindow", (3, 365 * 86400 + 1)),
        "zero_budget": (lambda: r.create_task(A.server.address, c, 1, 0), "FedCoinZeroBudget", ()),
        "zero_server": (lambda: r.create_task("0x" + "00" * 20, c, 1, ETH), "FedCoinZeroServer", ()),
        "split": (lambda: r.create_task(A.server.address, c, 1, ETH, split=(7000, 1000, 2001)), "FedCoinBadSplit", (7000, 1000, 2001)),
        "rounds0": (lambda: r.create_task(A.server.address, c, 0, ETH), "FedCoinBadRounds", (0,)),
        "rounds_big": (lambda: r.create_task(A.server.address, c, 1001, ETH), "FedCoinBadRounds", (1001,)),
        "no_clients": (lambda: r.create_task(A.server.address, [], 1, ETH), "FedCoinBadClientCount", (0,)),
        "requester_client": (lambda: r.create_task(A.server.address, c + [A.requester.address], 1, ETH), "FedCoinForbiddenClient", (A.requester.address,)),
        "server_client": (lambda: r.create_task(A.server.address, c + [A.server.address], 1, ETH), "FedCoinForbiddenClient", (A.server.address,)),
        "zero_client": (lambda: r.create_task(A.server.address, ["0x" + "00" * 20] + c, 1, ETH), "FedCoinForbiddenClient", ("0x" + "00" * 20,)),
        "duplicate": (lambda: r.create_task(A.server.address, c + [c[-1]], 1, ETH), "FedCoinDuplicateClient", (c[-1],)),
        "unsorted": (lambda: r.create_task(A.server.address, list(reversed(c)), 1, ETH, sort_clients=False), "FedCoinClientsNotSorted", (1,)),
        "deadline": (lambda: r.create_task(A.server.address, c, 1, ETH, accept_deadline=now), "FedCoinBadAcceptDeadline", (now,)),
    }
    call, name, args = calls[case]
    rejects(fc, [], call, name, args)


# ---------------------------------------------------------------- acceptance and refunds

def test_accept_rejections(env):
    w3, fc, _ = env
    rejects(fc, [], lambda: as_(fc, A.server).accept_task(99), "FedCoinUnknownTask", (99,))
    tid = created(fc)
    rejects(fc, [tid], lambda: as_(fc, A.outsider).accept_task(tid), "FedCoinNotServer", (A.outsider.address,))
    rejects(fc, [tid], lambda: as_(fc, A.outsider).refund_unaccepted(tid), "FedCoinAcceptDeadlineNotPassed",
            (tid, fc.get_task(tid).accept_deadline))
    advance(w3, 3601)
    rejects(fc, [tid], lambda: as_(fc, A.server).accept_task(tid), "FedCoinAcceptDeadlinePassed",
            (tid, fc.get_task(tid).accept_deadline))


def test_accept_twice_and_refund_accepted_rejected(env):
    w3, fc, _ = env
    tid = accepted(fc)
    rejects(fc, [tid], lambda: as_(fc, A.server).accept_task(tid), "FedCoinWrongTaskStatus", (tid, 2))
    advance(w3, 3601)
    rejects(fc, [tid], lambda: as_(fc, A.outsider).refund_unaccepted(tid), "FedCoinWrongTaskStatus", (tid, 2))
    bound = fc.stalled_after(tid)
    rejects(fc, [tid], lambda: as_(fc, A.outsider).refund_stalled(tid), "FedCoinNotStalled", (tid, 0, bound))


def test_refund_stalled_rejected_while_bonds_are_at_stake(env):
    w3, fc, _ = env
    tid, _ = committed(fc, w3)
    bound = fc.stalled_after(tid)
    w3.provider.make_request("evm_setNextBlockTimestamp", [bound + 1])
    w3.provider.make_request("evm_mine", [])
    rejects(fc, [tid], lambda: as_(fc, A.outsider).refund_stalled(tid), "FedCoinNotStalled", (tid, 0, bound))


# ---------------------------------------------------------------- registration

def test_register_rejections(env):
    w3, fc, _ = env
    tid = created(fc)
    rejects(fc, [tid], lambda: as_(fc, A.clients[0]).register_update(tid, 0, b"\x01" * 32, "l", 1),
            "FedCoinWrongTaskStatus", (tid, 1))
    as_(fc, A.server).accept_task(tid)
    c0 = as_(fc, A.clients[0])
    rejects(fc, [tid], lambda: as_(fc, A.outsider).register_update(tid, 0, b"\x01" * 32, "l", 1),
            "FedCoinNotListedClient", (A.outsider.address,))
    # a listed client's proof replayed by an outsider does not work either
    rejects(fc, [tid], lambda: as_(fc, A.outsider).register_update(tid, 0, b"\x01" * 32, "l", 1,
            proof=fc.client_proof(tid, A.clients[0].address)), "FedCoinNotListedClient", (A.outsider.address,))
    rejects(fc, [tid], lambda: c0.register_update(tid, 1, b"\x01" * 32, "l", 1), "FedCoinWrongRound", (tid, 0, 1))
    rejects(fc, [tid], lambda: c0.register_update(tid, 0, b"\x00" * 32, "l", 1), "FedCoinEmptyHash", ())
    rejects(fc, [tid], lambda: c0.register_update(tid, 0, b"\x01" * 32, "l", 0), "FedCoinBadDataCost", (0, 2**64 - 1))
    c0.register_update(tid, 0, b"\x01" * 32, "l", 1)
    rejects(fc, [tid], lambda: c0.register_update(tid, 0, b"\x03" * 32, "l", 1), "FedCoinAlreadyRegistered",
            (tid, 0, A.clients[0].address))
    advance(w3, 101)  # past the registration deadline
    deadline = fc.get_task(tid).registration_deadline
    rejects(fc, [tid], lambda: as_(fc, A.clients[1]).register_update(tid, 0, b"\x01" * 32, "l", 1),
            "FedCoinRegistrationClosed", (tid, 0, deadline))
    as_(fc, A.server).publish_shapley_task(tid, 0, b"\x02" * 32, "s")
    rejects(fc, [tid], lambda: as_(fc, A.clients[1]).register_update(tid, 0, b"\x01" * 32, "l", 1),
            "FedCoinWrongRoundStatus", (tid, 0, 1))


# ---------------------------------------------------------------- publication

def test_publish_rejections(env):
    w3, fc, _ = env
    tid = accepted(fc)
    srv = as_(fc, A.server)
    pub = lambda who=srv, rnd=0, h=b"\x02" * 32, agg=0, ex=(): who.publish_shapley_task(tid, rnd, h, "s", agg, ex)  # noqa: E731
    rejects(fc, [tid], lambda: pub(), "FedCoinNoRegistrations", (tid, 0))
    as_(fc, A.clients[0]).register_update(tid, 0, b"\x01" * 32, "l", 1)
    deadline = fc.get_task(tid).registration_deadline
    rejects(fc, [tid], lambda: pub(), "FedCoinRegistrationOpen", (tid, 0, deadline))
    for c in A.clients[1:]:
        as_(fc, c).register_update(tid, 0, b"\x01" * 32, "l", 1)
    rejects(fc, [tid], lambda: pub(who=as_(fc, A.outsider)), "FedCoinNotServer", (A.outsider.address,))
    rejects(fc, [tid], lambda: pub(rnd=1), "FedCoinWrongRound", (tid, 0, 1))
    rejects(fc, [tid], lambda: pub(h=b"\x00" * 32), "FedCoinEmptyHash", ())
    rejects(fc, [tid], lambda: pub(agg=2), "FedCoinBadAggregation", (2,))
    rejects(fc, [tid], lambda: srv._transact("publishShapleyTask", tid, 0, b"\x02" * 32, "s", 0, [2, 1]),
            "FedCoinBadExclusions", (1,))
    rejects(fc, [tid], lambda: srv._transact("publishShapleyTask", tid, 0, b"\x02" * 32, "s", 0, [1, 1]),
            "FedCoinBadExclusions", (1,))
    rejects(fc, [tid], lambda: pub(ex=[3]), "FedCoinBadExclusions", (0,))
    rejects(fc, [tid], lambda: pub(ex=[0, 1, 2]), "FedCoinBadExclusions", (2,))
    pub(ex=[1])
    r = fc.get_round(tid, 0)
    assert (r.commit_deadline, r.reveal_deadline) == (r.published_at + 100, r.published_at + 200)
    rejects(fc, [tid], lambda: pub(), "FedCoinWrongRoundStatus", (tid, 0, 1))


# ---------------------------------------------------------------- commit

def test_commit_rejections(env):
    w3, fc, _ = env
    tid = registered(fc)
    m = as_(fc, A.miners[0])
    rejects(fc, [tid], lambda: m.commit(tid, 0, b"\x09" * 32), "FedCoinWrongRoundStatus", (tid, 0, 0))
    as_(fc, A.server).publish_shapley_task(tid, 0, b"\x02" * 32, "s")
    rejects(fc, [tid], lambda: as_(fc, A.server).commit(tid, 0, b"\x09" * 32), "FedCoinServerCannotMine",
            (A.server.address,))
    rejects(fc, [tid], lambda: m.commit(tid, 0, b"\x09" * 32, bond=P.min_bond - 1), "FedCoinBadBond", (P.min_bond - 1, P.min_bond))
    rejects(fc, [tid], lambda: m.commit(tid, 0, b"\x00" * 32), "FedCoinEmptyHash", ())
    m.commit(tid, 0, b"\x09" * 32, bond=P.min_bond)  # the exact minimum passes
    rejects(fc, [tid], lambda: m.commit(tid, 0, b"\x08" * 32), "FedCoinAlreadyCommitted", (tid, 0, A.miners[0].address))
    deadline = fc.get_round(tid, 0).commit_deadline
    w3.provider.make_request("evm_setNextBlockTimestamp", [deadline + 1])
    w3.provider.make_request("evm_mine", [])
    rejects(fc, [tid], lambda: as_(fc, A.miners[1]).commit(tid, 0, b"\x09" * 32), "FedCoinCommitWindowClosed", (tid, 0, deadline))


def test_commit_cap_rejects_a_65th_commitment_that_cannot_displace(env):
    """K = 3 registered -> cap = min(64, 7168 // 3) = 64 commitments per attempt; a 65th needs
    at least the smallest held bond + minBond."""
    from eth_account import Account

    w3, fc, _ = env
    assert (fc.commit_cap(3), fc.commit_cap(100), fc.commit_cap(200), fc.commit_cap(1000)) == (64, 64, 35, 7)
    tid = published(fc)
    miners = [Account.create() for _ in range(65)]
    funder = as_(fc, A.requester)
    for m in miners:
        funder.tx.send({"data": b"", "value": P.min_bond + 10**16}, "fund", to=m.address)
    for m in miners[:64]:
        as_(fc, m).commit(tid, 0, b"\x09" * 32)
    assert fc.get_round(tid, 0).commit_count == 64
    ADDRS.append(miners[64].address)
    try:
        rejects(fc, [tid], lambda: as_(fc, miners[64]).commit(tid, 0, b"\x09" * 32), "FedCoinRoundFull",
                (tid, 0, 64, 2 * P.min_bond))
        rejects(fc, [tid], lambda: as_(fc, miners[64]).commit(tid, 0, b"\x09" * 32, bond=2 * P.min_bond - 1),
                "FedCoinRoundFull", (tid, 0, 64, 2 * P.min_bond))
    finally:
        ADDRS.pop()


# ---------------------------------------------------------------- reveal

def test_reveal_rejections(env):
    w3, fc, _ = env
    tid, salts = committed(fc, w3)
    m0 = as_(fc, A.miners[0])
    r = fc.get_round(tid, 0)
    win = (tid, 0, r.commit_deadline, r.reveal_deadline)
    rejects(fc, [tid], lambda: m0.reveal(tid, 0, S[0], 10, salts[0]), "FedCoinOutsideRevealWindow", win)
    advance(w3, 101)
    rejects(fc, [tid], lambda: as_(fc, A.outsider).reveal(tid, 0, S[0], 10, salts[0]), "FedCoinNoCommitment",
            (tid, 0, A.outsider.address))
    rejects(fc, [tid], lambda: m0.reveal(tid, 0, S[0][:2], 10, salts[0]), "FedCoinWrongVectorLength", (2, 3))
    rejects(fc, [tid], lambda: m0.reveal(tid, 0, S[0], 0, salts[0]), "FedCoinBadIterations", (0, P.max_iterations))
    rejects(fc, [tid], lambda: m0.reveal(tid, 0, S[0], P.max_iterations + 1, salts[0]), "FedCoinBadIterations",
            (P.max_iterations + 1, P.max_iterations))
    big = [fp.MAX_ABS + 1, 0, 0]
    rejects(fc, [tid], lambda: m0.reveal(tid, 0, big, 10, salts[0]), "FedCoinValueOutOfRange", (0, fp.MAX_ABS + 1))
    rejects(fc, [tid], lambda: m0.reveal(tid, 0, [0, -fp.MAX_ABS - 1, 0], 10, salts[0]), "FedCoinValueOutOfRange",
            (1, -fp.MAX_ABS - 1))
    # the exact bound is accepted by the range check (and then fails only on the commitment)
    rejects(fc, [tid], lambda: m0.reveal(tid, 0, [fp.MAX_ABS, -fp.MAX_ABS, 0], 10, salts[0]),
            "FedCoinCommitmentMismatch", (tid, 0, A.miners[0].address))
    rejects(fc, [tid], lambda: m0.reveal(tid, 0, S[0], 11, salts[0]), "FedCoinCommitmentMismatch", (tid, 0, A.miners[0].address))
    rejects(fc, [tid], lambda: m0.reveal(tid, 0, S[0], 10, salts[1]), "FedCoinCommitmentMismatch", (tid, 0, A.miners[0].address))
    # a copied reveal (another miner's data) does not match: the commitment binds the miner
    rejects(fc, [tid], lambda: as_(fc, A.miners[1]).reveal(tid, 0, S[0], 10, salts[0]), "FedCoinCommitmentMismatch",
            (tid, 0, A.miners[1].address))
    m0.reveal(tid, 0, S[0], 10, salts[0])
    rejects(fc, [tid], lambda: m0.reveal(tid, 0, S[0], 10, salts[0]), "FedCoinAlreadyRevealed", (tid, 0, A.miners[0].address))
    advance(w3, 100)
    rejects(fc, [tid], lambda: as_(fc, A.miners[1]).reveal(tid, 0, S[1], 10, salts[1]), "FedCoinOutsideRevealWindow", win)


def test_reveal_rejects_a_value_at_an_excluded_index(env):
    w3, fc, _ = env
    tid = published(fc, excluded=[1])
    m = as_(fc, A.miners[0])
    bad = vec([0.3, 0.2, 0.1])
    _, salt = m.commit_vector(tid, 0, bad, 1)
    advance(w3, 101)
    rejects(fc, [tid], lambda: m.reveal(tid, 0, bad, 1, salt), "FedCoinExcludedValue", (1, bad[1]))


def test_exact_bound_values_reveal(env):
    w3, fc, _ = env
    tid = published(fc)
    v = [fp.MAX_ABS, -fp.MAX_ABS, 0]
    m = as_(fc, A.miners[0])
    _, salt = m.commit_vector(tid, 0, v, 1)
    advance(w3, 101)
    assert m.reveal(tid, 0, v, 1, salt).event("Revealed")["values"] == v


# ---------------------------------------------------------------- finalize

def test_finalize_rejections(env):
    w3, fc, _ = env
    tid, salts = committed(fc, w3)
    advance(w3, 101)
    for i, m in enumerate(A.miners):
        as_(fc, m).reveal(tid, 0, S[i], 10, salts[i])
    out = as_(fc, A.outsider)
    rd = fc.get_round(tid, 0).reveal_deadline
    rejects(fc, [tid], lambda: out.finalize(tid, 0), "FedCoinRevealWindowOpen", (tid, 0, rd))
    advance(w3, 100)
    clients = fc.registered_clients(tid, 0)
    reveals = fc.reveals(tid, 0)
    rejects(fc, [tid], lambda: out.finalize(tid, 1), "FedCoinWrongRound", (tid, 0, 1))
    rejects(fc, [tid], lambda: out.finalize(tid, 0, clients=clients[::-1]), "FedCoinClientsMismatch", (tid, 0))
    rejects(fc, [tid], lambda: out.finalize(tid, 0, clients=clients[:2]), "FedCoinClientsMismatch", (tid, 0))
    rejects(fc, [tid], lambda: out.finalize(tid, 0, reveals=reveals[:2]), "FedCoinRevealsMismatch", (tid, 0))
    rejects(fc, [tid], lambda: out.finalize(tid, 0, reveals=reveals[::-1]), "FedCoinRevealsMismatch", (tid, 0))
    bad = list(reveals)
    bad[1] = Reveal(bad[1].miner, bad[1].seq, bad[1].iterations, (bad[1].values[0] + 1,) + bad[1].values[1:])
    rejects(fc, [tid], lambda: out.finalize(tid, 0, reveals=bad), "FedCoinRevealsMismatch", (tid, 0))
    bad[1] = Reveal(bad[1].miner, 0, reveals[1].iterations, reveals[1].values)  # claim an earlier seq
    rejects(fc, [tid], lambda: out.finalize(tid, 0, reveals=bad), "FedCoinRevealsMismatch", (tid, 0))
    bad[1] = Reveal(bad[1].miner, reveals[1].seq, 10**6, reveals[1].values)  # inflate iterations
    rejects(fc, [tid], lambda: out.finalize(tid, 0, reveals=bad), "FedCoinRevealsMismatch", (tid, 0))
    centre = fc.centre(tid, 0)
    rejects(fc, [tid], lambda: out.finalize(tid, 0, centre=centre[:2]), "FedCoinWrongVectorLength", (2, 3))
    # the centre is unique: one wei off in any coordinate, or another miner's value, is rejected
    for j in range(3):
        off = list(centre)
        off[j] += 1
        rejects(fc, [tid], lambda off=off: out.finalize(tid, 0, centre=off), "FedCoinBadCentre", (j,))
    rejects(fc, [tid], lambda: out.finalize(tid, 0, centre=list(S[1])), "FedCoinBadCentre", (0,))
    out.finalize(tid, 0)
    rejects(fc, [tid], lambda: out.finalize(tid, 0), "FedCoinWrongTaskStatus", (tid, 3))


# ---------------------------------------------------------------- claim and withdraw

def test_claim_rejections(env):
    w3, fc, _ = env
    tid = revealed(fc, w3)
    c0 = as_(fc, A.clients[0])
    rejects(fc, [tid], lambda: c0.claim(tid, 0, 1, []), "FedCoinWrongRoundStatus", (tid, 0, 1))
    out = as_(fc, A.outsider)
    out.finalize(tid, 0)
    amount, proof = fc.payout_proof(tid, 0, A.clients[0].address)
    assert amount > 0
    rejects(fc, [tid], lambda: c0.claim(tid, 0, 0, proof), "FedCoinNothingToClaim", ())
    rejects(fc, [tid], lambda: c0.claim(tid, 0, amount + 1, proof), "FedCoinInvalidProof", (tid, 0, A.clients[0].address, amount + 1))
    rejects(fc, [tid], lambda: c0.claim(tid, 0, amount - 1, proof), "FedCoinInvalidProof", (tid, 0, A.clients[0].address, amount - 1))
    # another account presenting client 0's leaf and proof gets nothing
    rejects(fc, [tid], lambda: out.claim(tid, 0, amount, proof), "FedCoinInvalidProof", (tid, 0, A.outsider.address, amount))
    # second preimage: an inner node passed off as a leaf cannot be claimed
    clients = fc.registered_clients(tid, 0)
    amounts = list(fc.round_finalized(tid, 0)["amounts"])
    tree = payout_tree(tid, 0, clients, amounts)
    inner = tree.levels[1][0]
    rejects(fc, [tid], lambda: c0.claim(tid, 0, int.from_bytes(inner, "big"), tree.proof(0)[1:]), "FedCoinInvalidProof", None)
    c0.claim(tid, 0, amount, proof)
    rejects(fc, [tid], lambda: c0.claim(tid, 0, amount, proof), "FedCoinAlreadyClaimed", (tid, 0, A.clients[0].address))


def test_claim_to_and_expiry_rejections(env):
    w3, fc, _ = env
    tid, amounts = finalized(fc, w3)
    c1, out = A.clients[1], as_(fc, A.outsider)
    to = A.outsider.address
    sig = as_(fc, c1).sign_claim_to(tid, 0, to)
    rejects(fc, [tid], lambda: out.claim_to(tid, 0, c1.address, "0x" + "00" * 20, sig), "FedCoinZeroRecipient", ())
    rejects(fc, [tid], lambda: out.claim_to(tid, 0, c1.address, to, sig[:64]), "FedCoinBadSignature", (c1.address,))
    rejects(fc, [tid], lambda: out.claim_to(tid, 0, A.clients[2].address, to, sig), "FedCoinBadSignature",
            (A.clients[2].address,))
    high_s = sig[:32] + (0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
                         - int.from_bytes(sig[32:64], "big")).to_bytes(32, "big") + bytes([55 - sig[64]])
    rejects(fc, [tid], lambda: out.claim_to(tid, 0, c1.address, to, high_s), "FedCoinBadSignature", (c1.address,))
    sig_other_round = as_(fc, c1).sign_claim_to(tid, 1, to)
    rejects(fc, [tid], lambda: out.claim_to(tid, 0, c1.address, to, sig_other_round), "FedCoinBadSignature",
            (c1.address,))
    expiry = fc.get_round(tid, 0).finalized_at + TEST_TASK["claim_window"]
    rejects(fc, [tid], lambda: out.reclaim_expired(tid, 0), "FedCoinClaimNotExpired", (tid, 0, expiry))
    rejects(fc, [tid], lambda: out.reclaim_expired(tid, 1), "FedCoinWrongRoundStatus", (tid, 1, 0))
    out.claim_to(tid, 0, c1.address, to, sig)
    rejects(fc, [tid], lambda: out.claim_to(tid, 0, c1.address, to, sig), "FedCoinAlreadyClaimed", (tid, 0, c1.address))
    w3.provider.make_request("evm_setNextBlockTimestamp", [expiry + 1])
    w3.provider.make_request("evm_mine", [])
    sig0 = as_(fc, A.clients[0]).sign_claim_to(tid, 0, to)
    rejects(fc, [tid], lambda: out.claim_to(tid, 0, A.clients[0].address, to, sig0), "FedCoinClaimExpired",
            (tid, 0, expiry))
    rejects(fc, [tid], lambda: as_(fc, A.clients[0]).claim(tid, 0), "FedCoinClaimExpired", (tid, 0, expiry))
    out.reclaim_expired(tid, 0)
    rejects(fc, [tid], lambda: out.reclaim_expired(tid, 0), "FedCoinNothingToReclaim", (tid, 0))


def test_withdraw_with_no_credit_rejected(env):
    w3, fc, _ = env
    rejects(fc, [], lambda: as_(fc, A.outsider).withdraw(), "FedCoinNothingToWithdraw", (A.outsider.address,))
