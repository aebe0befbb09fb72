"""fedcoin.chain.keys: keystore (+password env) or $FEDCOIN_PRIVATE_KEY; never argv."""

from __future__ import annotations

import argparse
import stat

import pytest
from eth_account import Account

from fedcoin.chain import keys
def test_raw_key_from_env():
    acct = Account.create()
    got = keys.load_account(environ={keys.KEY_ENV: acct.key.hex()})
    assert got.address == acct.address


def test_keystore_with_password_env(tmp_path):
    acct = Account.create()
    path = keys.write_keystore(acct, tmp_path / "k.json", "pw")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    got = keys.load_account(path, environ={keys.PASSWORD_ENV: "pw"})
    assert got.address == acct.address
    # the keystore wins over a raw key in the environment
    other = Account.create()
    assert keys.load_account(path, environ={keys.PASSWORD_ENV: "pw", keys.KEY_ENV: other.key.hex()}).address == acct.address


def test_wrong_password_and_missing_password(tmp_path):
    path = keys.write_keystore(Account.create(), tmp_path / "k.json", "pw")
    with pytest.raises(keys.KeyLoadError, match="wrong password"):
        keys.load_account(path, environ={keys.PASSWORD_ENV: "nope"})
    with pytest.raises(keys.KeyLoadError, match="needs a password"):
        keys.load_account(path, environ={}, prompt=False)


def test_nothing_configured_and_bad_raw_key():
    with pytest.raises(keys.KeyLoadError, match="no signing key"):
        keys.load_account(environ={})
    with pytest.raises(keys.KeyLoadError, match="valid private key"):
        keys.load_account(environ={keys.KEY_ENV: "0x1234"})


def test_cli_flags_never_take_a_key():
    p = argparse.ArgumentParser()
    keys.add_key_arguments(p)
    dests = {a.dest for a in p._actions}
    assert dests == {"help", "keystore", "password_env"}
