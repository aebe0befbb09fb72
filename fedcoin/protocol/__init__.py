"""Protocol primitives: fixed point, the commitment hash, Merkle trees, and the off-chain reference
model of every contract rule. Pure functions; nothing here talks to a chain or a store."""
