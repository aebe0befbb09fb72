"""FedCoin: the shared package, on floors — protocol primitives and the ML game at the bottom,
content (spec, stores) and the chain binding above them, the requester/audit roles above that,
and developer tooling (dev/) apart. Nothing imports from a floor above its own."""
