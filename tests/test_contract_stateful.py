"""Stateful property test: random lifecycle actions by random actors (hypothesis.stateful,
with evm_snapshot/evm_revert around each run), the robust rules included — displacement of a
full attempt, slashing, forfeits, claimTo, claim expiry and stalled refunds. After every step the
contract's balance equals everything it owes: escrow + unclaimed client payouts + pull-ledger
credits + bonds, and each of those sums equals the per-task / per-round / per-account figures it
aggregates."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, settings, strategies as st
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
