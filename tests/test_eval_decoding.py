"""Tests for contrastive search, greedy and nucleus decoding (contrastkit.eval.decoding).

The cached decoders are checked token for token against slow references written here that
recompute the whole sequence without a cache. Models are tiny, random and in float64, so
that float noise cannot flip an argmax between the two paths.
"""

from __future__ import annotations

import math
import types

import pytest
import torch
import torch.nn.functional as F
import transformers

from contrastkit.eval.decoding import _repeat_cache, _select_cache, contrastive_search, greedy_search, nucleus_sample
from contrastkit.eval.generation_metrics import sequence_isotropy

VOCAB = 50


def _gpt2() -> torch.nn.Module:
    torch.manual_seed(0)
    config = transformers.GPT2Config(
        vocab_size=VOCAB, n_embd=32, n_layer=2, n_head=2, n_positions=128,
        initializer_range=0.3, bos_token_id=0, eos_token_id=0,
    )
    return transformers.GPT2LMHeadModel(config).double().eval()


def _llama() -> torch.nn.Module:
    torch.manual_seed(1)
    config = transformers.LlamaConfig(
        vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=128,
        initializer_range=0.3, bos_token_id=0, eos_token_id=0, pad_token_id=0,
    )
    return transformers.LlamaForCausalLM(config).double().eval()


@pytest.fixture(scope="module")
def gpt2() -> torch.nn.Module:
    return _gpt2()


@pytest.fixture(scope="module")
def llama() -> torch.nn.Module:
    return _llama()


# ---------------------------------------------------------------------------------------
# slow references: the whole sequence recomputed without a cache
# ---------------------------------------------------------------------------------------


def _full_pass(model, tokens: list[int]):
    with torch.no_grad():
        out = model(input_ids=torch.tensor([tokens]), output_hidden_states=True)
    return out.logits[0, -1], out.hidden_states[-1][0]


def naive_contrastive(model, prompt: list[int], top_k: int, alpha: float, steps: int) -> list[int]:
    """The paper's formula, one candidate at a time: k + 1 full forward passes per step."""
    tokens = list(prompt)
    for _ in range(steps):
        logits, context = _full_pass(model, tokens)
        probs = torch.softmax(logits, dim=-1)
        top_probs, top_ids = probs.topk(top_k)
        best_score, best_token = -math.inf, None
        for prob, token in zip(top_probs.tolist(), top_ids.tolist()):
            _, states = _full_pass(model, tokens + [token])
            candidate = states[-1]
            penalty = max(float(F.cosine_similarity(candidate, context[j], dim=0)) for j in range(len(tokens)))
            score = (1 - alpha) * prob - alpha * penalty
            if score > best_score:
                best_score, best_token = score, token
        tokens.append(best_token)
    return tokens


def naive_greedy(model, prompt: list[int], steps: int) -> list[int]:
    tokens = list(prompt)
    for _ in range(steps):
        logits, _ = _full_pass(model, tokens)
        tokens.append(int(logits.argmax()))
    return tokens


PROMPT = [3, 7, 11, 2]


# ---------------------------------------------------------------------------------------
# decoding
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("architecture", ["gpt2", "llama"])
@pytest.mark.parametrize(("top_k", "alpha"), [(5, 0.6), (3, 0.9)])
def test_contrastive_search_matches_uncached_reference(request, architecture, top_k, alpha):
    model = request.getfixturevalue(architecture)
    steps = 10
    fast = contrastive_search(model, torch.tensor([PROMPT]), top_k=top_k, alpha=alpha, max_new_tokens=steps)
    assert fast.shape == (1, len(PROMPT) + steps)
    assert fast[0].tolist() == naive_contrastive(model, PROMPT, top_k, alpha, steps)


def test_contrastive_search_penalty_changes_the_output(gpt2):
    # Guards against a penalty that silently does nothing: alpha must matter on this model.
    greedy = greedy_search(gpt2, torch.tensor([PROMPT]), max_new_tokens=12)
    contrastive = contrastive_search(gpt2, torch.tensor([PROMPT]), top_k=5, alpha=0.6, max_new_tokens=12)
    assert greedy.tolist() != contrastive.tolist()


@pytest.mark.parametrize("architecture", ["gpt2", "llama"])
def test_greedy_matches_argmax_loop_and_alpha_zero(request, architecture):
    model = request.getfixturevalue(architecture)
    steps = 15
    greedy = greedy_search(model, torch.tensor([PROMPT]), max_new_tokens=steps)
    assert greedy[0].tolist() == naive_greedy(model, PROMPT, steps)
    alpha_zero = contrastive_search(model, torch.tensor([PROMPT]), top_k=5, alpha=0.0, max_new_tokens=steps)
    assert torch.equal(alpha_zero, greedy)
    top_one = contrastive_search(model, torch.tensor([PROMPT]), top_k=1, alpha=0.6, max_new_tokens=steps)
    assert torch.equal(top_one, greedy)


@pytest.mark.parametrize("architecture", ["gpt2", "llama"])
def test_left_padded_batch_decodes_each_row_as_alone(request, architecture):
    model = request.getfixturevalue(architecture)
    long_prompt, short_prompt = [5, 9, 13, 21], [8, 30]
    pad = 1
    input_ids = torch.tensor([long_prompt, [pad, pad] + short_prompt])
    mask = torch.tensor([[1, 1, 1, 1], [0, 0, 1, 1]])
    steps = 8
    for decode in (
        lambda ids, m: contrastive_search(model, ids, attention_mask=m, top_k=4, alpha=0.6, max_new_tokens=steps),
        lambda ids, m: greedy_search(model, ids, attention_mask=m, max_new_tokens=steps),
    ):
        batched = decode(input_ids, mask)
        alone_long = decode(torch.tensor([long_prompt]), None)
        alone_short = decode(torch.tensor([short_prompt]), None)
        assert batched[0].tolist() == alone_long[0].tolist()
        assert batched[1, 2:].tolist() == alone_short[0].tolist()
        assert batched[1, :2].tolist() == [pad, pad]


def test_eos_stops_each_row_and_pads_it(gpt2):
    steps = 12
    free_run = contrastive_search(gpt2, torch.tensor([PROMPT]), max_new_tokens=steps)[0, len(PROMPT):].tolist()
    # An eos that first appears at step >= 2 of the free run.
    stop_step = next(i for i in range(2, steps) if free_run[i] not in free_run[:i])
    eos = free_run[stop_step]
    stopped = contrastive_search(gpt2, torch.tensor([PROMPT]), max_new_tokens=steps, eos_token_id=eos)
    assert stopped[0, len(PROMPT):].tolist() == free_run[: stop_step + 1]

    # Two rows: the first ends early and is padded while the other keeps going.
    other_prompt = [17, 4, 29, 40]
    other_run = contrastive_search(gpt2, torch.tensor([other_prompt]), max_new_tokens=steps, eos_token_id=eos)
    batched = contrastive_search(
        gpt2, torch.tensor([PROMPT, other_prompt]), max_new_tokens=steps, eos_token_id=eos, pad_token_id=49
    )
    length = batched.shape[1] - len(PROMPT)
    assert length == other_run.shape[1] - len(other_prompt)
    assert length > stop_step + 1, "the second row must outlive the first for this test to mean something"
    assert batched[0, len(PROMPT):].tolist() == free_run[: stop_step + 1] + [49] * (length - stop_step - 1)
    assert batched[1].tolist() == other_run[0].tolist()

    # A list of eos ids works like one, and greedy stops too.
    assert torch.equal(contrastive_search(gpt2, torch.tensor([PROMPT]), max_new_tokens=steps, eos_token_id=[eos, 48]), stopped)
    greedy_run = greedy_search(gpt2, torch.tensor([PROMPT]), max_new_tokens=steps)[0, len(PROMPT):].tolist()
    greedy_eos = greedy_run[1]
    greedy_stopped = greedy_search(gpt2, torch.tensor([PROMPT]), max_new_tokens=steps, eos_token_id=greedy_eos)
    assert greedy_stopped[0, len(PROMPT):].tolist() == greedy_run[: greedy_run.index(greedy_eos) + 1]


def test_training_flags_restored_and_dropout_off():
    model = _gpt2()
    model.train()
    model.transformer.h[0].eval()  # a mixed state must come back exactly as it was
    before = [module.training for module in model.modules()]
    result = contrastive_search(model, torch.tensor([PROMPT]), max_new_tokens=8)
    assert [module.training for module in model.modules()] == before
    greedy_search(model, torch.tensor([PROMPT]), max_new_tokens=4)
    sequence_isotropy(model, torch.tensor([PROMPT]))
    assert [module.training for module in model.modules()] == before
    # GPT-2 has dropout 0.1: only eval mode reproduces the eval-mode result.
    model.eval()
    assert torch.equal(result, contrastive_search(model, torch.tensor([PROMPT]), max_new_tokens=8))


def test_zero_new_tokens_returns_the_prompt(gpt2):
    prompt = torch.tensor([PROMPT])
    assert torch.equal(contrastive_search(gpt2, prompt, max_new_tokens=0), prompt)
    assert torch.equal(greedy_search(gpt2, prompt, max_new_tokens=0), prompt)


class _LegacyTupleCacheLM(torch.nn.Module):
    """An older-style causal LM: a ``past_key_values`` keyword, a nested-tuple cache and no
    ``position_ids`` argument."""

    def __init__(self, lm: torch.nn.Module) -> None:
        super().__init__()
        self.lm = lm

    def forward(self, input_ids, attention_mask=None, past_key_values=None, use_cache=True, output_hidden_states=False):
        cache = None if past_key_values is None else transformers.DynamicCache(ddp_cache_data=past_key_values)
        out = self.lm(input_ids=input_ids, attention_mask=attention_mask, cache=cache, use_cache=True,
                      output_hidden_states=output_hidden_states)
        legacy = tuple((layer.keys, layer.values) for layer in out.cache.layers)
        return types.SimpleNamespace(logits=out.logits, hidden_states=out.hidden_states, past_key_values=legacy)


def test_legacy_tuple_cache_and_keyword(gpt2):
    legacy = _LegacyTupleCacheLM(gpt2)
    prompt = torch.tensor([PROMPT])
    assert torch.equal(
        contrastive_search(legacy, prompt, max_new_tokens=6), contrastive_search(gpt2, prompt, max_new_tokens=6)
    )
    keys = torch.arange(6.0).reshape(2, 3)
    cache = ((keys, keys + 10),)
    repeated = _repeat_cache(cache, 2)
    assert repeated[0][0][:, 0].tolist() == [0.0, 0.0, 3.0, 3.0]
    assert _select_cache(repeated, torch.tensor([1, 2]))[0][1][:, 0].tolist() == [10.0, 13.0]
    with pytest.raises(ValueError, match="past_key_values"):
        _repeat_cache(object(), 2)


def test_nucleus_sampling(gpt2):
    prompt = torch.tensor([PROMPT])
    steps, top_p = 15, 0.5

    def draw(seed: int) -> torch.Tensor:
        return nucleus_sample(gpt2, prompt, top_p=top_p, max_new_tokens=steps, generator=torch.Generator().manual_seed(seed))

    first = draw(0)
    assert torch.equal(first, draw(0))
    assert any(not torch.equal(first, draw(seed)) for seed in range(1, 4))
    # Every drawn token lies in its step's nucleus, computed here from a full pass.
    tokens = first[0].tolist()
    for t in range(len(PROMPT), len(tokens)):
        logits, _ = _full_pass(gpt2, tokens[:t])
        probs = torch.softmax(logits, dim=-1).tolist()
        ranked = sorted(range(VOCAB), key=lambda v: -probs[v])
        nucleus, mass = [], 0.0
        for v in ranked:
            nucleus.append(v)
            mass += probs[v]
            if mass >= top_p:
                break
        assert tokens[t] in nucleus
    # A vanishing nucleus is greedy.
    tiny = nucleus_sample(gpt2, prompt, top_p=1e-9, max_new_tokens=steps, generator=torch.Generator().manual_seed(0))
    assert torch.equal(tiny, greedy_search(gpt2, prompt, max_new_tokens=steps))


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"alpha": -0.1}, "alpha"),
        ({"alpha": 1.5}, "alpha"),
        ({"alpha": float("nan")}, "alpha"),
        ({"top_k": 0}, "top_k"),
        ({"top_k": 2.5}, "top_k"),
        ({"max_new_tokens": -1}, "max_new_tokens"),
        ({"eos_token_id": -3}, "eos_token_id"),
        ({"eos_token_id": 3, "pad_token_id": -1}, "pad_token_id"),
    ],
)
def test_contrastive_search_rejects_bad_options(gpt2, options, message):
    with pytest.raises(ValueError, match=message):
        contrastive_search(gpt2, torch.tensor([PROMPT]), **options)


@pytest.mark.parametrize(
    ("input_ids", "mask", "message"),
    [
        (torch.zeros(1, 0, dtype=torch.long), None, "non-empty"),
        (torch.zeros(0, 3, dtype=torch.long), None, "non-empty"),
        (torch.tensor(PROMPT), None, r"\[B, T\]"),
        (torch.tensor([[1.0, 2.0]]), None, "integer"),
        (torch.tensor([[1, 2, 3]]), torch.tensor([[1, 1, 0]]), "left padding"),
        (torch.tensor([[1, 2, 3]]), torch.tensor([[0, 0, 0]]), "at least one token"),
        (torch.tensor([[1, 2, 3]]), torch.tensor([[1, 1]]), "attention_mask"),
        (torch.tensor([[1, 2, 3]]), torch.tensor([[1, 2, 1]]), "0 \\(padding\\)"),
    ],
)
def test_decoders_reject_bad_prompts(gpt2, input_ids, mask, message):
    with pytest.raises(ValueError, match=message):
        contrastive_search(gpt2, input_ids, attention_mask=mask)
    with pytest.raises(ValueError, match=message):
        greedy_search(gpt2, input_ids, attention_mask=mask)


def test_nucleus_rejects_bad_top_p(gpt2):
    for top_p in (0.0, 1.2, -1.0):
        with pytest.raises(ValueError, match="top_p"):
            nucleus_sample(gpt2, torch.tensor([PROMPT]), top_p=top_p)
