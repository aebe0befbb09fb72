"""The PoSap miner: Shapley estimators in JAX and the mining loop."""
