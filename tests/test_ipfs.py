"""The IPFS backend against a real, offline js-ipfs daemon started by this module."""

from __future__ import annotations

import json

import psutil
import pytest

from fedcoin.dev.ipfs_devnode import JsIpfsNode
from fedcoin.ml.serialization import params_from_bytes, params_to_bytes
from fedcoin.content.store import ContentIntegrityError, ContentNotFoundError, IPFSStore, content_hash, open_store

import numpy as np


@pytest.fixture(scope="module")
def ipfs_node():
    with JsIpfsNode() as node:
        yield node
    assert node.proc is None  # stopped


@pytest.fixture()
def store(ipfs_node):
    with IPFSStore(ipfs_node.url) as s:
        yield s


def test_the_node_only_listens_on_loopback_and_dials_nothing(ipfs_node, store):
    store.put(b"some traffic first")
    conns = psutil.Process(ipfs_node.pid).connections(kind="inet")
    assert conns, "the daemon should at least listen on its API port"
    for c in conns:
        assert c.laddr.ip == "127.0.0.1", c
        if c.raddr:
            assert c.raddr.ip == "127.0.0.1", f"the IPFS node dialled {c.raddr}"
    cfg = json.loads((ipfs_node.repo / "config").read_text())
    assert cfg["Bootstrap"] == [] and cfg["Addresses"]["Swarm"] == [] and cfg["Addresses"]["Delegates"] == []
    assert cfg["Discovery"]["MDNS"]["Enabled"] is False and cfg["Routing"]["Type"] == "none"


def test_put_get_round_trip_with_cid_v1(store):
    data = params_to_bytes({"w0": np.arange(12, dtype=np.float32).reshape(3, 4), "b0": np.ones(4, np.float32)})
    locator = store.put(data)
    assert locator.startswith("ipfs://bafkrei")  # CIDv1, raw leaves, base32
    assert store.put(data) == locator
    back = store.get(locator, content_hash(data))
    assert back == data
    assert params_from_bytes(back)["w0"].tobytes() == np.arange(12, dtype=np.float32).tobytes()


def test_bytes_that_do_not_match_the_registered_hash_are_refused(store):
    registered = b"the update the client registered on-chain"
    served = b"the update a cheating server points at"
    store.put(registered)
    bad_locator = store.put(served)
    with pytest.raises(ContentIntegrityError, match=bad_locator):
        store.get(bad_locator, content_hash(registered))


def test_unknown_cid_is_a_clear_error_not_a_hang(store):
    # a valid CID that this offline node has never seen
    other = IPFSStore(store.rpc_url, timeout=3)
    missing = "ipfs://bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
    with pytest.raises(ContentNotFoundError, match="could not be read"):
        other.get(missing, content_hash(b""))


def test_open_store_with_an_ipfs_url(ipfs_node):
    s = open_store(f"ipfs:{ipfs_node.url}")
    assert isinstance(s, IPFSStore)
    data = b"via open_store"
    assert s.get(s.put(data), content_hash(data)) == data
