"""Encoders and heads: image ResNets, MLPs, GNNs, LightGCN, projector/predictor MLPs, momentum copies.

Encoders map an input batch to a representation ``[B, output_dim]``; heads map
representations to the space the objective sees.
"""

from contrastkit.nn.asymmetric import AsymmetricProjection
from contrastkit.nn.augmenters import Augmenter, MetaAugmenters, meta_step
from contrastkit.nn.bow import BoWPredictor, OnlineVocabulary
from contrastkit.nn.concept_bottleneck import (
    ConceptBottleneck,
    concept_matrix_search,
    sparse_cbm_loss,
)
from contrastkit.nn.direct_predictor import DirectPredictor
from contrastkit.nn.experts import ExpertRouting, add_routed_experts
from contrastkit.nn.gnn import GNNEncoder, graph_readout
from contrastkit.nn.heads import PredictionHead, ProjectionHead
from contrastkit.nn.lightgcn import LightGCN
from contrastkit.nn.mlp import MLPEncoder
from contrastkit.nn.momentum import MomentumEncoder
from contrastkit.nn.registry import ENCODERS, build_encoder, encoder_names
from contrastkit.nn.resnet import BasicBlock, SmallResNet, resnet18_small
from contrastkit.nn.series import (
    DilatedConvEncoder,
    SeriesInstanceEncoder,
    max_pool_time,
)
from contrastkit.nn.sparse_masking import SparKDecoder, random_patch_mask
from contrastkit.nn.super_resolution import PatchDiscriminator, TinySRNet
from contrastkit.nn.whitening import ShuffledGroupWhitening

__all__ = [
    "add_routed_experts",
    "AsymmetricProjection",
    "Augmenter",
    "BasicBlock",
    "build_encoder",
    "DilatedConvEncoder",
    "encoder_names",
    "ENCODERS",
    "ExpertRouting",
    "GNNEncoder",
    "graph_readout",
    "LightGCN",
    "max_pool_time",
    "meta_step",
    "MetaAugmenters",
    "MLPEncoder",
    "MomentumEncoder",
    "PredictionHead",
    "ProjectionHead",
    "resnet18_small",
    "SeriesInstanceEncoder",
    "ShuffledGroupWhitening",
    "SmallResNet",
]
__all__ += [  # seed-paper components
    "BoWPredictor",
    "ConceptBottleneck",
    "DirectPredictor",
    "OnlineVocabulary",
    "PatchDiscriminator",
    "SparKDecoder",
    "TinySRNet",
    "concept_matrix_search",
    "random_patch_mask",
    "sparse_cbm_loss",
]
