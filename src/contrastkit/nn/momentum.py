"""Momentum (exponential moving average) copy of a network.

MoCo (He et al. 2020) encodes keys with a slowly moving copy of the query
encoder so the keys in its queue stay consistent; BYOL (Grill et al. 2020)
uses the same copy as the target network, with the momentum raised from
``tau_base`` to 1 along a cosine schedule.
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn


class MomentumEncoder(nn.Module):
    """A frozen deep copy of ``module`` updated as an exponential moving average.

    The copy is a sub-module, so its weights are part of the owner's
    ``state_dict`` and a resumed run continues with the same target network.
    Its parameters have ``requires_grad=False``: optimisers skip them (their
    ``.grad`` stays ``None``) and ``forward`` runs under ``torch.no_grad``.

    The momentum follows BYOL's cosine schedule (Grill et al. 2020, Sec. 3.2),
    generalised to end at ``final_momentum``::

        tau(k) = final - (final - base) * (cos(pi * k / K) + 1) / 2

    so ``tau(0) = base`` and ``tau(K) = final``. With ``final == base`` it is
    MoCo's constant momentum (MoCo uses 0.999).

    Args:
        module: the online network to copy (not modified).
        base_momentum: momentum at step 0 (BYOL: 0.996 at batch 4096; 0.99 suits
            short runs with small batches).
        final_momentum: momentum at the last step (BYOL: 1.0).

    Example:
        >>> online = nn.Linear(4, 2)
        >>> target = MomentumEncoder(online, base_momentum=0.99)
        >>> target.update(online, step=0, total_steps=100)  # returns the momentum used
        0.99
        >>> target(torch.randn(3, 4)).requires_grad
        False
    """

    def __init__(self, module: nn.Module, base_momentum: float = 0.99, final_momentum: float = 1.0) -> None:
        super().__init__()
        for label, value in (("base_momentum", base_momentum), ("final_momentum", final_momentum)):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"MomentumEncoder: expected {label} in [0, 1], got {value}")
        self.base_momentum = float(base_momentum)
        self.final_momentum = float(final_momentum)
        self.module = copy.deepcopy(module)
        self.module.requires_grad_(False)
        # The momentum used by the last update, for logging.
        self.last_momentum = self.base_momentum

    def momentum_at(self, step: int, total_steps: int) -> float:
        """Momentum ``tau`` at ``step`` of ``total_steps`` (cosine from base to final).

        Args:
            step: the current optimisation step ``k`` (0-based); values past
                ``total_steps`` are clamped so a longer run keeps the final value.
            total_steps: the number of steps ``K`` of the run (``>= 1``).

        Returns:
            The momentum as a Python float.
        """
        if total_steps < 1:
            raise ValueError(f"momentum_at: expected total_steps >= 1, got {total_steps}")
        if step < 0:
            raise ValueError(f"momentum_at: expected step >= 0, got {step}")
        progress = min(step, total_steps) / total_steps
        weight = (math.cos(math.pi * progress) + 1.0) / 2.0
        return self.final_momentum - (self.final_momentum - self.base_momentum) * weight

    @torch.no_grad()
    def update(self, online_module: nn.Module, step: int, total_steps: int) -> float:
        """Move the copy towards ``online_module``: ``target = tau * target + (1 - tau) * online``.

        Parameters are averaged in place (no re-allocation, so optimisers and
        hooks holding references stay valid). Buffers such as BatchNorm running
        statistics are copied from the online module, since they are estimates
        of the current data statistics rather than learned weights.

        Args:
            online_module: the network being trained; same structure as the copy.
            step: current step ``k``.
            total_steps: total steps ``K``.

        Returns:
            The momentum ``tau`` used.
        """
        tau = self.momentum_at(step, total_steps)
        target_params = list(self.module.parameters())
        online_params = list(online_module.parameters())
        target_buffers = list(self.module.buffers())
        online_buffers = list(online_module.buffers())
        if len(target_params) != len(online_params) or len(target_buffers) != len(online_buffers):
            raise ValueError(
                "MomentumEncoder.update: online module does not match the copy: "
                f"expected {len(target_params)} parameters and {len(target_buffers)} buffers, "
                f"got {len(online_params)} and {len(online_buffers)}"
            )
        for target, online in zip(target_params, online_params):
            if target.shape != online.shape:
                raise ValueError(
                    f"MomentumEncoder.update: parameter shape mismatch, expected {tuple(target.shape)}, "
                    f"got {tuple(online.shape)}"
                )
            # Written as two products and a sum (not add_ with alpha / lerp) so
            # the result is bit-identical to tau * old + (1 - tau) * new.
            target.mul_(tau).add_(online.detach() * (1.0 - tau))
        for target, online in zip(target_buffers, online_buffers):
            target.copy_(online)
        self.last_momentum = tau
        return tau

    def forward(self, *args: object, **kwargs: object) -> torch.Tensor:
        """Run the copy without building a graph; arguments go to the wrapped module."""
        with torch.no_grad():
            return self.module(*args, **kwargs)
