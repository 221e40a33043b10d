"""The method contract: ``forward(batch) -> Output``, ``embed(x)``, ``on_step_end(step)``.

A method composes views, an encoder, heads, an objective and a source of
negatives. It never touches optimisers, devices, files or process groups: the
trainer owns those.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import torch
from torch import nn

from contrastkit.data.batch import Batch


@dataclass
class Output:
    """What a training step returns.

    Attributes:
        loss: a scalar tensor to back-propagate.
        logs: detached scalars worth logging (floats), e.g. ``{"loss": 1.2, "pos_sim": 0.8}``.
    """

    loss: torch.Tensor
    logs: dict[str, float] = field(default_factory=dict)


class Method(nn.Module):
    """Base class of every contrastive method.

    Subclasses set ``self.encoder`` (the backbone whose output is the downstream
    representation) and implement :meth:`forward`. ``embed`` returns the backbone
    features without augmentation, which is what evaluation uses.
    """

    encoder: nn.Module
    #: whether ``forward`` needs ``batch.labels`` (supervised methods).
    needs_labels: bool = False
    #: the modalities the method trains on, by name (``contrastkit.modalities``).
    modalities: ClassVar[frozenset[str]] = frozenset({"image"})
    #: whether it also trains on every modality whose views produce two tensor views
    #: (``Modality.two_tensor_views``): the generic two-view objectives (SimCLR, MoCo, BYOL,
    #: SimSiam, Barlow Twins, VICReg, SupCon) need nothing else of the data.
    two_tensor_views: ClassVar[bool] = False

    def forward(self, batch: Batch) -> Output:  # pragma: no cover - abstract
        raise NotImplementedError

    @torch.no_grad()
    def embed(self, inputs: torch.Tensor) -> torch.Tensor:
        """The representation used downstream: backbone features ``[B, D]``."""
        return self.encoder(inputs)

    def on_step_end(self, step: int, total_steps: int) -> None:
        """Hook after each optimiser step (momentum and queue updates). Default: nothing."""

    def prepare_to_load(self, state_dict: dict[str, torch.Tensor]) -> None:
        """Resize state whose size depends on training (e.g. SBCL's bank, one row per dataset row
        seen) to a checkpoint's, before the checkpoint's shapes are checked. Default: nothing."""

    def lr_scales(self) -> dict[str, float]:
        """``{parameter-name prefix: learning-rate multiplier}`` for parts that train at
        their own rate (e.g. AutoTCL's augmenter). Default: none."""
        return {}

    # Gradient caching (Gao et al., 2021) needs the step split in two: the embeddings of a
    # batch, computed row-block by row-block, and a loss that only sees those embeddings.
    # Methods that implement both support ``train.grad_cache_micro_batch``.

    def embeddings(self, batch: Batch) -> tuple[torch.Tensor, ...]:
        """The tensors the loss is computed from, each with one row per batch row (e.g. ``(z_a, z_b)``)."""
        raise NotImplementedError(f"{type(self).__name__} does not split its step for gradient caching")

    def loss_from_embeddings(self, embeddings: tuple[torch.Tensor, ...], batch: Batch) -> Output:
        """The loss of a whole batch from :meth:`embeddings` (concatenated over row blocks)."""
        raise NotImplementedError(f"{type(self).__name__} does not split its step for gradient caching")

    @property
    def supports_grad_cache(self) -> bool:
        """Whether :meth:`embeddings` and :meth:`loss_from_embeddings` are implemented."""
        cls = type(self)
        return cls.embeddings is not Method.embeddings and cls.loss_from_embeddings is not Method.loss_from_embeddings

    def check_batch(self, batch: Batch) -> None:
        """Raise a clear error when the batch cannot train this method."""
        if isinstance(batch.inputs, torch.Tensor) and batch.inputs.shape[0] < 2:
            raise ValueError(
                f"{type(self).__name__}: a batch needs at least 2 samples to have negatives, "
                f"got {batch.inputs.shape[0]}"
            )
        if self.needs_labels and batch.labels is None:
            raise ValueError(f"{type(self).__name__} is supervised: expected batch.labels, got None")


class TwoViewMethod(Method):
    """A method trained on two augmented views of each input (every image method here).

    Args:
        encoder: backbone with an ``output_dim`` attribute; its output is the representation.
        views: a pair ``(view_a, view_b)`` of augmentation modules.
    """

    def __init__(self, encoder: nn.Module, views: tuple[nn.Module, nn.Module]) -> None:
        super().__init__()
        if len(views) != 2:
            raise ValueError(f"{type(self).__name__}: expected a pair of view transforms, got {len(views)}")
        if not hasattr(encoder, "output_dim"):
            raise ValueError(f"{type(self).__name__}: the encoder needs an 'output_dim' attribute")
        self.encoder = encoder
        self.view_a, self.view_b = views

    def both_views(self, batch: Batch) -> torch.Tensor:
        """Check the batch and return ``cat([view_a(x), view_b(x)])``, ``[2B, ...]``.

        One encoder pass over both views halves the kernel launches; batch-norm then
        sees both views together, as in SimCLR's global-BN setting.
        """
        self.check_batch(batch)
        x = batch.inputs
        return torch.cat([self.view_a(x), self.view_b(x)])

    def each_view(self, batch: Batch, head: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
        """Check the batch and return ``(head(encoder(view_a(x))), head(encoder(view_b(x))))``.

        One pass per view, for objectives that standardise each branch over its own
        batch (Barlow Twins, VICReg): batch-norm statistics then stay per view.
        """
        self.check_batch(batch)
        x = batch.inputs
        return head(self.encoder(self.view_a(x))), head(self.encoder(self.view_b(x)))
