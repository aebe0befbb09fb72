"""The FedCoin ClientApp: one SuperNode = one data owner, with its own key and its own data.

Each SuperNode is started with its own ``--node-config`` (never a key in it, only paths)::

    flower-supernode --insecure --superlink 127.0.0.1:9092 --port 9094 \\
        --node-config 'keystore="/home/alice/alice.json" data="npz:/home/alice/data.npz"'

with the keystore's password in the SuperNode's environment (``$FEDCOIN_KEYSTORE_PASSWORD``,
or the variable the node-config key ``password-env`` names). Node-config keys:

``keystore`` (required), ``password-env``, ``data`` (required: ``npz:FILE``, ``idx:DIR``,
``mnist``, ``digits``), ``partition`` (demo: ``k/K``), ``samples``, ``partition-seed``,
``seed`` (training seed; default from the address), ``rpc`` and ``store`` (default: what the
server says), ``lr``, ``local-steps``, ``batch-size`` (default: what the server suggests).

On a ``train`` message the node: opens the contract the server names (its code checked to be
this FedCoin), derives the round's global model *from the chain* (:class:`fl_server.client.DataOwner`)
and refuses to train if the arrays the server sent differ from it, trains locally, uploads Δ,
registers it from the node's own account (once: a restarted node finds its registration), and
replies with ``ConfigRecord(client, hash, locator, n-k)`` and ``MetricRecord(num-examples)``.
"""

from __future__ import annotations

from flwr.app import ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp

from fedcoin.chain.keys import PASSWORD_ENV

from .strategy import REPLY_KEY, from_record

app = ClientApp()

_OWNERS: dict[tuple, object] = {}


def _get(cfg, key: str, default=None):
    v = cfg.get(key, default) if hasattr(cfg, "get") else default
    return default if v is None or v == "" else v


def data_owner(node_config, config):
    """The node's :class:`~fl_server.client.DataOwner` for the task the server names (cached)."""
    import jax

    from fedcoin.chain import open_fedcoin
    from fedcoin.chain.keys import load_account
    from fedcoin.content.store import open_store
    from fedcoin.ml.models import Arch

    from fl_server.client import ClientError, DataOwner, TrainingConfig, client_data, seed_from_address

    keystore = _get(node_config, "keystore")
    if not keystore:
        raise ClientError("this SuperNode has no keystore: start it with --node-config 'keystore=\"PATH\" data=\"...\"'")
    data_src = _get(node_config, "data")
    if not data_src:
        raise ClientError("this SuperNode has no data: add data=\"npz:FILE\" (or idx:DIR, mnist, digits) to --node-config")
    rpc = _get(node_config, "rpc", config["fedcoin-rpc"])
    store = _get(node_config, "store", config["fedcoin-store"])
    key = (rpc, config["fedcoin-contract"], int(config["fedcoin-task"]), keystore, store)
    if key in _OWNERS:
        return _OWNERS[key]
    account = load_account(keystore, password_env=str(_get(node_config, "password-env", PASSWORD_ENV)), prompt=False)
    fc = open_fedcoin(rpc, config["fedcoin-contract"], account)
    if fc.chain_id != int(config["fedcoin-chain-id"]):
        raise ClientError(f"the server trains on chain {config['fedcoin-chain-id']}, this node's RPC is chain {fc.chain_id}")
    data, _, _ = client_data(str(data_src), partition_spec=_get(node_config, "partition"),
                             samples=int(_get(node_config, "samples", 500)),
                             partition_seed=int(_get(node_config, "partition-seed", 0)))
    training = TrainingConfig(float(_get(node_config, "lr", config["lr"])),
                              int(_get(node_config, "local-steps", config["local-steps"])),
                              int(_get(node_config, "batch-size", config["batch-size"])))
    seed = int(_get(node_config, "seed", seed_from_address(account.address)))
    owner = DataOwner(fc, int(config["fedcoin-task"]), data, open_store(str(store)),
                      arch=Arch.parse(str(config["fedcoin-arch"])), init_seed=int(config["fedcoin-init-seed"]),
                      key=jax.random.key(seed), training=training)
    _OWNERS[key] = owner
    return owner


@app.train()
def train(msg: Message, context: Context) -> Message:
    from fl_server.client import ClientError, params_hash

    config = msg.content["config"]
    owner = data_owner(context.node_config, config)
    rnd = int(config["fedcoin-round"])
    w = owner.model_for_round(rnd)
    sent = from_record(msg.content["arrays"], list(w))
    if params_hash(sent) != params_hash(w):
        raise ClientError(f"round {rnd}: the model the server sent is not the one the chain's round {rnd - 1} "
                          f"spec and registrations give; not training on it")
    rec = owner.register(rnd, w)
    if rec.outcome == "closed":
        raise ClientError(f"round {rnd}: registration closed before this node registered")
    ev = next(e for e in owner.fc.registrations(owner.task_id, rnd) if e.args["client"] == owner.address)
    reply = ConfigRecord({"client": owner.address, "hash": "0x" + bytes(ev.args["updateHash"]).hex(),
                          "locator": ev.args["locator"], "n-k": int(ev.args["dataCost"])})
    print(f"[fedcoin client {owner.address[:10]}] round {rnd}: {rec.outcome} update "
          f"0x{bytes(ev.args['updateHash']).hex()[:10]}… n_k={int(ev.args['dataCost'])}", flush=True)
    content = RecordDict({REPLY_KEY: reply, "metrics": MetricRecord({"num-examples": int(ev.args["dataCost"])})})
    return Message(content, reply_to=msg)

