"""Build the ``music-sheets`` snapshot: folk-tune snippets engraved as sheet images and synthesised as log-mels.

``python -m contrastkit.data.music_sheets_build --tunes 1000 [--out DIR]`` (or the loader on first
use: :func:`contrastkit.data.music_sheets.load_music_sheets` builds a missing snapshot into its
cache folder). Reading the snapshot is :mod:`contrastkit.data.music_sheets`; the format (file
names, arrays, manifest) is defined there.

Per tune (measured on a core shared with other jobs: 0.6 s over 30 tunes, 0.94 s over the 1,000;
its parts timed on a lighter load add up to ~0.27 s: fluidsynth 0.11 s, mostly start-up; cairosvg
~0.03 s and verovio ~0.01 s a snippet):

- **Source.** The Essen folk-song collection as music21 ships it
  (``music21/corpus/essenFolksong/*.abc``, 8,514 tunes, Seymour Schlien's ABC encodings of
  the EsAC database). Files are read in sorted order and split at ``X:`` headers; the tunes
  are visited in a seeded permutation, so ``--tunes 1000`` is a spread over all the
  collections (German, Chinese ``han``, Luxembourgish ``lux`` ...) rather than the first file.
- **Snippets.** Verovio (``inputFrom: abc``) reads the tune; its time map gives each
  measure's onset. Snippet ``k`` is measures ``k*bars + 1 .. (k+1)*bars`` (1-based, the
  pickup bar counts as a measure, as verovio numbers it), at most ``snippets_per_tune`` of
  them; a tune with fewer than ``bars`` measures is skipped (free-metre Essen tunes have one).
- **Sheet image.** The snippet's measures alone (verovio ``select measureRange``, so every
  snippet starts with its clef and key signature), laid out on one system without header,
  rasterised by cairosvg on white, converted to ink (0 = paper, 255 = black), cropped to the
  staff -- rows from one staff height above the top staff line to one below the bottom
  one (four ledger lines each way: every Essen melody fits), columns from the first to the
  last inked column -- and resized with area averaging to ``image_height x image_width``
  (default ``64 x 256``). Why that size: the staff then spans 21 px (line spacing ~5 px, so a
  note on a line and one in the space next to it differ by ~2.6 px, what a 3x3 convolution
  still resolves) and a 4-bar snippet of 10-30 notes gets 8-25 px a note; smaller loses
  pitch, larger costs the CPU budget (a 64 x 256 image is 16 KB before compression, and
  mostly white, it compresses about 10x). The horizontal scale differs between snippets (4 bars of 2/4 and of 4/2 both
  fill the width): the audio side is normalised the same way (next point).
- **Audio.** Verovio's MIDI of the whole tune (120 quarter notes a minute unless ``Q:`` says
  otherwise; the piano, GM program 0), synthesised by fluidsynth at 16 kHz with the
  TimGM6mb soundfont, reverb and chorus off (``-R 0 -C 0``: a dry signal, and half the
  time), mixed to mono. The snippet's samples run from its first measure's onset to the
  next snippet's onset (a note still sounding from before rings into it, as in a recording).
  :class:`contrastkit.nn.audio.LogMelSpectrogram`'s log-mel (:func:`log_mel`, through the
  shared :func:`contrastkit.data.audio_features.log_mel_spectrogram`; ``n_fft=1024``: 64 ms windows, whose
  15.6 Hz bins separate semitones above ~270 Hz; 10 ms hops; ``n_mels`` bands between
  ``f_min=50`` and ``f_max=4000`` Hz, where melody fundamentals and their first harmonics
  lie) then averages time frames to a fixed ``frames`` (area pooling): like the image, a
  snippet always spans the whole width, whatever its metre and tempo, so horizontal
  position means the same in both modalities.
- **Storage.** Both arrays are ``uint8``: ink as it is; log-mel values clipped to
  ``[LOG_MEL_LOW, LOG_MEL_HIGH]`` and quantised to 256 levels (0.08 nats a level, far
  below the spectrogram's own noise). One ``.npz`` without pickled objects, with fixed zip
  metadata (the same corpus and tools give the same bytes), plus a JSON manifest.
- **Resumable, atomic.** Tunes are processed in chunks of ``CHUNK_TUNES``; each finished
  chunk is written atomically into a staging folder beside the output folder, named by a hash
  of the build options other than ``tunes``, so a killed build restarts from its last chunk
  (a killed build with another ``tunes`` count included); it is removed after a successful build. The npz is written
  atomically first, the manifest (with the npz's sha256) last: a folder without a manifest
  (or with a mismatching checksum) is not a snapshot, and the loader rebuilds it.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from contrastkit.data.music_sheets import (
    LOG_MEL_HIGH,
    LOG_MEL_LOW,
    MANIFEST_NAME,
    SNAPSHOT_FORMAT,
    SNAPSHOT_NAME,
    sha256_of,
)
from contrastkit.utils.atomic import atomic_write_bytes, atomic_write_json
from contrastkit.utils.progress import Progress

__all__ = ["BuildOptions", "build_snapshot", "check_tools", "corpus_tunes", "log_mel", "main", "render_tune"]

#: The version of the builder (recorded in the manifest; bumped when the same corpus would build differently).
BUILDER_VERSION = 1

#: Where Debian's timgm6mb-soundfont puts the General MIDI soundfont.
SOUNDFONT = Path("/usr/share/sounds/sf2/TimGM6mb.sf2")
#: Debian's copyright file of that soundfont (its licence is recorded in the manifest from there).
SOUNDFONT_COPYRIGHT = Path("/usr/share/doc/timgm6mb-soundfont/copyright")
#: The music21 corpus folder whose ABC files are the tunes.
CORPUS_FOLDER = "essenFolksong"
#: Tunes per resumable chunk.
CHUNK_TUNES = 100
#: The sample rate of the synthesised audio.
SAMPLE_RATE = 16000

_HOW_TO_INSTALL = ("install the audio tools with `make audio-tools` (Debian: fluidsynth, timgm6mb-soundfont) and the "
                   "Python packages with pip install 'contrastkit[multimodal]' (music21, verovio, cairosvg)")
_ZIP_DATE_TIME = (1980, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class BuildOptions:
    """What a snapshot is built with; the loader's cache folder is named by a hash of these.

    Attributes:
        tunes: how many tunes (usable ones, in the seeded order); ``0`` or more than the corpus
            holds: all of them.
        bars: measures per snippet.
        snippets_per_tune: at most this many consecutive, non-overlapping snippets per tune.
        image_height, image_width: the sheet image size.
        n_mels, frames: the log-mel size.
        seed: the tune order.
    """

    tunes: int = 1000
    bars: int = 4
    snippets_per_tune: int = 4
    image_height: int = 64
    image_width: int = 256
    n_mels: int = 80
    frames: int = 128
    seed: int = 0

    def __post_init__(self) -> None:
        for name, minimum in (("tunes", 0), ("bars", 1), ("snippets_per_tune", 1), ("image_height", 8),
                              ("image_width", 8), ("n_mels", 8), ("frames", 8), ("seed", 0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise ValueError(f"music-sheets: expected {name} to be an integer >= {minimum}, got {value!r}")

    def key(self) -> str:
        """A short hash of the options and the builder version (the cache folder's name)."""
        text = json.dumps({**asdict(self), "builder_version": BUILDER_VERSION}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:12]


# ----------------------------------------------------------------------------------------- tools


def check_tools(soundfont: str | Path = SOUNDFONT) -> dict[str, str]:
    """The tool versions the build needs; one ``FileNotFoundError`` naming every missing one otherwise."""
    missing, versions = [], {}
    for module in ("music21", "verovio", "cairosvg", "PIL"):
        try:
            imported = __import__(module)
            versions[module] = str(getattr(imported, "__version__", ""))
        except ImportError:
            missing.append(f"Python package {module}")
    if "verovio" in versions:
        import verovio

        versions["verovio"] = verovio.toolkit(False).getVersion()
    executable = shutil.which("fluidsynth")
    if executable is None:
        missing.append("the fluidsynth command")
    else:
        result = subprocess.run([executable, "--version"], capture_output=True, text=True, check=False)
        versions["fluidsynth"] = (result.stdout.splitlines() or [""])[0].strip()
    if not Path(soundfont).is_file():
        missing.append(f"the soundfont {soundfont}")
    if missing:
        raise FileNotFoundError(f"music-sheets: building the snapshot needs {', '.join(missing)}, not found; "
                                f"{_HOW_TO_INSTALL}")
    return versions


# ----------------------------------------------------------------------------------------- corpus


def _corpus_files() -> list[Path]:
    import music21

    folder = Path(music21.__file__).parent / "corpus" / CORPUS_FOLDER
    files = sorted(folder.glob("*.abc"))
    if not files:
        raise FileNotFoundError(f"music-sheets: no ABC files in {folder}; is music21's corpus installed?")
    return files


def corpus_tunes(files: Sequence[Path] | None = None) -> list[tuple[str, str]]:
    """``(tune id, ABC text)`` of every tune of the corpus files, in file then ``X:`` order.

    A tune id is ``FILE_STEM/X`` (``altdeu10/1``); the text runs from its ``X:`` line to the next.
    """
    tunes = []
    for path in files if files is not None else _corpus_files():
        text = path.read_text("latin-1")  # the Essen ABC files are Latin-1 (umlauts in titles)
        for part in re.split(r"\n(?=X:)", text.replace("\r\n", "\n")):
            match = re.match(r"X:\s*(\d+)", part)
            if match:
                tunes.append((f"{path.stem}/{match.group(1)}", part.strip() + "\n"))
    return tunes


# ----------------------------------------------------------------------------------------- one tune


def _toolkit():
    import verovio

    verovio.enableLog(verovio.LOG_OFF)
    toolkit = verovio.toolkit(False)
    toolkit.setResourcePath(str(Path(verovio.__file__).parent / "data"))
    return toolkit


_LAYOUT = {"inputFrom": "abc", "breaks": "none", "header": "none", "footer": "none", "adjustPageHeight": True,
           "adjustPageWidth": True, "scale": 50, "pageMarginLeft": 0, "pageMarginRight": 0, "pageMarginTop": 0,
           "pageMarginBottom": 0, "midiTempoAdjustment": 1.0}


def _ink(svg: str) -> np.ndarray:
    """SVG -> ink ``[H, W]`` uint8 (0 paper, 255 black)."""
    import cairosvg
    from PIL import Image

    png = cairosvg.svg2png(bytestring=svg.encode("utf-8"), background_color="white")
    return 255 - np.asarray(Image.open(io.BytesIO(png)).convert("L"), dtype=np.uint8)


def _crop_to_staff(ink: np.ndarray, height: int, width: int) -> np.ndarray | None:
    """Crop to the staff (one staff height of margin above and below) and resize; ``None`` without a staff."""
    from PIL import Image

    dark = ink > 64  # staff lines are thin and anti-aliased: grey, not black
    lines = np.flatnonzero(dark.mean(1) > 0.5)  # staff lines are the rows inked over most of the width
    columns = np.flatnonzero(dark.any(0))
    if lines.size < 5 or columns.size == 0:
        return None
    top, bottom = int(lines[0]), int(lines[-1])
    staff = max(bottom - top, 1)
    padded = np.pad(ink, ((staff, staff), (0, 0)))  # the crop may reach past the rendered page
    crop = padded[top: bottom + 2 * staff + 1, columns[0]: columns[-1] + 1]
    return np.asarray(Image.fromarray(crop).resize((width, height), Image.Resampling.BOX), dtype=np.uint8)


def _synthesise(midi: bytes, soundfont: Path) -> np.ndarray:
    """MIDI bytes -> mono float32 waveform at :data:`SAMPLE_RATE` (fluidsynth, dry)."""
    with tempfile.TemporaryDirectory(prefix="contrastkit-music-") as folder:
        midi_path, raw_path = Path(folder) / "tune.mid", Path(folder) / "tune.raw"
        midi_path.write_bytes(midi)
        command = ["fluidsynth", "-ni", "-q", "-R", "0", "-C", "0", "-g", "0.5", "-r", str(SAMPLE_RATE), "-T", "raw",
                   "-O", "s16", "-F", str(raw_path), str(soundfont), str(midi_path)]
        result = subprocess.run(command, capture_output=True, check=False)
        if result.returncode != 0 or not raw_path.is_file():
            raise RuntimeError(f"music-sheets: fluidsynth failed (exit {result.returncode}): "
                               f"{result.stderr.decode('utf-8', 'replace').strip()}")
        stereo = np.fromfile(raw_path, dtype="<i2")
    return (stereo.reshape(-1, 2).astype(np.float32).mean(1) / 32768.0) if stereo.size else np.zeros(0, np.float32)


def log_mel(wave: np.ndarray, n_mels: int, *, n_fft: int = 1024, hop_length: int = 160, f_min: float = 50.0,
            f_max: float = 4000.0):
    """``[T]`` waveform -> ``[n_mels, 1 + T // hop_length]`` ``log(mel power + 1e-6)``:
    :func:`contrastkit.data.audio_features.log_mel_spectrogram` (what :class:`contrastkit.nn.audio.LogMelSpectrogram`
    computes) with this snapshot's band limits."""
    import torch

    from contrastkit.data.audio_features import log_mel_spectrogram, mel_filterbank

    bank = mel_filterbank(n_fft, n_mels, SAMPLE_RATE, f_min, f_max)
    return log_mel_spectrogram(torch.as_tensor(wave, dtype=torch.float32), n_fft, hop_length, bank)[0]


def _log_mels(waves: list[np.ndarray], n_mels: int, frames: int) -> np.ndarray:
    """Waveform snippets -> quantised log-mels ``[S, n_mels, frames]`` uint8 (see the module docstring)."""
    import torch

    out = []
    with torch.no_grad():
        for wave in waves:
            pooled = torch.nn.functional.adaptive_avg_pool1d(log_mel(wave, n_mels)[None], frames)[0]
            scaled = (pooled.clamp(LOG_MEL_LOW, LOG_MEL_HIGH) - LOG_MEL_LOW) / (LOG_MEL_HIGH - LOG_MEL_LOW)
            out.append(torch.round(scaled * 255).to(torch.uint8).numpy())
    return np.stack(out) if out else np.zeros((0, n_mels, frames), np.uint8)


def render_tune(abc: str, options: BuildOptions, *, toolkit=None, soundfont: Path = SOUNDFONT) -> dict | None:
    """The snippets of one tune: ``{"sheets" [S, H, W], "audio" [S, n_mels, frames], "bar_start" [S],
    "seconds" [S], "measures"}``; ``None`` when the tune has fewer than ``options.bars`` measures or
    does not engrave."""
    toolkit = toolkit or _toolkit()
    toolkit.setOptions(_LAYOUT)
    toolkit.select({})
    if not toolkit.loadData(abc):
        return None
    timemap = toolkit.renderToTimemap({"includeMeasures": True})
    onsets = [float(event["tstamp"]) / 1000.0 for event in timemap if "measureOn" in event]
    end = float(timemap[-1]["tstamp"]) / 1000.0 if timemap else 0.0
    count = min(len(onsets) // options.bars, options.snippets_per_tune)
    if count == 0 or end <= 0:
        return None
    wave = _synthesise(base64.b64decode(toolkit.renderToMIDI()), soundfont)
    bounds = onsets + [end]
    sheets, waves, starts, seconds = [], [], [], []
    for snippet in range(count):
        first = snippet * options.bars
        begin, stop = bounds[first], bounds[first + options.bars]
        toolkit.select({"measureRange": f"{first + 1}-{first + options.bars}"})
        if not toolkit.loadData(abc):
            continue
        image = _crop_to_staff(_ink(toolkit.renderToSVG(1)), options.image_height, options.image_width)
        samples = wave[round(begin * SAMPLE_RATE): round(stop * SAMPLE_RATE)]
        if image is None or samples.size < SAMPLE_RATE // 10 or not np.abs(samples).max() > 1e-4:
            continue  # no staff, or (almost) silent: an unusable pair
        sheets.append(image)
        waves.append(samples)
        starts.append(first + 1)
        seconds.append(stop - begin)
    if not sheets:
        return None
    return {"sheets": np.stack(sheets), "audio": _log_mels(waves, options.n_mels, options.frames),
            "bar_start": np.array(starts, np.int16), "seconds": np.array(seconds, np.float32),
            "measures": len(onsets)}


# ----------------------------------------------------------------------------------------- snapshot


def _npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    """``np.savez_compressed``'s format with fixed zip metadata, so equal arrays give equal bytes."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for key, array in arrays.items():
            entry = io.BytesIO()
            np.lib.format.write_array(entry, np.ascontiguousarray(array), allow_pickle=False)
            info = zipfile.ZipInfo(f"{key}.npy", date_time=_ZIP_DATE_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3
            info.external_attr = 0o644 << 16
            archive.writestr(info, entry.getvalue(), compresslevel=6)
    return buffer.getvalue()


def _encode_strings(strings: Sequence[str]) -> np.ndarray:
    return np.frombuffer("\n".join(strings).encode("utf-8"), dtype=np.uint8).copy()


def _soundfont_licence() -> str:
    """The soundfont's ``License:`` as Debian's copyright file states it (``Files: TimGM6mb.sf2`` stanza)."""
    try:
        text = SOUNDFONT_COPYRIGHT.read_text("utf-8")
    except OSError:
        return f"unknown ({SOUNDFONT_COPYRIGHT} not found)"
    stanza = next((part for part in text.split("\n\n") if "TimGM6mb.sf2" in part.split("\n", 1)[0]), "")
    match = re.search(r"^License:\s*(.+)$", stanza, re.MULTILINE)
    copyright_ = re.search(r"^Copyright:\s*(.+(?:\n .+)*)", stanza, re.MULTILINE)
    who = " ".join(copyright_.group(1).split()) if copyright_ else ""
    return f"{match.group(1).strip() if match else 'unknown'} ({who}; Debian: {SOUNDFONT_COPYRIGHT})"


def _licences(files: Sequence[Path]) -> dict[str, str]:
    import music21

    corpus_licence = files[0].parent / "license.txt" if files else None
    statement = ""
    if corpus_licence is not None and corpus_licence.is_file():
        statement = " ".join(line.strip() for line in corpus_licence.read_text("utf-8", "replace").splitlines()
                             if line.strip() and not line.startswith("#"))
    return {
        "essen_folksong_abc": (f"as music21 states it in {corpus_licence}: {statement} -- music21 itself: "
                               "'The music21 creators assume no copyright or change in licensing for content "
                               "distributed in the corpus'; permission for non-commercial distribution and use"),
        "music21": f"BSD-3-Clause (music21 {music21.__version__})",
        "verovio": "LGPL-3.0-or-later (the engraving and MIDI export)",
        "cairosvg": "LGPL-3.0-or-later (the rasterisation)",
        "fluidsynth": "LGPL-2.1-or-later (the synthesis)",
        "timgm6mb_soundfont": _soundfont_licence(),
    }


def _chunk(tunes: list[tuple[str, str]], options: BuildOptions, soundfont: Path, limit: int,
           bar: Progress, done: int) -> dict[str, np.ndarray]:
    """The snippets of ``tunes`` in order, stopping after ``limit`` usable tunes."""
    toolkit = _toolkit()
    parts: dict[str, list] = {"sheets": [], "audio": [], "bar_start": [], "seconds": [], "tune": [], "measures": []}
    kept = []
    visited = 0
    for tune_id, abc in tunes:
        if len(kept) >= limit:
            break
        visited += 1
        rendered = render_tune(abc, options, toolkit=toolkit, soundfont=soundfont)
        if rendered is None:
            continue
        bar.update(done + len(kept) + 1, info=tune_id)
        for key in ("sheets", "audio", "bar_start", "seconds"):
            parts[key].append(rendered[key])
        parts["tune"].append(np.full(len(rendered["sheets"]), len(kept), np.int32))
        parts["measures"].append(rendered["measures"])
        kept.append(tune_id)
    shape = {"sheets": (0, options.image_height, options.image_width), "audio": (0, options.n_mels, options.frames)}
    arrays = {key: (np.concatenate(value) if value else np.zeros(shape.get(key, (0,)), np.uint8))
              for key, value in parts.items() if key != "measures"}
    arrays["measures"] = np.array(parts["measures"], np.int32)
    arrays["tune_ids"] = _encode_strings(kept)
    arrays["visited"] = np.array(visited, np.int32)
    return arrays


def build_snapshot(out_dir: str | Path, options: BuildOptions = BuildOptions(), *, soundfont: str | Path = SOUNDFONT,
                   progress: bool = True) -> Path:
    """Build ``music-sheets.npz`` and its manifest into ``out_dir`` (resuming a killed build of the same options).

    Args:
        out_dir: the folder to write into (created when missing).
        options: see :class:`BuildOptions`.
        soundfont: the General MIDI soundfont fluidsynth plays.
        progress: show a bar (a few lines when not a terminal).

    Returns:
        The path of the npz file.

    Raises:
        FileNotFoundError: when a tool is missing (the message names them all and ``make audio-tools``).
        ValueError: when no tune yields a snippet.
    """
    versions = check_tools(soundfont)
    soundfont = Path(soundfont)
    files = _corpus_files()
    every = corpus_tunes(files)
    order = np.random.default_rng(options.seed).permutation(len(every))
    wanted = options.tunes or len(every)
    out = Path(out_dir).expanduser()
    # Chunks do not depend on how many tunes are wanted: a build of 2000 tunes resumes one of 1000.
    staging = out.parent / f".music-sheets-partial-{replace(options, tunes=0).key()}"
    staging.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    chunks: list[dict[str, np.ndarray]] = []
    kept_ids: list[str] = []
    bar = Progress(wanted, enabled=progress, label="music-sheets", unit="tune")
    position = 0
    try:
        # Chunks visit the seeded order until `wanted` tunes have snippets; chunk n always covers the
        # same slice of that order, so a resumed build reads back what it would have computed.
        for number in range((len(every) + CHUNK_TUNES - 1) // CHUNK_TUNES):
            if len(kept_ids) >= wanted:
                break
            path = staging / f"chunk-{number:05d}.npz"
            rows = order[number * CHUNK_TUNES: (number + 1) * CHUNK_TUNES]
            arrays = None
            if path.is_file():
                with np.load(path, allow_pickle=False) as archive:
                    arrays = {key: archive[key] for key in archive.files}
                # A chunk cut short by an earlier, smaller build is reused only when it has enough tunes.
                visited, found = int(arrays["visited"].reshape(-1)[0]), int(arrays["measures"].shape[0])
                short = visited < len(rows) and found < wanted - len(kept_ids)
                arrays = None if short else arrays
            if arrays is None:
                arrays = _chunk([every[row] for row in rows], options, soundfont, wanted - len(kept_ids), bar,
                                len(kept_ids))
                atomic_write_bytes(path, _npz_bytes(arrays))
            ids = arrays["tune_ids"].tobytes().decode("utf-8").split("\n") if arrays["tune_ids"].size else []
            take = min(len(ids), wanted - len(kept_ids))
            rows_kept = arrays["tune"] < take
            chunk = {key: arrays[key][rows_kept] for key in ("sheets", "audio", "bar_start", "seconds", "tune")}
            chunk["tune"] = chunk["tune"] + len(kept_ids)
            chunk["measures"] = arrays["measures"][:take]
            chunks.append(chunk)
            kept_ids += ids[:take]
            position = len(kept_ids)
            bar.update(position, info=f"{sum(len(c['tune']) for c in chunks)} snippets")
    finally:
        bar.close()
    if not kept_ids:
        raise ValueError("music-sheets: no tune of the corpus gave a snippet; check the tools and options")
    arrays = {key: np.concatenate([chunk[key] for chunk in chunks])
              for key in ("sheets", "audio", "tune", "bar_start", "seconds", "measures")}
    arrays["tune_ids"] = _encode_strings(kept_ids)
    payload = _npz_bytes(arrays)
    npz_path = out / SNAPSHOT_NAME
    atomic_write_bytes(npz_path, payload)
    elapsed = time.perf_counter() - started
    manifest = {
        "format": SNAPSHOT_FORMAT,
        "builder": "contrastkit.data.music_sheets_build.build_snapshot",
        "builder_version": BUILDER_VERSION,
        "options": asdict(options),
        "options_key": options.key(),
        "snapshot": SNAPSHOT_NAME,
        "snapshot_sha256": hashlib.sha256(payload).hexdigest(),
        "snapshot_bytes": len(payload),
        "counts": {"tunes": len(kept_ids), "snippets": int(arrays["tune"].shape[0]),
                   "corpus_tunes": len(every), "tunes_visited": min(len(every), len(chunks) * CHUNK_TUNES)},
        "encoding": {
            "sheets": "uint8 ink [S, image_height, image_width]: 0 paper, 255 black",
            "audio": f"uint8 log-mel [S, n_mels, frames]: value/255 * ({LOG_MEL_HIGH} - ({LOG_MEL_LOW})) + "
                     f"({LOG_MEL_LOW}) is log(power + 1e-6)",
            "log_mel": {"sample_rate": SAMPLE_RATE, "n_fft": 1024, "hop_length": 160, "f_min": 50.0,
                        "f_max": 4000.0, "time": "area-pooled to `frames`", "low": LOG_MEL_LOW, "high": LOG_MEL_HIGH},
            "synthesis": "verovio MIDI (piano) -> fluidsynth -R 0 -C 0 -g 0.5, mono",
            "engraving": {key: value for key, value in _LAYOUT.items() if key != "inputFrom"},
        },
        "tools": versions,
        "sources": [{"file": f"music21/corpus/{CORPUS_FOLDER}/{path.name}", "bytes": path.stat().st_size,
                     "sha256": sha256_of(path)} for path in files],
        "soundfont": {"path": str(soundfont), "sha256": sha256_of(soundfont)},
        "licences": _licences(files),
        "build_seconds": round(elapsed, 1),
    }
    atomic_write_json(out / MANIFEST_NAME, manifest)
    shutil.rmtree(staging, ignore_errors=True)
    return npz_path


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m contrastkit.data.music_sheets_build``: build a snapshot (default: the loader's cache folder)."""
    from contrastkit.data.music_sheets import default_snapshot_dir

    parser = argparse.ArgumentParser(prog="python -m contrastkit.data.music_sheets_build",
                                     description=__doc__.split("\n")[0])
    defaults = BuildOptions()
    parser.add_argument("--tunes", type=int, default=defaults.tunes, help="tunes to keep (0: the whole corpus)")
    parser.add_argument("--bars", type=int, default=defaults.bars)
    parser.add_argument("--snippets-per-tune", type=int, default=defaults.snippets_per_tune)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--out", default=None,
                        help="output folder (default: the loader's cache folder for these options)")
    args = parser.parse_args(argv)
    try:
        options = BuildOptions(tunes=args.tunes, bars=args.bars, snippets_per_tune=args.snippets_per_tune,
                               seed=args.seed)
        out = Path(args.out) if args.out else default_snapshot_dir(options)
        path = build_snapshot(out, options)
    except (FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    manifest = json.loads((path.parent / MANIFEST_NAME).read_text("utf-8"))
    print(f"{path}: {manifest['counts']['tunes']} tunes, {manifest['counts']['snippets']} snippets, "
          f"{manifest['snapshot_bytes'] / 1e6:.1f} MB, {manifest['build_seconds']} s")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
