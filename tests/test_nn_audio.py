"""The log-mel front end against a slow per-frame reference, and the audio CNN's shapes and errors."""

import math

import pytest
import torch

from contrastkit.nn.audio import AudioCNN, LogMelSpectrogram, mel_filterbank
from contrastkit.nn.registry import build_encoder


def test_mel_filterbank_triangles_peak_at_their_centres():
    bank = mel_filterbank(n_fft=1024, n_mels=10, sample_rate=16000)
    assert bank.shape == (513, 10)
    assert bank.min() >= 0 and bank.max() <= 1 + 1e-6
    # Each filter is unimodal and centred at increasing frequencies.
    peaks = bank.argmax(dim=0)
    assert torch.all(peaks[1:] > peaks[:-1])
    # Adjacent triangles overlap (a filter's right half is the next one's left half).
    assert torch.all((bank[:, :-1] * bank[:, 1:]).sum(0) > 0)


def test_log_mel_matches_a_per_frame_reference():
    torch.manual_seed(0)
    sample_rate, n_fft, hop, n_mels = 8000, 256, 80, 16
    wave = torch.randn(1000, dtype=torch.float64)
    frontend = LogMelSpectrogram(sample_rate, n_fft, hop, n_mels)
    fast = frontend(wave.float())[0].double()
    # Slow reference: reflect-pad by n_fft/2, window each frame, |rfft|^2, filterbank, log.
    padded = torch.nn.functional.pad(wave[None, None], (n_fft // 2, n_fft // 2), mode="reflect")[0, 0]
    window = torch.tensor([0.5 - 0.5 * math.cos(2 * math.pi * n / n_fft) for n in range(n_fft)], dtype=torch.float64)
    bank = mel_filterbank(n_fft, n_mels, sample_rate).double()
    frames = []
    for start in range(0, padded.numel() - n_fft + 1, hop):
        power = torch.fft.rfft(padded[start:start + n_fft] * window).abs() ** 2
        frames.append(torch.log(power @ bank + 1e-6))
    slow = torch.stack(frames, dim=1)
    assert fast.shape == slow.shape == (n_mels, 1 + 1000 // hop)
    assert torch.allclose(fast, slow, atol=1e-3, rtol=1e-4)


def test_a_tone_lights_the_band_that_holds_its_frequency():
    sample_rate = 16000
    t = torch.arange(sample_rate) / sample_rate
    frontend = LogMelSpectrogram(sample_rate, n_mels=40)
    low = frontend(torch.sin(2 * math.pi * 300 * t))[0].mean(1).argmax()
    high = frontend(torch.sin(2 * math.pi * 4000 * t))[0].mean(1).argmax()
    assert high > low + 10


def test_audio_cnn_takes_waves_or_spectrograms_and_ignores_loudness():
    torch.manual_seed(0)
    tower = build_encoder("audio-cnn", n_mels=32, widths=(8, 16)).eval()
    wave = torch.randn(3, 4000)
    from_wave = tower(wave)
    assert from_wave.shape == (3, tower.output_dim) == (3, 16)
    spectrogram = tower.frontend(wave)
    assert torch.allclose(tower(spectrogram), from_wave, atol=1e-5)
    # Per-example standardisation: scaling the log-mel by a constant gain shifts it only.
    assert torch.allclose(tower(spectrogram + 3.0), from_wave, atol=1e-4)
    with pytest.raises(ValueError, match="n_mels"):
        tower(torch.randn(2, 40, 50))
