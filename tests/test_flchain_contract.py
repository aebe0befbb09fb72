"""FLChain on a real Anvil beside a real FedCoin: the registry and its deposits, a task that
requires trainers, misbehaviour reports and their payouts (Table IV, with the attacks a report
must withstand), reliability, the marketplace and its Merkle claims, the federation's requests
and intentions — each to the wei, with conservation (balance == liabilities) in both contracts
at the end of every test.

Every rejected call is made through :func:`rejected`, which also checks that it left the whole
observable state (both contracts' balances and buckets, every party's ether, credits and trainer
record) unchanged. Run with ``-s`` to see the Table IV figures."""

from __future__ import annotations

from typing import NamedTuple

import pytest
from eth_utils import keccak

from fedcoin.chain import ContractRevert, FedCoin
from fedcoin.chain.types import TaskStatus
from fedcoin.flchain import federation, rules
from fedcoin.flchain.binding import FLChain, FLChainParams, ModelStatus, ReportKind, ReportState, TrainerStatus
from fedcoin.protocol import merkle
from round_driver import Ledger, new_task, play_round
from fedcoin_testkit import ETH, actors, advance, default_params, dev_accounts, vec, w3_for

P = FLChainParams()
D = P.min_deposit
FEE = P.report_fee
ACC = dev_accounts()
#: auth (the paper's AUTH), an independent watcher who files reports, an offender's second address.
AUTH, WATCHER, ALT = ACC[30], ACC[31], ACC[32]
BUYERS = ACC[33:37]
OUTSIDER = ACC[37]  # never registers anywhere

#: A round's spec as far as FLChain reads it: its keccak is published, and it excludes client 2
#: for a reason the miners verify themselves.
SPEC = b'{"excluded":[{"client":"0x00","index":2,"reason":"non-finite"}],"x":1}'
#: The same exclusion for the one reason only the server can see (its word, not evidence).
SPEC_UNAVAILABLE = b'{"excluded":[{"client":"0x00","index":2,"reason":"unavailable"}],"x":1}'
#: Two exclusions (2 verified, 3 unavailable): evidence for index 3 must not be read at index 2's spot.
SPEC_TWO = (b'{"excluded":[{"client":"0x00","index":2,"reason":"norm"},'
            b'{"client":"0x01","index":3,"reason":"unavailable"}]}')
#: Shapley vector of a round that excludes client 2 (0 there), all others included.
S = [0.40, 0.10, 0.0, 0.20]
#: The marketplace task's two rounds (no exclusions): reliabilities differ after them.
S0 = [0.40, -0.05, 0.10, 0.25]
S1 = [0.30, 0.10, -0.02, 0.20]
PRICE = 10**18 + 7  # odd: the split leaves dust


_BINDINGS: dict = {}


class _Cached:
    """A binding whose ``as_account`` is built once per (contract, account): building one costs
    an ABI parse and RPC round trips, and these tests switch accounts on almost every call."""

    def as_account(self, account):
        key = (type(self).__name__, self.address, getattr(account, "address", None))
        if key not in _BINDINGS:
            _BINDINGS[key] = super().as_account(account)
        return _BINDINGS[key]


class CachedFedCoin(_Cached, FedCoin):
    pass


class CachedFLChain(_Cached, FLChain):
    pass


class FLEnv(NamedTuple):
    w3: object
    fc: FedCoin
    a: object
    flc: FLChain


@pytest.fixture(scope="module")
def env(anvil):
    """One FedCoin and one FLChain for the module (deployed before the first test's snapshot)."""
    w3 = w3_for(anvil)
    a = actors(n_clients=4, n_miners=2)
    fc = CachedFedCoin.deploy(w3, a.requester, default_params())
    flc = CachedFLChain.deploy(w3, a.requester, fedcoin=fc.address, auth=AUTH.address, params=P)
    return FLEnv(w3, fc, a, flc)


@pytest.fixture(autouse=True)
def _conservation(env):
    """Every test's end state: balance == liabilities in both contracts."""
    yield
    _conserved(env)


def _conserved(env):
    for c in (env.fc, env.flc):
        assert c.balance() == c.liabilities() == sum(c.totals().values()), type(c).__name__
    assert env.flc.totals()["totalEscrow"] == 0


# ---------------------------------------------------------------------------------- helpers


def T(env, who) -> FLChain:
    return env.flc.as_account(who)


def people(env):
    a = env.a
    return [a.requester, a.server, *a.clients, *a.miners, a.outsider, AUTH, WATCHER, ALT, *BUYERS, OUTSIDER]


def state(env) -> dict:
    """What a rejected call must leave unchanged. Anvil mines every transaction in its own
    block, so an unchanged head block means no transaction landed (no gas paid, no ether, credit
    or record moved); FLChain's and FedCoin's balances and buckets are compared besides."""
    flc, fc, w3 = env.flc, env.fc, env.w3
    head = w3.eth.get_block("latest")
    return {"head": (head["number"], head["hash"]), "flc": (flc.balance(), flc.liabilities()), "fc": fc.balance()}


def rejected(env, error: str, call) -> ContractRevert:
    """``call()`` reverts with the custom error ``error`` and changes nothing."""
    before = state(env)
    with pytest.raises(ContractRevert) as info:
        call()
    assert info.value.name == error, str(info.value)
    assert state(env) == before
    return info.value


def register(env, who, value=D):
    return T(env, who).register(keccak(b"data:" + who.address.encode()), f"local:{who.address}", value=value)


def server_joins(env, tid):
    """The task's server freezes the requirement first (trainers can join only after it); it
    registers once with a deposit large enough for every task of the module."""
    flc, server = env.flc, env.a.server
    if flc.get_trainer(server.address).status == TrainerStatus.NONE:
        T(env, server).register(keccak(b"server"), "local:server", value=100 * D)
    T(env, server).join(tid)


def new_flc_task(env, *, rounds=1, required=D, joiners=None, accept=True):
    """A FedCoin task (all four clients listed) requiring ``required`` frozen per trainer; each of
    ``joiners`` (default: every client) registered if needed and joined. Returns its id."""
    w3, fc, a, flc = env
    tid = new_task(fc, a, rounds=rounds, value=ETH)
    if required:
        T(env, a.requester).require_trainers(tid, required)
        server_joins(env, tid)
    for c in (a.clients if joiners is None else joiners):
        if flc.get_trainer(c.address).status == TrainerStatus.NONE:
            register(env, c, value=max(D, required))
        T(env, c).join(tid)
    if accept:
        fc.as_account(a.server).accept_task(tid)
    return tid


def play(env, tid, rnd, s, *, excluded=(), spec=SPEC, finalize=True):
    """Both miners reveal ``s`` (so the centre is ``vec(s)``); then finalize."""
    w3, fc, a, _ = env
    play_round(w3, fc, a, tid, rnd, [vec(s), vec(s)], [10, 10], excluded=excluded, spec_hash=keccak(spec))
    if finalize:
        fc.as_account(a.outsider).finalize(tid, rnd)


def regs(env, tid, rnd):
    ev = env.fc.registrations(tid, rnd)
    return [e.args["client"] for e in ev], [int(e.args["dataCost"]) for e in ev]


def raw_report(env, who, tid, rnd, index, spec, at, *, clients=None, costs=None, value=FEE):
    c, n = regs(env, tid, rnd)
    return T(env, who)._transact("reportInvalidUpdate", tid, rnd, index, c if clients is None else clients,
                                 n if costs is None else costs, spec, at, value=value)


def offence_task(env, spec=SPEC, *, s=S, excluded=(2,), **kw):
    """A one-round task, every client joined, whose finalized round excluded client 2."""
    tid = new_flc_task(env, **kw)
    play(env, tid, 0, s, excluded=excluded, spec=spec)
    return tid


def wealth(env, addr) -> int:
    """Ether plus everything FLChain holds for ``addr`` (its deposit and its credit)."""
    return env.w3.eth.get_balance(addr) + env.flc.get_trainer(addr).deposit + env.flc.credits(addr)


class Book(Ledger):
    """:class:`Ledger` that also tallies each account's gas, so a party's net (its wealth
    change, gas added back) can be stated exactly."""

    def __init__(self, env, accounts):
        super().__init__(env.w3, accounts)
        self.env = env
        self.gas = {a.address: 0 for a in accounts}
        self.w0 = {a.address: wealth(env, a.address) for a in accounts}

    def tx(self, who, res, value=0):
        if who.address in self.gas:
            self.gas[who.address] += res.fee
        return super().tx(who, res, value)

    def withdraw_all(self, who):
        amount = self.env.flc.credits(who.address)
        if amount:
            self.tx(who, T(self.env, who).withdraw())
            self.receive(who, amount)
        return amount

    def net(self, who) -> int:
        return wealth(self.env, who.address) - self.w0[who.address] + self.gas[who.address]


def table(title, rows):
    print(f"\n{title}")
    for party, amount in rows:
        print(f"  {party:<40} {amount:>+26d} wei  ({amount / ETH:+.6f} ETH)")


def trainer_rely(env, addr) -> int:
    t = env.flc.get_trainer(addr)
    return rules.reliability(t.rounds, t.positive, t.eval_count, t.eval_sum, t.upheld)


# ---------------------------------------------------------------------------------- registry


def test_register_records_the_trainer_its_deposit_and_the_bond_bucket(env):
    w3, fc, a, flc = env
    c = a.clients[0]
    dh = keccak(b"mnist shard 0")
    rejected(env, "FLChainBadDeposit", lambda: T(env, c).register(dh, "local:x", value=D - 1))
    rejected(env, "FLChainBadDeposit", lambda: T(env, c).register(dh, "local:x", value=0))
    bonds = flc.totals()["totalBonds"]
    res = T(env, c).register(dh, "local:0xdesc", value=2 * D + 1)
    rec, dep = res.event("TrainerRecord").args, res.event("DepositChanged").args
    assert rec == {"trainer": c.address, "version": 1, "prevHeight": 0, "dataHash": dh, "dataLocator": "local:0xdesc"}
    assert dep == {"trainer": c.address, "deposit": 2 * D + 1, "frozen": 0}
    t = flc.get_trainer(c.address)
    assert (t.status, t.available, t.version, t.epoch, t.deposit, t.frozen) == (TrainerStatus.QUALIFIED, True, 1, 0,
                                                                               2 * D + 1, 0)
    assert (t.height, t.prev_height, t.data_hash) == (res.receipt["blockNumber"], 0, dh)
    assert (t.rounds, t.positive, t.upheld, t.models, t.eval_count, t.eval_sum) == (0,) * 6
    assert flc.totals()["totalBonds"] == bonds + 2 * D + 1 and flc.credits(c.address) == 0
    assert flc.reliability(c.address) == rules.reliability(0, 0, 0, 0, 0) == 300_000
    rejected(env, "FLChainAlreadyRegistered", lambda: T(env, c).register(dh, "local:x", value=D))


def test_update_record_chains_versions_and_availability_toggles(env):
    w3, fc, a, flc = env
    c = a.clients[1]
    h1 = register(env, c).receipt["blockNumber"]
    advance(w3, 1)
    r2 = T(env, c).update_record(keccak(b"v2"), "local:v2")
    h2 = r2.receipt["blockNumber"]
    assert r2.event("TrainerRecord").args == {"trainer": c.address, "version": 2, "prevHeight": h1,
                                              "dataHash": keccak(b"v2"), "dataLocator": "local:v2"}
    r3 = T(env, c).update_record(keccak(b"v3"), "local:v3")
    t = flc.get_trainer(c.address)
    assert (t.version, t.prev_height, t.height, t.data_hash) == (3, h2, r3.receipt["blockNumber"], keccak(b"v3"))
    assert h1 < h2 < t.height
    assert T(env, c).set_available(False).event("AvailabilitySet").args == {"trainer": c.address, "available": False}
    assert flc.get_trainer(c.address).available is False
    T(env, c).set_available(True)
    assert flc.get_trainer(c.address).available is True
    assert flc.get_trainer(c.address).deposit == D  # the record moved, the money did not
    for call in (lambda o: o.update_record(keccak(b"x"), "x"), lambda o: o.set_available(False),
                 lambda o: o.add_deposit(D), lambda o: o.withdraw_deposit(1)):
        rejected(env, "FLChainNotTrainer", lambda: call(T(env, OUTSIDER)))


def test_deposit_top_up_freeze_and_withdrawal_to_the_wei(env):
    w3, fc, a, flc = env
    c = a.clients[0]
    L = Book(env, [c])
    L.tx(c, register(env, c), D)
    r = L.tx(c, T(env, c).add_deposit(D // 2), D // 2)
    assert r.event("DepositChanged").args == {"trainer": c.address, "deposit": D + D // 2, "frozen": 0}
    rejected(env, "FLChainBadDeposit", lambda: T(env, c).add_deposit(0))
    tid = new_flc_task(env, required=D, joiners=[], accept=False)
    L.tx(c, T(env, c).join(tid))
    assert flc.get_trainer(c.address).frozen == D
    # only the free half moves, and what stays is 0 or at least d
    rejected(env, "FLChainDepositFrozen", lambda: T(env, c).withdraw_deposit(D // 2 + 1))
    rejected(env, "FLChainDepositFrozen", lambda: T(env, c).withdraw_deposit(0))
    L.tx(c, T(env, c).withdraw_deposit(D // 4))
    assert flc.get_trainer(c.address).deposit == D + D // 4 and flc.credits(c.address) == D // 4
    advance(w3, 3700)  # past the acceptance deadline: the task is refunded, the freeze released
    fc.as_account(a.outsider).refund_unaccepted(tid)
    L.tx(c, T(env, c).release(tid))
    rejected(env, "FLChainBadDeposit", lambda: T(env, c).withdraw_deposit(D // 2))  # would leave 0.75 d
    res = L.tx(c, T(env, c).withdraw_deposit(D + D // 4))
    assert res.event("DepositChanged").args == {"trainer": c.address, "deposit": 0, "frozen": 0}
    assert flc.credits(c.address) == D + D // 2
    assert L.withdraw_all(c) == D + D // 2
    L.check()
    assert L.net(c) == 0 and w3.eth.get_balance(c.address) == L.start[c.address] - L.gas[c.address]
    assert flc.get_trainer(c.address).status == TrainerStatus.QUALIFIED  # registered, with nothing staked
    rejected(env, "FLChainDepositFrozen", lambda: T(env, c).withdraw_deposit(1))
    rejected(env, "FedCoinNothingToWithdraw", lambda: T(env, c).withdraw())


# ---------------------------------------------------------------------------------- task requirement


def test_require_trainers_only_by_the_requester_once_and_before_acceptance(env):
    w3, fc, a, flc = env
    tid = new_task(fc, a, rounds=1, value=ETH)
    rejected(env, "FLChainNotRequester", lambda: T(env, a.server).require_trainers(tid, D))
    rejected(env, "FLChainBadDeposit", lambda: T(env, a.requester).require_trainers(tid, D - 1))
    register(env, a.clients[0])
    rejected(env, "FLChainNoRequirement", lambda: T(env, a.clients[0]).join(tid))
    res = T(env, a.requester).require_trainers(tid, D)
    assert res.event("TrainersRequired").args == {"taskId": tid, "minDeposit": D, "request": 0}
    assert flc.required_deposit(tid) == D
    rejected(env, "FLChainRequirementSet", lambda: T(env, a.requester).require_trainers(tid, 2 * D))
    other = new_task(fc, a, rounds=1, value=ETH)
    fc.as_account(a.server).accept_task(other)
    rejected(env, "FLChainWrongTaskStatus", lambda: T(env, a.requester).require_trainers(other, D))
    assert flc.required_deposit(other) == 0


def test_join_freezes_the_requirement_and_release_returns_it_after_the_task(env):
    w3, fc, a, flc = env
    c = a.clients[0]
    register(env, c, value=3 * D)
    tid = new_flc_task(env, required=2 * D, joiners=[], accept=False)
    res = T(env, c).join(tid)
    assert res.event("Joined").args == {"taskId": tid, "trainer": c.address, "amount": 2 * D}
    j = flc.get_join(tid, c.address)
    assert (j.amount, j.joined_at, j.epoch, j.released) == (2 * D, res.receipt["blockNumber"], 0, False)
    assert flc.joined_at(tid, c.address) == res.receipt["blockNumber"]
    t = flc.get_trainer(c.address)
    assert (t.deposit, t.frozen) == (3 * D, 2 * D)
    rejected(env, "FLChainAlreadyJoined", lambda: T(env, c).join(tid))
    second = new_flc_task(env, required=2 * D, joiners=[], accept=False)
    rejected(env, "FLChainDepositFrozen", lambda: T(env, c).join(second))  # 1 d free, 2 d needed
    rejected(env, "FLChainNotTrainer", lambda: T(env, OUTSIDER).join(tid))
    rejected(env, "FLChainWrongTaskStatus", lambda: T(env, c).release(tid))  # Created
    fc.as_account(a.server).accept_task(tid)
    rejected(env, "FLChainWrongTaskStatus", lambda: T(env, c).release(tid))  # Accepted
    play(env, tid, 0, S0)
    assert fc.get_task(tid).status == TaskStatus.COMPLETED
    rejected(env, "FLChainWrongTaskStatus", lambda: T(env, c).join(tid))
    res = T(env, c).release(tid)
    assert res.event("Released").args == {"taskId": tid, "trainer": c.address, "amount": 2 * D}
    assert flc.get_trainer(c.address).frozen == 0 and flc.get_join(tid, c.address).released
    rejected(env, "FLChainNothingToRelease", lambda: T(env, c).release(tid))
    register(env, a.clients[1])
    rejected(env, "FLChainNothingToRelease", lambda: T(env, a.clients[1]).release(tid))  # never joined
    T(env, c).join(second)  # the freeze is free again
    assert flc.get_trainer(c.address).frozen == 2 * D


def test_a_confiscated_trainer_cannot_release_its_old_freezes(env):
    """The epoch voids every freeze from before a confiscation: after losing its deposit in task
    A, the offender cannot "release" the freeze it made for task B (which would underflow or
    re-open money it no longer has)."""
    w3, fc, a, flc = env
    off = a.clients[2]
    register(env, off, value=2 * D)
    b = new_flc_task(env, required=D, joiners=[off], accept=False)
    tid = offence_task(env)  # every client joins A (the offender freezes its second d)
    assert flc.get_trainer(off.address).frozen == 2 * D
    ev = T(env, WATCHER).report_invalid_update(fc, SPEC, tid, 0, 2).event("ReportDecided").args
    assert ev["confiscated"] == 2 * D  # the whole deposit, not only A's freeze
    t = flc.get_trainer(off.address)
    assert (t.deposit, t.frozen, t.epoch, t.status, t.upheld) == (0, 0, 1, TrainerStatus.SUSPENDED, 1)
    advance(w3, 3700)
    fc.as_account(a.outsider).refund_unaccepted(b)
    rejected(env, "FLChainNothingToRelease", lambda: T(env, off).release(b))
    rejected(env, "FLChainNothingToRelease", lambda: T(env, off).release(tid))
    rejected(env, "FLChainWrongStatus", lambda: T(env, off).add_deposit(D))  # suspended
    c = new_flc_task(env, required=D, joiners=[], accept=False)
    rejected(env, "FLChainWrongStatus", lambda: T(env, off).join(c))
    # the honest trainers of A get their freeze back
    T(env, a.clients[0]).release(tid)
    assert flc.get_trainer(a.clients[0].address).frozen == 0


# ---------------------------------------------------------------------------------- reports: Table IV


def test_table_iv_invalid_update_upheld_pays_reward_compensation_and_rest_to_the_wei(env):
    w3, fc, a, flc = env
    tid = offence_task(env)
    off, honest = a.clients[2], [a.clients[j] for j in (0, 1, 3)]
    L = Book(env, [WATCHER, off, *honest, a.requester])
    res = L.tx(WATCHER, T(env, WATCHER).report_invalid_update(fc, SPEC, tid, 0, 2), FEE)
    reward, each, rest = rules.confiscation(D, P.reward_bps, P.compensation_bps, 3)
    assert res.event("ReportDecided").args == {"reportId": 0, "upheld": True, "confiscated": D, "reward": reward,
                                               "compensation": each, "compensated": 3, "rest": rest}
    assert res.event("ReportFiled").args == {"reportId": 0, "kind": ReportKind.INVALID_UPDATE,
                                             "reporter": WATCHER.address, "accused": off.address,
                                             "taskId": tid, "round": 0, "fee": FEE}
    credited = {e.args["account"]: e.args["amount"] for e in res.events if e.name == "CreditedBy"}
    assert credited == {WATCHER.address: FEE + reward, **{h.address: each for h in honest}, a.requester.address: rest}
    rep = flc.get_report(0)
    assert (rep.kind, rep.state, rep.reporter, rep.accused, rep.task_id, rep.round, rep.fee) == (
        ReportKind.INVALID_UPDATE, ReportState.UPHELD, WATCHER.address, off.address, tid, 0, FEE)
    assert flc.is_problematic(tid)
    for who in (WATCHER, *honest, a.requester):
        L.withdraw_all(who)
    L.check()
    nets = {"honest reporter (fee back + r)": L.net(WATCHER), "misbehaving trainer (loses d)": L.net(off),
            **{f"honest client {j} (cp / 3)": L.net(a.clients[j]) for j in (0, 1, 3)},
            "requester (the rest)": L.net(a.requester)}
    table(f"Table IV, InvalidUpdate upheld (d = {D}, f = {FEE}, r = {P.reward_bps} bps, cp = {P.compensation_bps} bps)",
          nets.items())
    assert L.net(WATCHER) == reward == D * P.reward_bps // 10_000 > 0
    assert L.net(off) == -D
    assert [L.net(h) for h in honest] == [each] * 3 == [D * P.compensation_bps // 10_000 // 3] * 3
    assert L.net(a.requester) == rest
    assert reward + 3 * each + rest == D and sum(nets.values()) == 0
    assert flc.reliability(off.address) == trainer_rely(env, off.address) == rules.reliability(0, 0, 0, 0, 1)


def test_table_iv_a_false_invalid_update_report_costs_the_reporter_its_fee(env):
    w3, fc, a, flc = env
    tid = offence_task(env)
    accused = a.clients[0]  # included in the round: its update was fine
    L = Book(env, [WATCHER, accused, a.requester])
    deposit = flc.get_trainer(accused.address).deposit
    res = L.tx(WATCHER, T(env, WATCHER).report_invalid_update(fc, SPEC, tid, 0, 0), FEE)
    assert res.event("ReportDecided").args == {"reportId": 0, "upheld": False, "confiscated": 0, "reward": 0,
                                               "compensation": 0, "compensated": 0, "rest": 0}
    assert flc.get_report(0).state == ReportState.REJECTED
    for who in (WATCHER, accused, a.requester):
        L.withdraw_all(who)
    L.check()
    table("Table IV, InvalidUpdate rejected (update not excluded)",
          [("false reporter", L.net(WATCHER)), ("accused trainer (gets the fee)", L.net(accused)),
           ("requester", L.net(a.requester))])
    assert (L.net(WATCHER), L.net(accused), L.net(a.requester)) == (-FEE, FEE, 0)
    t = flc.get_trainer(accused.address)
    assert (t.status, t.deposit, t.upheld, t.epoch) == (TrainerStatus.QUALIFIED, deposit, 0, 0)
    assert not flc.is_problematic(tid)


def test_table_iv_unqualified_reports_are_judged_by_auth_alone(env):
    w3, fc, a, flc = env
    bad, good = a.clients[0], a.clients[1]
    register(env, bad, value=D)
    register(env, good, value=D)
    rejected(env, "FLChainNotTrainer", lambda: T(env, WATCHER).report_unqualified(OUTSIDER.address))
    rejected(env, "FLChainBadFee", lambda: T(env, WATCHER).report_unqualified(bad.address, value=FEE - 1))
    L = Book(env, [WATCHER, BUYERS[0], AUTH, bad, good])
    res = L.tx(WATCHER, T(env, WATCHER).report_unqualified(bad.address), FEE)
    assert res.event("ReportFiled").args["kind"] == ReportKind.UNQUALIFIED
    assert flc.get_report(0).state == ReportState.PENDING
    assert flc.credits(AUTH.address) == FEE  # the judge's fee, at once
    rejected(env, "FLChainAlreadyReported", lambda: T(env, BUYERS[0]).report_unqualified(bad.address))
    rejected(env, "FLChainNotAuth", lambda: T(env, a.requester).judge_unqualified(0, True))
    rejected(env, "FLChainNotAuth", lambda: T(env, bad).judge_unqualified(0, False))
    rejected(env, "FLChainReportNotPending", lambda: T(env, AUTH).judge_unqualified(7, True))
    dec = L.tx(AUTH, T(env, AUTH).judge_unqualified(0, True)).event("ReportDecided").args
    reward = D * P.reward_bps // 10_000
    assert dec == {"reportId": 0, "upheld": True, "confiscated": D, "reward": reward, "compensation": 0,
                   "compensated": 0, "rest": D - reward}
    t = flc.get_trainer(bad.address)
    assert (t.status, t.deposit, t.upheld, t.epoch) == (TrainerStatus.UNQUALIFIED, 0, 1, 1)
    assert flc.reliability(bad.address) == rules.reliability(0, 0, 0, 0, 1) == 150_000
    rejected(env, "FLChainReportNotPending", lambda: T(env, AUTH).judge_unqualified(0, True))
    rejected(env, "FLChainReportNotPending", lambda: T(env, AUTH).judge_unqualified(0, False))
    rejected(env, "FLChainWrongStatus", lambda: T(env, BUYERS[0]).report_unqualified(bad.address))
    # the second report is false: auth rejects it, the reporter has lost its fee
    L.tx(BUYERS[0], T(env, BUYERS[0]).report_unqualified(good.address), FEE)
    dec = L.tx(AUTH, T(env, AUTH).judge_unqualified(1, False)).event("ReportDecided").args
    assert dec["upheld"] is False and flc.get_report(1).state == ReportState.REJECTED
    rejected(env, "FLChainReportNotPending", lambda: T(env, AUTH).judge_unqualified(1, True))
    for who in (WATCHER, AUTH):
        L.withdraw_all(who)
    L.check()
    table("Table IV, Unqualified (auth judges; its fee at filing)",
          [("reporter, upheld (r - f)", L.net(WATCHER)), ("unqualified trainer (loses d)", L.net(bad)),
           ("reporter, rejected (- f)", L.net(BUYERS[0])), ("falsely accused trainer", L.net(good)),
           ("auth (2 f + d - r)", L.net(AUTH))])
    assert L.net(WATCHER) == reward - FEE and L.net(bad) == -D
    assert L.net(BUYERS[0]) == -FEE and L.net(good) == 0
    assert L.net(AUTH) == 2 * FEE + D - reward
    assert flc.get_trainer(good.address).status == TrainerStatus.QUALIFIED


def test_a_rejected_unqualified_report_does_not_make_the_trainer_immune(env):
    """Attack: a trainer files a false "unqualified" report against itself from a second
    address; auth rightly rejects it. Had the rejected report kept its key, no one could ever
    report that trainer unqualified again (for the price of one fee), even after it swaps its
    data record for a bad one. A rejected report bars nothing; a pending one bars duplicates."""
    w3, fc, a, flc = env
    t = a.clients[0]
    register(env, t)
    T(env, ALT).report_unqualified(t.address)
    T(env, AUTH).judge_unqualified(0, False)
    T(env, t).update_record(keccak(b"not the data it claims"), "local:bad")
    T(env, WATCHER).report_unqualified(t.address)  # accepted: a new pending report
    assert flc.get_report(1).state == ReportState.PENDING
    rejected(env, "FLChainAlreadyReported", lambda: T(env, BUYERS[0]).report_unqualified(t.address))
    T(env, AUTH).judge_unqualified(1, True)
    assert flc.get_trainer(t.address).status == TrainerStatus.UNQUALIFIED
    assert flc.credits(WATCHER.address) == D * P.reward_bps // 10_000


# ---------------------------------------------------------------------------------- reports: attacks


def test_attack_server_marks_an_honest_update_unavailable(env):
    """Attack (a): the server excludes an honest trainer's update as "unavailable" — a reason
    only it can see — and an accomplice reports it. FLChain reverts with
    FLChainUnverifiedReason: the server's word alone never confiscates a deposit, and the
    accomplice pays nothing."""
    w3, fc, a, flc = env
    tid = offence_task(env, spec=SPEC_UNAVAILABLE)
    assert fc.is_excluded(tid, 0, 2)
    at = rules.exclusion_offset(SPEC_UNAVAILABLE, 2)
    rejected(env, "FLChainUnverifiedReason", lambda: raw_report(env, WATCHER, tid, 0, 2, SPEC_UNAVAILABLE, at))
    rejected(env, "FLChainUnverifiedReason",
             lambda: T(env, WATCHER).report_invalid_update(fc, SPEC_UNAVAILABLE, tid, 0, 2))
    assert flc.report_count() == 0 and not flc.is_problematic(tid)
    assert flc.get_trainer(a.clients[2].address).deposit == D


def test_a_late_joiner_excluded_as_unregistered_keeps_its_deposit(env):
    """A trainer that registered its update before joining the task is excluded for that round
    as "unregistered-trainer" (miners check joinedAt against the registration block). No deposit
    of this task stood behind that update, so reporting the exclusion confiscates nothing:
    FLChainUnverifiedReason, and the deposit stays whole."""
    w3, fc, a, flc = env
    spec = SPEC_UNAVAILABLE.replace(b'"unavailable"', b'"unregistered-trainer"')
    tid = offence_task(env, spec=spec)
    rejected(env, "FLChainUnverifiedReason", lambda: T(env, WATCHER).report_invalid_update(fc, spec, tid, 0, 2))
    assert flc.report_count() == 0 and flc.get_trainer(a.clients[2].address).deposit == D


def test_attack_forged_evidence_wrong_spec_or_offset(env):
    """Attack (b): forged evidence. A spec whose keccak is not the round's is refused
    (FLChainSpecMismatch), and so is the right spec read at the wrong place — past the pattern,
    at another exclusion, past the end (FLChainBadEvidence): the "reason" read is always the
    exclusion of the accused index in the published spec."""
    w3, fc, a, flc = env
    tid = offence_task(env, spec=SPEC_TWO, s=[0.40, 0.10, 0.0, 0.0], excluded=(2, 3))
    forged = SPEC_TWO.replace(b'"index":3,"reason":"unavailable"', b'"index":3,"reason":"norm"')
    at = rules.exclusion_offset(forged, 3)
    rejected(env, "FLChainSpecMismatch", lambda: raw_report(env, WATCHER, tid, 0, 3, forged, at))
    rejected(env, "FLChainSpecMismatch", lambda: raw_report(env, WATCHER, tid, 0, 2, b"", 0))
    at2 = rules.exclusion_offset(SPEC_TWO, 2)
    for bad_at in (at2 + 1, at2 - 1, 0, rules.exclusion_offset(SPEC_TWO, 3), len(SPEC_TWO), 2**64):
        rejected(env, "FLChainBadEvidence", lambda: raw_report(env, WATCHER, tid, 0, 2, SPEC_TWO, bad_at))
    # index 3's true reason is "unavailable": no evidence against it confiscates
    rejected(env, "FLChainUnverifiedReason",
             lambda: raw_report(env, WATCHER, tid, 0, 3, SPEC_TWO, rules.exclusion_offset(SPEC_TWO, 3)))
    raw_report(env, WATCHER, tid, 0, 2, SPEC_TWO, at2)  # the true evidence is upheld
    assert flc.get_report(0).state == ReportState.UPHELD


def test_attack_forged_registration_list(env):
    """Attack (c): a reporter passes a registration list that is not the round's (reordered, a
    client swapped in, forged data costs) so that `index` names someone else. The list is
    checked against the round's registration hash: FLChainClientsMismatch."""
    w3, fc, a, flc = env
    tid = offence_task(env)
    clients, costs = regs(env, tid, 0)
    swapped = [clients[0], clients[2], clients[1], clients[3]]
    for cl, n in ((swapped, costs), (clients[:3], costs[:3]), (clients, [c + 1 for c in costs]),
                  ([clients[0], clients[1], WATCHER.address, clients[3]], costs)):
        rejected(env, "FLChainClientsMismatch",
                 lambda: raw_report(env, WATCHER, tid, 0, 2, SPEC, rules.exclusion_offset(SPEC, 2),
                                    clients=cl, costs=n))
    rejected(env, "FLChainBadIndex", lambda: raw_report(env, WATCHER, tid, 0, 4, SPEC, 0))


def test_attack_report_before_the_round_finalizes(env):
    """Attack (d): reporting an exclusion the server published before the miners' consensus
    finalized it (the server's exclusion list alone is not yet the miners' word):
    FLChainRoundNotFinalized."""
    w3, fc, a, flc = env
    tid = new_flc_task(env)
    play(env, tid, 0, S, excluded=(2,), finalize=False)
    assert fc.is_excluded(tid, 0, 2)
    rejected(env, "FLChainRoundNotFinalized",
             lambda: T(env, WATCHER).report_invalid_update(fc, SPEC, tid, 0, 2))


def test_attack_reporting_the_same_offence_twice(env):
    """Attack (e): collecting the reward twice for one offence (same reporter or another):
    FLChainAlreadyReported; the offender is confiscated once."""
    w3, fc, a, flc = env
    tid = offence_task(env)
    T(env, WATCHER).report_invalid_update(fc, SPEC, tid, 0, 2)
    rejected(env, "FLChainAlreadyReported", lambda: T(env, WATCHER).report_invalid_update(fc, SPEC, tid, 0, 2))
    rejected(env, "FLChainAlreadyReported", lambda: T(env, BUYERS[0]).report_invalid_update(fc, SPEC, tid, 0, 2))
    assert flc.report_count() == 1


def test_attack_accusing_a_client_that_never_joined(env):
    """Attack (f): accusing a client that never joined the task — here a registered trainer
    whose update the round really excluded, but which froze nothing for this task, so no
    deposit of this task is at stake and none of its others may be taken: FLChainNotJoined,
    and its deposit stays whole."""
    w3, fc, a, flc = env
    register(env, a.clients[2], value=D)  # a trainer, but not of this task
    tid = new_flc_task(env, joiners=[a.clients[0], a.clients[1], a.clients[3]])
    play(env, tid, 0, S, excluded=(2,))
    rejected(env, "FLChainNotJoined", lambda: T(env, WATCHER).report_invalid_update(fc, SPEC, tid, 0, 2))
    assert flc.get_trainer(a.clients[2].address).deposit == D


def test_attack_self_report_still_costs_the_offender(env):
    """Attack (g): the offender reports itself from a second address to recover the reward.
    It gets its fee back and r, but loses d: its net loss is d - r > 0 (the reward is only
    rewardBps of d; the rest goes to the honest clients and the requester)."""
    w3, fc, a, flc = env
    off = a.clients[2]
    tid = offence_task(env)
    L = Book(env, [off, ALT])  # the offence is committed: its deposit d is at stake
    L.tx(ALT, T(env, ALT).report_invalid_update(fc, SPEC, tid, 0, 2), FEE)
    L.withdraw_all(ALT)
    L.check()
    reward = D * P.reward_bps // 10_000
    loss = -(L.net(off) + L.net(ALT))
    table("Attack (g): self-report from a second address",
          [("offender", L.net(off)), ("its second address", L.net(ALT)), ("together (-(d - r))", -loss)])
    assert L.net(ALT) == reward and L.net(off) == -D
    assert loss == D - reward > 0 and loss > FEE


def test_attack_wrong_report_fee(env):
    """Attack (h): a report with less (or more) than reportFee: FLChainBadFee."""
    w3, fc, a, flc = env
    tid = offence_task(env)
    for v in (0, FEE - 1, FEE + 1):
        rejected(env, "FLChainBadFee", lambda: T(env, WATCHER).report_invalid_update(fc, SPEC, tid, 0, 2, value=v))
        rejected(env, "FLChainBadFee", lambda: T(env, WATCHER).report_unqualified(a.clients[0].address, value=v))


# ---------------------------------------------------------------------------------- reliability


def test_record_round_counts_joined_trainers_and_rejects_forged_evidence(env):
    w3, fc, a, flc = env
    joiners = a.clients[:3]  # client 3 is listed and registers updates, but never joins
    tid = new_flc_task(env, rounds=2, joiners=joiners)
    rejected(env, "FLChainRoundNotFinalized", lambda: T(env, OUTSIDER)._transact(
        "recordRound", tid, 0, 0, [], [], []))
    play(env, tid, 0, S0)
    h0 = fc.round_finalized(tid, 0).args["height"]
    clients, costs = regs(env, tid, 0)
    centre = [int(x) for x in fc.round_finalized(tid, 0).args["centre"]]
    assert centre == vec(S0)
    rec = lambda h=h0, cl=clients, n=costs, c=centre, r=0: T(env, OUTSIDER)._transact(  # noqa: E731
        "recordRound", tid, r, h, cl, n, c)
    rejected(env, "FLChainCentreMismatch", lambda: rec(c=[centre[0] + 1, *centre[1:]]))
    rejected(env, "FLChainCentreMismatch", lambda: rec(c=centre[:3]))
    rejected(env, "FLChainClientsMismatch", lambda: rec(cl=clients[::-1]))
    ev = rec().event("RoundRecorded").args
    assert ev == {"taskId": tid, "round": 0, "trainers": 3, "positive": 2}
    rejected(env, "FLChainAlreadyRecorded", lambda: rec())
    rejected(env, "FLChainAlreadyRecorded", lambda: flc.record_round(fc, tid, 0))
    play(env, tid, 1, S1)
    rejected(env, "FLChainWrongBlock", lambda: rec(r=1, h=h0, c=vec(S1)))  # round 0's block for round 1
    flc.record_round(fc, tid, 1)
    assert flc.is_recorded(tid, 0) and flc.is_recorded(tid, 1)
    c0, c1 = vec(S0), vec(S1)
    want = {0: (2, 2, c0[0] + c1[0]), 1: (2, 1, c1[1]), 2: (2, 1, c0[2]), 3: (0, 0, 0)}
    for j, (rounds, pos, contrib) in want.items():
        t = flc.get_trainer(a.clients[j].address)
        assert (t.rounds, t.positive) == (rounds, pos), j
        assert flc.contribution(tid, a.clients[j].address) == contrib, j
        assert flc.reliability(a.clients[j].address) == rules.reliability(rounds, pos, 0, 0, 0), j
    assert flc.reliability(a.clients[0].address) == 450_000  # (3/4)(3/5)
    assert flc._call("taskContribution", tid) == sum(v[2] for v in want.values())


# ---------------------------------------------------------------------------------- marketplace


def market(env, *, record=True):
    """A completed two-round task (every client joined, S0 then S1), both rounds recorded."""
    w3, fc, a, flc = env
    tid = new_flc_task(env, rounds=2)
    for r, s in enumerate((S0, S1)):
        play(env, tid, r, s)
        if record:
            flc.record_round(fc, tid, r)
    return tid


def trainers_of(env):
    return sorted((c.address for c in env.a.clients), key=lambda x: int(x, 16))


def list_model(env, tid, price=PRICE, **kw):
    return T(env, env.a.server).list_model(tid, price, keccak(b"model"), "local:model", **kw)


def test_list_model_only_by_the_server_of_a_completed_fully_recorded_task(env):
    w3, fc, a, flc = env
    tid = new_flc_task(env, rounds=2)
    play(env, tid, 0, S0)
    flc.record_round(fc, tid, 0)
    srv = T(env, a.server)
    tr = trainers_of(env)
    rejected(env, "FLChainWrongTaskStatus", lambda: srv.list_model(tid, PRICE, b"\x01" * 32, "m", trainers=tr))
    play(env, tid, 1, S1)
    rejected(env, "FLChainNotServer",
             lambda: T(env, a.requester).list_model(tid, PRICE, b"\x01" * 32, "m", trainers=tr))
    rejected(env, "FLChainRoundNotRecorded", lambda: srv.list_model(tid, PRICE, b"\x01" * 32, "m", trainers=tr))
    flc.record_round(fc, tid, 1)
    rejected(env, "FLChainBadParameter", lambda: srv.list_model(tid, 0, b"\x01" * 32, "m", trainers=tr))
    with_alt = sorted([*tr, ALT.address], key=lambda x: int(x, 16))  # ALT contributed nothing
    for bad, index in ((tr[::-1], 1), ([tr[0], tr[0], *tr[1:]], 1), (tr[:3], 3),
                       (with_alt, with_alt.index(ALT.address)), ([], 0)):
        err = rejected(env, "FLChainBadTrainers", lambda: srv.list_model(tid, PRICE, b"\x01" * 32, "m", trainers=bad))
        assert err.args_[0] == index
    assert flc.task_trainers(tid) == tr
    srv.list_model(tid, PRICE, b"\x01" * 32, "m")
    assert flc.model_status(0) == ModelStatus.ON_SALE


def test_sale_split_is_normalised_and_the_papers_split_is_not(env):
    w3, fc, a, flc = env
    tid = market(env)
    tr = trainers_of(env)
    contrib = [flc.contribution(tid, t) for t in tr]
    rely = [flc.reliability(t) for t in tr]
    assert rely == [trainer_rely(env, t) for t in tr] and len(set(rely)) == 2  # 450,000 and 300,000
    res = list_model(env, tid)
    ev = res.event("ModelListed").args
    amounts, dust = rules.sale_split(PRICE, contrib, rely)
    assert list(ev["trainers"]) == tr and list(ev["amounts"]) == amounts and ev["dust"] == dust
    assert sum(amounts) + dust == PRICE and 0 < dust < len(tr)
    assert (ev["modelId"], ev["taskId"], ev["lister"], ev["price"], ev["prevModel"]) == (0, tid, a.server.address,
                                                                                          PRICE, 0)
    shares = [c / sum(contrib) for c in contrib]
    paper = rules.paper_split(PRICE, shares, rely)
    table("Sale split (per sale) vs the paper's p * share * RELY",
          [(f"trainer {t[:10]} normalised", x) for t, x in zip(tr, amounts)] + [("lister's dust", dust)]
          + [(f"trainer {t[:10]} paper", int(x)) for t, x in zip(tr, paper)])
    assert abs(sum(paper) - PRICE) > PRICE // 2  # RELY < 1: the paper's shares leave most of p unpaid
    m = flc.get_model(0)
    assert (m.task_id, m.status, m.lister, m.price, m.dust, m.prev_model, m.sales) == (
        tid, ModelStatus.ON_SALE, a.server.address, PRICE, dust, 0, 0)
    assert m.height == res.receipt["blockNumber"] and m.model_hash == keccak(b"model")
    assert m.split_root == merkle.payout_tree(0, 0, tr, amounts).root
    assert all(flc.get_trainer(t).models == 1 for t in tr)


def test_buy_once_at_the_price_and_claim_sales_to_the_wei(env):
    w3, fc, a, flc = env
    tid = market(env)
    list_model(env, tid)
    tr = trainers_of(env)
    amounts = list(flc.listing(0).args["amounts"])
    dust = flc.get_model(0).dust
    by_addr = {c.address: c for c in a.clients}
    L = Book(env, [*BUYERS[:3], *a.clients, a.server])
    srv_credit = flc.credits(a.server.address)
    for v in (PRICE - 1, PRICE + 1, 0):
        rejected(env, "FLChainBadFee", lambda: T(env, BUYERS[0]).buy(0, value=v))
    rejected(env, "FLChainUnknownModel", lambda: T(env, BUYERS[0]).buy(1, value=PRICE))
    for b in BUYERS[:2]:
        ev = L.tx(b, T(env, b).buy(0), PRICE).event("Bought").args
        assert ev == {"modelId": 0, "buyer": b.address, "price": PRICE}
    rejected(env, "FLChainAlreadyBought", lambda: T(env, BUYERS[0]).buy(0))
    assert flc.get_model(0).sales == 2 and flc._call("bought", 0, BUYERS[0].address)
    assert not flc._call("bought", 0, BUYERS[2].address)
    assert flc.credits(a.server.address) - srv_credit == 2 * dust
    assert flc.totals()["totalUnclaimed"] == 2 * (PRICE - dust)
    first = tr[0]
    rejected(env, "FLChainInvalidProof", lambda: T(env, by_addr[first])._transact(
        "claimSales", 0, amounts[0] + 1, flc.sale_proof(0, first)[1]))
    rejected(env, "FLChainInvalidProof", lambda: T(env, by_addr[first])._transact(
        "claimSales", 0, amounts[1], flc.sale_proof(0, tr[1])[1]))  # another trainer's leaf
    rejected(env, "FLChainInvalidProof", lambda: T(env, OUTSIDER)._transact(
        "claimSales", 0, amounts[0], flc.sale_proof(0, first)[1]))
    for t, amt in zip(tr, amounts):
        ev = L.tx(by_addr[t], T(env, by_addr[t]).claim_sales(0)).event("SalesClaimed").args
        assert ev == {"modelId": 0, "trainer": t, "amount": 2 * amt}
        L.receive(by_addr[t], 2 * amt)
        assert flc.claimed_sales(0, t) == 2 * amt
    assert flc.totals()["totalUnclaimed"] == 0
    rejected(env, "FLChainNothingToClaim", lambda: T(env, by_addr[first]).claim_sales(0))
    L.tx(BUYERS[2], T(env, BUYERS[2]).buy(0), PRICE)
    ev = L.tx(by_addr[first], T(env, by_addr[first]).claim_sales(0)).event("SalesClaimed").args
    assert ev["amount"] == amounts[0]  # only the new sale's part
    L.receive(by_addr[first], amounts[0])
    rejected(env, "FLChainNothingToClaim", lambda: T(env, by_addr[first]).claim_sales(0))
    assert flc.totals()["totalUnclaimed"] == PRICE - dust - amounts[0]
    assert L.withdraw_all(a.server) == srv_credit + 3 * dust
    L.check()
    for b in BUYERS[:3]:
        assert L.net(b) == -PRICE
    assert L.net(a.server) == 3 * dust


def test_evaluate_only_by_buyers_once_with_a_score_from_1_to_5(env):
    w3, fc, a, flc = env
    tid = market(env)
    list_model(env, tid)
    tr = trainers_of(env)
    b0, b1 = BUYERS[:2]
    rejected(env, "FLChainNotBuyer", lambda: T(env, b0).evaluate(0, 5))
    T(env, b0).buy(0)
    T(env, b1).buy(0)
    for s in (0, 6):
        rejected(env, "FLChainBadScore", lambda: T(env, b0).evaluate(0, s))
    rejected(env, "FLChainBadTrainers", lambda: T(env, b0)._transact("evaluate", 0, 4, tr[:3]))
    before = {t: flc.get_trainer(t) for t in tr}
    assert T(env, b0).evaluate(0, 5).event("Evaluated").args == {"modelId": 0, "buyer": b0.address, "score": 5}
    rejected(env, "FLChainAlreadyEvaluated", lambda: T(env, b0).evaluate(0, 1))
    T(env, b1).evaluate(0, 2)
    m = flc.get_model(0)
    assert (m.eval_count, m.eval_sum) == (2, 7)
    for t in tr:
        x = flc.get_trainer(t)
        assert (x.eval_count, x.eval_sum) == (before[t].eval_count + 2, before[t].eval_sum + 7)
        assert flc.reliability(t) == rules.reliability(x.rounds, x.positive, 2, 7, 0) == trainer_rely(env, t)
    # (positive + 1)/(rounds + 2) * (7 + 3)/(5 * 3): client 0 had 2 positive rounds of 2
    assert flc.reliability(a.clients[0].address) == 750_000 * 666_666 // 10**6


def test_delist_and_superseding_make_the_old_model_unbuyable(env):
    w3, fc, a, flc = env
    tid = market(env)
    list_model(env, tid)
    rejected(env, "FLChainNotLister", lambda: T(env, a.requester).delist(0))
    T(env, BUYERS[0]).buy(0)
    res = list_model(env, tid, price=2 * PRICE, prev_model=0)
    assert res.event("ModelListed").args["prevModel"] == 1  # id + 1
    assert [e.args for e in res.events if e.name == "ModelStatusChanged"] == [
        {"modelId": 0, "status": ModelStatus.UNAVAILABLE}, {"modelId": 1, "status": ModelStatus.ON_SALE}]
    assert flc.model_status(0) == ModelStatus.UNAVAILABLE and flc.get_model(1).prev_model == 1
    rejected(env, "FLChainNotForSale", lambda: T(env, BUYERS[1]).buy(0, value=PRICE))
    T(env, BUYERS[1]).buy(1)
    T(env, a.server).delist(1)
    assert flc.model_status(1) == ModelStatus.UNAVAILABLE
    rejected(env, "FLChainNotForSale", lambda: T(env, BUYERS[2]).buy(1, value=2 * PRICE))
    rejected(env, "FLChainUnknownModel", lambda: T(env, a.server).delist(2))
    # the sales made while on sale stay claimable
    c0 = a.clients[0]
    T(env, c0).claim_sales(0)
    T(env, c0).claim_sales(1)
    assert flc.claimed_sales(0, c0.address) == flc.sale_proof(0, c0.address)[0]


def test_a_task_with_an_upheld_report_lists_a_problematic_model(env):
    w3, fc, a, flc = env
    tid = offence_task(env)
    T(env, WATCHER).report_invalid_update(fc, SPEC, tid, 0, 2)
    flc.record_round(fc, tid, 0)
    res = list_model(env, tid)
    assert res.event("ModelStatusChanged").args == {"modelId": 0, "status": ModelStatus.PROBLEMATIC}
    assert flc.model_status(0) == flc.get_model(0).status == ModelStatus.PROBLEMATIC
    rejected(env, "FLChainNotForSale", lambda: T(env, BUYERS[0]).buy(0, value=PRICE))


def test_a_report_upheld_after_listing_makes_the_model_problematic(env):
    w3, fc, a, flc = env
    tid = offence_task(env)
    flc.record_round(fc, tid, 0)
    list_model(env, tid)
    assert flc.model_status(0) == ModelStatus.ON_SALE
    T(env, BUYERS[0]).buy(0)
    T(env, WATCHER).report_invalid_update(fc, SPEC, tid, 0, 2)
    assert flc.model_status(0) == ModelStatus.PROBLEMATIC
    assert flc.get_model(0).status == ModelStatus.ON_SALE  # the stored status is the lister's
    rejected(env, "FLChainNotForSale", lambda: T(env, BUYERS[1]).buy(0, value=PRICE))
    T(env, a.clients[0]).claim_sales(0)  # the sale made before stays claimable


# ---------------------------------------------------------------------------------- federation


def test_requests_intentions_and_a_deterministic_allocation(env):
    w3, fc, a, flc = env
    req = T(env, a.requester)
    now = fc.latest_timestamp()
    rejected(env, "FLChainBadParameter", lambda: req.publish_request(keccak(b"m"), "m", 0, now + 1000))
    rejected(env, "FLChainBadParameter", lambda: req.publish_request(keccak(b"m"), "m", 1, now))
    r0 = req.publish_request(keccak(b"m0"), "local:m0", 1, now + 1000).event("RequestPublished").args
    assert r0 == {"requestId": 0, "requester": a.requester.address, "seats": 1, "deadline": now + 1000,
                  "descHash": keccak(b"m0"), "locator": "local:m0"}
    req.publish_request(keccak(b"m1"), "local:m1", 2, now + 1000)
    assert flc.get_request(1) == {"requester": a.requester.address, "seats": 2, "deadline": now + 1000,
                                  "desc_hash": keccak(b"m1"), "locator": "local:m1"}
    for c in a.clients:
        register(env, c)
    auth0 = flc.credits(AUTH.address)
    # (request, client, income, cost): client 3 prefers 0 but 0 has one seat; client 2's profit is negative
    plan = [(0, 0, 900, 100), (0, 3, 500, 100), (1, 3, 400, 100), (1, 1, 300, 100), (1, 2, 100, 200),
            (1, 0, 50, 0)]
    for rq, j, inc, cost in plan:
        T(env, a.clients[j]).post_intention(rq, 1, inc, cost)
    T(env, a.clients[1]).post_intention(1, 1, 350, 100)  # replaces client 1's intention for 1
    assert flc.credits(AUTH.address) - auth0 == 7 * P.intention_fee
    rejected(env, "FLChainNotTrainer", lambda: T(env, OUTSIDER).post_intention(0, 1, 1, 1))
    rejected(env, "FLChainUnknownRequest", lambda: T(env, a.clients[0]).post_intention(2, 1, 1, 1))
    rejected(env, "FLChainBadFee", lambda: T(env, a.clients[0])._transact("postIntention", 0, 1, 1, 1, value=0))
    T(env, a.clients[2]).set_available(False)
    rejected(env, "FLChainWrongStatus", lambda: T(env, a.clients[2]).post_intention(0, 1, 1, 1))
    T(env, a.clients[2]).set_available(True)
    register(env, ALT)
    T(env, WATCHER).report_unqualified(ALT.address)
    T(env, AUTH).judge_unqualified(0, True)
    rejected(env, "FLChainWrongStatus", lambda: T(env, ALT).post_intention(0, 1, 1, 1))

    def allocation():
        evs = flc.events("IntentionPosted")
        its = [federation.Intention(int(e.args["requestId"]), e.args["trainer"], int(e.args["expectedPrice"]),
                                    int(e.args["expectedIncome"]), int(e.args["cost"])) for e in evs]
        caps = {i: flc.get_request(i)["seats"] for i in (0, 1)}
        rely = {t: flc.reliability(t) for t in {i.trainer for i in its}}
        return federation.allocate(caps, rely, its), caps

    got, caps = allocation()
    assert allocation()[0] == got
    c = [x.address for x in a.clients]
    assert got == {0: [c[0]], 1: [c[3], c[1]]}
    assert all(len(got[m]) <= caps[m] for m in caps)
    placed = [t for ts in got.values() for t in ts]
    assert len(placed) == len(set(placed)) and c[2] not in placed
    advance(w3, 1001)
    rejected(env, "FLChainIntentionClosed", lambda: T(env, a.clients[0]).post_intention(0, 1, 1, 1))
    assert allocation()[0] == got


# ---------------------------------------------------------------------------------- conservation


def test_when_everyone_withdraws_only_the_deposits_remain(env):
    """Every flow at once (a confiscation, a false report, a rejected Unqualified report,
    intentions, sales with dust, releases); then every party claims and withdraws all it is
    owed: FLChain holds exactly the trainers' remaining deposits and owes nothing else."""
    w3, fc, a, flc = env
    tid = market(env)
    for c in a.clients:
        T(env, c).release(tid)
    off = offence_task(env)
    T(env, WATCHER).report_invalid_update(fc, SPEC, off, 0, 2)
    T(env, BUYERS[3]).report_invalid_update(fc, SPEC, off, 0, 0)  # false: the fee goes to client 0
    register(env, ALT, value=3 * D)
    T(env, WATCHER).report_unqualified(ALT.address)
    T(env, AUTH).judge_unqualified(2, False)
    req = T(env, a.requester).publish_request(keccak(b"m"), "m", 1, fc.latest_timestamp() + 500)
    T(env, a.clients[0]).post_intention(req.event("RequestPublished").args["requestId"], 1, 10, 1)
    list_model(env, tid)
    for b in BUYERS[:3]:
        T(env, b).buy(0)
    for c in a.clients:
        if c == a.clients[2]:
            rejected(env, "FLChainNothingToRelease", lambda: T(env, c).release(off))
        else:
            T(env, c).release(off)
        T(env, c).claim_sales(0)  # the confiscated trainer keeps its earlier work's revenue
    for t in (tid, off):
        T(env, a.server).release(t)
    T(env, a.server).withdraw_deposit(flc.get_trainer(a.server.address).deposit)  # the server leaves
    assert flc.totals()["totalUnclaimed"] == 0
    for p in people(env):
        if flc.credits(p.address):
            T(env, p).withdraw()
    ts = [flc.get_trainer(p.address) for p in people(env)]
    deposits, frozen = sum(t.deposit for t in ts), sum(t.frozen for t in ts)
    assert frozen == 0 and deposits == 3 * D + 3 * D  # clients 0, 1, 3 (one d each) and ALT (3 d)
    tot = flc.totals()
    assert tot["totalCredits"] == tot["totalUnclaimed"] == tot["totalEscrow"] == 0
    assert all(flc.credits(p.address) == 0 for p in people(env))
    assert flc.balance() == tot["totalBonds"] == deposits
