"""AudioSheetCLIP: its losses against slow references, the two stages, gradient caching and 2-process DDP.

The towers are small ``SnippetCNN``s with group norm (no batch statistics, so gradient caching
and DDP see exactly the one-process numbers) and the views are the identity.
"""

from __future__ import annotations

import functools

import pytest
import torch
import torch.nn.functional as F

from contrastkit.data.batch import Batch
from contrastkit.functional.contrastive import clip_loss
from contrastkit.methods.audio_sheet import AudioSheetCLIP, pairwise_hinge
from contrastkit.nn.paired_towers import (
    AudioSheetTowers,
    SnippetCNN,
    build_audio_sheet_towers,
)
from contrastkit.train.grad_cache import grad_cache_backward
from contrastkit.views.audio_sheet import build_audio_sheet_views
from tests.conftest import ddp_step_results, parameter_grads, spawn_ranks

WORLD, LOCAL = 2, 4


def _method(**options) -> AudioSheetCLIP:
    torch.manual_seed(0)
    towers = AudioSheetTowers(SnippetCNN((8, 16), widths=(4, 4), squeeze=2, standardize=True, norm="group"),
                              SnippetCNN((8, 32), widths=(4, 4), squeeze=2, norm="group"), embed_dim=5)
    return AudioSheetCLIP(towers, build_audio_sheet_views("none"), **options)


def _batch(rows: int = WORLD * LOCAL, start: int = 0) -> Batch:
    generator = torch.Generator().manual_seed(3)
    audio, sheet = torch.randn(WORLD * LOCAL, 8, 16, generator=generator), torch.rand(WORLD * LOCAL, 1, 8, 32,
                                                                                     generator=generator)
    rows_ = slice(start, start + rows)
    return Batch(inputs={"audio": audio[rows_], "sheet": sheet[rows_]}, labels=torch.arange(WORLD * LOCAL)[rows_])



def test_pairwise_hinge_against_a_loop() -> None:
    generator = torch.Generator().manual_seed(0)
    queries, candidates = torch.randn(5, 3, generator=generator), torch.randn(5, 3, generator=generator)
    q, c = F.normalize(queries, dim=-1), F.normalize(candidates, dim=-1)
    terms = [max(0.0, 0.6 - float(q[i] @ c[i] - q[i] @ c[j])) for i in range(5) for j in range(5) if i != j]
    assert float(pairwise_hinge(queries, candidates, 0.6)) == pytest.approx(sum(terms) / len(terms), rel=1e-6)
    with pytest.raises(ValueError, match="B >= 2"):
        pairwise_hinge(queries[:1], candidates[:1])


def test_the_cross_modal_loss_is_clip_on_the_two_towers() -> None:
    method = _method()
    batch = _batch()
    audio = method.encoder.encode_audio(batch.inputs["audio"])
    sheet = method.encoder.encode_sheet(batch.inputs["sheet"])
    expected = clip_loss(audio, sheet, 1 / 0.07)
    torch.testing.assert_close(method(batch).loss, expected)
    triplet = _method(objective="triplet")
    torch.testing.assert_close(triplet(batch).loss, pairwise_hinge(sheet, audio, 0.6))


def test_pretraining_then_cross_modal_stage_switches_at_pretrain_steps() -> None:
    method = _method(pretrain_steps=2, pretrain_hidden=16)
    batch = _batch()
    assert method.pretraining
    output = method(batch)
    assert set(output.logs) == {"pretrain_audio", "pretrain_sheet"}
    output.loss.backward()
    grads = parameter_grads(method)
    # Stage 1 never looks at the pairing: the fine-tuning heads and the temperature get zero gradient.
    assert float(grads["encoder.audio_head.weight"].abs().sum()) == 0.0
    assert float(grads["log_logit_scale"].abs()) == 0.0
    assert float(grads["pretrain_heads.audio.0.weight"].abs().sum()) > 0
    assert float(grads["encoder.sheet_tower.body.0.weight"].abs().sum()) > 0
    # Shuffling the sheets against the audio leaves the stage-1 loss unchanged (no pairing is used).
    method.eval()
    shuffled = Batch(inputs={"audio": batch.inputs["audio"], "sheet": batch.inputs["sheet"].flip(0)})
    torch.testing.assert_close(method(shuffled).loss, method(batch).loss)
    method.train()
    method.on_step_end(0, 10)
    assert method.pretraining
    method.on_step_end(1, 10)
    assert not method.pretraining and "logit_scale" in method(batch).logs


def test_bad_encoder_and_options_are_clear_errors() -> None:
    with pytest.raises(ValueError, match="audio-sheet-towers"):
        AudioSheetCLIP(torch.nn.Linear(2, 2), build_audio_sheet_views("none"))
    with pytest.raises(ValueError, match="method.objective"):
        _method(objective="cca")
    with pytest.raises(ValueError, match="'audio' and 'sheet'"):
        _method()(Batch(inputs=torch.zeros(4, 3)))


def test_registered_towers_train_and_beat_nothing_by_shape() -> None:
    towers = build_audio_sheet_towers((80, 128), (1, 64, 256))
    audio, sheet = torch.randn(2, 80, 128), torch.rand(2, 1, 64, 256)
    assert towers.encode_audio(audio).shape == (2, 32) and towers(sheet).shape == (2, 32)
    pooled = build_audio_sheet_towers((80, 128), (1, 64, 256), audio_tower="audio-cnn", sheet_tower="small-resnet")
    assert pooled(audio).shape == (2, 32)
    with pytest.raises(ValueError, match="at least 16 x 16"):
        SnippetCNN((8, 64))


@pytest.mark.parametrize("options", [{}, {"pretrain_steps": 5, "pretrain_batch_norm": False}])
def test_gradient_cache_equals_the_plain_step(options) -> None:
    # float64: the convolutions' float32 sums in another order differ by ~1e-6, hiding nothing here.
    single = _batch()
    batch = Batch(inputs={key: value.double() for key, value in single.inputs.items()}, labels=single.labels)
    plain = _method(**options).double()
    plain(batch).loss.backward()
    cached = _method(**options).double()
    grad_cache_backward(cached, batch, micro_batch_size=2, device=torch.device("cpu"))
    expected, got = parameter_grads(plain), parameter_grads(cached)
    assert got.keys() == expected.keys()
    for key in expected:
        torch.testing.assert_close(got[key], expected[key], atol=1e-10, rtol=1e-8)


def _worker(rank: int, port: int, out_dir: str) -> None:
    stages = {"clip": {}, "pretrain": {"pretrain_steps": 5, "pretrain_batch_norm": False}}
    builders = {name: functools.partial(_method, **options) for name, options in stages.items()}
    results = ddp_step_results(rank, port, WORLD, builders, lambda r: _batch(LOCAL, r * LOCAL))
    torch.save(results, f"{out_dir}/rank{rank}.pt")


@pytest.fixture(scope="module")
def ranks(tmp_path_factory) -> list[dict]:
    return spawn_ranks(_worker, WORLD, tmp_path_factory.mktemp("audio-sheet-ddp"))


@pytest.mark.parametrize("name,options", [("clip", {}),
                                          ("pretrain", {"pretrain_steps": 5, "pretrain_batch_norm": False})])
def test_two_processes_equal_one_process_with_the_doubled_batch(ranks, name, options) -> None:
    method = _method(**options)
    loss = method(_batch()).loss
    loss.backward()
    expected = parameter_grads(method)
    assert "encoder.audio_tower.body.0.weight" in expected
    for result in ranks:
        # float32 convolutions summed in another order: agreement to ~1e-6 absolute.
        torch.testing.assert_close(result[f"{name}/loss"], loss.detach(), atol=1e-6, rtol=1e-6)
        for key in expected:
            torch.testing.assert_close(result[f"{name}/grad/{key}"], expected[key], atol=1e-5, rtol=1e-4,
                                       msg=lambda m: f"{key}: {m}")
