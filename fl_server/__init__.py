"""The FL coordinator: data, client partitions, FedAvg in JAX, publishing rounds."""
