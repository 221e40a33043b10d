"""Learnable augmenters and a one-step look-ahead meta-gradient (MCLRec, Qin et al., SIGIR 2023).

"Meta-optimized Contrastive Learning for Sequential Recommendation" adds two small
MLPs after the encoder: given the encodings ``h_a``, ``h_b`` of two stochastic
augmentations of a sequence, the augmenters produce ``aug_1(h_a)`` and ``aug_2(h_b)``,
and :func:`contrastkit.functional.recommendation.mclrec_meta_loss` contrasts the cross
pairs with a regulariser that keeps the learned views from collapsing onto their
sources. The augmenters are *meta-learned*:

1. update the encoder ``θ`` on the full loss with the augmenters ``φ`` fixed;
2. update ``φ`` on the contrastive loss (plus the regulariser), recomputed with the encoder
   ``θ'`` that step 1 produced, ``θ'`` held fixed;
3. update the encoder again.

That is the paper's Algorithm 1 and the authors' code (``recbole/trainer/trainer.py``), both
first order: :func:`meta_step` with ``inner_lr=0``, called after the encoder's step, is exactly
their step 2. ``inner_lr > 0`` is an extension of ours, found in neither: a MAML-style look-ahead
``θ'(φ) = θ - α ∇_θ L_inner(θ, φ)`` whose ``∇_φ L_outer(θ'(φ), φ)`` carries the second-order
term through ``θ'`` (re-read against QinHsiu/MCLRec for issue 15).

Status (METHODS.md #53): PARTIAL. These are the components; the SASRec encoder,
the sequence augmentations and the next-item task of the paper are not here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {"gelu": F.gelu, "relu": F.relu, "swish": F.silu}

#: An encoder call with the parameters of one point of the look-ahead: ``encode(*args, **kwargs)``.
Encode = Callable[..., torch.Tensor]


class Augmenter(nn.Module):
    """One MCLRec augmenter: an MLP ``D -> hidden... -> D`` whose output is L2-normalised.

    The authors' ``Extractor([64, 32, 16, 64], "gelu")``: linear layers with GELU between
    them (none after the last), then row-wise L2 normalisation.

    Args:
        dim: the encoding width ``D`` (input and output).
        hidden_dims: the hidden widths (default ``(32, 16)``, the code's for ``D = 64``).
        activation: ``"gelu"`` (default), ``"relu"`` or ``"swish"``.

    Example:
        >>> Augmenter(64)(torch.randn(8, 64)).norm(dim=1)  # doctest: +SKIP
        tensor([1., 1., 1., 1., 1., 1., 1., 1.], ...)
    """

    def __init__(self, dim: int, hidden_dims: Sequence[int] = (32, 16), activation: str = "gelu") -> None:
        super().__init__()
        if dim < 1 or any(width < 1 for width in hidden_dims):
            raise ValueError(f"Augmenter: expected positive widths, got dim={dim}, hidden_dims={tuple(hidden_dims)}")
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation: expected one of {sorted(ACTIVATIONS)}, got {activation!r}")
        widths = [dim, *hidden_dims, dim]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:]))
        self.activation = ACTIVATIONS[activation]
        self.dim = self.output_dim = dim

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """``[B, D] -> [B, D]`` unit-norm augmented views."""
        if h.dim() != 2 or h.shape[1] != self.dim:
            raise ValueError(f"Augmenter: expected inputs [B, {self.dim}], got {tuple(h.shape)}")
        for position, layer in enumerate(self.layers):
            h = layer(h)
            if position < len(self.layers) - 1:
                h = self.activation(h)
        return F.normalize(h, dim=1)


class MetaAugmenters(nn.Module):
    """MCLRec's pair of augmenters: ``(h_a, h_b) -> (aug_1(h_a), aug_2(h_b))``.

    Args:
        dim: the encoding width ``D``.
        hidden_dims: the augmenters' hidden widths (default ``(32, 16)``).
        activation: their activation (default ``"gelu"``).
    """

    def __init__(self, dim: int, hidden_dims: Sequence[int] = (32, 16), activation: str = "gelu") -> None:
        super().__init__()
        self.first = Augmenter(dim, hidden_dims, activation)
        self.second = Augmenter(dim, hidden_dims, activation)

    def forward(self, h_a: torch.Tensor, h_b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.first(h_a), self.second(h_b)


def meta_step(
    encoder: nn.Module,
    meta_parameters: Iterable[torch.Tensor],
    inner_loss: Callable[[Encode], torch.Tensor],
    outer_loss: Callable[[Encode], torch.Tensor],
    *,
    inner_lr: float,
    accumulate: bool = True,
) -> tuple[torch.Tensor, list[torch.Tensor | None]]:
    r"""The one-step look-ahead meta-gradient of ``meta_parameters`` (second order).

    With ``θ`` the encoder's trainable parameters and ``φ`` the meta-parameters (the
    augmenters), this computes

    .. math::

        \theta' = \theta - \alpha \nabla_\theta L_{inner}(\theta, \phi), \qquad
        g_\phi = \frac{d}{d\phi} L_{outer}(\theta'(\phi), \phi)

    where the derivative runs through ``θ'`` (``create_graph=True``: the Hessian-vector
    term ``-α ∇²_{φθ} L_inner · ∇_{θ'} L_outer``) and through any direct use of ``φ`` in
    the outer loss. The encoder is evaluated at ``θ'`` with
    :func:`torch.func.functional_call`; its parameters are never modified and their
    ``.grad`` is left alone.

    Args:
        encoder: the module whose look-ahead step is taken (its parameters with
            ``requires_grad`` are ``θ``; buffers are used as they are).
        meta_parameters: ``φ``, e.g. ``augmenters.parameters()``.
        inner_loss: ``inner_loss(encode) -> scalar``, the encoder's training loss, where
            ``encode(*args, **kwargs)`` runs the encoder at ``θ``; it should use ``φ``.
        outer_loss: ``outer_loss(encode) -> scalar`` with ``encode`` running the encoder at ``θ'``.
        inner_lr: the look-ahead step size ``α >= 0`` (0: the first-order step of the
            authors' code).
        accumulate: add ``g_φ`` to each meta-parameter's ``.grad`` (default ``True``), ready
            for the augmenters' optimiser.

    Returns:
        ``(outer loss (detached), [g_φ per meta-parameter, None where unused])``.

    Raises:
        ValueError: for a negative ``inner_lr``, no meta-parameters, or non-scalar losses.

    Example:
        >>> augmenters = MetaAugmenters(16)
        >>> def inner(encode):
        ...     h_a, h_b = encode(x_a), encode(x_b)
        ...     return task_loss(h_a) + mclrec_meta_loss(h_a, h_b, *augmenters(h_a, h_b))
        >>> def outer(encode):
        ...     h_a, h_b = encode(x_a), encode(x_b)
        ...     return mclrec_meta_loss(h_a, h_b, *augmenters(h_a, h_b))
        >>> loss, grads = meta_step(encoder, augmenters.parameters(), inner, outer, inner_lr=1e-3)  # doctest: +SKIP
        >>> augmenter_optimizer.step()  # doctest: +SKIP
    """
    if not inner_lr >= 0:
        raise ValueError(f"inner_lr: expected a step size >= 0, got {inner_lr}")
    meta = list(meta_parameters)
    if not meta:
        raise ValueError("meta_step: expected at least one meta-parameter, got none")
    names = [name for name, parameter in encoder.named_parameters() if parameter.requires_grad]
    theta = [parameter for _, parameter in encoder.named_parameters() if parameter.requires_grad]
    buffers = dict(encoder.named_buffers())

    def encode_at(parameters: dict[str, torch.Tensor]) -> Encode:
        state = {**buffers, **parameters}
        return lambda *args, **kwargs: functional_call(encoder, state, args, kwargs)

    if inner_lr > 0 and theta:
        inner = inner_loss(encode_at(dict(zip(names, theta))))
        _check_scalar("inner_loss", inner)
        grads = torch.autograd.grad(inner, theta, create_graph=True, allow_unused=True)
        lookahead = {
            name: parameter if grad is None else parameter - inner_lr * grad
            for name, parameter, grad in zip(names, theta, grads)
        }
    else:
        lookahead = dict(zip(names, theta))
    outer = outer_loss(encode_at(lookahead))
    _check_scalar("outer_loss", outer)
    meta_grads = list(torch.autograd.grad(outer, meta, allow_unused=True))
    if accumulate:
        with torch.no_grad():
            for parameter, grad in zip(meta, meta_grads):
                if grad is None:
                    continue
                if parameter.grad is None:
                    parameter.grad = grad.detach().clone()
                else:
                    parameter.grad.add_(grad)
    return outer.detach(), meta_grads


def _check_scalar(name: str, value: torch.Tensor) -> None:
    if not isinstance(value, torch.Tensor) or value.numel() != 1:
        shape = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
        raise ValueError(f"meta_step: expected {name} to return a scalar tensor, got {shape}")
    if not value.requires_grad:
        raise ValueError(f"meta_step: {name} does not depend on any parameter (no gradient to take)")
