"""The content store: where updates, global models, validation sets and task specs live.

One interface, two backends:

* :class:`LocalStore` (the default): an embedded content-addressed directory. A blob is the
  file ``<root>/<h[0:2]>/<h>`` where ``h`` is the hex keccak256 of its bytes; its locator is
  ``local:0x<h>``. The default root is ``$FEDCOIN_HOME/store`` (``FEDCOIN_HOME`` defaults to
  ``<repo>/.fedcoin``, see :func:`fedcoin_home`). Processes on one machine that open the same
  root (the server and the miners of the demo) share blobs.
* :class:`IPFSStore`: an IPFS node through its Kubo-compatible HTTP RPC API
  (``ipfshttpclient``). Locators are ``ipfs://<CIDv1>``.

Integrity never depends on the backend: :meth:`ContentStore.get` takes the hash that was
registered on-chain and refuses bytes that do not hash to it (:class:`ContentIntegrityError`
names the blob, the expected and the actual hash). The hash is :func:`content_hash`, keccak256
of the raw bytes, so it is the ``bytes32`` a client registers and Solidity's ``keccak256``
of the same bytes.

Use :func:`open_store` to get a store from a URL (``local``, ``local:/some/dir``,
``ipfs:http://127.0.0.1:5001``).
"""

from __future__ import annotations

import abc
import ipaddress
import os
import tempfile
from pathlib import Path
from urllib.parse import urlparse

from eth_hash.auto import keccak

from fedcoin.home import fedcoin_home

LOCAL_SCHEME = "local:"
IPFS_SCHEME = "ipfs://"


# --------------------------------------------------------------------------------------------
# hashing and paths


def content_hash(data: bytes) -> bytes:
    """keccak256 of ``data``: the 32-byte hash registered on-chain for every blob.

    Examples:
        >>> content_hash(b"").hex()[:16]
        'c5d2460186f7233c'
    """
    return keccak(bytes(data))


def hash_hex(h: bytes) -> str:
    """``0x``-prefixed lowercase hex of a 32-byte hash."""
    return "0x" + bytes(h).hex()


def parse_hash(h: bytes | str) -> bytes:
    """Accept a 32-byte hash as bytes or (``0x``-)hex; raise ValueError otherwise."""
    if isinstance(h, str):
        s = h[2:] if h.startswith(("0x", "0X")) else h
        try:
            h = bytes.fromhex(s)
        except ValueError:
            raise ValueError(f"hash {h!r} is not hex") from None
    h = bytes(h)
    if len(h) != 32:
        raise ValueError(f"a content hash is 32 bytes, got {len(h)}")
    return h


# --------------------------------------------------------------------------------------------
# errors


class StoreError(RuntimeError):
    """Base class of content-store errors."""


class ContentNotFoundError(StoreError):
    """The store does not hold the blob a locator names."""


class ContentIntegrityError(StoreError):
    """Fetched bytes do not hash to the value registered for them: the blob is refused."""


# --------------------------------------------------------------------------------------------
# the interface


class ContentStore(abc.ABC):
    """Put bytes, get a locator; get bytes back only if they hash to the expected value."""

    scheme: str

    @abc.abstractmethod
    def put(self, data: bytes) -> str:
        """Store ``data``; return its locator (idempotent: same bytes, same locator)."""

    @abc.abstractmethod
    def _fetch(self, locator: str) -> bytes:
        """The raw bytes behind ``locator`` (unchecked); ContentNotFoundError if absent."""

    def get(self, locator: str, expected_hash: bytes | str) -> bytes:
        """The bytes behind ``locator``, checked against ``expected_hash``.

        Args:
            locator: what :meth:`put` returned (read from a spec or from the chain).
            expected_hash: the 32-byte keccak256 registered on-chain for this blob.

        Raises:
            ContentIntegrityError: the bytes hash to something else (tampered, wrong locator).
            ContentNotFoundError: the store does not have the blob.
            ValueError: the locator belongs to another backend.
        """
        want = parse_hash(expected_hash)
        self._check_scheme(locator)
        data = self._fetch(locator)
        got = content_hash(data)
        if got != want:
            raise ContentIntegrityError(
                f"refusing blob {locator} ({len(data)} bytes): its keccak256 is {hash_hex(got)}, "
                f"but {hash_hex(want)} was registered for it; the bytes were altered or the "
                f"locator points at a different blob"
            )
        return data

    def get_unverified(self, locator: str) -> bytes:
        """The bytes behind ``locator`` WITHOUT the hash check, for callers that compare the
        hash themselves to tell "absent" from "tampered" (:mod:`fedcoin.content.checks`).

        Raises:
            ContentNotFoundError: the store does not have the blob.
            ValueError: the locator belongs to another backend.
        """
        self._check_scheme(locator)
        return self._fetch(locator)

    def put_checked(self, data: bytes) -> tuple[bytes, str]:
        """Store ``data``; return ``(content_hash(data), locator)``."""
        return content_hash(data), self.put(data)

    def _check_scheme(self, locator: str) -> None:
        if not isinstance(locator, str) or not locator.startswith(self.scheme):
            raise ValueError(
                f"locator {locator!r} is not for this {type(self).__name__} (expected it to start "
                f"with {self.scheme!r}); open the store that matches the locator"
            )

    def close(self) -> None:  # pragma: no cover - trivial
        """Release connections (no-op for the local store)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# --------------------------------------------------------------------------------------------
# the embedded local backend


class LocalStore(ContentStore):
    """Content-addressed files under ``root`` (default ``$FEDCOIN_HOME/store``).

    The key is the keccak256 of the bytes, so the locator itself names the hash; :meth:`get`
    still re-hashes what it reads (a file edited on disk is refused).
    """

    scheme = LOCAL_SCHEME

    def __init__(self, root: str | os.PathLike | None = None):
        self.root = Path(root) if root is not None else fedcoin_home() / "store"
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, locator: str) -> Path:
        h = locator[len(LOCAL_SCHEME):]
        h = h[2:] if h.startswith("0x") else h
        if len(h) != 64 or any(c not in "0123456789abcdef" for c in h):
            raise ValueError(f"bad local locator {locator!r}: expected 'local:0x' + 64 lowercase hex digits")
        return self.root / h[:2] / h

    def put(self, data: bytes) -> str:
        data = bytes(data)
        locator = LOCAL_SCHEME + hash_hex(content_hash(data))
        path = self._path(locator)
        if path.exists() and path.stat().st_size == len(data):
            return locator
        path.parent.mkdir(parents=True, exist_ok=True)
        # write-then-rename: a crash never leaves a half-written blob under its final name
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return locator

    def _fetch(self, locator: str) -> bytes:
        path = self._path(locator)
        try:
            return path.read_bytes()
        except FileNotFoundError:
            raise ContentNotFoundError(f"blob {locator} is not in the local store at {self.root}") from None

    def __repr__(self) -> str:
        return f"LocalStore({str(self.root)!r})"


# --------------------------------------------------------------------------------------------
# the IPFS backend


def _is_loopback(host: str) -> bool:
    if host in ("localhost",):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def rpc_url_to_multiaddr(url: str) -> tuple[str, str]:
    """``http://127.0.0.1:5001`` -> (``/ip4/127.0.0.1/tcp/5001/http``, host). Multiaddrs pass through."""
    if url.startswith("/"):
        parts = url.split("/")
        host = parts[2] if len(parts) > 2 else ""
        return url, host
    u = urlparse(url if "://" in url else "http://" + url)
    if u.scheme not in ("http", "https") or not u.hostname or not u.port:
        raise ValueError(f"IPFS RPC URL {url!r} must look like http://127.0.0.1:5001")
    host = u.hostname
    try:
        proto = "ip6" if ipaddress.ip_address(host).version == 6 else "ip4"
    except ValueError:
        proto = "dns"
    return f"/{proto}/{host}/tcp/{u.port}/{u.scheme}", host


class IPFSStore(ContentStore):
    """Blobs on an IPFS node through its HTTP RPC API (Kubo or js-ipfs).

    Args:
        rpc_url: ``http://127.0.0.1:5001`` or a multiaddr ``/ip4/127.0.0.1/tcp/5001/http``.
        allow_remote: FedCoin only talks to loopback nodes by default (the node itself does
            the networking); pass True to use an RPC endpoint on another host.
        timeout: seconds per RPC call; a blob the node cannot produce in that time is reported
            as :class:`ContentNotFoundError`.

    Notes:
        ``ipfshttpclient.connect()`` refuses daemons newer than 0.8 by version, so the client
        is constructed directly (the RPC calls used here — ``add``, ``cat`` — are stable).
        ``add`` is called with ``cid-version=1`` and ``pin=true`` through ``opts``: the
        keyword form ``add_bytes(..., cid_version=1)`` is not forwarded by ipfshttpclient 0.7.
    """

    scheme = IPFS_SCHEME

    def __init__(self, rpc_url: str, *, allow_remote: bool = False, timeout: float = 60.0):
        import warnings

        import ipfshttpclient

        # ipfshttpclient 0.7 passes urllib3 a parameter newer urllib3 warns about on every call
        warnings.filterwarnings("ignore", message="The 'strict' parameter is no longer needed", category=FutureWarning)
        addr, host = rpc_url_to_multiaddr(rpc_url)
        if not allow_remote and not _is_loopback(host):
            raise ValueError(
                f"IPFS RPC endpoint {rpc_url!r} is not on loopback; pass allow_remote=True to use it"
            )
        self.rpc_url = rpc_url
        self.timeout = timeout
        self._client = ipfshttpclient.Client(addr, timeout=timeout)

    def put(self, data: bytes) -> str:
        cid = self._client.add_bytes(bytes(data), opts={"cid-version": 1, "cid-base": "base32", "pin": "true"})
        return IPFS_SCHEME + cid

    def _fetch(self, locator: str) -> bytes:
        import ipfshttpclient.exceptions as ipfs_exc

        cid = locator[len(IPFS_SCHEME):]
        if not cid or "/" in cid:
            raise ValueError(f"bad IPFS locator {locator!r}: expected ipfs://<CID>")
        try:
            return self._client.cat(cid)
        except ipfs_exc.ErrorResponse as e:
            raise ContentNotFoundError(f"blob {locator} could not be read from IPFS at {self.rpc_url}: {e}") from None
        except ipfs_exc.TimeoutError:
            # an offline node waits for blocks it does not have instead of failing
            raise ContentNotFoundError(
                f"blob {locator} could not be read from IPFS at {self.rpc_url}: no answer within "
                f"{self.timeout:g}s (the node does not hold it and could not find it)"
            ) from None

    def version(self) -> dict:
        """The daemon's ``/version`` answer (used by health checks)."""
        return self._client.version()

    def close(self) -> None:
        self._client.close()

    def __repr__(self) -> str:
        return f"IPFSStore({self.rpc_url!r})"


# --------------------------------------------------------------------------------------------
# factory


def open_store(url: str | None = None) -> ContentStore:
    """A store from a URL (the ``--store`` option of the CLIs).

    * ``None``, ``""`` or ``"local"``: :class:`LocalStore` at ``$FEDCOIN_HOME/store``;
    * ``"local:/path/to/dir"``: :class:`LocalStore` at that directory;
    * ``"ipfs:http://127.0.0.1:5001"`` (or ``"ipfs:/ip4/127.0.0.1/tcp/5001/http"``):
      :class:`IPFSStore` at that RPC endpoint.
    """
    if not url or url == "local":
        return LocalStore()
    if url.startswith("local:"):
        return LocalStore(url[len("local:"):])
    if url.startswith("ipfs:"):
        return IPFSStore(url[len("ipfs:"):])
    raise ValueError(f"unknown store {url!r}: use 'local', 'local:/dir' or 'ipfs:http://127.0.0.1:5001'")
