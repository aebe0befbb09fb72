"""The money commands (``fedcoin claim | withdraw | refund | status``) and the accounts command
(``fedcoin account new | list | fund``) against a real Anvil: each says what it will collect
before sending and what it collected after, collects exactly that, and refuses what it must."""

from __future__ import annotations

import io
import json

import pytest
from conftest import chain_env
from fedcoin_testkit import ETH, advance, vec
from round_driver import finalize, play_round

from fedcoin.chain.keys import load_account
from fedcoin.roles import accounts, collect

env = chain_env(n_clients=3, n_miners=2)


def _settled_task(w3, fc, a):
    task = fc.create_task(a.server.address, [c.address for c in a.clients], 1, ETH).task_id
    fc.as_account(a.server).accept_task(task)
    v = vec([0.5, 0.3, -0.1])
    play_round(w3, fc, a, task, 0, [v, v], [10, 10])
    finalize(fc, a, task, 0)
    return task


def test_claim_collects_every_unclaimed_payout_once_and_says_so(env):
    w3, fc, a = env
    task = _settled_task(w3, fc, a)
    fin = fc.round_finalized(task, 0)
    order = fc.registered_clients(task, 0)
    c = a.clients[0]
    amount = fin["amounts"][order.index(c.address)]
    assert amount > 0
    out = io.StringIO()
    assert collect.claim(fc.as_account(c), task, dry_run=True, out=out) == 0 and not fc.is_claimed(task, 0, c.address)
    assert f"will claim {amount / 1e18:.6f} ETH ({amount} wei) in 1 payout(s)" in out.getvalue()
    before = w3.eth.get_balance(c.address)
    out = io.StringIO()
    assert collect.claim(fc.as_account(c), task, out=out) == amount
    assert f"collected {amount / 1e18:.6f} ETH ({amount} wei)" in out.getvalue()
    assert fc.is_claimed(task, 0, c.address) and w3.eth.get_balance(c.address) > before
    out = io.StringIO()
    assert collect.claim(fc.as_account(c), None, out=out) == 0 and "nothing to claim" in out.getvalue()
    # a client whose S̄ was negative is owed nothing
    loser = next(x for x in a.clients if fin["amounts"][order.index(x.address)] == 0)
    out = io.StringIO()
    assert collect.claim(fc.as_account(loser), task, out=out) == 0 and "nothing to claim" in out.getvalue()


def test_status_names_each_party_its_amount_and_command_then_withdraw_empties_the_ledger(env):
    w3, fc, a = env
    task = _settled_task(w3, fc, a)
    rows = collect.owed(fc, task)
    by = {(r.role, r.address): r for r in rows}
    srv = by[("server", a.server.address)]
    assert srv.amount == fc.credits(a.server.address) > 0 and srv.command == "fedcoin withdraw"
    owed_clients = [r for r in rows if r.role == "client" and r.amount > 0]
    assert owed_clients and all(r.command == f"fedcoin claim --task {task}" for r in owed_clients)
    assert {r.address for r in rows if r.role == "miner"} == {m.address for m in a.miners}
    text = collect.format_owed(rows)
    assert "fedcoin withdraw" in text and f"fedcoin claim --task {task}" in text
    credit = fc.credits(a.server.address)
    out = io.StringIO()
    assert collect.withdraw(fc.as_account(a.server), out=out) == credit and fc.credits(a.server.address) == 0
    assert f"will withdraw {credit / 1e18:.6f} ETH" in out.getvalue() and "collected" in out.getvalue()
    out = io.StringIO()
    assert collect.withdraw(fc.as_account(a.server), out=out) == 0 and "no credit" in out.getvalue()


def test_refund_only_when_due_then_the_requester_gets_the_escrow(env):
    w3, fc, a = env
    # The deadline from the next block's time: after snapshot reverts this module's chain can lag
    # the wall clock, and a deadline from the latest block alone could then pass before the test
    # starts (for the tool, judged by the wall clock) while the chain still says it has not.
    deadline = fc.next_block_time() + 100
    task = fc.create_task(a.server.address, [c.address for c in a.clients], 1, ETH, accept_deadline=deadline).task_id
    with pytest.raises(collect.CollectError, match="waiting for its server"):
        collect.refund(fc, task, out=io.StringIO())
    assert fc.get_task(task).escrow == ETH  # nothing was sent
    advance(w3, deadline - fc.latest_timestamp() + 1)
    before = w3.eth.get_balance(a.requester.address)
    out = io.StringIO()
    credited = collect.refund(fc, task, out=out)  # sent by the requester: refunded and withdrawn
    assert credited == ETH and fc.get_task(task).escrow == 0 and fc.credits(a.requester.address) == 0
    assert "will credit its escrow 1.000000 ETH" in out.getvalue() and "collected 1.000000 ETH" in out.getvalue()
    assert w3.eth.get_balance(a.requester.address) > before + ETH - 10**16


def test_cli_claim_reports_a_missing_task_in_one_line(env, anvil, monkeypatch, capsys):
    from fedcoin.cli import main

    _, fc, a = env
    monkeypatch.setenv("FEDCOIN_PRIVATE_KEY", a.clients[0].key.to_0x_hex())
    monkeypatch.delenv("FEDCOIN_KEYSTORE", raising=False)
    rc = main(["claim", "--rpc", anvil.url, "--contract", fc.address, "--task", "999"])
    err = capsys.readouterr().err.strip()
    assert rc == 1 and err.startswith("fedcoin claim: task 999 does not exist") and "\n" not in err


def test_account_new_writes_an_encrypted_keystore_and_list_reads_its_address(tmp_path):
    address, path = accounts.new_account("pw", directory=tmp_path, name="alice")
    assert path == tmp_path / "alice.json" and oct(path.stat().st_mode & 0o777) == "0o600"
    data = json.loads(path.read_text())
    assert "crypto" in data and "pw" not in path.read_text()
    assert load_account(path, environ={"FEDCOIN_KEYSTORE_PASSWORD": "pw"}).address == address
    assert accounts.list_accounts(tmp_path) == [(address, path)]
    with pytest.raises(accounts.AccountError, match="exists"):
        accounts.new_account("pw", directory=tmp_path, name="alice")
    with pytest.raises(accounts.AccountError, match="empty"):
        accounts.new_account("", directory=tmp_path, name="bob")


def test_fund_adds_ether_on_the_dev_chain_and_is_refused_on_any_other(anvil, tmp_path):
    from eth_account import Account

    from fedcoin.chain import connect
    from fedcoin.dev.devnet import Anvil

    w3 = connect(anvil.url)
    who = Account.create().address
    assert accounts.fund(w3, who, 5 * ETH) == (0, 5 * ETH)
    assert accounts.fund(w3, who, 1) == (5 * ETH, 5 * ETH + 1)
    with Anvil(accounts=1, extra_args=["--chain-id", "1337"]) as other:
        w3o = connect(other.url)
        with pytest.raises(accounts.AccountError, match="only on the local development chain"):
            accounts.fund(w3o, who, ETH)
        assert w3o.eth.get_balance(who) == 0


def test_claim_to_sends_a_payout_to_another_address_directly_or_through_a_relayer(env):
    """A client without gas signs; a relayer submits; the payout lands in the chosen address's
    ledger. A signature for another address, a forged or a reused one moves nothing."""
    w3, fc, a = env
    task = _settled_task(w3, fc, a)
    fin, order = fc.round_finalized(task, 0), fc.registered_clients(task, 0)
    paid = [c for c in a.clients if fin["amounts"][order.index(c.address)] > 0]
    c0, c1 = paid[0], paid[1]
    to, relayer = a.miners[0].address, a.miners[1]
    before, relayer_before = fc.credits(to), fc.credits(relayer.address)
    # 1. the client sends its own claimTo
    out = io.StringIO()
    collect.claim_to(fc.as_account(c0), to, task, out=out)
    amount0 = fin["amounts"][order.index(c0.address)]
    assert fc.credits(to) == before + amount0 and fc.is_claimed(task, 0, c0.address)
    assert f"credited to {to}" in out.getvalue() and "fedcoin withdraw" in out.getvalue()
    # 2. a gasless client signs only; nothing is sent until a relayer submits it
    out = io.StringIO()
    [(t, r, sig)] = collect.claim_to(fc.as_account(c1), to, task, sign_only=True, out=out)
    assert (t, r) == (task, 0) and not fc.is_claimed(task, 0, c1.address)
    assert f"fedcoin claim --for {c1.address} --to {to}" in out.getvalue()
    rfc = fc.as_account(relayer)
    with pytest.raises(collect.CollectError, match="not .* signature|recovers"):
        collect.relay_claim(rfc, c1.address, relayer.address, task, 0, sig, out=io.StringIO())  # redirected: refused
    with pytest.raises(collect.CollectError, match="65 bytes"):
        collect.relay_claim(rfc, c1.address, to, task, 0, sig[:-2], out=io.StringIO())
    assert not fc.is_claimed(task, 0, c1.address)
    amount1 = fin["amounts"][order.index(c1.address)]
    assert collect.relay_claim(rfc, c1.address, to, task, 0, sig, out=io.StringIO()) == amount1
    assert fc.credits(to) == before + amount0 + amount1 and fc.credits(relayer.address) == relayer_before
    with pytest.raises(collect.CollectError, match="already claimed"):
        collect.relay_claim(rfc, c1.address, to, task, 0, sig, out=io.StringIO())  # a replay moves nothing
    assert fc.credits(to) == before + amount0 + amount1


def test_cli_claim_for_needs_every_relay_argument_and_sends_nothing_without(env, anvil, monkeypatch, capsys):
    from fedcoin.cli import main

    _, fc, a = env
    monkeypatch.setenv("FEDCOIN_PRIVATE_KEY", a.miners[0].key.to_0x_hex())
    monkeypatch.delenv("FEDCOIN_KEYSTORE", raising=False)
    nonce = fc.w3.eth.get_transaction_count(a.miners[0].address)
    rc = main(["claim", "--rpc", anvil.url, "--contract", fc.address, "--for", a.clients[0].address, "--to",
               a.miners[0].address])
    err = capsys.readouterr().err.strip()
    assert rc == 1 and "--for needs --task, --round, --signature" in err
    assert fc.w3.eth.get_transaction_count(a.miners[0].address) == nonce
