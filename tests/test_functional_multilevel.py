"""multi_level_contrastive against a naive loop, and the similarity ordering it enforces."""

import math

import pytest
import torch
import torch.nn.functional as F

from contrastkit.functional.multilevel import multi_level_contrastive

# 2 classes x 2 families per class x 2 models per family x 3 texts per model = 24 rows.
MODEL = torch.arange(8).repeat_interleave(3)
FAMILY = MODEL // 2
CLASS = FAMILY // 2
HIERARCHY = torch.stack([MODEL, FAMILY, CLASS])


def _naive(embeddings, level_labels, temperature, level_weights):
    z = F.normalize(embeddings, dim=1)
    batch = z.shape[0]
    terms, weights = [], []
    for level, labels in enumerate(level_labels.tolist()):
        rows = []
        for i in range(batch):
            positives = [j for j in range(batch) if j != i and labels[j] == labels[i]]
            if not positives:
                continue
            denominator = torch.logsumexp(
                torch.stack([z[i] @ z[a] / temperature for a in range(batch) if a != i]), dim=0
            )
            rows.append(sum(denominator - z[i] @ z[p] / temperature for p in positives) / len(positives))
        if rows and level_weights[level] > 0:
            terms.append(level_weights[level] * sum(rows) / len(rows))
            weights.append(level_weights[level])
    return sum(terms) / sum(weights)


@pytest.mark.parametrize("level_weights", [None, [0.5, 2.0, 1.0], [1.0, 0.0, 3.0]])
def test_matches_naive_loop(level_weights):
    generator = torch.Generator().manual_seed(0)
    embeddings = torch.randn(10, 4, generator=generator, dtype=torch.float64, requires_grad=True)
    # Level 0 has singletons (rows 8 and 9 alone) that must be skipped at that level only.
    level_labels = torch.tensor(
        [
            [0, 0, 1, 1, 2, 2, 3, 3, 4, 5],
            [0, 0, 0, 0, 1, 1, 1, 1, 2, 2],
            [0, 0, 0, 0, 0, 0, 1, 1, 1, 1],
        ]
    )
    got = multi_level_contrastive(embeddings, level_labels, temperature=0.2, level_weights=level_weights)
    expected = _naive(embeddings, level_labels, 0.2, level_weights or [1.0, 1.0, 1.0])
    torch.testing.assert_close(got, expected)
    grad, = torch.autograd.grad(got, embeddings)
    expected_grad, = torch.autograd.grad(expected, embeddings)
    torch.testing.assert_close(grad, expected_grad)


def test_single_level_equals_supcon_form():
    generator = torch.Generator().manual_seed(1)
    embeddings = torch.randn(6, 3, generator=generator, dtype=torch.float64)
    labels = torch.tensor([[0, 1, 0, 1, 2, 2]])
    z = F.normalize(embeddings, dim=1)
    expected = 0.0
    for i in range(6):
        positives = [j for j in range(6) if j != i and labels[0, j] == labels[0, i]]
        log_denominator = math.log(sum(math.exp(float(z[i] @ z[a]) / 0.5) for a in range(6) if a != i))
        expected += sum(log_denominator - float(z[i] @ z[p]) / 0.5 for p in positives) / len(positives)
    got = multi_level_contrastive(embeddings, labels, temperature=0.5)
    assert float(got) == pytest.approx(expected / 6, rel=1e-10)


def _mean_similarities(embeddings):
    z = F.normalize(embeddings, dim=1)
    similarity = z @ z.T
    same = lambda labels: labels.unsqueeze(1) == labels.unsqueeze(0)
    not_self = ~torch.eye(len(MODEL), dtype=torch.bool)
    groups = [
        same(MODEL) & not_self,  # same model
        same(FAMILY) & ~same(MODEL),  # same family, other model
        same(CLASS) & ~same(FAMILY),  # same class, other family
        ~same(CLASS),  # other class
    ]
    return [float(similarity[group].mean()) for group in groups]


def _optimise(level_labels, seed):
    generator = torch.Generator().manual_seed(seed)
    embeddings = torch.randn(len(MODEL), 8, generator=generator).requires_grad_()
    optimiser = torch.optim.SGD([embeddings], lr=0.5)
    for _ in range(300):
        optimiser.zero_grad()
        multi_level_contrastive(embeddings, level_labels, temperature=0.1).backward()
        optimiser.step()
    return _mean_similarities(embeddings.detach())


def test_optimisation_orders_similarities_by_level():
    model, family, same_class, other = _optimise(HIERARCHY, seed=0)
    assert model > family + 0.05
    assert family > same_class + 0.05
    assert same_class > other + 0.05


def test_finest_level_alone_does_not_order_the_hierarchy():
    # Control: the ordering above comes from the coarser levels, not from the optimisation itself.
    _, family, same_class, other = _optimise(HIERARCHY[:1], seed=0)
    assert not (family > same_class + 0.05 and same_class > other + 0.05)


def test_bad_input():
    embeddings = torch.randn(4, 3)
    with pytest.raises(ValueError, match="level_labels"):
        multi_level_contrastive(embeddings, torch.tensor([0, 0, 1, 1]))
    with pytest.raises(ValueError, match="level_labels"):
        multi_level_contrastive(embeddings, torch.tensor([[0, 1, 2, 3]]))  # nobody has a positive
    with pytest.raises(ValueError, match="level_weights"):
        multi_level_contrastive(embeddings, torch.tensor([[0, 0, 1, 1]]), level_weights=[-1.0])
    with pytest.raises(ValueError, match="temperature"):
        multi_level_contrastive(embeddings, torch.tensor([[0, 0, 1, 1]]), temperature=0.0)
    with pytest.raises(ValueError, match="level_labels"):
        multi_level_contrastive(embeddings, torch.tensor([[0.0, 0.0, 1.0, 1.0]]))
