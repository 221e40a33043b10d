"""Audio towers: a log-mel front end as a module, and a small CNN over it.

The spectrogram itself (``torch.stft``, HTK mel filterbank, ``log(x + eps)``; torchaudio
does not load beside torch 2.13 here) is :func:`contrastkit.data.audio_features.log_mel_spectrogram`,
in the data layer so that data sets can cache spectrograms without importing networks;
:class:`LogMelSpectrogram` holds its window and filterbank as buffers.

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

from contrastkit.data.audio_features import log_mel_spectrogram, mel_filterbank
from contrastkit.nn.resnet import SmallResNet

__all__ = ["AudioCNN", "LogMelSpectrogram", "mel_filterbank"]


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
        return log_mel_spectrogram(waves, self.n_fft, self.hop_length, self.filterbank, self.window, self.eps)


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
