import math

import pytest
import torch
import torch.nn.functional as F

from contrastkit.eval import alignment_uniformity, uniformity


def test_against_pairwise_loop():
    generator = torch.Generator().manual_seed(0)
    a, b = torch.randn(30, 5, generator=generator), torch.randn(30, 5, generator=generator)
    an, bn = F.normalize(a, dim=1), F.normalize(b, dim=1)
    expected_alignment = sum(float((an[i] - bn[i]).norm() ** 2) for i in range(30)) / 30

    def loop_uniformity(x):
        values = [math.exp(-2 * float((x[i] - x[j]).norm() ** 2)) for i in range(30) for j in range(i + 1, 30)]
        return math.log(sum(values) / len(values))

    expected_uniformity = (loop_uniformity(an) + loop_uniformity(bn)) / 2
    result = alignment_uniformity(a, b)
    assert result["alignment"] == pytest.approx(expected_alignment, rel=1e-5)
    assert result["uniformity"] == pytest.approx(expected_uniformity, rel=1e-5)


def test_extremes_and_sampling():
    a = torch.randn(100, 8)
    assert alignment_uniformity(a, a * 3)["alignment"] == pytest.approx(0.0, abs=1e-10)
    collapsed = torch.ones(50, 8)
    assert uniformity(collapsed) == pytest.approx(0.0, abs=1e-6)
    spread = torch.randn(6000, 8, generator=torch.Generator().manual_seed(0))
    assert uniformity(spread, max_rows=500) < -2.0
    assert uniformity(spread, max_rows=500, seed=1) == uniformity(spread, max_rows=500, seed=1)
    with pytest.raises(ValueError, match="paired"):
        alignment_uniformity(a, a[:10])
