"""contrastkit.sklearn.ContrastiveTransformer: scikit-learn's estimator checks, cloning, pipelines, determinism.

scikit-learn's checks feed 2-D arrays, which are valid input for a series recipe (``[N, T]`` is
N univariate series), so the whole ``check_estimator`` suite runs on a tiny TS2Vec config.
Image recipes need 3-D input, for which scikit-learn generates no data: the data-free API
checks run on them, and the behaviour checks are done here on digits.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.utils import estimator_checks
from sklearn.utils.estimator_checks import parametrize_with_checks

from contrastkit.sklearn import ContrastiveTransformer

TINY_SERIES = dict(train_steps=2, train_batch_size=8, encoder_output_dim=8, encoder_hidden_dim=8, encoder_depth=2)
TINY_IMAGES = dict(train_steps=3, train_batch_size=32, encoder="mlp", random_state=0)

#: Checks that do not apply to series, each with the reason.
EXPECTED_FAILED = {
    "check_fit2d_1feature": "a one-column array is series of length 1, which TS2Vec cannot crop into two "
                            "overlapping views (it needs at least 2 time steps); the error says so in TS2Vec's words",
}  # fmt: skip


@parametrize_with_checks([ContrastiveTransformer("ts2vec", random_state=0, **TINY_SERIES)],
                         expected_failed_checks=lambda estimator: EXPECTED_FAILED)  # fmt: skip
def test_scikit_learn_estimator_checks_on_series(estimator, check):
    check(estimator)


#: The checks that need no generated data: they hold for image recipes too.
DATA_FREE_CHECKS = ("check_no_attributes_set_in_init", "check_parameters_default_constructible",
                    "check_get_params_invariance", "check_set_params", "check_estimator_cloneable",
                    "check_estimator_repr", "check_do_not_raise_errors_in_init_or_set_params", "check_valid_tag_types",
                    "check_estimator_tags_renamed", "check_mixin_order")  # fmt: skip


@pytest.mark.parametrize("name", DATA_FREE_CHECKS)
def test_data_free_checks_on_an_image_recipe(name):
    getattr(estimator_checks, name)("ContrastiveTransformer",
                                    ContrastiveTransformer("simclr-fashion-mnist", **TINY_IMAGES))  # fmt: skip


@pytest.fixture(scope="module")
def digits():
    data = load_digits()
    return (data.images / 16.0).astype(np.float32), data.target


def test_images_fit_transform_and_are_deterministic_given_random_state(digits):
    images, _ = digits
    model = ContrastiveTransformer("simclr-fashion-mnist", **TINY_IMAGES)
    first = model.fit(images[:256]).transform(images[:40])
    assert first.shape == (40, model.embedding_dim_) and first.dtype == np.float32
    assert model.modality_ == "image" and model.sample_shape_ == (1, 8, 8)
    again = clone(model).fit(images[:256]).transform(images[:40])
    np.testing.assert_array_equal(first, again)
    other = clone(model).set_params(random_state=1).fit(images[:256]).transform(images[:40])
    assert not np.allclose(first, other)


def test_fit_leaves_the_callers_random_state_alone(digits):
    images, _ = digits
    torch.manual_seed(123)
    np.random.seed(123)
    expected = torch.rand(3), np.random.rand(3)
    torch.manual_seed(123)
    np.random.seed(123)
    ContrastiveTransformer("simclr-fashion-mnist", **TINY_IMAGES).fit(images[:64])
    torch.testing.assert_close(torch.rand(3), expected[0])
    np.testing.assert_array_equal(np.random.rand(3), expected[1])


def test_clone_and_set_params_carry_recipe_overrides():
    model = ContrastiveTransformer("ts2vec", random_state=3, **TINY_SERIES)
    copy = clone(model)
    assert copy.get_params() == model.get_params() and copy.get_params()["train_steps"] == 2
    pipeline = make_pipeline(model, LogisticRegression())
    pipeline.set_params(contrastivetransformer__train_steps=4, contrastivetransformer__method_alpha=0.25)
    assert model.get_params()["train_steps"] == 4 and model.get_params()["method_alpha"] == 0.25
    X = np.random.RandomState(0).randn(20, 24)
    model.fit(X)
    assert model.config_["train"]["steps"] == 4 and model.config_["method"]["alpha"] == 0.25
    assert model.config_["seed"] == 3


def test_a_pipeline_learns_digits_better_than_the_untrained_encoder(digits):
    images, labels = digits
    train, test = slice(0, 1000), slice(1000, 1400)

    def accuracy(steps: int) -> float:
        transformer = ContrastiveTransformer("simclr-fashion-mnist", train_steps=steps, train_batch_size=128,
                                             train_lr=0.004, encoder="mlp", random_state=0)  # fmt: skip
        pipeline = make_pipeline(transformer, LogisticRegression(max_iter=500))
        return pipeline.fit(images[train], labels[train]).score(images[test], labels[test])

    trained, barely = accuracy(60), accuracy(1)
    assert trained > 0.7 and trained > barely, (trained, barely)


def test_supervised_methods_use_y(digits):
    images, labels = digits
    model = ContrastiveTransformer("simclr-fashion-mnist", **{**TINY_IMAGES, "method": "supcon"})
    assert model.fit(images[:64], labels[:64]).transform(images[:4]).shape[0] == 4
    with pytest.raises(ValueError, match="supervised: expected labels y"):
        clone(model).fit(images[:64])


def test_bad_input_fails_in_one_line_naming_what_is_wrong(digits):
    images, _ = digits
    with pytest.raises(ValueError, match="unknown parameter 'stpes'"):
        ContrastiveTransformer("ts2vec", stpes=3).fit(np.zeros((4, 8)))
    with pytest.raises(ValueError, match="train.stpes: unknown key; did you mean 'steps'"):
        ContrastiveTransformer("ts2vec", train_stpes=3).fit(np.zeros((4, 8)))
    with pytest.raises(ValueError, match=r"expected images as \[N, H, W\] or \[N, C, H, W\], got shape \(10, 64\)"):
        ContrastiveTransformer("simclr-fashion-mnist", **TINY_IMAGES).fit(images[:10].reshape(10, 64))
    model = ContrastiveTransformer("ts2vec", random_state=0, **TINY_SERIES).fit(np.random.randn(10, 2, 16))
    with pytest.raises(ValueError, match=r"samples of shape \(2, 12\), but .* fitted on samples of shape \(2, 16\)"):
        model.transform(np.random.randn(3, 2, 12))
    with pytest.raises(ValueError, match="X has 1 features, but ContrastiveTransformer is expecting 2"):
        model.transform(np.random.randn(3, 1, 16))
    with pytest.raises(ValueError, match="modality: expected 'auto' or one of"):
        ContrastiveTransformer("ts2vec", modality="audio").fit(np.zeros((4, 8)))
