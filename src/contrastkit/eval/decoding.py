"""Contrastive search, greedy and nucleus decoding for any causal LM (Su & Collier, 2022).

"Contrastive Search Is What You Need For Neural Text Generation" (Su & Collier, TMLR 2023;
the decoding method comes from SimCTG, Su et al., NeurIPS 2022). At each step ``t`` the
``k`` most probable next tokens ``V_k`` are scored by model confidence minus a degeneration
penalty, the largest cosine similarity between the candidate's hidden state and those of the
context so far:

    x_t = argmax_{v in V_k} [ (1 - alpha) * p(v | x_<t) - alpha * max_{j<t} cos(h_v, h_{x_j}) ]

``h_v`` is the last-layer hidden state of the sequence with ``v`` appended and ``h_{x_j}`` the
last-layer states of every context token, the prompt included (as in the reference code).
``alpha = 0`` is greedy search. Paper defaults for open-ended generation: ``top_k = 5``,
``alpha = 0.6``.

Transformers 5.x no longer ships contrastive search in ``generate``, so this module holds its
own decoding loop for any causal LM with the Hugging Face calling convention::

    out = model(input_ids=..., attention_mask=..., position_ids=..., cache=...,
                use_cache=True, output_hidden_states=True)
    out.logits, out.hidden_states[-1], out.cache

The cache keyword is ``cache`` when ``model.forward`` names it (transformers >= 5.2x) and
``past_key_values`` otherwise; the output's ``.cache`` or ``.past_key_values`` is read. The
cache must be a ``transformers.Cache`` (``batch_repeat_interleave`` and
``batch_select_indices``, e.g. ``DynamicCache``) or the legacy nested tuple of tensors with
the batch in dimension 0. ``position_ids`` is passed when ``model.forward`` names it, so
left-padded batches decode exactly as each row alone.

The metrics of generated text (isotropy, rep-n, diversity) are in
:mod:`contrastkit.eval.generation_metrics`.

Example:
    >>> import torch, transformers
    >>> model = transformers.GPT2LMHeadModel(transformers.GPT2Config(vocab_size=50, n_embd=32,
    ...     n_layer=2, n_head=2, n_positions=64))
    >>> out = contrastive_search(model, torch.tensor([[1, 2, 3]]), top_k=5, alpha=0.6, max_new_tokens=8)
    >>> out.shape
    torch.Size([1, 11])
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch
import torch.nn.functional as F

__all__ = ["contrastive_search", "greedy_search", "nucleus_sample"]


# --------------------------------------------------------------------------------------
# input checks and model plumbing
# --------------------------------------------------------------------------------------


def _check_prompt(
    input_ids: torch.Tensor, attention_mask: torch.Tensor | None, *, require_left_padding: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    """Validate a prompt batch; return it with a boolean attention mask."""
    if not isinstance(input_ids, torch.Tensor):
        raise ValueError(f"input_ids: expected a LongTensor of shape [B, T], got {type(input_ids).__name__}")
    if input_ids.dim() != 2:
        raise ValueError(f"input_ids: expected shape [B, T], got {tuple(input_ids.shape)}")
    if input_ids.dtype.is_floating_point or input_ids.dtype == torch.bool or input_ids.is_complex():
        raise ValueError(f"input_ids: expected an integer tensor of token ids, got dtype {input_ids.dtype}")
    if input_ids.shape[0] < 1 or input_ids.shape[1] < 1:
        raise ValueError(f"input_ids: expected a non-empty prompt [B >= 1, T >= 1], got shape {tuple(input_ids.shape)}")
    if attention_mask is None:
        return input_ids.long(), torch.ones_like(input_ids, dtype=torch.bool)
    if not isinstance(attention_mask, torch.Tensor) or attention_mask.shape != input_ids.shape:
        got = tuple(attention_mask.shape) if isinstance(attention_mask, torch.Tensor) else type(attention_mask).__name__
        raise ValueError(f"attention_mask: expected shape {tuple(input_ids.shape)} like input_ids, got {got}")
    if not ((attention_mask == 0) | (attention_mask == 1)).all():
        raise ValueError("attention_mask: expected only 0 (padding) and 1 (token) entries")
    mask = attention_mask.bool().to(input_ids.device)
    if not mask.any(dim=1).all():
        empty = torch.nonzero(~mask.any(dim=1)).flatten().tolist()
        raise ValueError(f"attention_mask: expected at least one token per row, rows {empty} are all padding")
    # Generation appends on the right, so padding must sit on the left of every row.
    if require_left_padding and (mask[:, 1:] < mask[:, :-1]).any():
        raise ValueError("attention_mask: expected left padding (zeros before ones in each row), got right or inner padding")
    return input_ids.long(), mask


def _check_max_new_tokens(max_new_tokens: int) -> None:
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int) or max_new_tokens < 0:
        raise ValueError(f"max_new_tokens: expected an integer >= 0, got {max_new_tokens!r}")


def _stop_tokens(
    eos_token_id: int | Sequence[int] | None, pad_token_id: int | None, device: torch.device
) -> tuple[torch.Tensor | None, int | None]:
    """The end-of-sequence ids as a tensor and the id that fills finished rows."""
    if pad_token_id is not None and (isinstance(pad_token_id, bool) or not isinstance(pad_token_id, int) or pad_token_id < 0):
        raise ValueError(f"pad_token_id: expected a token id >= 0 or None, got {pad_token_id!r}")
    if eos_token_id is None:
        return None, pad_token_id
    ids = [eos_token_id] if isinstance(eos_token_id, int) else list(eos_token_id)
    if not ids or not all(isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in ids):
        raise ValueError(f"eos_token_id: expected a token id >= 0 or a non-empty list of them, got {eos_token_id!r}")
    # Like transformers' generate: without a pad id, finished rows repeat the (first) eos id.
    fill = ids[0] if pad_token_id is None else pad_token_id
    return torch.tensor(ids, device=device), fill


@contextmanager
def _inference_mode(model: Any) -> Iterator[None]:
    """``model.eval()`` and ``torch.no_grad()``; every submodule's training flag is restored."""
    modules = list(model.modules()) if isinstance(model, torch.nn.Module) else []
    flags = [module.training for module in modules]
    try:
        if modules:
            model.eval()
        with torch.no_grad():
            yield
    finally:
        for module, flag in zip(modules, flags):
            module.training = flag


def _forward_parameters(model: Any) -> set[str]:
    forward = getattr(model, "forward", model)
    try:
        return set(inspect.signature(forward).parameters)
    except (TypeError, ValueError):
        return set()


class _CallingConvention:
    """Which keywords ``model.forward`` takes: ``position_ids`` (passed when named, so left
    padding does not shift positions) and the cache's name (``cache`` since transformers
    5.2x, ``past_key_values`` before; the old name now warns)."""

    def __init__(self, model: Any) -> None:
        parameters = _forward_parameters(model)
        self.pass_positions = "position_ids" in parameters
        self.cache_keyword = "cache" if "cache" in parameters else "past_key_values"


def _position_ids(mask: torch.Tensor) -> torch.Tensor:
    """Positions counted over real tokens only, so left padding does not shift them."""
    positions = mask.long().cumsum(-1) - 1
    return positions.masked_fill(~mask, 0)


def _forward(
    model: Any,
    convention: _CallingConvention,
    tokens: torch.Tensor,
    mask: torch.Tensor,
    cache: Any,
) -> tuple[torch.Tensor, torch.Tensor, Any]:
    """Run ``model`` on the ``tokens`` that follow ``cache``; ``mask`` covers cache + tokens.

    Returns the logits ``[B, n, V]``, the last-layer states ``[B, n, D]`` and the new cache."""
    kwargs: dict[str, Any] = {
        "input_ids": tokens,
        "attention_mask": mask.long(),
        "use_cache": True,
        "output_hidden_states": True,
    }
    if cache is not None:
        kwargs[convention.cache_keyword] = cache
    if convention.pass_positions:
        kwargs["position_ids"] = _position_ids(mask)[:, -tokens.shape[1] :]
    out = model(**kwargs)
    new_cache = getattr(out, "cache", None)
    if new_cache is None:
        new_cache = getattr(out, "past_key_values", None)
    if getattr(out, "logits", None) is None or new_cache is None:
        raise ValueError(
            "model: expected an output with .logits and .cache/.past_key_values (a causal LM called with use_cache=True)"
        )
    if getattr(out, "hidden_states", None) is None:
        raise ValueError("model: expected .hidden_states in its output when called with output_hidden_states=True")
    return out.logits, out.hidden_states[-1], new_cache


def _map_legacy_cache(cache: Any, op: Callable[[torch.Tensor], torch.Tensor]) -> Any:
    if isinstance(cache, torch.Tensor):
        return op(cache)
    if isinstance(cache, (tuple, list)):
        return type(cache)(_map_legacy_cache(item, op) for item in cache)
    raise ValueError(
        "past_key_values: expected a transformers Cache (with batch_repeat_interleave/batch_select_indices) "
        f"or nested tuples of tensors, got {type(cache).__name__}"
    )


def _repeat_cache(cache: Any, repeats: int) -> Any:
    """Each row of the cache ``repeats`` times in a row (rows ``b*k .. b*k+k-1`` copy row ``b``)."""
    if hasattr(cache, "batch_repeat_interleave"):
        cache.batch_repeat_interleave(repeats)
        return cache
    return _map_legacy_cache(cache, lambda tensor: tensor.repeat_interleave(repeats, dim=0))


def _select_cache(cache: Any, rows: torch.Tensor) -> Any:
    if hasattr(cache, "batch_select_indices"):
        cache.batch_select_indices(rows)
        return cache
    return _map_legacy_cache(cache, lambda tensor: tensor[rows])


def _next_token_probabilities(logits: torch.Tensor) -> torch.Tensor:
    # Softmax in at least float32 so that half-precision models rank candidates stably.
    return torch.softmax(logits.to(torch.promote_types(logits.dtype, torch.float32)), dim=-1)


class _StopState:
    """Tracks which rows have emitted an end-of-sequence token and pads them afterwards."""

    def __init__(self, batch: int, eos: torch.Tensor | None, fill: int | None, device: torch.device) -> None:
        self.eos = eos
        self.fill = fill
        self.unfinished = torch.ones(batch, dtype=torch.bool, device=device)

    def apply(self, next_tokens: torch.Tensor) -> torch.Tensor:
        if self.eos is None:
            return next_tokens
        next_tokens = torch.where(self.unfinished, next_tokens, torch.full_like(next_tokens, self.fill))
        self.unfinished &= ~torch.isin(next_tokens, self.eos)
        return next_tokens

    @property
    def all_done(self) -> bool:
        return self.eos is not None and not bool(self.unfinished.any())


def _token_by_token(
    model: Any,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor | None,
    max_new_tokens: int,
    eos_token_id: int | Sequence[int] | None,
    pad_token_id: int | None,
    pick: Callable[[torch.Tensor], torch.Tensor],
) -> torch.Tensor:
    """The cached one-token-per-step loop shared by greedy search and sampling."""
    input_ids, mask = _check_prompt(input_ids, attention_mask)
    _check_max_new_tokens(max_new_tokens)
    eos, fill = _stop_tokens(eos_token_id, pad_token_id, input_ids.device)
    if max_new_tokens == 0:
        return input_ids.clone()
    convention = _CallingConvention(model)
    stop = _StopState(input_ids.shape[0], eos, fill, input_ids.device)
    generated: list[torch.Tensor] = []
    with _inference_mode(model):
        logits, _, cache = _forward(model, convention, input_ids, mask, None)
        for step in range(max_new_tokens):
            next_tokens = stop.apply(pick(logits[:, -1, :]))
            generated.append(next_tokens)
            if stop.all_done or step == max_new_tokens - 1:
                break  # the last token needs no forward pass
            mask = torch.cat([mask, mask.new_ones(mask.shape[0], 1)], dim=1)
            logits, _, cache = _forward(model, convention, next_tokens[:, None], mask, cache)
    return torch.cat([input_ids, torch.stack(generated, dim=1)], dim=1)


# --------------------------------------------------------------------------------------
# decoding
# --------------------------------------------------------------------------------------


def contrastive_search(
    model: Any,
    input_ids: torch.Tensor,
    *,
    attention_mask: torch.Tensor | None = None,
    top_k: int = 5,
    alpha: float = 0.6,
    max_new_tokens: int = 64,
    eos_token_id: int | Sequence[int] | None = None,
    pad_token_id: int | None = None,
) -> torch.Tensor:
    """Contrastive search: confidence minus degeneration penalty over the top-k candidates.

    ``x_t = argmax_{v in V_k} [(1 - alpha) p(v | x_<t) - alpha max_{j<t} cos(h_v, h_{x_j})]``
    (Su et al., SimCTG, NeurIPS 2022; Su & Collier, "Contrastive Search Is What You Need",
    TMLR 2023), with ``p`` the softmax of the model's logits, ``h`` last-layer hidden states
    (``out.hidden_states[-1]``) and the context ``x_<t`` including the prompt.

    One forward per step: the key/value cache is copied ``top_k`` times, the ``B * top_k``
    candidate tokens run in one batch, and the winner's cache, hidden state and next-token
    logits are kept. The whole batch decodes together (no per-row loop); rows of a
    left-padded batch give the same tokens as alone, padding is left out of the penalty.
    Ties go to the more probable candidate. The model runs under ``torch.no_grad()`` in eval
    mode; each submodule's training flag is restored afterwards. Each step copies the cache
    ``top_k`` times (memory ``top_k`` times that of greedy search), as the reference does.

    Args:
        model: a causal LM with the Hugging Face calling convention (see the module docstring).
        input_ids: ``[B, T]`` prompt token ids, ``T >= 1``, left-padded when ``B > 1`` differ
            in length.
        attention_mask: ``[B, T]`` with 1 for tokens and 0 for (left) padding; ``None``: all 1.
        top_k: candidates per step, ``>= 1`` (paper: 5); more than the vocabulary is clipped.
        alpha: weight of the degeneration penalty in ``[0, 1]`` (paper: 0.6); 0 is greedy.
        max_new_tokens: at most this many tokens are appended.
        eos_token_id: an id (or ids) that ends a row; the row is then filled with
            ``pad_token_id`` (default: the eos id) and decoding stops once every row ended.
        pad_token_id: the fill for ended rows.

    Returns:
        ``[B, T + n]`` token ids, the prompt followed by ``n <= max_new_tokens`` new tokens.

    Raises:
        ValueError: an empty or non-integer prompt, a bad mask, ``top_k < 1``, ``alpha``
            outside ``[0, 1]``, or a model output without logits, hidden states or cache.

    Example:
        >>> out = contrastive_search(model, tokenizer("A", return_tensors="pt").input_ids,
        ...                          top_k=5, alpha=0.6, max_new_tokens=32)
        >>> text = tokenizer.decode(out[0])
    """
    input_ids, mask = _check_prompt(input_ids, attention_mask)
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
        raise ValueError(f"top_k: expected an integer >= 1, got {top_k!r}")
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0.0 <= float(alpha) <= 1.0:
        raise ValueError(f"alpha: expected a number in [0, 1], got {alpha!r}")
    _check_max_new_tokens(max_new_tokens)
    eos, fill = _stop_tokens(eos_token_id, pad_token_id, input_ids.device)
    if max_new_tokens == 0:
        return input_ids.clone()
    alpha = float(alpha)
    batch = input_ids.shape[0]
    convention = _CallingConvention(model)
    stop = _StopState(batch, eos, fill, input_ids.device)
    rows = torch.arange(batch, device=input_ids.device)
    generated: list[torch.Tensor] = []
    with _inference_mode(model):
        logits, context_states, cache = _forward(model, convention, input_ids, mask, None)
        # context_states [B, S, D] grows by one column per step; it stays aligned with mask.
        next_logits = logits[:, -1, :]
        k = min(top_k, next_logits.shape[-1])
        for _ in range(max_new_tokens):
            candidate_probs, candidate_ids = _next_token_probabilities(next_logits).topk(k, dim=-1)  # [B, k]
            candidate_mask = torch.cat([mask, mask.new_ones(batch, 1)], dim=1)
            cache = _repeat_cache(cache, k)
            logits, states, cache = _forward(
                model,
                convention,
                candidate_ids.reshape(batch * k, 1),
                candidate_mask.repeat_interleave(k, dim=0),
                cache,
            )
            candidate_states = states[:, -1, :].reshape(batch, k, -1)  # [B, k, D]
            cosine = torch.einsum(
                "bkd,bsd->bks",
                F.normalize(candidate_states.to(candidate_probs.dtype), dim=-1),
                F.normalize(context_states.to(candidate_probs.dtype), dim=-1),
            )
            # Padding never counts as context (and its states may be arbitrary).
            cosine = cosine.masked_fill(~mask[:, None, :], -math.inf)
            penalty = cosine.amax(dim=-1)  # [B, k]
            score = (1.0 - alpha) * candidate_probs - alpha * penalty
            best = score.argmax(dim=-1)  # first maximum: the more probable candidate on ties
            winners = rows * k + best
            cache = _select_cache(cache, winners)
            next_tokens = stop.apply(candidate_ids[rows, best])
            generated.append(next_tokens)
            if stop.all_done:
                break
            context_states = torch.cat([context_states, candidate_states[rows, best][:, None, :]], dim=1)
            next_logits = logits[winners, -1, :]
            mask = candidate_mask
    return torch.cat([input_ids, torch.stack(generated, dim=1)], dim=1)


def greedy_search(
    model: Any,
    input_ids: torch.Tensor,
    *,
    attention_mask: torch.Tensor | None = None,
    max_new_tokens: int = 64,
    eos_token_id: int | Sequence[int] | None = None,
    pad_token_id: int | None = None,
) -> torch.Tensor:
    """Greedy decoding with the key/value cache: ``x_t = argmax_v p(v | x_<t)``.

    The baseline that contrastive search is compared against (it degenerates into repeats).
    Arguments and return value as in :func:`contrastive_search`.

    Example:
        >>> out = greedy_search(model, input_ids, max_new_tokens=32)
    """
    return _token_by_token(
        model, input_ids, attention_mask, max_new_tokens, eos_token_id, pad_token_id,
        lambda logits: logits.argmax(dim=-1),
    )


def nucleus_sample(
    model: Any,
    input_ids: torch.Tensor,
    *,
    attention_mask: torch.Tensor | None = None,
    top_p: float = 0.95,
    max_new_tokens: int = 64,
    eos_token_id: int | Sequence[int] | None = None,
    pad_token_id: int | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Nucleus (top-p) sampling (Holtzman et al., ICLR 2020) with the key/value cache.

    Each step samples from the smallest set of most probable tokens whose probability sum
    reaches ``top_p``, renormalised; the most probable token is always in the set.

    Args:
        model: a causal LM with the Hugging Face calling convention (see the module docstring).
        input_ids: ``[B, T]`` prompt token ids, left-padded when lengths differ.
        attention_mask: ``[B, T]`` with 0 for (left) padding; ``None``: all tokens.
        top_p: the nucleus mass in ``(0, 1]`` (paper comparisons: 0.95).
        max_new_tokens: at most this many tokens are appended.
        eos_token_id: an id (or ids) that ends a row, as in :func:`contrastive_search`.
        pad_token_id: the fill for ended rows (default: the eos id).
        generator: the ``torch.Generator`` to draw from (on the model's device); ``None``
            uses the global one.

    Returns:
        ``[B, T + n]`` token ids, ``n <= max_new_tokens``.

    Example:
        >>> out = nucleus_sample(model, input_ids, top_p=0.95, generator=torch.Generator().manual_seed(0))
    """
    if isinstance(top_p, bool) or not isinstance(top_p, (int, float)) or not 0.0 < float(top_p) <= 1.0:
        raise ValueError(f"top_p: expected a number in (0, 1], got {top_p!r}")

    def pick(logits: torch.Tensor) -> torch.Tensor:
        probs = _next_token_probabilities(logits)
        sorted_probs, order = probs.sort(dim=-1, descending=True)
        # Keep a token while the mass before it is below top_p (so the top token always stays).
        mass_before = sorted_probs.cumsum(dim=-1) - sorted_probs
        sorted_probs = sorted_probs.masked_fill(mass_before >= top_p, 0.0)
        choice = torch.multinomial(sorted_probs, 1, generator=generator)
        return order.gather(-1, choice).squeeze(-1)

    return _token_by_token(model, input_ids, attention_mask, max_new_tokens, eos_token_id, pad_token_id, pick)
