r"""Sparse concept bottleneck models (Sparse-CBM) and Concept Matrix Search.

Semenov et al., "Sparse Concept Bottleneck Models: Gumbel Tricks in Contrastive Learning"
(arXiv 2024; official code ``Andron00e/SparseCBM``, ``bottlenecks/``). On top of a frozen
CLIP-like model, ``s`` are the image-vs-concept-text logits ``[B, K]`` for ``K`` concepts:

* :class:`ConceptBottleneck`: a concept bottleneck layer ``a = W_cbl s`` (``K x K``, no bias)
  and a head ``y = W_head a`` (``C x K``, no bias);
* losses on the bottleneck output ``a`` added to the cross-entropy of ``y``:
  :func:`cbl_l1_penalty` (``lambda = 1e-3``, divided by ``K`` as in the official trainer),
  :func:`cbl_contrastive_loss` (CLIP-style symmetric loss on the ``[B, K]`` matrix) or
  :func:`gumbel_contrastive_loss` (``-mean log GumbelSoftmax(a; tau)`` along both axes,
  ``tau = 1``); :func:`sparse_cbm_loss` combines them;
* :func:`concept_matrix_search` (CMS, training-free): predict
  ``argmax_y <v(x), u(y)>`` with ``v(x)`` the image's and ``u(y)`` the class text's concept
  similarities ([recalled]; METHODS.md asks to verify).

METHODS.md verdict: **PARTIAL** (layers and losses only). A paper-scale check would need CLIP /
SigLIP / ALIGN weights and CIFAR-10/100, CUB-200, ImageNet or Places365 with concept lists.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "ConceptBottleneck",
    "cbl_l1_penalty",
    "cbl_contrastive_loss",
    "gumbel_softmax",
    "gumbel_contrastive_loss",
    "sparse_cbm_loss",
    "concept_matrix_search",
]

METHODS = ("gumbel", "contrastive", "l1", "none")


def _check_logits(name: str, logits: torch.Tensor) -> None:
    if not isinstance(logits, torch.Tensor) or logits.dim() != 2:
        shape = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
        raise ValueError(f"{name}: expected a [B, K] tensor, got {shape}")
    if not logits.is_floating_point():
        raise ValueError(f"{name}: expected a floating-point tensor, got dtype {logits.dtype}")


def _check_temperature(tau: float) -> None:
    if not isinstance(tau, (int, float)) or isinstance(tau, bool) or not 0 < tau < float("inf"):
        raise ValueError(f"tau: expected a finite float > 0, got {tau!r}")


class ConceptBottleneck(nn.Module):
    """Concept bottleneck layer + linear head, both without bias.

    ``forward(s) -> (a, y)`` with ``a = s W_cbl^T`` (``[B, K]``) and ``y = a W_head^T`` (``[B, C]``).

    Args:
        num_concepts: ``K``, the number of concepts (input and bottleneck width).
        num_classes: ``C``.

    Example:
        >>> model = ConceptBottleneck(num_concepts=20, num_classes=5)
        >>> concepts, logits = model(torch.randn(8, 20))
        >>> logits.shape
        torch.Size([8, 5])
    """

    def __init__(self, num_concepts: int, num_classes: int) -> None:
        super().__init__()
        for name, value in (("num_concepts", num_concepts), ("num_classes", num_classes)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"ConceptBottleneck: expected {name} >= 1, got {value!r}")
        self.num_concepts = num_concepts
        self.num_classes = num_classes
        self.cbl = nn.Linear(num_concepts, num_concepts, bias=False)
        self.head = nn.Linear(num_concepts, num_classes, bias=False)

    def forward(self, concept_logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        _check_logits("concept_logits", concept_logits)
        if concept_logits.shape[1] != self.num_concepts:
            raise ValueError(
                f"concept_logits: expected {self.num_concepts} concepts, got shape {tuple(concept_logits.shape)}"
            )
        concepts = self.cbl(concept_logits)
        return concepts, self.head(concepts)


def cbl_l1_penalty(weight: torch.Tensor | ConceptBottleneck, l1_lambda: float = 1e-3) -> torch.Tensor:
    """``lambda * ||W_cbl||_1 / K`` (the official trainer scales by the number of concepts).

    Args:
        weight: ``W_cbl`` ``[K, K]`` or a :class:`ConceptBottleneck`.
        l1_lambda: ``lambda >= 0`` (default 1e-3).

    Returns:
        The scalar penalty.
    """
    if isinstance(weight, ConceptBottleneck):
        weight = weight.cbl.weight
    if not isinstance(weight, torch.Tensor) or weight.dim() != 2:
        raise ValueError("weight: expected W_cbl [K, K] or a ConceptBottleneck")
    if not isinstance(l1_lambda, (int, float)) or isinstance(l1_lambda, bool) or not l1_lambda >= 0:
        raise ValueError(f"l1_lambda: expected a float >= 0, got {l1_lambda!r}")
    return weight.abs().sum() * l1_lambda / weight.shape[0]


def cbl_contrastive_loss(concept_activations: torch.Tensor) -> torch.Tensor:
    r"""CLIP-style symmetric loss on the ``[B, K]`` bottleneck output (official ``criterion_contrastive``).

    .. math::  L = -\tfrac12 \big(\operatorname{mean}_i \log\operatorname{softmax}_0(a)_{ii}
                 + \operatorname{mean}_i \log\operatorname{softmax}_1(a)_{ii}\big)

    over the ``min(B, K)`` diagonal entries (as the official code's ``torch.diag``).

    Args:
        concept_activations: ``[B, K]`` bottleneck output ``a``.

    Returns:
        The scalar loss.
    """
    _check_logits("concept_activations", concept_activations)
    over_batch = torch.diagonal(F.log_softmax(concept_activations, dim=0)).mean()
    over_concepts = torch.diagonal(F.log_softmax(concept_activations, dim=1)).mean()
    return -(over_batch + over_concepts) / 2


def gumbel_softmax(
    logits: torch.Tensor,
    tau: float = 1.0,
    *,
    dim: int = -1,
    hard: bool = False,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Gumbel-softmax sample ``softmax((logits + g) / tau)``, ``g = -log(-log U)``; seedable.

    ``torch.nn.functional.gumbel_softmax`` takes no generator; this one does. ``hard=True``
    returns the straight-through one-hot (forward one-hot, backward the soft sample's gradient).
    """
    _check_temperature(tau)
    uniform = torch.rand(logits.shape, generator=generator, device=logits.device if generator is None
                         else generator.device, dtype=logits.dtype).to(logits.device)
    # keep U inside (0, 1) so both logs stay finite
    tiny = torch.finfo(logits.dtype).tiny
    gumbels = -torch.log(-torch.log(uniform.clamp(min=tiny, max=1 - torch.finfo(logits.dtype).eps)))
    soft = torch.softmax((logits + gumbels) / tau, dim=dim)
    if not hard:
        return soft
    index = soft.argmax(dim=dim, keepdim=True)
    one_hot = torch.zeros_like(soft).scatter_(dim, index, 1.0)
    return one_hot - soft.detach() + soft


def gumbel_contrastive_loss(
    concept_activations: torch.Tensor,
    tau: float = 1.0,
    *,
    hard: bool = False,
    eps: float = 1e-12,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    r"""Gumbel "contrastive" loss of Sparse-CBM (official ``criterion_gumbel``).

    .. math::  L = \tfrac12 \big(-\operatorname{mean}\log GS_0(a;\tau) - \operatorname{mean}\log GS_1(a;\tau)\big)

    with ``GS_d`` a Gumbel-softmax sample along axis ``d`` of the ``[B, K]`` bottleneck output
    (axis 0: over the batch per concept; axis 1: over concepts per image), fresh noise per axis.
    ``hard=True`` uses straight-through one-hot samples, whose zeros make the official loss
    infinite; here the sample is clamped at ``eps`` before the log (a documented deviation).

    Args:
        concept_activations: ``[B, K]`` bottleneck output ``a``.
        tau: Gumbel-softmax temperature (default 1.0, the paper's).
        hard: straight-through hard samples (default ``False``).
        eps: floor of the sample inside the log.
        generator: optional ``torch.Generator`` for the Gumbel noise.

    Returns:
        The scalar loss.
    """
    _check_logits("concept_activations", concept_activations)
    terms = []
    for dim in (0, 1):
        sample = gumbel_softmax(concept_activations, tau, dim=dim, hard=hard, generator=generator)
        terms.append(-torch.log(sample.clamp(min=eps)).mean())
    return (terms[0] + terms[1]) / 2


def sparse_cbm_loss(
    class_logits: torch.Tensor,
    labels: torch.Tensor,
    concept_activations: torch.Tensor,
    model: ConceptBottleneck | None = None,
    *,
    method: str = "gumbel",
    tau: float = 1.0,
    hard: bool = False,
    l1_lambda: float = 1e-3,
    generator: torch.Generator | None = None,
) -> dict[str, torch.Tensor]:
    """Cross-entropy of the head plus the chosen bottleneck loss.

    The official trainer back-propagates the bottleneck loss and the cross-entropy separately
    into two optimisers (CBL and head); their sum has the same gradients.

    Args:
        class_logits: ``[B, C]`` head output.
        labels: ``[B]`` class indices.
        concept_activations: ``[B, K]`` bottleneck output.
        model: the :class:`ConceptBottleneck` (needed for ``method="l1"``).
        method: ``"gumbel"`` (default), ``"contrastive"``, ``"l1"`` or ``"none"`` (plain CE).
        tau, hard, generator: for ``"gumbel"``.
        l1_lambda: for ``"l1"`` (default 1e-3).

    Returns:
        ``{"loss", "cross_entropy", "concept"}`` (the last two detached).
    """
    if method not in METHODS:
        raise ValueError(f"method: expected one of {', '.join(METHODS)}, got {method!r}")
    _check_logits("class_logits", class_logits)
    cross_entropy = F.cross_entropy(class_logits, labels)
    if method == "gumbel":
        concept = gumbel_contrastive_loss(concept_activations, tau, hard=hard, generator=generator)
    elif method == "contrastive":
        concept = cbl_contrastive_loss(concept_activations)
    elif method == "l1":
        if model is None:
            raise ValueError("sparse_cbm_loss: method='l1' needs the model (its W_cbl), got None")
        concept = cbl_l1_penalty(model, l1_lambda)
    else:
        concept = cross_entropy.new_zeros(())
    return {"loss": cross_entropy + concept, "cross_entropy": cross_entropy.detach(), "concept": concept.detach()}


def concept_matrix_search(
    image_concepts: torch.Tensor,
    class_concepts: torch.Tensor,
    *,
    normalize: bool = True,
) -> torch.Tensor:
    """Concept Matrix Search: ``argmax_y cos(v(x), u(y))`` over the class concept profiles.

    The cosine is the official score (Andron00e/SparseCBM ``cms_scores.ipynb``,
    ``similarity_score_accuracy``); its row-sum normalisation of both matrices changes no
    cosine while the rows sum to a positive number, as CLIP similarities do, so it is left out.

    Args:
        image_concepts: ``[B, K]`` image-vs-concept similarities ``v(x)``.
        class_concepts: ``[C, K]`` class-text-vs-concept similarities ``u(y)``.
        normalize: compare L2-normalised profiles (cosine, the default and the official
            score); ``False``: the plain dot product, which favours classes with large profiles.

    Returns:
        ``[B]`` predicted class indices.

    Example:
        >>> concept_matrix_search(torch.eye(3), torch.eye(3)[[2, 0, 1]]).tolist()
        [1, 2, 0]
    """
    _check_logits("image_concepts", image_concepts)
    _check_logits("class_concepts", class_concepts)
    if class_concepts.shape[1] != image_concepts.shape[1]:
        raise ValueError(
            f"class_concepts: expected {image_concepts.shape[1]} concepts (as image_concepts), "
            f"got shape {tuple(class_concepts.shape)}"
        )
    if normalize:
        image_concepts = F.normalize(image_concepts, dim=1)
        class_concepts = F.normalize(class_concepts, dim=1)
    return (image_concepts @ class_concepts.T.to(image_concepts)).argmax(dim=1)
