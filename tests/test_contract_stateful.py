"""Stateful property test: random lifecycle actions by random actors (hypothesis.stateful,
with evm_snapshot/evm_revert around each run), the robust rules included — displacement of a
full attempt, slashing, forfeits, claimTo, claim expiry and stalled refunds. After every step the
contract's balance equals everything it owes: escrow + unclaimed client payouts + pull-ledger
credits + bonds, and each of those sums equals the per-task / per-round / per-account figures it
aggregates. FLChain beside it gets the same check (``Trading``): random registrations, top-ups,
deposit withdrawals, joins and releases, sales, claims and withdrawals, each succeeding exactly
when a Python mirror says it may, with FLChain's buckets equal to the mirror's after every step."""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from eth_account import Account

from fedcoin.chain import ContractRevert, FedCoin
from conftest import chain_env
from fedcoin_testkit import TEST_TASK, default_params, dev_accounts, revert, snapshot, vec, w3_for

P = default_params()
TASK = dict(TEST_TASK, difficulty=2 * 10**17)
ACC = dev_accounts()
REQUESTERS, SERVERS, CLIENTS, MINERS = ACC[0:2], ACC[2:4], ACC[4:9], ACC[9:13]
EVERYONE = REQUESTERS + SERVERS + CLIENTS + MINERS
OUTCOMES: list[list[str]] = []


env = chain_env(params=P)


class Lifecycle(RuleBasedStateMachine):
    def __init__(self, w3, fc):
        super().__init__()
        self.w3, self.fc = w3, fc
        self.snap = snapshot(w3)
        self.tasks: list[int] = []
        self.salts: dict[tuple, tuple] = {}
        self.outcomes: list[str] = []
        self.extra: list[str] = []  # Sybils and claimTo recipients: their credits count too
        OUTCOMES.append(self.outcomes)

    def teardown(self):
        revert(self.w3, self.snap)

    def _try(self, label, fn):
        try:
            fn()
            self.outcomes.append(label)
        except ContractRevert as e:
            assert e.name.startswith("FedCoin"), e  # only our custom errors, never a panic
            self.outcomes.append(f"{label}!{e.name}")

    def _task(self, data):
        return data.draw(st.sampled_from(self.tasks)) if self.tasks else 1

    @rule(req=st.sampled_from(REQUESTERS), srv=st.sampled_from(SERVERS), rounds=st.integers(1, 2),
          value=st.integers(1, 10**18), n=st.integers(1, 4), payment=st.integers(0, 2), cap=st.sampled_from([2, 50]))
    def create(self, req, srv, rounds, value, n, payment, cap):
        def go():
            self.tasks.append(self.fc.as_account(req).create_task(
                srv.address, [c.address for c in CLIENTS[:n]], rounds, value, accept_window=300, payment=payment,
                max_data_cost=cap, **TASK).task_id)
        self._try("create", go)

    @rule(data=st.data(), who=st.sampled_from(SERVERS))
    def accept(self, data, who):
        self._try("accept", lambda: self.fc.as_account(who).accept_task(self._task(data)))

    @rule(data=st.data(), who=st.sampled_from(CLIENTS), n_k=st.integers(1, 5))
    def register(self, data, who, n_k):
        tid = self._task(data)
        rnd = self.fc.get_task(tid).current_round
        proof = None if tid in self.tasks else []
        # n_k above a task's cap (2) is a rejection the machine must survive with nothing moved
        self._try("register", lambda: self.fc.as_account(who).register_update(tid, rnd, b"\x01" * 32, "l", n_k, proof=proof))

    @rule(data=st.data(), who=st.sampled_from(SERVERS))
    def publish(self, data, who):
        tid = self._task(data)
        rnd = self.fc.get_task(tid).current_round
        self._try("publish", lambda: self.fc.as_account(who).publish_shapley_task(tid, rnd, b"\x02" * 32, "s"))

    @rule(data=st.data(), who=st.sampled_from(MINERS), noise=st.integers(-3, 3), iters=st.integers(1, 2000),
          extra=st.integers(0, 10**16))
    def commit(self, data, who, noise, iters, extra):
        tid = self._task(data)
        t = self.fc.get_task(tid)
        r = self.fc.get_round(tid, t.current_round)
        values = vec([0.1 * (1 + noise * (j % 2)) for j in range(r.registered)])

        def go():
            _, salt = self.fc.as_account(who).commit_vector(tid, t.current_round, values, iters, bond=P.min_bond + extra)
            self.salts[(tid, t.current_round, r.attempt, who.address)] = (values, iters, salt)
        self._try("commit", go)

    @rule(data=st.data(), who=st.sampled_from(MINERS))
    def reveal(self, data, who):
        tid = self._task(data)
        rnd = self.fc.get_task(tid).current_round
        key = (tid, rnd, self.fc.get_round(tid, rnd).attempt, who.address)
        values, iters, salt = self.salts.get(key, ([0], 1, b"\x00" * 32))
        self._try("reveal", lambda: self.fc.as_account(who).reveal(tid, rnd, values, iters, salt))

    @rule(data=st.data(), who=st.sampled_from(EVERYONE))
    def finalize(self, data, who):
        tid = self._task(data)
        rnd = self.fc.get_task(tid).current_round
        self._try("finalize", lambda: self.fc.as_account(who).finalize(tid, rnd))

    @rule(data=st.data(), who=st.sampled_from(CLIENTS))
    def claim(self, data, who):
        tid = self._task(data)
        t = self.fc.get_task(tid)
        rnd = data.draw(st.integers(0, max(t.rounds - 1, 0)))
        if self.fc.round_finalized(tid, rnd) is None or not self.fc.is_registered(tid, rnd, who.address):
            self._try("claim", lambda: self.fc.as_account(who).claim(tid, rnd, 1, []))
            return
        self._try("claim", lambda: self.fc.as_account(who).claim(tid, rnd))

    @rule(data=st.data(), who=st.sampled_from(CLIENTS), to=st.sampled_from(MINERS + REQUESTERS))
    def claim_to(self, data, who, to):
        tid = self._task(data)
        t = self.fc.get_task(tid)
        rnd = data.draw(st.integers(0, max(t.rounds - 1, 0)))
        if self.fc.round_finalized(tid, rnd) is None or not self.fc.is_registered(tid, rnd, who.address):
            return
        sig = self.fc.as_account(who).sign_claim_to(tid, rnd, to.address)
        self._try("claim_to", lambda: self.fc.as_account(MINERS[0]).claim_to(tid, rnd, who.address, to.address, sig))

    @rule(data=st.data(), who=st.sampled_from(EVERYONE))
    def reclaim(self, data, who):
        tid = self._task(data)
        rnd = data.draw(st.integers(0, 1))
        self._try("reclaim", lambda: self.fc.as_account(who).reclaim_expired(tid, rnd))

    @rule(data=st.data())
    def flood(self, data):
        """Fill the current attempt with minimum-bond Sybils, then displace the smallest."""
        self.flood_task(self._task(data))

    def flood_task(self, tid):
        if tid not in self.tasks:
            return
        t = self.fc.get_task(tid)
        r = self.fc.get_round(tid, t.current_round)
        if r.status != 1:
            return
        need = self.fc.commit_cap(r.registered) - r.commit_count
        for _ in range(need):
            s = Account.create()
            self.extra.append(s.address)
            self.w3.provider.make_request("anvil_setBalance", [s.address, hex(10**18)])
            self._try("sybil", lambda s=s: self.fc.as_account(s).commit(tid, t.current_round, b"\x09" * 32))
        self._try("displace", lambda: self.fc.as_account(MINERS[3]).commit(tid, t.current_round, b"\x07" * 32,
                                                                          bond=3 * P.min_bond))

    @rule(who=st.sampled_from(EVERYONE))
    def withdraw(self, who):
        self._try("withdraw", lambda: self.fc.as_account(who).withdraw())

    @rule(data=st.data(), who=st.sampled_from(EVERYONE))
    def refund(self, data, who):
        tid = self._task(data)
        self._try("refund", lambda: self.fc.as_account(who).refund_unaccepted(tid))
        self._try("stalled", lambda: self.fc.as_account(who).refund_stalled(tid))

    @rule(data=st.data(), reveal_mask=st.lists(st.booleans(), min_size=3, max_size=3), spread=st.integers(0, 5),
          finish=st.booleans(), flood=st.booleans())
    def whole_round(self, data, reveal_mask, spread, finish, flood):
        """Drive the current round of a task to its reveal deadline in one step (so random
        runs reach finalize, claims and re-opens often)."""
        if not self.tasks:
            self.create(REQUESTERS[0], SERVERS[0], 2, 10**18, 3)
        tid = self._task(data)
        if tid not in self.tasks:
            return
        t = self.fc.get_task(tid)
        if t.status == 1:
            srv = next(a for a in SERVERS if a.address == t.server)
            self._try("accept", lambda: self.fc.as_account(srv).accept_task(tid))
        rnd = self.fc.get_task(tid).current_round
        for c in CLIENTS[: t.client_count]:
            if not self.fc.is_registered(tid, rnd, c.address):
                self._try("register", lambda c=c: self.fc.as_account(c).register_update(tid, rnd, b"\x01" * 32, "l", 2))
        self.publish_as(tid, rnd, next(a for a in SERVERS if a.address == t.server))
        if flood:
            self.flood_task(tid)
        r = self.fc.get_round(tid, rnd)
        for i, m in enumerate(MINERS[:3]):
            values = vec([0.1 + 0.05 * spread * i * (j % 2) for j in range(r.registered)])  # spread: slashing

            def go(m=m, values=values):
                _, salt = self.fc.as_account(m).commit_vector(tid, rnd, values, 10 + i, bond=(3 + i) * P.min_bond)
                self.salts[(tid, rnd, r.attempt, m.address)] = (values, 10 + i, salt)
            self._try("commit", go)
        self.wait(101)
        for i, m in enumerate(MINERS[:3]):
            if reveal_mask[i]:
                self.reveal_as(tid, rnd, m)
        self.wait(101)
        if finish:
            self._try("finalize", lambda: self.fc.as_account(REQUESTERS[1]).finalize(tid, rnd))
            fin = self.fc.round_finalized(tid, rnd)
            if fin is not None:
                for c in CLIENTS[: t.client_count]:
                    if self.fc.is_registered(tid, rnd, c.address) and fin["amounts"][
                            self.fc.registered_clients(tid, rnd).index(c.address)]:
                        sig = self.fc.as_account(c).sign_claim_to(tid, rnd, MINERS[3].address)
                        self._try("claim_to", lambda c=c, sig=sig: self.fc.as_account(SERVERS[1]).claim_to(
                            tid, rnd, c.address, MINERS[3].address, sig))
                        break

    def publish_as(self, tid, rnd, srv):
        self._try("publish", lambda: self.fc.as_account(srv).publish_shapley_task(tid, rnd, b"\x02" * 32, "s"))

    def reveal_as(self, tid, rnd, who):
        key = (tid, rnd, self.fc.get_round(tid, rnd).attempt, who.address)
        values, iters, salt = self.salts.get(key, ([0], 1, b"\x00" * 32))
        self._try("reveal", lambda: self.fc.as_account(who).reveal(tid, rnd, values, iters, salt))

    @rule(seconds=st.sampled_from([30, 101, 301, 86400 + 1, 5 * 86400]))
    def wait(self, seconds):
        self.w3.provider.make_request("evm_increaseTime", [seconds])
        self.w3.provider.make_request("evm_mine", [])

    @invariant()
    def balance_equals_what_is_owed(self):
        fc = self.fc
        totals = fc.totals()
        assert fc.balance() == sum(totals.values()) == fc.liabilities()
        tasks = [fc.get_task(t) for t in range(1, fc.task_count() + 1)]
        assert totals["totalEscrow"] == sum(t.escrow for t in tasks)
        assert totals["totalUnclaimed"] == sum(t.unclaimed for t in tasks)
        assert totals["totalBonds"] == sum(t.bonds for t in tasks)
        for i, t in enumerate(tasks, start=1):
            assert t.unclaimed == sum(fc.get_round(i, r).unclaimed for r in range(t.rounds))
        assert totals["totalCredits"] == sum(fc.credits(a.address) for a in EVERYONE) + sum(
            fc.credits(x) for x in set(self.extra))


def test_money_is_conserved_under_random_lifecycles(env):
    w3, fc, _ = env
    run_state_machine_as_test(
        lambda: Lifecycle(w3, fc),
        settings=settings(max_examples=8, stateful_step_count=30, deadline=None, derandomize=True,
                          suppress_health_check=list(HealthCheck)),
    )
    seen = {o for run in OUTCOMES for o in run}
    # the random runs reached the deep states, not only rejections
    want = {"create", "accept", "register", "publish", "commit", "reveal", "finalize"}
    assert want <= seen, sorted(want - seen)


class _Scripted:
    """Feeds fixed draws to the machine's rules (``data.draw`` returns the next scripted value)."""

    def __init__(self, *values):
        self.values = list(values)

    def draw(self, _strategy):
        return self.values.pop(0)


def test_money_is_conserved_through_every_new_rule(env):
    """The same machine and invariant, driven through a fixed path that visits each robust rule:
    a flooded attempt and a displacement, slashing (spread), a forfeit (no reveal), claimTo,
    expiry and reclaim, a re-open, and a stalled refund."""
    w3, fc, _ = env
    m = Lifecycle(w3, fc)
    try:
        steps = [
            lambda: m.create(REQUESTERS[0], SERVERS[0], 2, 10**18, 3, 1, 50),  # data-cost
            lambda: m.whole_round(_Scripted(1), [True, True, False], 5, True, True),  # flood, slash, forfeit
            lambda: m.whole_round(_Scripted(1), [True, True, True], 0, True, False),  # claimTo; task completes
            lambda: m.wait(86400 + 1),
            lambda: m.reclaim(_Scripted(1, 0), REQUESTERS[1]),
            lambda: m.create(REQUESTERS[1], SERVERS[1], 2, 10**17 + 3, 2, 2, 50),  # data-cost-gated
            lambda: m.whole_round(_Scripted(2), [True, False, False], 5, True, False),  # re-open (or settle)
            lambda: m.wait(5 * 86400),
            lambda: m.refund(_Scripted(2), CLIENTS[0]),  # stalled
            lambda: m.withdraw(MINERS[3]),
            lambda: m.withdraw(REQUESTERS[0]),
        ]
        for step in steps:
            step()
            m.balance_equals_what_is_owed()
        seen = set(m.outcomes)
        assert {"sybil", "displace", "claim_to", "reclaim", "finalize", "stalled"} <= seen, sorted(seen)
    finally:
        m.teardown()


# ---------------------------------------------------------------------------------- FLChain

from fedcoin.flchain.binding import FLChain, FLChainParams  # noqa: E402
from round_driver import new_task, play_round  # noqa: E402

FLP = FLChainParams()
D = FLP.min_deposit
PRICE = 10**18 + 7  # odd: every sale leaves dust for the lister
SERVER_DEPOSIT = 2 * D  # frozen in both tasks; the traffic never touches it
FL_POOL_EXTRA, FL_BUYERS, FL_AUTH = ACC[14:17], ACC[25:28], ACC[30]
_FL_BINDINGS: dict = {}


def _flchain_market(w3, fc, a):
    """FLChain beside ``fc`` with one model on sale: a completed one-round task whose three
    clients joined (each d + 1 deposited, d frozen) and whose round is recorded; and a second
    task, never accepted, that requires trainers (they may join it, and release after its refund)."""
    flc = FLChain.deploy(w3, a.requester, fedcoin=fc.address, auth=FL_AUTH.address, params=FLP)
    done = new_task(fc, a, rounds=1, value=10**18)
    flc.as_account(a.requester).require_trainers(done, D)
    flc.as_account(a.server).register(b"\x03" * 32, "local:s", value=SERVER_DEPOSIT)
    flc.as_account(a.server).join(done)  # the server's deposit goes at stake before the trainers'
    for c in a.clients:
        flc.as_account(c).register(b"\x01" * 32, "local:d", value=D + 1)
        flc.as_account(c).join(done)
    fc.as_account(a.server).accept_task(done)
    play_round(w3, fc, a, done, 0, [vec([0.4, 0.1, 0.2])] * 2, [10, 10])
    fc.as_account(a.outsider).finalize(done, 0)
    flc.record_round(fc, done, 0)
    flc.as_account(a.server).list_model(done, PRICE, b"\x02" * 32, "local:m")
    later = new_task(fc, a, rounds=1, value=10**18, accept_window=300)
    flc.as_account(a.requester).require_trainers(later, D)
    flc.as_account(a.server).join(later)
    return flc, done, later


class Trading:
    """Random registry and marketplace traffic on FLChain, checked against a Python mirror:
    each call must succeed exactly when the mirror says it may, and after every step the
    contract's buckets equal the mirror's (bonds = Σ deposits, credits = Σ credits, unclaimed =
    Σ sales' trainer shares not yet claimed) and its balance equals what it owes. The actions
    are drawn uniformly from :data:`ACTIONS`, 30 per example, by a Random seeded by hypothesis
    (reported on failure): at this example budget, hypothesis 6.27's RuleBasedStateMachine runs
    last a few steps and its own lists and Randoms repeat their simplest element, too little to
    reach a release or a claim."""

    def __init__(self, w3, fc, a, flc, done, later):
        self.w3, self.fc, self.a, self.flc, self.done, self.later = w3, fc, a, flc, done, later
        self.snap = snapshot(w3)
        self.pool = [*a.clients, *FL_POOL_EXTRA]
        self.dep = {c.address: [D + 1, D] if c in a.clients else None for c in self.pool}  # [deposit, frozen]
        self.joined = {(done, c.address): False for c in a.clients}  # (task, trainer) -> released
        self.credits = {x.address: flc.credits(x.address) for x in [*self.pool, *FL_BUYERS, a.server]}
        ev = flc.listing(0).args
        self.share = dict(zip(ev["trainers"], ev["amounts"]))
        self.dust, self.sales, self.bought, self.claimed = ev["dust"], 0, set(), {}
        self.refunded = False
        self.outcomes: list[str] = []

    def teardown(self):
        revert(self.w3, self.snap)

    def _expect(self, label, ok, fn):
        try:
            fn()
            got = True
        except ContractRevert as e:
            assert e.name.startswith(("FLChain", "FedCoin")), e  # a custom error, never a panic
            got = e.name
        assert (got is True) == ok, (label, got)
        self.outcomes.append(label if got is True else f"{label}!{got}")
        return ok

    def _t(self, who):
        if who.address not in _FL_BINDINGS:  # building a binding costs more than the call
            _FL_BINDINGS[who.address] = self.flc.as_account(who)
        return _FL_BINDINGS[who.address]

    def register(self, who, value):
        if self._expect("register", self.dep[who.address] is None and value >= D,
                        lambda: self._t(who).register(b"\x03" * 32, "local:r", value=value)):
            self.dep[who.address] = [value, 0]

    def add_deposit(self, who, value):
        if self._expect("add", self.dep[who.address] is not None and value > 0,
                        lambda: self._t(who).add_deposit(value)):
            self.dep[who.address][0] += value

    def withdraw_deposit(self, who, pick):
        d = self.dep[who.address]
        free = 0 if d is None else d[0] - d[1]
        amount = {"1": 1, "half": D // 2, "d": D, "free": free}[pick]
        ok = d is not None and 0 < amount <= free and (d[0] - amount == 0 or d[0] - amount >= D)
        if self._expect("withdrawDeposit", ok, lambda: self._t(who).withdraw_deposit(amount)):
            d[0] -= amount
            self.credits[who.address] += amount

    def join(self, who, later):
        tid = self.later if later else self.done
        d = self.dep[who.address]
        ok = later and not self.refunded and d is not None and (tid, who.address) not in self.joined \
            and d[0] - d[1] >= D
        if self._expect("join", ok, lambda: self._t(who).join(tid)):
            d[1] += D
            self.joined[(tid, who.address)] = False

    def release(self, who, later):
        tid = self.later if later else self.done
        ok = (not later or self.refunded) and self.joined.get((tid, who.address)) is False
        if self._expect("release", ok, lambda: self._t(who).release(tid)):
            self.dep[who.address][1] -= D
            self.joined[(tid, who.address)] = True

    def wait_and_refund(self, seconds):
        self.w3.provider.make_request("evm_increaseTime", [seconds])
        self.w3.provider.make_request("evm_mine", [])
        if not self.refunded:
            try:
                self.fc.as_account(self.a.outsider).refund_unaccepted(self.later)
                self.refunded = True
            except ContractRevert as e:
                assert e.name == "FedCoinAcceptDeadlineNotPassed", e

    def buy(self, who, exact):
        ok = exact and who.address not in self.bought
        if self._expect("buy", ok, lambda: self._t(who).buy(0, value=PRICE if exact else PRICE - 1)):
            self.bought.add(who.address)
            self.sales += 1
            self.credits[self.a.server.address] += self.dust

    def claim(self, who):
        amount = self.share.get(who.address, 0)
        owed = amount * self.sales - self.claimed.get(who.address, 0)
        if who.address not in self.share:
            call = lambda: self._t(who)._transact("claimSales", 0, 1, [])  # noqa: E731
        else:
            call = lambda: self._t(who).claim_sales(0)  # noqa: E731
        if self._expect("claim", owed > 0, call):
            self.claimed[who.address] = amount * self.sales

    def withdraw(self, pick):
        """The ``pick``-th account that is owed something (any account when none is)."""
        everyone = [*self.pool, *FL_BUYERS, self.a.server]
        owed = [x for x in everyone if self.credits[x.address]]
        who = (owed or everyone)[pick % len(owed or everyone)]
        if self._expect("withdraw", self.credits[who.address] > 0, lambda: self._t(who).withdraw()):
            self.credits[who.address] = 0

    def buckets_equal_the_mirror(self):
        flc = self.flc
        tot = flc.totals()
        assert flc.balance() == sum(tot.values()) == flc.liabilities()
        unclaimed = sum(amt * self.sales for amt in self.share.values()) - sum(self.claimed.values())
        assert tot == {"totalEscrow": 0, "totalUnclaimed": unclaimed, "totalCredits": sum(self.credits.values()),
                       "totalBonds": SERVER_DEPOSIT + sum(d[0] for d in self.dep.values() if d is not None)}


_TRAINERS = ACC[2:5] + FL_POOL_EXTRA
#: The Trading machine's actions: method name -> argument -> the values it may take.
ACTIONS = {
    "register": {"who": _TRAINERS, "value": [D - 1, D, D + 7, 3 * D]},
    "add_deposit": {"who": _TRAINERS, "value": [0, 1, D // 3]},
    "withdraw_deposit": {"who": _TRAINERS, "pick": ["1", "half", "d", "free"]},
    "join": {"who": _TRAINERS, "later": [False, True]},
    "release": {"who": _TRAINERS, "later": [False, True]},
    "wait_and_refund": {"seconds": [30, 301]},
    "buy": {"who": FL_BUYERS, "exact": [False, True]},
    "claim": {"who": _TRAINERS},
    "withdraw": {"pick": list(range(8))},
}


def _actions(rnd, n):
    """``n`` actions chosen uniformly by ``rnd``."""
    out = []
    for _ in range(n):
        name = rnd.choice(sorted(ACTIONS))
        out.append((name, {k: rnd.choice(v) for k, v in ACTIONS[name].items()}))
    return out


def test_flchain_money_is_conserved_under_random_trading(env):
    """The Trading machine, first along a fixed path through every action's success (a
    register, a top-up, partial withdrawals, a join, a refund and both releases, sales, claims
    and the withdrawals), then on random action lists."""
    w3, fc, a = env
    _FL_BINDINGS.clear()
    assert a.server == ACC[1] and a.clients == ACC[2:5]
    flc, done, later = _flchain_market(w3, fc, a)
    x, c0, b0 = FL_POOL_EXTRA[0], a.clients[0], FL_BUYERS[0]
    m = Trading(w3, fc, a, flc, done, later)
    try:
        path = [("register", x, 3 * D), ("add_deposit", x, D // 3), ("withdraw_deposit", x, "d"), ("join", x, True),
                ("withdraw_deposit", x, "free"), ("wait_and_refund", 301), ("release", x, True),
                ("release", c0, False), ("buy", b0, True), ("buy", b0, True), ("claim", c0), ("claim", c0),
                ("buy", FL_BUYERS[1], True), ("claim", c0), ("withdraw", 0), ("withdraw", 0),
                ("withdraw_deposit", x, "free"), ("withdraw", 0)]
        for name, *args in path:
            getattr(m, name)(*args)
            m.buckets_equal_the_mirror()
        want = {"register", "add", "withdrawDeposit", "join", "release", "buy", "buy!FLChainAlreadyBought", "claim",
                "claim!FLChainNothingToClaim", "withdraw"}
        assert want <= set(m.outcomes), sorted(want - set(m.outcomes))
        assert flc.totals()["totalCredits"] == 0 and flc.get_trainer(x.address).deposit == 0
    finally:
        m.teardown()
    runs: list[list[str]] = []

    @settings(max_examples=5, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
    @given(seed=st.integers(0, 2**32 - 1))
    def random_runs(seed):
        actions = _actions(random.Random(seed), 30)
        r = Trading(w3, fc, a, flc, done, later)
        runs.append(r.outcomes)
        try:
            for name, kw in actions:
                getattr(r, name)(**kw)
                r.buckets_equal_the_mirror()
        finally:
            r.teardown()

    random_runs()
    seen = {o for run in runs for o in run}
    assert {"register", "buy", "claim", "withdraw"} <= seen, sorted(seen)
