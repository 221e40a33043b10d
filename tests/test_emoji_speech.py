"""The emoji-speech data set (Symile-M3's construction) and a short Symile run on it (needs espeak-ng and the font)."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from contrastkit.data.emoji import EMOJI_FONT

pytest.importorskip("emoji")
pytestmark = [
    pytest.mark.skipif(not EMOJI_FONT.is_file(), reason="fonts-noto-color-emoji is not installed"),
    pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed (make audio-tools)"),
]

SMALL = {"num_languages": 3, "num_classes": 12, "num_words": 3, "train_size": 60, "test_size": 30,
         "clips_per_language": 4, "test_clips_per_language": 3, "image_size": 16, "clip_seconds": 0.5,
         "progress": False}


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("emoji-speech-cache")


@pytest.fixture(scope="module")
def splits(cache):
    from contrastkit.data import load_dataset

    return load_dataset("emoji-speech", cache_dir=str(cache), **SMALL)  # 3 x 7 = 21 utterances


def test_synthesize_speaks_at_16_khz() -> None:
    from contrastkit.data.emoji_speech import synthesize

    wave = synthesize("bonjour", "fr")
    assert wave.dim() == 1 and 0.1 * 16000 < wave.numel() < 3 * 16000  # a word lasts a fraction of a second
    assert float(wave.abs().max()) > 0.05 and float(wave.abs().max()) <= 1.0
    with pytest.raises(ValueError, match="no espeak-ng voice for language 'xx'"):
        synthesize("x", "xx")


def test_tuples_follow_the_symile_m3_construction(splits) -> None:
    train, test = splits.train, splits.test
    assert splits.modality == "tuples" and train.fields == ["image", "audio", "text"]
    assert train.field_specs["audio"] == {"kind": "audio", "shape": [8000]}  # 0.5 s at 16 kHz
    for dataset in (train, test):
        for row in range(len(dataset)):
            c, w = int(dataset.rows["image"][row]), int(dataset.language_ids[row])
            words = dataset.tables["text"][int(dataset.rows["text"][row])].split(" | ")
            assert len(words) == 3 and dataset.class_words[c][dataset.languages[w]] in words
            # the other words: other classes, each in another language ("disjoint")
            others = [(k, v) for k, names in enumerate(dataset.class_words) for v, name in names.items()
                      if name in words and (k, v) != (c, dataset.languages[w])]
            assert {k for k, _ in others}.isdisjoint({c}) and dataset.languages[w] not in {v for _, v in others}
            # the audio speaks language w, and not the name of any class of the task
            clip = int(dataset.rows["audio"][row])
            assert dataset.clip_languages[clip] == w
            assert all(dataset.clip_texts[clip] not in names.values() for names in dataset.class_words)
    # test clips are unheard in training; classes are shared (the paper's split)
    assert set(train.rows["audio"].tolist()).isdisjoint(test.rows["audio"].tolist())
    assert train.classes == test.classes == list(range(12))
    batch = train.__getitems__([0, 1, 2])
    assert batch.inputs["image"].shape == (3, 3, 16, 16) and batch.inputs["audio"].shape == (3, 8000)
    assert len(batch.inputs["text"]) == 3 and "missing" not in batch.inputs


def test_cache_is_reused_and_carries_licences(cache, monkeypatch) -> None:
    from contrastkit.data import emoji_speech, load_dataset

    manifests = list(cache.glob("*/manifest.json"))
    assert len(manifests) == 1
    manifest = json.loads(manifests[0].read_text())
    assert manifest["clips"] == 21 and manifest["shape"] == [21, 8000]
    assert "Open Font License 1.1" in manifest["licences"]["images"]
    assert "BSD" in manifest["licences"]["names"] and "espeak-ng" in manifest["licences"]["speech"]

    def refuse(*args, **kwargs):
        raise AssertionError("espeak-ng ran although the cache holds every clip")

    monkeypatch.setattr(emoji_speech, "synthesize", refuse)
    again = load_dataset("emoji-speech", cache_dir=str(cache), **SMALL)
    assert len(again.train) == 60


def test_missing_espeak_is_one_clear_error(monkeypatch, tmp_path) -> None:
    from contrastkit.data import emoji_speech

    monkeypatch.setattr(emoji_speech.shutil, "which", lambda name: None)
    with pytest.raises(FileNotFoundError, match="make audio-tools"):
        emoji_speech.load_emoji_speech(cache_dir=str(tmp_path), **SMALL)


def test_class_split_holds_unseen_classes_and_missing_values_show_placeholders(cache) -> None:
    from contrastkit.data import load_dataset

    splits = load_dataset("emoji-speech", cache_dir=str(cache), split="classes", missing_probability=0.5, **SMALL)
    train, test = splits.train, splits.test
    assert set(train.classes).isdisjoint(test.classes) and len(test.classes) == 3  # a quarter of 12
    assert set(train.rows["image"].tolist()) <= set(train.classes)
    batch = train.__getitems__(list(range(40)))
    missing = batch.inputs["missing"]
    assert 0 < int(missing["text"].sum()) < 40 and test.missing is None  # test tuples stay complete
    assert all(text == "[MISSING]" for text, gone in zip(batch.inputs["text"], missing["text"].tolist()) if gone)
    placeholder = train.tables["image"][train.placeholder_index["image"]]
    assert torch.equal(batch.inputs["image"][missing["image"]], placeholder.expand(int(missing["image"].sum()), -1, -1, -1))
    with pytest.raises(ValueError, match="data.num_words"):
        load_dataset("emoji-speech", cache_dir=str(cache), **{**SMALL, "num_words": 4})


@pytest.mark.parametrize("method", ["symile", "pairwise-clip"])
def test_recipe_trains_and_prints_its_baselines(cache, tmp_path, method) -> None:
    from contrastkit.train.config import load_config
    from contrastkit.train.run import run

    overrides = [f"method={method}", "train.steps=4", "train.batch_size=16", "train.checkpoint_every=0",
                 "train.progress=false", "eval.bootstrap=20", f"data.cache_dir={cache}"]
    overrides += [f"data.{key}={value}" for key, value in SMALL.items()]
    run_dir, _ = run(load_config("symile-emoji-speech", overrides), tmp_path / "run", verbose=False)
    saved = json.loads((run_dir / "metrics.json").read_text())
    assert saved["method"] == method and set(saved["baselines"]) == {"random", "untrained"}
    for scores in (saved, *saved["baselines"].values()):
        assert 0.0 <= scores["zero_shot_top1"] <= scores["zero_shot_top5"] <= 1.0
        assert {"image_top1", "audio_top1", "text_top1"} <= set(scores)
