"""The payout and client-list Merkle trees, byte-identical to ``contracts/lib/MerkleTree.sol``.

Shape (the contract builds the same tree in ``MerkleTree.rootInPlace``):

* leaves in the given order (payouts: registration order; clients: the ascending list given
  to ``createTask``);
* each level hashes neighbours (2i, 2i+1) with :func:`hash_pair` — keccak256 of the two
  32-byte nodes in ascending byte order, so proofs need no left/right flags;
* an odd last node is promoted unchanged (and contributes no proof element);
* one leaf: root = leaf; no leaves: root = 32 zero bytes.

Leaves are **double hashed** (``keccak256(bytes.concat(keccak256(abi.encode(...))))``), so a
leaf's outer preimage is 32 bytes while an inner node's is 64: an inner node can never pass as
a leaf (the second-preimage / 64-byte-leaf attack).

* :func:`payout_leaf` mirrors ``MerkleTree.payoutLeaf(taskId, round, client, amount)``;
* :func:`client_leaf` mirrors ``MerkleTree.clientLeaf(client)``.

Examples:
    >>> t = MerkleTree([client_leaf("0x" + "11" * 20), client_leaf("0x" + "22" * 20)])
    >>> verify(t.proof(1), t.root, t.leaves[1])
    True
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

from eth_abi import encode as abi_encode
from eth_utils import keccak

from fedcoin.protocol.constants import ZERO_HASH


def hash_pair(a: bytes, b: bytes) -> bytes:
    """keccak256 of the two nodes in ascending order (``MerkleTree.hashPair``)."""
    return keccak(a + b) if a < b else keccak(b + a)


def payout_leaf(task_id: int, round: int, client: str, amount: int) -> bytes:
    """``keccak256(bytes.concat(keccak256(abi.encode(taskId, round, client, amount))))``."""
    return keccak(keccak(abi_encode(["uint256", "uint256", "address", "uint256"], [task_id, round, client, amount])))


def client_leaf(client: str) -> bytes:
    """``keccak256(bytes.concat(keccak256(abi.encode(client))))`` (abi.encode of an address is
    the 20 bytes left-padded to 32)."""
    raw = bytes.fromhex(client[2:] if client.startswith("0x") else client)
    if len(raw) != 20:
        raise ValueError(f"not an address: {client!r}")
    return keccak(keccak(b"\x00" * 12 + raw))


@dataclass
class MerkleTree:
    """A built tree: ``levels[0]`` are the leaves, ``levels[-1] == [root]``."""

    leaves: list[bytes]
    levels: list[list[bytes]] = field(init=False)

    def __post_init__(self) -> None:
        self.leaves = [bytes(x) for x in self.leaves]
        levels = [list(self.leaves)]
        while len(levels[-1]) > 1:
            cur = levels[-1]
            nxt = [hash_pair(cur[i], cur[i + 1]) for i in range(0, len(cur) - 1, 2)]
            if len(cur) % 2 == 1:
                nxt.append(cur[-1])
            levels.append(nxt)
        self.levels = levels

    @property
    def root(self) -> bytes:
        return self.levels[-1][0] if self.leaves else ZERO_HASH

    def proof(self, index: int) -> list[bytes]:
        """Sibling path of leaf ``index``, bottom up (promoted levels add nothing)."""
        if not 0 <= index < len(self.leaves):
            raise IndexError(f"leaf index {index} out of range for {len(self.leaves)} leaves")
        path = []
        for level in self.levels[:-1]:
            sib = index ^ 1
            if sib < len(level):
                path.append(level[sib])
            index //= 2
        return path


def merkle_root(leaves: Sequence[bytes]) -> bytes:
    """Root of ``leaves`` (``MerkleTree.rootInPlace``)."""
    return MerkleTree(list(leaves)).root


def verify(proof: Sequence[bytes], root: bytes, leaf: bytes) -> bool:
    """``MerkleTree.verify``: fold the proof over the leaf and compare with the root."""
    h = bytes(leaf)
    for p in proof:
        h = hash_pair(h, bytes(p))
    return h == bytes(root)


def payout_tree(task_id: int, round: int, clients: Sequence[str], amounts: Sequence[int]) -> MerkleTree:
    """The round's payout tree: one leaf per registered client, registration order."""
    if len(clients) != len(amounts):
        raise ValueError(f"{len(clients)} clients but {len(amounts)} amounts")
    return MerkleTree([payout_leaf(task_id, round, c, a) for c, a in zip(clients, amounts)])


def client_tree(clients: Sequence[str]) -> MerkleTree:
    """The task's client-list tree (clients ascending, as ``createTask`` requires)."""
    return MerkleTree([client_leaf(c) for c in clients])
