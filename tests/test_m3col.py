"""M3CoL: the M3Co mixup loss and SoftCLIP against slow per-row references, and the method."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from contrastkit.data.paired import ImageCaptionDataset
from contrastkit.functional.contrastive import clip_loss
from contrastkit.functional.m3col import m3co_loss, mixco_mix, mixup_targets, soft_clip_loss
from contrastkit.methods import method_options
from contrastkit.methods.m3col import M3CoL
from contrastkit.nn.towers import ImageTextTowers
from contrastkit.views.image_text import build_image_text_views


def _unit(vector: list[float]) -> list[float]:
    norm = math.sqrt(sum(v * v for v in vector))
    return [v / norm for v in vector]


def _dot(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b))


def _log_softmax(values: list[float]) -> list[float]:
    top = max(values)
    log_total = top + math.log(sum(math.exp(v - top) for v in values))
    return [v - log_total for v in values]


def slow_m3co(mixed: torch.Tensor, fixed: torch.Tensor, permutation: list[int], lambdas: list[float],
              temperature: float) -> float:
    """Row by row: each mixture's cross-entropy against lambda on its own pair and 1 - lambda on its partner,
    then each fixed column's against the mixtures that contain it; averaged."""
    m = [_unit(row) for row in mixed.tolist()]
    f = [_unit(row) for row in fixed.tolist()]
    rows = len(m)
    target = [[0.0] * rows for _ in range(rows)]
    for i in range(rows):
        target[i][i] += lambdas[i]
        target[i][permutation[i]] += 1 - lambdas[i]
    forward = 0.0
    for i in range(rows):
        logp = _log_softmax([_dot(m[i], f[j]) / temperature for j in range(rows)])
        forward -= sum(target[i][j] * logp[j] for j in range(rows))
    backward = 0.0
    for j in range(rows):
        logp = _log_softmax([_dot(m[i], f[j]) / temperature for i in range(rows)])
        backward -= sum(target[i][j] * logp[i] for i in range(rows))
    return (forward / rows + backward / rows) / 2


def slow_soft_clip(predictions: torch.Tensor, targets: torch.Tensor, temperature: float) -> float:
    p = [_unit(row) for row in predictions.tolist()]
    t = [_unit(row) for row in targets.tolist()]
    rows = len(p)
    soft = []
    for i in range(rows):
        logq = _log_softmax([_dot(t[i], t[j]) / temperature for j in range(rows)])
        soft.append([math.exp(v) for v in logq])
    first = second = 0.0
    for i in range(rows):
        logp = _log_softmax([_dot(p[i], t[j]) / temperature for j in range(rows)])
        first -= sum(soft[i][j] * logp[j] for j in range(rows))
        # the official second term: column i of the logits, weighted by row i of the targets
        logp = _log_softmax([_dot(p[k], t[i]) / temperature for k in range(rows)])
        second -= sum(soft[i][k] * logp[k] for k in range(rows))
    return (first / rows + second / rows) / 2


def test_mixco_mix_against_a_loop() -> None:
    generator = torch.Generator().manual_seed(0)
    embeddings = torch.randn(6, 4, generator=generator)
    permutation, lambdas = torch.tensor([2, 0, 1, 3, 5, 4]), torch.tensor([0.3, 1.0, 0.9, 0.5, 0.0, 1.0])
    mixed = mixco_mix(embeddings, permutation, lambdas)
    for i in range(6):
        expected = lambdas[i] * embeddings[i] + (1 - lambdas[i]) * embeddings[permutation[i]]
        torch.testing.assert_close(mixed[i], expected)
    torch.testing.assert_close(mixed[[1, 3, 5]], embeddings[[1, 3, 5]])  # unmixed or self-partnered rows


def test_targets_keep_their_mass_at_a_fixed_point() -> None:
    # perm[3] == 3: the official assignment would leave row 3 with mass 1 - 0.5; added, it keeps 1.
    targets = mixup_targets(torch.tensor([2, 0, 1, 3]), torch.tensor([0.3, 1.0, 0.9, 0.5]))
    torch.testing.assert_close(targets.sum(1), torch.ones(4))
    assert targets[3, 3] == 1.0 and float(targets[0, 2]) == pytest.approx(0.7) and targets[1].tolist() == [0, 1, 0, 0]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_m3co_loss_equals_the_slow_reference(seed: int) -> None:
    generator = torch.Generator().manual_seed(seed)
    rows = 7
    images, texts = torch.randn(rows, 5, generator=generator), torch.randn(rows, 5, generator=generator)
    # seed 0: a permutation with a fixed point (row 2), where the official assignment loses mass
    permutation = torch.tensor([1, 0, 2, 4, 3, 6, 5]) if seed == 0 else torch.randperm(rows, generator=generator)
    torch.manual_seed(seed)
    lambdas = torch.distributions.Beta(0.15, 0.15).sample((rows,))
    lambdas[torch.rand(rows, generator=generator) > 0.5] = 1.0
    mixed = mixco_mix(texts, permutation, lambdas)
    got = m3co_loss(mixed, images, permutation, lambdas, temperature=0.1)
    expected = slow_m3co(mixed, images, permutation.tolist(), lambdas.tolist(), 0.1)
    assert got.item() == pytest.approx(expected, rel=1e-5)
    one_way = m3co_loss(mixed, images, permutation, lambdas, bidirectional=False)
    assert one_way.item() != pytest.approx(got.item())


@pytest.mark.parametrize("seed", [0, 1])
def test_soft_clip_equals_the_slow_reference(seed: int) -> None:
    generator = torch.Generator().manual_seed(seed)
    predictions, targets = torch.randn(6, 4, generator=generator), torch.randn(6, 4, generator=generator)
    got = soft_clip_loss(predictions, targets, temperature=0.125)
    assert got.item() == pytest.approx(slow_soft_clip(predictions, targets, 0.125), rel=1e-5)
    # The targets are not detached (as the official code): the target side gets a gradient through them too.
    targets.requires_grad_(True)
    soft_clip_loss(predictions, targets).backward()
    assert targets.grad is not None and targets.grad.abs().sum() > 0


def test_m3co_errors() -> None:
    x = torch.randn(4, 3)
    with pytest.raises(ValueError, match="permutation of 0..3"):
        m3co_loss(x, x, torch.tensor([0, 0, 1, 2]), torch.ones(4))
    with pytest.raises(ValueError, match=r"lambdas: expected mixing weights in \[0, 1\]"):
        mixco_mix(x, torch.arange(4), torch.full((4,), 1.5))
    with pytest.raises(ValueError, match="temperature"):
        soft_clip_loss(x, x, temperature=0.0)


# --- the method -----------------------------------------------------------------------------------


class Words(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.table = nn.Embedding(31, 6)
        self.output_dim = 6

    def forward(self, texts: list[str]) -> torch.Tensor:
        return torch.stack([self.table(torch.tensor([sum(map(ord, w)) % 31 for w in t.split()])).mean(0)
                            for t in texts])


class Pixels(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, 8), nn.Tanh())
        self.output_dim = 8

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images)


def make_m3col(**options) -> M3CoL:
    torch.manual_seed(0)
    return M3CoL(ImageTextTowers(Pixels(), Words(), embed_dim=5), build_image_text_views("none"), **options)


def batch(rows: int = 16):
    generator = torch.Generator().manual_seed(3)
    data = ImageCaptionDataset(torch.rand(rows, 3, 4, 4, generator=generator),
                               [[f"word{i} other{i % 3} thing"] for i in range(rows)])
    return data.__getitems__(list(range(rows)))


def test_m3col_options_are_the_official_defaults() -> None:
    defaults = M3CoL.__init__.__kwdefaults__
    assert {key: defaults[key] for key in ("lambda_mixup", "mixup_beta", "mixup_s_thresh", "mixup_temperature",
                                           "soft_clip_temperature", "mixup_pct")} == {
        "lambda_mixup": 0.1, "mixup_beta": 0.15, "mixup_s_thresh": 0.5, "mixup_temperature": 0.1,
        "soft_clip_temperature": 0.125, "mixup_pct": 0.33}
    assert "official_in_place_mixing" in method_options("m3col") and "temperature" in method_options("m3col")


def test_m3col_loss_is_clip_plus_the_mixup_terms_with_its_draws() -> None:
    method = make_m3col()
    data = batch()
    images, texts = method.embeddings(data)
    output = method.loss_from_embeddings((images, texts), data)
    method.mix_calls.zero_()  # replay the same draws
    text_perm, text_lam = method.draw_mixing(16, images.device)
    image_perm, image_lam = method.draw_mixing(16, images.device)
    assert (text_lam < 1).any() and (text_lam == 1).any()
    expected = clip_loss(images, texts, 1 / 0.07) + 0.1 * (
        slow_m3co(mixco_mix(texts, text_perm, text_lam).detach(), images.detach(), text_perm.tolist(),
                  text_lam.tolist(), 0.1)
        + slow_m3co(mixco_mix(images, image_perm, image_lam).detach(), texts.detach(), image_perm.tolist(),
                    image_lam.tolist(), 0.1))
    assert output.loss.item() == pytest.approx(expected.item(), rel=1e-5)
    # The official in-place variant contrasts each mixture with the other side's mixture: another loss.
    official = make_m3col(official_in_place_mixing=True)
    assert official.loss_from_embeddings((images, texts), data).loss.item() != pytest.approx(output.loss.item())


def test_m3col_draws_follow_the_official_fractions() -> None:
    method = make_m3col()
    _, lambdas = method.draw_mixing(20000, torch.device("cpu"))
    mixed = lambdas < 1
    assert mixed.float().mean().item() == pytest.approx(0.5, abs=0.02)
    # Beta(0.15, 0.15): U-shaped, mean 1/2, most mass near 0 and 1.
    assert lambdas[mixed].mean().item() == pytest.approx(0.5, abs=0.02)
    assert ((lambdas[mixed] < 0.1) | (lambdas[mixed] > 0.9)).float().mean() > 0.6
    # Same seed buffer and call count, same draws (what keeps processes and resumed runs in step).
    again = make_m3col()
    torch.testing.assert_close(again.draw_mixing(20000, torch.device("cpu"))[1], lambdas)
    assert not torch.equal(again.draw_mixing(20000, torch.device("cpu"))[1], lambdas)


def test_m3col_switches_to_soft_clip_after_mixup_pct() -> None:
    method = make_m3col()
    data = batch()
    assert not method.soft_clip_phase
    method.on_step_end(31, 100)  # 32 steps done < int(0.33 * 100)
    assert not method.soft_clip_phase
    method.on_step_end(32, 100)
    assert method.soft_clip_phase
    images, texts = method.embeddings(data)
    calls = int(method.mix_calls)
    loss = method.loss_from_embeddings((images, texts), data).loss
    expected = clip_loss(images, texts, 1 / 0.07) + 0.1 * (soft_clip_loss(texts, images) + soft_clip_loss(images, texts))
    torch.testing.assert_close(loss, expected)
    assert int(method.mix_calls) == calls  # no draws in the SoftCLIP phase
    assert {"mix_seed", "mix_calls", "steps_done", "total_steps"} <= set(method.state_dict())


def test_m3col_train_step_changes_parameters() -> None:
    method = make_m3col()
    before = {name: value.detach().clone() for name, value in method.named_parameters()}
    output = method(batch())
    assert math.isfinite(output.loss.item()) and output.logs["mixup"] > 0
    output.loss.backward()
    torch.optim.SGD(method.parameters(), lr=0.5).step()
    for name, value in method.named_parameters():
        assert not torch.equal(before[name], value), name


def test_m3col_option_errors() -> None:
    with pytest.raises(ValueError, match="method.lambda_mixup"):
        make_m3col(lambda_mixup=0.0)
    with pytest.raises(ValueError, match=r"method.mixup_pct: expected a number in \[0, 1\]"):
        make_m3col(mixup_pct=1.5)
