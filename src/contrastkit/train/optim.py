"""Optimisers (AdamW, SGD, LARS) and the warm-up + cosine learning-rate schedule."""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch import nn

from contrastkit.utils.checks import unknown_name_error


class LARS(torch.optim.Optimizer):
    """LARS (You et al., 2017) as used by SimCLR/BYOL/Barlow Twins: SGD with momentum whose
    per-tensor step is scaled by the trust ratio ``eta * ||w|| / ||g + wd * w||``.

    Parameter groups with ``lars_exclude=True`` (biases and norm layers, by convention)
    get neither weight decay nor the trust-ratio scaling.
    """

    def __init__(
        self,
        params: Iterable,
        lr: float,
        momentum: float = 0.9,
        weight_decay: float = 0.0,
        eta: float = 0.02,
    ) -> None:
        if lr <= 0:
            raise ValueError(f"LARS: expected lr > 0, got {lr}")
        defaults = {"lr": lr, "momentum": momentum, "weight_decay": weight_decay, "eta": eta, "lars_exclude": False}
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure=None):  # type: ignore[override]
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for param in group["params"]:
                if param.grad is None:
                    continue
                grad = param.grad
                if not group["lars_exclude"]:
                    grad = grad.add(param, alpha=group["weight_decay"])
                    param_norm, grad_norm = torch.norm(param), torch.norm(grad)
                    trust = torch.where(
                        (param_norm > 0) & (grad_norm > 0),
                        group["eta"] * param_norm / grad_norm,
                        torch.ones_like(param_norm),
                    )
                    grad = grad.mul(trust)
                state = self.state[param]
                if "momentum_buffer" not in state:
                    state["momentum_buffer"] = torch.clone(grad).detach()
                else:
                    state["momentum_buffer"].mul_(group["momentum"]).add_(grad)
                param.add_(state["momentum_buffer"], alpha=-group["lr"])
        return loss


def _split_decay(module: nn.Module, lr_scales: dict[str, float]) -> list[dict]:
    """Parameter groups: weights of linear/conv layers get weight decay, biases and norm
    parameters do not; parameters whose name starts with a key of ``lr_scales`` get
    their own groups with ``lr_scale`` set (one scale per parameter: the first key
    that matches)."""
    groups: dict[tuple[float, bool], list[nn.Parameter]] = {}
    for name, param in module.named_parameters():
        if not param.requires_grad:
            continue
        scale = next((value for prefix, value in lr_scales.items() if name.startswith(prefix)), 1.0)
        decays = not (param.ndim <= 1 or name.endswith(".bias"))
        groups.setdefault((scale, decays), []).append(param)
    return [
        {"params": params, "decay": decays, "lr_scale": scale}
        for (scale, decays), params in sorted(groups.items(), key=lambda item: (item[0][0] != 1.0, not item[0][1]))
    ]


OPTIMIZERS = ("adamw", "sgd", "lars")


def build_optimizer(
    name: str,
    module: nn.Module,
    *,
    lr: float,
    weight_decay: float = 0.0,
    momentum: float = 0.9,
    lr_scales: dict[str, float] | None = None,
) -> torch.optim.Optimizer:
    """Build an optimiser over ``module``'s trainable parameters.

    Args:
        name: one of ``adamw``, ``sgd``, ``lars``.
        module: the method whose parameters are optimised (momentum copies have ``requires_grad=False``).
        lr: peak learning rate.
        weight_decay: applied to weights only, never to biases or norm parameters.
        momentum: for ``sgd`` and ``lars``.
        lr_scales: optional ``{parameter-name prefix: multiplier}`` of ``lr`` (e.g.
            AutoTCL's augmenter trains 10x faster than its encoder); the schedule
            multiplies every group's own learning rate.
    """
    if lr <= 0:
        raise ValueError(f"optimizer: expected lr > 0, got {lr}")
    for prefix, value in (lr_scales or {}).items():
        if not value > 0:
            raise ValueError(f"optimizer: expected positive lr scales, got {value!r} for {prefix!r}")
    split = _split_decay(module, lr_scales or {})
    if not split:
        raise ValueError("optimizer: the method has no trainable parameters")
    groups = [
        {"params": group["params"], "weight_decay": weight_decay if group["decay"] else 0.0, "lr": lr * group["lr_scale"]}
        | ({} if group["decay"] else {"lars_exclude": True})
        for group in split
    ]
    if name == "adamw":
        for group in groups:
            group.pop("lars_exclude", None)
        return torch.optim.AdamW(groups, lr=lr)
    if name == "sgd":
        for group in groups:
            group.pop("lars_exclude", None)
        return torch.optim.SGD(groups, lr=lr, momentum=momentum)
    if name == "lars":
        return LARS(groups, lr=lr, momentum=momentum)
    raise unknown_name_error("optimizer", name, OPTIMIZERS)


def warmup_cosine(step: int, total_steps: int, warmup_steps: int, final_fraction: float = 0.0) -> float:
    """Learning-rate multiplier: linear warm-up to 1, then cosine decay to ``final_fraction``."""
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps
    span = max(1, total_steps - warmup_steps)
    progress = min(1.0, (step - warmup_steps) / span)
    return final_fraction + (1 - final_fraction) * 0.5 * (1 + math.cos(math.pi * progress))


def build_schedule(
    optimizer: torch.optim.Optimizer, total_steps: int, warmup_steps: int, final_fraction: float = 0.0
) -> torch.optim.lr_scheduler.LambdaLR:
    """A ``LambdaLR`` following :func:`warmup_cosine`, stepped once per optimiser step."""
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: warmup_cosine(step, total_steps, warmup_steps, final_fraction)
    )
