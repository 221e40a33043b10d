"""Objectives of graph and sequential recommendation as pure functions.

- :func:`bpr_loss` — Bayesian personalised ranking (Rendle et al., UAI 2009), the
  training loss of LightGCN, SimGCL and LightGCL.
- :func:`simgcl_perturb` — SimGCL's embedding-space augmentation (Yu et al., SIGIR 2022,
  "Are Graph Augmentations Necessary? Simple Graph Contrastive Learning for Recommendation").
- :func:`lightgcl_loss` — LightGCL's contrast between the graph view and its SVD view
  (Cai et al., ICLR 2023, "LightGCL: Simple Yet Effective Graph Contrastive Learning for
  Recommendation"), as in the authors' ``model.py``.
- :func:`mclrec_regularizer` and :func:`mclrec_meta_loss` — MCLRec's contrastive
  regulariser and augmenter objective (Qin et al., SIGIR 2023, "Meta-optimized Contrastive
  Learning for Sequential Recommendation"), as in the authors' ``mclrec.py``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from contrastkit.functional.contrastive import nt_xent
from contrastkit.functional.core import reduce
from contrastkit.utils.checks import (
    Scalar,
    check_embeddings,
    check_pair,
    check_positive_scalar,
    check_reduction,
)

__all__ = ["bpr_loss", "simgcl_perturb", "lightgcl_loss", "mclrec_regularizer", "mclrec_meta_loss"]


def bpr_loss(
    user: torch.Tensor, positive: torch.Tensor, negative: torch.Tensor, *, reduction: str = "mean"
) -> torch.Tensor:
    r"""Bayesian personalised ranking (Rendle et al., 2009): a user prefers the observed item.

    .. math::

        \ell_b = -\log \sigma(u_b^\top p_b - u_b^\top n_b) = \mathrm{softplus}(u_b^\top n_b - u_b^\top p_b)

    (the softplus form is the numerically stable one LightGCN's code uses). Scores are
    dot products; nothing is normalised. Regularisation is the method's business.

    Args:
        user: ``[B, D]`` user embeddings.
        positive: ``[B, D]`` embeddings of each user's observed item.
        negative: ``[B, D]`` embeddings of each user's sampled unobserved item.
        reduction: ``'mean'`` (default), ``'sum'`` or ``'none'`` (``[B]``).

    Returns:
        The loss: a scalar, or ``[B]`` for ``reduction='none'``.

    Raises:
        ValueError: on mismatched shapes or non-finite inputs.

    Example:
        >>> u, p, n = torch.randn(4, 8), torch.randn(4, 8), torch.randn(4, 8)
        >>> bpr_loss(u, p, n).shape
        torch.Size([])
    """
    check_reduction(reduction)
    check_pair("user", user, "positive", positive)
    check_pair("user", user, "negative", negative)
    return reduce(F.softplus((user * negative).sum(1) - (user * positive).sum(1)), reduction)


def simgcl_perturb(embeddings: torch.Tensor, eps: float, generator: torch.Generator | None = None) -> torch.Tensor:
    r"""SimGCL's noise: rotate each embedding by a small random vector in its own orthant.

    .. math::

        e' = e + \epsilon \cdot \mathrm{sign}(e) \odot \frac{\Delta}{\lVert \Delta \rVert_2},
        \qquad \Delta \sim U(0, 1)^D

    so ``‖e' - e‖ = eps`` (up to zero entries of ``e``) and ``e'`` stays in ``e``'s
    hyper-octant. SimGCL applies it at every propagation layer; ``eps=0.1`` is its default.

    Args:
        embeddings: ``[N, D]`` embeddings (any float dtype and device).
        eps: the noise magnitude ``epsilon >= 0``.
        generator: optional RNG for the uniform noise (on ``embeddings``' device); default:
            torch's global RNG.

    Returns:
        ``[N, D]`` perturbed embeddings (differentiable in ``embeddings``).

    Example:
        >>> e = torch.randn(5, 16)
        >>> torch.allclose((simgcl_perturb(e, 0.1) - e).norm(dim=1), torch.full((5,), 0.1))
        True
    """
    if not isinstance(embeddings, torch.Tensor) or embeddings.dim() != 2 or not embeddings.is_floating_point():
        shape = tuple(embeddings.shape) if isinstance(embeddings, torch.Tensor) else type(embeddings).__name__
        raise ValueError(f"simgcl_perturb: expected float embeddings [N, D], got {shape}")
    if not eps >= 0:
        raise ValueError(f"eps: expected a value >= 0, got {eps}")
    noise = torch.rand(embeddings.shape, generator=generator, device=embeddings.device, dtype=embeddings.dtype)
    return embeddings + torch.sign(embeddings) * F.normalize(noise, dim=-1) * eps


def _check_ids(name: str, ids: torch.Tensor, size: int) -> None:
    if not isinstance(ids, torch.Tensor) or ids.dim() != 1:
        shape = tuple(ids.shape) if isinstance(ids, torch.Tensor) else type(ids).__name__
        raise ValueError(f"{name}: expected a 1-D integer tensor of row ids, got {shape}")
    if ids.is_floating_point() or ids.is_complex() or ids.dtype == torch.bool:
        raise ValueError(f"{name}: expected integer row ids, got dtype {ids.dtype}")
    if ids.numel() == 0:
        raise ValueError(f"{name}: expected at least one id, got none")
    if size == 0:
        raise ValueError(f"{name}: expected rows to index, got an empty embedding table")


def _lightgcl_side(view: torch.Tensor, graph: torch.Tensor, ids: torch.Tensor, temperature: Scalar) -> torch.Tensor:
    anchors = view[ids]
    negative = torch.logsumexp(anchors @ graph.T / temperature, dim=1).mean()
    positive = torch.clamp((anchors * graph[ids]).sum(1) / temperature, -5.0, 5.0).mean()
    return negative - positive


def lightgcl_loss(
    g_u: torch.Tensor,
    e_u: torch.Tensor,
    g_i: torch.Tensor,
    e_i: torch.Tensor,
    users: torch.Tensor,
    items: torch.Tensor,
    temperature: Scalar = 0.2,
) -> torch.Tensor:
    r"""LightGCL's contrastive loss between the SVD view ``G`` and the graph view ``E``.

    For the users (and the same for the items, added):

    .. math::

        L_s^{u} = -\frac{1}{|B|} \sum_{u \in B} \mathrm{clip}\!\left(\frac{g_u^\top e_u}{\tau}, -5, 5\right)
                 + \frac{1}{|B|} \sum_{u \in B} \log \sum_{u'=1}^{U} \exp\!\left(\frac{g_u^\top e_{u'}}{\tau}\right)

    exactly as LightGCL's ``model.py``: the negatives are **all** users (items), not the
    batch; the vectors are **not** normalised; the positive term is clipped to
    ``[-5, 5]`` but the log-sum-exp (which contains the positive too) is not. ``users``
    and ``items`` are used as given, duplicates included (the authors pass the batch's
    users and ``cat(positives, negatives)``). The code adds ``1e-8`` inside the log; the
    stable ``logsumexp`` here omits it (a relative difference below ``1e-8``).

    Args:
        g_u: ``[U, D]`` user embeddings of the SVD view.
        e_u: ``[U, D]`` user embeddings of the graph view.
        g_i: ``[I, D]`` item embeddings of the SVD view.
        e_i: ``[I, D]`` item embeddings of the graph view.
        users: ``[B_u]`` user ids of the batch (rows of ``g_u``/``e_u``).
        items: ``[B_i]`` item ids of the batch.
        temperature: ``tau > 0`` (default 0.2, LightGCL's).

    Returns:
        The scalar ``L_s^u + L_s^i`` (LightGCL weights it by ``lambda_1``).

    Raises:
        ValueError: on shape mismatches, non-finite embeddings, bad ids or ``temperature <= 0``.

    Example:
        >>> g_u, e_u, g_i, e_i = torch.randn(6, 4), torch.randn(6, 4), torch.randn(5, 4), torch.randn(5, 4)
        >>> loss = lightgcl_loss(g_u, e_u, g_i, e_i, torch.tensor([0, 2]), torch.tensor([1, 3, 4]))
    """
    check_positive_scalar("temperature", temperature)
    check_embeddings("g_u", g_u)
    check_embeddings("e_u", e_u, dim=g_u.shape[1])
    check_embeddings("g_i", g_i, dim=g_u.shape[1])
    check_embeddings("e_i", e_i, dim=g_u.shape[1])
    if g_u.shape != e_u.shape:
        raise ValueError(f"e_u: expected the shape of g_u {tuple(g_u.shape)}, got {tuple(e_u.shape)}")
    if g_i.shape != e_i.shape:
        raise ValueError(f"e_i: expected the shape of g_i {tuple(g_i.shape)}, got {tuple(e_i.shape)}")
    _check_ids("users", users, g_u.shape[0])
    _check_ids("items", items, g_i.shape[0])
    return _lightgcl_side(g_u, e_u, users, temperature) + _lightgcl_side(g_i, e_i, items, temperature)


def mclrec_regularizer(view_a: torch.Tensor, view_b: torch.Tensor, temperature: Scalar = 1.0) -> torch.Tensor:
    r"""MCLRec's contrastive regulariser (``meta_contrast_rl_1`` of the authors' code).

    With ``z = [view_a; view_b]`` (``2N`` rows, dot-product similarities ``s = z z^T / tau``),
    row ``i``'s positive ``s_i^+`` is its partner in the other view and its negatives are
    the ``2N - 2`` other rows. With ``m_i = max_j s_ij^-`` the hardest negative:

    .. math::

        R = \frac{1}{2N} \sum_i \max(s_i^+ - m_i, 0)
          + \frac{1}{2N(2N-2)} \sum_i \sum_j \left(\max(s_i^+, m_i) - s_{ij}^-\right)

    The first term is the margin that keeps a positive pair (an input and its learned
    augmentation) from being more similar than the hardest negative, i.e. it penalises
    augmenters whose output is a near copy of its source; the second pulls every
    negative's similarity towards the larger of the two, so augmented views do not just
    drift far from everything. Nothing is normalised (the code's ``"dot"``).

    Args:
        view_a: ``[N, D]`` first views, ``N >= 2``.
        view_b: ``[N, D]`` second views, paired row by row.
        temperature: ``tau > 0`` (default 1.0).

    Returns:
        The scalar ``R``.

    Example:
        >>> h, h_aug = torch.randn(8, 16), torch.randn(8, 16)
        >>> reg = mclrec_regularizer(h, h_aug)
    """
    check_positive_scalar("temperature", temperature)
    check_pair("view_a", view_a, "view_b", view_b, min_rows=2)
    n = view_a.shape[0]
    z = torch.cat([view_a, view_b])
    similarity = z @ z.T / temperature
    index = torch.arange(2 * n, device=z.device)
    partner = (index + n) % (2 * n)
    positive = similarity[index, partner]
    is_negative = torch.ones_like(similarity, dtype=torch.bool)
    is_negative[index, index] = False
    is_negative[index, partner] = False
    hardest = similarity.masked_fill(~is_negative, float("-inf")).amax(1)
    mean_negative = (similarity * is_negative).sum(1) / (2 * n - 2)
    return F.relu(positive - hardest).mean() + (torch.maximum(positive, hardest) - mean_negative).mean()


def mclrec_meta_loss(
    h_a: torch.Tensor,
    h_b: torch.Tensor,
    augmented_a: torch.Tensor,
    augmented_b: torch.Tensor,
    *,
    temperature: Scalar = 1.0,
    regularizer_weight: float = 0.1,
) -> torch.Tensor:
    r"""MCLRec's augmenter objective (``meta_contrast`` + ``meta_rl`` of the authors' code).

    ``h_a``, ``h_b`` are the encoder's outputs for two stochastic augmentations of the
    same sequences, ``augmented_a = aug_1(h_a)`` and ``augmented_b = aug_2(h_b)`` their
    learned augmentations. Three dot-product NT-Xent terms at temperature 1 contrast the
    cross pairs, plus the regulariser on the same pairs:

    .. math::

        L = \sum_{(x, y)} \mathrm{NTXent}(x, y) + w \sum_{(x, y)} R(x, y), \quad
        (x, y) \in \{(h_a, \tilde h_b), (h_b, \tilde h_a), (\tilde h_a, \tilde h_b)\}

    with ``w = 0.1`` (the code's constant). MCLRec adds ``beta * L`` to the encoder's loss
    and trains the augmenters on ``L``.

    Args:
        h_a: ``[N, D]`` first views' encodings, ``N >= 2``.
        h_b: ``[N, D]`` second views' encodings.
        augmented_a: ``[N, D]`` ``aug_1(h_a)``.
        augmented_b: ``[N, D]`` ``aug_2(h_b)``.
        temperature: the NT-Xent and regulariser temperature (default 1.0, the code's).
        regularizer_weight: ``w`` (default 0.1); 0 turns the regulariser off (``use_rl=0``).

    Returns:
        The scalar ``L``; plain autograd throughout, so it supports the double backward of
        a meta-gradient (:func:`contrastkit.nn.augmenters.meta_step`).
    """
    pairs = ((h_a, augmented_b), (h_b, augmented_a), (augmented_a, augmented_b))
    loss = sum(nt_xent(x, y, temperature, normalize=False, chunk_size=None) for x, y in pairs)
    if regularizer_weight:
        loss = loss + regularizer_weight * sum(mclrec_regularizer(x, y, temperature) for x, y in pairs)
    return loss  # type: ignore[return-value]
