"""``fedcoin account new | list | fund``: the keys every party signs with, and dev-chain ether.

* ``fedcoin account new [--name NAME] [--dir DIR]`` creates a fresh key and writes it as an
  encrypted JSON keystore (scrypt, the format geth and MetaMask read), mode 0600, to
  ``DIR/NAME.json`` (default ``$FEDCOIN_HOME/keystores/<address>.json``). The password comes from
  the variable ``--password-env`` names (default ``$FEDCOIN_KEYSTORE_PASSWORD``), else it is asked
  twice on the terminal. It is never an argument, and the key is never printed.
* ``fedcoin account list [--dir DIR] [--rpc URL]`` lists the keystores in ``DIR`` (the address
  is read from the file, nothing is decrypted), with balances when ``--rpc`` is given.
* ``fedcoin account fund (ADDRESS | --keystore PATH) --value 100ether --rpc URL`` adds ``--value``
  to the account's balance with Anvil's ``anvil_setBalance``. Only on the local development
  chain (id 31337, :data:`fedcoin.protocol.constants.ANVIL_CHAIN_ID`): on any other chain it is
  refused before anything is sent, since ether cannot be made out of nothing there.

Every command then reads a keystore with ``--keystore PATH`` (or ``$FEDCOIN_KEYSTORE``) and the
password from ``$FEDCOIN_KEYSTORE_PASSWORD`` (:mod:`fedcoin.chain.keys`).
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from pathlib import Path

from eth_utils import is_hex_address, to_checksum_address

from fedcoin.chain.keys import PASSWORD_ENV, KeyLoadError, write_keystore
from fedcoin.home import fedcoin_home
from fedcoin.protocol.constants import ANVIL_CHAIN_ID

DEFAULT_RPC = "http://127.0.0.1:8545"


class AccountError(ValueError):
    """Bad input for an account command (nothing was written or sent)."""


def keystore_dir() -> Path:
    """Where ``fedcoin account new`` writes keystores by default."""
    return fedcoin_home() / "keystores"


def keystore_address(path: str | os.PathLike) -> str:
    """The checksummed address a keystore file declares (read without decrypting)."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise AccountError(f"{path} is not a readable JSON keystore ({type(e).__name__})") from None
    addr = data.get("address") if isinstance(data, dict) else None
    if not isinstance(addr, str) or not is_hex_address(addr if addr.startswith("0x") else "0x" + addr):
        raise AccountError(f"{path} names no address")
    return to_checksum_address(addr if addr.startswith("0x") else "0x" + addr)


def new_account(password: str, *, path: Path | None = None, directory: Path | None = None,
                name: str | None = None) -> tuple[str, Path]:
    """Create a key and its keystore; returns (address, path). Never overwrites a file."""
    from eth_account import Account

    if not password:
        raise AccountError("refusing an empty keystore password")
    account = Account.create()
    if path is None:
        directory = directory or keystore_dir()
        stem = name or account.address
        if "/" in stem or stem.startswith("."):
            raise AccountError(f"--name {stem!r}: a plain file name, please")
        path = directory / f"{stem}.json"
    if path.exists():
        raise AccountError(f"{path} exists; choose another --name (nothing was written)")
    write_keystore(account, path, password)
    return account.address, path


def list_accounts(directory: Path) -> list[tuple[str, Path]]:
    """``[(address, path)]`` of the keystores in ``directory`` (unreadable files skipped)."""
    out = []
    for p in sorted(Path(directory).glob("*.json")):
        try:
            out.append((keystore_address(p), p))
        except AccountError:
            continue
    return out


def fund(w3, address: str, value: int) -> tuple[int, int]:
    """Add ``value`` wei to ``address`` on a dev chain; returns (balance before, after).

    Raises:
        AccountError: not the local development chain (nothing was sent), or value <= 0.
    """
    chain_id = w3.eth.chain_id
    if chain_id != ANVIL_CHAIN_ID:
        raise AccountError(f"fund works only on the local development chain (id {ANVIL_CHAIN_ID}); this node is "
                           f"chain {chain_id}: nothing was sent. Get ether on it the usual way")
    if value <= 0:
        raise AccountError("--value must be positive")
    address = to_checksum_address(address)
    before = w3.eth.get_balance(address)
    w3.provider.make_request("anvil_setBalance", [address, hex(before + value)])
    after = w3.eth.get_balance(address)
    if after != before + value:
        raise AccountError(f"the node did not apply anvil_setBalance (balance {after} wei): is it Anvil?")
    return before, after


# ------------------------------------------------------------------------------------ CLI


def configure(parser: argparse.ArgumentParser) -> None:
    parser.description = __doc__.splitlines()[0]
    parser.formatter_class = argparse.ArgumentDefaultsHelpFormatter
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    n = sub.add_parser("new", help="create a key in an encrypted keystore",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    n.add_argument("--name", default=None, help="file name without .json (default: the address)")
    n.add_argument("--dir", type=Path, default=None, help="folder (default $FEDCOIN_HOME/keystores)")
    n.add_argument("--password-env", default=PASSWORD_ENV, metavar="VAR",
                   help="variable holding the new keystore's password (else asked twice)")
    ls = sub.add_parser("list", help="the keystores in a folder (and their balances with --rpc)",
                        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ls.add_argument("--dir", type=Path, default=None, help="folder (default $FEDCOIN_HOME/keystores)")
    ls.add_argument("--rpc", default=None, help="show balances from this node")
    f = sub.add_parser("fund", help="add ether to an account on the local dev chain (anvil_setBalance)",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    f.add_argument("address", nargs="?", default=None, help="the account (or --keystore)")
    f.add_argument("--keystore", type=Path, default=None, help="fund the address of this keystore")
    f.add_argument("--value", default="100ether", help="amount: wei or a unit (1.5ether, 20gwei)")
    f.add_argument("--rpc", default=DEFAULT_RPC, help="JSON-RPC URL of the dev node")


def _password(var: str) -> str:
    pw = os.environ.get(var)
    if pw is not None:
        return pw
    if not sys.stdin.isatty():
        raise AccountError(f"no password: set ${var} (or run on a terminal to be asked)")
    first = getpass.getpass("password for the new keystore: ")
    if first != getpass.getpass("repeat it: "):
        raise AccountError("the passwords differ (nothing was written)")
    return first


def run(args: argparse.Namespace) -> int:
    from fedcoin.roles.request import RequestError, parse_value

    try:
        if args.action == "new":
            address, path = new_account(_password(args.password_env), directory=args.dir, name=args.name)
            print(f"{address} {path}")
            print(f"use it with: --keystore {path} (password in ${PASSWORD_ENV})", file=sys.stderr)
            return 0
        if args.action == "list":
            directory = args.dir or keystore_dir()
            rows = list_accounts(directory)
            w3 = None
            if args.rpc:
                from fedcoin.chain import connect

                w3 = connect(args.rpc)
            for address, path in rows:
                bal = f" {w3.eth.get_balance(address) / 1e18:.6f} ETH" if w3 else ""
                print(f"{address} {path}{bal}")
            if not rows:
                print(f"no keystores in {directory} (create one: fedcoin account new)", file=sys.stderr)
            return 0
        # fund
        if (args.address is None) == (args.keystore is None):
            raise AccountError("give exactly one of ADDRESS or --keystore")
        address = keystore_address(args.keystore) if args.keystore else args.address
        if not is_hex_address(address):
            raise AccountError(f"{address!r} is not an address")
        value = parse_value(args.value)
        from fedcoin.chain import connect

        before, after = fund(connect(args.rpc), address, value)
        print(f"{to_checksum_address(address)}: {before / 1e18:.6f} -> {after / 1e18:.6f} ETH (+{value} wei)")
        return 0
    except (AccountError, RequestError, KeyLoadError) as e:
        print(f"fedcoin account: {e}", file=sys.stderr)
        return 2
    except Exception as e:  # RPCUnavailable and friends: one line, not a traceback
        from fedcoin.chain import ChainError

        if isinstance(e, ChainError):
            print(f"fedcoin account: {e}", file=sys.stderr)
            return 1
        raise
