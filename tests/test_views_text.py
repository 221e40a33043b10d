"""Text views: layout of the re-packed batch, each view's defining property, presets, determinism, errors."""

import math
import re

import pytest
import torch

from contrastkit.views.text import (
    TEXT_VIEW_PRESETS,
    Compose,
    IndependentCrop,
    TokenMask,
    TokenTypeReplacement,
    WordDeletion,
    build_text_views,
    text_view_preset_names,
)

CLS, SEP, PAD, MASK = 101, 102, 0, 103


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def make_batch(lengths, width=None, with_types=False):
    """[CLS] content [SEP] [PAD]... rows; content ids are unique (1000 + 100 * row + position)."""
    width = width or max(lengths)
    ids = torch.full((len(lengths), width), PAD, dtype=torch.long)
    mask = torch.zeros((len(lengths), width), dtype=torch.long)
    for row, length in enumerate(lengths):
        ids[row, 0] = CLS
        ids[row, 1 : length - 1] = 1000 + 100 * row + torch.arange(1, length - 1)
        ids[row, length - 1] = SEP
        mask[row, :length] = 1
    batch = {"input_ids": ids, "attention_mask": mask}
    if with_types:
        batch["token_type_ids"] = (ids % 2) * mask
    return batch


def rows_of(batch):
    """Real tokens of each row as Python lists (a slow, obvious reading)."""
    return [
        batch["input_ids"][row, : int(batch["attention_mask"][row].sum())].tolist()
        for row in range(batch["input_ids"].shape[0])
    ]


def assert_layout(out, lengths_in=None):
    """[CLS] first, [SEP] last real token, padding after, mask consistent, no all-pad trailing column."""
    ids, mask = out["input_ids"], out["attention_mask"]
    assert ids.shape == mask.shape and ids.dtype == torch.long
    lengths = mask.sum(dim=1)
    assert int(lengths.max()) == ids.shape[1]  # trailing all-padding columns were trimmed
    for row in range(ids.shape[0]):
        length = int(lengths[row])
        assert mask[row, :length].eq(1).all() and mask[row, length:].eq(0).all()
        assert ids[row, 0] == CLS and ids[row, length - 1] == SEP
        assert ids[row, length:].eq(PAD).all()
        assert not ids[row, 1 : length - 1].eq(CLS).any() and not ids[row, 1 : length - 1].eq(SEP).any()
        if lengths_in is not None and lengths_in[row] > 2:
            assert length >= 3  # at least one content token survives


LENGTHS = [12, 2, 3, 30, 7, 20]
VIEWS = [
    lambda g: IndependentCrop(generator=g),
    lambda g: WordDeletion(0.3, generator=g),
    lambda g: WordDeletion(1.0, generator=g),
    lambda g: TokenMask(0.2, 0.9, mask_token_id=MASK, generator=g),
    lambda g: Compose([IndependentCrop(generator=g), WordDeletion(0.1, generator=g)]),
]


@pytest.mark.parametrize("make_view", VIEWS)
def test_layout_and_input_untouched(make_view):
    batch = make_batch(LENGTHS, width=35, with_types=True)
    before = {key: value.clone() for key, value in batch.items()}
    view = make_view(_gen(1))
    for _ in range(5):
        out = view(batch)
        assert set(out) == set(batch)
        assert_layout(out, LENGTHS)
        if isinstance(view, TokenMask):  # tokens stay in place: so do their types
            assert torch.equal(out["token_type_ids"], batch["token_type_ids"][:, : out["input_ids"].shape[1]])
        else:  # token_type_ids travel with their tokens (they were ids % 2) and are 0 on padding
            assert torch.equal(out["token_type_ids"], (out["input_ids"] % 2) * out["attention_mask"])
        for key in batch:
            assert torch.equal(batch[key], before[key])
        out["input_ids"].add_(1)  # the output owns its tensors
        assert torch.equal(batch["input_ids"], before["input_ids"])


def test_crop_is_a_contiguous_span_within_the_ratio_bounds():
    batch = make_batch(LENGTHS)
    crop = IndependentCrop(0.2, 0.6, generator=_gen(2))
    originals = rows_of(batch)
    for _ in range(40):
        out = crop(batch)
        for original, cropped in zip(originals, rows_of(out), strict=True):
            content, span = original[1:-1], cropped[1:-1]
            if not content:
                assert cropped == [CLS, SEP]
                continue
            lowest = max(1, math.floor(0.2 * len(content)))
            highest = max(1, math.floor(0.6 * len(content)))
            assert lowest <= len(span) <= highest
            start = content.index(span[0])
            assert content[start : start + len(span)] == span


def test_crop_start_is_uniform_over_every_valid_position():
    # 10 content tokens, span 5: starts 0..5 must all occur (catches off-by-one at either end).
    batch = make_batch([12] * 64)
    out = IndependentCrop(0.5, 0.5, generator=_gen(3))(batch)
    starts = {row[1] - 1001 - 100 * index for index, row in enumerate(rows_of(out))}
    assert all(len(row) == 7 for row in rows_of(out))
    assert starts == set(range(6))


def test_two_crops_are_independent():
    batch = make_batch([40] * 8)
    crop = IndependentCrop(generator=_gen(4))
    assert not torch.equal(crop(batch)["input_ids"], crop(batch)["input_ids"])


def test_deletion_keeps_order_and_deletes_at_rate_p():
    batch = make_batch([2002] * 4)
    out = WordDeletion(0.1, generator=_gen(5))(batch)
    kept = 0
    for original, deleted in zip(rows_of(batch), rows_of(out), strict=True):
        content = deleted[1:-1]
        assert content == sorted(content) and len(set(content)) == len(content)  # an ordered subsequence
        assert set(content) <= set(original[1:-1])
        kept += len(content)
    assert abs(1 - kept / (4 * 2000) - 0.1) < 0.015


def test_deletion_with_p_one_keeps_exactly_one_content_token():
    batch = make_batch([9] * 50)
    out = WordDeletion(1.0, generator=_gen(6))(batch)
    survivors = [row[1] - 1000 - 100 * index for index, row in enumerate(rows_of(out))]
    assert all(len(row) == 3 for row in rows_of(out))
    assert set(survivors) == set(range(1, 8))  # the rescued token is drawn from every content position


def test_mask_count_matches_the_drawn_ratio():
    batch = make_batch(LENGTHS)
    masker = TokenMask(0.0, 1.0, mask_token_id=MASK)
    masked, ratios = masker.draw_mask(batch, generator=_gen(7))
    out = masker(batch, generator=_gen(7))  # same draws
    for row, length in enumerate(LENGTHS):
        content = length - 2
        expected = min(math.floor(float(ratios[row]) * content + 0.5), max(content - 1, 0))
        assert int(masked[row].sum()) == expected
        assert not masked[row, 0] and not masked[row, length - 1:].any()
        changed = out["input_ids"][row] != batch["input_ids"][row, : out["input_ids"].shape[1]]
        assert torch.equal(changed, masked[row, : out["input_ids"].shape[1]])
        assert out["input_ids"][row][changed].eq(MASK).all()
    assert torch.equal(out["attention_mask"].sum(1), batch["attention_mask"].sum(1))


def test_mask_fixed_ratio_and_spread():
    batch = make_batch([22] * 200)
    out = TokenMask(0.5, 0.5, mask_token_id=MASK, generator=_gen(8))(batch)
    per_row = out["input_ids"].eq(MASK).sum(dim=1)
    assert per_row.eq(10).all()
    # 0.5 * 21 = 10.5 rounds half up to 11; 0.5 * 1 would round to 1, but one content token must stay.
    odd = TokenMask(0.5, 0.5, mask_token_id=MASK, generator=_gen(8))(make_batch([23, 3, 4]))
    assert odd["input_ids"].eq(MASK).sum(dim=1).tolist() == [11, 0, 1]
    per_position = out["input_ids"][:, 1:21].eq(MASK).float().mean(dim=0)
    assert per_position.min() > 0.3 and per_position.max() < 0.7  # uniform positions


def test_seeded_generator_is_deterministic_and_call_generator_wins():
    batch = make_batch(LENGTHS)
    for make_view in VIEWS:
        first, second = make_view(_gen(9))(batch), make_view(_gen(9))(batch)
        assert torch.equal(first["input_ids"], second["input_ids"])
        view = make_view(_gen(10))
        override = view(batch, generator=_gen(9))
        assert torch.equal(override["input_ids"], first["input_ids"])


def test_empty_batch_and_rows_without_content():
    empty = {"input_ids": torch.zeros(0, 5, dtype=torch.long), "attention_mask": torch.zeros(0, 5, dtype=torch.long)}
    assert IndependentCrop()(empty)["input_ids"].shape == (0, 5)
    only_specials = make_batch([2, 2])
    for make_view in VIEWS:
        assert rows_of(make_view(None)(only_specials)) == [[CLS, SEP], [CLS, SEP]]


def test_bool_attention_mask_keeps_its_dtype():
    batch = make_batch(LENGTHS)
    batch["attention_mask"] = batch["attention_mask"].bool()
    out = IndependentCrop(generator=_gen(0))(batch)
    assert out["attention_mask"].dtype == torch.bool


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda b: b.pop("attention_mask"), "missing"),
        (lambda b: b.update(attention_mask=b["attention_mask"][:, :-1]), "same shape"),
        (lambda b: b.update(input_ids=b["input_ids"].float()), "integer"),
        (lambda b: b.update(input_ids=b["input_ids"][0]), r"\[B, L\]"),
        (lambda b: b.update(attention_mask=b["attention_mask"].flip(1)), "right padding"),
        (lambda b: b.update(attention_mask=b["attention_mask"] * 2), "0/1"),
        (lambda b: b["attention_mask"][1].zero_(), "at least"),
        (lambda b: b.update(token_type_ids=torch.zeros(3)), "token_type_ids"),
    ],
)
def test_bad_batches(mutate, message):
    batch = make_batch(LENGTHS)
    mutate(batch)
    with pytest.raises(ValueError, match=message):
        IndependentCrop()(batch)


def test_bad_parameters():
    for build in (
        lambda: IndependentCrop(-0.1, 0.5),
        lambda: IndependentCrop(0.6, 0.5),
        lambda: IndependentCrop(0.1, 1.5),
        lambda: WordDeletion(1.1),
        lambda: TokenMask(0.0, 0.3),
        lambda: TokenMask(0.4, 0.3, mask_token_id=MASK),
        lambda: TokenTypeReplacement(0.5, 0.2),
        lambda: TokenTypeReplacement(seed=1, generator=_gen()),
        lambda: IndependentCrop(generator=3),
        lambda: Compose([lambda batch: batch]),
    ):
        with pytest.raises(ValueError, match="expected"):
            build()
    with pytest.raises(ValueError, match="torch.Generator"):
        IndependentCrop()(make_batch(LENGTHS), generator="seed")


# -- type replacement --------------------------------------------------------------------

CODE = 'def add(x, y=2):\n    # keep this comment\n    return x + "s"  # tail\n'


def test_type_replacement_of_every_token_keeps_spacing_and_comments():
    (out,) = TokenTypeReplacement(1.0, 1.0, seed=0)([CODE])
    assert out == (
        "keyword identifier operator identifier operator identifier operator number operator operator\n"
        "    # keep this comment\n"
        "    keyword identifier operator string  # tail\n"
    )


def test_type_replacement_fraction_and_positions():
    replace = TokenTypeReplacement(0.5, 0.5, seed=1)
    spans = replace.typed_spans(CODE)
    assert len(spans) == 14
    words = {word for _, _, word in spans}
    assert words == {"keyword", "identifier", "operator", "number", "string"}
    type_word = re.compile(r"\b(?:keyword|identifier|operator|number|string)\b")
    assert not type_word.search(CODE)
    outputs = replace([CODE] * 20)
    for text in outputs:
        # Exactly floor(0.5 * 14 + 0.5) = 7 tokens became type words; comments stay.
        assert len(type_word.findall(text)) == 7
        assert "# keep this comment" in text and "# tail" in text
        # Every token that was not replaced is still there, in order.
        kept = [CODE[start:end] for start, end, _ in spans]
        remaining = [tok for tok in re.findall(r"\w+|\S", type_word.sub(" ", text.split("#")[0]))]
        assert all(tok in kept for tok in remaining)
    assert len(set(outputs)) > 1  # positions are random


def test_type_replacement_zero_ratio_is_identity_and_seed_is_deterministic():
    texts = [CODE, "x.y(3)", "", "not python: it's (unbalanced"]
    assert TokenTypeReplacement(0.0, 0.0, seed=0)(texts) == texts
    assert TokenTypeReplacement(seed=5)(texts * 3) == TokenTypeReplacement(seed=5)(texts * 3)
    assert TokenTypeReplacement(1.0, 1.0)(["a.b"]) == ["identifier operator identifier"]


def test_type_replacement_falls_back_to_words_for_non_python():
    texts = ["it's a 'broken (string", "x = '''never closed", "if x:\n  y\n z\n", "it's fine"]
    out = TokenTypeReplacement(1.0, 1.0, seed=0)(texts)
    assert out[3] == "identifier identifier"  # an error token (a lone quote) means: not Python
    assert out[0] == "identifier identifier identifier identifier"
    assert out[1] == "identifier operator identifier identifier"
    assert out[2].split() == ["keyword", "identifier", "identifier", "identifier"]  # dedent error: words
    half = TokenTypeReplacement(0.5, 0.5, seed=0)(["one two three four"])[0].split()
    assert len(half) == 4 and half.count("identifier") == 2


def test_type_replacement_bad_input():
    with pytest.raises(ValueError, match="list of strings"):
        TokenTypeReplacement()("x = 1")
    with pytest.raises(ValueError, match="index 1"):
        TokenTypeReplacement()(["x", 3])


# -- presets -----------------------------------------------------------------------------


def test_presets():
    assert text_view_preset_names() == sorted(TEXT_VIEW_PRESETS) == ["cocosoda", "contriever", "contriever-documents", "crop", "dropout"]
    batch = make_batch(LENGTHS)
    view_a, view_b = build_text_views("dropout")
    assert torch.equal(view_a(batch)["input_ids"], batch["input_ids"])
    for preset in ("contriever", "crop", "cocosoda"):
        view_a, view_b = build_text_views(preset, mask_token_id=MASK, generator=_gen(11))
        assert view_a is not view_b
        out_a, out_b = view_a(batch), view_b(batch)
        assert_layout(out_a, LENGTHS)
        assert_layout(out_b, LENGTHS)
        same_shape = out_a["input_ids"].shape == out_b["input_ids"].shape
        assert not same_shape or not torch.equal(out_a["input_ids"], out_b["input_ids"])
    steps = build_text_views("contriever", crop_ratio=(0.2, 0.3), deletion_p=0.05)[0].views
    assert isinstance(steps[0], IndependentCrop) and steps[0].max_ratio == 0.3
    assert isinstance(steps[1], WordDeletion) and steps[1].p == 0.05


def test_preset_errors():
    with pytest.raises(ValueError, match="cocosoda, contriever, contriever-documents, crop, dropout"):
        build_text_views("simcse")
    with pytest.raises(ValueError, match="mask_token_id"):
        build_text_views("cocosoda")
    with pytest.raises(ValueError, match="crop_ratio"):
        build_text_views("crop", crop_ratio=0.3)
    with pytest.raises(ValueError, match="min_ratio"):
        build_text_views("cocosoda", mask_token_id=MASK, mask_ratio=(0.5, 0.1))


def test_contriever_documents_preset_leaves_queries_alone_and_crops_documents():
    ids = torch.tensor([[101] + list(range(1000, 1040)) + [102]])
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    query_view, document_view = build_text_views("contriever-documents", crop_ratio=[0.5, 0.5], deletion_p=0.0)
    assert torch.equal(query_view(batch)["input_ids"], ids)
    cropped = document_view(batch)["input_ids"]
    assert cropped.shape[1] == 2 + 20  # [CLS] + half of the 40 content tokens + [SEP]
