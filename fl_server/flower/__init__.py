"""FedCoin on Flower, the FL framework users already run (``flwr``, Message API, no Ray).

* :class:`~fl_server.flower.strategy.FedCoinFedAvg` — a strategy for Flower's ServerApp that
  subclasses Flower's own ``FedAvg``: it asks every SuperNode to train, keeps only the replies
  whose (hash, locator, n_k) the chain has registered for that node's account, aggregates
  exactly the registered updates in registration order (the one FedAvg rule, byte-reproducible
  from the chain and the store), and publishes the round's Shapley task on the FedCoin contract,
  then waits for the miners to settle the round before the next.
* :mod:`fl_server.flower.client_app` — a ClientApp: each SuperNode trains on its own data with
  its own key (both configured per node with ``--node-config``), uploads Δ, registers it on-chain
  from the node's account and replies with (hash, locator, n_k).
* :mod:`fl_server.flower.server_app` — the ServerApp that runs the strategy for a task.
* ``fl_server/flower/app/`` — the Flower App (``pyproject.toml``) that ``flwr run`` submits.

See docs/flower.md for the commands of a local deployment (``flower-superlink``,
``flower-supernode`` ×3, ``flwr run``), all on 127.0.0.1.
"""
