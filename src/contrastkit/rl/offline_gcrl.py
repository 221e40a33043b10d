"""Offline goal-conditioned RL on discrete states: SMORe, an IQL-style expectile baseline and GCBC.

One job: turn a :class:`~contrastkit.rl.buffer.TrajectoryBuffer` of state/action indices into
a greedy goal-conditioned policy ``actions[g, s]`` by three methods that share the data,
the goal relabelling, the actor extraction and the budget and differ only in the critic:

- ``"smore"`` -- Sikchi et al. (ICLR 2024, seed #21): the score ``S(s, a, g)`` trained by
  :func:`contrastkit.functional.smore.smore_stable_loss` on a data half and a goal-transition
  half, the score ``M(s, g)`` by the expectile loss (``beta = 0.8``), the actor by AWR on ``S - M``;
- ``"iql"`` -- the same value and actor, but ``Q`` fitted to the goal-reaching reward
  (``r = 0`` and termination when ``s' = g``, else ``r = -1``): ``(Q - r - gamma (1 - done) V(s', g))^2``
  on both halves, i.e. IQL (Kostrikov et al., ICLR 2022) with hindsight goals, as OGBench's GCIQL;
- ``"gcbc"`` -- the same actor with every AWR weight 1: goal-conditioned behaviour cloning.

Batches, after ``hari-sikchi/SMORe`` ``dataset_utils.py``: the data half draws a uniform step
``t`` and a goal uniform over the episode's later observations (``sampling_mode='HER'``; the
official draws the dataset's commanded goal with probability 0.2, and these buffers have
none, so every goal is a hindsight goal); the goal-transition half draws a uniform step and
sets the goal to its next observation (the official picks the entering step through a
uniform future index of a uniform step, which weighs late steps more).

Deviations from the official SMORe (besides the losses' own, see :mod:`contrastkit.functional.smore`):
every function is a *table* (``S`` and ``Q`` ``[S, A, G]`` twin heads, ``M``/``V`` ``[S, G]``,
actor logits ``[S, G, A]``) instead of 3 x 256 MLPs with layer norm, so function approximation
is no confounder on a 104-state grid; the tables are trained by SGD with a per-visit step
(the learning rate times the batch size, the classic tabular TD rate) and the actor by Adam,
instead of Adam ``3e-4`` for everything and a cosine-decayed actor; ``gamma = 0.95`` by default
(official 0.99) so that the short four-rooms episodes back values up within the budget.
The Polyak target (``tau = 0.005``), the min over twin heads, the AWR temperature 3 and weight
clip 100, and the expectile 0.8 are the official values. GCBC and the MLP variant used with
contrastive critics are :func:`train_gcbc`.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

import numpy as np
import torch
from torch import nn

from contrastkit.functional.smore import (
    awr_actor_loss,
    awr_weights,
    expectile_loss,
    smore_stable_loss,
)
from contrastkit.rl.buffer import TrajectoryBuffer

__all__ = ["METHODS", "sample_goal_transitions", "sample_uniform_future", "train_gcbc", "train_offline_gc"]

METHODS = ("smore", "iql", "gcbc")


def _layout(buffer: TrajectoryBuffer) -> tuple[np.ndarray, np.ndarray]:
    lengths = buffer.episode_lengths
    step_start = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    return step_start, step_start + np.arange(len(lengths))


def sample_uniform_future(buffer: TrajectoryBuffer, batch_size: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Step rows and goal observation rows: a uniform step ``t``, goal uniform over ``t + 1 .. T_e`` (SMORe's HER)."""
    lengths = buffer.episode_lengths
    step = rng.integers(0, int(lengths.sum()), size=batch_size)
    step_start, obs_start = _layout(buffer)
    episode = np.searchsorted(step_start, step, side="right") - 1
    t = step - step_start[episode]
    k = 1 + (rng.random(batch_size) * (lengths[episode] - t)).astype(np.int64)  # 1 .. T_e - t
    obs = obs_start[episode] + t
    return {"step": step, "obs": obs, "next_obs": obs + 1, "goal": obs + k}


def sample_goal_transitions(buffer: TrajectoryBuffer, batch_size: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Transitions whose next observation is their goal: a uniform step, goal = its next observation."""
    step = rng.integers(0, buffer.num_steps, size=batch_size)
    step_start, obs_start = _layout(buffer)
    episode = np.searchsorted(step_start, step, side="right") - 1
    obs = obs_start[episode] + step - step_start[episode]
    return {"step": step, "obs": obs, "next_obs": obs + 1, "goal": obs + 1}


def train_offline_gc(
    buffer: TrajectoryBuffer, n_states: int, n_actions: int, method: str = "smore", *, gamma: float = 0.95,
    steps: int = 20000, batch_size: int = 256, step_size: float = 0.5, actor_lr: float = 0.01,
    expectile: float = 0.8, temperature: float = 3.0, tau: float = 0.005, seed: int = 0,
) -> dict[str, np.ndarray]:
    """Train tabular SMORe / IQL / GCBC on ``buffer``; return ``actions`` ``[G, S]`` (greedy) and the tables.

    ``step_size`` is the per-visit SGD step of the score/value tables (their learning rate
    is ``step_size * batch_size`` on batch-mean losses); ``actor_lr`` is Adam's on the actor logits.
    """
    if method not in METHODS:
        raise ValueError(f"train_offline_gc: expected method in {METHODS}, got {method!r}")
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    S, A = int(n_states), int(n_actions)
    obs_table = torch.as_tensor(buffer.observations, dtype=torch.long)
    act_table = torch.as_tensor(buffer.actions, dtype=torch.long)
    heads = [torch.zeros(S, A, S, requires_grad=True) for _ in range(2)]
    targets = [h.detach().clone() for h in heads]
    value = torch.zeros(S, S, requires_grad=True)
    logits = torch.zeros(S, S, A, requires_grad=True)
    critic_opt = torch.optim.SGD(heads, lr=step_size * batch_size)
    value_opt = torch.optim.SGD([value], lr=step_size * batch_size)
    actor_opt = torch.optim.Adam([logits], lr=actor_lr)
    for _ in range(steps):
        data = sample_uniform_future(buffer, batch_size, rng)
        goal = sample_goal_transitions(buffer, batch_size, rng)
        s, a = obs_table[data["obs"]], act_table[data["step"]]
        s_next, g = obs_table[data["next_obs"]], obs_table[data["goal"]]
        if method != "gcbc":
            # M / V: expectile of the target critic's min-of-twins on the data half.
            q_target = torch.minimum(targets[0][s, a, g], targets[1][s, a, g])
            value_loss = expectile_loss(q_target - value[s, g], expectile)
            value_opt.zero_grad(set_to_none=True)
            value_loss.backward()
            value_opt.step()
            weights = awr_weights(q_target, value.detach()[s, g], temperature)
        else:
            weights = torch.ones(batch_size)
        log_probs = torch.log_softmax(logits[s, g], dim=1).gather(1, a[:, None]).squeeze(1)
        actor_loss = awr_actor_loss(log_probs, weights)
        actor_opt.zero_grad(set_to_none=True)
        actor_loss.backward()
        actor_opt.step()
        if method == "gcbc":
            continue
        gs, ga = obs_table[goal["obs"]], act_table[goal["step"]]
        gs_next = obs_table[goal["next_obs"]]
        v = value.detach()
        if method == "smore":
            critic_loss = sum(smore_stable_loss(h[s, a, g], h[gs, ga, gs_next], v[s_next, g], gamma) for h in heads)
        else:
            both_s, both_a = torch.cat([s, gs]), torch.cat([a, ga])
            both_next, both_g = torch.cat([s_next, gs_next]), torch.cat([g, gs_next])
            done = (both_next == both_g).float()
            target = -(1.0 - done) + gamma * (1.0 - done) * v[both_next, both_g]
            critic_loss = sum(((h[both_s, both_a, both_g] - target) ** 2).mean() for h in heads)
        critic_opt.zero_grad(set_to_none=True)
        critic_loss.backward()
        critic_opt.step()
        with torch.no_grad():
            for h, t in zip(heads, targets):
                t.mul_(1.0 - tau).add_(h.detach(), alpha=tau)
    policy_logits = logits.detach()  # [S, G, A]
    return {"actions": policy_logits.argmax(dim=2).T.numpy(), "logits": policy_logits.numpy(),
            "score": torch.minimum(*[h.detach() for h in heads]).numpy(), "value": value.detach().numpy()}


def train_gcbc(
    buffer: TrajectoryBuffer, n_states: int, n_actions: int, *, gamma: float = 0.95, steps: int = 2000,
    batch_size: int = 256, lr: float = 3e-4, hidden: Sequence[int] = (256, 256), seed: int = 0,
) -> np.ndarray:
    """Goal-conditioned BC with an MLP on ``onehot(s) ++ onehot(g)`` and ``sample_future``'s geometric goals.

    The same goals, encoder sizes, optimiser and budget as a contrastive critic trained by
    :func:`contrastkit.rl.critics.train_contrastive_critic` (contrastive_rl's ``use_gcbc``
    baseline: ``-mean log pi(a | s, g)``). Returns greedy ``actions`` ``[G, S]``.
    """
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    S, A = int(n_states), int(n_actions)
    sizes, layers = [2 * S, *hidden, A], []
    for i, (n_in, n_out) in enumerate(pairwise(sizes)):
        linear = nn.Linear(n_in, n_out)
        layers += [linear] + ([nn.ReLU()] if i < len(sizes) - 2 else [])
    policy = nn.Sequential(*layers)
    optimiser = torch.optim.Adam(policy.parameters(), lr=lr)
    observations = torch.as_tensor(buffer.observations, dtype=torch.long)
    actions = torch.as_tensor(buffer.actions, dtype=torch.long)

    def inputs(states: torch.Tensor, goals: torch.Tensor) -> torch.Tensor:
        return torch.cat([nn.functional.one_hot(states, S), nn.functional.one_hot(goals, S)], dim=1).float()

    for _ in range(steps):
        pairs = buffer.sample_future(batch_size, gamma, rng)
        out = policy(inputs(observations[pairs["anchor"]], observations[pairs["positive"]]))
        loss = nn.functional.cross_entropy(out, actions[pairs["action"]])
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
    with torch.no_grad():
        goals, states = torch.meshgrid(torch.arange(S), torch.arange(S), indexing="ij")
        out = policy(inputs(states.reshape(-1), goals.reshape(-1)))
    return out.argmax(dim=1).reshape(S, S).numpy()
