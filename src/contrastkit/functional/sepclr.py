"""SepCLR: separating common from salient patterns with contrastive learning.

Louiset, Duchesnay, Grigis, Dufumier and Gori, "SepCLR: Separating common from salient
patterns with Contrastive Representation Learning", ICLR 2024. METHODS.md #48, verdict FULL.

Contrastive analysis: a *background* dataset (label 0, e.g. healthy subjects) and a
*target* dataset (label > 0, e.g. patients) share common factors; salient factors exist
only in the target. Two spaces are learned: a common space ``c`` (InfoMax by alignment and
uniformity on the hypersphere) and a salient space ``s`` (InfoMax on target samples, with
every background sample's salient code tied to the information-less constant ``0``), and
the mutual information between them is penalised with a kernel joint-entropy estimate
(k-JEM). The formulas follow the official code (``losses.py``, ``cifar_mnist/sep_clr_k-jem.py``):
``c`` is L2-normalised inside the loss, ``s`` is not.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from contrastkit.utils.checks import check_embeddings, check_pair, check_positive_scalar

__all__ = ["align_loss", "uniform_loss", "joint_entropy_loss", "sepclr_loss"]


def _check_weight(name: str, value: float) -> None:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 <= value < float("inf"):
        raise ValueError(f"{name}: expected a finite float >= 0, got {value!r}")


def _squared_distances(x: torch.Tensor) -> torch.Tensor:
    """``||x_i - x_j||^2`` for all pairs, ``[N, N]``.

    Expanded as ``|x_i|^2 + |x_j|^2 - 2 x_i.x_j`` rather than ``cdist(...)**2``: the square of
    a norm has a NaN gradient where two rows coincide (the diagonal, and every pair of
    zeroed background codes), the expansion a finite one.
    """
    squared_norms = x.pow(2).sum(dim=1)
    return (squared_norms[:, None] + squared_norms[None, :] - 2.0 * x @ x.T).clamp_min(0.0)


def _gaussian_gram(x: torch.Tensor, temperature: float) -> torch.Tensor:
    """``exp(-||x_i - x_j||^2 / (2 tau))`` for all pairs, ``[N, N]``."""
    return _squared_distances(x).mul(-1.0 / (2.0 * temperature)).exp()


def align_loss(x: torch.Tensor, y: torch.Tensor, *, alpha: float = 2.0, temperature: float = 0.5) -> torch.Tensor:
    r"""Alignment of paired rows (Wang & Isola, 2020), scaled as in SepCLR.

    .. math::

        L_{align} = \frac{1}{N} \sum_i \frac{\lVert x_i - y_i \rVert_2^{\alpha}}{2\tau}

    No normalisation: pass L2-normalised rows for the hypersphere version.

    Args:
        x: ``[N, D]`` first views, ``N >= 1``.
        y: ``[N, D]`` paired second views.
        alpha: power of the distance (default 2).
        temperature: ``tau`` (default 0.5, the paper's).

    Returns:
        The scalar loss.

    Example:
        >>> x = F.normalize(torch.randn(8, 4), dim=1)
        >>> float(align_loss(x, x))
        0.0
    """
    check_positive_scalar("alpha", alpha)
    check_positive_scalar("temperature", temperature)
    check_pair("x", x, "y", y)
    return (x - y).norm(p=2, dim=1).pow(alpha).mean() / (2.0 * temperature)


def uniform_loss(x: torch.Tensor, *, temperature: float = 0.5) -> torch.Tensor:
    r"""Uniformity (Wang & Isola, 2020): log of the mean Gaussian potential over distinct pairs.

    .. math::

        L_{unif} = \log \frac{2}{N(N-1)} \sum_{i<j} \exp\left(-\frac{\lVert x_i - x_j \rVert^2}{2\tau}\right)

    Args:
        x: ``[N, D]`` rows, ``N >= 2``.
        temperature: ``tau`` (default 0.5, so ``1 / (2 tau) = 1``: Wang & Isola's ``t = 1``).

    Returns:
        The scalar loss (``<= 0``; ``0`` when every row is the same point).

    Example:
        >>> float(uniform_loss(torch.zeros(4, 3)))
        0.0
    """
    check_positive_scalar("temperature", temperature)
    check_embeddings("x", x, min_rows=2)
    rows, cols = torch.triu_indices(x.shape[0], x.shape[0], offset=1, device=x.device)
    return _gaussian_gram(x, temperature)[rows, cols].mean().log()


def joint_entropy_loss(common: torch.Tensor, salient: torch.Tensor, *, temperature: float = 0.5) -> torch.Tensor:
    r"""k-JEM: a kernel estimate of minus the joint entropy of ``(c, s)``, SepCLR's MI penalty.

    .. math::

        L_{jem} = \frac{1}{N} \sum_i \log \frac{1}{N} \sum_j
            \exp\left(-\frac{\lVert s_i - s_j \rVert^2}{2\tau}\right)
            \exp\left(-\frac{\lVert c_i - c_j \rVert^2}{2\tau}\right)

    (``j`` runs over every row, ``i`` included.) Minimising it maximises the joint entropy
    ``H(c, s)``; with ``H(c)`` and ``H(s)`` held up by the uniformity terms, this lowers
    ``I(c; s) = H(c) + H(s) - H(c, s)``.

    Args:
        common: ``[N, D_c]`` common codes (SepCLR passes them L2-normalised).
        salient: ``[N, D_s]`` salient codes (SepCLR passes ``s'``, zero on background rows).
        temperature: ``tau`` of both kernels (default 0.5).

    Returns:
        The scalar loss (``<= 0``).

    Example:
        >>> loss = joint_entropy_loss(F.normalize(torch.randn(8, 4), dim=1), torch.randn(8, 3))
        >>> loss.shape
        torch.Size([])
    """
    check_positive_scalar("temperature", temperature)
    check_embeddings("common", common, min_rows=1)
    check_embeddings("salient", salient, min_rows=1)
    if salient.shape[0] != common.shape[0]:
        raise ValueError(
            f"salient: expected the same number of rows as common ({common.shape[0]}), got shape {tuple(salient.shape)}"
        )
    kernel = _gaussian_gram(salient, temperature) * _gaussian_gram(common, temperature)
    return kernel.mean(dim=-1).log().mean()


def _masked_align(x: torch.Tensor, y: torch.Tensor, mask: torch.Tensor, temperature: float) -> torch.Tensor:
    """``align_loss`` over the rows where ``mask`` holds; 0 (with a graph) when none does."""
    distances = (x - y).pow(2).sum(dim=1) * mask
    return distances.sum() / (2.0 * temperature * mask.sum().clamp_min(1))


def sepclr_loss(
    common_a: torch.Tensor,
    common_b: torch.Tensor,
    salient_a: torch.Tensor,
    salient_b: torch.Tensor,
    labels: torch.Tensor,
    *,
    temperature: float = 0.5,
    beta_salient: float = 1000.0,
    beta_info_less: float = 1000.0,
    jem_weight: float = 10.0,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    r"""The SepCLR (k-JEM) objective on two views of a mixed background/target batch.

    With ``\hat c = c / \lVert c \rVert``, ``T = {i: y_i > 0}`` (target), ``B = {i: y_i = 0}``
    (background) and ``s'`` equal to ``s`` on ``T`` and to the zero vector on ``B``:

    .. math::

        L_c &= align(\hat c^a, \hat c^b) + 2 \cdot \tfrac12 [unif(\hat c^a) + unif(\hat c^b)] \\
        L_s &= align(s^a_T, s^b_T) + 2 \cdot \tfrac12 [unif(s'^a) + unif(s'^b)] \\
        L_{reg} &= \tfrac12 [align(s'^a_B, s^a_B) + align(s'^b_B, s^b_B)]
                  = \tfrac12 [\overline{\lVert s^a_B \rVert^2} + \overline{\lVert s^b_B \rVert^2}] / (2\tau) \\
        L_{jem} &= \tfrac12 [jem(\hat c^a, s'^a) + jem(\hat c^b, s'^b)] \\
        L &= L_c + \beta_s L_s + \beta_r L_{reg} + \lambda L_{jem}

    (``align``, ``unif`` and ``jem`` are :func:`align_loss`, :func:`uniform_loss` and
    :func:`joint_entropy_loss`.) The information-less term ``L_reg`` is zero exactly when
    every background salient code is zero. A batch without target rows gets ``0`` for the
    salient alignment and one without background rows gets ``L_reg = 0`` (the official code
    would produce NaN there).

    Args:
        common_a: ``[N, D_c]`` common head of view a (not normalised; normalised here).
        common_b: ``[N, D_c]`` common head of view b.
        salient_a: ``[N, D_s]`` salient head of view a (used as is, no normalisation).
        salient_b: ``[N, D_s]`` salient head of view b.
        labels: ``[N]`` integer labels: ``0`` background, ``> 0`` target (any sub-group id).
        temperature: ``tau`` of every term (default 0.5).
        beta_salient: weight ``beta_s`` of the salient term (default 1000, the paper's).
        beta_info_less: weight ``beta_r`` of the information-less term (default 1000).
        jem_weight: weight ``lambda`` of the k-JEM penalty (default 10).

    Returns:
        ``(loss, parts)``: the scalar total and ``{"common", "salient", "info_less", "jem"}``,
        the unweighted scalar terms.

    Raises:
        ValueError: on shapes that do not pair up, non-integer or negative labels, or bad weights.

    Example:
        >>> c_a, c_b, s_a, s_b = (torch.randn(8, 4) for _ in range(4))
        >>> labels = torch.tensor([0, 1, 0, 2, 0, 1, 3, 0])
        >>> loss, parts = sepclr_loss(c_a, c_b, s_a, s_b, labels)
        >>> sorted(parts)
        ['common', 'info_less', 'jem', 'salient']
    """
    check_positive_scalar("temperature", temperature)
    for name, value in (("beta_salient", beta_salient), ("beta_info_less", beta_info_less), ("jem_weight", jem_weight)):
        _check_weight(name, value)
    check_pair("common_a", common_a, "common_b", common_b, min_rows=2)
    check_pair("salient_a", salient_a, "salient_b", salient_b, min_rows=2)
    if salient_a.shape[0] != common_a.shape[0]:
        raise ValueError(
            f"salient_a: expected {common_a.shape[0]} rows (as common_a), got shape {tuple(salient_a.shape)}"
        )
    if not isinstance(labels, torch.Tensor) or labels.dim() != 1 or labels.shape[0] != common_a.shape[0]:
        shape = tuple(labels.shape) if isinstance(labels, torch.Tensor) else type(labels).__name__
        raise ValueError(f"labels: expected an integer tensor of shape [{common_a.shape[0]}], got {shape}")
    if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
        raise ValueError(f"labels: expected integer labels (0 background, > 0 target), got dtype {labels.dtype}")
    if bool((labels < 0).any()):
        raise ValueError("labels: expected labels >= 0 (0 background, > 0 target), got a negative label")

    tau = temperature
    target = labels > 0
    target_f = target.to(salient_a.dtype)
    background_f = 1.0 - target_f
    # s': the information-less constant 0 replaces the salient code of every background row.
    teacher_a = salient_a * target_f[:, None]
    teacher_b = salient_b * target_f[:, None]
    c_a, c_b = F.normalize(common_a, dim=1), F.normalize(common_b, dim=1)

    common = align_loss(c_a, c_b, temperature=tau) + 2.0 * 0.5 * (
        uniform_loss(c_a, temperature=tau) + uniform_loss(c_b, temperature=tau)
    )
    salient = _masked_align(salient_a, salient_b, target_f, tau) + 2.0 * 0.5 * (
        uniform_loss(teacher_a, temperature=tau) + uniform_loss(teacher_b, temperature=tau)
    )
    info_less = 0.5 * (
        _masked_align(teacher_a, salient_a, background_f, tau) + _masked_align(teacher_b, salient_b, background_f, tau)
    )
    jem = 0.5 * (
        joint_entropy_loss(c_a, teacher_a, temperature=tau) + joint_entropy_loss(c_b, teacher_b, temperature=tau)
    )
    loss = common + beta_salient * salient + beta_info_less * info_less + jem_weight * jem
    return loss, {"common": common, "salient": salient, "info_less": info_less, "jem": jem}
