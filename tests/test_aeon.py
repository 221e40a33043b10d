"""contrastkit.aeon.TS2VecTransformer: aeon's estimator checks and an SVC pipeline on ucr:GunPoint."""

from __future__ import annotations

import pytest
from sklearn.pipeline import make_pipeline
from sklearn.svm import SVC

aeon = pytest.importorskip("aeon", reason="aeon is not installed (a contrastkit dependency): pip install aeon")

from aeon.testing.estimator_checking import check_estimator  # noqa: E402

from contrastkit.aeon import TS2VecTransformer, ts2vec_iterations  # noqa: E402
from contrastkit.data import load_dataset  # noqa: E402


def test_aeon_estimator_checks_pass():
    results = check_estimator(TS2VecTransformer, raise_exceptions=False)
    failed = {name: result for name, result in results.items() if result != "PASSED"}
    assert len(results) > 15 and not failed, failed


def test_ts2vec_iteration_rule():
    assert ts2vec_iterations(100_000) == 200 and ts2vec_iterations(100_001) == 600


def test_svc_pipeline_on_gunpoint_beats_svc_on_raw_series():
    splits = load_dataset("ucr:GunPoint")
    x_train, y_train = splits.train.inputs.numpy(), splits.train.labels.numpy()
    x_test, y_test = splits.test.inputs.numpy(), splits.test.labels.numpy()
    transformer = TS2VecTransformer(output_dim=64, hidden_dim=32, depth=6, n_iters=100, random_state=0)
    model = make_pipeline(transformer, SVC(C=10)).fit(x_train, y_train)
    accuracy = model.score(x_test, y_test)
    raw = SVC(C=10).fit(x_train[:, 0], y_train).score(x_test[:, 0], y_test)
    assert transformer.n_iters_ == 100 and model[0].transformer_.embedding_dim_ == 64
    assert accuracy >= 0.9 and accuracy > raw, (accuracy, raw)  # chance is 0.5; TS2Vec's paper: 0.980
