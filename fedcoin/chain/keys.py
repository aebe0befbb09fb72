"""Where signing keys come from: an encrypted keystore file or an environment variable.

Never from the command line: argv is visible to every user through ``ps`` and lands in shell
history. The CLI flags (:func:`add_key_arguments`) only name a keystore file and the
environment variable that holds its password.

Order of precedence in :func:`load_account`:

1. a keystore file (``--keystore PATH`` or ``$FEDCOIN_KEYSTORE``), decrypted with the password
   in ``$FEDCOIN_KEYSTORE_PASSWORD`` (or the variable ``--password-env`` names), else asked
   for on the terminal when there is one;
2. a raw hex private key in ``$FEDCOIN_PRIVATE_KEY``.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from pathlib import Path

from eth_account import Account
from eth_account.signers.local import LocalAccount

KEY_ENV = "FEDCOIN_PRIVATE_KEY"
KEYSTORE_ENV = "FEDCOIN_KEYSTORE"
PASSWORD_ENV = "FEDCOIN_KEYSTORE_PASSWORD"


class KeyLoadError(RuntimeError):
    """No usable key was found, or the keystore could not be decrypted."""


def add_key_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--keystore`` and ``--password-env`` (no flag ever takes a key itself)."""
    parser.add_argument("--keystore", type=Path, default=None,
                        help=f"encrypted JSON keystore (default ${KEYSTORE_ENV}); else ${KEY_ENV} holds a raw key")
    parser.add_argument("--password-env", default=PASSWORD_ENV, metavar="VAR",
                        help=f"environment variable holding the keystore password (default {PASSWORD_ENV})")


def load_account(
    keystore: str | os.PathLike | None = None,
    *,
    password_env: str = PASSWORD_ENV,
    key_env: str = KEY_ENV,
    prompt: bool = True,
    environ: dict[str, str] | None = None,
) -> LocalAccount:
    """Load the signing account (see the module docstring for the order).

    Raises:
        KeyLoadError: nothing configured, a wrong password, or a malformed key.
    """
    env = os.environ if environ is None else environ
    path = keystore or env.get(KEYSTORE_ENV)
    if path:
        return _from_keystore(Path(path), env.get(password_env), password_env, prompt)
    raw = env.get(key_env)
    if raw:
        try:
            return Account.from_key(raw.strip())
        except (ValueError, TypeError) as e:
            raise KeyLoadError(f"${key_env} does not hold a valid private key: {type(e).__name__}") from None
    raise KeyLoadError(
        f"no signing key: pass --keystore PATH (password in ${password_env}) or set ${key_env}"
    )


def account_from_args(args: argparse.Namespace) -> LocalAccount:
    """:func:`load_account` with the flags from :func:`add_key_arguments`."""
    return load_account(getattr(args, "keystore", None), password_env=getattr(args, "password_env", PASSWORD_ENV))


def _from_keystore(path: Path, password: str | None, password_env: str, prompt: bool) -> LocalAccount:
    try:
        data = json.loads(path.read_text())
    except OSError as e:
        raise KeyLoadError(f"cannot read keystore {path}: {e.strerror}") from None
    except json.JSONDecodeError:
        raise KeyLoadError(f"keystore {path} is not JSON") from None
    if password is None:
        if not (prompt and sys.stdin.isatty()):
            raise KeyLoadError(f"keystore {path} needs a password: set ${password_env}")
        password = getpass.getpass(f"password for {path}: ")
    try:
        key = Account.decrypt(data, password)
    except ValueError:
        raise KeyLoadError(f"wrong password for keystore {path}") from None
    return Account.from_key(key)


def write_keystore(account: LocalAccount, path: str | os.PathLike, password: str) -> Path:
    """Encrypt ``account`` into a keystore file readable only by its owner (mode 0600)."""
    path = Path(path)
    data = Account.encrypt(account.key, password)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(data, f)
    return path


#: Anvil's public development mnemonic: its keys are known to everyone, so they are for the
#: local dev chain (:data:`fedcoin.protocol.constants.ANVIL_CHAIN_ID`) only.
ANVIL_MNEMONIC = "test test test test test test test test test test test junk"


def dev_private_keys(n: int) -> list[str]:
    """The first ``n`` private keys of Anvil's development mnemonic (hex, 0x-prefixed)."""
    from eth_account import Account

    Account.enable_unaudited_hdwallet_features()
    return [
        Account.from_mnemonic(ANVIL_MNEMONIC, account_path=f"m/44'/60'/0'/0/{i}").key.to_0x_hex()
        for i in range(n)
    ]
