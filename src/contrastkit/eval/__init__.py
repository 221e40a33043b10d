"""Evaluation of frozen representations: kNN, linear probe, SVM probe, geometry, tables and plots.

Every function takes embeddings ``[N, D]`` (see :func:`extract_features`) and returns
plain floats; accuracies are fractions in ``[0, 1]``.
"""

from contrastkit.eval.features import extract_features
from contrastkit.eval.geometry import alignment, alignment_uniformity, uniformity
from contrastkit.eval.knn import knn_accuracy, knn_scores
from contrastkit.eval.linear_probe import fit_logistic_regression, linear_probe_accuracy
from contrastkit.eval.plots import plot_embedding_2d, plot_loss_curve
from contrastkit.eval.report import evaluate_representation, format_table, print_table
from contrastkit.eval.svm import svm_probe

__all__ = [
    "alignment",
    "alignment_uniformity",
    "evaluate_representation",
    "extract_features",
    "fit_logistic_regression",
    "format_table",
    "knn_accuracy",
    "knn_scores",
    "linear_probe_accuracy",
    "plot_embedding_2d",
    "plot_loss_curve",
    "print_table",
    "svm_probe",
    "uniformity",
]
