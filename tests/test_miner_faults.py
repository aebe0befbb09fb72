"""The miner contains faults in-process: a spec that keeps a poisoned update is refused once,
durably (a restart does not retry it), and journal entries of a reset chain are set aside."""

from __future__ import annotations

import jax
import numpy as np

from conftest import chain_env
from fedcoin.content.spec import build_spec
from fedcoin.content.store import LocalStore
from fedcoin.ml.models import Arch, init_params
from fedcoin.ml.serialization import dataset_to_bytes, params_to_bytes
from fedcoin_testkit import ETH
from fl_server.data import load_digits
from miners.journal import Entry, Journal
from miners.miner import Miner, MinerConfig

env = chain_env(n_clients=3, n_miners=1)
ARCH = Arch.parse("logreg-64-10")


def _blob(params) -> bytes:
    return params_to_bytes({k: np.asarray(v, np.float32) for k, v in params.items()})


def _published_round_with_a_nan_update_kept_in(fc, a, store):
    task = fc.create_task(a.server.address, [c.address for c in a.clients], 1, ETH).task_id
    fc.as_account(a.server).accept_task(task)
    w = init_params(ARCH, key=jax.random.key(0))
    ups = []
    for i, c in enumerate(fc.task_clients(task)):
        d = {k: 0.01 * np.asarray(v) for k, v in w.items()}
        if i == 1:
            d["b0"][3] = np.nan
        h, loc = store.put_checked(_blob(d))
        fc.as_account(next(x for x in a.clients if x.address == c)).register_update(task, 0, h, loc, 50)
        ups.append((c, h, loc, 50))
    val = load_digits().val.take(100)
    g, v = store.put_checked(_blob(w)), store.put_checked(dataset_to_bytes(val.x, val.y))
    spec = build_spec(chain_id=fc.chain_id, contract=fc.address, task_id=task, round=0, arch=ARCH, global_model=g,
                      updates=ups, validation=v, validation_n=100)  # a server that skipped the checks
    # the deadlines follow from the task's own windows (robust protocol)
    fc.as_account(a.server).publish_shapley_task(task, 0, spec.hash(), store.put(spec.encode()))
    return task


def test_a_poisoned_spec_is_refused_once_and_not_retried_after_a_restart(env, tmp_path):
    w3, fc, a = env
    store = LocalStore(tmp_path / "store")
    task = _published_round_with_a_nan_update_kept_in(fc, a, store)
    lines: list[str] = []
    cfg = MinerConfig(poll_s=0.1, seed=1)
    m = Miner(fc.as_account(a.miners[0]), store, Journal(tmp_path / "j"), cfg, task=task, log=lines.append,
              progress=False)
    m.tick()
    refused = [line for line in lines if "REFUSED" in line]
    assert len(refused) == 1 and "non-finite" in refused[0] and "#1" in refused[0], lines
    assert fc.committed_events(task, 0) == []
    again: list[str] = []
    m2 = Miner(fc.as_account(a.miners[0]), store, Journal(tmp_path / "j"), cfg, task=task, log=again.append,
               progress=False)
    m2.tick()
    m2.tick()
    assert not any("REFUSED" in line for line in again) and fc.committed_events(task, 0) == []
    assert list(Journal(tmp_path / "j").refusals(*m2._meta_key()).values()) == [refused[0].split(": ", 1)[1].split(". Nothing")[0]]


def test_journal_entries_of_a_reset_chain_are_set_aside_and_reported(env, tmp_path):
    w3, fc, a = env
    j = Journal(tmp_path / "j")
    miner = a.miners[0]
    stale = Entry(chain_id=fc.chain_id, contract=fc.address, task_id=7, round=0, attempt=0, miner=miner.address,
                  values=[1, 2], iterations=3, salt="0x" + "11" * 32, commitment="0x" + "22" * 32,
                  status="committed", genesis="0x" + "ee" * 32)
    j.write(stale)
    lines: list[str] = []
    m = Miner(fc.as_account(miner), LocalStore(tmp_path / "s"), j, MinerConfig(), log=lines.append, progress=False)
    out = m.check_journal()
    assert len(out) == 1 and "chain was reset" in out[0] and "task 7" in out[0]
    assert list(j.entries(open_only=True)) == [] and (tmp_path / "j" / "stale").is_dir()
