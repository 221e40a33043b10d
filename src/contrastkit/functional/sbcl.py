"""The bi-granularity loss of subclass-balancing contrastive learning (SBCL).

Hou, Yu, Tsang and Chen, ICCV 2023, "Subclass-balancing Contrastive Learning for
Long-tailed Recognition". Head classes are split into tail-sized subclasses
(:func:`contrastkit.negatives.subclasses.subclass_labels`); the loss pulls together
samples of the same subclass (a SupCon term on subclass labels) and, more weakly,
samples of the same class but another subclass (a class-level term whose denominator
leaves out the anchor's own subclass), so head classes stop dominating the
instance-level objective without giving up instance balance. METHODS.md #54, FULL;
the formula follows the official ``SupConLoss_rank`` (JackHck/SBCL ``loss.py``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from contrastkit.functional.core import contrastive_loss_from_logits
from contrastkit.utils.checks import Scalar, check_embeddings, check_positive_scalar

__all__ = ["sbcl_loss", "sbcl_class_temperatures"]


def _check_int_labels(name: str, labels: torch.Tensor, batch: int) -> None:
    if not isinstance(labels, torch.Tensor) or labels.shape != (batch,):
        got = tuple(labels.shape) if isinstance(labels, torch.Tensor) else type(labels).__name__
        raise ValueError(f"{name}: expected shape [{batch}] (one label per sample), got {got}")
    if labels.is_floating_point() or labels.is_complex():
        raise ValueError(f"{name}: expected an integer tensor, got dtype {labels.dtype}")


def sbcl_loss(
    features: torch.Tensor,
    labels: torch.Tensor,
    subclass_labels: torch.Tensor,
    *,
    temperature: Scalar = 0.1,
    class_temperature: Scalar | None = None,
    gamma: float = 0.25,
    base_temperature: float | None = 0.07,
    normalize: bool = True,
) -> torch.Tensor:
    r"""SBCL's loss: subclass-level SupCon plus ``gamma`` times a class-level term.

    The ``B * V`` views (view-major, as :func:`contrastkit.functional.contrastive.supcon`)
    are all anchors; ``s_ij = z_i . z_j``, ``S(i)`` the other views of ``i``'s subclass,
    ``O(i)`` the other views of sample ``i`` itself, ``C(i)`` the views of ``i``'s class
    outside ``S(i)``:

    .. math::

        \ell_i = -\frac{\tau}{\tau_b} \frac{1}{|S(i)|} \sum_{p \in S(i)}
            \log \frac{e^{s_{ip}/\tau}}{\sum_{k \ne i} e^{s_{ik}/\tau}}
          - \gamma \frac{1}{|P(i)|} \sum_{p \in P(i)}
            \log \frac{e^{s_{ip}/\tau_c}}{\sum_{k \in D(i)} e^{s_{ik}/\tau_c}}

    with ``P(i) = C(i) ∪ O(i)`` and ``D(i) = (all but S(i) and i) ∪ O(i)``: the class
    term contrasts the anchor's class against the other classes, leaving out the
    anchor's own subclass except its own other views (the official code adds those back
    so a one-subclass class still has a positive). ``tau_c`` is the temperature of the
    anchor's class. ``L`` is the mean of ``ell_i``. With one subclass per class and
    ``gamma = 0`` this is ``supcon(features, labels, temperature, base_temperature)``.

    Args:
        features: ``[B, V, D]`` embeddings, ``B >= 2``, ``V >= 2`` views (``V = 2`` in
            the paper); L2-normalised here unless ``normalize=False``.
        labels: ``[B]`` integer class labels.
        subclass_labels: ``[B]`` integer subclass ids, unique across classes (a subclass
            never spans two classes).
        temperature: ``tau > 0`` of the subclass term (paper 0.1).
        class_temperature: ``tau_c`` of the class term: ``None`` (default) uses ``tau``;
            a positive scalar; or a ``[C]`` tensor indexed by the (non-negative) class
            label, e.g. from :func:`sbcl_class_temperatures` (the official "ranking
            temperature").
        gamma: weight of the class term (paper 0.25).
        base_temperature: ``tau_b`` (official code 0.07); ``None`` means no scaling.
        normalize: L2-normalise each view (default ``True``).

    Returns:
        The scalar loss.

    Raises:
        ValueError: on bad shapes, float labels, a subclass spanning two classes,
            ``V < 2``, ``gamma < 0`` or non-positive temperatures.

    Example:
        >>> features = torch.randn(8, 2, 16)
        >>> labels = torch.tensor([0, 0, 0, 0, 1, 1, 2, 2])
        >>> subclasses = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
        >>> loss = sbcl_loss(features, labels, subclasses)
    """
    check_positive_scalar("temperature", temperature)
    if base_temperature is not None:
        check_positive_scalar("base_temperature", base_temperature)
    if isinstance(gamma, bool) or not isinstance(gamma, (int, float)) or not gamma >= 0:
        raise ValueError(f"gamma: expected a float >= 0, got {gamma!r}")
    if not isinstance(features, torch.Tensor) or features.dim() != 3:
        got = tuple(features.shape) if isinstance(features, torch.Tensor) else type(features).__name__
        raise ValueError(f"features: expected shape [B, V, D] (samples, views, features), got {got}")
    batch, views, dim = features.shape
    if batch < 2 or views < 2:
        raise ValueError(f"features: expected B >= 2 samples and V >= 2 views, got shape {tuple(features.shape)}")
    _check_int_labels("labels", labels, batch)
    _check_int_labels("subclass_labels", subclass_labels, batch)
    device = features.device
    labels, subclass_labels = labels.to(device), subclass_labels.to(device)
    same_sub = subclass_labels.unsqueeze(1) == subclass_labels.unsqueeze(0)
    if (same_sub & (labels.unsqueeze(1) != labels.unsqueeze(0))).any():
        raise ValueError(
            "subclass_labels: expected every subclass inside one class, got a subclass id shared by two classes"
        )

    flat = features.transpose(0, 1).reshape(views * batch, dim)
    check_embeddings("features (flattened to [B*V, D])", flat)
    z = F.normalize(flat, dim=1) if normalize else flat
    n = views * batch
    cls = labels.repeat(views)
    sub = subclass_labels.repeat(views)
    sample = torch.arange(batch, device=device).repeat(views)
    eye = torch.eye(n, dtype=torch.bool, device=device)
    similarity = z @ z.T

    # Subclass term: SupCon with subclass labels (positives: the anchor's subclass, self excluded).
    same_subclass = (sub.unsqueeze(1) == sub.unsqueeze(0)) & ~eye
    scale = 1.0 if base_temperature is None else float(temperature) / base_temperature
    sub_loss = contrastive_loss_from_logits(similarity / temperature, same_subclass, valid_mask=~eye)

    if gamma == 0:
        return scale * sub_loss
    # Class term: positives are the class outside the subclass plus the own other views; the
    # denominator leaves out the subclass (and self) but keeps the own other views.
    own_views = (sample.unsqueeze(1) == sample.unsqueeze(0)) & ~eye
    same_class = cls.unsqueeze(1) == cls.unsqueeze(0)
    positives = (same_class & ~same_subclass & ~eye) | own_views
    valid = (~same_subclass & ~eye) | own_views
    tau_c = _anchor_temperatures(class_temperature, temperature, cls)
    class_loss = contrastive_loss_from_logits(similarity / tau_c, positives, valid_mask=valid)
    return scale * sub_loss + gamma * class_loss


def _anchor_temperatures(class_temperature: Scalar | None, temperature: Scalar, cls: torch.Tensor) -> Scalar:
    """``tau_c`` per anchor row: ``[n, 1]`` for a per-class tensor, else a scalar."""
    if class_temperature is None:
        return temperature
    if isinstance(class_temperature, torch.Tensor) and class_temperature.numel() > 1:
        if class_temperature.dim() != 1 or not class_temperature.is_floating_point():
            raise ValueError(
                f"class_temperature: expected a float [C] tensor (one temperature per class), got "
                f"{class_temperature.dtype} of shape {tuple(class_temperature.shape)}"
            )
        if not torch.isfinite(class_temperature).all() or (class_temperature <= 0).any():
            raise ValueError("class_temperature: expected finite temperatures > 0, got non-positive or NaN/inf entries")
        if int(cls.min()) < 0 or int(cls.max()) >= class_temperature.numel():
            raise ValueError(
                f"class_temperature: expected a temperature for every label in [0, {class_temperature.numel()}), "
                f"got labels in [{int(cls.min())}, {int(cls.max())}]"
            )
        return class_temperature.to(cls.device)[cls].unsqueeze(1)
    check_positive_scalar("class_temperature", class_temperature)
    return class_temperature


@torch.no_grad()
def sbcl_class_temperatures(
    features: torch.Tensor,
    labels: torch.Tensor,
    num_classes: int,
    *,
    temperature: float = 0.1,
    single_subclass: torch.Tensor | None = None,
) -> torch.Tensor:
    r"""SBCL's per-class "ranking" temperatures from how spread out each class is.

    As in the official training script: the density of class ``c`` is
    ``d_c = mean_i ||z_i - mu_c||_2 / log(n_c + 10)`` over the class's normalised
    features ``z_i`` (``mu_c`` their mean), clipped to the 20th-80th percentile of the
    ``d`` of the classes present; ``tau_c = temperature * d_c / mean(d)``. Classes with a
    single subclass (``single_subclass[c]``) and absent classes get ``temperature``.

    Args:
        features: ``[N, D]`` features of a bank (normalised here).
        labels: ``[N]`` integer labels in ``[0, num_classes)``.
        num_classes: ``C``.
        temperature: the base temperature (default 0.1).
        single_subclass: optional ``[C]`` bool, classes that were not split.

    Returns:
        ``[C]`` float temperatures, all ``> 0``.

    Raises:
        ValueError: on bad shapes or labels out of range.
    """
    check_embeddings("features", features)
    _check_int_labels("labels", labels, features.shape[0])
    check_positive_scalar("temperature", temperature)
    if int(labels.min()) < 0 or int(labels.max()) >= num_classes:
        got = f"[{int(labels.min())}, {int(labels.max())}]"
        raise ValueError(f"labels: expected values in [0, {num_classes}), got {got}")
    z = F.normalize(features.float(), dim=1)
    labels = labels.to(z.device)
    counts = torch.bincount(labels, minlength=num_classes).to(z.dtype)
    present = counts > 0
    centers = torch.zeros(num_classes, z.shape[1], device=z.device).index_add_(0, labels, z)
    centers = centers / counts.clamp_min(1).unsqueeze(1)
    distance = (z - centers[labels]).norm(dim=1)
    spread = torch.zeros(num_classes, device=z.device).index_add_(0, labels, distance) / counts.clamp_min(1)
    density = spread / torch.log(counts + 10)
    low, high = torch.quantile(density[present], torch.tensor([0.2, 0.8], device=z.device))
    density = density.clamp(float(low), float(high))
    tau = temperature * density / density[present].mean().clamp_min(1e-12)
    keep = ~present
    if single_subclass is not None:
        keep = keep | single_subclass.to(z.device)
    tau = torch.where(keep | (tau <= 0), torch.full_like(tau, temperature), tau)
    return tau
