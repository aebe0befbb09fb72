"""The content store's interface and its embedded local backend (IPFS: tests/test_ipfs.py)."""

from __future__ import annotations

import pytest

from fedcoin.content.store import (
    ContentIntegrityError,
    ContentNotFoundError,
    LocalStore,
    content_hash,
    hash_hex,
    open_store,
)


def test_content_hash_is_keccak256_as_solidity_computes_it():
    # keccak256("") and keccak256("abc"), the standard test vectors (not SHA3-256's)
    assert content_hash(b"").hex() == "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"
    assert content_hash(b"abc").hex() == "4e03657aea45a94fc7d47ba826c8d667c0d1e6e33a64a036ec44f58fa12d6c45"


def test_put_then_get_returns_the_same_bytes(tmp_path):
    store = LocalStore(tmp_path)
    data = b"an update" * 100
    locator = store.put(data)
    assert locator == "local:" + hash_hex(content_hash(data))
    assert store.get(locator, content_hash(data)) == data
    assert store.get(locator, hash_hex(content_hash(data))) == data  # hex form accepted too
    assert store.put(data) == locator  # idempotent


def test_a_blob_edited_on_disk_is_refused_with_its_name(tmp_path):
    store = LocalStore(tmp_path)
    data = b"\x00\x01 original update bytes"
    locator = store.put(data)
    path = tmp_path / locator[len("local:0x"):][:2] / locator[len("local:0x"):]
    path.write_bytes(b"\x00\x01 tampered update bytes!")
    with pytest.raises(ContentIntegrityError, match=locator):
        store.get(locator, content_hash(data))


def test_a_locator_that_points_at_other_bytes_is_refused(tmp_path):
    store = LocalStore(tmp_path)
    registered, other = b"registered", b"something else"
    store.put(registered)
    with pytest.raises(ContentIntegrityError, match="registered for it"):
        store.get(store.put(other), content_hash(registered))


def test_missing_blob_and_foreign_locator_are_clear_errors(tmp_path):
    store = LocalStore(tmp_path)
    h = content_hash(b"never stored")
    with pytest.raises(ContentNotFoundError, match="not in the local store"):
        store.get("local:" + hash_hex(h), h)
    with pytest.raises(ValueError, match="LocalStore"):
        store.get("ipfs://bafkreigh2akiscaildc", h)
    with pytest.raises(ValueError, match="32 bytes"):
        store.get("local:" + hash_hex(h), b"short")


def test_open_store_urls(tmp_path, monkeypatch):
    monkeypatch.setenv("FEDCOIN_HOME", str(tmp_path / "home"))
    assert open_store().root == tmp_path / "home" / "store"
    assert open_store(f"local:{tmp_path / 'x'}").root == tmp_path / "x"
    with pytest.raises(ValueError, match="unknown store"):
        open_store("s3://bucket")
    with pytest.raises(ValueError, match="not on loopback"):
        open_store("ipfs:http://10.1.2.3:5001")
