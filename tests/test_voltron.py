"""Voltron (#5) as a component: shapes, the exact masking ratio, the losses against slow per-patch and
per-token references, which patches the reconstruction sees, the frozen language model, and α.

A tiny BERT-like stand-in (the ``transformers`` interface Voltron uses: ``config``, ``embeddings``,
``forward(...).last_hidden_state``; randomly initialised, no import of transformers, which takes seconds)
is wrapped as DistilBERT / MiniLM would be. No training check: Voltron's data (Something-Something-v2) and its evaluation
suite are not offline, and captions of offline images would leak the labels (METHODS.md #5).
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from contrastkit.functional.voltron import (
    language_generation_loss,
    masked_reconstruction_loss,
    normalized_pixel_targets,
    patchify,
    random_patch_mask,
    split_generation,
    voltron_loss,
)
from contrastkit.nn.voltron import FrozenLanguageModel, Voltron

B, L, VOCAB = 4, 6, 40


class _Embeddings(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.words, self.positions = nn.Embedding(VOCAB, 16), nn.Embedding(16, 16)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.words(input_ids) + self.positions(torch.arange(input_ids.shape[1]))


class TinyBert(nn.Module):
    """BERT's interface in miniature: token + position embeddings, one self-attention layer, dropout."""

    def __init__(self) -> None:
        super().__init__()
        self.config = SimpleNamespace(hidden_size=16, vocab_size=VOCAB)
        self.embeddings = _Embeddings()
        self.layer = nn.TransformerEncoderLayer(16, 2, 32, dropout=0.5, batch_first=True)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> SimpleNamespace:
        hidden = self.layer(self.embeddings(input_ids), src_key_padding_mask=attention_mask == 0)
        return SimpleNamespace(last_hidden_state=hidden)


def language() -> FrozenLanguageModel:
    torch.manual_seed(0)
    return FrozenLanguageModel(TinyBert())


def model(frames: int = 2, generation: bool = True, **options) -> Voltron:
    torch.manual_seed(1)
    return Voltron(language(), image_size=16, patch_size=4, frames=frames, embed_dim=32, depth=2, heads=2,
                   decoder_dim=16, decoder_depth=1, decoder_heads=2, generation=generation, **options)


def captions(generator_seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(generator_seed)
    tokens = torch.randint(3, VOCAB, (B, L), generator=generator)
    tokens[:, 0] = 1  # [CLS]
    mask = torch.ones(B, L, dtype=torch.long)
    mask[0, 4:] = 0  # padding
    tokens[0, 4:] = 0
    return tokens, mask


def test_shapes_of_v_cond_and_v_gen():
    tokens, mask = captions()
    v_cond = model(frames=1, generation=False)
    out = v_cond(torch.randn(B, 3, 16, 16), tokens, mask)
    assert out["reconstructions"].shape == (B, 1, 16, 48) and out["mask"].shape == (B, 16) and "logits" not in out
    assert v_cond.encode(torch.randn(B, 3, 16, 16), tokens, mask).shape == (B, 16 + L, 32)
    v_gen = model()
    out = v_gen(torch.randn(B, 2, 3, 16, 16), tokens, mask, tokens, mask)
    assert out["reconstructions"].shape == (B, 2, 16, 48) and out["logits"].shape == (B, L, VOCAB)
    assert v_gen.encode(torch.randn(B, 2, 3, 16, 16), tokens, mask).shape == (B, 32 + L, 32)


@pytest.mark.parametrize("patches", [16, 196, 10])
def test_masking_ratio_is_exact_per_sample_and_restore_inverts_the_shuffle(patches):
    keep, mask, restore = random_patch_mask(5, patches, 0.75, generator=torch.Generator().manual_seed(0))
    n_keep = int(patches * 0.25)
    assert keep.shape == (5, n_keep)
    assert torch.all(mask.sum(1) == patches - n_keep)  # 12 of 16, 147 of 196, 8 of 10 removed
    for row in range(5):
        assert set(keep[row].tolist()) == set(torch.nonzero(mask[row] == 0).flatten().tolist())
    shuffle = torch.argsort(restore, dim=1)
    assert torch.equal(torch.gather(shuffle, 1, restore), torch.arange(patches).expand(5, -1))


def test_the_model_masks_the_same_patches_in_both_frames_at_the_default_ratio():
    tokens, mask = captions()
    net = model()
    assert net.mask_ratio == 0.75
    out = net(torch.randn(B, 2, 3, 16, 16), tokens, mask, tokens, mask, generator=torch.Generator().manual_seed(3))
    assert torch.all(out["mask"].sum(1) == 12) and out["keep"].shape == (B, 4)


def test_patchify_order_and_target_normalisation_match_a_slow_reference():
    images = torch.randn(2, 3, 8, 8)
    patches = patchify(images, 4)
    # patch (row 1, col 0), pixel (h=2, w=3), channel 1 -> index (2 * 4 + 3) * 3 + 1
    assert patches[1, 2, (2 * 4 + 3) * 3 + 1] == images[1, 1, 4 + 2, 0 + 3]
    targets = normalized_pixel_targets(patches)
    values = patches[0, 3].tolist()
    mean = sum(values) / len(values)
    variance = sum((v - mean) ** 2 for v in values) / (len(values) - 1)  # unbiased, as official
    assert math.isclose(float(targets[0, 3, 5]), (values[5] - mean) / math.sqrt(variance + 1e-6), rel_tol=1e-5)


def test_reconstruction_loss_equals_a_per_patch_loop_over_removed_patches_and_frames():
    generator = torch.Generator().manual_seed(0)
    images, recon = torch.randn(3, 2, 3, 8, 8, generator=generator), torch.randn(3, 2, 4, 48, generator=generator)
    _, mask, _ = random_patch_mask(3, 4, 0.5, generator=generator)
    frame_losses = []
    for frame in range(2):
        total, count = 0.0, 0
        for b in range(3):
            for n in range(4):
                if mask[b, n] == 1:
                    target = normalized_pixel_targets(patchify(images[b, frame], 4)[n])
                    total += float(((recon[b, frame, n] - target) ** 2).mean())
                    count += 1
        frame_losses.append(total / count)
    expected = sum(frame_losses) / 2
    assert math.isclose(float(masked_reconstruction_loss(recon, images, mask, 4)), expected, rel_tol=1e-5)


def test_only_removed_patches_contribute_to_the_reconstruction():
    generator = torch.Generator().manual_seed(1)
    images = torch.randn(2, 1, 3, 8, 8, generator=generator)
    recon = torch.randn(2, 1, 4, 48, generator=generator, requires_grad=True)
    _, mask, _ = random_patch_mask(2, 4, 0.75, generator=generator)
    masked_reconstruction_loss(recon, images, mask, 4).backward()
    per_patch = recon.grad.abs().sum(-1)[:, 0]  # [B, N]
    assert torch.all((per_patch > 0) == (mask == 1))
    # Changing a visible patch's prediction leaves the loss unchanged.
    moved = recon.detach().clone()
    moved[mask[:, None].bool().logical_not().expand_as(moved[..., 0])] += 5.0
    assert torch.allclose(masked_reconstruction_loss(moved, images, mask, 4),
                          masked_reconstruction_loss(recon.detach(), images, mask, 4))


def test_language_loss_equals_a_per_token_loop_with_weights():
    generator = torch.Generator().manual_seed(2)
    logits, (tokens, mask) = torch.randn(B, L, VOCAB, generator=generator), captions()
    weight = torch.tensor([1.0, 0.0, 1.0, 1.0])
    per_example = []
    for b in range(B):
        terms = [-float(logits[b, t].log_softmax(-1)[tokens[b, t + 1]]) for t in range(L - 1) if mask[b, t] == 1]
        per_example.append(sum(terms) / len(terms))
    expected = sum(w * v for w, v in zip(weight.tolist(), per_example)) / (1e-8 + 3)
    assert math.isclose(float(language_generation_loss(logits, tokens, mask, weight)), expected, rel_tol=1e-5)
    assert float(language_generation_loss(logits, tokens, mask, torch.zeros(B))) == 0.0


def test_gradients_reach_the_model_but_never_the_frozen_language_model():
    tokens, mask = captions()
    net = model()
    net.train()
    assert not net.language.model.training  # frozen: no dropout
    condition, condition_mask, generate, generate_mask, weight = split_generation(
        tokens, mask, 0.5, generator=torch.Generator().manual_seed(0))
    images = torch.randn(B, 2, 3, 16, 16)
    out = net(images, condition, condition_mask, generate, generate_mask)
    loss = voltron_loss(masked_reconstruction_loss(out["reconstructions"], images, out["mask"], 4),
                        language_generation_loss(out["logits"], generate, generate_mask, weight))
    loss.backward()
    assert all(not p.requires_grad and p.grad is None for p in net.language.parameters())
    for name in ("lang2encoder", "lang2decoder", "patch_embed", "vocab_head", "encoder_frame", "mask_token"):
        grads = [p.grad for n, p in net.named_parameters() if n.startswith(name)]
        assert grads and all(g is not None and g.abs().sum() > 0 for g in grads), name
    # The language model's output carries no graph: the frozen embeddings are constants.
    assert not net.language.contextual(tokens, mask).requires_grad


@pytest.mark.parametrize("alpha", [0.0, 0.5, 1.0])
def test_alpha_switches_rows_between_conditioning_and_generation(alpha):
    tokens, mask = captions()
    condition, condition_mask, generate, generate_mask, weight = split_generation(
        tokens, mask, alpha, generator=torch.Generator().manual_seed(4))
    assert int(weight.sum()) == int(alpha * B)
    for b in range(B):
        if weight[b] == 1:  # generates: conditions on [CLS] only, generates the caption
            assert condition_mask[b].tolist() == [1] + [0] * (L - 1) and condition[b, 0] == 1
            assert torch.equal(generate[b], tokens[b]) and torch.equal(generate_mask[b], mask[b])
        else:  # conditions on the caption, generates [CLS] only with weight 0
            assert torch.equal(condition[b], tokens[b]) and torch.equal(condition_mask[b], mask[b])
            assert generate_mask[b].tolist() == [1] + [0] * (L - 1)


def test_alpha_zero_gives_no_language_loss_and_no_gradient_to_the_vocabulary_head():
    tokens, mask = captions()
    net = model()
    condition, condition_mask, generate, generate_mask, weight = split_generation(tokens, mask, 0.0)
    images = torch.randn(B, 2, 3, 16, 16)
    out = net(images, condition, condition_mask, generate, generate_mask)
    language_loss = language_generation_loss(out["logits"], generate, generate_mask, weight)
    assert float(language_loss.detach()) == 0.0
    language_loss.backward()
    assert float(net.vocab_head.weight.grad.abs().sum()) == 0.0


def test_generation_is_causal_and_conditioning_changes_the_encoding():
    tokens, mask = captions()
    net = model().eval()
    images = torch.randn(B, 2, 3, 16, 16)
    first = net(images, tokens, mask, tokens, mask, generator=torch.Generator().manual_seed(0))["logits"]
    later = tokens.clone()
    later[:, 3:] = 2  # change tokens after position 2
    second = net(images, tokens, mask, later, mask, generator=torch.Generator().manual_seed(0))["logits"]
    torch.testing.assert_close(first[:, :3], second[:, :3])  # positions <= 2 never see later tokens
    assert not torch.allclose(first[:, 3:], second[:, 3:])
    other, _ = captions(generator_seed=9)
    assert not torch.allclose(net.encode(images, tokens, mask)[:, :32], net.encode(images, other, mask)[:, :32])


def test_padding_mask_keys_ignores_padded_tokens_and_queries_reproduces_the_official_quirk():
    tokens, mask = captions()
    changed = tokens.clone()
    changed[0, 4:] = 7  # new ids in row 0's padding
    images = torch.randn(B, 1, 3, 16, 16)
    for padding_mask, equal in (("keys", True), ("queries", False)):
        net = model(frames=1, generation=False, padding_mask=padding_mask).eval()
        a, b = net.encode(images, tokens, mask)[0, :16], net.encode(images, changed, mask)[0, :16]
        assert torch.allclose(a, b, atol=1e-6) == equal, padding_mask


def test_errors():
    with pytest.raises(ValueError, match="two frames"):
        model(frames=1, generation=True)
    with pytest.raises(ValueError, match="divisible by patch_size"):
        Voltron(language(), image_size=15, patch_size=4)
    with pytest.raises(ValueError, match=r"expected frames \[B, 2, 3, H, W\]"):
        model()(torch.randn(B, 3, 16, 16), *captions(), *captions())
    with pytest.raises(ValueError, match="generate_tokens"):
        model()(torch.randn(B, 2, 3, 16, 16), *captions())
    with pytest.raises(ValueError, match="alpha"):
        split_generation(*captions(), 1.5)
