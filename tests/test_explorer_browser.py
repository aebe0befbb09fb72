"""`fedcoin explorer` in a real browser: headless Chromium (Debian's package, driven by
Playwright) against a real Anvil holding a finished history (tests/explorer_chain.py).

The page must list the tasks, show per round the right clients, reveals and the exact payout
amounts (compared with the chain's events), verify the PoSap record chain itself (a tampered
index row shows as broken), update live when the chain moves, and fetch nothing from outside
loopback. Screenshots are saved under reports/explorer/ as test artifacts.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import time
from pathlib import Path
from urllib.parse import urlparse

import pytest

from fedcoin.roles.explorer.server import Explorer, serve, url_of
from fedcoin.roles.index import EventIndex
from fedcoin_testkit import ETH, w3_for
from explorer_chain import build_history

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[1] / "reports" / "explorer"

pytestmark = pytest.mark.skipif(shutil.which(CHROMIUM) is None, reason=f"{CHROMIUM} missing (.ci/run installs Debian's chromium)")


@pytest.fixture(scope="module")
def site(anvil, tmp_path_factory):
    w3 = w3_for(anvil)
    fc, a = build_history(w3)
    idx = EventIndex.for_fedcoin(fc, tmp_path_factory.mktemp("explorer") / "index.sqlite")
    ex = Explorer(fc, idx, anvil.url, poll=0.3)
    httpd = serve(ex, 0)
    yield fc, a, ex, url_of(httpd)
    ex.stop.set()
    httpd.shutdown()
    idx.close()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        yield b
        b.close()


@pytest.fixture
def page(browser):
    """A page that records every request and aborts (and records) any not to 127.0.0.1."""
    pg = browser.new_page(viewport={"width": 1280, "height": 900})
    pg.outside, pg.errors = [], []

    def route(r):
        host = urlparse(r.request.url).hostname
        if host != "127.0.0.1":
            pg.outside.append(r.request.url)
            return r.abort()
        return r.continue_()

    pg.route("**/*", route)
    pg.on("pageerror", lambda e: pg.errors.append(str(e)))
    pg.on("console", lambda m: pg.errors.append(m.text) if m.type == "error" else None)
    yield pg
    assert pg.outside == [], "the page fetched from outside loopback"
    assert pg.errors == [], "the page raised JavaScript errors"
    pg.close()


def _open(page, url, *, reload=False):
    page.reload() if reload else page.goto(url)
    page.wait_for_selector("body[data-rendered]", state="attached")


def _shot(page, name):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)
    assert (ARTIFACTS / name).stat().st_size > 10_000


def test_the_task_list_shows_every_task_with_budget_split_status_and_rounds_settled(site, page):
    fc, a, ex, url = site
    _open(page, url)
    rows = page.locator("table.tasks tbody tr")
    assert rows.count() == fc.task_count() == 2
    t1 = page.locator('tr[data-task="1"]')
    assert t1.locator(".budget").get_attribute("data-wei") == str(2 * ETH + 3)
    assert t1.locator(".settled").inner_text() == "2 / 2"
    assert t1.locator(".status").inner_text() == fc.get_task(1).status.name == "COMPLETED"
    assert "7000 : 1000 : 2000" in t1.inner_text()
    _shot(page, "tasks.png")


def test_the_task_page_shows_rounds_clients_reveals_and_the_exact_payouts_of_the_chain(site, page):
    fc, a, ex, url = site
    _open(page, url + "#/task/1")
    page.wait_for_selector("canvas.consensus")
    rounds = page.locator("section.round")
    assert rounds.count() == fc.get_task(1).rounds == 2
    for rnd in range(2):
        sec = page.locator(f'section.round[data-round="{rnd}"]')
        clients = fc.registered_clients(1, rnd)
        assert sec.locator("table.registrations tbody tr").count() == len(clients) == 3
        revealed = [e.args["miner"] for e in fc.revealed_events(1, rnd)]
        shown = [r.get_attribute("data-miner") for r in sec.locator("table.miners tbody tr").all()
                 if r.locator(".revealed").inner_text() != "—"]
        assert sorted(shown) == sorted(revealed) and len(shown) == (3 if rnd == 0 else 2)
        amounts = fc.round_finalized(1, rnd).args["amounts"]
        for c, amount in zip(clients, amounts):
            cell = sec.locator(f'table.payouts tr[data-client="{c}"] .amount')
            assert cell.inner_text() == str(amount)
            claimed = fc.is_claimed(1, rnd, c)
            assert sec.locator(f'table.payouts tr[data-client="{c}"] .claimed').inner_text().startswith(
                "claimed" if claimed else ("unclaimed" if amount else "—"))
        assert sec.locator(".verdict").first.inner_text() == "✓ verified"
    # round 1's third miner never revealed: the page says its bond was forfeited
    assert "forfeited (no reveal)" in page.locator('section.round[data-round="1"] table.miners').inner_text()
    _shot(page, "task1.png")


def test_the_record_chain_verifies_in_the_page_and_a_tampered_index_row_shows_as_broken(site, page):
    fc, a, ex, url = site
    _open(page, url + "#/chain")
    assert page.locator("table.chain tbody tr").count() == fc.block_count() == 3
    assert page.locator("#chain-verdict").get_attribute("class") == "ok"
    assert page.locator("table.chain .verdict.ok").count() == 3
    _shot(page, "chain.png")

    db = sqlite3.connect(ex.idx.path)
    (rowid, args), = db.execute("SELECT rowid, args FROM events WHERE name = 'RoundFinalized' AND task_id = 1 AND round = 1")
    original = json.loads(args)
    tampered = dict(original, amounts=[original["amounts"][1], original["amounts"][0], *original["amounts"][2:]])
    assert tampered != original
    with db:
        db.execute("UPDATE events SET args = ? WHERE rowid = ?", (json.dumps(tampered), rowid))
    try:
        _open(page, url + "#/chain", reload=True)
        row = page.locator('table.chain tr[data-height="1"] .verdict')
        assert row.inner_text() == "✗ broken: payoutsRoot"
        assert page.locator("table.chain .verdict.ok").count() == 2
        assert page.locator("#chain-verdict").get_attribute("class") == "broken"
        _shot(page, "chain-tampered.png")
    finally:
        with db:
            db.execute("UPDATE events SET args = ? WHERE rowid = ?", (args, rowid))
        db.close()


def test_balances_show_what_is_owed_and_the_command_that_collects_it(site, page):
    fc, a, ex, url = site
    _open(page, url + "#/balances")
    unpaid = a.clients[1]  # task 1 round 1: only the first client claimed; task 2: nobody did
    row = page.locator(f'tr[data-address="{unpaid.address}"]')
    owed = sum(amt for tid, rnd in ((1, 0), (1, 1), (2, 0))
               for c, amt in zip(fc.registered_clients(tid, rnd), fc.round_finalized(tid, rnd).args["amounts"])
               if c == unpaid.address and not fc.is_claimed(tid, rnd, c))
    assert owed > 0 and row.locator(".owed").get_attribute("data-wei") == str(owed + fc.credits(unpaid.address))
    assert "fedcoin claim --rpc" in row.inner_text() and "--task 2" in row.inner_text()
    server = page.locator(f'tr[data-address="{a.server.address}"]')
    assert server.locator(".credit").get_attribute("data-wei") == str(fc.credits(a.server.address)) == "0"
    requester = page.locator(f'tr[data-address="{a.requester.address}"]')
    credit = fc.credits(a.requester.address)  # forfeited bonds and the unclaimable Shapley share
    assert credit > 0 and requester.locator(".credit").get_attribute("data-wei") == str(credit)
    assert "fedcoin withdraw --rpc" in requester.inner_text()


def test_the_page_updates_live_when_the_chain_moves(site, page):
    fc, a, ex, url = site
    _open(page, url)
    assert page.locator("table.tasks tbody tr").count() == 2
    tid = fc.as_account(a.requester).create_task(a.server.address, [c.address for c in a.clients], 1, ETH).task_id
    page.wait_for_selector(f'tr[data-task="{tid}"]', timeout=15_000)  # no reload: the page polls the index
    assert page.locator(f'tr[data-task="{tid}"] .status').inner_text() == "CREATED"
    assert page.locator(f'tr[data-task="{tid}"] .settled').inner_text() == "0 / 1"
