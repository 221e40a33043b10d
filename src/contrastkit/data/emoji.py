"""The ``emoji`` data set: Noto Color Emoji glyphs paired with their names, unseen names at test time.

Images come from Debian's ``fonts-noto-color-emoji`` (SIL OFL 1.1), rendered with Pillow at
the font's bitmap size (109 pt, a 136x128 RGBA glyph) onto white and resized; names come
from the PyPI ``emoji`` package (BSD), which also carries them in 13 more languages. Only
fully-qualified emoji that the font draws as one glyph are kept (a sequence the font cannot
join renders as two glyphs, wider than one bitmap).

Split: the ``emoji`` package carries no CLDR group or subgroup, so items are split by
*family*: the name with skin-tone and hair qualifiers removed ("thumbs up: dark skin tone"
-> "thumbs up"), each family wholly in train or test by a seeded draw. Test names are
therefore never seen in training, which is what zero-shot classification on the test split
measures.

Nothing is downloaded; everything is rendered from installed packages (about 3 ms a glyph).
"""

from __future__ import annotations

import functools
import os
import re
from pathlib import Path

import torch

from contrastkit.data.paired import ImageCaptionDataset
from contrastkit.data.registry import DatasetSplits, register_dataset

__all__ = ["EMOJI_FONT", "EmojiItem", "emoji_items", "load_emoji", "render_emoji"]

#: Where Debian's fonts-noto-color-emoji puts the font.
EMOJI_FONT = Path("/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf")
#: The font's bitmap strike: the only size a CBDT colour font renders at.
_BITMAP_POINTS, _BITMAP_SIZE = 109, (136, 128)
_SKIN_TONES = {chr(code) for code in range(0x1F3FB, 0x1F400)}
_QUALIFIER = re.compile(r"(:|,)\s*(light|medium-light|medium|medium-dark|dark) skin tone.*$|"
                        r"\s*\b(light|medium-light|medium|medium-dark|dark) skin tone\b.*$")
LANGUAGES = ("en", "es", "ja", "ko", "pt", "it", "fr", "de", "fa", "id", "zh", "ru", "tr", "ar")


def _needs(package: str, install: str) -> ImportError:
    return ImportError(f"the emoji data set needs {package}: {install}")


def _name(code: str) -> str:
    """``:thumbs_up_dark_skin_tone:`` -> ``thumbs up dark skin tone``."""
    return code.strip(":").replace("_", " ").strip()


class EmojiItem(tuple):
    """``(character, English name, captions, family)``."""

    __slots__ = ()

    def __new__(cls, character: str, name: str, captions: tuple[str, ...], family: str) -> "EmojiItem":
        return super().__new__(cls, (character, name, captions, family))

    character = property(lambda self: self[0])
    name = property(lambda self: self[1])
    captions = property(lambda self: self[2])
    family = property(lambda self: self[3])


def _font(font_path: Path):
    try:
        from PIL import ImageFont
    except ImportError as error:  # pragma: no cover - Pillow comes with matplotlib
        raise _needs("Pillow", "pip install Pillow") from error
    if not font_path.is_file():
        raise FileNotFoundError(
            f"emoji font not found: {font_path} (install Debian's fonts-noto-color-emoji: "
            "apt-get install --no-install-recommends fonts-noto-color-emoji, or pass data.font_path)"
        )
    return ImageFont.truetype(str(font_path), _BITMAP_POINTS)


@functools.lru_cache(maxsize=4)
def emoji_items(font_path: str = str(EMOJI_FONT), *, skin_tones: bool = False,
                languages: tuple[str, ...] = ("en",)) -> tuple[EmojiItem, ...]:
    """Every fully-qualified emoji the font draws as one glyph, with its captions.

    Args:
        font_path: the colour emoji font.
        skin_tones: keep the skin-tone variants (3789 items) or not (default: 1922 with Debian 12's font and emoji 2.16, of which 1899 draw).
        languages: the caption languages (``LANGUAGES``); English names and aliases come first.
    """
    try:
        import emoji as emoji_package
    except ImportError as error:
        raise _needs("the PyPI package 'emoji'", "pip install emoji (or pip install 'contrastkit[multimodal]')") \
            from error
    unknown = sorted(set(languages) - set(LANGUAGES))
    if unknown:
        raise ValueError(f"data.languages: unknown {', '.join(unknown)}; expected some of {', '.join(LANGUAGES)}")
    # Since emoji 2.x the package keeps only English names in EMOJI_DATA until a language is
    # loaded; without this, data.languages=[fr] would silently add no caption.
    load_language = getattr(getattr(emoji_package, "config", None), "load_language", None)
    for language in languages:
        if language != "en" and callable(load_language):
            load_language(language)
    font = _font(Path(font_path))
    fully_qualified = emoji_package.STATUS["fully_qualified"]
    items = []
    for character, entry in emoji_package.EMOJI_DATA.items():
        if entry.get("status") != fully_qualified or (not skin_tones and _SKIN_TONES & set(character)):
            continue
        left, top, right, bottom = font.getbbox(character)
        if right - left > _BITMAP_SIZE[0] or right <= left:  # not one glyph (or none)
            continue
        name = _name(entry["en"])
        captions = [name] + [_name(alias) for alias in entry.get("alias", []) if _name(alias) != name]
        for language in languages:
            if language != "en" and language in entry:
                captions.append(_name(entry[language]))
        family = _QUALIFIER.sub("", name).strip() or name
        items.append(EmojiItem(character, name, tuple(dict.fromkeys(captions)), family))
    return tuple(sorted(items, key=lambda item: item.name))


def render_emoji(characters: list[str], size: int, font_path: str | os.PathLike[str] = EMOJI_FONT) -> torch.Tensor:
    """The glyphs as ``[N, 3, size, size]`` floats in ``[0, 1]`` on white (aspect kept, centred)."""
    from PIL import Image, ImageDraw

    font = _font(Path(font_path))
    images = torch.empty(len(characters), 3, size, size)
    for row, character in enumerate(characters):
        glyph = Image.new("RGBA", _BITMAP_SIZE, (255, 255, 255, 0))
        ImageDraw.Draw(glyph).text((0, 0), character, font=font, embedded_color=True)
        canvas = Image.new("RGBA", (136, 136), (255, 255, 255, 255))
        canvas.alpha_composite(glyph, (0, 4))
        small = canvas.convert("RGB").resize((size, size), Image.Resampling.LANCZOS)
        images[row] = torch.frombuffer(bytearray(small.tobytes()), dtype=torch.uint8).view(size, size, 3) \
            .permute(2, 0, 1).float() / 255.0
    return images


@functools.lru_cache(maxsize=4)
def _rendered(characters: tuple[str, ...], size: int, font_path: str) -> torch.Tensor:
    return render_emoji(list(characters), size, font_path)


@register_dataset(
    "emoji",
    description="Noto Color Emoji glyphs paired with their names (PyPI emoji); test names unseen "
    "(1899 emoji without skin tones; needs fonts-noto-color-emoji and the emoji package)",
)
def load_emoji(*, data_dir: str | Path | None = None, image_size: int = 32, test_fraction: float = 0.25,
               skin_tones: bool = False, languages: list[str] | tuple[str, ...] = ("en",), seed: int = 0,
               font_path: str | Path | None = None) -> DatasetSplits:
    """Emoji images and names, split by family so that every test name is unseen.

    Args:
        data_dir: unused (the data come from installed packages); accepted like every data set.
        image_size: the side of the square images.
        test_fraction: the share of families held out.
        skin_tones: keep skin-tone variants (their family stays on one side of the split).
        languages: caption languages, English first (see :data:`LANGUAGES`).
        seed: seeds the family split.
        font_path: the colour emoji font (default Debian's).
    """
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"data.test_fraction: expected a number in (0, 1), got {test_fraction}")
    if int(image_size) < 8:
        raise ValueError(f"data.image_size: expected at least 8 pixels, got {image_size}")
    font = str(font_path or EMOJI_FONT)
    listed = emoji_items(font, skin_tones=bool(skin_tones), languages=tuple(languages))
    rendered = _rendered(tuple(item.character for item in listed), int(image_size), font)
    # Emoji newer than the font draw nothing (23 of Debian 12's font with emoji 2.16): drop them.
    drawn = (rendered.amin(dim=(1, 2, 3)) < 0.9).tolist()
    items = [item for item, keep in zip(listed, drawn) if keep]
    images = rendered[torch.tensor(drawn)]
    families = sorted({item.family for item in items})
    order = torch.randperm(len(families), generator=torch.Generator().manual_seed(int(seed))).tolist()
    held_out = {families[i] for i in order[: max(1, round(test_fraction * len(families)))]}

    def split(test: bool) -> ImageCaptionDataset:
        rows = [row for row, item in enumerate(items) if (item.family in held_out) == test]
        return ImageCaptionDataset(images[rows], [list(items[row].captions) for row in rows],
                                   class_names=[items[row].name for row in rows])

    train, test = split(False), split(True)
    return DatasetSplits(
        train=train, test=test, num_classes=test.num_classes, input_shape=train.input_shape, name="emoji",
        description=f"{len(train)} train / {len(test)} test emoji ({len(held_out)} of {len(families)} "
                    f"families held out), {image_size}x{image_size}",
        modality="image-text", class_names=test.class_names,
    )  # fmt: skip
