"""FLChain (Bao et al., "FLChain: A Blockchain for Auditable Federated Learning with Trust and
Incentive") on FedCoin: the parts built so far (see docs/flchain.md for what is missing)."""
