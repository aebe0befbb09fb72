"""FedCoin: shared code for every role (bindings, encodings, store, models, utility)."""
