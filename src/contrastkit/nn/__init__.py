"""Encoders and heads: image ResNets, MLPs, projector/predictor MLPs, momentum copies.

Encoders map an input batch to a representation ``[B, output_dim]``; heads map
representations to the space the objective sees.
"""

from contrastkit.nn.asymmetric import AsymmetricProjection
from contrastkit.nn.experts import ExpertRouting, add_routed_experts
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
from contrastkit.nn.whitening import ShuffledGroupWhitening

__all__ = [
    "add_routed_experts",
    "AsymmetricProjection",
    "BasicBlock",
    "build_encoder",
    "DilatedConvEncoder",
    "encoder_names",
    "ENCODERS",
    "ExpertRouting",
    "max_pool_time",
    "MLPEncoder",
    "MomentumEncoder",
    "PredictionHead",
    "ProjectionHead",
    "resnet18_small",
    "SeriesInstanceEncoder",
    "ShuffledGroupWhitening",
    "SmallResNet",
]
