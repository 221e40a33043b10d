"""SMORe's critic loss (``smore_stable``), the expectile loss of its value ``M`` and the AWR actor weights.

One job: the three losses of Sikchi et al., "Score Models for Offline Goal-Conditioned
Reinforcement Learning" (SMORe, ICLR 2024; seed #21), written from the official code
(``hari-sikchi/SMORe``: ``critic_gcrl.py`` ``update_q_smore_stable`` / ``update_v_smore`` /
``expectile_loss``, ``actor.py`` ``update_gcrl``, ``learner.py``, ``configs/gcrl_config.py``).
SMORe learns a goal-conditioned *score* ``S(s, a, g)`` (called ``q`` in the code) that is not
a value of any reward: it is pushed up on the transitions that enter the goal and tied by
a Bellman-like backup to a score ``M(s, g)`` (``v``) elsewhere; the policy is extracted by
advantage-weighted regression on ``S - M``.

Each update sees two halves: a *data* batch ``(s, a, s', g)`` of dataset transitions with
hindsight goals, and a *goal-transition* batch, transitions whose next state achieves
their goal (``sampling_mode='HER_goal_entry_distribution'``).

- :func:`smore_stable_loss` -- with ``r = -2`` (the code's ``neg_r``) and
  ``y = r + gamma * M(s', g)`` (stop-gradient; the code's ``target_q`` from the freshly
  updated value network)::

      mean_goal (S - (-r) / (1 - gamma))^2 + (1 - gamma) 1e-4 mean_data S^2
          + 0.5 mean_data (S - y)^2

  (the goal transitions' score is pulled to ``2 / (1 - gamma)``, a small ``chi^2``-style
  penalty keeps the data scores bounded, and the backup fits the rest). With the twin
  critic (``double=True``, the default) the loss is this sum for each of the two heads.
- :func:`expectile_loss` -- ``|tau - 1(d < 0)| d^2`` with ``d = S_target(s, a, g) - M(s, g)``,
  on the data half only; the code's ``update_v_smore`` uses the ``beta`` flag as the
  expectile (``Learner`` default 0.8, the README's commands ``--beta=0.8``; the
  ``config.expectile = 0.7`` entry is passed but unused by ``smore_stable``).
- :func:`awr_weights` -- ``min(exp(temperature (S - M)), 100)`` with ``S`` from the target
  critic (min of the twins) and ``M`` from the new value; ``temperature = 3.0``
  (``gcrl_config.py``); the actor loss is ``-mean_data(w log pi(a | s, g))``
  (:func:`awr_actor_loss`).

Deviations: the losses take score tensors, not networks, so the twin critic, the Polyak
target (``tau = 0.005``) and the gradient penalty (``grad_pen``, off by default) are the
caller's; ``smore_stable_loss`` returns one head's loss. The unused ``smore`` (non-stable)
variant, ``-mean_goal S + 1e-4 mean_data S + 0.5 mean_data (S - gamma M(s'))^2``, is
:func:`smore_original_loss`.

Example:
    >>> s_data, s_goal, m_next = torch.randn(8), torch.randn(8), torch.randn(8)
    >>> loss = smore_stable_loss(s_data, s_goal, m_next, gamma=0.99)
"""

from __future__ import annotations

import torch

from contrastkit.utils.checks import check_reduction

__all__ = ["awr_actor_loss", "awr_weights", "expectile_loss", "smore_original_loss", "smore_stable_loss"]

#: The constant per-step "reward" of the official ``smore_stable`` backup (``neg_r``).
NEG_REWARD = -2.0
#: Coefficient of the data-score penalty before the ``(1 - gamma)`` factor.
SCORE_PENALTY = 1e-4


def _vector(name: str, tensor: object, like: torch.Tensor | None = None) -> torch.Tensor:
    if not isinstance(tensor, torch.Tensor) or tensor.dim() != 1 or not tensor.is_floating_point() \
            or tensor.numel() == 0:
        got = tuple(tensor.shape) if isinstance(tensor, torch.Tensor) else type(tensor).__name__
        raise ValueError(f"{name}: expected a non-empty float tensor [B], got {got}")
    if like is not None and tensor.shape != like.shape:
        raise ValueError(f"{name}: expected shape {tuple(like.shape)}, got {tuple(tensor.shape)}")
    return tensor


def _gamma(gamma: float) -> float:
    if not isinstance(gamma, (int, float)) or not 0.0 <= gamma < 1.0:
        raise ValueError(f"gamma: expected a float in [0, 1), got {gamma!r}")
    return float(gamma)


def smore_stable_loss(score_data: torch.Tensor, score_goal: torch.Tensor, next_value: torch.Tensor,
                      gamma: float = 0.99, reward: float = NEG_REWARD) -> torch.Tensor:
    """SMORe's ``smore_stable`` critic loss for one score head.

    Args:
        score_data: ``S(s, a, g)`` ``[B]`` on the data (hindsight-goal) half.
        score_goal: ``S(s, a, g)`` ``[M]`` on the goal transitions (``s'`` achieves ``g``).
        next_value: ``M(s', g)`` ``[B]`` for the data half (detached here).
        gamma: discount (official 0.99).
        reward: the constant ``neg_r`` of the backup (official -2).
    """
    gamma = _gamma(gamma)
    _vector("score_data", score_data)
    _vector("score_goal", score_goal)
    _vector("next_value", next_value, score_data)
    target = reward + gamma * next_value.detach()
    return ((score_goal + reward / (1.0 - gamma)) ** 2).mean() \
        + (1.0 - gamma) * SCORE_PENALTY * (score_data ** 2).mean() \
        + 0.5 * ((score_data - target) ** 2).mean()


def smore_original_loss(score_data: torch.Tensor, score_goal: torch.Tensor, next_value: torch.Tensor,
                        gamma: float = 0.99) -> torch.Tensor:
    """The official non-stable ``smore`` loss: ``-mean S_goal + 1e-4 mean S_data + 0.5 mean (S_data - gamma M')^2``."""
    gamma = _gamma(gamma)
    _vector("score_data", score_data)
    _vector("score_goal", score_goal)
    _vector("next_value", next_value, score_data)
    return -score_goal.mean() + SCORE_PENALTY * score_data.mean() \
        + 0.5 * ((score_data - gamma * next_value.detach()) ** 2).mean()


def expectile_loss(diff: torch.Tensor, expectile: float = 0.8, reduction: str = "mean") -> torch.Tensor:
    """``|expectile - 1(diff < 0)| * diff^2`` (IQL's value loss; SMORe's ``M`` with ``expectile = beta = 0.8``).

    ``diff = target - value``; ``expectile > 0.5`` weighs under-estimates more, so the value
    tends to an upper expectile of the target. ``diff == 0`` takes weight ``1 - expectile``, as the official code.
    """
    check_reduction(reduction)
    if not isinstance(expectile, (int, float)) or not 0.0 < expectile < 1.0:
        raise ValueError(f"expectile: expected a float in (0, 1), got {expectile!r}")
    if not isinstance(diff, torch.Tensor) or not diff.is_floating_point():
        raise ValueError(f"diff: expected a float tensor, got {type(diff).__name__}")
    weight = (1.0 - expectile) + (2.0 * expectile - 1.0) * (diff > 0).to(diff.dtype)  # in diff's dtype
    loss = weight * diff ** 2
    if reduction == "mean":
        return loss.mean()
    return loss.sum() if reduction == "sum" else loss


def awr_weights(score: torch.Tensor, value: torch.Tensor, temperature: float = 3.0,
                max_weight: float = 100.0) -> torch.Tensor:
    """``min(exp(temperature * (score - value)), max_weight)``, detached (SMORe/IQL AWR, official 3.0 and 100)."""
    _vector("score", score)
    _vector("value", value, score)
    if not isinstance(temperature, (int, float)) or temperature < 0:
        raise ValueError(f"temperature: expected a float >= 0, got {temperature!r}")
    return torch.exp(temperature * (score - value).detach()).clamp(max=max_weight)


def awr_actor_loss(log_probs: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """``-mean(weights * log_probs)``: advantage-weighted regression of the data actions ``[B]``."""
    _vector("log_probs", log_probs)
    _vector("weights", weights, log_probs)
    return -(weights.detach() * log_probs).mean()
