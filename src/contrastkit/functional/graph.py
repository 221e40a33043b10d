"""Graph contrastive objectives: GRACE (node level) and GraphCL (graph level).

Both are InfoNCE variants that differ in which pairs are negatives:

- GRACE (Zhu et al., 2020, "Deep Graph Contrastive Representation Learning") contrasts a
  node's two views against every other node of *both* views (inter- and intra-view
  negatives), averaged over both directions. That is exactly SimCLR's NT-Xent over the
  ``2N`` node embeddings, so :func:`grace_loss` is a named entry point to
  :func:`~contrastkit.functional.contrastive.nt_xent` (and inherits its fused kernel).
- GraphCL (You et al., 2020, "Graph Contrastive Learning with Augmentations") contrasts
  a graph's first view against the *second* views of the other graphs only, with the
  positive left out of the denominator (the official code divides by
  ``sim.sum(1) - pos``), in the direction view 1 -> view 2.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from contrastkit.functional.contrastive import nt_xent
from contrastkit.utils.checks import check_pair, check_positive_scalar


def grace_loss(h_a: torch.Tensor, h_b: torch.Tensor, temperature: float = 0.5) -> torch.Tensor:
    r"""GRACE's node-level loss: for node ``i`` with projected views ``u_i``, ``v_i``,

    .. math::

        \ell(u_i, v_i) = -\log \frac{e^{\theta(u_i, v_i)/\tau}}
            {e^{\theta(u_i, v_i)/\tau} + \sum_{k \ne i} e^{\theta(u_i, v_k)/\tau}
             + \sum_{k \ne i} e^{\theta(u_i, u_k)/\tau}},
        \qquad L = \frac{1}{2N} \sum_i \left[\ell(u_i, v_i) + \ell(v_i, u_i)\right]

    with ``θ`` the cosine similarity (inputs are L2-normalised here).

    Args:
        h_a: ``[N, D]`` projected embeddings of the nodes in view 1.
        h_b: ``[N, D]`` the same nodes in view 2.
        temperature: ``τ`` (GRACE: 0.4 on Cora, 0.5-0.9 elsewhere; default 0.5).

    Returns:
        The scalar loss.
    """
    return nt_xent(h_a, h_b, temperature)


def graphcl_loss(z_a: torch.Tensor, z_b: torch.Tensor, temperature: float = 0.2) -> torch.Tensor:
    r"""GraphCL's graph-level loss, view 1 -> view 2, positive excluded from the denominator:

    .. math::

        \ell_n = -\log \frac{e^{\mathrm{sim}(z_{a,n}, z_{b,n})/\tau}}
                            {\sum_{n' \ne n} e^{\mathrm{sim}(z_{a,n}, z_{b,n'})/\tau}}

    averaged over the ``N`` graphs of the batch; ``sim`` is the cosine similarity.

    Args:
        z_a: ``[N, D]`` projected graph embeddings of view 1, ``N >= 2``.
        z_b: ``[N, D]`` view 2, paired row by row.
        temperature: ``τ`` (GraphCL: 0.2).
    """
    check_positive_scalar("temperature", temperature)
    check_pair("z_a", z_a, "z_b", z_b, min_rows=2)
    logits = F.normalize(z_a, dim=1) @ F.normalize(z_b, dim=1).T / temperature
    positive = logits.diagonal()
    eye = torch.eye(logits.shape[0], dtype=torch.bool, device=logits.device)
    negatives = torch.logsumexp(logits.masked_fill(eye, float("-inf")), dim=1)
    return (negatives - positive).mean()
