"""Evaluation protocols: what a run measures for a kind of data, behind one interface.

Each protocol (:class:`~contrastkit.eval.protocols.base.EvaluationProtocol`) scores a model
periodically, at the end and against baselines from the same run, and declares the
``eval:`` settings it reads. A modality names its protocol; the trainer and the run
orchestration call only the interface.

======================  ==========================================================  ===============
protocol                what it measures                                            used by
======================  ==========================================================  ===============
``classification``      weighted kNN, linear probe, optional RBF-SVM probe           image, series
``retrieval``           dense retrieval, trec_eval MRR@10 / nDCG@10 / Recall / MAP   text
``node-graph``          node probe, link-prediction AUC and Hits@50                 graph
``graph-set``           kNN and linear probe of pooled graph embeddings              graphs
``ranking``             full ranking Recall@20 / NDCG@20                             interactions
``image-text``          image <-> text R@1/5/10, zero-shot top-1 with templates     image-text
``tuples``              Symile zero-shot: one field from the others (MIP / sum)      tuples
``audio-sheet``         snippet retrieval both ways (R@k, MRR, median), piece ID    audio-sheet
======================  ==========================================================  ===============
"""

from __future__ import annotations

import dataclasses

from contrastkit.eval.protocols.base import EvaluationProtocol, Model, ProtocolSettings, evaluation_mode, settings_from
from contrastkit.eval.protocols.classification import ClassificationProtocol, ClassificationSettings
from contrastkit.eval.protocols.graph import GraphSetProtocol, GraphSetSettings, NodeGraphProtocol, NodeGraphSettings
from contrastkit.eval.protocols.image_text import ImageTextProtocol, ImageTextSettings
from contrastkit.eval.protocols.paired_tensors import PairedTensorsProtocol
from contrastkit.eval.protocols.ranking import RankingProtocol, RankingSettings
from contrastkit.eval.protocols.retrieval import RetrievalProtocol, RetrievalSettings
from contrastkit.eval.protocols.tuples import TupleProtocol
from contrastkit.utils.registry import Registry

PROTOCOLS: Registry[type[EvaluationProtocol]] = Registry("evaluation protocol", {
    "classification": ClassificationProtocol,
    "retrieval": RetrievalProtocol,
    "node-graph": NodeGraphProtocol,
    "graph-set": GraphSetProtocol,
    "ranking": RankingProtocol,
    "image-text": ImageTextProtocol,
    "tuples": TupleProtocol,  # Symile zero-shot over tuples (issue 16)
    "audio-sheet": PairedTensorsProtocol,  # audio <-> sheet snippets (issue 16, seed #11)
})


def protocol_setting_names() -> set[str]:
    """Every ``eval:`` key some registered protocol reads."""
    return {field.name for protocol in PROTOCOLS.values() for field in dataclasses.fields(protocol.settings_type)}


__all__ = [
    "PROTOCOLS", "ClassificationProtocol", "ClassificationSettings", "EvaluationProtocol", "GraphSetProtocol",
    "GraphSetSettings", "ImageTextProtocol", "ImageTextSettings", "Model", "NodeGraphProtocol", "NodeGraphSettings",
    "ProtocolSettings", "RankingProtocol", "RankingSettings", "RetrievalProtocol", "RetrievalSettings",
    "evaluation_mode", "protocol_setting_names", "settings_from",
]
