"""Shared fixtures: strict JAX settings and a real Anvil chain on a free loopback port."""

from __future__ import annotations

import os

import jax
import pytest

# Tests run under strict promotion, as optax/equinox do: silent rank broadcasting or dtype
# widening is a bug in numeric code that must agree bit-for-bit with other miners.
jax.config.update("jax_numpy_rank_promotion", "raise")
jax.config.update("jax_numpy_dtype_promotion", "strict")

os.environ.setdefault("SOLCX_BINARY_PATH", os.path.join(os.path.dirname(__file__), "..", ".solcx"))


@pytest.fixture(scope="session")
def anvil():
    """One Anvil for the session, with EIP-7825's per-transaction gas cap enforced."""
    from fedcoin.devnet import Anvil

    with Anvil(accounts=40) as node:
        yield node
