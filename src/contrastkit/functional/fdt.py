r"""FDT (Chen et al., CVPR 2023, "Revisiting Multimodal Representation in Contrastive Learning:
From Patch and Token Embeddings to Finite Discrete Tokens") as pure functions of tensors.

FDT embeds an image and a text as sparse mixtures of one shared, learnable codebook
:math:`C \in \mathbb{R}^{M \times d}` ("finite discrete tokens"). For the tokens
:math:`x_1..x_T` of one sample (image patches or words; padding masked out):

.. math::

    q_t = \mathrm{MLP}(x_t), \quad
    r_{t,m} = \frac{q_t \cdot c_m}{\sqrt{d}\,\tau_F}, \quad
    s_m = \max_t r_{t,m}, \quad
    w = \mathrm{sparsemax}(s), \quad
    e = w^\top C .

The images' and texts' ``e`` are then contrasted with CLIP's symmetric InfoNCE
(:func:`contrastkit.functional.contrastive.clip_loss`). :func:`sparsemax` is Martins &
Astudillo (2016): the Euclidean projection onto the probability simplex, exactly sparse.

Checked against the official code, github.com/yuxiaochen1103/FDT
(``prototype/model/clip_fdt.py`` ``Query_model`` / ``Clip_FDT``, ``prototype/model/sparsemax.py``,
``example/clip_fdt/config_cc3m.yaml``, ``example/clip_fdt/train_solver.py``):

* **The temperature divides.** ``Query_model.forward`` computes ``inner_dot / sqrt(sd_dim)``
  and then ``inner_dot / self.temperature``; the config sets ``sd_temperature: 1000``, and the
  "decay" in ``train_solver.py`` is ``1000 * sd_T_decay_w ** (step / 2700)`` with
  ``sd_T_decay_w: 1``, so :math:`\tau_F = 1000` stays constant (floor ``sd_T_min = 0.01``
  never reached). This answers the question METHODS.md #7 leaves open: relevance is
  ``q . c / sqrt(d) / 1000``. The default here is that value.
* Pooling ``max`` and ``att_func_type: sparsemax`` are the paper's configuration (the
  code also offers ``sum``/``mean`` pooling and softmax/sigmoid weights; not ported).
* The codebook has no value projection: ``e = w @ C`` with the same ``C`` used as keys.
* **Masking (deviation).** The official code masks padded words by *multiplying* their
  relevance by 0 (``inner_dot * mask``), not by setting it to ``-inf``; under max pooling a
  padded word then takes part with relevance 0, so ``s_m = max(max_t r_{t,m}, 0)`` for every
  caption that has padding (all of them: CLIP's tokenizer pads to 77). Here padded tokens
  get ``-inf`` before the max and have no effect at all (tested), as the paper describes.
* Sparsemax: the official module sorts and thresholds as here, and writes a custom
  ``backward`` that autograd never calls (it is an ``nn.Module``, not an
  ``autograd.Function``), so the official gradient is autograd's through sort and
  threshold. Here the closed-form Jacobian-vector product of Martins & Astudillo (the one
  that unused ``backward`` meant to give) is an ``autograd.Function``; both equal the true
  gradient almost everywhere (checked with ``gradcheck``).
"""

from __future__ import annotations

import math

import torch

__all__ = ["fdt_embedding", "sparsemax", "token_codebook_relevance"]


class _Sparsemax(torch.autograd.Function):
    """Sparsemax over the last dimension, with Martins & Astudillo's closed-form backward."""

    @staticmethod
    def forward(ctx, scores: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        # Shift by the max: sparsemax is shift invariant and sorting stays well conditioned.
        shifted = scores - scores.max(dim=-1, keepdim=True).values
        ordered = shifted.sort(dim=-1, descending=True).values
        ranks = torch.arange(1, scores.shape[-1] + 1, device=scores.device, dtype=scores.dtype)
        cumulative = ordered.cumsum(dim=-1)
        # k(z) = max{k : 1 + k z_(k) > sum_{j<=k} z_(j)}: the size of the support.
        in_support = (1 + ranks * ordered) > cumulative
        support = in_support.sum(dim=-1, keepdim=True)
        threshold = (cumulative.gather(-1, support - 1) - 1) / support.to(scores.dtype)
        output = (shifted - threshold).clamp_min(0)
        ctx.save_for_backward(output)
        return output

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        (output,) = ctx.saved_tensors
        support = output > 0
        # J^T g = s * (g - mean of g over the support), s the support indicator.
        mean = (grad_output * support).sum(-1, keepdim=True) / support.sum(-1, keepdim=True)
        return torch.where(support, grad_output - mean, torch.zeros_like(grad_output))


def sparsemax(scores: torch.Tensor) -> torch.Tensor:
    r"""Sparsemax (Martins & Astudillo, ICML 2016): the projection of ``scores`` onto the simplex.

    .. math::

        \mathrm{sparsemax}(z) = \arg\min_{p \in \Delta} \lVert p - z \rVert^2
                              = [z - \tau(z)]_+ ,

    with :math:`\tau(z)` chosen so that the output sums to 1. Unlike softmax the output is
    exactly zero outside a support set, which is what makes FDT's code weights sparse.

    Args:
        scores: ``[..., M]`` float scores; the projection is over the last dimension.

    Returns:
        ``[..., M]`` non-negative weights summing to 1 over the last dimension.

    Example:
        >>> sparsemax(torch.tensor([2.0, 1.0, -1.0]))
        tensor([1., 0., 0.])
        >>> sparsemax(torch.tensor([1.0, 0.8, -1.0]))
        tensor([0.6000, 0.4000, 0.0000])
    """
    if not isinstance(scores, torch.Tensor) or not scores.is_floating_point() or scores.dim() < 1:
        raise ValueError(f"scores: expected a floating-point tensor [..., M], got "
                         f"{tuple(scores.shape) if isinstance(scores, torch.Tensor) else type(scores).__name__}")
    if scores.shape[-1] < 1:
        raise ValueError(f"scores: expected at least one entry in the last dimension, got shape {tuple(scores.shape)}")
    if not torch.isfinite(scores).all():
        raise ValueError("scores: expected finite values, got NaN or inf (mask padded tokens before pooling, "
                         "not after)")
    return _Sparsemax.apply(scores)


def _check_tokens(queries: torch.Tensor, mask: torch.Tensor | None) -> None:
    if not isinstance(queries, torch.Tensor) or queries.dim() != 3 or not queries.is_floating_point():
        raise ValueError(f"queries: expected a float tensor [B, T, d], got "
                         f"{tuple(queries.shape) if isinstance(queries, torch.Tensor) else type(queries).__name__}")
    if mask is None:
        return
    if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool or tuple(mask.shape) != tuple(queries.shape[:2]):
        got = (f"{mask.dtype} {tuple(mask.shape)}" if isinstance(mask, torch.Tensor) else type(mask).__name__)
        raise ValueError(f"mask: expected a bool tensor of shape {tuple(queries.shape[:2])} (True = real token), "
                         f"got {got}")
    if not mask.any(dim=1).all():
        empty = int((~mask.any(dim=1)).sum())
        raise ValueError(f"mask: expected at least one real token per row, got {empty} rows with none")


def token_codebook_relevance(queries: torch.Tensor, codebook: torch.Tensor, temperature: float = 1000.0,
                             mask: torch.Tensor | None = None) -> torch.Tensor:
    r"""FDT's pooled relevance ``s_m = max_t q_t . c_m / sqrt(d) / temperature``, padding excluded.

    Args:
        queries: ``[B, T, d]`` token queries (the query MLP's output).
        codebook: ``[M, d]`` the shared discrete tokens.
        temperature: :math:`\tau_F`; it divides (official config: 1000).
        mask: optional ``[B, T]`` bool, ``True`` for real tokens; padded tokens get ``-inf``
            before the max, so they have no effect.

    Returns:
        ``[B, M]`` pooled relevance scores.
    """
    _check_tokens(queries, mask)
    if codebook.dim() != 2 or codebook.shape[1] != queries.shape[-1]:
        raise ValueError(f"codebook: expected shape [M, {queries.shape[-1]}], got {tuple(codebook.shape)}")
    if not temperature > 0:
        raise ValueError(f"temperature: expected a positive number, got {temperature}")
    relevance = queries @ codebook.T / (math.sqrt(codebook.shape[1]) * temperature)  # [B, T, M]
    if mask is not None and not bool(mask.all()):  # image patches are all real: skip the [B, T, M] copy
        relevance = relevance.masked_fill(~mask[:, :, None], float("-inf"))
    return relevance.max(dim=1).values


def fdt_embedding(queries: torch.Tensor, codebook: torch.Tensor, temperature: float = 1000.0,
                  mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    r"""FDT's embedding of a batch of token sets: ``e = sparsemax(max_t r_t)^T C`` (not normalised).

    Args:
        queries: ``[B, T, d]`` token queries (``MLP(tokens)``: LayerNorm, Linear, GELU,
            LayerNorm, Linear in the paper).
        codebook: ``[M, d]`` codebook (paper: ``M = 16384``, ``d = 512``).
        temperature: :math:`\tau_F`, divides the relevance (official: 1000).
        mask: optional ``[B, T]`` bool, ``True`` for real tokens.

    Returns:
        ``(embeddings [B, d], weights [B, M])``; every row of ``weights`` is sparse and sums to 1.

    Example:
        >>> queries, codebook = torch.randn(4, 7, 16), torch.randn(32, 16)
        >>> embeddings, weights = fdt_embedding(queries, codebook, temperature=0.1)
        >>> embeddings.shape, weights.sum(-1)
        (torch.Size([4, 16]), tensor([1., 1., 1., 1.]))
    """
    weights = sparsemax(token_codebook_relevance(queries, codebook, temperature, mask))
    return weights @ codebook, weights
