"""3D joint contrastive losses of JOTR on a voxel feature volume.

Li et al., "JOTR: 3D Joint Contrastive Learning with Transformers for Occluded Human Mesh
Recovery", ICCV 2023 (official code: ``xljh0520/JOTR``, ``common/nets/infonce.py``). A
``[B, C, D, H, W]`` feature volume is read at joint coordinates by trilinear ``grid_sample``
and shaped by two InfoNCE losses (cosine similarity, ``temperature = 0.1``; the defaults are
the official functions' signature defaults, the official training call uses larger counts and
τ 0.07, see the arguments):

* **joint-to-joint** (:func:`joint_to_joint_loss`): ``A = 50`` anchors are predicted-joint
  features; each has ``P = 100`` positives (ground-truth features of the same joint type in
  samples where that joint is visible) and its own ``N = 200`` negatives (predicted features
  of other joint types); one InfoNCE term per (anchor, positive) pair;
* **joint-to-non-joint** (:func:`joint_to_nonjoint_loss`): positives are other
  predicted-joint features, negatives are ``N = 200`` voxels not adjacent to any predicted
  joint (the 8 floor/ceil neighbours of every joint are excluded), shared by all anchors.

METHODS.md verdict: **PARTIAL** (the losses only). A paper-scale check would need the JOTR
transformer, SMPL and 3DPW-OC / OCHuman / CrowdPose training to measure MPJPE/PVE under occlusion.

Coordinates follow ``torch.nn.functional.grid_sample`` with ``align_corners=True`` (as the
official code): ``coords[..., 0]`` is x (indexes W), ``[..., 1]`` is y (H), ``[..., 2]`` is z
(D), and ``-1`` / ``+1`` are the centres of the first / last voxel. The official
non-joint mask maps coordinates with ``(c + 1) * 4`` and indexes the volume as
``[x, y, z]`` (D, H, W); here the same voxel convention as ``grid_sample`` is used for
both, so the excluded voxels really are the sampled joint's neighbours.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from contrastkit.utils.checks import Scalar, check_positive_scalar

__all__ = [
    "sample_volume_features",
    "non_joint_voxel_mask",
    "JointToJointSamples",
    "JointToNonJointSamples",
    "sample_joint_to_joint",
    "sample_joint_to_nonjoint",
    "joint_to_joint_loss",
    "joint_to_nonjoint_loss",
]


def _check_volume(volume: torch.Tensor) -> None:
    if not isinstance(volume, torch.Tensor) or volume.dim() != 5:
        shape = tuple(volume.shape) if isinstance(volume, torch.Tensor) else type(volume).__name__
        raise ValueError(f"volume: expected a [B, C, D, H, W] tensor, got {shape}")
    if not volume.is_floating_point():
        raise ValueError(f"volume: expected a floating-point tensor, got dtype {volume.dtype}")


def _check_coords(name: str, coords: torch.Tensor, batch: int | None = None, joints: int | None = None) -> None:
    if not isinstance(coords, torch.Tensor) or coords.dim() != 3 or coords.shape[2] != 3:
        shape = tuple(coords.shape) if isinstance(coords, torch.Tensor) else type(coords).__name__
        raise ValueError(f"{name}: expected a [B, J, 3] tensor of (x, y, z) in [-1, 1], got {shape}")
    if batch is not None and coords.shape[0] != batch:
        raise ValueError(f"{name}: expected batch size {batch}, got shape {tuple(coords.shape)}")
    if joints is not None and coords.shape[1] != joints:
        raise ValueError(f"{name}: expected {joints} joints, got shape {tuple(coords.shape)}")
    if not torch.isfinite(coords).all():
        raise ValueError(f"{name}: expected finite coordinates")


def _check_count(name: str, value: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name}: expected an int >= 1, got {value!r}")


def sample_volume_features(volume: torch.Tensor, coords: torch.Tensor) -> torch.Tensor:
    """Trilinear features of a voxel volume at continuous joint coordinates.

    ``out[b, j] = trilinear(volume[b], coords[b, j])`` through ``F.grid_sample`` with
    ``align_corners=True``: voxel ``(d, h, w)`` sits at
    ``(x, y, z) = (2w/(W-1) - 1, 2h/(H-1) - 1, 2d/(D-1) - 1)``; outside ``[-1, 1]`` the
    volume is zero-padded (grid_sample's default).

    Args:
        volume: ``[B, C, D, H, W]`` feature volume.
        coords: ``[B, J, 3]`` joint coordinates ``(x, y, z)`` in ``[-1, 1]``.

    Returns:
        ``[B, J, C]`` features (differentiable in ``volume`` and ``coords``).

    Raises:
        ValueError: on bad shapes or non-finite coordinates.

    Example:
        >>> volume = torch.randn(2, 16, 8, 8, 8)
        >>> sample_volume_features(volume, torch.zeros(2, 17, 3)).shape
        torch.Size([2, 17, 16])
    """
    _check_volume(volume)
    _check_coords("coords", coords, batch=volume.shape[0])
    grid = coords.to(volume.dtype).unsqueeze(1).unsqueeze(1)  # [B, 1, 1, J, 3]
    sampled = F.grid_sample(volume, grid, mode="bilinear", align_corners=True)  # [B, C, 1, 1, J]
    return sampled.flatten(2).transpose(1, 2)


def non_joint_voxel_mask(coords: torch.Tensor, spatial_shape: tuple[int, int, int]) -> torch.Tensor:
    """Voxels that are not one of the 8 floor/ceil neighbours of any joint.

    Each joint's continuous voxel position ``(c + 1) / 2 * (size - 1)`` is floored and
    ceiled per axis (clamped to the grid); the 8 combinations are marked "joint-adjacent".

    Args:
        coords: ``[B, J, 3]`` joint coordinates ``(x, y, z)`` in ``[-1, 1]``.
        spatial_shape: ``(D, H, W)`` of the volume.

    Returns:
        ``[B, D, H, W]`` bool mask, ``True`` for non-joint voxels.

    Example:
        >>> mask = non_joint_voxel_mask(torch.zeros(1, 1, 3), (8, 8, 8))
        >>> int((~mask).sum())
        8
    """
    _check_coords("coords", coords)
    if len(spatial_shape) != 3 or any(int(s) < 1 for s in spatial_shape):
        raise ValueError(f"spatial_shape: expected (D, H, W) of positive ints, got {spatial_shape!r}")
    depth, height, width = (int(s) for s in spatial_shape)
    batch, joints, _ = coords.shape
    # (x, y, z) -> continuous (w, h, d) voxel positions
    sizes = torch.tensor([width, height, depth], device=coords.device, dtype=coords.dtype)
    position = (coords + 1) / 2 * (sizes - 1)
    low = position.floor().long()
    high = position.ceil().long()
    upper = (sizes - 1).long()
    low = torch.minimum(low.clamp(min=0), upper)
    high = torch.minimum(high.clamp(min=0), upper)
    mask = torch.ones(batch, depth, height, width, dtype=torch.bool, device=coords.device)
    batch_index = torch.arange(batch, device=coords.device).repeat_interleave(joints)
    for corner in range(8):
        pick = [(high if (corner >> axis) & 1 else low)[..., axis].reshape(-1) for axis in range(3)]
        w, h, d = pick
        mask[batch_index, d, h, w] = False
    return mask


@dataclass(frozen=True)
class JointToJointSamples:
    """Indices drawn for :func:`joint_to_joint_loss`.

    Attributes:
        anchors: ``[A]`` flat indices ``b * J + j`` into the predicted joints.
        positives: ``[A, P]`` batch indices ``b'``; positive ``p`` of anchor ``a`` is the
            ground-truth feature of joint type ``anchors[a] % J`` in sample ``b'``.
        negatives: ``[A, N]`` flat indices into the predicted joints (other joint types).
        valid: ``[A]`` bool, ``False`` where the anchor's joint type is visible nowhere
            (its positives are then placeholders and its terms are dropped).
    """

    anchors: torch.Tensor
    positives: torch.Tensor
    negatives: torch.Tensor
    valid: torch.Tensor


@dataclass(frozen=True)
class JointToNonJointSamples:
    """Indices drawn for :func:`joint_to_nonjoint_loss`.

    Attributes:
        anchors: ``[A]`` flat indices ``b * J + j`` into the predicted joints.
        positives: ``[A, P]`` flat indices into the predicted joints, never the anchor itself.
        negatives: ``[N]`` flat indices ``((b * D + d) * H + h) * W + w`` of non-joint voxels.
    """

    anchors: torch.Tensor
    positives: torch.Tensor
    negatives: torch.Tensor


def _sample_rows(
    pool: torch.Tensor, count: int, generator: torch.Generator | None
) -> torch.Tensor:
    """Per row of a bool ``pool [R, M]``, ``count`` column indices drawn from the ``True`` entries.

    Without replacement where a row has at least ``count`` candidates, with replacement
    otherwise (as ``np.random.choice(..., replace=len(pool) < count)`` in the official code).
    Rows without any candidate get index 0 (callers mark them invalid).
    """
    device = generator.device if generator is not None else pool.device
    weights = pool.to(device=device, dtype=torch.float32)
    available = weights.sum(dim=1)
    weights[available == 0] = 1.0
    out = torch.empty(pool.shape[0], count, dtype=torch.long, device=device)
    enough = available >= count
    for rows, replacement in ((enough, False), (~enough, True)):
        if rows.any():
            out[rows] = torch.multinomial(weights[rows], count, replacement=replacement, generator=generator)
    out[available == 0] = 0
    return out.to(pool.device)


def _draw(size: int, count: int, generator: torch.Generator | None, device: torch.device) -> torch.Tensor:
    pool = torch.ones(1, size, dtype=torch.bool, device=device)
    return _sample_rows(pool, count, generator)[0]


def sample_joint_to_joint(
    joint_mask: torch.Tensor,
    *,
    num_anchors: int = 50,
    num_positives: int = 100,
    num_negatives: int = 200,
    generator: torch.Generator | None = None,
) -> JointToJointSamples:
    """Draw anchors, positives and negatives for the joint-to-joint loss.

    Args:
        joint_mask: ``[B, J]`` visibility (bool or 0/1) of the ground-truth joints.
        num_anchors: ``A`` (default 50).
        num_positives: ``P`` per anchor (default 100).
        num_negatives: ``N`` per anchor (default 200).
        generator: optional ``torch.Generator`` (else the global RNG).

    Returns:
        A :class:`JointToJointSamples`.
    """
    if not isinstance(joint_mask, torch.Tensor) or joint_mask.dim() != 2:
        shape = tuple(joint_mask.shape) if isinstance(joint_mask, torch.Tensor) else type(joint_mask).__name__
        raise ValueError(f"joint_mask: expected a [B, J] visibility tensor, got {shape}")
    for name, value in (("num_anchors", num_anchors), ("num_positives", num_positives),
                        ("num_negatives", num_negatives)):
        _check_count(name, value)
    batch, joints = joint_mask.shape
    if joints < 2:
        raise ValueError(f"joint_mask: expected at least 2 joint types (negatives are other types), got J={joints}")
    device = joint_mask.device
    visible = joint_mask.bool()
    anchors = _draw(batch * joints, num_anchors, generator, device)
    label = anchors % joints
    positive_pool = visible.T[label]  # [A, B]: samples where the anchor's joint type is visible
    positives = _sample_rows(positive_pool, num_positives, generator)
    all_labels = torch.arange(batch * joints, device=device) % joints
    negative_pool = all_labels.unsqueeze(0) != label.unsqueeze(1)  # [A, B*J]
    negatives = _sample_rows(negative_pool, num_negatives, generator)
    return JointToJointSamples(anchors, positives, negatives, positive_pool.any(dim=1))


def sample_joint_to_nonjoint(
    pred_coords: torch.Tensor,
    spatial_shape: tuple[int, int, int],
    *,
    num_anchors: int = 50,
    num_positives: int = 100,
    num_negatives: int = 200,
    generator: torch.Generator | None = None,
) -> JointToNonJointSamples:
    """Draw anchors, positives (other predicted joints) and non-joint voxel negatives.

    Args:
        pred_coords: ``[B, J, 3]`` predicted joint coordinates in ``[-1, 1]``.
        spatial_shape: ``(D, H, W)`` of the volume.
        num_anchors: ``A`` (default 50).
        num_positives: ``P`` per anchor (default 100).
        num_negatives: ``N`` shared negatives (default 200).
        generator: optional ``torch.Generator`` (else the global RNG).

    Returns:
        A :class:`JointToNonJointSamples`.

    Raises:
        ValueError: with a single predicted joint (no positive) or no non-joint voxel.
    """
    for name, value in (("num_anchors", num_anchors), ("num_positives", num_positives),
                        ("num_negatives", num_negatives)):
        _check_count(name, value)
    background = non_joint_voxel_mask(pred_coords, spatial_shape).reshape(1, -1)
    if not background.any():
        raise ValueError("joint_to_nonjoint: expected at least one voxel not adjacent to a joint, got none")
    batch, joints, _ = pred_coords.shape
    total = batch * joints
    if total < 2:
        raise ValueError(f"joint_to_nonjoint: expected at least 2 predicted joints in the batch, got {total}")
    device = pred_coords.device
    anchors = _draw(total, num_anchors, generator, device)
    positive_pool = torch.arange(total, device=device).unsqueeze(0) != anchors.unsqueeze(1)
    positives = _sample_rows(positive_pool, num_positives, generator)
    negatives = _sample_rows(background, num_negatives, generator)[0]
    return JointToNonJointSamples(anchors, positives, negatives)


def _one_positive_info_nce(
    anchor: torch.Tensor, positives: torch.Tensor, negatives: torch.Tensor, temperature: Scalar
) -> torch.Tensor:
    """``-log e^{s(a,p)/t} / (e^{s(a,p)/t} + sum_n e^{s(a,n)/t})`` for every (anchor, positive).

    ``anchor [A, C]``, ``positives [A, P, C]``, ``negatives [A, N, C]`` (paired) or
    ``[N, C]`` (shared); cosine similarities. Returns ``[A, P]``.
    """
    anchor = F.normalize(anchor, dim=-1)
    positive_logits = torch.einsum("ac,apc->ap", anchor, F.normalize(positives, dim=-1)) / temperature
    negatives = F.normalize(negatives, dim=-1)
    if negatives.dim() == 2:
        negative_logits = anchor @ negatives.T / temperature  # [A, N]
    else:
        negative_logits = torch.einsum("ac,anc->an", anchor, negatives) / temperature
    negative_lse = torch.logsumexp(negative_logits, dim=1, keepdim=True)  # [A, 1]
    return torch.logaddexp(positive_logits, negative_lse) - positive_logits


def joint_to_joint_loss(
    volume: torch.Tensor,
    gt_coords: torch.Tensor,
    pred_coords: torch.Tensor,
    joint_mask: torch.Tensor,
    *,
    num_anchors: int = 50,
    num_positives: int = 100,
    num_negatives: int = 200,
    temperature: Scalar = 0.1,
    samples: JointToJointSamples | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    r"""JOTR joint-to-joint (intra) InfoNCE.

    With ``f`` the L2-normalised trilinear features, anchor ``a`` (a predicted joint of type
    ``j_a``), its positives ``p`` (ground-truth type-``j_a`` features of visible samples)
    and its own negatives ``n`` (predicted features of other types):

    .. math::

        L = \operatorname{mean}_{a \in \text{valid},\, p}
            -\log \frac{e^{f_a \cdot f_p / \tau}}{e^{f_a \cdot f_p / \tau} + \sum_n e^{f_a \cdot f_n / \tau}}

    Args:
        volume: ``[B, C, D, H, W]`` voxel features.
        gt_coords: ``[B, J, 3]`` ground-truth joints ``(x, y, z)`` in ``[-1, 1]``.
        pred_coords: ``[B, J, 3]`` predicted joints.
        joint_mask: ``[B, J]`` ground-truth visibility.
        num_anchors, num_positives, num_negatives: ``A=50``, ``P=100``, ``N=200``: the official
            function's signature defaults; JOTR's ``model.py`` calls it with ``A=100``, ``P=128``,
            ``N=256`` (joint-to-joint), ``P=1024``, ``N=2048`` (joint-to-non-joint), τ 0.07.
        temperature: ``tau`` (default 0.1).
        samples: pre-drawn indices (:func:`sample_joint_to_joint`); drawn here if ``None``.
        generator: optional ``torch.Generator`` for the draw.

    Returns:
        The scalar loss (0 with a zero gradient if no anchor's joint type is visible).

    Example:
        >>> volume = torch.randn(2, 16, 8, 8, 8)
        >>> gt, pred = torch.rand(2, 17, 3) * 2 - 1, torch.rand(2, 17, 3) * 2 - 1
        >>> loss = joint_to_joint_loss(volume, gt, pred, torch.ones(2, 17))
    """
    check_positive_scalar("temperature", temperature)
    _check_volume(volume)
    batch = volume.shape[0]
    _check_coords("gt_coords", gt_coords, batch=batch)
    _check_coords("pred_coords", pred_coords, batch=batch, joints=gt_coords.shape[1])
    if not isinstance(joint_mask, torch.Tensor) or tuple(joint_mask.shape) != tuple(gt_coords.shape[:2]):
        shape = tuple(joint_mask.shape) if isinstance(joint_mask, torch.Tensor) else type(joint_mask).__name__
        raise ValueError(f"joint_mask: expected shape {tuple(gt_coords.shape[:2])}, got {shape}")
    if samples is None:
        samples = sample_joint_to_joint(
            joint_mask, num_anchors=num_anchors, num_positives=num_positives, num_negatives=num_negatives,
            generator=generator,
        )
    joints = gt_coords.shape[1]
    gt_features = sample_volume_features(volume, gt_coords)  # [B, J, C]
    pred_features = sample_volume_features(volume, pred_coords).flatten(0, 1)  # [B*J, C]
    label = samples.anchors % joints
    anchor = pred_features[samples.anchors]
    positives = gt_features[samples.positives, label.unsqueeze(1)]  # [A, P, C]
    negatives = pred_features[samples.negatives]  # [A, N, C]
    losses = _one_positive_info_nce(anchor, positives, negatives, temperature)
    if not samples.valid.any():
        return losses.sum() * 0.0
    return losses[samples.valid].mean()


def joint_to_nonjoint_loss(
    volume: torch.Tensor,
    pred_coords: torch.Tensor,
    *,
    num_anchors: int = 50,
    num_positives: int = 100,
    num_negatives: int = 200,
    temperature: Scalar = 0.1,
    samples: JointToNonJointSamples | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    r"""JOTR joint-to-non-joint (inter) InfoNCE.

    Anchors and positives are predicted-joint features (any type, positive != anchor);
    the ``N`` negatives are voxel features away from every predicted joint
    (:func:`non_joint_voxel_mask`), shared by all anchors and drawn from the whole batch:

    .. math::

        L = \operatorname{mean}_{a, p}
            -\log \frac{e^{f_a \cdot f_p / \tau}}{e^{f_a \cdot f_p / \tau} + \sum_n e^{f_a \cdot v_n / \tau}}

    Args:
        volume: ``[B, C, D, H, W]`` voxel features.
        pred_coords: ``[B, J, 3]`` predicted joints ``(x, y, z)`` in ``[-1, 1]``.
        num_anchors, num_positives, num_negatives: ``A=50``, ``P=100``, ``N=200``: the official
            function's signature defaults; JOTR's ``model.py`` calls it with ``A=100``, ``P=128``,
            ``N=256`` (joint-to-joint), ``P=1024``, ``N=2048`` (joint-to-non-joint), τ 0.07.
        temperature: ``tau`` (default 0.1).
        samples: pre-drawn indices (:func:`sample_joint_to_nonjoint`); drawn here if ``None``.
        generator: optional ``torch.Generator`` for the draw.

    Returns:
        The scalar loss.

    Example:
        >>> volume = torch.randn(2, 16, 8, 8, 8)
        >>> loss = joint_to_nonjoint_loss(volume, torch.rand(2, 17, 3) * 2 - 1)
    """
    check_positive_scalar("temperature", temperature)
    _check_volume(volume)
    _check_coords("pred_coords", pred_coords, batch=volume.shape[0])
    if samples is None:
        samples = sample_joint_to_nonjoint(
            pred_coords, tuple(volume.shape[2:]), num_anchors=num_anchors, num_positives=num_positives,
            num_negatives=num_negatives, generator=generator,
        )
    pred_features = sample_volume_features(volume, pred_coords).flatten(0, 1)  # [B*J, C]
    voxels = volume.permute(0, 2, 3, 4, 1).reshape(-1, volume.shape[1])  # [(b d h w), C]
    anchor = pred_features[samples.anchors]
    positives = pred_features[samples.positives]
    negatives = voxels[samples.negatives]
    return _one_positive_info_nce(anchor, positives, negatives, temperature).mean()
