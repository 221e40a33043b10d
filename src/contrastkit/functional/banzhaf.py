r"""Pairwise Banzhaf interaction, and HBI's interaction-alignment loss for video-text retrieval.

Jin et al., "Video-Text as Game Players: Hierarchical Banzhaf Interaction for Cross-Modal
Representation Learning", CVPR 2023. Words and frames are players of a cooperative game whose
value ``v(S)`` is the video-text similarity computed on the coalition ``S`` alone. The pairwise
Banzhaf interaction of players ``i`` and ``j`` over the player set ``N`` (``n = |N|``) is

.. math::

    I(i, j) = \frac{1}{2^{n-2}} \sum_{C \subseteq N \setminus \{i, j\}}
        \big[v(C \cup \{i, j\}) - v(C \cup \{i\}) - v(C \cup \{j\}) + v(C)\big],

the mean of the second difference over all coalitions of the other players, i.e. the
expectation when each other player joins ``C`` independently with probability 1/2. HBI uses
the word-frame interactions as a soft fine-grained alignment target.

What is here:

* :func:`banzhaf_interaction_exact` — ``I(i, j)`` by enumerating all ``2^n`` coalitions (``n <= 20``)
  for any vectorised value function;
* :func:`banzhaf_interaction_monte_carlo` — the unbiased estimator that draws ``C`` by fair coin
  flips (as the official ``BanzhafInteraction`` does), with its standard error;
* :func:`wti_similarity` and :func:`wti_coalition_value` — the official value function: DRL's
  weighted token-wise interaction (WTI), ``v = (sum_t w_t max_f s_tf + sum_f u_f max_t s_tf) / 2``,
  restricted to a coalition (weights re-softmaxed over the coalition's members);
* :func:`hbi_banzhaf_interaction` — the ``[B, N_t, N_v]`` word-frame interaction matrix of each
  matched pair under that value (exact or Monte-Carlo), the target of the alignment;
* :func:`banzhaf_alignment_loss` — KL between the row- (and column-) softmaxed target and the
  prediction; :func:`banzhaf_estimator_loss` — the MSE that pretrains the amortising network
  (:class:`contrastkit.nn.banzhaf.BanzhafEstimator`); :func:`hbi_loss` — the per-level symmetric
  InfoNCE on the WTI similarity + ``skl`` * alignment, plus ``kl`` * the cross-level
  self-distillation, summed over levels as the official ``HBI.forward`` does.

Shapes: token features ``[B, N_t, D]`` / ``[B, N_v, D]``; token similarity of the matched pairs
``[B, N_t, N_v]``; global similarity ``[B_t, B_v]`` (rows texts). Masks are bool (``True`` = a
real token).

How the official code (github.com/jpthu17/HBI, ``HBI/models/{banzhaf,modeling,modeling_estimator,
until_module}.py``) computes it, and what this module implements:

* **Interaction target.** The code never uses the Monte-Carlo estimate in the main training.
  ``banzhaf_estimator.py`` first pretrains a small network (``BanzhafModule(64)``: 3x3 conv
  1->64, ReLU, one un-scaled softmax self-attention over the ``N_t * N_v`` cells with 64x64
  Q/K/V, residual, 3x3 conv 64->1) by MSE (element mean, padded cells zeroed) to the
  Monte-Carlo interaction with 100 samples per cell. Main training loads it as a frozen
  ``banzhafteacher``; a second, trainable ``BanzhafModule`` per level maps the token similarity
  to the *prediction*, and the loss is the KL from the teacher's output to the student's. This
  module computes the target directly (exactly, or by Monte Carlo) and lets the caller choose
  the prediction: the raw token similarity (the paper's description) or any network's output
  (e.g. :class:`~contrastkit.nn.banzhaf.BanzhafEstimator`, trained with
  :func:`banzhaf_estimator_loss`).
* **Value of ``C ∪ {i, j}`` (deviation).** The official sampler restores only the one cell
  ``(i, j)`` of the similarity for that term (word ``i``'s similarities to the coalition's
  frames, and frame ``j``'s to its words, stay zeroed), and for that term softmaxes a mix of
  the coalition's already-softmaxed weights and player ``i``'s (``j``'s) raw weight; the other
  three terms re-softmax weights that ``entity_level`` had already softmaxed. Here every term
  is the value function evaluated on its coalition, so the estimate is the Banzhaf interaction
  of one well-defined game; pass softmaxed weights as ``*_weight_logits`` to reproduce the
  double softmax of the other three terms.
* **Masking (deviation).** The official code zero-fills masked cells (``s * mask``), so a padded
  frame enters a word's max with similarity 0; here masked cells are excluded. The two agree
  whenever each word's best real similarity is ``>= 0`` (usual for CLIP features).
* **Scale.** The sampler multiplies the similarity by 1000 first; the WTI value is positively
  homogeneous in the similarity, so this equals ``scale=1000`` here (default 1).
* **KL form.** ``until_module.KL`` is ``F.kl_div(log_softmax(pred), softmax(target),
  reduction='mean')`` (the *element* mean, i.e. the row KL divided by the row length), and the
  "column" term is taken on ``banzhaf.T``, which for a 3-d tensor reverses *all* axes, so it
  softmaxes over the batch axis. ``variant='official'`` reproduces exactly that (with the
  entity level's zero-filled masking); ``variant='paper'`` (default) is the row/column form the
  paper describes (as summarised in METHODS.md; the paper's equation was not checked offline):
  KL per word row over its frames plus KL per frame column over its words, masked cells
  excluded, averaged over valid rows/columns.
* **Global loss.** ``CrossEn`` on ``logit_scale * WTI`` and its transpose, averaged (the
  diagonal are positives; the code builds ``sim_targets`` from video ids but does not use them).
  Self-distillation: ``kl * sum_{l >= 1} [KL(v2t_l, v2t_0) + KL(t2v_l, t2v_0)]`` on the
  *unscaled* global similarities with the same element-mean KL, the entity level (0) as a
  target that is *not* detached. Defaults ``skl=1``, ``kl=0.2`` (``main_retrieval.py``).
* **Not here:** the token-merging hierarchy (DPC-kNN ``CTM`` + ``TCBlock`` to action and event
  levels), the CLIP towers and the WTI weight MLPs; :func:`hbi_loss` takes each level's
  similarities as input.

METHODS.md verdict: **PARTIAL** — estimator, value function and loss are implemented and
tested against enumeration and closed-form games; a retrieval check needs CLIP and
MSR-VTT-scale video, which are not available offline.

Example:
    >>> text, video = torch.randn(4, 5, 16), torch.randn(4, 3, 16)
    >>> wt, wv = torch.zeros(4, 5), torch.zeros(4, 3)
    >>> global_sim, token_sim = wti_similarity(text, video, wt, wv)
    >>> target = hbi_banzhaf_interaction(token_sim, wt, wv, num_samples=64)
    >>> loss = hbi_loss([global_sim], [token_sim], [target], logit_scale=100.0)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

from contrastkit.utils.checks import Scalar, check_int, check_positive_scalar, fail

__all__ = [
    "banzhaf_alignment_loss",
    "banzhaf_estimator_loss",
    "banzhaf_interaction_exact",
    "banzhaf_interaction_monte_carlo",
    "hbi_banzhaf_interaction",
    "hbi_loss",
    "wti_coalition_value",
    "wti_similarity",
]

ValueFunction = Callable[[torch.Tensor], torch.Tensor]
MAX_EXACT_PLAYERS = 20
_CHUNK = 4096  # coalitions per value-function call: bounds the [K, B, N_t, N_v] intermediate


def _all_pairs(num_players: int, device: torch.device) -> torch.Tensor:
    return torch.combinations(torch.arange(num_players, device=device), r=2)


def _check_pairs(pairs: torch.Tensor | None, num_players: int, device: torch.device) -> torch.Tensor:
    if pairs is None:
        return _all_pairs(num_players, device)
    if not isinstance(pairs, torch.Tensor) or pairs.dim() != 2 or pairs.shape[1] != 2 or pairs.is_floating_point():
        fail("pairs", "an integer tensor of shape [P, 2]", getattr(pairs, "shape", type(pairs).__name__))
    if pairs.numel() and (pairs.min() < 0 or pairs.max() >= num_players or (pairs[:, 0] == pairs[:, 1]).any()):
        fail("pairs", f"distinct player indices in [0, {num_players})", pairs.tolist()[:5])
    return pairs.to(device)


def _evaluate(value_fn: ValueFunction, coalitions: torch.Tensor, chunk: int) -> torch.Tensor:
    """``value_fn`` on ``coalitions [K, n]`` in pieces of ``chunk`` rows; ``[K, *batch]``."""
    outs = []
    for start in range(0, coalitions.shape[0], chunk):
        piece = coalitions[start : start + chunk]
        out = value_fn(piece)
        if not isinstance(out, torch.Tensor) or out.dim() < 1 or out.shape[0] != piece.shape[0]:
            fail("value_fn", f"a tensor whose first axis has one value per coalition ({piece.shape[0]})",
                 getattr(out, "shape", type(out).__name__))
        outs.append(out)
    return torch.cat(outs)


def banzhaf_interaction_exact(
    value_fn: ValueFunction,
    num_players: int,
    pairs: torch.Tensor | None = None,
    *,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    r"""Exact pairwise Banzhaf interactions by enumerating every coalition (``2^n`` value calls).

    ``I(i, j) = 2^{-(n-2)} sum_{C ⊆ N \ {i,j}} [v(C∪{i,j}) - v(C∪{i}) - v(C∪{j}) + v(C)]``.

    Args:
        value_fn: maps a bool coalition matrix ``[K, n]`` (row ``k``: who is in coalition ``k``)
            to values ``[K, *batch]``; evaluated once on all ``2^n`` coalitions (in chunks).
        num_players: ``n``, from 2 to 20.
        pairs: ``[P, 2]`` player index pairs; ``None`` (default) = all ``i < j`` in
            :func:`torch.combinations` order.
        device: where the coalitions are built (default CPU).

    Returns:
        ``[P, *batch]`` interactions.

    Example:
        >>> w = torch.randn(4, 4)
        >>> quadratic = lambda c: torch.einsum("ki,ij,kj->k", c.float(), torch.triu(w, 1), c.float())
        >>> torch.allclose(banzhaf_interaction_exact(quadratic, 4)[0], w[0, 1])
        True
    """
    n = check_int("banzhaf_interaction_exact", "num_players", num_players, 2)
    if n > MAX_EXACT_PLAYERS:
        fail("banzhaf_interaction_exact", f"num_players <= {MAX_EXACT_PLAYERS} (2^n value calls)", n)
    device = torch.device(device) if device is not None else torch.device("cpu")
    pairs = _check_pairs(pairs, n, device)
    codes = torch.arange(2**n, device=device)
    bits = 1 << torch.arange(n, device=device)
    coalitions = (codes[:, None] & bits) != 0  # coalition k holds player p iff bit p of k is set
    values = _evaluate(value_fn, coalitions, _CHUNK)
    bi, bj = bits[pairs[:, 0]][:, None], bits[pairs[:, 1]][:, None]  # [P, 1]
    # Every code with bits i and j cleared, per pair: [P, 2^(n-2)].
    free = codes[None, :] & ~(bi | bj)
    base = torch.stack([row.unique() for row in free]) if pairs.shape[0] else free[:, :0]
    delta = values[base | bi | bj] - values[base | bi] - values[base | bj] + values[base]
    return delta.mean(dim=1)


def banzhaf_interaction_monte_carlo(
    value_fn: ValueFunction,
    num_players: int,
    pairs: torch.Tensor | None = None,
    *,
    num_samples: int = 100,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
    return_standard_error: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    r"""Unbiased Monte-Carlo Banzhaf interactions: the mean second difference over sampled coalitions.

    For each pair ``(i, j)`` and each of ``num_samples`` draws, every other player joins ``C``
    with probability 1/2 (a fair coin each, as the official ``BanzhafInteraction`` draws
    ``rand > 0.5``), so ``C`` is uniform over the subsets of ``N \ {i, j}`` and the mean of
    ``v(C∪{i,j}) - v(C∪{i}) - v(C∪{j}) + v(C)`` is unbiased for ``I(i, j)``. Each pair gets
    its own draws (``4 * P * num_samples`` value calls in all). The official default is 100
    samples per cell (``BanzhafInteraction(..., 100)`` in ``modeling_estimator.py``).

    Args:
        value_fn: as in :func:`banzhaf_interaction_exact`.
        num_players: ``n >= 2``.
        pairs: ``[P, 2]`` index pairs, or ``None`` for all ``i < j``.
        num_samples: coalitions per pair, ``>= 1`` (the standard error needs ``>= 2``).
        generator: the random source (default torch's global CPU generator).
        device: where the coalitions are drawn (default CPU).
        return_standard_error: also return the standard error of each estimate
            (sample standard deviation over draws / sqrt(num_samples)).

    Returns:
        ``[P, *batch]`` estimates, and with ``return_standard_error`` their standard errors.

    Example:
        >>> unanimity = lambda c: c[:, :3].all(dim=1).float()   # v(S) = 1 iff {0, 1, 2} ⊆ S
        >>> est = banzhaf_interaction_monte_carlo(unanimity, 5, torch.tensor([[0, 1]]), num_samples=4000)
        >>> abs(float(est) - 0.5) < 0.05     # exact: 2^-(|T|-2) = 1/2
        True
    """
    n = check_int("banzhaf_interaction_monte_carlo", "num_players", num_players, 2)
    k = check_int("banzhaf_interaction_monte_carlo", "num_samples", num_samples, 1)
    device = torch.device(device) if device is not None else torch.device("cpu")
    pairs = _check_pairs(pairs, n, device)
    p = pairs.shape[0]
    rand = torch.rand((p, k, n), generator=generator, device=device if generator is None else generator.device)
    coalition = (rand > 0.5).to(device)
    rows = torch.arange(p, device=device)[:, None]
    coalition[rows, :, pairs[:, 0:1]] = False
    coalition[rows, :, pairs[:, 1:2]] = False
    with_i, with_j, with_both = coalition.clone(), coalition.clone(), coalition.clone()
    with_i[rows, :, pairs[:, 0:1]] = True
    with_j[rows, :, pairs[:, 1:2]] = True
    with_both[rows, :, pairs[:, 0:1]] = True
    with_both[rows, :, pairs[:, 1:2]] = True
    stacked = torch.stack([with_both, with_i, with_j, coalition]).reshape(4 * p * k, n)
    values = _evaluate(value_fn, stacked, _CHUNK)
    values = values.reshape(4, p, k, *values.shape[1:])
    delta = values[0] - values[1] - values[2] + values[3]  # [P, K, *batch]
    estimate = delta.mean(dim=1)
    if not return_standard_error:
        return estimate
    if k < 2:
        fail("banzhaf_interaction_monte_carlo", "num_samples >= 2 for a standard error", k)
    return estimate, delta.std(dim=1) / k**0.5


def _masked_softmax(logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Softmax over the last axis restricted to ``mask``; all-masked rows give zeros, never NaN."""
    filled = logits.masked_fill(~mask, torch.finfo(logits.dtype).min)
    return torch.softmax(filled, dim=-1) * mask


def _wti_from_cells(
    sim: torch.Tensor, text_weight_logits: torch.Tensor, video_weight_logits: torch.Tensor,
    text_in: torch.Tensor, video_in: torch.Tensor,
) -> torch.Tensor:
    """WTI on ``sim [..., N_t, N_v]`` restricted to present words ``text_in`` and frames ``video_in``."""
    cell = text_in[..., :, None] & video_in[..., None, :]
    low = torch.finfo(sim.dtype).min
    filled = sim.masked_fill(~cell, low)
    text_w = _masked_softmax(text_weight_logits, text_in)
    video_w = _masked_softmax(video_weight_logits, video_in)
    t2v = torch.where(text_in, text_w * filled.amax(dim=-1), 0.0).sum(dim=-1)
    v2t = torch.where(video_in, video_w * filled.amax(dim=-2), 0.0).sum(dim=-1)
    both = text_in.any(dim=-1) & video_in.any(dim=-1)  # an empty side has no cross-modal match: value 0
    return torch.where(both, (t2v + v2t) / 2, 0.0)


def _default_mask(mask: torch.Tensor | None, like: torch.Tensor, name: str) -> torch.Tensor:
    if mask is None:
        return torch.ones(like.shape, dtype=torch.bool, device=like.device)
    if not isinstance(mask, torch.Tensor) or mask.shape != like.shape:
        fail(name, f"a bool tensor of shape {tuple(like.shape)}", getattr(mask, "shape", type(mask).__name__))
    return mask.to(device=like.device, dtype=torch.bool)


def wti_similarity(
    text_tokens: torch.Tensor,
    video_tokens: torch.Tensor,
    text_weight_logits: torch.Tensor,
    video_weight_logits: torch.Tensor,
    text_mask: torch.Tensor | None = None,
    video_mask: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Weighted token-wise interaction (DRL; HBI's ``interaction='wti'``): global and token similarities.

    With L2-normalised tokens, ``s^{ab}_{tf} = <text_a,t, video_b,f>``, ``w = softmax(text logits)``
    and ``u = softmax(video logits)`` over each side's real tokens:

    ``S_ab = (sum_t w_at max_f s^{ab}_tf + sum_f u_bf max_t s^{ab}_tf) / 2``.

    Args:
        text_tokens: ``[B_t, N_t, D]`` word features.
        video_tokens: ``[B_v, N_v, D]`` frame features.
        text_weight_logits: ``[B_t, N_t]`` per-word weight logits (the official ``text_weight_fc``).
        video_weight_logits: ``[B_v, N_v]`` per-frame weight logits.
        text_mask, video_mask: optional bool ``[B_t, N_t]`` / ``[B_v, N_v]``; padded tokens are
            excluded from the max and the weights.

    Returns:
        ``(S [B_t, B_v], token_similarity [B, N_t, N_v])``; the second holds the matched pairs
        ``a = b`` (needs ``B_t = B_v``; else it is ``None``).
    """
    if text_tokens.dim() != 3 or video_tokens.dim() != 3 or text_tokens.shape[-1] != video_tokens.shape[-1]:
        fail("wti_similarity", "text [B_t, N_t, D] and video [B_v, N_v, D] with the same D",
             (tuple(text_tokens.shape), tuple(video_tokens.shape)))
    if text_weight_logits.shape != text_tokens.shape[:2] or video_weight_logits.shape != video_tokens.shape[:2]:
        fail("wti_similarity", "weight logits [B_t, N_t] and [B_v, N_v]",
             (tuple(text_weight_logits.shape), tuple(video_weight_logits.shape)))
    text_mask = _default_mask(text_mask, text_weight_logits, "text_mask")
    video_mask = _default_mask(video_mask, video_weight_logits, "video_mask")
    token = torch.einsum("atd,bfd->abtf", F.normalize(text_tokens, dim=-1), F.normalize(video_tokens, dim=-1))
    bt, bv = token.shape[:2]
    glob = _wti_from_cells(
        token,
        text_weight_logits[:, None].expand(bt, bv, -1), video_weight_logits[None].expand(bt, bv, -1),
        text_mask[:, None].expand(bt, bv, -1), video_mask[None].expand(bt, bv, -1),
    )
    matched = torch.diagonal(token, dim1=0, dim2=1).permute(2, 0, 1) if bt == bv else None
    return glob, matched


def wti_coalition_value(
    similarity: torch.Tensor,
    text_weight_logits: torch.Tensor,
    video_weight_logits: torch.Tensor,
    coalitions: torch.Tensor,
    text_mask: torch.Tensor | None = None,
    video_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    r"""HBI's game: the WTI similarity of each matched pair computed on a coalition of its words and frames.

    Players ``0 .. N_t-1`` are words, ``N_t .. N_t+N_v-1`` frames. For coalition ``S``,
    ``v(S) = (sum_{t∈S_t} w^S_t max_{f∈S_v} s_tf + sum_{f∈S_v} u^S_f max_{t∈S_t} s_tf) / 2`` with
    the weights softmaxed over the coalition's members; ``v = 0`` when ``S`` has no word or no
    frame. Padded tokens never play (they are dummy players: interaction 0).

    Args:
        similarity: ``[B, N_t, N_v]`` token similarities of the matched pairs.
        text_weight_logits: ``[B, N_t]``; video_weight_logits: ``[B, N_v]``.
        coalitions: bool ``[K, N_t + N_v]``.
        text_mask, video_mask: optional bool ``[B, N_t]`` / ``[B, N_v]``.

    Returns:
        ``[K, B]`` values.
    """
    nt, nv = similarity.shape[1:]
    if coalitions.dim() != 2 or coalitions.shape[1] != nt + nv:
        fail("coalitions", f"a bool tensor [K, N_t + N_v = {nt + nv}]", tuple(coalitions.shape))
    text_mask = _default_mask(text_mask, text_weight_logits, "text_mask")
    video_mask = _default_mask(video_mask, video_weight_logits, "video_mask")
    coalitions = coalitions.to(similarity.device, torch.bool)
    text_in = coalitions[:, None, :nt] & text_mask[None]  # [K, B, N_t]
    video_in = coalitions[:, None, nt:] & video_mask[None]
    k = coalitions.shape[0]
    return _wti_from_cells(
        similarity[None].expand(k, -1, -1, -1),
        text_weight_logits[None].expand(k, -1, -1), video_weight_logits[None].expand(k, -1, -1),
        text_in, video_in,
    )


def hbi_banzhaf_interaction(
    similarity: torch.Tensor,
    text_weight_logits: torch.Tensor,
    video_weight_logits: torch.Tensor,
    text_mask: torch.Tensor | None = None,
    video_mask: torch.Tensor | None = None,
    *,
    num_samples: int | None = 100,
    scale: float = 1.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    r"""The word-frame Banzhaf interaction matrix of each matched pair under the WTI game (no gradient).

    Players are the ``N_t + N_v`` tokens (:func:`wti_coalition_value`); entry ``[b, t, f]`` is
    ``scale * I(word t, frame f)``. Padded cells are 0 (dummy players).

    Args:
        similarity: ``[B, N_t, N_v]`` matched-pair token similarities (from :func:`wti_similarity`).
        text_weight_logits, video_weight_logits: ``[B, N_t]``, ``[B, N_v]``.
        text_mask, video_mask: optional bool masks.
        num_samples: Monte-Carlo coalitions per cell (official 100); ``None`` enumerates all
            ``2^(N_t+N_v)`` coalitions (exact; ``N_t + N_v <= 20``).
        scale: multiplies the result (the official sampler's ``x1000`` is ``scale=1000``).
        generator: random source for the Monte-Carlo draws.

    Returns:
        ``[B, N_t, N_v]`` interactions, detached.
    """
    if similarity.dim() != 3:
        fail("similarity", "a [B, N_t, N_v] tensor", tuple(similarity.shape))
    b, nt, nv = similarity.shape
    if text_weight_logits.shape != (b, nt) or video_weight_logits.shape != (b, nv):
        fail("hbi_banzhaf_interaction", f"weight logits [{b}, {nt}] and [{b}, {nv}]",
             (tuple(text_weight_logits.shape), tuple(video_weight_logits.shape)))
    device = similarity.device
    words, frames = torch.meshgrid(torch.arange(nt, device=device), torch.arange(nv, device=device), indexing="ij")
    pairs = torch.stack([words.flatten(), nt + frames.flatten()], dim=1)  # [N_t * N_v, 2], row-major cells

    def value(c: torch.Tensor) -> torch.Tensor:
        return wti_coalition_value(similarity, text_weight_logits, video_weight_logits, c, text_mask, video_mask)

    with torch.no_grad():
        if num_samples is None:
            inter = banzhaf_interaction_exact(value, nt + nv, pairs, device=device)
        else:
            inter = banzhaf_interaction_monte_carlo(
                value, nt + nv, pairs, num_samples=num_samples, generator=generator, device=device
            )
    return (scale * inter).reshape(nt, nv, b).permute(2, 0, 1).contiguous()


def _official_kl(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``until_module.KL``: ``kl_div(log_softmax(pred), softmax(target), 'mean')`` over the last axis."""
    log_p = F.log_softmax(target, dim=-1)
    # Element mean of p * (log p - log q), what kl_div(reduction='mean') computes (without its deprecation warning).
    return (log_p.exp() * (log_p - F.log_softmax(prediction, dim=-1))).mean()


def _row_kl(prediction: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over rows with a real entry of ``KL(softmax(target) || softmax(prediction))`` on ``mask``."""
    low = torch.finfo(prediction.dtype).min
    log_q = torch.log_softmax(prediction.masked_fill(~mask, low), dim=-1)
    log_p = torch.log_softmax(target.masked_fill(~mask, low), dim=-1)
    kl = torch.where(mask, log_p.exp() * (log_p - log_q), 0.0).sum(dim=-1)
    valid = mask.any(dim=-1)
    return kl[valid].mean()


def banzhaf_alignment_loss(
    prediction: torch.Tensor,
    target: torch.Tensor,
    text_mask: torch.Tensor | None = None,
    video_mask: torch.Tensor | None = None,
    *,
    variant: str = "paper",
) -> torch.Tensor:
    r"""HBI's interaction alignment: KL from the softmaxed interaction target to the softmaxed prediction.

    ``variant='paper'``: with ``p = softmax(target)`` and ``q = softmax(prediction)`` over each
    word's real frames (rows) and then each frame's real words (columns),

    ``L = mean_{b,t} KL(p_{bt·} || q_{bt·}) + mean_{b,f} KL(p_{b·f} || q_{b·f})``.

    ``variant='official'``: ``KL(pred, target) + KL(pred.T, target.T)`` with the code's
    element-mean ``kl_div`` over the last axis, where ``.T`` reverses all three axes (the second
    softmax runs over the batch); masks, when given, zero-fill both tensors first (entity level).

    Args:
        prediction: ``[B, N_t, N_v]`` the map being aligned (token similarity, or a network's
            output); gradients flow here.
        target: ``[B, N_t, N_v]`` interaction target (detached by the caller, as in HBI).
        text_mask, video_mask: optional bool ``[B, N_t]`` / ``[B, N_v]``.
        variant: ``'paper'`` (default) or ``'official'``.

    Returns:
        The scalar loss.
    """
    if prediction.dim() != 3 or prediction.shape != target.shape:
        fail("banzhaf_alignment_loss", "prediction and target of the same shape [B, N_t, N_v]",
             (tuple(prediction.shape), tuple(target.shape)))
    given = text_mask is not None or video_mask is not None
    text_mask = _default_mask(text_mask, prediction[:, :, 0], "text_mask")
    video_mask = _default_mask(video_mask, prediction[:, 0, :], "video_mask")
    cell = text_mask[:, :, None] & video_mask[:, None, :]
    if variant == "official":
        if given:
            prediction, target = prediction * cell, target * cell
        return _official_kl(prediction, target) + _official_kl(prediction.permute(2, 1, 0), target.permute(2, 1, 0))
    if variant != "paper":
        fail("banzhaf_alignment_loss", "variant 'paper' or 'official'", variant)
    rows = _row_kl(prediction, target, cell)
    cols = _row_kl(prediction.transpose(1, 2), target.transpose(1, 2), cell.transpose(1, 2))
    return rows + cols


def banzhaf_estimator_loss(
    prediction: torch.Tensor,
    target: torch.Tensor,
    text_mask: torch.Tensor | None = None,
    video_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """MSE that pretrains the amortising network: element mean of ``(target - prediction * cell_mask)^2``.

    As ``modeling_estimator.py``: the prediction's padded cells are zeroed (the Monte-Carlo
    target is already 0 there) and the mean runs over all ``B * N_t * N_v`` cells.

    Args:
        prediction: ``[B, N_t, N_v]`` network output; target: ``[B, N_t, N_v]`` interactions.
        text_mask, video_mask: optional bool masks.
    """
    if prediction.shape != target.shape or prediction.dim() != 3:
        fail("banzhaf_estimator_loss", "prediction and target of the same shape [B, N_t, N_v]",
             (tuple(prediction.shape), tuple(target.shape)))
    text_mask = _default_mask(text_mask, prediction[:, :, 0], "text_mask")
    video_mask = _default_mask(video_mask, prediction[:, 0, :], "video_mask")
    cell = text_mask[:, :, None] & video_mask[:, None, :]
    return ((target - prediction * cell) ** 2).mean()


def _cross_entropy_diagonal(logits: torch.Tensor) -> torch.Tensor:
    return -torch.diagonal(F.log_softmax(logits, dim=-1)).mean()


def hbi_loss(
    global_similarities: Sequence[torch.Tensor],
    predictions: Sequence[torch.Tensor],
    targets: Sequence[torch.Tensor],
    *,
    logit_scale: Scalar,
    skl: float = 1.0,
    kl: float = 0.2,
    masks: Sequence[tuple[torch.Tensor | None, torch.Tensor | None] | None] | None = None,
    variant: str = "paper",
) -> torch.Tensor:
    r"""HBI's training loss over levels ``l = 0 .. L-1`` (entity, action, event in the paper).

    .. math::

        L = \sum_l \Big[\tfrac12\big(CE(t S_l) + CE(t S_l^T)\big) + skl \cdot A(P_l, T_l)\Big]
            + kl \sum_{l \ge 1}\big[KL(S_l^T, S_0^T) + KL(S_l, S_0)\big]

    ``CE`` is the cross-entropy of each row against its diagonal, ``t = logit_scale``, ``A`` is
    :func:`banzhaf_alignment_loss`, and the self-distillation ``KL(x, y)`` is the official
    element-mean ``kl_div(log_softmax(x), softmax(y))`` on the unscaled similarities with the
    entity level as a non-detached target. One level gives the single-level loss (no
    self-distillation).

    Args:
        global_similarities: per level ``[B, B]`` video-text similarity, rows texts (WTI).
        predictions, targets: per level ``[B, N_t^l, N_v^l]`` (see :func:`banzhaf_alignment_loss`).
        logit_scale: ``t > 0`` (CLIP's learned ``exp(s)``).
        skl: weight of the alignment (official 1). kl: weight of the self-distillation (official 0.2).
        masks: per level ``(text_mask, video_mask)`` or ``None`` (official: the entity level only).
        variant: ``'paper'`` or ``'official'`` alignment form.

    Returns:
        The scalar loss.
    """
    check_positive_scalar("logit_scale", logit_scale)
    levels = len(global_similarities)
    if levels == 0 or len(predictions) != levels or len(targets) != levels:
        fail("hbi_loss", "the same number (>= 1) of global similarities, predictions and targets",
             (levels, len(predictions), len(targets)))
    if masks is not None and len(masks) != levels:
        fail("masks", f"one (text_mask, video_mask) or None per level ({levels})", len(masks))
    total = global_similarities[0].new_zeros(())
    for level, sim in enumerate(global_similarities):
        if sim.dim() != 2 or sim.shape[0] != sim.shape[1] or sim.shape[0] < 2:
            fail("global_similarities", "square [B, B] tensors with B >= 2", tuple(sim.shape))
        contrast = (_cross_entropy_diagonal(logit_scale * sim) + _cross_entropy_diagonal(logit_scale * sim.T)) / 2
        level_masks = masks[level] if masks is not None and masks[level] is not None else (None, None)
        align = banzhaf_alignment_loss(predictions[level], targets[level], *level_masks, variant=variant)
        total = total + contrast + skl * align
    base = global_similarities[0]
    for sim in global_similarities[1:]:
        total = total + kl * (_official_kl(sim.T, base.T) + _official_kl(sim, base))
    return total
