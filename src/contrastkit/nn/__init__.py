"""Encoders and heads: image ResNets, MLPs, projector/predictor MLPs, momentum copies.

Encoders map an input batch to a representation ``[B, output_dim]``; heads map
representations to the space the objective sees.
"""

from contrastkit.nn.heads import PredictionHead, ProjectionHead
from contrastkit.nn.mlp import MLPEncoder
from contrastkit.nn.momentum import MomentumEncoder
from contrastkit.nn.registry import ENCODERS, build_encoder, encoder_names
from contrastkit.nn.resnet import BasicBlock, SmallResNet, resnet18_small
from contrastkit.nn.series import (
    DilatedConvEncoder,
    SeriesInstanceEncoder,
    max_pool_time,
)

__all__ = [
    "ENCODERS",
    "BasicBlock",
    "DilatedConvEncoder",
    "MLPEncoder",
    "MomentumEncoder",
    "PredictionHead",
    "ProjectionHead",
    "SeriesInstanceEncoder",
    "SmallResNet",
    "build_encoder",
    "encoder_names",
    "max_pool_time",
    "resnet18_small",
]
