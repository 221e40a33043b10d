"""Two towers for audio <-> sheet-music snippets: a log-mel tower and a sheet-image tower, a head each.

The towers of Carvalho, Widmer et al. (2023, "Self-Supervised Contrastive Learning for Robust
Audio–Sheet Music Retrieval Systems"; official code github.com/luisfvc/ucasr,
``ucasr/models/vgg_model.py``) are VGG-style: four blocks of (3x3 conv, batch norm, ELU) x 2 +
2x2 max-pool with 24/48/96/96 filters, then a 1x1 convolution to 32 channels with batch norm,
*flattened* (not pooled) and a linear layer to a 32-d embedding. Flattening keeps *where* a
feature is: on a staff the vertical position is the pitch and the horizontal one the time, and
in a spectrogram the rows are the pitch; a globally pooled CNN is blind to both (a transposed
melody, or the same notes in another order, would embed alike).

:class:`SnippetCNN` is that design at a CPU budget, tailored to both inputs here:

* one convolution per block instead of two, widths ``(8, 16, 32, 32)`` instead of
  ``(24, 48, 96, 96)``, and the first block a stride-2 convolution instead of convolution +
  max-pool: ~6 M multiply-adds a 64 x 256 sheet, ~4 M an 80 x 128 log-mel (the paper's
  blocks cost ~50x more), so a 10-minute run on 2 CPU cores sees a few hundred batches;
* a 1x1 convolution to ``squeeze`` (16) channels before flattening (the paper: 32), so the
  flattened map (16 x 4 x 16 = 1,024 for a sheet) stays the size of the paper's;
* batch norm as in the paper (gradient caching is then exact only per block; see
  :mod:`contrastkit.train.grad_cache`), ``norm="group"`` for an exact cache.

The audio side may also be :class:`contrastkit.nn.audio.AudioCNN` (``audio_tower="audio-cnn"``,
the library's globally pooled SmallResNet over the log-mel), the sheet side
:class:`~contrastkit.nn.resnet.SmallResNet` (``sheet_tower="small-resnet"``): the ablation of
the "keep positions" choice above.

:class:`AudioSheetTowers` adds a linear projection per tower to a shared ``embed_dim`` (the
paper's fine-tuning head; its pretraining head is an MLP, built by the method); it is the
``audio-sheet-towers`` encoder.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["AudioSheetTowers", "SnippetCNN", "build_audio_sheet_towers"]


class SnippetCNN(nn.Module):
    """A VGG-style CNN whose last feature map is flattened, so position (pitch, time) survives.

    Input ``[B, 1, H, W]`` (a sheet image) or ``[B, H, W]`` (a log-mel: each example is
    standardised, zero mean and unit variance, as :class:`~contrastkit.nn.audio.AudioCNN` does,
    so loudness does not decide the embedding). Output ``[B, output_dim]``.

    Args:
        input_size: ``(H, W)`` of the input (the flattened size depends on it).
        widths: channels of each block (each block halves the resolution).
        squeeze: channels of the 1x1 convolution before flattening.
        standardize: standardise each example first (the audio side).
        norm: ``"batch"`` (the paper) or ``"group"`` (no batch statistics: exact gradient caching).
        stem_stride: 2: the first block is a stride-2 convolution without max-pool (the default,
            ~4x cheaper); 1: every block is convolution + max-pool (the paper).

    Example:
        >>> SnippetCNN((64, 256))(torch.rand(2, 1, 64, 256)).shape
        torch.Size([2, 1024])
    """

    def __init__(self, input_size: Sequence[int], widths: Sequence[int] = (8, 16, 32, 32), squeeze: int = 16,
                 standardize: bool = False, norm: str = "batch", stem_stride: int = 2) -> None:
        super().__init__()
        height, width = (int(size) for size in input_size)
        factor = 2 ** len(widths)
        if not widths or height < factor or width < factor:
            raise ValueError(f"SnippetCNN: expected an input of at least {factor} x {factor} for {len(widths)} blocks, "
                             f"got {height} x {width}")
        if int(stem_stride) not in (1, 2):
            raise ValueError(f"encoder.stem_stride: expected 1 or 2, got {stem_stride}")
        if norm not in ("batch", "group"):
            raise ValueError(f"encoder.norm: expected 'batch' or 'group', got {norm!r}")

        def normalise(channels: int) -> nn.Module:
            return nn.BatchNorm2d(channels) if norm == "batch" else nn.GroupNorm(min(8, channels), channels)

        layers: list[nn.Module] = []
        previous = 1
        for block, channels in enumerate(widths):
            # The first block halves the resolution with a strided convolution (it still sees every
            # pixel): max-pooling after a full-resolution convolution cost ~4x more on a CPU.
            strided = block == 0 and int(stem_stride) == 2
            layers += [nn.Conv2d(previous, int(channels), 3, stride=2 if strided else 1, padding=1, bias=False),
                       normalise(int(channels)), nn.ELU()] + ([] if strided else [nn.MaxPool2d(2)])
            previous = int(channels)
        layers += [nn.Conv2d(previous, int(squeeze), 1, bias=False), normalise(int(squeeze)), nn.Flatten()]
        self.body = nn.Sequential(*layers)
        self.input_size, self.standardize = (height, width), bool(standardize)
        self.output_dim = int(squeeze) * (height // factor) * (width // factor)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        if inputs.dim() == 3:
            inputs = inputs[:, None]
        if inputs.dim() != 4 or inputs.shape[1] != 1 or tuple(inputs.shape[-2:]) != self.input_size:
            raise ValueError(f"SnippetCNN: expected [B, 1, {self.input_size[0]}, {self.input_size[1]}] or "
                             f"[B, {self.input_size[0]}, {self.input_size[1]}], got {tuple(inputs.shape)}")
        if self.standardize:
            mean = inputs.mean(dim=(1, 2, 3), keepdim=True)
            inputs = (inputs - mean) / inputs.std(dim=(1, 2, 3), keepdim=True).clamp_min(1e-5)
        return self.body(inputs)


class AudioSheetTowers(nn.Module):
    """An audio tower and a sheet tower, each followed by a linear projection to ``embed_dim``.

    Args:
        audio_tower: log-mels ``[B, n_mels, frames]`` -> ``[B, d_a]``, with ``output_dim``.
        sheet_tower: images ``[B, 1, H, W]`` -> ``[B, d_s]``, with ``output_dim``.
        embed_dim: the shared embedding size (paper: 32).
    """

    def __init__(self, audio_tower: nn.Module, sheet_tower: nn.Module, *, embed_dim: int = 32) -> None:
        super().__init__()
        if int(embed_dim) < 1:
            raise ValueError(f"encoder.embed_dim: expected a positive integer, got {embed_dim}")
        self.audio_tower, self.sheet_tower = audio_tower, sheet_tower
        self.audio_head = nn.Linear(int(audio_tower.output_dim), int(embed_dim))
        self.sheet_head = nn.Linear(int(sheet_tower.output_dim), int(embed_dim))
        self.output_dim = int(embed_dim)

    def audio_features(self, audio: torch.Tensor) -> torch.Tensor:
        """The audio tower's features ``[B, d_a]`` (before the head: what pretraining projects)."""
        return self.audio_tower(audio)

    def sheet_features(self, sheets: torch.Tensor) -> torch.Tensor:
        """The sheet tower's features ``[B, d_s]``."""
        return self.sheet_tower(sheets)

    def encode_audio(self, audio: torch.Tensor) -> torch.Tensor:
        """``[B, n_mels, frames]`` -> ``[B, embed_dim]`` (not normalised)."""
        return self.audio_head(self.audio_tower(audio))

    def encode_sheet(self, sheets: torch.Tensor) -> torch.Tensor:
        """``[B, 1, H, W]`` -> ``[B, embed_dim]`` (not normalised)."""
        return self.sheet_head(self.sheet_tower(sheets))

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """A sheet batch (4-D) or an audio batch (3-D) -> its embedding."""
        return self.encode_sheet(inputs) if inputs.dim() == 4 else self.encode_audio(inputs)


def build_audio_sheet_towers(audio_shape: Sequence[int] = (80, 128), sheet_shape: Sequence[int] = (1, 64, 256), *,
                             audio_tower: str = "snippet-cnn", sheet_tower: str = "snippet-cnn",
                             widths: Sequence[int] = (8, 16, 32, 32), squeeze: int = 16, norm: str = "batch",
                             stem_stride: int = 2, embed_dim: int = 32) -> AudioSheetTowers:
    """The ``audio-sheet-towers`` encoder (``audio_shape``/``sheet_shape`` come from the data).

    ``audio_tower``: ``snippet-cnn`` (:class:`SnippetCNN`, standardised input) or ``audio-cnn``
    (:class:`~contrastkit.nn.audio.AudioCNN` over the precomputed log-mels, widths ``widths[:3]``);
    ``sheet_tower``: ``snippet-cnn`` or ``small-resnet`` (globally pooled, widths ``widths[:3]``).
    """
    n_mels, frames = (int(size) for size in audio_shape)
    if audio_tower == "snippet-cnn":
        audio = SnippetCNN((n_mels, frames), widths, squeeze, standardize=True, norm=norm, stem_stride=stem_stride)
    elif audio_tower == "audio-cnn":
        from contrastkit.nn.audio import AudioCNN

        audio = AudioCNN(n_mels=n_mels, widths=tuple(widths)[:3], stem_stride=1)
    else:
        raise ValueError(f"encoder.audio_tower: expected 'snippet-cnn' or 'audio-cnn', got {audio_tower!r}")
    if sheet_tower == "snippet-cnn":
        sheet = SnippetCNN(tuple(sheet_shape)[-2:], widths, squeeze, norm=norm, stem_stride=stem_stride)
    elif sheet_tower == "small-resnet":
        from contrastkit.nn.resnet import SmallResNet

        sheet = SmallResNet(1, widths=tuple(widths)[:3], stem_stride=2, channels_last=False)
    else:
        raise ValueError(f"encoder.sheet_tower: expected 'snippet-cnn' or 'small-resnet', got {sheet_tower!r}")
    return AudioSheetTowers(audio, sheet, embed_dim=embed_dim)
