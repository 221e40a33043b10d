"""Contrastive-RL critics on four-rooms: training, the exact occupancy ratio they estimate, and greedy control.

One job: learn ``f(s, a, g) = phi(s, a) . psi(g)`` from a :class:`~contrastkit.rl.buffer.TrajectoryBuffer`
with the losses of :mod:`contrastkit.functional.contrastive_rl`, and score it against
ground truth that the known dynamics give exactly.

What the critic estimates. ``sample_future`` pairs an anchor step ``(s_t, a_t)`` (uniform
over the buffer's steps) with the goal ``g = s_{t+k}``, ``k ~ Geometric(1 - gamma)`` on
``{1, 2, ...}``. For a Markov behaviour policy ``pi`` with state chain ``P`` and dynamics
``T[s, a, s']``, the positive law is ``p(g | s, a) = sum_s' T[s, a, s'] M[s', g]`` with
``M = (1 - gamma)(I - gamma P)^{-1}`` (:func:`contrastkit.rl.envs.discounted_occupancy`, ``start=0``
from ``s_{t+1}``), and the negatives (other rows' goals) follow the marginal
``p(g) = sum_{s,a} rho(s, a) p(g | s, a)`` with ``rho`` the anchors' empirical law. The
optimal critics are ``log p(g | s, a) / p(g)`` plus a constant (binary NCE: ``-log(B - 1)``;
InfoNCE with the logsumexp penalty: about ``-log B``), so
:func:`occupancy_ratio` is the ground truth and :func:`spearman` the score. Episodes are
truncated in the buffer (``sample_future`` renormalises the geometric law inside the
episode), which the exact ratio ignores; with episodes much longer than ``1 / (1 - gamma)``
the difference is small.

Control. ``argmax_a f(s, a, g)`` is one step of policy improvement on the behaviour
policy's goal-conditioned Q (Eysenbach et al. 2022, Sec. 4). :func:`reach_probability`
computes a deterministic goal-conditioned policy's exact probability of reaching each goal
within ``horizon`` steps from each start (no rollouts), and :func:`oracle_actions` is the
exact-Q optimum from the known dynamics (value iteration), the ceiling.

Encoders are built from torch here (this package may not import :mod:`contrastkit.nn`):
one-hot inputs, an MLP per side (``hidden=()`` is a linear map of the one-hot, i.e. tabular
embeddings), Xavier-uniform weights as contrastive_rl's ``VarianceScaling(1, 'fan_avg', 'uniform')``.
Official defaults there: 2 x 256 hidden, ``repr_dim = 64``, Adam ``3e-4``, batch 256.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

import numpy as np
import torch
from torch import nn

from contrastkit.functional.contrastive_rl import (
    binary_nce_critic_loss,
    critic_logits,
    infonce_critic_loss,
)
from contrastkit.rl.buffer import TrajectoryBuffer
from contrastkit.rl.envs.four_rooms import FourRooms, discounted_occupancy

__all__ = [
    "ContrastiveCritic",
    "anchor_distribution",
    "critic_actions",
    "occupancy_ratio",
    "oracle_actions",
    "reach_probability",
    "spearman",
    "success_rate",
    "train_contrastive_critic",
]

CRITIC_LOSSES = ("nce", "infonce", "infonce_symmetric")


def _mlp(n_in: int, hidden: Sequence[int], n_out: int) -> nn.Sequential:
    sizes, layers = [n_in, *hidden, n_out], []
    for i, (a, b) in enumerate(pairwise(sizes)):
        linear = nn.Linear(a, b)
        nn.init.xavier_uniform_(linear.weight)
        nn.init.zeros_(linear.bias)
        layers.append(linear)
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class ContrastiveCritic(nn.Module):
    """``f(s, a, g) = phi(onehot(s) ++ onehot(a)) . psi(onehot(g))`` for discrete states and actions.

    Args:
        n_states, n_actions: sizes of the one-hot inputs (goals are states).
        repr_dim: representation size (official 64).
        hidden: hidden sizes of each encoder (official ``(256, 256)``; ``()`` = tabular embeddings).
    """

    def __init__(self, n_states: int, n_actions: int, repr_dim: int = 64, hidden: Sequence[int] = (256, 256)):
        super().__init__()
        self.n_states, self.n_actions = int(n_states), int(n_actions)
        self.sa_encoder = _mlp(self.n_states + self.n_actions, tuple(hidden), repr_dim)
        self.g_encoder = _mlp(self.n_states, tuple(hidden), repr_dim)

    def representations(self, states: torch.Tensor, actions: torch.Tensor,
                        goals: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``phi(s, a)`` ``[B, D]`` and ``psi(g)`` ``[N, D]`` from int index tensors."""
        sa = torch.cat([nn.functional.one_hot(states, self.n_states),
                        nn.functional.one_hot(actions, self.n_actions)], dim=1).float()
        return self.sa_encoder(sa), self.g_encoder(nn.functional.one_hot(goals, self.n_states).float())

    def forward(self, states: torch.Tensor, actions: torch.Tensor, goals: torch.Tensor) -> torch.Tensor:
        """``[B, N]`` critic logits between ``B`` state-action pairs and ``N`` goals."""
        return critic_logits(*self.representations(states, actions, goals))

    @torch.no_grad()
    def table(self) -> np.ndarray:
        """``f`` for every ``(s, a, g)``: ``[S, A, S]`` (float64 numpy)."""
        S, A = self.n_states, self.n_actions
        states = torch.arange(S).repeat_interleave(A)
        actions = torch.arange(A).repeat(S)
        return self(states, actions, torch.arange(S)).double().numpy().reshape(S, A, S)


def train_contrastive_critic(
    buffer: TrajectoryBuffer, n_states: int, n_actions: int, *, loss: str = "infonce", gamma: float = 0.9,
    steps: int = 2000, batch_size: int = 256, lr: float = 3e-4, repr_dim: int = 64,
    hidden: Sequence[int] = (256, 256), seed: int = 0,
) -> ContrastiveCritic:
    """Train a :class:`ContrastiveCritic` on ``(s_t, a_t, s_{t+k})`` triples of ``buffer`` (Adam).

    ``loss``: ``'nce'`` (binary, contrastive_rl's default), ``'infonce'`` (with the 0.01
    logsumexp penalty) or ``'infonce_symmetric'``. Observations and actions must be state / action indices.
    """
    if loss not in CRITIC_LOSSES:
        raise ValueError(f"train_contrastive_critic: expected loss in {CRITIC_LOSSES}, got {loss!r}")
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    critic = ContrastiveCritic(n_states, n_actions, repr_dim, hidden)
    optimiser = torch.optim.Adam(critic.parameters(), lr=lr)
    observations = torch.as_tensor(buffer.observations, dtype=torch.long)
    actions = torch.as_tensor(buffer.actions, dtype=torch.long)
    for _ in range(steps):
        pairs = buffer.sample_future(batch_size, gamma, rng)
        logits = critic(observations[pairs["anchor"]], actions[pairs["action"]], observations[pairs["positive"]])
        value = binary_nce_critic_loss(logits) if loss == "nce" else \
            infonce_critic_loss(logits, symmetric=loss == "infonce_symmetric")
        optimiser.zero_grad(set_to_none=True)
        value.backward()
        optimiser.step()
    return critic


def anchor_distribution(buffer: TrajectoryBuffer, n_states: int, n_actions: int) -> np.ndarray:
    """``rho(s, a)`` ``[S, A]``: the law of ``sample_future``'s anchors (every step equally likely)."""
    step_obs = np.concatenate([np.arange(start, start + length) for start, length in
                               zip(np.concatenate([[0], np.cumsum(buffer.episode_lengths)[:-1]])
                                   + np.arange(buffer.num_episodes), buffer.episode_lengths)])
    counts = np.zeros((n_states, n_actions))
    np.add.at(counts, (buffer.observations[step_obs].astype(np.int64), buffer.actions.astype(np.int64)), 1.0)
    return counts / counts.sum()


def occupancy_ratio(env: FourRooms, policy: np.ndarray, gamma: float,
                    anchors: np.ndarray) -> dict[str, np.ndarray]:
    """The exact ``p(g | s, a)`` ``[S, A, S]``, marginal ``p(g)`` ``[S]`` and ratio ``p(g | s, a) / p(g)``.

    Args:
        env: the environment (its ``transition_tensor`` ``T``).
        policy: the Markov behaviour policy ``[S, A]`` that generated the data.
        gamma: the goal sampler's discount.
        anchors: ``rho(s, a)`` ``[S, A]`` (:func:`anchor_distribution`).
    """
    T = env.transition_tensor
    occupancy = discounted_occupancy(env.transition_matrix(policy), gamma, start=0)
    conditional = np.einsum("sat,tg->sag", T, occupancy)
    marginal = np.einsum("sa,sag->g", anchors, conditional)
    return {"conditional": conditional, "marginal": marginal, "ratio": conditional / marginal}


def _ranks(x: np.ndarray) -> np.ndarray:
    """Ranks 0..n-1 with ties given their average rank."""
    order = np.argsort(x, kind="mergesort")
    sorted_x = x[order]
    ranks = np.empty(len(x))
    starts = np.flatnonzero(np.r_[True, sorted_x[1:] != sorted_x[:-1]])
    ends = np.r_[starts[1:], len(x)]
    for s, e in zip(starts, ends):
        ranks[order[s:e]] = 0.5 * (s + e - 1)
    return ranks


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman's rank correlation of two equal-length 1-D arrays (average ranks for ties)."""
    x, y = np.asarray(x, dtype=np.float64).ravel(), np.asarray(y, dtype=np.float64).ravel()
    if x.shape != y.shape or x.size < 2:
        raise ValueError(f"spearman: expected two arrays of the same length >= 2, got {x.shape} and {y.shape}")
    rx, ry = _ranks(x), _ranks(y)
    rx, ry = rx - rx.mean(), ry - ry.mean()
    denominator = np.sqrt((rx ** 2).sum() * (ry ** 2).sum())
    return float((rx * ry).sum() / denominator) if denominator > 0 else 0.0


def critic_actions(table: np.ndarray) -> np.ndarray:
    """Greedy actions ``[G, S]`` from a critic or Q table ``[S, A, G]``: ``argmax_a table[s, a, g]``."""
    return np.asarray(table).argmax(axis=1).T


def oracle_actions(env: FourRooms, gamma: float = 0.99, iterations: int = 400) -> np.ndarray:
    """The exact-Q optimum ``[G, S]``: value iteration on ``Q(s, a, g) = E[1(s' = g) + gamma 1(s' != g) V(s', g)]``."""
    T, S = env.transition_tensor, env.n_states
    reached = np.eye(S)
    value = np.zeros((S, S))  # V[s, g]
    for _ in range(iterations):
        q = np.einsum("sat,tg->sag", T, reached + gamma * (1.0 - reached) * value)
        value = q.max(axis=1)
    return critic_actions(q)


def reach_probability(env: FourRooms, actions: np.ndarray, horizon: int) -> np.ndarray:
    """``P(reach g within horizon steps | s_0 = s)`` ``[S, G]`` for a deterministic policy ``actions [G, S]``.

    Exact, by the recursion ``v_{h+1}(s) = 1(s = g) + 1(s != g) sum_s' T[s, pi_g(s), s'] v_h(s')``.
    """
    actions = np.asarray(actions, dtype=np.int64)
    S = env.n_states
    if actions.shape != (S, S) or actions.min() < 0 or actions.max() >= env.n_actions:
        raise ValueError(f"reach_probability: expected actions [G={S}, S={S}] in 0..{env.n_actions - 1}, "
                         f"got shape {actions.shape}")
    T = env.transition_tensor
    chain = T[np.arange(S)[None, :], actions]  # [G, S, S']: the chain of policy pi_g
    at_goal = np.eye(S, dtype=bool)  # [G, S]
    value = at_goal.astype(np.float64)
    for _ in range(horizon):
        value = np.where(at_goal, 1.0, np.einsum("gst,gt->gs", chain, value))
    return value.T


def success_rate(env: FourRooms, actions: np.ndarray, horizon: int) -> float:
    """Mean reach probability over uniform ``(start, goal)`` pairs with ``start != goal``."""
    reach = reach_probability(env, actions, horizon)
    off = ~np.eye(env.n_states, dtype=bool)
    return float(reach[off].mean())
