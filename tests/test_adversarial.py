"""The attacks of issue 9, replayed against the robust contract on a real Anvil: each one now
fails for the attacker. Every test prints its figures (``pytest -s tests/test_adversarial.py``),
next to what the paper's rule (:mod:`fedcoin.protocol.paper_rule`, the previous contract's rule)
would have given where that is the comparison.

1. self-reported weight      — one address claiming any iteration count cannot move the centre.
2. first-come commit slots   — 64 minimum-bond Sybils cannot lock out a larger stake.
3. free veto                 — an outlier of 1e9 does not stop the round; its bond is slashed.
4. global, steerable D       — throw-away tasks cannot change another task's D.
5. lazy and selective miners — a zero vector does not qualify; selective reveal loses money.
6. server                    — no ComPrice farming, no publish-early censorship, no long lock.
"""

from __future__ import annotations

import math

import pytest
from eth_account import Account

from fedcoin.chain import ContractRevert, CreditReason, RoundStatus, TaskConfig, Verdict
from fedcoin.protocol import fixedpoint as fp
from fedcoin.protocol import paper_rule, posap
from conftest import chain_env
from round_driver import new_task, play_round
from fedcoin_testkit import ETH, TEST_TASK, advance, default_params, vec

P = default_params()
D = TEST_TASK["difficulty"]  # absolute 0.1, p = 2
HONEST = [0.30, 0.25, 0.20, 0.15]  # the clients' true Shapley values


env = chain_env(n_clients=4, n_miners=8, params=P)


def honest_vectors(n, scale=1e-3):
    """n honest estimates: the truth plus small, different errors (well within D/2 of each other)."""
    return [vec([x + scale * ((i + j) % 3 - 1) for j, x in enumerate(HONEST)]) for i in range(n)]


def dist_in_d(a, b, d=D):
    """‖a − b‖₂ in units of an absolute D."""
    return math.sqrt(posap.p_distance(a, b, 2)) / d


def moved_share(amounts, reference):
    """Share of TrainPrice that moved between two payout vectors (half the L1 difference)."""
    total = sum(reference) or 1
    return sum(abs(x - y) for x, y in zip(amounts, reference)) / 2 / total


def fund(w3, accounts, wei=10**19):
    for acc in accounts:
        w3.provider.make_request("anvil_setBalance", [acc.address, hex(wei)])


def ready(fc, a, **kw):
    tid = new_task(fc, a, **kw)
    fc.as_account(a.server).accept_task(tid)
    return tid


# ----------------------------------------------------------------------------- 1


@pytest.mark.parametrize("claimed", [1, P.max_iterations])
def test_1_one_address_claiming_any_iteration_count_cannot_move_the_centre(env, claimed):
    w3, fc, a = env
    tid = ready(fc, a)
    honest = honest_vectors(3)
    attacker = vec([1.0, -1.0, -1.0, -1.0])  # all of TrainPrice to client 0
    play_round(w3, fc, a, tid, 0, honest + [attacker], [300, 300, 300, claimed])
    fin = fc.as_account(a.outsider).finalize(tid, 0)
    ev = fin.event("RoundFinalized")
    centre, amounts = list(ev["centre"]), list(ev["amounts"])
    honest_median = posap.weighted_lower_median(honest, [1, 1, 1])
    train, _, _ = posap.round_prices(ETH, 1, 0)
    honest_amounts, _ = posap.client_payouts(train, honest_median)
    paper = paper_rule.weighted_mean(honest + [attacker], [300, 300, 300, claimed], cap=100_000)
    paper_amounts, _ = posap.client_payouts(train, paper)
    shift, moved = dist_in_d(centre, honest_median), moved_share(amounts, honest_amounts)
    print(f"\n[1] attacker claims {claimed} iterations: paper rule moves S̄ {dist_in_d(paper, honest_median):.2f} D "
          f"and {moved_share(paper_amounts, honest_amounts):.1%} of TrainPrice; robust centre moves {shift:.3f} D "
          f"and {moved:.2%} of TrainPrice")
    assert shift <= 0.5 and moved <= 0.05
    verdicts = {e["miner"]: Verdict(e["verdict"]) for e in fin.events if e.name == "Judged"}
    assert all(verdicts[m.address] == Verdict.QUALIFIED for m in a.miners[:3])
    assert verdicts[a.miners[3].address] == Verdict.SLASHED and fc.credits(a.miners[3].address) == 0


# ----------------------------------------------------------------------------- 2


def test_2_sixty_four_min_bond_sybils_cannot_lock_out_a_larger_stake(env):
    w3, fc, a = env
    tid = ready(fc, a)
    for c in a.clients:
        fc.as_account(c).register_update(tid, 0, b"\x01" * 32, "l", 10)
    fc.as_account(a.server).publish_shapley_task(tid, 0, b"\x02" * 32, "s")
    cap = fc.commit_cap(4)
    sybils = [Account.create() for _ in range(cap)]
    fund(w3, sybils)
    garbage = vec([1.0, 0, 0, 0])
    salts = [fc.as_account(s).commit_vector(tid, 0, garbage, 1)[1] for s in sybils]
    assert fc.get_round(tid, 0).commit_count == cap
    honest, stake = a.miners[0], (cap + 1) * P.min_bond  # more than all the Sybils together
    h = honest_vectors(1)[0]
    _, hsalt = fc.as_account(honest).commit_vector(tid, 0, h, 500, bond=stake)  # displaces one Sybil
    advance(w3, TEST_TASK["commit_window"] + 1)
    fc.as_account(honest).reveal(tid, 0, h, 500, hsalt)
    live = set(fc.committers(tid, 0, 0))
    for s, salt in zip(sybils, salts):
        if s.address in live:
            fc.as_account(s).reveal(tid, 0, garbage, 1, salt)
    advance(w3, TEST_TASK["reveal_window"] + 1)
    fin = fc.as_account(a.outsider).finalize(tid, 0)
    _, _, sap = posap.round_prices(ETH, 1, 0)
    judged = {e["miner"]: e for e in fin.events if e.name == "Judged"}
    assert Verdict(judged[honest.address]["verdict"]) == Verdict.QUALIFIED and judged[honest.address]["reward"] == sap
    sybil_loss = sum(P.min_bond for s in sybils if s.address in judged)
    print(f"\n[2] {cap} Sybils filled the attempt; the honest stake of {stake / ETH:.2f} ETH displaced one, qualified "
          f"and took all of SapPrice ({sap / ETH:.3f} ETH); the Sybils lost {sybil_loss / ETH:.2f} ETH of bonds")
    assert fin.event("RoundFinalized")["winner"] == honest.address
    assert all(Verdict(e["verdict"]) == Verdict.SLASHED for m, e in judged.items() if m != honest.address)


# ----------------------------------------------------------------------------- 3


def test_3_an_outlier_of_1e9_settles_on_the_first_attempt_and_is_slashed(env):
    w3, fc, a = env
    tid = ready(fc, a)
    outlier = [fp.MAX_ABS] * 4
    play_round(w3, fc, a, tid, 0, honest_vectors(3) + [outlier], [100, 100, 100, 100])
    fin = fc.as_account(a.outsider).finalize(tid, 0)
    assert "RoundReopened" not in [e.name for e in fin.events]
    assert fc.get_round(tid, 0).status == RoundStatus.FINALIZED and fc.get_round(tid, 0).attempt == 0
    judged = {e["miner"]: e for e in fin.events if e.name == "Judged"}
    assert Verdict(judged[a.miners[3].address]["verdict"]) == Verdict.SLASHED
    forfeited = sum(e["amount"] for e in fin.events if e.name == "Credited" and e["reason"] == CreditReason.FORFEITED)
    assert forfeited == P.min_bond and fc.credits(a.miners[3].address) == 0
    reveals = fc.reveals(tid, 0)
    paper_mean = paper_rule.weighted_mean([r.values for r in reveals], [r.iterations for r in reveals], 100_000)
    paper_winner = paper_rule.select_winner(reveals, paper_mean, D, 2)
    print(f"\n[3] veto reveal of 1e9: settled on attempt 0, the outlier forfeited {forfeited / ETH:.2f} ETH to the "
          f"requester; under the paper's rule the mean moved {dist_in_d(paper_mean, reveals[0].values):.3g} D and "
          f"{'nobody qualified (re-open, then abandon)' if paper_winner is None else 'someone qualified'}")
    assert paper_winner is None


# ----------------------------------------------------------------------------- 4


def test_4_throw_away_tasks_leave_another_tasks_difficulty_unchanged(env):
    w3, fc, a = env
    honest_task = ready(fc, a)
    d_before = fc.difficulty(honest_task)
    # the attacker's own tasks: it is requester, server and both (colluding) qualifying miners
    attacker, srv, clients = a.miners[4], a.miners[5], a.clients[:1]
    sybils = a.miners[6:8]
    fast = []
    for slow in (False, True):
        for _ in range(3):
            tid = fc.as_account(attacker).create_task(srv.address, [c.address for c in clients], 1, 10**15,
                                                      **TEST_TASK).task_id
            fc.as_account(srv).accept_task(tid)
            fc.as_account(clients[0]).register_update(tid, 0, b"\x01" * 32, "l", 1)
            fc.as_account(srv).publish_shapley_task(tid, 0, b"\x02" * 32, "s")
            if slow:
                advance(w3, TEST_TASK["commit_window"] - 5)
            salts = [fc.as_account(s).commit_vector(tid, 0, vec([0.5]), 1)[1] for s in sybils]
            advance(w3, TEST_TASK["commit_window"] + 1)
            for s, salt in zip(sybils, salts):
                fc.as_account(s).reveal(tid, 0, vec([0.5]), 1, salt)
            advance(w3, TEST_TASK["reveal_window"] + 1)
            res = fc.as_account(attacker).finalize(tid, 0)
            fast.append((res.event("DifficultyAdjusted")["taskId"], fc.difficulty(tid)))
    assert all(t != honest_task for t, _ in fast)
    assert fc.difficulty(honest_task) == d_before
    print(f"\n[4] 6 self-dealt rounds on throw-away tasks adjusted only their own D "
          f"({', '.join(f'{d / 1e18:.3g}' for _, d in fast)}); the honest task's D stayed {d_before / 1e18:.3g}")


# ----------------------------------------------------------------------------- 5


def test_5_a_zero_vector_does_not_qualify_in_the_demos_round(env):
    """The demo's parameters (TaskConfig defaults: relative D = 0.2 of ‖centre‖₂, p = 2) and
    MNIST-like values of 4 quality-typed clients."""
    w3, fc, a = env
    demo = TaskConfig()
    tid = fc.as_account(a.requester).create_task(a.server.address, [c.address for c in a.clients], 1, ETH,
                                                 config=demo, registration_window=100, commit_window=100,
                                                 reveal_window=100).task_id
    fc.as_account(a.server).accept_task(tid)
    honest = [vec([0.031 + 0.002 * i, 0.012, 0.0045, -0.001 + 0.0005 * i]) for i in range(3)]
    zero = [0, 0, 0, 0]
    play_round(w3, fc, a, tid, 0, [zero] + honest, [1, 400, 400, 400])  # the zero vector committed first
    fin = fc.as_account(a.outsider).finalize(tid, 0)
    judged = {e["miner"]: e for e in fin.events if e.name == "Judged"}
    z = judged[a.miners[0].address]
    centre = list(fin.event("RoundFinalized")["centre"])
    rel = math.sqrt(z["distance"]) / math.sqrt(posap.norm(centre, 2))
    paper_mean = paper_rule.weighted_mean([zero] + honest, [1, 400, 400, 400], 100_000)
    paper_winner = paper_rule.select_winner(fc.reveals(tid, 0), paper_mean, D, 2)
    print(f"\n[5] zero vector at {rel:.2f}·‖centre‖ vs D = {demo.difficulty / 1e18:.2f}·‖centre‖: "
          f"{Verdict(z['verdict']).name}; under the paper's rule (absolute D = 0.1, first qualifier wins) the zero "
          f"vector {'wins' if paper_winner == 0 else 'does not win'}")
    assert Verdict(z["verdict"]) == Verdict.SLASHED and fin.event("RoundFinalized")["winner"] != a.miners[0].address


def test_5_selective_reveal_of_sybil_guesses_loses_money(env):
    w3, fc, a = env
    tid = ready(fc, a)
    for c in a.clients:
        fc.as_account(c).register_update(tid, 0, b"\x01" * 32, "l", 10)
    fc.as_account(a.server).publish_shapley_task(tid, 0, b"\x02" * 32, "s")
    honest, stake = honest_vectors(3), 10 * P.min_bond
    hs = [fc.as_account(m).commit_vector(tid, 0, v, 500, bond=stake)[1] for m, v in zip(a.miners[:3], honest)]
    guesses = [vec([0.30, 0.25, 0.20, 0.15]), vec([0.6, 0.1, 0.1, 0.1]), vec([0.1, 0.1, 0.1, 0.6])]
    sybils = [Account.create() for _ in guesses]
    fund(w3, sybils)
    ss = [fc.as_account(s).commit_vector(tid, 0, g, 1)[1] for s, g in zip(sybils, guesses)]
    advance(w3, TEST_TASK["commit_window"] + 1)
    for m, v, s in zip(a.miners[:3], honest, hs):
        fc.as_account(m).reveal(tid, 0, v, 500, s)
    fc.as_account(sybils[0]).reveal(tid, 0, guesses[0], 1, ss[0])  # only the guess that qualifies
    advance(w3, TEST_TASK["reveal_window"] + 1)
    fin = fc.as_account(a.outsider).finalize(tid, 0)
    net = sum(fc.credits(s.address) for s in sybils) - len(sybils) * P.min_bond
    honest_net = fc.credits(a.miners[0].address) - stake
    _, _, sap = posap.round_prices(ETH, 1, 0)
    print(f"\n[5] 3 Sybil guesses, only the qualifying one revealed: the Sybils net {net / ETH:+.4f} ETH "
          f"(old rule: the winner took SapPrice {sap / ETH:.2f} ETH plus the forfeited bonds); an honest miner nets "
          f"{honest_net / ETH:+.4f} ETH")
    assert net < 0 < honest_net
    forfeited = [e for e in fin.events if e.name == "Credited" and e["reason"] == CreditReason.FORFEITED]
    assert [e["account"] for e in forfeited] == [a.requester.address]


# ----------------------------------------------------------------------------- 6


def test_6_a_server_cannot_farm_comprice_from_rounds_that_never_settle(env):
    w3, fc, a = env
    tid = ready(fc, a)
    started = fc.latest_timestamp()
    play_round(w3, fc, a, tid, 0, [], [])  # garbage spec: nobody commits
    res = fc.as_account(a.server).finalize(tid, 0)
    while "RoundAbandoned" not in [e.name for e in res.events]:
        w3.provider.make_request("evm_setNextBlockTimestamp", [fc.get_round(tid, 0).reveal_deadline + 1])
        res = fc.as_account(a.server).finalize(tid, 0)
    _, com, _ = posap.round_prices(ETH, 1, 0)
    elapsed = fc.latest_timestamp() - started
    print(f"\n[6] garbage spec with the shortest windows: abandoned after {elapsed} s; server credited "
          f"{fc.credits(a.server.address)} wei of ComPrice {com} (refunded to the requester)")
    assert fc.credits(a.server.address) == 0 and fc.credits(a.requester.address) == ETH


def test_6_publish_early_censorship_is_impossible(env):
    w3, fc, a = env
    tid = ready(fc, a)
    favourite = a.clients[0]
    fc.as_account(favourite).register_update(tid, 0, b"\x01" * 32, "l", 10)
    with pytest.raises(ContractRevert) as e:
        fc.as_account(a.server).publish_shapley_task(tid, 0, b"\x02" * 32, "s")
    assert e.value.name == "FedCoinRegistrationOpen"
    for c in a.clients[1:]:
        fc.as_account(c).register_update(tid, 0, b"\x01" * 32, "l", 10)
    fc.as_account(a.server).publish_shapley_task(tid, 0, b"\x02" * 32, "s")
    play_round(w3, fc, a, tid, 0, honest_vectors(2), [10, 10], register=False)
    amounts = list(fc.as_account(a.outsider).finalize(tid, 0).event("RoundFinalized")["amounts"])
    share = amounts[0] / sum(amounts)
    print(f"\n[6] publish right after the favourite registered: reverted (FedCoinRegistrationOpen); every client "
          f"registered and the favourite got {share:.0%} of TrainPrice (was 100%)")
    assert all(x > 0 for x in amounts) and share < 0.5


def test_6_a_commit_less_round_cannot_lock_the_escrow_for_240_days(env):
    w3, fc, a = env
    week = 7 * 24 * 3600
    tid = ready(fc, a, rounds=1000, registration_window=week, commit_window=week, reveal_window=week)
    play_round(w3, fc, a, tid, 0, [], [])
    t = fc.get_task(tid)
    bound = fc.stalled_after(tid)
    days = (bound - t.round_started_at) / 86400
    w3.provider.make_request("evm_setNextBlockTimestamp", [bound + 1])
    res = fc.as_account(a.requester).refund_stalled(tid)
    print(f"\n[6] longest windows (7 days each), 1000 rounds, commit-less round 0: the requester took back "
          f"{res.event('TaskRefunded')['amount'] / ETH:.2f} ETH after {days:.0f} days (was 240 days per round)")
    assert days <= 64 and fc.get_task(tid).escrow == 0
    with pytest.raises(ContractRevert) as e:
        fc.as_account(a.requester).create_task(a.server.address, [c.address for c in a.clients], 1, ETH,
                                               **dict(TEST_TASK, commit_window=30 * 86400))
    assert e.value.name == "FedCoinBadWindow" and e.value.args_ == (1, 30 * 86400)
