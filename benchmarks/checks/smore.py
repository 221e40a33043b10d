"""Seed check for Sikchi et al., "Score Models for Offline Goal-Conditioned RL" (SMORe, ICLR 2024; METHODS.md #21).

Data generated in the project (no offline dataset ships in a package): four-rooms (slip 0.1,
episodes of 200 steps), ``RANDOM_STEPS`` steps of the uniform random walk plus ``EXPERT_STEPS``
steps of the noisy waypoint controller (``epsilon = 0.2``): mostly suboptimal data with a
minority of goal-directed behaviour, the mix of the paper's offline GCRL protocol.

Three tabular methods of :mod:`contrastkit.rl.offline_gcrl` with the same hindsight batches
(a data half with uniform-future goals, a goal-transition half), the same AWR actor (temperature 3,
clip 100), the same expectile (0.8) and the same ``STEPS`` steps of ``BATCH``: SMORe's
``smore_stable`` score, an IQL-style expectile critic on the ``-1``-per-step goal reward, and
GCBC (AWR weights 1). Metric: the exact probability of reaching a uniform goal from a uniform
start within ``HORIZON`` steps with the greedy actor (:func:`contrastkit.rl.critics.success_rate`).

Rows: ``smore-vs-gcbc`` and ``smore-vs-iql``. Extras: the exact-Q oracle's success, and
each critic's own greedy policy ``argmax_a S(s, a, g)`` (no actor extraction).
"""

from __future__ import annotations

import numpy as np
import torch

RANDOM_STEPS, EXPERT_STEPS, EPISODE, STEPS, BATCH, HORIZON, GAMMA = 40_000, 10_000, 200, 6000, 1024, 50, 0.95
QUICK = {"random": 2000, "expert": 1000, "steps": 20}

DATA = f"four-rooms, slip 0.1: {RANDOM_STEPS // 1000}k random-walk + {EXPERT_STEPS // 1000}k waypoint steps"
CLAIM = ("SMORe's occupancy-matching score (smore_stable) with AWR reaches goals more often than GCBC and an "
         "IQL-style expectile critic from the same mixed-quality offline data (the paper's offline GCRL claim)")
_BUDGET = f"{STEPS} steps x ({BATCH} + {BATCH} goal transitions), tabular, gamma={GAMMA}"
ROWS = [
    dict(key=f"smore-vs-{name}", method="SMORe (smore_stable score + expectile M + AWR)", baseline=label,  # noqa: C408
         data=DATA, metric=f"goal-reaching success within {HORIZON} steps", budget=_BUDGET, higher_is_better=True,
         claim=CLAIM)
    for name, label in (("gcbc", "GCBC (same actor, weights 1)"), ("iql", "IQL-style expectile critic + AWR"))
]


def run(seed: int, quick: bool = False) -> dict[str, dict[str, float]]:
    from contrastkit.rl import (
        FourRooms,
        TabularPolicy,
        TrajectoryBuffer,
        WaypointPolicy,
        collect,
    )
    from contrastkit.rl.critics import critic_actions, oracle_actions, success_rate
    from contrastkit.rl.offline_gcrl import train_offline_gc

    torch.set_num_threads(1)
    q = QUICK if quick else {"random": RANDOM_STEPS, "expert": EXPERT_STEPS, "steps": STEPS}
    env = FourRooms(slip=0.1, max_steps=EPISODE)
    parts = (collect(env, TabularPolicy(np.full((104, 4), 0.25)), n_steps=q["random"], seed=seed),
             collect(env, WaypointPolicy(env, epsilon=0.2), n_steps=q["expert"], seed=seed + 1000))
    buffer = TrajectoryBuffer()
    for part in parts:
        for i in range(part.num_episodes):
            e = part.episode(i)
            buffer.add_episode(e["observations"], e["actions"], e["rewards"], terminals=e["terminals"])
    success, greedy = {}, {}
    for method in ("smore", "iql", "gcbc"):
        out = train_offline_gc(buffer, 104, 4, method, gamma=GAMMA, steps=q["steps"], batch_size=BATCH, seed=seed)
        success[method] = success_rate(env, out["actions"], HORIZON)
        greedy[method] = success_rate(env, critic_actions(out["score"]), HORIZON)
    extras = {"oracle_success": success_rate(env, oracle_actions(env), HORIZON),
              "smore_greedy_score_success": greedy["smore"], "iql_greedy_q_success": greedy["iql"]}
    return {f"smore-vs-{name}": {"ours": success["smore"], "baseline": success[name], **extras}
            for name in ("gcbc", "iql")}
