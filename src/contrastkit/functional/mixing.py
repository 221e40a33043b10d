"""Mixed Barlow Twins: a mixup regulariser on the Barlow Twins cross-correlation.

Bandara, Patel, Wang, Chellappa & Patel, "Guarding Barlow Twins Against Overfitting
with Mixed Samples" (arXiv 2312.02151, 2023; official code ``wgcban/mix-bt``).
METHODS.md #6, verdict **FULL**.

Barlow Twins' redundancy reduction can overfit: with a projector wider than the
number of effective samples, the network can decorrelate features by memorising.
The paper mixes the two augmented views, ``x^M = alpha x^A + (1 - alpha) x^B[pi]``,
and asks that the cross-correlation of the mixed embeddings with each view equal the
interpolation of the unmixed cross-correlations — the linear behaviour a mixup
interpolation would have if the network were linear in its input. The regulariser
is added to the Barlow Twins loss; the targets are *not* detached (as in the official
code), so the gradient also reaches the unmixed branches through the target.
"""

from __future__ import annotations

import torch

from contrastkit.utils.checks import check_pair, check_positive_scalar

__all__ = ["mix_inputs", "mixed_barlow_twins_regularizer"]


def _check_nonnegative(name: str, value: float) -> None:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not value >= 0 or value == float("inf"):
        raise ValueError(f"{name}: expected a finite float >= 0, got {value!r}")


def _standardise(z: torch.Tensor, eps: float) -> torch.Tensor:
    # Same standardisation as functional.barlow_twins (BatchNorm1d(affine=False): biased variance + eps),
    # so that the regulariser and the Barlow Twins loss see the same normalised embeddings.
    return (z - z.mean(dim=0)) / torch.sqrt(z.var(dim=0, unbiased=False) + eps)


def mix_inputs(
    x_a: torch.Tensor, x_b: torch.Tensor, *, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor, float]:
    r"""Mix the first views with a shuffled batch of the second views (mixup across views).

    .. math::

        x^M_i = \alpha\, x^A_i + (1 - \alpha)\, x^B_{\pi(i)},
        \qquad \alpha \sim \mathrm{Beta}(1, 1),\ \pi \text{ a uniform random permutation}

    One ``alpha`` for the whole batch, as in the official code. ``Beta(1, 1)`` is the
    uniform distribution on ``[0, 1]``, so ``alpha`` is drawn as a uniform number.

    Args:
        x_a: ``[B, ...]`` first augmented views.
        x_b: ``[B, ...]`` second augmented views, same shape as ``x_a``.
        generator: optional CPU random generator (default: torch's global RNG).

    Returns:
        ``(x_mix, permutation, alpha)``: the mixed batch (shape of ``x_a``), the
        ``[B]`` long permutation ``pi`` (on ``x_a``'s device) and ``alpha`` as a float.

    Raises:
        ValueError: tensors of different shapes, or fewer than 2 rows.

    Example:
        >>> x_a, x_b = torch.rand(4, 1, 8, 8), torch.rand(4, 1, 8, 8)
        >>> x_mix, permutation, alpha = mix_inputs(x_a, x_b, generator=torch.Generator().manual_seed(0))
        >>> x_mix.shape, sorted(permutation.tolist())
        (torch.Size([4, 1, 8, 8]), [0, 1, 2, 3])
    """
    if not isinstance(x_a, torch.Tensor) or not isinstance(x_b, torch.Tensor):
        raise ValueError(  # noqa: TRY004 - bad input is a ValueError throughout the library
            f"x_a, x_b: expected tensors, got {type(x_a).__name__} and {type(x_b).__name__}"
        )
    if x_a.shape != x_b.shape:
        raise ValueError(f"x_b: expected the shape of x_a {tuple(x_a.shape)}, got {tuple(x_b.shape)}")
    if x_a.dim() < 1 or x_a.shape[0] < 2:
        raise ValueError(f"x_a: expected a batch of at least 2 rows, got shape {tuple(x_a.shape)}")
    n = x_a.shape[0]
    # Sample on the CPU (where a CPU generator lives), then move: the draw is then the same on every device.
    permutation = torch.randperm(n, generator=generator).to(x_a.device)
    alpha = float(torch.rand((), generator=generator))
    x_mix = alpha * x_a + (1.0 - alpha) * x_b[permutation]
    return x_mix, permutation, alpha


def mixed_barlow_twins_regularizer(
    z_a: torch.Tensor,
    z_b: torch.Tensor,
    z_mix: torch.Tensor,
    permutation: torch.Tensor,
    alpha: float | torch.Tensor,
    *,
    lambd: float,
    mix_weight: float = 1.0,
    eps: float = 1e-5,
    standardize: bool = True,
) -> torch.Tensor:
    r"""The Mixed Barlow Twins regulariser (Bandara et al., 2023).

    With ``Z^A, Z^B, Z^M`` the embeddings of the two views and of the mixed batch,
    each standardised per dimension over the batch (as in :func:`barlow_twins`):

    .. math::

        C^{MA} = Z^{M\top} Z^A / N, \qquad
        C^{MA}_{gt} = \alpha\, Z^{A\top} Z^A / N + (1 - \alpha)\, Z^B[\pi]^\top Z^A / N

    and ``C^{MB}, C^{MB}_{gt}`` the same with ``Z^B`` on the right, then

    .. math::

        L_{reg} = \lambda_{reg}\, \lambda_{BT}
            \left(\|C^{MA} - C^{MA}_{gt}\|_F^2 + \|C^{MB} - C^{MB}_{gt}\|_F^2\right)

    Computed as ``(Z^M - T)^\top Z^{A} / N`` with ``T = \alpha Z^A + (1 - \alpha) Z^B[\pi]``,
    which is the same difference in one product. The targets are not detached (the
    official code back-propagates through them). ``alpha`` may also be a ``[N]`` tensor
    (one coefficient per row, e.g. rows gathered from processes that drew their own),
    in which case ``C_gt = T^\top Z / N`` with a per-row ``T``.

    For an affine encoder the raw (``standardize=False``) regulariser is exactly zero:
    the mixed embeddings *are* ``T``. Standardisation breaks this in general, because the
    standard deviation of a mixture is not the mixture of standard deviations.

    Args:
        z_a: ``[N, D]`` projections of the first views (``N >= 2``).
        z_b: ``[N, D]`` projections of the second views.
        z_mix: ``[N, D]`` projections of ``alpha x_a + (1 - alpha) x_b[permutation]``.
        permutation: ``[N]`` long tensor, the ``pi`` used to mix (any index map works).
        alpha: the mixing coefficient in ``[0, 1]``: a float, a 0-d tensor or a ``[N]`` tensor.
        lambd: the Barlow Twins off-diagonal weight ``lambda_BT`` (paper: 1/128 on CIFAR with
            ``D = 1024``, 0.0051 on ImageNet).
        mix_weight: ``lambda_reg`` (paper: 4 on CIFAR-10/100 and Tiny-ImageNet, 2 on STL-10,
            1 on ImageNet; default 1 here, the method sets its own).
        eps: added to the variance when standardising (default ``1e-5``, as :func:`barlow_twins`).
        standardize: standardise each embedding per dimension (the paper; ``False`` gives
            the raw second-moment version, used to state the linear-encoder property).

    Returns:
        The scalar regulariser.

    Raises:
        ValueError: mismatched shapes, a bad permutation, ``alpha`` outside ``[0, 1]`` or
            negative weights.

    Example:
        >>> z_a, z_b, z_m = torch.randn(16, 8), torch.randn(16, 8), torch.randn(16, 8)
        >>> reg = mixed_barlow_twins_regularizer(z_a, z_b, z_m, torch.randperm(16), 0.3, lambd=5e-3)
        >>> reg.shape
        torch.Size([])
    """
    _check_nonnegative("lambd", lambd)
    _check_nonnegative("mix_weight", mix_weight)
    check_positive_scalar("eps", eps)
    check_pair("z_a", z_a, "z_b", z_b, min_rows=2)
    check_pair("z_a", z_a, "z_mix", z_mix, min_rows=2)
    n = z_a.shape[0]
    if not isinstance(permutation, torch.Tensor) or permutation.shape != (n,) or permutation.dtype != torch.long:
        if isinstance(permutation, torch.Tensor):
            got = f"{permutation.dtype} tensor of shape {tuple(permutation.shape)}"
        else:
            got = type(permutation).__name__
        raise ValueError(f"permutation: expected a [{n}] long tensor, got {got}")
    if isinstance(alpha, torch.Tensor):
        if alpha.numel() != 1 and tuple(alpha.shape) != (n,):
            raise ValueError(f"alpha: expected a scalar or a [{n}] tensor, got shape {tuple(alpha.shape)}")
        alpha_t = alpha.detach().to(device=z_a.device, dtype=z_a.dtype).reshape(-1, 1)
        if not bool(((alpha_t >= 0) & (alpha_t <= 1)).all()):
            raise ValueError("alpha: expected values in [0, 1]")
    elif isinstance(alpha, (int, float)) and not isinstance(alpha, bool):
        if not 0.0 <= float(alpha) <= 1.0:
            raise ValueError(f"alpha: expected a value in [0, 1], got {alpha}")
        alpha_t = torch.tensor(float(alpha), device=z_a.device, dtype=z_a.dtype)
    else:
        raise ValueError(f"alpha: expected a float or a tensor, got {type(alpha).__name__}")  # noqa: TRY004

    if standardize:
        z_a, z_b, z_mix = (_standardise(z, eps) for z in (z_a, z_b, z_mix))
    # C^{M.} - C^{M.}_gt = (Z^M - T)^T Z^. / N: one residual shared by both terms.
    residual = z_mix - (alpha_t * z_a + (1.0 - alpha_t) * z_b[permutation])
    diff_a = residual.T @ z_a / n
    diff_b = residual.T @ z_b / n
    return mix_weight * lambd * (diff_a.pow(2).sum() + diff_b.pow(2).sum())
