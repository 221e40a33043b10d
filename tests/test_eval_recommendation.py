"""Recall@k / NDCG@k by full ranking (hand-computed and against a sorting loop) and the run evaluator."""

from __future__ import annotations

import math

import pytest
import torch

from contrastkit.data.interactions import interaction_splits
from contrastkit.eval.recommendation import popularity_scores, recall_ndcg_at_k
from contrastkit.methods.recommendation import LightGCNBPR
from contrastkit.nn.lightgcn import LightGCN
from contrastkit.eval.protocols.ranking import RankingProtocol, RankingSettings


def test_toy_example_by_hand():
    # D = 1: item scores 5 > 4 > 3 > 2 > 1 for users 0 and 1, reversed for user 2.
    users = torch.tensor([[1.0], [1.0], [-1.0]])
    items = torch.tensor([[5.0], [4.0], [3.0], [2.0], [1.0]])
    train = torch.tensor([[0, 1, 2], [0, 1, 4]])
    test = torch.tensor([[0, 0, 0, 1, 2], [1, 2, 3, 0, 2]])
    # user 0: item 0 masked, top-2 = [1, 2], test {1, 2, 3}: 2 hits -> recall 2/3 (not 2/min(2, 3)), NDCG 1
    # user 1: item 1 masked, top-2 = [0, 2], test {0}: hit at rank 1 -> recall 1, NDCG 1
    # user 2: item 4 masked, top-2 = [3, 2], test {2}: hit at rank 2 -> recall 1, NDCG 1/log2(3) (IDCG of 1 item)
    scores = recall_ndcg_at_k(users, items, train, test, k=2)
    assert scores["recall_at_2"] == pytest.approx((2 / 3 + 1 + 1) / 3)
    assert scores["ndcg_at_2"] == pytest.approx((1 + 1 + 1 / math.log2(3)) / 3)
    assert set(scores) == {"recall_at_2", "ndcg_at_2"}
    # Without the training mask users 0 and 2 would rank their training items first.
    unmasked = recall_ndcg_at_k(users, items, torch.zeros(2, 0, dtype=torch.long), test, k=2)
    assert unmasked["recall_at_2"] < scores["recall_at_2"]


def test_users_without_test_items_are_skipped_and_k_is_capped():
    users, items = torch.tensor([[1.0], [1.0]]), torch.tensor([[2.0], [1.0]])
    test = torch.tensor([[0], [1]])  # user 1 has no test item
    scores = recall_ndcg_at_k(users, items, torch.zeros(2, 0, dtype=torch.long), test, k=20)
    assert scores["recall_at_20"] == 1.0  # user 0 finds item 1 among all (2) items
    assert scores["ndcg_at_20"] == pytest.approx(1 / math.log2(3))
    empty = recall_ndcg_at_k(users, items, test, torch.zeros(2, 0, dtype=torch.long), k=20)
    assert empty == {"recall_at_20": 0.0, "ndcg_at_20": 0.0}


def _loop_reference(users, items, train, test, k):
    train_sets, test_sets = {}, {}
    for u, i in train.T.tolist():
        train_sets.setdefault(u, set()).add(i)
    for u, i in test.T.tolist():
        test_sets.setdefault(u, set()).add(i)
    recalls, ndcgs = [], []
    for user, relevant in sorted(test_sets.items()):
        scores = (users[user] @ items.T).tolist()
        ranking = [i for i in sorted(range(len(scores)), key=lambda i: -scores[i]) if i not in train_sets.get(user, ())]
        top = ranking[:k]
        hits = [1.0 if item in relevant else 0.0 for item in top]
        recalls.append(sum(hits) / len(relevant))
        dcg = sum(hit / math.log2(rank + 2) for rank, hit in enumerate(hits))
        idcg = sum(1 / math.log2(rank + 2) for rank in range(min(k, len(relevant))))
        ndcgs.append(dcg / idcg)
    return sum(recalls) / len(recalls), sum(ndcgs) / len(ndcgs)


@pytest.mark.parametrize("k", [1, 5, 20])
def test_random_data_matches_loop(k):
    generator = torch.Generator().manual_seed(k)
    users, items = torch.randn(40, 6, generator=generator), torch.randn(30, 6, generator=generator)
    splits = interaction_splits((torch.rand(40, 30, generator=generator) < 0.25).nonzero().T, 40, 30, seed=k)
    data = splits.test
    scores = recall_ndcg_at_k(users, items, data.train_pairs, data.test_pairs, k=k, batch_users=7)
    recall, ndcg = _loop_reference(users, items, data.train_pairs, data.test_pairs, k)
    assert scores[f"recall_at_{k}"] == pytest.approx(recall)
    assert scores[f"ndcg_at_{k}"] == pytest.approx(ndcg)


def test_popularity_scores_and_errors():
    train = torch.tensor([[0, 1, 1, 2], [3, 3, 0, 3]])
    assert popularity_scores(train, 5).tolist() == [1.0, 0.0, 0.0, 3.0, 0.0]
    with pytest.raises(ValueError, match="item ids"):
        recall_ndcg_at_k(torch.randn(3, 2), torch.randn(3, 2), train, train)
    with pytest.raises(ValueError, match="feature size"):
        recall_ndcg_at_k(torch.randn(3, 2), torch.randn(5, 3), train, train)
    with pytest.raises(ValueError, match="k >= 1"):
        recall_ndcg_at_k(torch.randn(3, 2), torch.randn(5, 2), train, train, k=0)


def _toy_splits():
    generator = torch.Generator().manual_seed(0)
    pairs = (torch.rand(50, 40, generator=generator) < 0.2).nonzero().T
    return interaction_splits(pairs, 50, 40, seed=0, name="toy")


def test_ranking_protocol_interface():
    splits = _toy_splits()
    config = RankingSettings(test_subset=None, validation_queries=10, batch_size=16)
    evaluator = RankingProtocol(splits, config, torch.device("cpu"), seed=0)
    assert len(evaluator.test) == len(splits.test) and len(evaluator.validation) == 10
    torch.manual_seed(0)
    method = LightGCNBPR(LightGCN(50, 40, splits.test.train_pairs, embedding_dim=8), ())
    assert evaluator.columns() == ["recall_at_20", "ndcg_at_20"]
    final, features = evaluator.final(method)
    assert features is None and final["eval_users"] == len(splits.test)
    users, items = method.user_item_embeddings()
    expected = recall_ndcg_at_k(users, items, splits.test.train_pairs, splits.test.test_pairs, k=20)
    assert final["recall_at_20"] == pytest.approx(expected["recall_at_20"])
    periodic = evaluator(method)
    assert set(periodic) == {"val_recall_at_20", "val_ndcg_at_20"}
    baselines = evaluator.baselines(method)
    assert set(baselines) == {"popularity", "random_init"}
    counts = popularity_scores(splits.test.train_pairs, 40)
    expected_popularity = recall_ndcg_at_k(torch.ones(50, 1), counts[:, None], splits.test.train_pairs,
                                           splits.test.test_pairs)  # fmt: skip
    assert baselines["popularity"]["ndcg_at_20"] == pytest.approx(expected_popularity["ndcg_at_20"])
    assert method.training  # evaluation restores the mode


def test_ranking_protocol_subsets_and_rejects_other_data():
    splits = _toy_splits()
    evaluator = RankingProtocol(splits, RankingSettings(test_subset=5), torch.device("cpu"), seed=0)
    assert len(evaluator.test) == 5
    splits.test = object()
    with pytest.raises(ValueError, match="InteractionData"):
        RankingProtocol(splits, RankingSettings(), torch.device("cpu"), seed=0)
