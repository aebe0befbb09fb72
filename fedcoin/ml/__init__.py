"""The ML game: model architectures, the one FedAvg rule, safetensors encoding, and the round's
utility v(C) whose Shapley values miners estimate. Pure JAX; nothing here talks to a chain."""
