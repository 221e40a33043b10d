"""The music-sheets snapshot builder and loader, the audio-sheet modality's views and its evaluation protocol.

The builder tests render 3 tunes (a few seconds) and skip, with the reason, when fluidsynth,
the TimGM6mb soundfont, verovio, cairosvg or music21 is missing (``make audio-tools``).
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from contrastkit.data import music_sheets_build as build
from contrastkit.data.music_sheets import (
    MANIFEST_NAME,
    SNAPSHOT_NAME,
    TensorPairDataset,
    load_music_sheets,
    read_snapshot,
)
from contrastkit.eval.protocols.paired_tensors import (
    PairedTensorsProtocol,
    PairedTensorsSettings,
    any_match_ranks,
)
from contrastkit.nn.audio import LogMelSpectrogram
from contrastkit.views.audio_sheet import TimeShift, build_audio_sheet_views

OPTIONS = build.BuildOptions(tunes=3, snippets_per_tune=2)


def _tools_or_skip() -> None:
    try:
        build.check_tools()
    except FileNotFoundError as error:
        pytest.skip(str(error))


@pytest.fixture(scope="module")
def snapshot(tmp_path_factory):
    _tools_or_skip()
    out = tmp_path_factory.mktemp("fresh") / "snapshot"
    build.build_snapshot(out, OPTIONS, progress=False)
    return out


def test_snapshot_shapes_manifest_and_split_by_tune(snapshot) -> None:
    manifest, arrays = read_snapshot(snapshot)
    count = arrays["sheets"].shape[0]
    assert manifest["counts"]["tunes"] == 3 and manifest["counts"]["snippets"] == count
    assert 3 <= count <= 6  # at most snippets_per_tune=2 of each tune
    assert arrays["sheets"].shape == (count, 64, 256) and arrays["sheets"].dtype == np.uint8
    assert arrays["audio"].shape == (count, 80, 128) and arrays["audio"].dtype == np.uint8
    assert sorted(set(arrays["tune"].tolist())) == [0, 1, 2]
    # Every image has ink (staff lines) and paper; every spectrogram is louder than silence somewhere.
    assert all(0 < (image > 128).mean() < 0.5 for image in arrays["sheets"])
    assert all(spectrogram.max() > 100 for spectrogram in arrays["audio"])
    assert set(manifest["licences"]) >= {"essen_folksong_abc", "music21", "verovio", "timgm6mb_soundfont"}
    assert "non-commercial" in manifest["licences"]["essen_folksong_abc"]
    assert manifest["licences"]["verovio"].startswith("LGPL-3")
    assert "GPL-2" in manifest["licences"]["timgm6mb_soundfont"]
    assert all(len(source["sha256"]) == 64 and source["file"].startswith("music21/corpus/essenFolksong/")
               for source in manifest["sources"])
    assert not list(snapshot.parent.glob(".music-sheets-partial-*"))  # staging removed after success

    splits = load_music_sheets(data_dir=snapshot, tunes=3, snippets_per_tune=2, test_fraction=0.34, build=False)
    assert splits.modality == "audio-sheet"
    assert not set(splits.train.group_names) & set(splits.test.group_names)  # test tunes unseen
    assert len(splits.train) + len(splits.test) == count
    batch = splits.train.__getitems__([0, len(splits.train) - 1])
    assert batch.inputs["audio"].shape == (2, 80, 128) and batch.inputs["sheet"].shape == (2, 1, 64, 256)
    assert 0.0 <= float(batch.inputs["sheet"].min()) and float(batch.inputs["sheet"].max()) <= 1.0


def test_interrupted_build_leaves_no_snapshot_and_resumes_to_the_same_bytes(snapshot, tmp_path, monkeypatch) -> None:
    out = tmp_path / "snapshot"
    real = build.atomic_write_json

    def killed(path, payload):
        if path.name == MANIFEST_NAME:
            raise KeyboardInterrupt  # killed between the npz and the manifest
        real(path, payload)

    monkeypatch.setattr(build, "atomic_write_json", killed)
    with pytest.raises(KeyboardInterrupt):
        build.build_snapshot(out, OPTIONS, progress=False)
    assert not (out / MANIFEST_NAME).exists()  # not a snapshot: the loader would rebuild
    with pytest.raises(FileNotFoundError, match="snapshot file not found"):
        read_snapshot(out)
    staged = list(tmp_path.glob(".music-sheets-partial-*/chunk-*.npz"))
    assert len(staged) == 1
    monkeypatch.setattr(build, "atomic_write_json", real)

    def no_rendering(*args, **kwargs):
        raise AssertionError("a resumed build re-rendered a finished chunk")

    monkeypatch.setattr(build, "render_tune", no_rendering)
    build.build_snapshot(out, OPTIONS, progress=False)
    # Deterministic: the resumed build equals the independent fresh build byte for byte.
    assert (out / SNAPSHOT_NAME).read_bytes() == (snapshot / SNAPSHOT_NAME).read_bytes()


def test_a_corrupt_snapshot_is_one_clear_error(snapshot, tmp_path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(snapshot, copy)
    data = bytearray((copy / SNAPSHOT_NAME).read_bytes())
    data[-10] ^= 0xFF
    (copy / SNAPSHOT_NAME).write_bytes(bytes(data))
    with pytest.raises(ValueError, match="checksum mismatch"):
        read_snapshot(copy)
    manifest = json.loads((copy / MANIFEST_NAME).read_text())
    (copy / MANIFEST_NAME).write_text(json.dumps({**manifest, "format": "other"}))
    with pytest.raises(ValueError, match="expected format"):
        read_snapshot(copy)


def test_missing_tools_are_named_with_make_audio_tools(monkeypatch, tmp_path) -> None:
    monkeypatch.setattr(build.shutil, "which", lambda name: None)
    with pytest.raises(FileNotFoundError, match=r"fluidsynth command.*soundfont .*make audio-tools"):
        build.check_tools(soundfont=tmp_path / "missing.sf2")
    with pytest.raises(FileNotFoundError, match="make audio-tools"):
        build.build_snapshot(tmp_path / "out", OPTIONS, soundfont=tmp_path / "missing.sf2", progress=False)
    assert not (tmp_path / "out").exists()


def test_the_builders_log_mel_is_the_audio_towers_front_end() -> None:
    wave = torch.randn(7000, generator=torch.Generator().manual_seed(0)).numpy()
    reference = LogMelSpectrogram(16000, n_fft=1024, hop_length=160, n_mels=80, f_min=50.0, f_max=4000.0)
    torch.testing.assert_close(build.log_mel(wave, 80), reference(torch.from_numpy(wave))[0], atol=1e-4, rtol=1e-5)


def test_build_options_are_checked() -> None:
    with pytest.raises(ValueError, match="bars"):
        build.BuildOptions(bars=0)
    assert build.BuildOptions(tunes=5).key() != build.BuildOptions(tunes=6).key()


def test_corpus_tunes_split_at_x_headers(tmp_path) -> None:
    path = tmp_path / "book.abc"
    path.write_text("%header\nX:1\nT:a\nK:C\nCDEF|\n\nX:7\nT:b\nK:G\nGABc|\n", encoding="latin-1")
    tunes = build.corpus_tunes([path])
    assert [tune_id for tune_id, _ in tunes] == ["book/1", "book/7"]
    assert tunes[1][1].startswith("X:7") and "CDEF" not in tunes[1][1]


# ----------------------------------------------------------------------------------------- views


def test_time_shift_moves_time_only() -> None:
    torch.manual_seed(0)
    spectrogram = torch.arange(3 * 5 * 20, dtype=torch.float32).view(3, 5, 20)
    shifted = TimeShift(3)(spectrogram)
    for row in range(3):
        offset = int(shifted[row, 0, 10] - spectrogram[row, 0, 10])  # columns move together
        assert abs(offset) <= 3
        torch.testing.assert_close(shifted[row, :, 5:15], spectrogram[row, :, 5 + offset:15 + offset])
    audio, _ = build_audio_sheet_views("none")
    assert audio(spectrogram) is spectrogram
    with pytest.raises(ValueError, match="takes no options"):
        build_audio_sheet_views("none", pad=2)


# ----------------------------------------------------------------------------------------- protocol


class _Identity(torch.nn.Module):
    """A 'model' whose audio and sheet embeddings are given tables (rows indexed by a hidden id column)."""

    def __init__(self, audio: torch.Tensor, sheet: torch.Tensor) -> None:
        super().__init__()
        self.audio, self.sheet = audio, sheet

    def encode_audio(self, codes: torch.Tensor) -> torch.Tensor:
        return self.audio[codes[:, 0, 0].round().long()]

    def encode_sheet(self, codes: torch.Tensor) -> torch.Tensor:
        return self.sheet[codes[:, 0, 0, 0].round().long()]

    def embed(self, inputs):  # pragma: no cover - not used
        return inputs


def _splits(labels: list[int]):
    from contrastkit.data.registry import DatasetSplits

    rows = len(labels)
    ids = torch.arange(rows, dtype=torch.uint8)
    dataset = TensorPairDataset({"audio": ids[:, None, None].expand(rows, 2, 3).clone(),
                                 "sheet": ids[:, None, None].expand(rows, 2, 3).clone()},
                                {"audio": (0.0, 255.0), "sheet": (0.0, 255.0)}, torch.tensor(labels),
                                [f"tune{i}" for i in range(max(labels) + 1)], channel_axis=("sheet",))
    return DatasetSplits(train=dataset, test=dataset, num_classes=dataset.num_classes, input_shape=(1, 2, 3),
                         name="toy", modality="audio-sheet")


def test_protocol_scores_perfect_constant_and_random_embeddings() -> None:
    labels = [0, 0, 1, 1, 2, 2, 3, 4]
    protocol = PairedTensorsProtocol(_splits(labels), PairedTensorsSettings(bootstrap=0), None, 0)
    eye = torch.eye(len(labels))
    perfect = protocol.final(_Identity(eye, eye))[0]
    assert perfect["a2s_r@1"] == perfect["s2a_r@1"] == perfect["a2s_mrr"] == 1.0 and perfect["a2s_median_rank"] == 1
    # The pair excluded, a snippet of the same tune is not the query's own one-hot: the piece ranks are worse than 1.
    assert perfect["piece_queries"] == 6
    constant = protocol.final(_Identity(torch.ones(8, 4), torch.ones(8, 4)))[0]
    assert constant["a2s_r@1"] == 0.0 and constant["a2s_median_rank"] == 8  # ties count against the query
    # Tune-level embeddings: every query's best-ranked candidate is of its tune (ties against: rank 2 at worst).
    tune = torch.nn.functional.one_hot(torch.tensor(labels)).float()
    pieces = protocol.final(_Identity(tune, tune))[0]
    assert pieces["a2s_piece_r@1"] == 1.0 and pieces["a2s_r@1"] == pytest.approx(2 / 8)
    baselines = protocol.baselines(_Identity(eye, eye))
    assert set(baselines) == {"random", "untrained"} and baselines["untrained"]["a2s_r@1"] == 1.0
    assert baselines["random"]["a2s_r@10"] == 1.0  # 8 candidates: every rank is within 10


def test_any_match_ranks_against_a_loop() -> None:
    generator = torch.Generator().manual_seed(1)
    scores = torch.randint(0, 4, (6, 9), generator=generator).float()  # many ties
    positive = torch.rand(6, 9, generator=generator) < 0.3
    positive[:, 0] = True
    expected = []
    for row in range(6):
        best = max(scores[row, j] for j in range(9) if positive[row, j])
        expected.append(1 + sum(1 for j in range(9) if not positive[row, j] and scores[row, j] >= best))
    assert any_match_ranks(scores, positive).tolist() == expected
    with pytest.raises(ValueError, match="positive per row"):
        any_match_ranks(scores, torch.zeros(6, 9, dtype=torch.bool))
