"""Audio towers: a log-mel front end in plain tensor ops, and a small CNN over it.

torchaudio from PyPI does not load beside torch 2.13 here, so the spectrogram is
``torch.stft`` (Hann window, centred frames, power 2) followed by a triangular mel
filterbank on the HTK mel scale ``mel(f) = 2595 log10(1 + f/700)``, then ``log(x + eps)``:
the front end of most audio-contrast papers (e.g. the audio–sheet retrieval of #11, CLAP).

:class:`AudioCNN` accepts either waveforms ``[B, T]`` (the front end runs inside the
model, so augmentations and batching stay on waveforms) or precomputed log-mel
spectrograms ``[B, n_mels, frames]`` (a cache computed once: the cheap path for a
10-minute CPU run), and pools a :class:`~contrastkit.nn.resnet.SmallResNet` over the
time–frequency image to one vector.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from contrastkit.nn.resnet import SmallResNet

__all__ = ["AudioCNN", "LogMelSpectrogram", "mel_filterbank"]


def _hz_to_mel(hz: torch.Tensor) -> torch.Tensor:
    return 2595.0 * torch.log10(1.0 + hz / 700.0)


def _mel_to_hz(mel: torch.Tensor) -> torch.Tensor:
    return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)


def mel_filterbank(n_fft: int, n_mels: int, sample_rate: int, f_min: float = 0.0,
                   f_max: float | None = None) -> torch.Tensor:
    """Triangular filters on the HTK mel scale: ``[n_fft // 2 + 1, n_mels]``, peak 1 each.

    Filter ``m`` rises linearly from mel point ``m`` to ``m + 1`` and falls to ``m + 2``
    (``n_mels + 2`` points evenly spaced in mel between ``f_min`` and ``f_max``),
    evaluated at the STFT bin frequencies (torchaudio's ``melscale_fbanks`` with
    ``norm=None``, ``mel_scale='htk'``).
    """
    f_max = sample_rate / 2 if f_max is None else float(f_max)
    if not 0 <= f_min < f_max <= sample_rate / 2:
        raise ValueError(f"mel filterbank: expected 0 <= f_min < f_max <= sample_rate/2 = {sample_rate / 2}, "
                         f"got f_min={f_min}, f_max={f_max}")
    if n_mels < 1 or n_fft < 2:
        raise ValueError(f"mel filterbank: expected n_mels >= 1 and n_fft >= 2, got n_mels={n_mels}, n_fft={n_fft}")
    bins = torch.linspace(0, sample_rate / 2, n_fft // 2 + 1, dtype=torch.float64)
    points = _mel_to_hz(torch.linspace(float(_hz_to_mel(torch.tensor(f_min))),
                                       float(_hz_to_mel(torch.tensor(f_max))), n_mels + 2, dtype=torch.float64))
    lower, centre, upper = points[:-2], points[1:-1], points[2:]
    rising = (bins[:, None] - lower) / (centre - lower)
    falling = (upper - bins[:, None]) / (upper - centre)
    return torch.clamp(torch.minimum(rising, falling), min=0.0).float()


class LogMelSpectrogram(nn.Module):
    """Waveforms ``[B, T]`` (or ``[T]``) -> log-mel spectrograms ``[B, n_mels, frames]``.

    ``frames = 1 + T // hop_length`` (centred frames). Defaults suit 16 kHz speech and
    synthesised music: 32 ms windows (``n_fft=512``), 10 ms hops, 64 mel bands.

    Example:
        >>> LogMelSpectrogram(sample_rate=16000)(torch.randn(2, 16000)).shape
        torch.Size([2, 64, 101])
    """

    def __init__(self, sample_rate: int = 16000, n_fft: int = 512, hop_length: int = 160, n_mels: int = 64,
                 f_min: float = 0.0, f_max: float | None = None, eps: float = 1e-6) -> None:
        super().__init__()
        self.sample_rate, self.n_fft, self.hop_length, self.n_mels = int(sample_rate), int(n_fft), int(hop_length), int(n_mels)
        self.eps = float(eps)
        self.register_buffer("window", torch.hann_window(self.n_fft), persistent=False)
        self.register_buffer("filterbank", mel_filterbank(self.n_fft, self.n_mels, self.sample_rate, f_min, f_max),
                             persistent=False)

    def forward(self, waves: torch.Tensor) -> torch.Tensor:
        if waves.dim() == 1:
            waves = waves[None]
        if waves.dim() != 2:
            raise ValueError(f"LogMelSpectrogram: expected waveforms [B, T] or [T], got shape {tuple(waves.shape)}")
        spectrum = torch.stft(waves.float(), self.n_fft, hop_length=self.hop_length, window=self.window,
                              center=True, return_complex=True)
        power = spectrum.real.square() + spectrum.imag.square()          # [B, n_fft//2+1, frames]
        mel = torch.einsum("bft,fm->bmt", power, self.filterbank)
        return torch.log(mel + self.eps)


class AudioCNN(nn.Module):
    """A small CNN audio tower: (log-mel front end) + SmallResNet over ``[1, n_mels, frames]``.

    Inputs ``[B, T]`` are waveforms (the front end runs first); inputs ``[B, n_mels, frames]``
    are taken as log-mel spectrograms already. Each spectrogram is standardised per example
    (zero mean, unit variance over time and frequency) so loudness does not decide the
    embedding.

    Args:
        sample_rate, n_fft, hop_length, n_mels: the front end (:class:`LogMelSpectrogram`).
        widths: SmallResNet stage widths; ``output_dim`` is ``widths[-1]``.
        stem_stride: 2 halves the spectrogram first (4x less compute).

    Example:
        >>> tower = AudioCNN(widths=(16, 32))
        >>> tower(torch.randn(4, 8000)).shape
        torch.Size([4, 32])
    """

    def __init__(self, sample_rate: int = 16000, n_fft: int = 512, hop_length: int = 160, n_mels: int = 64,
                 widths: Sequence[int] = (32, 64, 128), stem_stride: int = 2) -> None:
        super().__init__()
        self.frontend = LogMelSpectrogram(sample_rate, n_fft, hop_length, n_mels)
        self.n_mels = int(n_mels)
        self.body = SmallResNet(1, widths=widths, stem_stride=stem_stride, channels_last=False)
        self.output_dim = self.body.output_dim

    def spectrogram(self, inputs: torch.Tensor) -> torch.Tensor:
        """The standardised log-mel spectrogram ``[B, n_mels, frames]`` of waveforms or spectrograms."""
        if inputs.dim() == 2:
            inputs = self.frontend(inputs)
        elif inputs.dim() != 3 or inputs.shape[1] != self.n_mels:
            raise ValueError(f"AudioCNN: expected waveforms [B, T] or log-mel spectrograms [B, n_mels={self.n_mels}, frames], "
                             f"got shape {tuple(inputs.shape)}")
        mean = inputs.mean(dim=(1, 2), keepdim=True)
        std = inputs.std(dim=(1, 2), keepdim=True).clamp_min(1e-5)
        return (inputs - mean) / std

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.body(self.spectrogram(inputs)[:, None])
