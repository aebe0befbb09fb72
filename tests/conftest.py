"""Shared test scaffolding: strict JAX settings, one real Anvil for the session, one factory for
a module's deployed FedCoin (``chain_env``), and one snapshot fixture that isolates every test
that uses it (``isolate``, autouse).

A contract test module declares its environment once::

    env = chain_env(n_clients=4, n_miners=3)          # module-scoped: one deployment per module

    def test_something(env):
        w3, fc, a = env                                # Web3, FedCoin (as the requester), Actors

and every test that takes ``env`` runs between an ``evm_snapshot`` and an ``evm_revert``, so
tests never see each other's transactions. Rounds are driven by ``round_driver.play_round``.
"""

from __future__ import annotations

import os
from typing import NamedTuple

import jax
import pytest

# Tests run under strict promotion, as optax/equinox do: silent rank broadcasting or dtype
# widening is a bug in numeric code that must agree bit-for-bit with other miners.
jax.config.update("jax_numpy_rank_promotion", "raise")
jax.config.update("jax_numpy_dtype_promotion", "strict")

os.environ.setdefault("SOLCX_BINARY_PATH", os.path.join(os.path.dirname(__file__), "..", ".solcx"))
# Every test process (each pytest-xdist worker imports this file) keeps its local state
# (deployment records, journals, the MNIST cache) in its own folder: two workers run two
# chains with the same chain id, and must never read each other's recorded deployments.
if "FEDCOIN_HOME" not in os.environ:
    import atexit
    import shutil
    import tempfile

    os.environ["FEDCOIN_HOME"] = tempfile.mkdtemp(prefix="fedcoin-test-home-")
    atexit.register(shutil.rmtree, os.environ["FEDCOIN_HOME"], ignore_errors=True)


@pytest.fixture(scope="session")
def anvil():
    """One Anvil for the session, with EIP-7825's per-transaction gas cap enforced."""
    from fedcoin.dev.devnet import Anvil

    with Anvil(accounts=40) as node:
        yield node


class Env(NamedTuple):
    """A module's chain: ``w3``, ``fc`` (FedCoin bound to the requester) and the actors ``a``."""

    w3: object
    fc: object
    a: object


def chain_env(*, n_clients: int = 3, n_miners: int = 3, params=None):
    """A module-scoped ``env`` fixture: a fresh FedCoin deployed with ``params`` (default:
    ``fedcoin_testkit.default_params()``) and ``n_clients`` clients / ``n_miners`` miners."""

    @pytest.fixture(scope="module")
    def env(anvil):
        from fedcoin.chain import FedCoin
        from fedcoin_testkit import actors, default_params, w3_for

        w3 = w3_for(anvil)
        a = actors(n_clients=n_clients, n_miners=n_miners)
        return Env(w3, FedCoin.deploy(w3, a.requester, params or default_params()), a)

    return env


@pytest.fixture(autouse=True)
def isolate(request):
    """Snapshot the chain before every test that uses ``env`` and revert it afterwards."""
    if "env" not in request.fixturenames:
        yield
        return
    from fedcoin_testkit import revert, snapshot

    w3 = request.getfixturevalue("env").w3
    snap = snapshot(w3)
    yield
    revert(w3, snap)


