"""The ``emoji-speech`` data set: Symile-M3's construction with emoji glyphs and espeak-ng speech.

Symile-M3 (Saporta et al., NeurIPS 2024, section 5.2; ``experiments/data_processing/symile_m3/
generate_data.py`` in github.com/rajesh-lab/symile) is a tri-modal task in which no single
modality predicts another, but two together do. Per sample:

1. a language ``w`` is drawn uniformly, and an *audio* clip in ``w`` (Common Voice: someone
   reading a sentence in ``w``, unrelated to anything else in the sample);
2. a class ``c`` is drawn uniformly, and an *image* of ``c`` (ImageNet);
3. the *text* is ``num_words`` words, shuffled and joined: the name of ``c`` in ``w``, plus
   ``num_words - 1`` names of *other* classes in *other* languages ("disjoint": every word
   a different class and a different language).

The zero-shot task predicts the image from the text and the audio: the text names
``num_words`` classes in ``num_words`` languages, and only the audio says which language,
hence which word, is the image's. Text alone narrows the class to ``num_words`` candidates,
audio alone not at all; pairwise CLIP sees only those pairs.

Here, with what is installed:

* image: the Noto Color Emoji glyph of ``c`` (Debian ``fonts-noto-color-emoji``, SIL OFL 1.1),
  rendered by :func:`contrastkit.data.emoji.render_emoji`;
* class names in each language from the PyPI ``emoji`` package (BSD), whose names exist in
  14 languages; ``languages`` are those espeak-ng also speaks (``en de es fr ru it pt tr id``
  by default order; ``espeak-ng --voices``); five by default, as Symile-M3's middle setting;
* audio: ``espeak-ng -v w --stdout`` (GPL-3.0-or-later; its output is data, no licence
  constraint is inherited) speaking, in ``w``, the name of a random emoji that is *not* one of
  the task's classes: like a Common Voice sentence, it carries the language and nothing of
  ``c``. Clips are resampled to 16 kHz, cropped or zero-padded to ``clip_seconds`` and stored
  as waveforms ``[T]``; the audio tower's front end (:class:`~contrastkit.nn.audio.AudioCNN`'s
  :class:`~contrastkit.nn.audio.LogMelSpectrogram`) turns them into log-mel spectrograms (a
  ``torch.stft`` per step, milliseconds; ``data/`` may not import ``nn/``). Each language
  has a pool of ``clips_per_language`` training clips and a disjoint pool for test (another
  set of sentences), as Symile-M3 samples clips per language.

Split: ``split="samples"`` (default, as the paper): train and test tuples are drawn
independently over the same classes (the paper splits its generated samples at random); test
tuples are new combinations with unheard clips. ``split="classes"``: a quarter of the classes
(by emoji *family*, as :mod:`contrastkit.data.emoji` splits) are held out, so test classes
are unseen; a byte-level text tower cannot know an unseen class's name, so expect chance.

The clips are synthesised once and cached (``cache_dir``, default
``$XDG_CACHE_HOME/contrastkit/emoji-speech``, keyed by the settings), written atomically with
a manifest of settings, counts, versions and licences; about 36 ms an utterance with a
progress bar. Missing espeak-ng is one error naming ``make audio-tools``.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import os
import random
import shutil
import subprocess
import tempfile
import wave
from pathlib import Path

import numpy as np
import torch

from contrastkit.data.emoji import EMOJI_FONT, _rendered, emoji_items
from contrastkit.data.registry import DatasetSplits, register_dataset
from contrastkit.data.tuples import TupleDataset
from contrastkit.utils.atomic import atomic_write_json, replace_directory
from contrastkit.utils.progress import Progress

__all__ = ["SPEECH_LANGUAGES", "espeak_version", "load_emoji_speech", "speech_clips", "synthesize"]

#: Languages both the emoji package names emoji in and espeak-ng speaks, in default order.
SPEECH_LANGUAGES = ("en", "de", "es", "fr", "ru", "it", "pt", "tr", "id")
#: espeak-ng voice of each language code.
_VOICES = {"en": "en", "de": "de", "es": "es", "fr": "fr", "ru": "ru", "it": "it", "pt": "pt", "tr": "tr", "id": "id"}
_FORMAT = 2
_SAMPLE_RATE = 16000
_MANIFEST = "manifest.json"
_ARRAYS = "waves.npy"
_INSTALL_HINT = ("espeak-ng is not installed: run `make audio-tools` (Debian: apt-get install "
                 "--no-install-recommends espeak-ng)")
_LICENCES = {
    "images": "Noto Color Emoji (Debian fonts-noto-color-emoji), SIL Open Font License 1.1",
    "names": "PyPI emoji package, BSD-3-Clause",
    "speech": "synthesised with espeak-ng (GPL-3.0-or-later); the generated audio carries no licence of its own",
}


def _espeak() -> str:
    path = shutil.which("espeak-ng")
    if path is None:
        raise FileNotFoundError(_INSTALL_HINT)
    return path


@functools.lru_cache(maxsize=1)
def espeak_version() -> str:
    """The installed espeak-ng's version line (``FileNotFoundError`` naming ``make audio-tools`` without it)."""
    result = subprocess.run([_espeak(), "--version"], capture_output=True, text=True, check=True)
    return result.stdout.strip()


def _read_wav(data: bytes) -> tuple[np.ndarray, int]:
    """Mono float samples in [-1, 1] and the rate of a 16-bit WAV (espeak's --stdout header has no length)."""
    with wave.open(io.BytesIO(data)) as reader:
        rate, width, channels = reader.getframerate(), reader.getsampwidth(), reader.getnchannels()
        frames = reader.readframes(reader.getnframes())  # a streamed header overstates: reads to the end
    if width != 2:
        raise ValueError(f"espeak-ng: expected 16-bit samples, got {8 * width}-bit")
    samples = np.frombuffer(frames[: len(frames) // (2 * channels) * 2 * channels], dtype="<i2").astype(np.float32)
    return samples.reshape(-1, channels).mean(1) / 32768.0, rate


def synthesize(text: str, language: str, *, sample_rate: int = _SAMPLE_RATE) -> torch.Tensor:
    """espeak-ng speaking ``text`` in ``language``: a waveform ``[T]`` at ``sample_rate`` (linear resampling)."""
    if language not in _VOICES:
        raise ValueError(f"emoji-speech: no espeak-ng voice for language {language!r}; expected one of "
                         f"{', '.join(SPEECH_LANGUAGES)}")
    result = subprocess.run([_espeak(), "-v", _VOICES[language], "--stdout", text], capture_output=True, check=False)
    if result.returncode != 0 or not result.stdout:
        raise RuntimeError(f"espeak-ng -v {_VOICES[language]} failed on {text!r}: "
                           f"{result.stderr.decode(errors='replace').strip()}")
    samples, rate = _read_wav(result.stdout)
    if rate != sample_rate and samples.size > 1:
        length = max(1, round(samples.size * sample_rate / rate))
        samples = np.interp(np.arange(length) * (rate / sample_rate), np.arange(samples.size), samples)
    return torch.from_numpy(np.ascontiguousarray(samples, dtype=np.float32))


def _fit(wave_: torch.Tensor, length: int) -> torch.Tensor:
    """Crop to ``length`` samples (from the start: the utterance begins there) or zero-pad at the end."""
    if wave_.numel() >= length:
        return wave_[:length]
    return torch.cat([wave_, wave_.new_zeros(length - wave_.numel())])


def _default_cache_dir() -> Path:
    root = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(root) / "contrastkit" / "emoji-speech"


def speech_clips(sentences: dict[str, list[str]], *, clip_seconds: float = 1.5,
                 cache_dir: str | Path | None = None, progress: bool = True) -> tuple[torch.Tensor, dict]:
    """Waveforms of espeak-ng speaking each language's sentences at 16 kHz, cached on disk.

    Args:
        sentences: ``{language: [text, ...]}``, spoken in that language, in order.
        clip_seconds: every clip is cropped or padded to this length.
        cache_dir: the cache folder (default ``$XDG_CACHE_HOME/contrastkit/emoji-speech``).
        progress: show a progress bar while synthesising.

    Returns:
        ``(waves [U, T], manifest)``, rows in language order then sentence order.
    """
    settings = {"format": _FORMAT, "sample_rate": _SAMPLE_RATE, "clip_seconds": float(clip_seconds),
                "sentences": sentences}
    version = espeak_version()
    key = hashlib.sha256(json.dumps([settings, version], sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:16]
    folder = Path(cache_dir).expanduser() if cache_dir is not None else _default_cache_dir()
    target = folder / key
    if (target / _MANIFEST).is_file() and (target / _ARRAYS).is_file():
        manifest = json.loads((target / _MANIFEST).read_text("utf-8"))
        arrays = np.load(target / _ARRAYS, allow_pickle=False)
        if manifest.get("sha256") == hashlib.sha256(arrays.tobytes()).hexdigest():
            return torch.from_numpy(arrays), manifest
        # A corrupt cache is rebuilt below (replace_directory swaps it out whole).
    length = round(float(clip_seconds) * _SAMPLE_RATE)
    jobs = [(language, text) for language, texts in sentences.items() for text in texts]
    bar = Progress(len(jobs), enabled=progress, label="espeak-ng", unit="utterance")
    waves = []
    for done, (language, text) in enumerate(jobs, start=1):
        waves.append(_fit(synthesize(text, language), length))
        bar.update(done)
    bar.close()
    clips = torch.stack(waves).numpy().astype(np.float32)
    manifest = {
        "name": "emoji-speech audio", **{k: v for k, v in settings.items() if k != "sentences"},
        "espeak_ng": version, "clips": len(jobs), "shape": list(clips.shape),
        "languages": {language: len(texts) for language, texts in sentences.items()},
        "sha256": hashlib.sha256(clips.tobytes()).hexdigest(), "licences": _LICENCES,
        "sentences": sentences,
    }
    folder.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=folder))
    try:
        np.save(staging / _ARRAYS, clips, allow_pickle=False)
        atomic_write_json(staging / _MANIFEST, manifest)
        replace_directory(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return torch.from_numpy(clips), manifest


def _clean(name: str) -> str:
    return name.strip(":").replace("_", " ").strip()


def _names(languages: tuple[str, ...]) -> dict[str, dict[str, str]]:
    """``{emoji character: {language: name}}`` from the emoji package (its languages load lazily)."""
    import emoji as emoji_package

    for language in languages:
        if language != "en":
            emoji_package.config.load_language(language)
    return {character: {language: _clean(entry[language]) for language in languages if language in entry}
            for character, entry in emoji_package.EMOJI_DATA.items()}


@register_dataset(
    "emoji-speech",
    description="tri-modal Symile-M3 task: emoji image, espeak-ng speech in language w, text naming the "
    "class in w among other words (needs fonts-noto-color-emoji, emoji, espeak-ng)",
)
def load_emoji_speech(*, data_dir: str | Path | None = None, languages: list[str] | tuple[str, ...] | None = None,
                      num_languages: int = 5, num_classes: int = 100, num_words: int = 5, train_size: int = 8000,
                      test_size: int = 1000, clips_per_language: int = 100, test_clips_per_language: int = 40,
                      image_size: int = 32, clip_seconds: float = 1.5, split: str = "samples",
                      missing_probability: float = 0.0, seed: int = 0, font_path: str | Path | None = None,
                      cache_dir: str | Path | None = None, progress: bool = True) -> DatasetSplits:
    """Symile-M3 on emoji: (image of class c, speech in language w, text naming c in w among others).

    Args:
        data_dir: unused (everything is generated from installed packages); accepted like every data set.
        languages: the languages (see :data:`SPEECH_LANGUAGES`); default the first ``num_languages``.
        num_languages: how many languages when ``languages`` is not given (Symile-M3: 2, 5 or 10).
        num_classes: how many emoji classes (a seeded draw among those whose names differ in every language).
        num_words: words in each text (Symile-M3: 5), at most the number of languages ("disjoint").
        train_size, test_size: tuples per split.
        clips_per_language, test_clips_per_language: speech clips per language in each split's pool.
        image_size: side of the glyph images.
        clip_seconds: length of the speech clips (cropped or zero-padded).
        split: ``"samples"`` (the paper: same classes, new tuples and clips) or ``"classes"``
            (a quarter of the emoji families held out: unseen classes).
        missing_probability: each training value missing with this probability, independently per
            field (the official ``add_missingness.py``; test tuples stay complete).
        seed: seeds every draw.
        font_path: the colour emoji font (default Debian's).
        cache_dir: where the speech clips are cached.
        progress: progress bar while synthesising.
    """
    chosen = tuple(languages) if languages is not None else SPEECH_LANGUAGES[: int(num_languages)]
    unknown = sorted(set(chosen) - set(SPEECH_LANGUAGES))
    if unknown or len(set(chosen)) != len(chosen) or len(chosen) < 2:
        raise ValueError(f"data.languages: expected 2 or more distinct of {', '.join(SPEECH_LANGUAGES)}, "
                         f"got {list(chosen)}")
    if not 1 <= int(num_words) <= len(chosen):
        raise ValueError(f"data.num_words: expected 1 to {len(chosen)} (one word per language), got {num_words}")
    if split not in ("samples", "classes"):
        raise ValueError(f"data.split: expected 'samples' or 'classes', got {split!r}")
    if not 0.0 <= float(missing_probability) < 1.0:
        raise ValueError(f"data.missing_probability: expected a number in [0, 1), got {missing_probability}")
    for key, value, low in (("num_classes", num_classes, max(2, int(num_words))), ("train_size", train_size, 2),
                            ("test_size", test_size, 2), ("clips_per_language", clips_per_language, 1),
                            ("test_clips_per_language", test_clips_per_language, 1), ("image_size", image_size, 8)):
        if int(value) < low:
            raise ValueError(f"data.{key}: expected an integer >= {low}, got {value}")
    _espeak()  # fail before rendering anything when the speech tool is absent
    font = str(font_path or EMOJI_FONT)
    names = _names(chosen)
    items = [item for item in emoji_items(font) if len(set(names.get(item.character, {}).values())) == len(chosen)]
    rendered = _rendered(tuple(item.character for item in items), int(image_size), font)  # cached per process
    drawn = (rendered.amin(dim=(1, 2, 3)) < 0.9).tolist()  # emoji newer than the font draw nothing
    items = [item for item, keep in zip(items, drawn) if keep]
    images_all = rendered[torch.tensor(drawn)]
    rng = random.Random(int(seed))
    # One item per family, so that two classes never look alike (skin tones, genders).
    by_family: dict[str, int] = {}
    for row, item in enumerate(items):
        by_family.setdefault(item.family, row)
    families = sorted(by_family)
    if int(num_classes) > len(families):
        raise ValueError(f"data.num_classes: expected at most {len(families)} (emoji families), got {num_classes}")
    picked = sorted(rng.sample(families, int(num_classes)))
    class_rows = [by_family[family] for family in picked]
    class_names = [items[row].name for row in class_rows]
    images = images_all[class_rows]
    # Speech content: names of emoji that are not classes of the task (Common Voice's unrelated sentences).
    taken = set(picked)
    others = [items[row].character for family, row in sorted(by_family.items()) if family not in taken]
    clip_count = int(clips_per_language) + int(test_clips_per_language)
    if clip_count > len(others):
        raise ValueError(f"data.clips_per_language + test_clips_per_language: expected at most {len(others)}, "
                         f"got {clip_count}")
    sentences = {language: [names[character][language] for character in rng.sample(others, clip_count)]
                 for language in chosen}
    clips, manifest = speech_clips(sentences, clip_seconds=clip_seconds, cache_dir=cache_dir, progress=progress)
    clip_rows = {language: list(range(position * clip_count, (position + 1) * clip_count))
                 for position, language in enumerate(chosen)}
    if split == "classes":
        held = set(rng.sample(range(len(picked)), max(num_words, round(0.25 * len(picked)))))
        class_sets = {"train": [c for c in range(len(picked)) if c not in held], "test": sorted(held)}
        if len(class_sets["train"]) < num_words:
            raise ValueError(f"data.num_classes: split='classes' needs at least {num_words} training classes")
    else:
        class_sets = {"train": list(range(len(picked))), "test": list(range(len(picked)))}
    clip_languages = [w for w in range(len(chosen)) for _ in range(clip_count)]
    clip_texts = [text for w in chosen for text in sentences[w]]
    pools = {"train": {w: clip_rows[w][: int(clips_per_language)] for w in chosen},
             "test": {w: clip_rows[w][int(clips_per_language):] for w in chosen}}

    def tuples(part: str, size: int) -> TupleDataset:
        classes = class_sets[part]
        texts, image_rows, audio_rows, language_ids = [], [], [], []
        for _ in range(size):
            w = rng.randrange(len(chosen))
            c = rng.choice(classes)
            audio_rows.append(rng.choice(pools[part][chosen[w]]))
            other_classes = rng.sample([k for k in classes if k != c], num_words - 1)
            other_languages = rng.sample([k for k in range(len(chosen)) if k != w], num_words - 1)
            words = [names[items[class_rows[c]].character][chosen[w]]]
            words += [names[items[class_rows[k]].character][chosen[v]] for k, v in zip(other_classes, other_languages)]
            rng.shuffle(words)
            texts.append(" | ".join(words))
            image_rows.append(c)
            language_ids.append(w)
        missing = None
        if part == "train" and missing_probability > 0:
            generator = torch.Generator().manual_seed(int(seed) + 1)
            missing = {field: torch.rand(size, generator=generator) < float(missing_probability)
                       for field in ("image", "audio", "text")}
        dataset = TupleDataset({"image": images, "audio": clips, "text": texts},
                               {"image": torch.tensor(image_rows), "audio": torch.tensor(audio_rows),
                                "text": torch.arange(size)},
                               kinds={"image": "image", "audio": "audio", "text": "text"},
                               labels=torch.tensor(image_rows), missing=missing, class_names=class_names)
        # What each row was built from, for checks and analyses (not model inputs).
        dataset.language_ids = torch.tensor(language_ids)  # type: ignore[attr-defined]
        dataset.languages = list(chosen)  # type: ignore[attr-defined]
        dataset.class_words = [{w: names[items[row].character][w] for w in chosen}  # type: ignore[attr-defined]
                               for row in class_rows]
        dataset.clip_languages = clip_languages  # type: ignore[attr-defined]
        dataset.clip_texts = clip_texts  # type: ignore[attr-defined]
        dataset.classes = list(classes)  # type: ignore[attr-defined]
        return dataset

    train, test = tuples("train", int(train_size)), tuples("test", int(test_size))
    return DatasetSplits(
        train=train, test=test, num_classes=len(picked), input_shape=(3, int(image_size), int(image_size)),
        name="emoji-speech",
        description=(f"{len(train)} train / {len(test)} test tuples (image, audio, text) over {len(picked)} emoji "
                     f"classes ({split} split), {len(chosen)} languages ({', '.join(chosen)}), {num_words} words per "
                     f"text; {manifest['clips']} espeak-ng clips"),
        modality="tuples", class_names=class_names,
    )  # fmt: skip
