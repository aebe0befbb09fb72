"""Numbers every side must agree on that are not arithmetic: each is defined here once.

``TX_GAS_CAP`` is EIP-7825's per-transaction gas limit (2**24): the binding clamps gas to it,
the dev node enforces it, and the contract sizes its commit cap so that finalize fits under it.
``ANVIL_CHAIN_ID`` is the local development chain, the only one on which the public Anvil
development keys or ``anvil_setBalance`` may be used. ``ZERO_HASH`` is the 32 zero bytes that
stand for "none" in commitments, Merkle roots and record links.
"""

from __future__ import annotations

#: EIP-7825's per-transaction gas cap (16,777,216 = 2**24).
TX_GAS_CAP = 16_777_216

#: Chain id of a local Anvil (and Hardhat) development node.
ANVIL_CHAIN_ID = 31337

#: ``bytes32(0)``: an empty Merkle root, the first record's previous link, "no commitment".
ZERO_HASH = b"\x00" * 32
