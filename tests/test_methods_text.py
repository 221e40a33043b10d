"""Text methods (MNRL, SimCSE/WhitenedCSE, Contriever, CoCoSoDa) on the real MiniLM with short inputs.

Each objective is checked against a naive recomputation from the encoder's outputs, or a
property that could fail (queues fill, momentum moves, masking removes columns).
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from contrastkit.data.batch import Batch
from contrastkit.data.text import TextPairDataset
from contrastkit.methods import build_method
from contrastkit.nn.text import TextEncoder
from contrastkit.train.grad_cache import grad_cache_backward, split_batch
from contrastkit.utils.seed import seed_everything
from contrastkit.views.text import build_text_views

QUERIES = ["add two numbers", "read a whole file", "sort a list of items", "open a network socket",
           "parse a json string", "join path components"]
CODE = ["def add(a, b):\n    return a + b", "def read(p):\n    with open(p) as f:\n        return f.read()",
        "def order(x):\n    return sorted(x)", "def connect():\n    return socket.socket()",
        "def load(s):\n    return json.loads(s)", "def join(*parts):\n    return os.path.join(*parts)"]
NEGATIVES = ["def sub(a, b):\n    return a - b", "def write(p, t):\n    open(p, 'w').write(t)",
             "def rev(x):\n    return x[::-1]", "def close(s):\n    s.close()",
             "def dump(o):\n    return json.dumps(o)", "def split(p):\n    return p.split('/')"]


@pytest.fixture(scope="module")
def encoder_state() -> dict:
    return TextEncoder(max_length=24).state_dict()


def make(name: str, encoder_state: dict, preset: str = "dropout", **options):
    seed_everything(0)
    encoder = TextEncoder(max_length=24)
    encoder.load_state_dict(encoder_state)
    views = build_text_views(preset, mask_token_id=encoder.mask_token_id, pad_token_id=encoder.tokenizer.pad_token_id)
    return build_method(name, encoder, views, **options)


def batch(negatives: bool = False) -> Batch:
    dataset = TextPairDataset(QUERIES, CODE, NEGATIVES if negatives else None)
    return dataset.__getitems__(list(range(len(QUERIES))))


@pytest.mark.parametrize("with_negatives", [False, True])
def test_mnrl_equals_cross_entropy_over_scaled_cosines(encoder_state, with_negatives):
    method = make("mnrl", encoder_state, scale=20.0).eval()  # eval: no dropout, deterministic
    out = method(batch(with_negatives))
    encoder = method.encoder
    with torch.no_grad():
        q = encoder.encode(QUERIES, query=True)
        columns = encoder.encode(CODE + (NEGATIVES if with_negatives else []))
    logits = 20.0 * F.normalize(q, dim=1) @ F.normalize(columns, dim=1).T
    expected = F.cross_entropy(logits, torch.arange(len(QUERIES)))
    torch.testing.assert_close(out.loss.detach(), expected, atol=1e-5, rtol=1e-4)


def test_mnrl_gradient_cache_equals_one_big_batch(encoder_state):
    full = make("mnrl", encoder_state).eval()
    cached = make("mnrl", encoder_state).eval()
    data = batch(negatives=True)
    full(data).loss.backward()
    grad_cache_backward(cached, data, 2, device=torch.device("cpu"))
    for (name, a), (_, b) in zip(full.named_parameters(), cached.named_parameters()):
        if a.grad is None:
            assert b.grad is None, name
            continue
        torch.testing.assert_close(a.grad, b.grad, atol=1e-5, rtol=1e-3, msg=name)
    assert [len(block) for block in split_batch(data, 4)] == [4, 2]


def test_false_negative_masking_drops_every_column_above_the_threshold(encoder_state):
    plain = make("mnrl", encoder_state).eval()(batch())
    assert plain.loss.item() > 1e-4
    # Threshold -1: every in-batch document is a "false negative"; only the positive stays.
    masked = make("mnrl", encoder_state, false_negative_threshold=-1.0).eval()(batch())
    assert masked.logs["false_negative_rate"] == pytest.approx(1.0)
    assert masked.loss.item() == pytest.approx(0.0, abs=1e-6)
    # Threshold 1: nothing is that similar; the loss is the plain one.
    same = make("mnrl", encoder_state, false_negative_threshold=1.0).eval()(batch())
    assert same.logs["false_negative_rate"] == 0.0
    torch.testing.assert_close(same.loss, plain.loss)


def test_simcse_views_differ_only_by_dropout(encoder_state):
    method = make("simcse", encoder_state)
    method.eval()  # no dropout: both passes are the same embedding
    z_a, z_b = method.embeddings(batch())
    torch.testing.assert_close(z_a, z_b)
    method.train()
    z_a, z_b = method.embeddings(batch())
    assert not torch.allclose(z_a, z_b)
    loss = method(batch()).loss
    loss.backward()
    assert torch.isfinite(loss) and loss.item() > 0


def test_whitened_cse_trains_three_whitened_views(encoder_state):
    method = make("simcse", encoder_state, num_positives=3, whitening_groups=4).train()
    embeddings = method.embeddings(batch())
    assert len(embeddings) == 3
    out = method(batch())
    out.loss.backward()
    grads = [p.grad for p in method.encoder.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)


def test_contriever_fills_its_queue_and_moves_the_key_encoder(encoder_state):
    method = make("contriever", encoder_state, "contriever", queue_size=12, base_momentum=0.5).train()
    optimizer = torch.optim.SGD(method.encoder.parameters(), lr=1.0)
    key_before = next(method.key_encoder.parameters()).clone()
    for step in range(3):
        out = method(batch())
        optimizer.zero_grad()
        out.loss.backward()
        optimizer.step()
        method.on_step_end(step, 3)
        assert out.logs["queue_filled"] == min(6 * step, 12)
    online = next(method.encoder.parameters())
    key_after = next(method.key_encoder.parameters())
    assert not torch.equal(key_before, key_after)
    # EMA: the key weights lie strictly between where they started and the online weights.
    assert (key_after - online).abs().sum() < (key_before - online).abs().sum()


def test_cocosoda_inter_only_is_the_inter_term_and_queues_fill(encoder_state):
    full = make("cocosoda", encoder_state, "cocosoda", queue_size=12).train()
    out = full(batch())
    assert out.loss.item() == pytest.approx(out.logs["inter"] + out.logs["intra"], rel=1e-5)
    full.on_step_end(0, 2)
    assert len(full.query_queue) == len(full.code_queue) == 6
    inter_only = make("cocosoda", encoder_state, "cocosoda", intra_weight=0.0).train()
    out = inter_only(batch())
    assert "intra" not in out.logs and out.loss.item() == pytest.approx(out.logs["inter"])
    with_types = make("cocosoda", encoder_state, "cocosoda", type_replacement=0.5).train()
    assert torch.isfinite(with_types(batch()).loss)


def test_cocosoda_inter_term_has_the_official_four_blocks(encoder_state):
    """Online->momentum and online->online in both directions, each with its own queue."""
    from contrastkit.functional import info_nce

    method = make("cocosoda", encoder_state, "cocosoda", queue_size=12, intra_weight=0.0).train()
    method(batch())
    method.on_step_end(0, 2)  # fills all four queues
    assert len(method.online_query_queue) == len(method.online_code_queue) == 6
    embeddings = method.embeddings(batch())
    queries, code, query_keys, code_keys = embeddings
    out = method.loss_from_embeddings(embeddings, batch())
    t = method.temperature
    expected = torch.stack([
        info_nce(queries, code_keys, negatives=method.code_queue.negatives(), temperature=t),
        info_nce(code, query_keys, negatives=method.query_queue.negatives(), temperature=t),
        info_nce(queries, code, negatives=method.online_code_queue.negatives(), temperature=t),
        info_nce(code, queries, negatives=method.online_query_queue.negatives(), temperature=t),
    ]).mean()
    torch.testing.assert_close(out.loss, expected)
    two_terms = make("cocosoda", encoder_state, "cocosoda", intra_weight=0.0, online_terms=False).train()
    assert not hasattr(two_terms, "online_query_queue")


def test_text_methods_reject_bad_batches_and_encoders(encoder_state):
    method = make("mnrl", encoder_state)
    with pytest.raises(ValueError, match="text inputs"):
        method(Batch(torch.zeros(4, 3)))
    with pytest.raises(ValueError, match="at least 2 rows"):
        method(TextPairDataset(QUERIES[:1], CODE[:1]).__getitems__([0]))
    with pytest.raises(ValueError, match="'positive'"):
        method(Batch({"query": QUERIES, "document": CODE}))
    with pytest.raises(ValueError, match="text encoder"):
        build_method("mnrl", torch.nn.Linear(3, 3), build_text_views("dropout"))
    with pytest.raises(ValueError, match="false_negative_threshold"):
        make("mnrl", encoder_state, false_negative_threshold=2.0)
