"""Check for contrastive RL (Eysenbach et al., NeurIPS 2022; issue 17): critics against the exact occupancy, and control.

Data: four-rooms (slip 0.1, episodes of ``EPISODE`` steps, much longer than ``1 / (1 - GAMMA)``)
walked by the uniform random policy, a Markov behaviour policy whose exact discounted occupancy
:func:`contrastkit.rl.critics.occupancy_ratio` gives in closed form. Critics
``phi(s, a) . psi(g)`` with contrastive_rl's encoders (2 x 256 ReLU MLPs on one-hot inputs,
``repr_dim`` 64, Xavier-uniform, Adam 3e-4, batch 256) trained for ``STEPS`` steps on
``sample_future`` triples with ``gamma = GAMMA``.

Rows:

1. ``crl-infonce-occupancy`` / ``crl-nce-occupancy``: Spearman correlation between the critic
   ``f(s, a, g)`` and the exact ``p(g | s, a) / p(g)`` over every ``(s, a)`` the data visit and
   every goal (about 43 000 triples). Baseline: the same critic untrained (its initialisation).
   The issue expects >= 0.9 for InfoNCE (extra ``at_least_0.9``). Extras: the per-row Spearman
   (over goals for each ``(s, a)``, blind to a per-row constant) and a count table from the
   same ``STEPS x 256`` sampled pairs (``count_spearman``: ``n(s, a, g) / n(s, a) / (n(g) / n)``).
2. ``crl-control-vs-gcbc`` / ``crl-control-vs-oracle``: the exact probability of reaching a
   uniform goal from a uniform start within ``HORIZON`` steps, acting ``argmax_a f(s, a, g)`` with the
   InfoNCE critic; baselines goal-conditioned BC (the same MLP sizes, goals, optimiser and steps)
   and the exact-Q optimum from the dynamics (the ceiling). Extra: greedy on the *exact*
   behaviour critic ``p(g | s, a)`` (what a perfect critic would do) and random actions.
"""

from __future__ import annotations

import numpy as np
import torch

GAMMA, EPISODE, DATA_STEPS, STEPS, BATCH, LR, HORIZON = 0.95, 1000, 50_000, 2000, 256, 3e-4, 50
HIDDEN, REPR = (256, 256), 64
QUICK = {"data": 5000, "steps": 20}

DATA = f"four-rooms, slip 0.1, uniform random walk, {DATA_STEPS // 1000}k steps"
CLAIM = ("a contrastive critic phi(s,a).psi(g) trained on future-state pairs recovers the discounted occupancy "
         "ratio p(g|s,a)/p(g) (InfoNCE expected Spearman >= 0.9), and acting greedily on it reaches goals "
         "(reported against GCBC and the exact-Q oracle; the gap is the finding)")
_BUDGET = f"{STEPS} steps x {BATCH}, gamma={GAMMA}"
ROWS = [
    dict(key="crl-infonce-occupancy", method="InfoNCE critic (+0.01 logsumexp^2), 2x256 MLPs",  # noqa: C408
         baseline="the same critic untrained", data=DATA, metric="Spearman vs exact p(g|s,a)/p(g)",
         budget=_BUDGET, higher_is_better=True, claim=CLAIM),
    dict(key="crl-nce-occupancy", method="binary NCE critic (contrastive_rl default), 2x256 MLPs",  # noqa: C408
         baseline="the same critic untrained", data=DATA, metric="Spearman vs exact p(g|s,a)/p(g)",
         budget=_BUDGET, higher_is_better=True, claim=CLAIM),
    dict(key="crl-control-vs-gcbc", method="greedy on the InfoNCE critic", baseline="GCBC (same MLPs, goals, steps)",  # noqa: C408
         data=DATA, metric=f"goal-reaching success within {HORIZON} steps", budget=_BUDGET,
         higher_is_better=True, claim=CLAIM),
    dict(key="crl-control-vs-oracle", method="greedy on the InfoNCE critic", baseline="exact-Q oracle",  # noqa: C408
         data=DATA, metric=f"goal-reaching success within {HORIZON} steps", budget=_BUDGET,
         higher_is_better=True, claim=CLAIM),
]


def _count_table(buffer, n_pairs: int, rng: np.random.Generator) -> np.ndarray:
    """``n(s, a, g) n / (n(s, a) n(g))`` from ``n_pairs`` sampled future pairs (0 where unseen)."""
    pairs = buffer.sample_future(n_pairs, GAMMA, rng)
    s = buffer.observations[pairs["anchor"]].astype(np.int64)
    a = buffer.actions[pairs["action"]].astype(np.int64)
    g = buffer.observations[pairs["positive"]].astype(np.int64)
    counts = np.zeros((104, 4, 104))
    np.add.at(counts, (s, a, g), 1.0)
    n_sa, n_g = counts.sum(axis=2, keepdims=True), counts.sum(axis=(0, 1))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.nan_to_num(counts * n_pairs / (n_sa * n_g[None, None, :]))


def run(seed: int, quick: bool = False) -> dict[str, dict[str, float]]:
    from contrastkit.rl import FourRooms, TabularPolicy, collect
    from contrastkit.rl.critics import (
        ContrastiveCritic,
        anchor_distribution,
        critic_actions,
        occupancy_ratio,
        oracle_actions,
        spearman,
        success_rate,
        train_contrastive_critic,
    )
    from contrastkit.rl.offline_gcrl import train_gcbc

    torch.set_num_threads(1)
    data_steps, steps = (QUICK["data"], QUICK["steps"]) if quick else (DATA_STEPS, STEPS)
    env = FourRooms(slip=0.1, max_steps=EPISODE)
    policy = np.full((env.n_states, env.n_actions), 1.0 / env.n_actions)
    buffer = collect(env, TabularPolicy(policy), n_steps=data_steps, seed=seed)
    rho = anchor_distribution(buffer, env.n_states, env.n_actions)
    exact = occupancy_ratio(env, policy, GAMMA, rho)
    visited = rho > 0
    log_ratio = np.log(exact["ratio"][visited])

    def scores(table: np.ndarray) -> tuple[float, float]:
        rows = [spearman(row, ref) for row, ref in zip(table[visited], log_ratio)]
        return spearman(table[visited], log_ratio), float(np.mean(rows))

    torch.manual_seed(seed)
    untrained = scores(ContrastiveCritic(env.n_states, env.n_actions, REPR, HIDDEN).table())
    count = scores(_count_table(buffer, steps * BATCH, np.random.default_rng(seed + 1000)))
    tables, rows = {}, {}
    for loss in ("infonce", "nce"):
        critic = train_contrastive_critic(buffer, env.n_states, env.n_actions, loss=loss, gamma=GAMMA, steps=steps,
                                          batch_size=BATCH, lr=LR, repr_dim=REPR, hidden=HIDDEN, seed=seed)
        tables[loss] = critic.table()
        ours = scores(tables[loss])
        rows[f"crl-{loss}-occupancy"] = {
            "ours": ours[0], "baseline": untrained[0], "at_least_0.9": float(ours[0] >= 0.9),
            "per_row_spearman": ours[1], "untrained_per_row_spearman": untrained[1],
            "count_spearman": count[0], "count_per_row_spearman": count[1],
        }
    critic_success = success_rate(env, critic_actions(tables["infonce"]), HORIZON)
    gcbc = train_gcbc(buffer, env.n_states, env.n_actions, gamma=GAMMA, steps=steps, batch_size=BATCH, lr=LR,
                      hidden=HIDDEN, seed=seed)
    extras = {
        "nce_critic_success": success_rate(env, critic_actions(tables["nce"]), HORIZON),
        "exact_critic_success": success_rate(env, critic_actions(exact["conditional"]), HORIZON),
        "random_actions_success": success_rate(env, np.random.default_rng(seed).integers(0, 4, (104, 104)), HORIZON),
    }
    rows["crl-control-vs-gcbc"] = {"ours": critic_success, "baseline": success_rate(env, gcbc, HORIZON), **extras}
    rows["crl-control-vs-oracle"] = {"ours": critic_success,
                                     "baseline": success_rate(env, oracle_actions(env), HORIZON), **extras}
    return rows


def summary(runs: dict[str, dict]) -> str:
    """How many seeds reach the issue's Spearman bar, and the control gaps."""
    seeds = list(runs.values())
    bar = sum(r["rows"]["crl-infonce-occupancy"]["ours"] >= 0.9 for r in seeds)
    gap_gcbc = np.mean([r["rows"]["crl-control-vs-gcbc"]["ours"] - r["rows"]["crl-control-vs-gcbc"]["baseline"]
                        for r in seeds])
    gap_oracle = np.mean([r["rows"]["crl-control-vs-oracle"]["ours"] - r["rows"]["crl-control-vs-oracle"]["baseline"]
                          for r in seeds])
    return (f"Contrastive RL on four-rooms: the InfoNCE critic's Spearman with the exact occupancy ratio is >= 0.9 on "
            f"{bar} of {len(seeds)} seeds; greedy control on it minus GCBC: {gap_gcbc:+.3f}, minus the exact-Q "
            f"oracle: {gap_oracle:+.3f} success (mean over seeds).")
