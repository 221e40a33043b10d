"""Thin ``nn.Module`` wrappers around :mod:`contrastkit.functional`.

A module carries hyper-parameters and, where a paper learns them, state (a
temperature, a logit scale, a bias). The math stays in ``functional/``.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from contrastkit import functional as CF

__all__ = [
    "InfoNCELoss",
    "NTXentLoss",
    "SupConLoss",
    "DCLLoss",
    "BarlowTwinsLoss",
    "VICRegLoss",
    "NegativeCosineLoss",
    "ClipLoss",
    "SigLipLoss",
]


def _positive(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < math.inf:
        raise ValueError(f"{name}: expected a finite float > 0, got {value!r}")
    return float(value)


def _store_log(module: nn.Module, name: str, value: float, learnable: bool) -> None:
    tensor = torch.tensor(math.log(value))
    if learnable:
        module.register_parameter(name, nn.Parameter(tensor))
    else:
        module.register_buffer(name, tensor)


class InfoNCELoss(nn.Module):
    """InfoNCE with an optional learnable temperature; see :func:`contrastkit.functional.info_nce`.

    A learnable temperature is stored as ``log_temperature`` and clamped in the
    forward pass to ``[min_temperature, max_temperature]`` (no gradient while
    clamped).

    Args:
        temperature: initial ``tau > 0`` (default 0.1).
        learnable_temperature: learn ``log tau`` (default ``False``).
        symmetric: average both directions (default ``False``).
        normalize: L2-normalise the embeddings (default ``True``).
        reduction: ``'mean'`` (default), ``'sum'`` or ``'none'``.
        min_temperature: lower clamp (default 0.01, i.e. a logit scale of at most 100).
        max_temperature: upper clamp (default 100).

    Example:
        >>> loss_fn = InfoNCELoss(temperature=0.07, learnable_temperature=True)
        >>> query, key = torch.randn(8, 32), torch.randn(8, 32)
        >>> loss = loss_fn(query, key)
    """

    def __init__(
        self,
        temperature: float = 0.1,
        learnable_temperature: bool = False,
        symmetric: bool = False,
        normalize: bool = True,
        reduction: str = "mean",
        min_temperature: float = 0.01,
        max_temperature: float = 100.0,
    ) -> None:
        super().__init__()
        temperature = _positive("temperature", temperature)
        self.min_temperature = _positive("min_temperature", min_temperature)
        self.max_temperature = _positive("max_temperature", max_temperature)
        if not self.min_temperature <= temperature <= self.max_temperature:
            raise ValueError(
                f"temperature: expected a value in [{min_temperature}, {max_temperature}], got {temperature}"
            )
        _store_log(self, "log_temperature", temperature, learnable_temperature)
        self.symmetric = symmetric
        self.normalize = normalize
        self.reduction = reduction

    @property
    def temperature(self) -> torch.Tensor:
        """The clamped temperature used in the forward pass (a 0-d tensor)."""
        return self.log_temperature.exp().clamp(self.min_temperature, self.max_temperature)

    def forward(
        self,
        query: torch.Tensor,
        key: torch.Tensor,
        *,
        negatives: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        pos_mask: torch.Tensor | None = None,
        weights: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Compute the loss; arguments as in :func:`contrastkit.functional.info_nce`."""
        return CF.info_nce(
            query,
            key,
            negatives=negatives,
            temperature=self.temperature,
            symmetric=self.symmetric,
            labels=labels,
            pos_mask=pos_mask,
            weights=weights,
            normalize=self.normalize,
            reduction=self.reduction,
        )


class NTXentLoss(nn.Module):
    """SimCLR's NT-Xent; see :func:`contrastkit.functional.nt_xent`.

    Example:
        >>> loss_fn = NTXentLoss(temperature=0.5)
        >>> loss = loss_fn(torch.randn(8, 32), torch.randn(8, 32))
    """

    def __init__(self, temperature: float = 0.5, normalize: bool = True) -> None:
        super().__init__()
        self.temperature = _positive("temperature", temperature)
        self.normalize = normalize

    def forward(self, z_a: torch.Tensor, z_b: torch.Tensor) -> torch.Tensor:
        """Loss of two ``[N, D]`` view batches."""
        return CF.nt_xent(z_a, z_b, self.temperature, normalize=self.normalize)


class SupConLoss(nn.Module):
    """Supervised contrastive loss; see :func:`contrastkit.functional.supcon`.

    Example:
        >>> loss_fn = SupConLoss(temperature=0.1)
        >>> loss = loss_fn(torch.randn(8, 2, 32), torch.randint(0, 3, (8,)))
    """

    def __init__(self, temperature: float = 0.1, base_temperature: float | None = None, normalize: bool = True) -> None:
        super().__init__()
        self.temperature = _positive("temperature", temperature)
        self.base_temperature = None if base_temperature is None else _positive("base_temperature", base_temperature)
        self.normalize = normalize

    def forward(self, features: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Loss of ``[B, V, D]`` features and optional ``[B]`` labels."""
        return CF.supcon(features, labels, self.temperature, self.base_temperature, normalize=self.normalize)


class DCLLoss(nn.Module):
    """Decoupled contrastive loss, optionally weighted (DCLW); see :func:`contrastkit.functional.dcl`.

    Args:
        temperature: ``tau > 0`` (default 0.1).
        weighted: use the DCLW von Mises-Fisher weighting (default ``False``).
        sigma: DCLW's ``sigma`` (default 0.5); used only when ``weighted``.
        normalize: L2-normalise the embeddings (default ``True``).

    Example:
        >>> loss_fn = DCLLoss(temperature=0.1, weighted=True)
        >>> loss = loss_fn(torch.randn(8, 32), torch.randn(8, 32))
    """

    def __init__(
        self, temperature: float = 0.1, weighted: bool = False, sigma: float = 0.5, normalize: bool = True
    ) -> None:
        super().__init__()
        self.temperature = _positive("temperature", temperature)
        self.weighted = weighted
        self.sigma = _positive("sigma", sigma)
        self.normalize = normalize

    def forward(self, z_a: torch.Tensor, z_b: torch.Tensor) -> torch.Tensor:
        """Loss of two ``[N, D]`` view batches."""
        if self.weighted:
            return CF.dclw(z_a, z_b, self.temperature, self.sigma, normalize=self.normalize)
        return CF.dcl(z_a, z_b, self.temperature, normalize=self.normalize)


class BarlowTwinsLoss(nn.Module):
    """Barlow Twins; see :func:`contrastkit.functional.barlow_twins`.

    Example:
        >>> loss_fn = BarlowTwinsLoss(lambd=5e-3)
        >>> loss = loss_fn(torch.randn(16, 8), torch.randn(16, 8))
    """

    def __init__(self, lambd: float = 5e-3, eps: float = 1e-5) -> None:
        super().__init__()
        self.lambd = lambd
        self.eps = eps

    def forward(self, z_a: torch.Tensor, z_b: torch.Tensor) -> torch.Tensor:
        """Loss of two ``[N, D]`` view batches."""
        return CF.barlow_twins(z_a, z_b, self.lambd, eps=self.eps)


class VICRegLoss(nn.Module):
    """VICReg; see :func:`contrastkit.functional.vicreg`.

    Example:
        >>> loss_fn = VICRegLoss()
        >>> loss = loss_fn(torch.randn(16, 8), torch.randn(16, 8))
    """

    def __init__(
        self, sim_coeff: float = 25.0, std_coeff: float = 25.0, cov_coeff: float = 1.0, eps: float = 1e-4
    ) -> None:
        super().__init__()
        self.sim_coeff = sim_coeff
        self.std_coeff = std_coeff
        self.cov_coeff = cov_coeff
        self.eps = eps

    def forward(self, z_a: torch.Tensor, z_b: torch.Tensor) -> torch.Tensor:
        """Loss of two ``[N, D]`` view batches."""
        return CF.vicreg(z_a, z_b, self.sim_coeff, self.std_coeff, self.cov_coeff, self.eps)


class NegativeCosineLoss(nn.Module):
    """SimSiam/BYOL negative cosine with stop-gradient; see :func:`contrastkit.functional.negative_cosine`.

    Example:
        >>> loss_fn = NegativeCosineLoss()
        >>> loss = loss_fn(torch.randn(8, 32), torch.randn(8, 32))
    """

    def forward(self, p: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """Loss of predictions ``p`` and (detached) targets ``z``, both ``[B, D]``."""
        return CF.negative_cosine(p, z)


class ClipLoss(nn.Module):
    """CLIP's symmetric loss with a learnable logit scale; see :func:`contrastkit.functional.clip_loss`.

    The scale is stored as its log (``log_logit_scale``, init ``log(1/0.07)``) and
    clamped to ``max_logit_scale`` in the forward pass (Radford et al., 2021:
    "clipped to prevent scaling the logits by more than 100"); no gradient reaches
    it while clamped.

    Args:
        init_logit_scale: initial multiplier (default ``1 / 0.07``).
        learnable: learn the scale (default ``True``); otherwise a buffer.
        max_logit_scale: upper clamp (default 100).

    Example:
        >>> loss_fn = ClipLoss()
        >>> images, texts = torch.randn(8, 32), torch.randn(8, 32)
        >>> loss = loss_fn(images, texts)
    """

    def __init__(self, init_logit_scale: float = 1 / 0.07, learnable: bool = True, max_logit_scale: float = 100.0) -> None:
        super().__init__()
        init_logit_scale = _positive("init_logit_scale", init_logit_scale)
        self.max_logit_scale = _positive("max_logit_scale", max_logit_scale)
        if init_logit_scale > self.max_logit_scale:
            raise ValueError(f"init_logit_scale: expected at most max_logit_scale={max_logit_scale}, got {init_logit_scale}")
        _store_log(self, "log_logit_scale", init_logit_scale, learnable)

    @property
    def logit_scale(self) -> torch.Tensor:
        """The clamped multiplier used in the forward pass (a 0-d tensor)."""
        return self.log_logit_scale.exp().clamp(max=self.max_logit_scale)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Loss of two paired ``[B, D]`` batches."""
        return CF.clip_loss(a, b, self.logit_scale)


class SigLipLoss(nn.Module):
    """SigLIP's pairwise sigmoid loss with learnable scale and bias; see :func:`contrastkit.functional.siglip_loss`.

    The scale is stored as its log (init ``log 10``) and clamped to
    ``max_logit_scale``; the bias is stored as is (init ``-10``).

    Args:
        init_logit_scale: initial multiplier (default 10).
        init_logit_bias: initial bias (default -10).
        learnable: learn scale and bias (default ``True``); otherwise buffers.
        max_logit_scale: upper clamp (default 100).

    Example:
        >>> loss_fn = SigLipLoss()
        >>> images, texts = torch.randn(8, 32), torch.randn(8, 32)
        >>> loss = loss_fn(images, texts)
    """

    def __init__(
        self,
        init_logit_scale: float = 10.0,
        init_logit_bias: float = -10.0,
        learnable: bool = True,
        max_logit_scale: float = 100.0,
    ) -> None:
        super().__init__()
        init_logit_scale = _positive("init_logit_scale", init_logit_scale)
        self.max_logit_scale = _positive("max_logit_scale", max_logit_scale)
        if init_logit_scale > self.max_logit_scale:
            raise ValueError(f"init_logit_scale: expected at most max_logit_scale={max_logit_scale}, got {init_logit_scale}")
        if isinstance(init_logit_bias, bool) or not isinstance(init_logit_bias, (int, float)) or not math.isfinite(init_logit_bias):
            raise ValueError(f"init_logit_bias: expected a finite float, got {init_logit_bias!r}")
        _store_log(self, "log_logit_scale", init_logit_scale, learnable)
        bias = torch.tensor(float(init_logit_bias))
        if learnable:
            self.logit_bias = nn.Parameter(bias)
        else:
            self.register_buffer("logit_bias", bias)

    @property
    def logit_scale(self) -> torch.Tensor:
        """The clamped multiplier used in the forward pass (a 0-d tensor)."""
        return self.log_logit_scale.exp().clamp(max=self.max_logit_scale)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Loss of two paired ``[B, D]`` batches."""
        return CF.siglip_loss(a, b, self.logit_scale, self.logit_bias)
