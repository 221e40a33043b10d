"""OBoW's vocabulary, soft BoW targets and dynamic predictor against loop references and properties."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from contrastkit.nn.bow import (
    BoWPredictor,
    OnlineVocabulary,
    bow_cross_entropy,
    drop_border,
    soft_bow,
    squared_distances,
)


def reference_bow(features: torch.Tensor, words: torch.Tensor, inverse_temperature: float, border: int = 1):
    """The paper's formula with Python loops: codes per interior location, max over locations, L1."""
    n_rows, _, height, width = features.shape
    out = torch.zeros(n_rows, words.shape[0], dtype=torch.float64)
    for n in range(n_rows):
        pooled = [0.0] * words.shape[0]
        for h in range(border, height - border):
            for w in range(border, width - border):
                f = features[n, :, h, w].double()
                dists = [float(((f - words[k].double()) ** 2).sum()) for k in range(words.shape[0])]
                exps = [math.exp(-inverse_temperature * d) for d in dists]
                total = sum(exps)
                for k in range(words.shape[0]):
                    pooled[k] = max(pooled[k], exps[k] / total)
        norm = sum(pooled)
        out[n] = torch.tensor([p / norm for p in pooled])
    return out


def test_bow_target_matches_loop_reference() -> None:
    torch.manual_seed(0)
    vocabulary = OnlineVocabulary(num_words=6, num_channels=3, inv_delta=2.0)
    vocabulary.min_distance_mean.fill_(0.8)
    features = torch.randn(2, 3, 5, 4)
    bow = vocabulary(features)
    expected = reference_bow(features, vocabulary.words, 2.0 / 0.8)
    torch.testing.assert_close(bow.double(), expected, rtol=1e-5, atol=1e-6)


def test_bow_rows_are_distributions_and_carry_no_gradient() -> None:
    torch.manual_seed(1)
    vocabulary = OnlineVocabulary(num_words=10, num_channels=4)
    features = torch.randn(5, 4, 7, 7, requires_grad=True)
    bow = vocabulary(features, update=True)
    assert bow.shape == (5, 10)
    assert (bow >= 0).all()
    torch.testing.assert_close(bow.sum(1), torch.ones(5))
    assert not bow.requires_grad


def test_codes_concentrate_on_nearest_word_as_inverse_temperature_grows() -> None:
    torch.manual_seed(2)
    words = torch.randn(8, 4)
    features = torch.randn(3, 4, 1, 1)  # one location: the BoW is the code itself
    dist = squared_distances(features, words)
    nearest = dist[:, :, 0, 0].argmin(1)
    peaks = []
    for inverse_temperature in (0.1, 1.0, 10.0, 100.0):
        bow = soft_bow(dist, inverse_temperature)
        peaks.append(bow[torch.arange(3), nearest])
    peaks = torch.stack(peaks)
    assert (peaks[1:] >= peaks[:-1] - 1e-6).all()
    assert (peaks[-1] > 0.99).all()
    assert (peaks[0] < 0.5).all()


def test_squared_distances_stay_float32_under_autocast() -> None:
    torch.manual_seed(3)
    features = (torch.randn(2, 16, 3, 3) + 10.0).bfloat16().float()  # large norms: bf16 cancellation would show
    words = features[0, :, 1, 1].unsqueeze(0) + 1e-2 * torch.randn(4, 16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        dist = squared_distances(features, words)
    assert dist.dtype == torch.float32
    expected = ((features.permute(0, 2, 3, 1).unsqueeze(3) - words) ** 2).sum(-1).permute(0, 3, 1, 2)
    torch.testing.assert_close(dist, expected, rtol=1e-4, atol=1e-3)


def test_drop_border_sizes() -> None:
    assert drop_border(torch.zeros(1, 2, 7, 7)).shape[-2:] == (5, 5)
    assert drop_border(torch.zeros(1, 2, 4, 4)).shape[-2:] == (2, 2)
    assert drop_border(torch.zeros(1, 2, 2, 2)).shape[-2:] == (2, 2)  # nothing left inside: kept whole


def test_vocabulary_is_fifo_with_wraparound() -> None:
    vocabulary = OnlineVocabulary(num_words=5, num_channels=2)
    assert vocabulary.words.shape == (5, 2)
    first = torch.arange(6.0).view(3, 2)
    vocabulary.enqueue(first)
    torch.testing.assert_close(vocabulary.words[:3], first)
    assert int(vocabulary.ptr) == 3
    second = 100 + torch.arange(8.0).view(4, 2)  # wraps: rows 3, 4, 0, 1
    vocabulary.enqueue(second)
    torch.testing.assert_close(vocabulary.words[[3, 4, 0, 1]], second)
    torch.testing.assert_close(vocabulary.words[2], first[2])  # the oldest survivor
    assert int(vocabulary.ptr) == 2
    vocabulary.enqueue(-torch.arange(14.0).view(7, 2))  # more than K: the last K, in order
    torch.testing.assert_close(vocabulary.words[[2, 3, 4, 0, 1]], -torch.arange(4.0, 14.0).view(5, 2))
    with pytest.raises(ValueError, match="expected words"):
        vocabulary.enqueue(torch.zeros(2, 3))


def test_update_enqueues_one_local_average_per_image() -> None:
    torch.manual_seed(4)
    num_images, views = 3, 2
    vocabulary = OnlineVocabulary(num_words=16, num_channels=4)
    features = torch.randn(views * num_images, 4, 7, 7)
    vocabulary(features, update=True, num_images=num_images)
    assert int(vocabulary.ptr) == num_images and int(vocabulary.num_batches) == 1
    # Candidates of image i: 3x3 means of the 5x5 interior (3x3 positions) of either view of image i.
    pooled = F.avg_pool2d(features[:, :, 1:-1, 1:-1], 3, stride=1).flatten(2)  # [6, 4, 9]
    for image in range(num_images):
        candidates = torch.cat([pooled[image], pooled[num_images + image]], dim=1).t()  # [18, 4]
        distance = (candidates - vocabulary.words[image]).norm(dim=1).min()
        assert distance < 1e-5
    # A 4x4 map keeps a 2x2 interior, averaged whole.
    small = OnlineVocabulary(num_words=4, num_channels=4)
    maps = torch.randn(2, 4, 4, 4)
    small(maps, update=True)
    torch.testing.assert_close(small.words[:2], maps[:, :, 1:3, 1:3].mean((2, 3)))


def test_min_distance_mean_first_batch_then_ema() -> None:
    torch.manual_seed(5)
    vocabulary = OnlineVocabulary(num_words=8, num_channels=3, decay=0.9)
    batches = [torch.randn(4, 3, 5, 5) for _ in range(3)]
    expected = None
    for features in batches:
        words_before = vocabulary.words.clone()
        batch_min = squared_distances(features[:, :, 1:-1, 1:-1], words_before).amin(1).mean()
        expected = batch_min if expected is None else 0.9 * expected + 0.1 * batch_min
        bow = vocabulary(features, update=True)
        # The target uses the words before the enqueue and the updated mu_min.
        reference = soft_bow(squared_distances(features[:, :, 1:-1, 1:-1], words_before), 15.0 / expected)
        torch.testing.assert_close(bow, reference)
    torch.testing.assert_close(vocabulary.min_distance_mean, expected)


def test_vocabulary_state_round_trips() -> None:
    torch.manual_seed(6)
    vocabulary = OnlineVocabulary(num_words=8, num_channels=3)
    vocabulary(torch.randn(5, 3, 5, 5), update=True)
    state = vocabulary.state_dict()
    assert {"words", "ptr", "min_distance_mean", "num_batches"} <= set(state)
    restored = OnlineVocabulary(num_words=8, num_channels=3)
    restored.load_state_dict(state)
    features = torch.randn(2, 3, 5, 5)
    torch.testing.assert_close(restored(features), vocabulary(features))


def _loop_log_probs(omega: torch.Tensor, features: torch.Tensor, kappa: float, cosine: bool) -> torch.Tensor:
    """Slow reference: per (n, k), logit = kappa * <w_k / ||w_k||, f_n> (f_n / ||f_n|| when cosine)."""
    rows = []
    for n in range(features.shape[0]):
        f = features[n] / features[n].norm() if cosine else features[n]
        logits = torch.stack([kappa * torch.dot(omega[k] / omega[k].norm(), f) for k in range(omega.shape[0])])
        rows.append(logits - torch.logsumexp(logits, 0))
    return torch.stack(rows)


def test_predictor_matches_official_raw_feature_logits_and_follows_vocabulary() -> None:
    torch.manual_seed(7)
    predictor = BoWPredictor(feature_dim=6, level_channels=(3, 5), kappa=8.0).eval()
    assert not predictor.normalize_features  # the official default
    # Features of norm far from 1: raw and cosine logits then differ clearly.
    features = 3.0 * torch.rand(4, 6)
    words = [torch.rand(10, 3), torch.rand(12, 5)]
    log_probs = predictor(features, words)
    assert [p.shape for p in log_probs] == [(4, 10), (4, 12)]
    for level, (log_p, vocab) in enumerate(zip(log_probs, words)):
        omega = predictor.generators[level](vocab / vocab.norm(dim=1, keepdim=True))
        expected = _loop_log_probs(omega, features, 8.0, cosine=False)
        torch.testing.assert_close(log_p, expected, rtol=1e-5, atol=1e-5)
        # Not the cosine form.
        assert not torch.allclose(log_p, _loop_log_probs(omega, features, 8.0, cosine=True), atol=1e-3)
        torch.testing.assert_close(log_p.exp().sum(1), torch.ones(4))
        # Only the weights are unit-norm: the logits are kappa * (w . f) with the raw f.
        weights = predictor.word_weights(level, vocab)
        torch.testing.assert_close(weights.norm(dim=1), torch.ones(vocab.shape[0]))
        torch.testing.assert_close(log_p, F.log_softmax(8.0 * features @ weights.t(), dim=1))
    # The weights are generated from the words: other words, other predictions.
    changed = predictor(features, [words[0] + torch.rand(10, 3), words[1]])
    assert not torch.allclose(changed[0], log_probs[0])
    torch.testing.assert_close(changed[1], log_probs[1])


def test_predictor_cosine_option_normalises_the_feature() -> None:
    torch.manual_seed(17)
    predictor = BoWPredictor(feature_dim=6, level_channels=(3,), kappa=5.0, normalize_features=True).eval()
    features = 3.0 * torch.rand(4, 6)
    words = torch.rand(9, 3)
    omega = predictor.generators[0](words / words.norm(dim=1, keepdim=True))
    expected = _loop_log_probs(omega, features, 5.0, cosine=True)
    torch.testing.assert_close(predictor(features, [words])[0], expected, rtol=1e-5, atol=1e-5)
    # Invariant to the feature's scale, unlike the official form.
    torch.testing.assert_close(predictor(10.0 * features, [words])[0], expected, rtol=1e-5, atol=1e-5)


def test_predictor_gradient_reaches_generator_not_words() -> None:
    torch.manual_seed(8)
    predictor = BoWPredictor(feature_dim=4, level_channels=(3,))
    words = torch.rand(6, 3, requires_grad=True)
    features = torch.randn(5, 4, requires_grad=True)
    target = F.softmax(torch.randn(5, 6), dim=1)
    bow_cross_entropy(target, predictor(features, [words])[0]).backward()
    assert words.grad is None
    assert features.grad is not None and features.grad.abs().sum() > 0
    assert all(p.grad is not None for p in predictor.parameters())


def test_bow_cross_entropy_equals_kl_plus_entropy() -> None:
    torch.manual_seed(9)
    target = F.softmax(torch.randn(4, 7), dim=1)
    log_prediction = F.log_softmax(torch.randn(4, 7), dim=1)
    entropy = -(target * target.log()).sum(1).mean()
    kl = F.kl_div(log_prediction, target, reduction="batchmean")
    torch.testing.assert_close(bow_cross_entropy(target, log_prediction), kl + entropy)
    with pytest.raises(ValueError, match="same shape"):
        bow_cross_entropy(target, log_prediction[:, :3])


def test_bad_inputs_raise() -> None:
    with pytest.raises(ValueError, match="num_words"):
        OnlineVocabulary(num_words=1, num_channels=3)
    vocabulary = OnlineVocabulary(num_words=4, num_channels=3)
    with pytest.raises(ValueError, match=r"expected feature maps \[N, 3, H, W\]"):
        vocabulary(torch.zeros(2, 4, 5, 5))
    with pytest.raises(ValueError, match="num_images"):
        vocabulary(torch.zeros(3, 3, 5, 5), update=True, num_images=2)
    with pytest.raises(ValueError, match="vocabularies"):
        BoWPredictor(4, (3,))(torch.zeros(2, 4), [])
