"""Log-mel spectrograms in plain tensor ops: the audio features data sets cache and audio towers take.

torchaudio from PyPI does not load beside torch 2.13 here, so the spectrogram is
``torch.stft`` (Hann window, centred frames with reflect padding, power 2) followed by a
triangular mel filterbank on the HTK mel scale ``mel(f) = 2595 log10(1 + f/700)``, then
``log(x + eps)``: the front end of most audio-contrast papers (e.g. the audio–sheet
retrieval of #11, CLAP). :class:`contrastkit.nn.audio.LogMelSpectrogram` is the module form.
"""

from __future__ import annotations

import torch

__all__ = ["log_mel_spectrogram", "mel_filterbank"]


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


def log_mel_spectrogram(waves: torch.Tensor, n_fft: int = 512, hop_length: int = 160,
                        filterbank: torch.Tensor | None = None, window: torch.Tensor | None = None,
                        eps: float = 1e-6, *, sample_rate: int = 16000, n_mels: int = 64) -> torch.Tensor:
    """Waveforms ``[B, T]`` (or ``[T]``) -> log-mel spectrograms ``[B, n_mels, 1 + T // hop_length]``.

    ``filterbank`` (``[n_fft // 2 + 1, n_mels]``) and ``window`` (``[n_fft]``) are built from
    ``sample_rate`` / ``n_mels`` (Hann window) when not given; pass them to reuse them.

    Example:
        >>> log_mel_spectrogram(torch.randn(2, 16000)).shape
        torch.Size([2, 64, 101])
    """
    if waves.dim() == 1:
        waves = waves[None]
    if waves.dim() != 2:
        raise ValueError(f"log_mel_spectrogram: expected waveforms [B, T] or [T], got shape {tuple(waves.shape)}")
    if filterbank is None:
        filterbank = mel_filterbank(n_fft, n_mels, sample_rate).to(waves.device)
    if window is None:
        window = torch.hann_window(n_fft, device=waves.device)
    spectrum = torch.stft(waves.float(), n_fft, hop_length=hop_length, window=window, center=True,
                          return_complex=True)
    power = spectrum.real.square() + spectrum.imag.square()  # [B, n_fft//2+1, frames]
    return torch.log(torch.einsum("bft,fm->bmt", power, filterbank) + eps)
