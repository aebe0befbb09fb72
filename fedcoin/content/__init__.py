"""Content-addressed data: the round's task spec and the stores (local or IPFS) that hold blobs,
each checked against a hash the chain vouches for."""
