"""Shuffled group whitening (WhitenedCSE).

Zhuo et al., ACL 2023, "WhitenedCSE: Whitening-based Contrastive Learning of
Sentence Embeddings". Whitening the embeddings of a batch inside random groups of
channels does two things: it spreads the embeddings out (uniformity), and each
random grouping distorts the batch differently, so whitening the same sentences
several times gives several positives for a multi-positive InfoNCE.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["ShuffledGroupWhitening", "group_zca_whiten", "whitened_views"]

EVAL_MODES = ("none", "fixed")
DEFAULT_NUM_GROUPS = 128


def _check_positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"ShuffledGroupWhitening: expected {name} as an int >= 1, got {value!r}")
    return value


class _InverseSquareRoot(torch.autograd.Function):
    """``(Σ + eps I)^{-1/2}`` of a batch of symmetric matrices, with a stable backward.

    Forward: ``Σ = U diag(s) Uᵀ`` (``torch.linalg.eigh``), ``W = U diag(f(s)) Uᵀ`` with
    ``f(s) = (max(s, 0) + eps)^{-1/2}``. Backward: the Daleckii-Krein formula for a
    matrix function, ``dΣ = U (K ∘ (Uᵀ dW U)) Uᵀ`` with ``K_ij = (f(s_i) - f(s_j)) /
    (s_i - s_j)`` and ``K_ii = f'(s_i)``. It equals differentiating through
    ``eigh`` when the eigenvalues are distinct, and stays finite when they are not
    (a batch with fewer rows than the group size has repeated zero eigenvalues,
    where autograd through ``eigh`` divides by zero and returns NaN).
    """

    @staticmethod
    def forward(ctx, covariance: torch.Tensor, eps: float) -> torch.Tensor:  # noqa: ANN001
        eigenvalues, eigenvectors = torch.linalg.eigh(covariance)
        eigenvalues = eigenvalues.clamp(min=0)
        inverse_sqrt = (eigenvalues + eps).rsqrt()
        ctx.save_for_backward(eigenvalues, eigenvectors, inverse_sqrt)
        ctx.eps = eps
        return (eigenvectors * inverse_sqrt.unsqueeze(-2)) @ eigenvectors.transpose(-1, -2)

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor) -> tuple[torch.Tensor, None]:  # noqa: ANN001
        eigenvalues, eigenvectors, inverse_sqrt = ctx.saved_tensors
        difference = eigenvalues.unsqueeze(-1) - eigenvalues.unsqueeze(-2)
        divided = (inverse_sqrt.unsqueeze(-1) - inverse_sqrt.unsqueeze(-2)) / difference
        # Where eigenvalues (nearly) coincide the divided difference is f' at their mean.
        middle = (eigenvalues.unsqueeze(-1) + eigenvalues.unsqueeze(-2)) / 2
        derivative = -0.5 * (middle + ctx.eps).pow(-1.5)
        scale = eigenvalues.abs().amax(dim=-1, keepdim=True).unsqueeze(-1).clamp(min=1.0)
        close = difference.abs() <= 1e-9 * scale
        kernel = torch.where(close, derivative, divided)
        rotated = eigenvectors.transpose(-1, -2) @ grad_output @ eigenvectors
        rotated = (rotated + rotated.transpose(-1, -2)) / 2  # W is symmetric: only the symmetric part counts
        grad_covariance = eigenvectors @ (kernel * rotated) @ eigenvectors.transpose(-1, -2)
        return grad_covariance, None


def group_zca_whiten(x: torch.Tensor, group_size: int, eps: float = 1e-5) -> torch.Tensor:
    """ZCA-whiten consecutive groups of ``group_size`` channels of ``x [N, D]`` over the batch.

    For every group ``g`` of columns: ``X_g`` centred over the rows, ``Σ_g = X_gᵀ X_g / N``
    (the biased batch covariance, as batch normalisation uses), ``Σ_g = U diag(s) Uᵀ``,
    and the output ``X_g U diag(1/sqrt(s + eps)) Uᵀ``. The maths runs in float64
    (``torch.linalg.eigh`` is ill-conditioned in float32 for nearly equal
    eigenvalues) and the result comes back in ``x``'s dtype. Gradients flow
    through the eigen-decomposition (see ``_InverseSquareRoot`` for the stable form).

    Args:
        x: ``[N, D]`` float, ``D`` divisible by ``group_size``.
        group_size: channels per group.
        eps: added to the eigenvalues (> 0 keeps a rank-deficient batch finite).

    Returns:
        ``[N, D]``: whitened, in the input's column order.
    """
    rows, dim = x.shape
    groups = x.double().reshape(rows, dim // group_size, group_size).transpose(0, 1)  # [G, N, g]
    centred = groups - groups.mean(dim=1, keepdim=True)
    covariance = centred.transpose(1, 2) @ centred / rows  # [G, g, g]
    whitening = _InverseSquareRoot.apply(covariance, eps)  # symmetric [G, g, g]
    whitened = centred @ whitening  # [G, N, g]
    return whitened.transpose(0, 1).reshape(rows, dim).to(x.dtype)


class ShuffledGroupWhitening(nn.Module):
    """WhitenedCSE's shuffled group whitening of an embedding batch.

    In training, every call draws a random permutation ``π`` of the ``D``
    channels, splits the permuted channels into ``G`` groups of ``D / G``, centres
    each group over the batch and ZCA-whitens it,

        ``Σ_g = X_gᵀ X_g / N = U diag(s) Uᵀ``,  ``W_g = U diag(1 / sqrt(s + eps)) Uᵀ``,  ``Y_g = X_g W_g``,

    then puts the channels back in their original order. Inside each group the
    output covariance is the identity (up to ``eps``) whenever ``N`` exceeds the
    group size; with fewer rows the covariance is singular and ``eps`` bounds the
    scale. The eigen-decomposition runs in float64 and is differentiated through.

    In evaluation mode, ``eval_mode="none"`` (default) returns ``x`` unchanged,
    and ``eval_mode="fixed"`` whitens with one permutation drawn at construction
    (still with the statistics of the batch it is given, so an embedding then
    depends on its batch).

    Defaults follow the WhitenedCSE code: ``G = 128`` groups (``group_size`` is
    the other way to say it), ``eps = 1e-5``.

    Args:
        num_groups: number of channel groups ``G`` (default 128 unless
            ``group_size`` is given); ``D`` must be divisible by it.
        group_size: channels per group, instead of ``num_groups``.
        num_features: ``D``; checked against every input, and needed by
            ``eval_mode="fixed"`` to draw its permutation at construction.
        eps: added to the covariance eigenvalues (default 1e-5).
        eval_mode: ``"none"`` or ``"fixed"``.
        generator: optional ``torch.Generator`` for the permutations.

    Inputs and outputs:
        ``x [N, D]`` float with ``N >= 2`` -> ``[N, D]``, same dtype and device.

    Example:
        >>> whitening = ShuffledGroupWhitening(num_groups=4)
        >>> whitened = whitening(torch.randn(64, 32))  # per group of 8 channels: covariance ≈ I
        >>> whitened.shape
        torch.Size([64, 32])
    """

    fixed_permutation: torch.Tensor | None

    def __init__(
        self,
        num_groups: int | None = None,
        *,
        group_size: int | None = None,
        num_features: int | None = None,
        eps: float = 1e-5,
        eval_mode: str = "none",
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        if num_groups is not None and group_size is not None:
            raise ValueError(
                f"ShuffledGroupWhitening: expected num_groups or group_size, got both ({num_groups}, {group_size})"
            )
        if group_size is not None:
            self.group_size: int | None = _check_positive_int("group_size", group_size)
            self.num_groups: int | None = None
        else:
            groups = DEFAULT_NUM_GROUPS if num_groups is None else num_groups
            self.num_groups = _check_positive_int("num_groups", groups)
            self.group_size = None
        if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not eps >= 0:
            raise ValueError(f"ShuffledGroupWhitening: expected eps as a float >= 0, got {eps!r}")
        self.eps = float(eps)
        if eval_mode not in EVAL_MODES:
            raise ValueError(f"ShuffledGroupWhitening: expected eval_mode in {EVAL_MODES}, got {eval_mode!r}")
        self.eval_mode = eval_mode
        if generator is not None and not isinstance(generator, torch.Generator):
            raise ValueError(
                f"ShuffledGroupWhitening: expected generator to be a torch.Generator, got {type(generator).__name__}"
            )
        self.generator = generator
        self.num_features = None if num_features is None else _check_positive_int("num_features", num_features)
        if self.num_features is not None:
            self._group_size_for(self.num_features)
        if eval_mode == "fixed":
            if self.num_features is None:
                raise ValueError(
                    "ShuffledGroupWhitening: eval_mode='fixed' needs num_features to draw its permutation "
                    "at construction, got None"
                )
            permutation = self._draw_permutation(self.num_features, torch.device("cpu"))
            self.register_buffer("fixed_permutation", permutation)
        else:
            self.fixed_permutation = None

    def extra_repr(self) -> str:
        groups = f"group_size={self.group_size}" if self.group_size else f"num_groups={self.num_groups}"
        return f"{groups}, num_features={self.num_features}, eps={self.eps}, eval_mode={self.eval_mode!r}"

    def _group_size_for(self, dim: int) -> int:
        if self.group_size is not None:
            if dim % self.group_size:
                raise ValueError(
                    f"ShuffledGroupWhitening: expected D divisible by group_size={self.group_size}, got D={dim}"
                )
            return self.group_size
        assert self.num_groups is not None
        if dim % self.num_groups:
            raise ValueError(
                f"ShuffledGroupWhitening: expected D divisible by num_groups={self.num_groups}, got D={dim}"
            )
        return dim // self.num_groups

    def _draw_permutation(self, dim: int, device: torch.device) -> torch.Tensor:
        if self.generator is None:
            return torch.randperm(dim, device=device)
        return torch.randperm(dim, generator=self.generator, device=self.generator.device).to(device)

    def whiten(self, x: torch.Tensor, permutation: torch.Tensor) -> torch.Tensor:
        """Whiten ``x [N, D]`` with the groups of the given channel ``permutation [D]``.

        Group ``j`` holds the channels ``permutation[j*g : (j+1)*g]``; the output
        keeps ``x``'s column order.
        """
        self._check_input(x)
        dim = x.shape[1]
        if permutation.shape != (dim,):
            raise ValueError(
                f"ShuffledGroupWhitening: expected a permutation of shape ({dim},), got {tuple(permutation.shape)}"
            )
        permutation = permutation.to(x.device)
        whitened = group_zca_whiten(x[:, permutation], self._group_size_for(dim), self.eps)
        return whitened[:, torch.argsort(permutation)]

    def _check_input(self, x: torch.Tensor) -> None:
        if not isinstance(x, torch.Tensor) or x.dim() != 2:
            got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"ShuffledGroupWhitening: expected embeddings [N, D], got {got}")
        if not x.is_floating_point():
            raise ValueError(f"ShuffledGroupWhitening: expected a floating-point tensor, got dtype {x.dtype}")
        if x.shape[0] < 2:
            raise ValueError(
                f"ShuffledGroupWhitening: expected at least 2 rows to estimate a covariance, got shape {tuple(x.shape)}"
            )
        if self.num_features is not None and x.shape[1] != self.num_features:
            raise ValueError(
                f"ShuffledGroupWhitening: expected D = num_features = {self.num_features}, got shape {tuple(x.shape)}"
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Whiten ``x [N, D]`` (training: a fresh permutation per call; eval: see ``eval_mode``)."""
        self._check_input(x)
        if self.training:
            return self.whiten(x, self._draw_permutation(x.shape[1], x.device))
        if self.eval_mode == "none":
            return x
        assert self.fixed_permutation is not None
        return self.whiten(x, self.fixed_permutation)


def whitened_views(views: Sequence[torch.Tensor], whitening: ShuffledGroupWhitening) -> list[torch.Tensor]:
    """Whiten each view separately, each with its own random grouping (in training).

    WhitenedCSE feeds P views of the same sentences (dropout views, P = 3 in the
    paper's code) through the whitening one view at a time; the whitened views
    of a sentence are then each other's positives in a multi-positive InfoNCE.

    Args:
        views: P tensors ``[N, D]`` of the same shape (row ``i`` is the same
            sentence in every view).
        whitening: the :class:`ShuffledGroupWhitening` module.

    Returns:
        A list of P whitened ``[N, D]`` tensors.

    Raises:
        ValueError: no views, or views of different shapes.

    Example:
        >>> whitening = ShuffledGroupWhitening(num_groups=4)
        >>> views = whitened_views([torch.randn(64, 32) for _ in range(3)], whitening)
    """
    if isinstance(views, torch.Tensor) or not isinstance(views, Sequence) or len(views) == 0:
        raise ValueError(f"whitened_views: expected a non-empty list of [N, D] tensors, got {type(views).__name__}")
    if not isinstance(whitening, ShuffledGroupWhitening):
        raise ValueError(f"whitened_views: expected a ShuffledGroupWhitening, got {type(whitening).__name__}")
    shapes = [tuple(view.shape) if isinstance(view, torch.Tensor) else type(view).__name__ for view in views]
    if any(shape != shapes[0] for shape in shapes):
        raise ValueError(f"whitened_views: expected views of the same shape [N, D], got {shapes}")
    return [whitening(view) for view in views]
