"""The emoji data set and a short CLIP run on it through the generic trainer (needs the font and `emoji`)."""

from __future__ import annotations

import json

import pytest

from contrastkit.data.emoji import EMOJI_FONT

pytest.importorskip("emoji")
pytestmark = pytest.mark.skipif(not EMOJI_FONT.is_file(), reason="fonts-noto-color-emoji is not installed")


def test_emoji_splits_hold_unseen_names_and_render_glyphs() -> None:
    from contrastkit.data import load_dataset

    splits = load_dataset("emoji", image_size=16)
    train, test = splits.train, splits.test
    assert splits.modality == "image-text" and train.input_shape == (3, 16, 16)
    assert len(train) > 1000 and len(test) > 300
    train_names = {text for texts in train.captions for text in texts[:1]}
    assert not train_names & set(test.class_names)  # every test name is unseen
    assert 0.0 <= float(test.images.min()) and float(test.images.max()) <= 1.0
    assert float(test.images.std(dim=(1, 2, 3)).min()) > 0.01  # every glyph drew something on the white
    other = load_dataset("emoji", image_size=16, seed=1)
    assert set(other.test.class_names) != set(test.class_names)  # the split follows the seed
    with pytest.raises(ValueError, match="data.test_fraction"):
        load_dataset("emoji", test_fraction=1.5)


def test_emoji_languages_add_their_names() -> None:
    # emoji >= 2 keeps only English in EMOJI_DATA until a language is loaded: a silent no-op once.
    from contrastkit.data.emoji import emoji_items

    english = {item.character: item.captions for item in emoji_items()}
    french = {item.character: item.captions for item in emoji_items(languages=("en", "fr"))}
    assert "visage rieur" in french["\N{GRINNING FACE}"] and "visage rieur" not in english["\N{GRINNING FACE}"]
    assert sum(len(french[c]) > len(english[c]) for c in english) > 0.9 * len(english)


def test_clip_emoji_recipe_trains_and_reports_baselines(tmp_path) -> None:
    from contrastkit.train.config import load_config
    from contrastkit.train.run import run

    config = load_config("clip-emoji", ["train.steps=6", "train.batch_size=64", "train.checkpoint_every=0",
                                        "train.progress=false", "data.image_size=16", "eval.bootstrap=50"])
    run_dir, _ = run(config, tmp_path / "run", verbose=False)
    saved = json.loads((run_dir / "metrics.json").read_text())
    assert saved["method"] == "clip" and set(saved["baselines"]) == {"random", "untrained"}
    for scores in (saved, *saved["baselines"].values()):
        assert 0.0 <= scores["i2t_r@1"] <= scores["i2t_r@5"] <= scores["i2t_r@10"] <= 1.0
        assert scores["zero_shot_top1_ci_low"] <= scores["zero_shot_top1"] <= scores["zero_shot_top1_ci_high"]


@pytest.mark.parametrize("method", ["siglip", "lit"])
def test_siglip_and_lit_train_from_the_same_recipe(tmp_path, method) -> None:
    from contrastkit.train.config import load_config
    from contrastkit.train.run import run

    config = load_config("clip-emoji", [f"method={method}", "train.steps=3", "train.batch_size=32",
                                        "train.checkpoint_every=0", "train.progress=false", "data.image_size=16",
                                        "eval.bootstrap=0", "eval.baselines=false"])
    run_dir, _ = run(config, tmp_path / "run", verbose=False)
    assert json.loads((run_dir / "metrics.json").read_text())["method"] == method
