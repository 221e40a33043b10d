"""Evaluation of frozen representations: kNN, linear probe, SVM probe, geometry, tables and plots.

Every function takes embeddings ``[N, D]`` (see :func:`extract_features`) and returns
plain floats; accuracies are fractions in ``[0, 1]``.
"""

from contrastkit.eval.features import extract_features
from contrastkit.eval.fewshot import (
    evaluate_episodes,
    opta,
    sample_episodes,
    transport_plan,
)
from contrastkit.eval.decoding import contrastive_search, greedy_search
from contrastkit.eval.generation_metrics import diversity, isotropy, repetition
from contrastkit.eval.geometry import alignment, alignment_uniformity, uniformity
from contrastkit.eval.graph import link_prediction, node_classification
from contrastkit.eval.knn import knn_accuracy, knn_scores
from contrastkit.eval.knn_detection import KNNDetector
from contrastkit.eval.label_fractions import (
    label_fraction_probe,
    stratified_label_subset,
)
from contrastkit.eval.linear_probe import fit_logistic_regression, linear_probe_accuracy
from contrastkit.eval.plots import plot_embedding_2d, plot_loss_curve
from contrastkit.eval.prompt_segmentation import (
    jaccard_index,
    mean_iou,
    prompt_segment,
    similarity_histogram_overlap,
)
from contrastkit.eval.recommendation import popularity_scores, recall_ndcg_at_k
from contrastkit.eval.report import evaluate_representation, format_table, print_table
from contrastkit.eval.retrieval import (
    dense_run,
    evaluate_run,
    map_at_r,
    ranking_metrics,
)
from contrastkit.eval.sts import sts_spearman
from contrastkit.eval.svm import svm_probe

__all__ = [
    "alignment",
    "alignment_uniformity",
    "contrastive_search",
    "dense_run",
    "diversity",
    "evaluate_representation",
    "evaluate_run",
    "extract_features",
    "fit_logistic_regression",
    "format_table",
    "greedy_search",
    "isotropy",
    "knn_accuracy",
    "knn_scores",
    "KNNDetector",
    "linear_probe_accuracy",
    "link_prediction",
    "map_at_r",
    "node_classification",
    "plot_embedding_2d",
    "plot_loss_curve",
    "popularity_scores",
    "print_table",
    "ranking_metrics",
    "recall_ndcg_at_k",
    "repetition",
    "sts_spearman",
    "svm_probe",
    "uniformity",
]
__all__ += [  # seed-paper components
    "evaluate_episodes",
    "jaccard_index",
    "label_fraction_probe",
    "mean_iou",
    "opta",
    "prompt_segment",
    "sample_episodes",
    "similarity_histogram_overlap",
    "stratified_label_subset",
    "transport_plan",
]
