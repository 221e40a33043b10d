"""InfoNCE-family objectives against naive loop references (values and gradients), properties, bad inputs."""

from __future__ import annotations

import math

import pytest
import torch

from contrastkit.functional import (
    clip_loss,
    dcl,
    dclw,
    info_nce,
    nt_xent,
    siglip_loss,
    supcon,
)

DTYPE = torch.float64
ATOL = 1e-10


# ----------------------------------------------------------------------------- helpers


def randn(*shape, seed=0, grad=True):
    tensor = torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=DTYPE)
    return tensor.requires_grad_(grad)


def cos(u, v):
    return torch.dot(u, v) / (torch.sqrt(torch.dot(u, u)) * torch.sqrt(torch.dot(v, v)))


def assert_values_and_grads(out, expected, inputs):
    assert out.shape == expected.shape
    assert torch.allclose(out, expected, atol=ATOL, rtol=0), (out, expected)
    grads = torch.autograd.grad(out.sum(), inputs)
    expected_grads = torch.autograd.grad(expected.sum(), inputs)
    for index, (got, want) in enumerate(zip(grads, expected_grads, strict=True)):
        assert torch.allclose(got, want, atol=ATOL, rtol=0), (index, got, want)
        assert got.abs().sum() > 0, f"input {index} got no gradient"


# ----------------------------------------------------------------------------- references


def ref_info_nce(query, candidates, temperature, positive, weight=lambda i, j: 1.0, normalize=True):
    """Per-row -sum_j p_ij log(w_ij e^{s_ij} / sum_k w_ik e^{s_ik}); positive(i, j) -> float."""
    losses = []
    for i in range(query.shape[0]):
        sims = []
        for j in range(candidates.shape[0]):
            s = cos(query[i], candidates[j]) if normalize else torch.dot(query[i], candidates[j])
            sims.append(s / temperature)
        denominator = sum(weight(i, k) * torch.exp(sims[k]) for k in range(len(sims)))
        total = sum(positive(i, j) for j in range(len(sims)))
        loss = 0.0
        for j in range(len(sims)):
            if float(positive(i, j)) > 0:
                loss = loss - positive(i, j) / total * torch.log(weight(i, j) * torch.exp(sims[j]) / denominator)
        losses.append(loss)
    return torch.stack(losses)


def ref_nt_xent(z_a, z_b, temperature):
    z = [z_a[i] for i in range(z_a.shape[0])] + [z_b[i] for i in range(z_b.shape[0])]
    n = z_a.shape[0]
    total = 0.0
    for i in range(2 * n):
        partner = i + n if i < n else i - n
        denominator = sum(torch.exp(cos(z[i], z[k]) / temperature) for k in range(2 * n) if k != i)
        total = total - torch.log(torch.exp(cos(z[i], z[partner]) / temperature) / denominator)
    return total / (2 * n)


def ref_supcon(features, labels, temperature, base_temperature=None):
    batch, views, _ = features.shape
    anchors = [(b, v) for b in range(batch) for v in range(views)]
    label = (lambda b: b) if labels is None else (lambda b: int(labels[b]))
    total = 0.0
    for anchor in anchors:
        x = features[anchor[0], anchor[1]]
        others = [other for other in anchors if other != anchor]
        denominator = sum(torch.exp(cos(x, features[o[0], o[1]]) / temperature) for o in others)
        positives = [o for o in others if label(o[0]) == label(anchor[0])]
        term = 0.0
        for o in positives:
            term = term + torch.log(torch.exp(cos(x, features[o[0], o[1]]) / temperature) / denominator)
        loss = -term / len(positives)
        if base_temperature is not None:
            loss = loss * temperature / base_temperature
        total = total + loss
    return total / len(anchors)


def ref_dcl(z_a, z_b, temperature, sigma=None):
    def direction(x, y):
        n = x.shape[0]
        if sigma is None:
            weights = [1.0] * n
        else:
            kernel = [torch.exp(cos(x[k], y[k]) / sigma) for k in range(n)]
            weights = [2 - n * kernel[i] / sum(kernel) for i in range(n)]
        total = 0.0
        for i in range(n):
            positive = weights[i] * cos(x[i], y[i]) / temperature
            negatives = 0.0
            for k in range(n):
                if k != i:
                    negatives = negatives + torch.exp(cos(x[i], x[k]) / temperature)
                    negatives = negatives + torch.exp(cos(x[i], y[k]) / temperature)
            total = total - positive + torch.log(negatives)
        return total / n

    return (direction(z_a, z_b) + direction(z_b, z_a)) / 2


def ref_clip(a, b, scale):
    n = a.shape[0]
    logits = [[scale * cos(a[i], b[j]) for j in range(n)] for i in range(n)]
    image_to_text = sum(-torch.log(torch.exp(logits[i][i]) / sum(torch.exp(logits[i][j]) for j in range(n))) for i in range(n))
    text_to_image = sum(-torch.log(torch.exp(logits[j][j]) / sum(torch.exp(logits[i][j]) for i in range(n))) for j in range(n))
    return (image_to_text / n + text_to_image / n) / 2


def ref_siglip(a, b, scale, bias):
    n = a.shape[0]
    total = 0.0
    for i in range(n):
        for j in range(n):
            sign = 1.0 if i == j else -1.0
            logit = scale * cos(a[i], b[j]) + bias
            total = total + torch.log(1 / (1 + torch.exp(-sign * logit)))
    return -total / n


# ----------------------------------------------------------------------------- info_nce


def test_info_nce_paired():
    q, k = randn(6, 5, seed=1), randn(6, 5, seed=2)
    t = torch.tensor(0.2, dtype=DTYPE, requires_grad=True)
    out = info_nce(q, k, temperature=t, reduction="none")
    expected = ref_info_nce(q, k, t, lambda i, j: float(i == j))
    assert_values_and_grads(out, expected, (q, k, t))


def test_info_nce_dot_product_without_normalisation():
    q, k = randn(5, 4, seed=1), randn(5, 4, seed=2)
    out = info_nce(q, k, temperature=0.7, normalize=False)
    expected = ref_info_nce(q, k, 0.7, lambda i, j: float(i == j), normalize=False).mean()
    assert_values_and_grads(out, expected, (q, k))


def test_info_nce_with_extra_negatives():
    q, k, negatives = randn(5, 4, seed=1), randn(5, 4, seed=2), randn(3, 4, seed=3)
    out = info_nce(q, k, negatives=negatives, temperature=0.1)
    expected = ref_info_nce(q, torch.cat([k, negatives]), 0.1, lambda i, j: float(i == j)).mean()
    assert_values_and_grads(out, expected, (q, k, negatives))


def test_info_nce_with_labels():
    q, k, negatives = randn(7, 4, seed=1), randn(7, 4, seed=2), randn(2, 4, seed=3)
    labels = torch.tensor([0, 1, 0, 2, 1, 0, 3])
    out = info_nce(q, k, negatives=negatives, labels=labels, temperature=0.3, reduction="sum")
    positive = lambda i, j: float(j < 7 and int(labels[i]) == int(labels[j]))  # noqa: E731
    expected = ref_info_nce(q, torch.cat([k, negatives]), 0.3, positive).sum()
    assert_values_and_grads(out, expected, (q, k, negatives))


def test_info_nce_with_float_pos_mask_and_unpaired_keys():
    q, k = randn(5, 4, seed=1), randn(8, 4, seed=2)
    mask = torch.rand(5, 8, generator=torch.Generator().manual_seed(4), dtype=DTYPE)
    mask[mask < 0.5] = 0.0
    mask[:, 0] += 0.1
    out = info_nce(q, k, pos_mask=mask, temperature=0.25)
    expected = ref_info_nce(q, k, 0.25, lambda i, j: mask[i, j]).mean()
    assert_values_and_grads(out, expected, (q, k))


def test_info_nce_pos_mask_over_keys_only_pads_negatives():
    q, k, negatives = randn(5, 4, seed=1), randn(6, 4, seed=2), randn(3, 4, seed=3)
    mask = torch.zeros(5, 6, dtype=torch.bool)
    mask[torch.arange(5), torch.tensor([1, 3, 0, 5, 5])] = True
    mask[0, 2] = True
    out = info_nce(q, k, negatives=negatives, pos_mask=mask)
    expected = ref_info_nce(q, torch.cat([k, negatives]), 0.1, lambda i, j: float(j < 6 and bool(mask[i, j]))).mean()
    assert_values_and_grads(out, expected, (q, k, negatives))


def test_info_nce_with_column_weights():
    q, k, negatives = randn(5, 4, seed=1), randn(5, 4, seed=2), randn(2, 4, seed=3)
    weights = (torch.rand(5, 7, generator=torch.Generator().manual_seed(5), dtype=DTYPE) + 0.1).requires_grad_()
    out = info_nce(q, k, negatives=negatives, weights=weights, temperature=0.5)
    expected = ref_info_nce(q, torch.cat([k, negatives]), 0.5, lambda i, j: float(i == j), lambda i, j: weights[i, j]).mean()
    assert_values_and_grads(out, expected, (q, k, negatives, weights))


def test_info_nce_symmetric():
    q, k = randn(6, 5, seed=1), randn(6, 5, seed=2)
    weights = (torch.rand(6, 6, generator=torch.Generator().manual_seed(5), dtype=DTYPE) + 0.1).requires_grad_()
    out = info_nce(q, k, symmetric=True, weights=weights, temperature=0.2, reduction="none")
    forward = ref_info_nce(q, k, 0.2, lambda i, j: float(i == j), lambda i, j: weights[i, j])
    backward = ref_info_nce(k, q, 0.2, lambda i, j: float(i == j), lambda i, j: weights[j, i])
    assert_values_and_grads(out, (forward + backward) / 2, (q, k, weights))
    mean = info_nce(q, k, symmetric=True, weights=weights, temperature=0.2)
    assert torch.allclose(mean, out.mean(), atol=ATOL, rtol=0)


def test_info_nce_identical_views_low_temperature_goes_to_zero():
    basis, _ = torch.linalg.qr(torch.randn(8, 8, generator=torch.Generator().manual_seed(0), dtype=DTYPE))
    z = basis[:6]  # orthonormal rows: positive cos 1, negatives cos 0
    # The exact value is log(1 + 5 e^-100) ~ 2e-43. The naive path (log-softmax of the row max) gets it;
    # the fused path subtracts two logits of 100, so its absolute error is ~eps * 100.
    assert float(info_nce(z, z, temperature=0.01, chunk_size=None)) < 1e-30
    assert abs(float(info_nce(z, z, temperature=0.01))) < 1e-12
    assert float(info_nce(z, z, temperature=0.5)) > 0.1


def test_info_nce_high_temperature_approaches_log_columns():
    q, k, negatives = randn(5, 4, seed=1, grad=False), randn(5, 4, seed=2, grad=False), randn(3, 4, seed=3, grad=False)
    assert abs(float(info_nce(q, k, temperature=1e8)) - math.log(5)) < 1e-6
    assert abs(float(info_nce(q, k, negatives=negatives, temperature=1e8)) - math.log(8)) < 1e-6


# ----------------------------------------------------------------------------- nt_xent


def test_nt_xent_matches_reference():
    z_a, z_b = randn(6, 5, seed=1), randn(6, 5, seed=2)
    out = nt_xent(z_a, z_b, temperature=0.5)
    assert_values_and_grads(out, ref_nt_xent(z_a, z_b, 0.5), (z_a, z_b))


def test_nt_xent_equals_info_nce_construction():
    z_a, z_b = randn(5, 4, seed=1), randn(5, 4, seed=2)
    z = torch.cat([z_a, z_b])
    partner = torch.roll(torch.eye(10, dtype=torch.bool), 5, dims=1)
    not_self = 1 - torch.eye(10, dtype=DTYPE)
    via_info_nce = info_nce(z, z, pos_mask=partner, weights=not_self, temperature=0.3)
    assert_values_and_grads(nt_xent(z_a, z_b, temperature=0.3), via_info_nce, (z_a, z_b))


# ----------------------------------------------------------------------------- supcon


@pytest.mark.parametrize("views", [2, 3])
@pytest.mark.parametrize("with_labels", [False, True])
def test_supcon_matches_reference(views, with_labels):
    features = randn(5, views, 4, seed=views)
    labels = torch.tensor([0, 1, 0, 2, 1]) if with_labels else None
    out = supcon(features, labels, temperature=0.2)
    assert_values_and_grads(out, ref_supcon(features, labels, 0.2), (features,))


def test_supcon_single_view_with_labels_and_base_temperature():
    features = randn(6, 1, 4, seed=7)
    labels = torch.tensor([0, 1, 0, 1, 2, 2])
    out = supcon(features, labels, temperature=0.1, base_temperature=0.07)
    assert_values_and_grads(out, ref_supcon(features, labels, 0.1, 0.07), (features,))
    unscaled = supcon(features, labels, temperature=0.1)
    assert torch.allclose(out, unscaled * 0.1 / 0.07, atol=ATOL, rtol=0)


@pytest.mark.parametrize("views", [2, 3])
def test_supcon_unique_labels_equal_label_free(views):
    features = randn(6, views, 4, seed=11)
    unique = torch.tensor([5, 3, 9, 0, 1, 2])
    assert torch.allclose(supcon(features, unique), supcon(features, None), atol=ATOL, rtol=0)
    shared = torch.tensor([5, 5, 9, 0, 1, 2])
    assert not torch.allclose(supcon(features, shared), supcon(features, None))


def test_supcon_two_views_without_labels_equals_nt_xent():
    features = randn(6, 2, 4, seed=12)
    assert torch.allclose(
        supcon(features, temperature=0.3), nt_xent(features[:, 0], features[:, 1], temperature=0.3), atol=ATOL, rtol=0
    )


# ----------------------------------------------------------------------------- dcl


def test_dcl_matches_reference():
    z_a, z_b = randn(6, 5, seed=1), randn(6, 5, seed=2)
    assert_values_and_grads(dcl(z_a, z_b, temperature=0.1), ref_dcl(z_a, z_b, 0.1), (z_a, z_b))


def test_dclw_matches_reference():
    z_a, z_b = randn(6, 5, seed=3), randn(6, 5, seed=4)
    out = dclw(z_a, z_b, temperature=0.2, sigma=0.5)
    assert_values_and_grads(out, ref_dcl(z_a, z_b, 0.2, sigma=0.5), (z_a, z_b))


def test_dcl_is_below_nt_xent_and_dclw_tends_to_dcl():
    z_a, z_b = randn(6, 5, seed=5, grad=False), randn(6, 5, seed=6, grad=False)
    assert float(dcl(z_a, z_b, temperature=0.3)) < float(nt_xent(z_a, z_b, temperature=0.3))
    assert torch.allclose(dclw(z_a, z_b, sigma=1e9), dcl(z_a, z_b), atol=1e-7, rtol=0)
    assert not torch.allclose(dclw(z_a, z_b, sigma=0.5), dcl(z_a, z_b))


# ----------------------------------------------------------------------------- clip, siglip


def test_clip_loss_matches_reference():
    a, b = randn(6, 5, seed=1), randn(6, 5, seed=2)
    scale = torch.tensor(1 / 0.07, dtype=DTYPE, requires_grad=True)
    assert_values_and_grads(clip_loss(a, b, scale), ref_clip(a, b, scale), (a, b, scale))


def test_clip_loss_equals_symmetric_info_nce():
    a, b = randn(6, 5, seed=3), randn(6, 5, seed=4)
    assert torch.allclose(clip_loss(a, b, 20.0), info_nce(a, b, temperature=1 / 20.0, symmetric=True), atol=ATOL, rtol=0)


def test_siglip_loss_matches_reference():
    a, b = randn(6, 5, seed=1), randn(6, 5, seed=2)
    scale = torch.tensor(10.0, dtype=DTYPE, requires_grad=True)
    bias = torch.tensor(-10.0, dtype=DTYPE, requires_grad=True)
    assert_values_and_grads(siglip_loss(a, b, scale, bias), ref_siglip(a, b, scale, bias), (a, b, scale, bias))


# ----------------------------------------------------------------------------- bad inputs

PAIR_FUNCTIONS = {
    "info_nce": lambda a, b: info_nce(a, b),
    "nt_xent": lambda a, b: nt_xent(a, b),
    "dcl": lambda a, b: dcl(a, b),
    "dclw": lambda a, b: dclw(a, b),
    "clip_loss": lambda a, b: clip_loss(a, b, 10.0),
    "siglip_loss": lambda a, b: siglip_loss(a, b, 10.0, -10.0),
    "supcon": lambda a, b: supcon(torch.stack([a, b], dim=1)),
}


def _nan(shape):
    x = torch.randn(*shape)
    x[1, 0] = float("nan")
    return x


def _inf(shape):
    x = torch.randn(*shape)
    x[0, 1] = float("inf")
    return x


BAD_PAIRS = {
    "wrong rank": (lambda: torch.randn(4, 3, 2), lambda: torch.randn(4, 3, 2), r"shape|expected"),
    "mismatched B": (lambda: torch.randn(4, 3), lambda: torch.randn(5, 3), r"rows|shape|size"),
    "mismatched D": (lambda: torch.randn(4, 3), lambda: torch.randn(4, 2), r"feature size|shape|size"),
    "NaN": (lambda: _nan((4, 3)), lambda: torch.randn(4, 3), "finite"),
    "inf": (lambda: torch.randn(4, 3), lambda: _inf((4, 3)), "finite"),
    "batch of 1": (lambda: torch.randn(1, 3), lambda: torch.randn(1, 3), r"at least 2"),
    "integer dtype": (lambda: torch.ones(4, 3, dtype=torch.long), lambda: torch.ones(4, 3, dtype=torch.long), "floating"),
}


BAD_PAIR_CASES = [
    (function, case)
    for function in sorted(PAIR_FUNCTIONS)
    for case in sorted(BAD_PAIRS)
    # supcon takes one [B, V, D] tensor (torch.stack would fail first); its shapes are tested below
    if not (function == "supcon" and case in ("mismatched B", "mismatched D", "wrong rank"))
]


@pytest.mark.parametrize(("function", "case"), BAD_PAIR_CASES)
def test_bad_pairs_raise(function, case):
    make_a, make_b, message = BAD_PAIRS[case]
    with pytest.raises(ValueError, match=message):
        PAIR_FUNCTIONS[function](make_a(), make_b())


@pytest.mark.parametrize(
    "call",
    [
        lambda a, b: info_nce(a, b, temperature=0.0),
        lambda a, b: info_nce(a, b, temperature=-0.1),
        lambda a, b: info_nce(a, b, temperature=torch.tensor(0.0)),
        lambda a, b: nt_xent(a, b, temperature=0.0),
        lambda a, b: supcon(torch.stack([a, b], 1), temperature=0.0),
        lambda a, b: supcon(torch.stack([a, b], 1), base_temperature=0.0),
        lambda a, b: dcl(a, b, temperature=0.0),
        lambda a, b: dclw(a, b, sigma=0.0),
        lambda a, b: clip_loss(a, b, 0.0),
        lambda a, b: siglip_loss(a, b, -1.0, 0.0),
        lambda a, b: siglip_loss(a, b, 1.0, float("nan")),
    ],
)
def test_non_positive_temperature_or_scale_raises(call):
    with pytest.raises(ValueError, match=r"> 0|finite"):
        call(torch.randn(4, 3), torch.randn(4, 3))


def test_info_nce_specific_bad_inputs():
    q, k = torch.randn(4, 3), torch.randn(4, 3)
    with pytest.raises(ValueError, match="feature size"):
        info_nce(q, k, negatives=torch.randn(5, 2))
    with pytest.raises(ValueError, match="as many rows as query"):
        info_nce(q, torch.randn(6, 3))
    with pytest.raises(ValueError, match="at most one of labels and pos_mask"):
        info_nce(q, k, labels=torch.arange(4), pos_mask=torch.eye(4, dtype=torch.bool))
    with pytest.raises(ValueError, match="symmetric"):
        info_nce(q, k, negatives=torch.randn(5, 3), symmetric=True)
    with pytest.raises(ValueError, match="labels"):
        info_nce(q, k, labels=torch.arange(5))
    with pytest.raises(ValueError, match="labels"):
        info_nce(q, k, labels=torch.ones(4))
    with pytest.raises(ValueError, match="pos_mask"):
        info_nce(q, k, pos_mask=torch.eye(4, 5, dtype=torch.bool))
    with pytest.raises(ValueError, match="weights"):
        info_nce(q, k, weights=torch.ones(4, 5))
    with pytest.raises(ValueError, match="reduction"):
        info_nce(q, k, reduction="avg")
    # a batch of one with extra negatives is fine; without, there is no negative
    assert torch.isfinite(info_nce(q[:1], k[:1], negatives=torch.randn(3, 3)))
    with pytest.raises(ValueError, match="at least 2 candidate columns"):
        info_nce(q[:1], k[:1])


def test_row_without_positive_raises():
    q, k = torch.randn(4, 3), torch.randn(4, 3)
    mask = torch.eye(4, dtype=torch.bool)
    mask[2, 2] = False
    with pytest.raises(ValueError, match="at least one positive"):
        info_nce(q, k, pos_mask=mask)
    with pytest.raises(ValueError, match="positive"):
        supcon(torch.randn(4, 1, 3), torch.tensor([0, 0, 1, 2]))
    with pytest.raises(ValueError, match="positive"):
        supcon(torch.randn(4, 1, 3))


def test_supcon_bad_shapes():
    with pytest.raises(ValueError, match=r"\[B, V, D\]"):
        supcon(torch.randn(4, 3))
    with pytest.raises(ValueError, match="labels"):
        supcon(torch.randn(4, 2, 3), torch.arange(3))
    with pytest.raises(ValueError, match="finite"):
        supcon(torch.full((4, 2, 3), float("nan")))
    with pytest.raises(ValueError, match="at least 2"):
        supcon(torch.randn(1, 1, 3))


def test_dcl_weight_fn_shape_is_checked():
    with pytest.raises(ValueError, match="weight_fn"):
        dcl(torch.randn(4, 3), torch.randn(4, 3), weight_fn=lambda x, y: torch.ones(3))
