"""A small finished history for the index and explorer tests, driven by ``round_driver`` on a real
Anvil: task 1 (3 clients, 2 rounds, both settled, every payout claimed but one) and task 2
(1 round won only after a re-open), so every kind of event appears at least once."""

from __future__ import annotations

from fedcoin.chain import FedCoin
from fedcoin_testkit import ETH, actors, default_params, vec
from round_driver import claim_all, finalize, play_round


def build_history(w3):
    """Deploy a fresh FedCoin and play the history; returns (fc as requester, actors)."""
    a = actors(n_clients=3, n_miners=3)
    fc = FedCoin.deploy(w3, a.requester, default_params())
    req = fc.as_account(a.requester)
    clients = [c.address for c in a.clients]
    t1 = req.create_task(a.server.address, clients, 2, 2 * ETH + 3).task_id
    fc.as_account(a.server).accept_task(t1)
    for rnd in range(2):
        vs = [vec([0.40, 0.30, -0.05 + rnd / 10]), vec([0.42, 0.28, -0.04]), vec([0.9, -0.5, 0.7])]
        play_round(w3, fc, a, t1, rnd, vs, [100, 300, 5], reveal_mask=[True, True, rnd == 0])
        finalize(fc, a, t1, rnd)
        claim_all(fc, a, t1, rnd, only=None if rnd == 0 else a.clients[:1])
    t2 = req.create_task(a.server.address, clients, 1, ETH).task_id
    fc.as_account(a.server).accept_task(t2)
    # per coordinate the lower median takes -5 from each, so the centre (-5, -5, 0) is 10 from both: re-open
    play_round(w3, fc, a, t2, 0, [vec([5, -5, 0]), vec([-5, 5, 0])], [1, 1])
    finalize(fc, a, t2, 0)
    play_round(w3, fc, a, t2, 0, [vec([0.2, 0.1, 0.3]), vec([0.2, 0.1, 0.31])], [7, 9], register=False)
    finalize(fc, a, t2, 0)
    fc.as_account(a.server).withdraw()
    return fc, a
