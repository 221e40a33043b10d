"""Contrastive-RL critic losses and the bilinear logits of CURL / ATC / TACO.

One job: the losses that turn ``[B, B]`` logits between state(-action) anchors and their
future states (goals) into a goal-conditioned critic or a temporal representation.
Positives are on the diagonal: row ``i`` is ``(s_i, a_i)``, column ``j`` the goal ``g_j``
sampled from row ``j``'s future, so ``g_j`` for ``j != i`` is a draw from the marginal of goals.

- :func:`critic_logits` -- Eysenbach et al., "Contrastive Learning as Goal-Conditioned
  Reinforcement Learning", NeurIPS 2022: ``f(s, a, g) = phi(s, a) . psi(g)``, the outer
  product ``[B, D] x [N, D] -> [B, N]`` of the two encoders (``networks.py``, ``_combine_repr``:
  ``einsum('ik,jk->ij')``, no temperature, no normalisation by default).
- :func:`binary_nce_critic_loss` -- the default critic loss of ``contrastive_rl``
  (``use_cpc=False``): sigmoid binary cross-entropy of every entry of the ``[B, B]`` matrix
  with labels ``I``, averaged over all ``B^2`` entries (so each row has one positive and
  ``B - 1`` negatives, weighted 1 each). Its optimum is
  ``f* = log p(g | s, a) / p(g) - log(B - 1)`` (NCE with ``B - 1`` noise samples per positive).
- :func:`infonce_critic_loss` -- ``use_cpc=True``: the row-softmax cross-entropy with the
  diagonal as target, plus ``0.01 * logsumexp_j(f_ij)^2`` per row, averaged over rows. The
  InfoNCE optimum is ``f* = log p(g | s, a) / p(g) + c(s, a)``; the penalty pins the
  row's log-sum-exp at 0 and so makes ``c`` the same constant (``-log B``) for every row, which is what
  lets ``exp(f)`` be read as the occupancy ratio across rows. ``symmetric=True`` adds the
  column direction (goal -> state-action, as in JaxGCRL's ``symmetric_infonce``), each direction with its own penalty,
  averaged.
- :func:`bilinear_logits` -- CURL (Laskin et al., ICML 2020, ``curl_sac.py``
  ``compute_logits``), also used by ATC and TACO: ``l_ij = q_i W k_j``, then the row maximum is
  subtracted for numerical stability (not detached, as there; softmax cross-entropy is
  invariant to a per-row shift, so the shift changes no gradient of it).

Fidelity against google-research ``contrastive_rl`` (``contrastive/learning.py``,
``critic_loss``; ``contrastive/networks.py``; ``contrastive/config.py``):

- the Monte-Carlo losses only; the TD variant (``use_td``) with its ``w = p / (1 - p)``
  importance weights and the twin critic (``twin_q``: the loss averaged over the two outer
  products) are not here (a twin critic is two calls of these functions);
- ``reduction="none"`` returns the ``[B, B]`` element losses (binary) or ``[B]`` row losses
  (InfoNCE) for weighting; the official code always takes the plain mean;
- the InfoNCE cross-entropy equals :func:`contrastkit.functional.core.contrastive_loss_from_logits`
  (the library's softmax-contrastive core) with a diagonal positive mask -- the tests check it --
  but is written out as ``logsumexp(row) - diag``, because the core's general validation costs
  several times the loss itself on ``[256, 256]`` logits, in a loop of thousands of small steps;
- ``repr_norm`` (unit-norm representations with a learned temperature) is the caller's
  choice before :func:`critic_logits`; the official default is off.

Example:
    >>> sa, g = torch.randn(8, 16), torch.randn(8, 16)
    >>> logits = critic_logits(sa, g)                 # [8, 8], positives on the diagonal
    >>> loss = binary_nce_critic_loss(logits) + infonce_critic_loss(logits)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from contrastkit.utils.checks import check_embeddings, check_reduction

__all__ = [
    "LOGSUMEXP_PENALTY",
    "bilinear_logits",
    "binary_nce_critic_loss",
    "critic_logits",
    "infonce_critic_loss",
]

#: The coefficient of ``logsumexp(row)^2`` in contrastive_rl's InfoNCE (``use_cpc``) critic loss.
LOGSUMEXP_PENALTY = 0.01


def critic_logits(sa_repr: torch.Tensor, goal_repr: torch.Tensor) -> torch.Tensor:
    """``phi(s, a) psi(g)^T``: ``[B, D]`` and ``[N, D]`` representations to ``[B, N]`` critic logits."""
    check_embeddings("sa_repr", sa_repr)
    check_embeddings("goal_repr", goal_repr, dim=sa_repr.shape[1])
    return sa_repr @ goal_repr.T


def _square_logits(name: str, logits: torch.Tensor) -> None:
    check_embeddings(name, logits)
    if logits.shape[0] != logits.shape[1]:
        raise ValueError(f"{name}: expected square [B, B] logits (positives on the diagonal), "
                         f"got {tuple(logits.shape)}")


def binary_nce_critic_loss(logits: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Sigmoid BCE of ``[B, B]`` critic logits against the identity (contrastive_rl's default critic loss).

    Args:
        logits: ``[B, B]``; entry ``(i, i)`` is the positive pair.
        reduction: ``'mean'`` over all ``B^2`` entries (official), ``'sum'`` or ``'none'`` (``[B, B]``).
    """
    check_reduction(reduction)
    _square_logits("logits", logits)
    labels = torch.eye(logits.shape[0], dtype=logits.dtype, device=logits.device)
    loss = F.binary_cross_entropy_with_logits(logits, labels, reduction="none")
    if reduction == "mean":
        return loss.mean()
    return loss.sum() if reduction == "sum" else loss


def _infonce_rows(logits: torch.Tensor, penalty: float) -> torch.Tensor:
    # The one-positive case of contrastive_loss_from_logits (the tests check the two agree),
    # written out: its general validation costs more than the loss on a [256, 256] matrix.
    log_partition = torch.logsumexp(logits, dim=1)
    rows = log_partition - logits.diagonal()
    if penalty:
        rows = rows + penalty * log_partition ** 2
    return rows


def infonce_critic_loss(
    logits: torch.Tensor,
    logsumexp_penalty: float = LOGSUMEXP_PENALTY,
    *,
    symmetric: bool = False,
    reduction: str = "mean",
) -> torch.Tensor:
    """Row-softmax InfoNCE on ``[B, B]`` critic logits plus ``logsumexp_penalty * logsumexp(row)^2``.

    Args:
        logits: ``[B, B]``; entry ``(i, i)`` is the positive pair.
        logsumexp_penalty: the regulariser's coefficient (contrastive_rl: 0.01; 0 turns it off).
        symmetric: also the column direction (``logits.T``, with its own penalty); the two averaged.
        reduction: ``'mean'`` over rows (official), ``'sum'`` or ``'none'`` (``[B]``).
    """
    check_reduction(reduction)
    _square_logits("logits", logits)
    if not isinstance(logsumexp_penalty, (int, float)) or logsumexp_penalty < 0:
        raise ValueError(f"logsumexp_penalty: expected a float >= 0, got {logsumexp_penalty!r}")
    rows = _infonce_rows(logits, float(logsumexp_penalty))
    if symmetric:
        rows = 0.5 * (rows + _infonce_rows(logits.T, float(logsumexp_penalty)))
    if reduction == "mean":
        return rows.mean()
    return rows.sum() if reduction == "sum" else rows


def bilinear_logits(query: torch.Tensor, key: torch.Tensor, weight: torch.Tensor, *,
                    shift: bool = True) -> torch.Tensor:
    """``q W k^T`` ``[B, N]`` for ``query [B, D]``, ``key [N, D]``, ``weight [D, D]``; minus each row's max if ``shift``."""
    check_embeddings("query", query)
    check_embeddings("key", key, dim=query.shape[1])
    if not isinstance(weight, torch.Tensor) or weight.shape != (query.shape[1], query.shape[1]):
        got = tuple(weight.shape) if isinstance(weight, torch.Tensor) else type(weight).__name__
        raise ValueError(f"weight: expected a [{query.shape[1]}, {query.shape[1]}] tensor, got {got}")
    logits = query @ weight @ key.T
    return logits - logits.max(dim=1, keepdim=True).values if shift else logits
