"""The FedCoin ServerApp: runs :class:`~fl_server.flower.strategy.FedCoinFedAvg` for one task.

Submitted with ``flwr run fl_server/flower/app SUPERLINK --run-config '...'``. Run-config keys
(defaults in ``fl_server/flower/app/pyproject.toml``): ``rpc``, ``contract`` (default: the
recorded deployment), ``task`` (required), ``store``, ``data`` (the validation set's source),
``arch``, ``seed``, ``val-size``, ``lr``, ``local-steps``, ``batch-size``, ``round-timeout``, ``keystore``.

The server's key never travels in the run config: the ServerApp runs in the SuperLink's
environment and loads ``keystore`` (a path) or ``$FEDCOIN_KEYSTORE`` with the password in
``$FEDCOIN_KEYSTORE_PASSWORD``, or ``$FEDCOIN_PRIVATE_KEY`` (:mod:`fedcoin.chain.keys`).
"""

from __future__ import annotations

from flwr.app import Context
from flwr.serverapp import Grid, ServerApp

app = ServerApp()


def _get(cfg, key, default):
    v = cfg.get(key, default)
    return default if v is None or v == "" else v


def run_task(grid: Grid, cfg) -> list:
    """Accept the task if needed and run its remaining rounds through Flower; the round reports."""
    from fedcoin.chain import open_fedcoin
    from fedcoin.chain.keys import load_account
    from fedcoin.content.store import open_store

    from fl_server.server import FLServer, ServerConfig

    from .strategy import FedCoinFedAvg, to_record

    rpc, store = str(_get(cfg, "rpc", "http://127.0.0.1:8545")), str(_get(cfg, "store", "local"))
    account = load_account(_get(cfg, "keystore", None), prompt=False)
    fc = open_fedcoin(rpc, _get(cfg, "contract", None), account)
    timeout = float(_get(cfg, "round-timeout", 0)) or None
    config = ServerConfig(
        data=str(_get(cfg, "data", "mnist")), arch=_get(cfg, "arch", None), seed=int(_get(cfg, "seed", 0)),
        val_size=int(_get(cfg, "val-size", 1000)),
        lr=float(_get(cfg, "lr", 0.1)), local_steps=int(_get(cfg, "local-steps", 20)),
        batch_size=int(_get(cfg, "batch-size", 50)), poll_interval=float(_get(cfg, "poll", 1.0)), round_timeout=timeout)
    server = FLServer(fc, int(cfg["task"]), [], open_store(store), config)
    server.accept()
    info = server.task()
    remaining = info.rounds - info.current_round
    strategy = FedCoinFedAvg(server, rpc_url=rpc, store=store)
    if remaining > 0:
        strategy.start(grid=grid, initial_arrays=to_record(server.global_model(info.current_round)),
                       num_rounds=remaining, timeout=float(_get(cfg, "reply-timeout", 3600)))
    final = server.task()
    print(f"[fedcoin server] task {server.task_id}: {len(strategy.rounds)} round(s) run through Flower, task "
          f"status {final.status.name.lower()}, server credit {fc.credits(account.address)} wei", flush=True)
    return strategy.rounds


@app.main()
def main(grid: Grid, context: Context) -> None:
    run_task(grid, context.run_config)
