"""Preference objectives on log-probabilities: DPO, IPO and SFT / filtered behaviour cloning.

One job: the loss of a policy on preference pairs ``(y_w, y_l)`` (``y_w`` preferred), given
the log-probabilities that the trained policy ``pi_theta`` and a frozen reference ``pi_ref``
assign to each response. The caller computes the log-probabilities (a tabular policy, a
language model's summed token log-probs, an action head); nothing here knows where they
came from. Write ``h = (log pi_theta(y_w) - log pi_ref(y_w)) - (log pi_theta(y_l) - log pi_ref(y_l))``.

- :func:`dpo_loss` -- Rafailov et al., "Direct Preference Optimization", NeurIPS 2023, Eq. 7:
  ``-log sigmoid(beta * h)``; with ``label_smoothing = eps`` the conservative form
  ``-(1 - eps) log sigmoid(beta h) - eps log sigmoid(-beta h)`` (Mitchell, cDPO).
  Under Bradley-Terry labels ``P(y > y') = sigmoid(s (r(y) - r(y')))`` its population
  optimum is ``pi_ref * exp(s r / beta) / Z`` on the arms the pairs cover.
- :func:`ipo_loss` -- Azar et al., "A General Theoretical Paradigm to Understand Learning
  from Human Preferences", AISTATS 2024, Eq. 17: ``(h - 1 / (2 tau))^2``; population optimum
  ``pi_ref * exp(p(y > mu) / tau) / Z`` for pairs drawn from ``mu x mu``.
- :func:`sft_loss` -- maximum likelihood of the preferred responses only (SFT on chosen,
  filtered BC / best-of-N when the winners are filtered by reward): ``-log pi_theta(y_w)``;
  its optimum is the winners' distribution.

Fidelity against TRL (``huggingface/trl`` ``trl/trainer/dpo_trainer.py``, read at commit
f2cd577, ``DPOTrainer`` loss types ``sigmoid``, ``ipo`` and ``sft``):

- ``sigmoid``: ``-F.logsigmoid(beta * delta)``, batch mean -- the same as :func:`dpo_loss`.
  TRL's default ``beta`` is 0.1, kept here; the bandit code of Tajwar et al. (seed #30,
  ``Asap7772/understanding-rlhf``) uses ``beta = 0.05``.
- ``ipo``: TRL divides each response's summed log-ratio by its number of completion tokens
  before the difference (per-token averages; its comment says the IPO authors confirmed this)
  and uses ``beta`` as ``tau``: ``(delta_avg - 1 / (2 beta))^2``, batch mean. Here the
  averaging happens when ``chosen_lengths`` / ``rejected_lengths`` are given, and the
  argument is called ``tau`` as in the paper. Without lengths (one-token responses, a
  bandit arm) the log-ratios are used as they come. Deviation of the seed paper's bandit
  code, not followed here: its IPO is ``(h - beta)^2`` (target ``beta``, not ``1/(2 tau)``).
- ``sft``: token-level cross-entropy on the chosen completions, averaged over every chosen
  token in the batch: here ``-sum(log pi(y_w)) / sum(lengths)`` when ``chosen_lengths`` is
  given (``reduction="mean"``), else the mean over pairs of ``-log pi(y_w)``.

Example:
    >>> lp = torch.log(torch.tensor([0.5, 0.2]))
    >>> dpo_loss(lp, lp.flip(0), lp, lp.flip(0), beta=0.1)   # policy == reference: log 2
    tensor(0.6931)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from contrastkit.utils.checks import check_positive_scalar, check_reduction

__all__ = ["dpo_loss", "ipo_loss", "preference_log_ratio", "sft_loss"]


def _check_logps(name: str, tensor: object, shape: torch.Size | None = None) -> torch.Tensor:
    if not isinstance(tensor, torch.Tensor) or tensor.dim() != 1 or not tensor.is_floating_point():
        got = tuple(tensor.shape) if isinstance(tensor, torch.Tensor) else type(tensor).__name__
        raise ValueError(f"{name}: expected a float tensor [B] of log-probabilities, got {got}")
    if tensor.numel() == 0:
        raise ValueError(f"{name}: expected at least one pair, got an empty tensor")
    if shape is not None and tensor.shape != shape:
        raise ValueError(f"{name}: expected shape {tuple(shape)} (same as policy_chosen_logps), "
                         f"got {tuple(tensor.shape)}")
    if not torch.isfinite(tensor).all():
        raise ValueError(f"{name}: expected finite log-probabilities, got NaN/inf")
    return tensor


def _check_lengths(name: str, lengths: object, shape: torch.Size) -> torch.Tensor:
    if not isinstance(lengths, torch.Tensor) or lengths.shape != shape:
        got = tuple(lengths.shape) if isinstance(lengths, torch.Tensor) else type(lengths).__name__
        raise ValueError(f"{name}: expected a tensor of shape {tuple(shape)} (tokens per response), got {got}")
    if not (lengths > 0).all():
        raise ValueError(f"{name}: expected every length > 0, got min {float(lengths.min())}")
    return lengths.to(torch.get_default_dtype())


def _reduce(losses: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "mean":
        return losses.mean()
    if reduction == "sum":
        return losses.sum()
    return losses


def preference_log_ratio(
    policy_chosen_logps: torch.Tensor,
    policy_rejected_logps: torch.Tensor,
    reference_chosen_logps: torch.Tensor,
    reference_rejected_logps: torch.Tensor,
    *,
    chosen_lengths: torch.Tensor | None = None,
    rejected_lengths: torch.Tensor | None = None,
) -> torch.Tensor:
    """``h = (log pi(y_w) - log pi_ref(y_w)) / n_w - (log pi(y_l) - log pi_ref(y_l)) / n_l``, ``[B]``.

    ``n_w`` and ``n_l`` are the lengths when given (per-token averages, TRL's IPO), else 1.
    The reference log-probs are treated as constants (detached).
    """
    chosen = _check_logps("policy_chosen_logps", policy_chosen_logps)
    shape = chosen.shape
    rejected = _check_logps("policy_rejected_logps", policy_rejected_logps, shape)
    ref_chosen = _check_logps("reference_chosen_logps", reference_chosen_logps, shape).detach()
    ref_rejected = _check_logps("reference_rejected_logps", reference_rejected_logps, shape).detach()
    chosen_ratio, rejected_ratio = chosen - ref_chosen, rejected - ref_rejected
    if chosen_lengths is not None:
        chosen_ratio = chosen_ratio / _check_lengths("chosen_lengths", chosen_lengths, shape)
    if rejected_lengths is not None:
        rejected_ratio = rejected_ratio / _check_lengths("rejected_lengths", rejected_lengths, shape)
    return chosen_ratio - rejected_ratio


def dpo_loss(
    policy_chosen_logps: torch.Tensor,
    policy_rejected_logps: torch.Tensor,
    reference_chosen_logps: torch.Tensor,
    reference_rejected_logps: torch.Tensor,
    *,
    beta: float = 0.1,
    label_smoothing: float = 0.0,
    reduction: str = "mean",
) -> torch.Tensor:
    """DPO: ``-(1 - eps) log sigmoid(beta h) - eps log sigmoid(-beta h)`` per pair (``eps = 0``: DPO).

    Args:
        policy_chosen_logps: ``[B]`` ``log pi_theta(y_w)`` (summed over tokens for sequences).
        policy_rejected_logps: ``[B]`` ``log pi_theta(y_l)``.
        reference_chosen_logps: ``[B]`` ``log pi_ref(y_w)`` (detached).
        reference_rejected_logps: ``[B]`` ``log pi_ref(y_l)`` (detached).
        beta: the KL strength (DPO paper and TRL default 0.1).
        label_smoothing: ``eps`` in ``[0, 0.5)``, the assumed label-flip rate (cDPO).
        reduction: ``"mean"`` (TRL), ``"sum"`` or ``"none"`` (``[B]``).

    Example:
        >>> lp = torch.tensor([-1.0]); dpo_loss(lp + 1.0, lp, lp, lp, beta=1.0)
        tensor(0.3133)
    """
    check_positive_scalar("beta", beta)
    check_reduction(reduction)
    if not isinstance(label_smoothing, (int, float)) or not 0.0 <= label_smoothing < 0.5:
        raise ValueError(f"label_smoothing: expected a float in [0, 0.5), got {label_smoothing!r}")
    h = preference_log_ratio(policy_chosen_logps, policy_rejected_logps,
                             reference_chosen_logps, reference_rejected_logps)
    losses = -F.logsigmoid(beta * h)
    if label_smoothing:
        losses = (1.0 - label_smoothing) * losses - label_smoothing * F.logsigmoid(-beta * h)
    return _reduce(losses, reduction)


def ipo_loss(
    policy_chosen_logps: torch.Tensor,
    policy_rejected_logps: torch.Tensor,
    reference_chosen_logps: torch.Tensor,
    reference_rejected_logps: torch.Tensor,
    *,
    tau: float = 0.1,
    chosen_lengths: torch.Tensor | None = None,
    rejected_lengths: torch.Tensor | None = None,
    reduction: str = "mean",
) -> torch.Tensor:
    """IPO: ``(h - 1 / (2 tau))^2`` per pair (Azar et al. 2024, Eq. 17; TRL ``loss_type="ipo"``).

    Args:
        policy_chosen_logps, policy_rejected_logps, reference_chosen_logps, reference_rejected_logps:
            ``[B]`` log-probabilities as in :func:`dpo_loss`.
        tau: the regularisation ``tau`` (TRL passes its ``beta`` here; default 0.1 as TRL).
        chosen_lengths, rejected_lengths: optional ``[B]`` token counts; when given, each
            log-ratio is divided by its length first (TRL's per-token averaging).
        reduction: ``"mean"`` (TRL), ``"sum"`` or ``"none"``.

    Example:
        >>> lp = torch.tensor([-1.0]); ipo_loss(lp, lp, lp, lp, tau=0.5)   # h = 0, target 1
        tensor(1.)
    """
    check_positive_scalar("tau", tau)
    check_reduction(reduction)
    h = preference_log_ratio(policy_chosen_logps, policy_rejected_logps,
                             reference_chosen_logps, reference_rejected_logps,
                             chosen_lengths=chosen_lengths, rejected_lengths=rejected_lengths)
    return _reduce((h - 1.0 / (2.0 * tau)) ** 2, reduction)


def sft_loss(
    policy_chosen_logps: torch.Tensor,
    *,
    chosen_lengths: torch.Tensor | None = None,
    reduction: str = "mean",
) -> torch.Tensor:
    """SFT on the preferred responses (filtered BC): ``-log pi_theta(y_w)``.

    Args:
        policy_chosen_logps: ``[B]`` ``log pi_theta(y_w)`` (summed over tokens).
        chosen_lengths: optional ``[B]`` token counts. With ``reduction="mean"`` the loss is
            then TRL's token mean ``-sum_i log pi(y_w,i) / sum_i n_i``; with ``"none"``
            ``-log pi(y_w,i) / n_i`` per pair; with ``"sum"`` ``-sum_i log pi(y_w,i)``.
        reduction: ``"mean"``, ``"sum"`` or ``"none"``.

    Example:
        >>> sft_loss(torch.log(torch.tensor([0.5, 0.25])))
        tensor(1.0397)
    """
    check_reduction(reduction)
    chosen = _check_logps("policy_chosen_logps", policy_chosen_logps)
    if chosen_lengths is None:
        return _reduce(-chosen, reduction)
    lengths = _check_lengths("chosen_lengths", chosen_lengths, chosen.shape)
    if reduction == "mean":
        return -chosen.sum() / lengths.sum()
    if reduction == "sum":
        return -chosen.sum()
    return -chosen / lengths
