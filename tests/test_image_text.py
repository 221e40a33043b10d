"""Image–text contrast: the data, the metrics against slow references, CLIP/SigLIP/LiT mechanics."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from contrastkit.data.batch import Batch
from contrastkit.data.paired import ImageCaptionDataset
from contrastkit.eval.cross_modal import (
    bootstrap_interval,
    query_ranks,
    retrieval_scores,
    zero_shot_classifier,
    zero_shot_top1,
)
from contrastkit.methods.clip import CLIP, LiT, SigLIP
from contrastkit.nn.towers import ImageTextTowers, LockedTextTower
from contrastkit.views.image_text import RandomShift, build_image_text_views

# --- towers without a transformer: a hashed bag of words stands in for the text encoder ---


class BagOfWords(nn.Module):
    def __init__(self, dim: int = 16) -> None:
        super().__init__()
        self.table = nn.Embedding(97, dim)
        self.output_dim = dim

    def forward(self, texts: list[str]) -> torch.Tensor:
        ids = [torch.tensor([sum(map(ord, word)) % 97 for word in text.split()]) for text in texts]
        return torch.stack([self.table(row).mean(0) for row in ids])

    def encode(self, texts: list[str], batch_size: int = 64, normalize: bool = False) -> torch.Tensor:
        with torch.no_grad():
            return self(texts)


class TinyImage(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                                 nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.output_dim = 8

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images)


def towers(**options) -> ImageTextTowers:
    return ImageTextTowers(TinyImage(), BagOfWords(), embed_dim=8, **options)


def batch(rows: int = 6) -> Batch:
    torch.manual_seed(0)
    captions = [[f"thing {i}", f"alias {i}"] for i in range(rows)]
    dataset = ImageCaptionDataset(torch.rand(rows, 3, 8, 8), captions)
    return dataset.__getitems__(list(range(rows)))


VIEWS = build_image_text_views("none")

# --- data ---


def test_a_batch_holds_images_one_drawn_caption_and_all_captions() -> None:
    dataset = ImageCaptionDataset(torch.rand(4, 3, 8, 8), [["a"], ["b", "bee"], ["c"], ["d", "dee", "di"]])
    drawn = set()
    for _ in range(30):
        got = dataset.__getitems__([1, 3])
        assert got.inputs["image"].shape == (2, 3, 8, 8) and got.labels.tolist() == [1, 3]
        assert got.inputs["captions"] == [["b", "bee"], ["d", "dee", "di"]]
        drawn.add(tuple(got.inputs["caption"]))
    assert len(drawn) > 1  # the caption is drawn, not always the first
    assert dataset.class_names == ["a", "b", "c", "d"]


def test_bad_paired_data_is_one_clear_error() -> None:
    with pytest.raises(ValueError, match="expected 2 caption lists"):
        ImageCaptionDataset(torch.rand(2, 3, 4, 4), [["a"]])
    with pytest.raises(ValueError, match="row 1 has no caption"):
        ImageCaptionDataset(torch.rand(2, 3, 4, 4), [["a"], []])


# --- metrics against slow references ---


def slow_ranks(images, texts, owner):
    scores = images @ texts.T
    i2t, t2i = [], []
    for i in range(images.shape[0]):
        own = [j for j in range(texts.shape[0]) if owner[j] == i]
        best = max(scores[i, j] for j in own)
        i2t.append(1 + sum(1 for j in range(texts.shape[0]) if j not in own and scores[i, j] >= best))
    for j in range(texts.shape[0]):
        t2i.append(sum(1 for i in range(images.shape[0]) if scores[i, j] >= scores[owner[j], j]))
    return torch.tensor(i2t), torch.tensor(t2i)


def test_ranks_match_a_slow_any_match_reference() -> None:
    torch.manual_seed(1)
    images, texts = torch.randn(7, 5), torch.randn(12, 5)
    owner = torch.tensor([0, 0, 1, 2, 3, 3, 3, 4, 5, 6, 6, 1])
    got = query_ranks(images, texts, owner)
    want = slow_ranks(images, texts, owner.tolist())
    assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1])


def test_perfect_embeddings_rank_first_and_constant_ones_do_not() -> None:
    images = torch.eye(4)
    texts = torch.eye(4).repeat_interleave(2, 0)
    owner = torch.arange(4).repeat_interleave(2)
    scores = retrieval_scores(*query_ranks(images, texts, owner))
    assert scores["i2t_r@1"] == scores["t2i_r@1"] == 1.0 and scores["i2t_median_rank"] == 1.0
    constant = retrieval_scores(*query_ranks(torch.ones(4, 3), torch.ones(8, 3), owner))
    assert constant["i2t_r@1"] == 0.0 and constant["t2i_r@1"] == 0.0  # ties count against the query


def test_zero_shot_classifier_is_the_renormalised_mean_of_normalised_templates() -> None:
    table = {"x": torch.tensor([3.0, 0.0]), "a x": torch.tensor([0.0, 1.0]), "y": torch.tensor([1.0, 1.0]),
             "a y": torch.tensor([-1.0, 1.0])}
    classifier = zero_shot_classifier(lambda prompts: torch.stack([table[p] for p in prompts]), ["x", "y"],
                                      ["{}", "a {}"])
    want_x = F.normalize(torch.tensor([1.0, 1.0]), dim=0)  # mean of (1, 0) and (0, 1)
    want_y = torch.tensor([0.0, 1.0])
    assert torch.allclose(classifier[0], want_x) and torch.allclose(classifier[1], want_y, atol=1e-6)
    assert zero_shot_top1(torch.tensor([[1.0, 0.9], [0.0, 1.0]]), classifier, torch.tensor([0, 1])).tolist() \
        == [1.0, 1.0]
    with pytest.raises(ValueError, match="eval.templates"):
        zero_shot_classifier(lambda prompts: torch.zeros(len(prompts), 2), ["x"], ["no slot"])


def test_bootstrap_interval_covers_the_mean_and_shrinks_with_more_queries() -> None:
    values = torch.tensor([0.0, 1.0] * 50)
    low, high = bootstrap_interval(values, seed=0)
    assert low < 0.5 < high
    low_many, high_many = bootstrap_interval(torch.tensor([0.0, 1.0] * 5000), seed=0)
    assert high_many - low_many < (high - low) / 5


# --- methods ---


def test_clip_loss_at_init_is_near_log_b_and_training_lowers_it() -> None:
    method = CLIP(towers(), VIEWS, temperature=1.0)
    data = batch()
    first = method(data).loss
    assert abs(float(first.detach()) - math.log(6)) < 1.0
    optimiser = torch.optim.Adam(method.parameters(), lr=0.05)
    for _ in range(60):
        optimiser.zero_grad()
        loss = method(data).loss
        loss.backward()
        optimiser.step()
    assert float(loss) < float(first) - 0.5


def test_learned_temperature_is_clamped_at_the_maximum() -> None:
    method = CLIP(towers(), VIEWS)
    with torch.no_grad():
        method.log_logit_scale.fill_(10.0)
    assert float(method.logit_scale) == pytest.approx(100.0)


def slow_multi_positive(images, texts, owner, labels, scale):
    images, texts = F.normalize(images, dim=-1), F.normalize(texts, dim=-1)
    logits = scale * images @ texts.T
    total_i = 0.0
    for i in range(images.shape[0]):
        positives = [j for j in range(texts.shape[0]) if labels[owner[j]] == labels[i]]
        log_p = logits[i].log_softmax(0)
        total_i += -sum(log_p[j] for j in positives) / len(positives)
    total_t = 0.0
    for j in range(texts.shape[0]):
        positives = [i for i in range(images.shape[0]) if labels[i] == labels[owner[j]]]
        log_p = logits[:, j].log_softmax(0)
        total_t += -sum(log_p[i] for i in positives) / len(positives)
    return (total_i / images.shape[0] + total_t / texts.shape[0]) / 2


def test_multi_positive_clip_matches_a_slow_reference_with_a_repeated_item() -> None:
    method = CLIP(towers(), VIEWS, multi_positive=True, temperature=0.5)
    data = batch(5)
    data.labels = torch.tensor([0, 1, 2, 1, 3])  # rows 1 and 3 are the same item
    images = method.image_embeddings(data)
    flat = [t for texts in data.inputs["captions"] for t in texts]
    texts = method.text_embeddings(flat)
    owner = [row for row, texts_ in enumerate(data.inputs["captions"]) for _ in texts_]
    want = slow_multi_positive(images, texts, owner, data.labels.tolist(), method.logit_scale)
    got = method._multi_positive_loss(images, data, method.logit_scale)
    assert torch.allclose(got, want, atol=1e-5)


def test_siglip_starts_at_the_papers_scale_and_bias_or_at_log_inverse_batch() -> None:
    method = SigLIP(towers(), VIEWS)
    assert float(method.log_logit_scale.exp()) == pytest.approx(10.0) and float(method.logit_bias) == -10.0
    prior = SigLIP(towers(), VIEWS, bias_init="log_inverse_batch")
    out = prior(batch(8))
    assert float(prior.logit_bias) == pytest.approx(math.log(1 / 8)) and not bool(prior.bias_pending)
    out.loss.backward()
    assert prior.logit_bias.grad is not None  # the bias always takes part (DDP-safe)
    with pytest.raises(ValueError, match="method.bias_init"):
        SigLIP(towers(), VIEWS, bias_init="zero")


def test_lit_locked_tower_never_changes_and_gets_no_gradient() -> None:
    method = LiT(towers(), VIEWS)
    tower = method.encoder.image_tower
    before = {key: value.clone() for key, value in tower.state_dict().items()}
    optimiser = torch.optim.SGD([p for p in method.parameters() if p.requires_grad], lr=0.5)
    method.train()
    for _ in range(3):
        optimiser.zero_grad()
        method(batch()).loss.backward()
        optimiser.step()
    assert not tower.training  # batch norm stays in eval mode
    assert all(parameter.grad is None and not parameter.requires_grad for parameter in tower.parameters())
    assert all(torch.equal(before[key], value) for key, value in tower.state_dict().items())  # running stats too
    assert method.encoder.image_head.weight.grad is not None  # its head trains
    assert method.encoder.locked == {"image": True, "text": False}


def test_locked_text_tower_encodes_each_caption_once() -> None:
    calls = []

    class Counting(BagOfWords):
        def encode(self, texts, batch_size=64, normalize=False):
            calls.extend(texts)
            return super().encode(texts)

    tower = LockedTextTower(Counting())
    first = tower(["a b", "c", "a b"])
    again = tower(["c", "a b"])
    assert calls == ["a b", "c"] and torch.equal(first[1], again[0])
    assert not any(parameter.requires_grad for parameter in tower.parameters())


def test_random_shift_moves_images_by_at_most_pad_pixels() -> None:
    image = torch.ones(1, 1, 9, 9)
    image[0, 0, 4, 4] = 0.0
    shift = RandomShift(pad=2)
    for _ in range(20):
        moved = shift(image)
        y, x = (moved[0, 0] == 0).nonzero()[0].tolist()
        assert abs(y - 4) <= 2 and abs(x - 4) <= 2 and moved.shape == image.shape
    with pytest.raises(ValueError, match="unknown image-text preset"):
        build_image_text_views("flip")


# --- a user's own folder of images with captions.jsonl ---


def _folder(tmp_path, lines: list[str], images: int = 5):
    from PIL import Image

    for i in range(images):
        Image.new("RGB", (12, 10), (40 * i, 0, 255 - 40 * i)).save(tmp_path / f"img{i}.png")
    (tmp_path / "captions.jsonl").write_text("\n".join(lines) + "\n")
    return tmp_path


def test_image_captions_folder_reads_several_captions_per_image_and_splits_by_image(tmp_path) -> None:
    from contrastkit.data import load_dataset

    lines = [f'{{"image": "img{i}.png", "caption": "colour {i}"}}' for i in range(5)]
    lines.append('{"image": "img0.png", "captions": ["zero", "first"]}')
    splits = load_dataset("image-captions", data_dir=str(_folder(tmp_path, lines)), image_size=8, test_fraction=0.4)
    assert splits.modality == "image-text" and splits.train.input_shape == (3, 8, 8)
    assert len(splits.train) == 3 and len(splits.test) == 2
    every = splits.train.captions + splits.test.captions
    assert ["colour 0", "zero", "first"] in every  # lines of one image are merged


@pytest.mark.parametrize("line, message", [
    ("not json", r"captions.jsonl:6: not JSON"),
    ('{"image": "img0.png"}', r"captions.jsonl:6: expected"),
    ('{"image": "missing.png", "caption": "x"}', r"missing.png is named in the captions file but does not exist"),
])
def test_a_bad_captions_line_is_one_error_naming_file_and_line(tmp_path, line, message) -> None:
    from contrastkit.data import load_dataset

    lines = [f'{{"image": "img{i}.png", "caption": "colour {i}"}}' for i in range(5)] + [line]
    with pytest.raises((ValueError, FileNotFoundError), match=message):
        load_dataset("image-captions", data_dir=str(_folder(tmp_path, lines)), image_size=8)
