"""JOTR joint contrastive losses: trilinear sampling, sampling rules, loop references, a tiny fit."""

import math

import pytest
import torch

from contrastkit.functional.joint_contrast import (
    joint_to_joint_loss,
    joint_to_nonjoint_loss,
    non_joint_voxel_mask,
    sample_joint_to_joint,
    sample_joint_to_nonjoint,
    sample_volume_features,
)


def _voxel_coord(index: int, size: int) -> float:
    return 2.0 * index / (size - 1) - 1.0


def _trilinear(volume, b, x, y, z):
    """Trilinear interpolation by hand (align_corners=True convention)."""
    _, _, depth, height, width = volume.shape
    pw, ph, pd = (x + 1) / 2 * (width - 1), (y + 1) / 2 * (height - 1), (z + 1) / 2 * (depth - 1)
    out = torch.zeros(volume.shape[1], dtype=volume.dtype)
    for d in (math.floor(pd), math.floor(pd) + 1):
        for h in (math.floor(ph), math.floor(ph) + 1):
            for w in (math.floor(pw), math.floor(pw) + 1):
                weight = max(0.0, 1 - abs(pd - d)) * max(0.0, 1 - abs(ph - h)) * max(0.0, 1 - abs(pw - w))
                if weight > 0 and 0 <= d < depth and 0 <= h < height and 0 <= w < width:
                    out += weight * volume[b, :, d, h, w]
    return out


def test_voxel_centres_return_that_voxel():
    volume = torch.randn(2, 4, 5, 6, 7, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    picks = [(0, 1, 2, 3), (1, 4, 5, 6), (0, 0, 0, 0), (1, 2, 3, 1)]
    coords = torch.zeros(2, 2, 3, dtype=torch.float64)
    for slot, (b, d, h, w) in enumerate(picks):
        coords[b, slot // 2] = torch.tensor([_voxel_coord(w, 7), _voxel_coord(h, 6), _voxel_coord(d, 5)])
    features = sample_volume_features(volume, coords)
    for slot, (b, d, h, w) in enumerate(picks):
        # grid_sample rounds the unnormalised coordinate, so a centre can land ~1e-7 off the voxel.
        torch.testing.assert_close(features[b, slot // 2], volume[b, :, d, h, w], atol=1e-6, rtol=1e-6)


def test_off_grid_points_match_hand_trilinear():
    generator = torch.Generator().manual_seed(0)
    volume = torch.randn(2, 3, 4, 5, 6, generator=generator, dtype=torch.float64)
    coords = torch.rand(2, 5, 3, generator=generator, dtype=torch.float64) * 2 - 1
    features = sample_volume_features(volume, coords)
    for b in range(2):
        for j in range(5):
            x, y, z = coords[b, j].tolist()
            torch.testing.assert_close(features[b, j], _trilinear(volume, b, x, y, z))


def test_non_joint_mask_excludes_exactly_the_eight_neighbours():
    size = 8
    # voxel position (w, h, d) = (2.5, 3.0, 6.2): floor/ceil -> w in {2,3}, h in {3}, d in {6,7}
    coords = torch.tensor([[[_voxel_coord(0, size) + 2.5 * 2 / 7, _voxel_coord(3, size), -1 + 6.2 * 2 / 7]]])
    mask = non_joint_voxel_mask(coords, (size, size, size))
    excluded = {tuple(idx) for idx in (~mask[0]).nonzero().tolist()}
    assert excluded == {(d, 3, w) for d in (6, 7) for w in (2, 3)}


def test_joint_to_joint_sampling_rules():
    batch, joints = 6, 5
    joint_mask = torch.ones(batch, joints)
    joint_mask[:, 1] = 0  # type 1 visible nowhere
    joint_mask[:3, 2] = 0  # type 2 visible only in samples 3..5
    samples = sample_joint_to_joint(
        joint_mask, num_anchors=40, num_positives=7, num_negatives=9, generator=torch.Generator().manual_seed(0)
    )
    label = samples.anchors % joints
    assert torch.equal(samples.valid, label != 1)
    valid = samples.valid
    # positives: visible ground truth of the anchor's type
    assert bool(joint_mask[samples.positives[valid], label[valid].unsqueeze(1)].all())
    # negatives: other joint types only
    assert bool((samples.negatives % joints != label.unsqueeze(1)).all())
    # type 2 has 3 visible samples < 7 positives: drawn with replacement from those 3
    rows = label == 2
    if rows.any():
        assert bool((samples.positives[rows] >= 3).all())
    # enough candidates -> no repeats (without replacement)
    for row in samples.negatives:
        assert len(set(row.tolist())) == row.numel()


def _naive_infonce(anchor, positive, negatives, tau):
    cos = lambda a, b: float((a @ b) / (a.norm() * b.norm()))
    logits = [cos(anchor, positive) / tau] + [cos(anchor, n) / tau for n in negatives]
    return -(logits[0] - math.log(sum(math.exp(v) for v in logits)))


def test_joint_to_joint_matches_loop_reference():
    generator = torch.Generator().manual_seed(1)
    batch, joints, channels = 3, 4, 5
    volume = torch.randn(batch, channels, 4, 4, 4, generator=generator, dtype=torch.float64)
    gt = torch.rand(batch, joints, 3, generator=generator, dtype=torch.float64) * 2 - 1
    pred = torch.rand(batch, joints, 3, generator=generator, dtype=torch.float64) * 2 - 1
    joint_mask = torch.ones(batch, joints)
    joint_mask[:, 3] = 0
    samples = sample_joint_to_joint(joint_mask, num_anchors=6, num_positives=3, num_negatives=4, generator=generator)
    got = joint_to_joint_loss(volume, gt, pred, joint_mask, temperature=0.1, samples=samples)
    gt_f, pred_f = sample_volume_features(volume, gt), sample_volume_features(volume, pred)
    terms = []
    for a in range(6):
        if not samples.valid[a]:
            continue
        b, j = divmod(int(samples.anchors[a]), joints)
        negatives = [pred_f[divmod(int(n), joints)] for n in samples.negatives[a]]
        for p in samples.positives[a].tolist():
            terms.append(_naive_infonce(pred_f[b, j], gt_f[p, j], negatives, 0.1))
    assert terms, "the draw must contain a valid anchor"
    assert got.item() == pytest.approx(sum(terms) / len(terms), rel=1e-9)


def test_joint_to_nonjoint_matches_loop_reference_and_negatives_are_background():
    generator = torch.Generator().manual_seed(2)
    batch, joints, channels, size = 2, 3, 4, 5
    volume = torch.randn(batch, channels, size, size, size, generator=generator, dtype=torch.float64)
    pred = torch.rand(batch, joints, 3, generator=generator, dtype=torch.float64) * 2 - 1
    samples = sample_joint_to_nonjoint(
        pred, (size, size, size), num_anchors=5, num_positives=4, num_negatives=6, generator=generator
    )
    assert bool((samples.positives != samples.anchors.unsqueeze(1)).all())
    background = non_joint_voxel_mask(pred, (size, size, size)).reshape(-1)
    assert bool(background[samples.negatives].all())
    got = joint_to_nonjoint_loss(volume, pred, temperature=0.1, samples=samples)
    pred_f = sample_volume_features(volume, pred).reshape(-1, channels)
    voxels = []
    for flat in samples.negatives.tolist():
        b, rest = divmod(flat, size**3)
        d, rest = divmod(rest, size * size)
        h, w = divmod(rest, size)
        voxels.append(volume[b, :, d, h, w])
    terms = [
        _naive_infonce(pred_f[int(a)], pred_f[p], voxels, 0.1)
        for a, row in zip(samples.anchors, samples.positives)
        for p in row.tolist()
    ]
    assert got.item() == pytest.approx(sum(terms) / len(terms), rel=1e-9)


def test_no_visible_positive_gives_zero_with_gradient():
    volume = torch.randn(1, 4, 4, 4, 4, requires_grad=True)
    coords = torch.zeros(1, 3, 3)
    loss = joint_to_joint_loss(volume, coords, coords, torch.zeros(1, 3), num_anchors=2, num_positives=2,
                               num_negatives=2)
    assert loss.item() == 0.0
    loss.backward()
    assert volume.grad is not None


def test_both_losses_separate_joint_types_from_each_other_and_background():
    """Optimising a free feature volume with the two losses planted per-type clusters vs background."""
    torch.manual_seed(0)
    batch, joints, channels, size = 4, 4, 8, 8
    generator = torch.Generator().manual_seed(3)
    # fixed joint positions on voxel centres, type j at a type-specific place with small jitter per sample
    centres = torch.tensor([[1, 1, 1], [6, 1, 5], [1, 6, 3], [5, 5, 6]])
    offsets = torch.randint(0, 2, (batch, joints, 3), generator=generator)
    voxels = centres.unsqueeze(0) + offsets  # (w, h, d)
    coords = (voxels.double() / (size - 1) * 2 - 1).float()
    volume = torch.nn.Parameter(torch.randn(batch, channels, size, size, size, generator=generator) * 0.1)
    optimizer = torch.optim.Adam([volume], lr=0.05)
    visible = torch.ones(batch, joints)

    def separation():
        with torch.no_grad():
            f = torch.nn.functional.normalize(sample_volume_features(volume, coords), dim=-1)  # [B, J, C]
            same = torch.einsum("bjc,ejc->je", f, f).mean()
            diff = torch.einsum("bjc,bkc->bjk", f, f)
            off = diff[:, ~torch.eye(joints, dtype=torch.bool)].mean()
            return float(same - off)

    before = separation()
    for _ in range(60):
        loss = joint_to_joint_loss(volume, coords, coords, visible, num_anchors=16, num_positives=8,
                                   num_negatives=16) + joint_to_nonjoint_loss(volume, coords, num_anchors=16,
                                                                              num_positives=8, num_negatives=32)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    after = separation()
    assert after > before + 0.3
    # joints vs background: a linear probe (mean direction) separates joint voxels from non-joint voxels
    with torch.no_grad():
        f = torch.nn.functional.normalize(sample_volume_features(volume, coords).reshape(-1, channels), dim=-1)
        background = non_joint_voxel_mask(coords, (size,) * 3)
        bg = torch.nn.functional.normalize(volume.permute(0, 2, 3, 4, 1)[background], dim=-1)
        direction = f.mean(0)
        assert float((f @ direction).min()) > float((bg @ direction).quantile(0.9))


def test_bad_shapes_raise():
    with pytest.raises(ValueError, match=r"\[B, C, D, H, W\]"):
        sample_volume_features(torch.randn(2, 3, 4, 4), torch.zeros(2, 1, 3))
    with pytest.raises(ValueError, match=r"\[B, J, 3\]"):
        sample_volume_features(torch.randn(2, 3, 4, 4, 4), torch.zeros(2, 1, 2))
    with pytest.raises(ValueError, match="joint_mask"):
        joint_to_joint_loss(torch.randn(2, 3, 4, 4, 4), torch.zeros(2, 3, 3), torch.zeros(2, 3, 3), torch.ones(2, 2))
