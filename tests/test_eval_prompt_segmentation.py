"""MMC prompt-patch segmentation protocol on planted-object token grids."""

import pytest
import torch

from contrastkit.eval.prompt_segmentation import (
    jaccard_index,
    mean_iou,
    prompt_segment,
    prompt_similarity,
    similarity_histogram_overlap,
)


def _planted(batch=3, h=8, w=8, dim=16, noise=0.1, seed=0):
    """Token grids with a rectangular object whose tokens share one direction, background another."""
    generator = torch.Generator().manual_seed(seed)
    object_dir, background_dir = torch.eye(dim)[:2]
    masks = torch.zeros(batch, h, w, dtype=torch.bool)
    prompts = []
    for b in range(batch):
        top, left = 1 + b, 2 + b % 2
        masks[b, top:top + 3, left:left + 4] = True
        prompts.append((top + 1) * w + left + 2)
    tokens = torch.where(masks.reshape(batch, -1, 1), object_dir, background_dir)
    tokens = tokens + noise * torch.randn(batch, h * w, dim, generator=generator)
    return tokens, masks, torch.tensor(prompts)


def test_planted_object_is_recovered_exactly():
    tokens, masks, prompts = _planted()
    predicted = prompt_segment(tokens, prompts, threshold=0.5, grid=(8, 8))
    assert predicted.shape == masks.shape
    torch.testing.assert_close(jaccard_index(predicted, masks), torch.ones(3))
    assert mean_iou(predicted, masks) == 1.0


def test_prompt_in_background_segments_background():
    tokens, masks, _ = _planted()
    predicted = prompt_segment(tokens, 0, threshold=0.5, grid=(8, 8))  # patch 0 is background in every grid
    torch.testing.assert_close(jaccard_index(predicted, ~masks), torch.ones(3))


def test_similarity_matches_loop():
    generator = torch.Generator().manual_seed(1)
    tokens = torch.randn(2, 5, 3, generator=generator, dtype=torch.float64)
    got = prompt_similarity(tokens, torch.tensor([4, 1]))
    for b, p in enumerate([4, 1]):
        for n in range(5):
            a, c = tokens[b, n], tokens[b, p]
            assert got[b, n].item() == pytest.approx(float(a @ c / (a.norm() * c.norm())))


def test_jaccard_and_miou_by_hand():
    prediction = torch.tensor([[1, 1, 0, 0], [0, 0, 0, 0]], dtype=torch.bool)
    target = torch.tensor([[1, 0, 1, 0], [0, 0, 0, 0]], dtype=torch.bool)
    torch.testing.assert_close(jaccard_index(prediction, target), torch.tensor([1 / 3, 1.0]))
    # foreground: I=1, U=3; background: I=1+4=5, U=3+4=7
    assert mean_iou(prediction, target) == pytest.approx((1 / 3 + 5 / 7) / 2)


def test_histogram_overlap_low_for_separated_high_for_random():
    tokens, masks, _ = _planted(noise=0.05)
    separated = similarity_histogram_overlap(tokens, masks.long())
    assert separated == 0.0
    generator = torch.Generator().manual_seed(2)
    random = similarity_histogram_overlap(torch.randn(3, 64, 16, generator=generator), masks.long())
    assert random > 0.7


def test_histogram_overlap_matches_loop():
    generator = torch.Generator().manual_seed(3)
    tokens = torch.randn(2, 6, 4, generator=generator)
    labels = torch.tensor([[0, 0, 1, 1, 2, 2], [0, 1, 1, 1, 0, 0]])
    intra, inter = [], []
    for b in range(2):
        for i in range(6):
            for j in range(6):
                if i == j:
                    continue
                s = float(tokens[b, i] @ tokens[b, j] / (tokens[b, i].norm() * tokens[b, j].norm()))
                (intra if labels[b, i] == labels[b, j] else inter).append(s)
    bins = 4
    edges = [-1 + 2 * k / bins for k in range(bins + 1)]

    def hist(values):
        counts = [0] * bins
        for v in values:
            counts[min(int((v + 1) / 2 * bins), bins - 1)] += 1
        return [c / len(values) for c in counts]

    expected = sum(min(a, b) for a, b in zip(hist(intra), hist(inter)))
    assert edges[0] == -1
    assert similarity_histogram_overlap(tokens, labels, bins=bins) == pytest.approx(expected, abs=1e-6)


def test_bad_inputs_raise():
    tokens = torch.randn(2, 4, 3)
    with pytest.raises(ValueError, match="prompt_index"):
        prompt_segment(tokens, 4)
    with pytest.raises(ValueError, match="grid"):
        prompt_segment(tokens, 0, grid=(3, 3))
    with pytest.raises(ValueError, match="target"):
        jaccard_index(torch.ones(2, 4, dtype=torch.bool), torch.ones(2, 5, dtype=torch.bool))
    with pytest.raises(ValueError, match="intra-object"):
        similarity_histogram_overlap(tokens, torch.arange(4).expand(2, 4))
