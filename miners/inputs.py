"""Turn a published round into the Shapley game's arrays, trusting nothing but the chain.

Every byte a miner computes on is checked against a hash that the chain vouches for:

* the task spec against ``specHash`` in the round's on-chain state;
* the spec's binding (chain id, contract, task, round) against the round being mined;
* the spec's ordered update list against the ``UpdateRegistered`` events (client, hash,
  locator, n_k, in registration order), so a server cannot substitute or reorder updates;
* each update blob against its registered hash, and the global model and validation set
  against the hashes in the (already verified) spec;
* the spec's payment rule against the task's on-chain rule, and a CSVES gate's seed against
  :func:`fedcoin.content.csves_gate.csves_seed` of the round (nobody may choose it);
* the spec's exclusion list against this miner's own run of the deterministic checks of
  :mod:`fedcoin.content.checks` (so a server can neither exclude a valid update nor include a
  NaN, a wrong shape, an out-of-range data cost or, under a CSVES gate, an update whose
  recomputed class-sampled error is not below τ). ``unavailable`` is the one verdict taken
  from the server as given (a miner cannot tell a lying server from a missing upload);
* when the task requires trainers on the miner's FLChain, each registration against FLChain's
  ``joinedAt`` and the block of its ``UpdateRegistered`` event (``unregistered-trainer``,
  :mod:`fedcoin.content.trainer_gate`): a spec that keeps an unjoined client's update, or
  excludes a joined one for that reason, is refused.

The game is built over the included updates only; :meth:`RoundInputs.expand` puts their
values back at their registration indices, with 0 for every excluded client.

A mismatch raises :class:`TaskRefused` naming the blob; the miner then stops work on that
task and commits nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from fedcoin.content import checks, csves_gate, trainer_gate
from fedcoin.content import spec as specs
from fedcoin.content.store import ContentStore, StoreError, hash_hex, parse_hash
from fedcoin.ml.models import Arch
from fedcoin.ml.serialization import SerializationError, dataset_from_bytes, params_from_bytes
from fedcoin.ml.utility import RoundGame


class TaskRefused(RuntimeError):
    """The round's inputs cannot be trusted or used; the message names the blob and why."""


@dataclass(frozen=True)
class RoundInputs:
    """A verified round: the parsed spec and the game over its included updates.

    Attributes:
        spec: the verified task spec.
        game: the Shapley game of the included clients (``game.n_players == len(included)``).
        included: registration indices of the game's players, ascending.
        n_registered: the round's number of registrations (the length of a revealed vector).
    """

    spec: specs.TaskSpec
    game: RoundGame
    included: tuple[int, ...]
    n_registered: int

    def expand(self, phi: Sequence[float]) -> list[float]:
        """The game's values at their registration indices, 0.0 for excluded clients."""
        if len(phi) != len(self.included):
            raise ValueError(f"expected {len(self.included)} values (one per included client), got {len(phi)}")
        out = [0.0] * self.n_registered
        for i, v in zip(self.included, phi):
            out[i] = float(v)
        return out


def _fetch(store: ContentStore, what: str, locator: str, expected: bytes | str) -> bytes:
    try:
        return store.get(locator, expected)
    except (StoreError, ValueError, OSError) as e:
        raise TaskRefused(f"{what} at {locator} (expected hash {hash_hex(parse_hash(expected))}): {e}") from e


def load_round(fc, store: ContentStore, task_id: int, round: int, *, flchain=None) -> RoundInputs:
    """Fetch and verify everything round ``round`` of task ``task_id`` needs.

    Args:
        fc: a :class:`fedcoin.chain.FedCoin` binding.
        store: the content store the server published to.
        flchain: the FLChain serving ``fc`` (:func:`fedcoin.flchain.binding.flchain_for`)
            whose trainer requirement this miner re-checks; None: this miner checks none (and
            refuses a spec that excludes an update as ``unregistered-trainer``).

    Returns:
        :class:`RoundInputs` with float32 arrays in registration order.

    Raises:
        TaskRefused: a blob is missing, fails its hash, or the spec disagrees with the chain.
    """
    info = fc.get_round(task_id, round)
    published = fc.published_events(task_id, round)
    if not published:
        raise TaskRefused(f"task {task_id} round {round}: no ShapleyTaskPublished event")
    spec_locator = published[-1]["specLocator"]
    raw = _fetch(store, f"task spec of task {task_id} round {round}", spec_locator, info.spec_hash)
    try:
        spec = specs.parse(raw)
    except specs.SpecError as e:
        raise TaskRefused(f"task spec {spec_locator} is malformed: {e}") from e

    bound = (spec.chain_id, spec.contract.lower(), spec.task_id, spec.round)
    expected = (fc.chain_id, fc.address.lower(), task_id, round)
    if bound != expected:
        raise TaskRefused(f"task spec {spec_locator} is bound to {bound}, not to {expected}")

    regs = fc.registrations(task_id, round)
    on_chain = [(r["client"].lower(), "0x" + bytes(r["updateHash"]).hex(), r["locator"], int(r["dataCost"])) for r in regs]
    in_spec = [(u.client.lower(), u.hash, u.locator, u.n_k) for u in spec.updates]
    if on_chain != in_spec:
        raise TaskRefused(
            f"task spec {spec_locator} lists {len(in_spec)} updates that differ from the "
            f"{len(on_chain)} registered on chain (first difference at position "
            f"{next((i for i, (a, b) in enumerate(zip(on_chain, in_spec)) if a != b), min(len(on_chain), len(in_spec)))})"
        )

    if dict(spec.checks) != specs.default_checks():
        raise TaskRefused(f"task spec {spec_locator} uses check bounds {spec.checks}, this miner applies "
                          f"{specs.default_checks()}")
    rule = fc.payment_rule(task_id)
    if spec.payment != rule:
        raise TaskRefused(f"task spec {spec_locator} says payment {spec.payment!r}, the task's on-chain rule is {rule!r}")
    arch = spec.model_arch
    try:
        w_t = params_from_bytes(_fetch(store, "global model", spec.global_model.locator, spec.global_model.hash), arch)
        x, y = dataset_from_bytes(_fetch(store, "validation set", spec.validation.locator, spec.validation.hash))
    except SerializationError as e:
        raise TaskRefused(f"a blob of task {task_id} round {round} does not decode: {e}") from e
    gate = None
    if spec.csves is not None:
        c = csves_gate.Csves.from_json(spec.csves)
        want = csves_gate.csves_seed(fc.chain_id, fc.address, task_id, round)
        if c.seed != want:
            raise TaskRefused(f"task spec {spec_locator}: CSVES seed 0x{c.seed.hex()} is not the round's "
                              f"0x{want.hex()} (the seed is derived, never chosen)")
        gate = csves_gate.CsvesContext(c, w_t, x, y, arch.sizes[-1])
    listed = {e.index: e.reason for e in spec.excluded}
    trainers = trainer_gate.trainer_gate(flchain, task_id)
    if flchain is None and trainer_gate.REASON in listed.values():
        raise TaskRefused(f"task spec {spec_locator} excludes updates as {trainer_gate.REASON!r}, which this miner "
                          f"cannot check: it reads no FLChain (fedcoin mine --flchain ADDRESS)")
    verdicts = checks.check_registrations(
        store, arch, checks.registrations_from_events(regs),
        unavailable=lambda r: listed.get(r.index) == "unavailable", csves=gate, trainers=trainers,
    )
    mine = {e.index: e.reason for e in verdicts.excluded}
    if mine != listed:
        first = min(i for i in set(mine) | set(listed) if mine.get(i) != listed.get(i))
        u = spec.updates[first]
        detail = next((e.detail for e in verdicts.excluded if e.index == first), "")
        raise TaskRefused(
            f"update of client {u.client} (#{first}) at {u.locator}: the spec says "
            f"{listed.get(first, 'included')}, this miner's checks say {mine.get(first, 'included')}"
            f"{' (' + detail + ')' if detail else ''}; the server's exclusion list is wrong "
            f"(spec {spec_locator} excludes {sorted(listed.items())}, the checks give {sorted(mine.items())})"
        )
    on_chain_excluded = published[-1].args.get("excluded")
    if on_chain_excluded is not None and tuple(int(i) for i in on_chain_excluded) != spec.excluded_indices:
        raise TaskRefused(f"the exclusions published on chain {list(on_chain_excluded)} differ from the spec's "
                          f"{list(spec.excluded_indices)}")
    included = verdicts.included
    if x.shape[0] != spec.validation_n:
        raise TaskRefused(f"validation set has {x.shape[0]} rows, the spec says {spec.validation_n}")
    stacked = {name: np.stack([verdicts.updates[i][name] for i in included]) for name in Arch.shapes(arch)}
    n_k = np.asarray([spec.updates[i].n_k for i in included], np.float32)
    try:
        game = RoundGame.create(arch, w_t, stacked, n_k, x, y, aggregation=spec.aggregation, metric=spec.metric)
    except ValueError as e:
        raise TaskRefused(f"task {task_id} round {round} inputs are inconsistent: {e}") from e
    return RoundInputs(spec, game, tuple(included), len(spec.updates))
