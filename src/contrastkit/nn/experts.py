"""Routed feed-forward experts for BERT-like encoders (MoE-SentSim).

Hallee, Kapur, Patel, Gleghorn & Khomtchouk 2024, "Contrastive Learning and
Mixture of Experts Enables Precise Vector Embeddings" (Gleghorn-Lab/
Mixture-of-Experts-Sentence-Similarity). The feed-forward block (FFN) of chosen
transformer layers is copied into N experts, all initialised from the pretrained
weights; each sample (or token) then goes through one expert. With *enforced*
routing the caller says which expert (e.g. one per domain), so N domains share
attention and embeddings but each gets its own FFN; with *learned* routing a
linear router picks the expert of every token (top-1), trained with a
Switch-Transformer load-balancing loss.

How the FFN is replaced: a Hugging Face BERT layer computes its FFN as
``layer.output(layer.intermediate(h), h)`` (``BertLayer.feed_forward_chunk``;
RoBERTa, MiniLM, ELECTRA and friends share it). :func:`add_routed_experts` puts a
:class:`RoutedFeedForward` holding N ``(intermediate, output)`` copies in
``layer.intermediate``, which returns the whole FFN's output, and a pass-through
in ``layer.output``. Nothing else of the model changes.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

__all__ = ["ROUTER_MODES", "ExpertRouting", "FeedForwardExpert", "RoutedFeedForward", "add_routed_experts"]

ROUTER_MODES = ("enforced", "learned")


@dataclass
class _RouteState:
    """What every routed layer of one model reads: the current route and the token mask."""

    expert_ids: torch.Tensor | None = None
    token_mask: torch.Tensor | None = None


class FeedForwardExpert(nn.Module):
    """One expert: a copy of a layer's ``intermediate`` and ``output`` modules.

    ``forward(h) = output(intermediate(h), h)``, the BERT FFN with its residual and LayerNorm.
    """

    def __init__(self, intermediate: nn.Module, output: nn.Module) -> None:
        super().__init__()
        self.intermediate = intermediate
        self.output = output

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.output(self.intermediate(hidden_states), hidden_states)


class _FeedForwardPassThrough(nn.Module):
    """Stands in for ``layer.output``: the routed FFN already returned the layer's output."""

    def forward(self, hidden_states: torch.Tensor, input_tensor: torch.Tensor | None = None) -> torch.Tensor:
        return hidden_states


class RoutedFeedForward(nn.Module):
    """N feed-forward experts and a routing rule, standing in for ``layer.intermediate``.

    Every token goes through exactly one expert. Tokens are grouped by expert
    (one stable sort), each expert runs on its own tokens only, and the results
    are put back in place (one gather), so the cost is one FFN pass over the
    batch whatever N is.

    Enforced routing reads the expert ids set through :class:`ExpertRouting`:
    ``[B]`` (every token of sample ``b`` to ``expert_ids[b]``) or ``[B, L]`` (per
    token, e.g. from token-type ids). Learned routing computes router
    probabilities ``p = softmax(W h)`` per token and sends it to ``argmax p``;
    the expert's output is multiplied by ``p_e / stop_gradient(p_e)``, which is 1
    in value (so a freshly converted model computes what the original did) but
    passes the gradient to the router, as Switch Transformer's gate does.

    Args:
        experts: the N experts.
        hidden_size: the model's hidden size (for the router).
        router: ``"enforced"`` or ``"learned"``.
        state: the routing state shared by the layers of one model.
        generator: optional ``torch.Generator`` for the router's initial weights.
    """

    def __init__(
        self,
        experts: Sequence[nn.Module],
        hidden_size: int,
        router: str,
        state: _RouteState,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        self.experts = nn.ModuleList(experts)
        self.router_mode = router
        self._state = state
        if router == "learned":
            self.router = nn.Linear(hidden_size, len(experts))
            with torch.no_grad():
                # BERT's initializer_range: near-uniform probabilities at the start.
                device = generator.device if generator is not None else None
                weight = torch.randn(self.router.weight.shape, generator=generator, device=device).cpu() * 0.02
                self.router.weight.copy_(weight)
                self.router.bias.zero_()
        else:
            self.router = None
        self.last_router_probs: torch.Tensor | None = None
        self.last_assignment: torch.Tensor | None = None
        self.last_token_mask: torch.Tensor | None = None

    @property
    def num_experts(self) -> int:
        return len(self.experts)

    def extra_repr(self) -> str:
        return f"num_experts={self.num_experts}, router={self.router_mode!r}"

    def _enforced_assignment(self, batch: int, length: int, device: torch.device) -> torch.Tensor:
        expert_ids = self._state.expert_ids
        if expert_ids is None:
            raise ValueError(
                "RoutedFeedForward: enforced routing needs expert ids for this forward; wrap it in "
                "`with routing.route(expert_ids):` or call `routing.set_route(expert_ids)` "
                "(expert_ids: LongTensor [B] or [B, L]), got no route"
            )
        expert_ids = expert_ids.to(device)
        if expert_ids.dim() == 1:
            if expert_ids.shape[0] != batch:
                raise ValueError(
                    f"RoutedFeedForward: expected expert_ids of length B = {batch} (one per sample), "
                    f"got shape {tuple(expert_ids.shape)}"
                )
            return expert_ids.unsqueeze(1).expand(batch, length)
        if expert_ids.shape != (batch, length):
            # Chunked feed-forward (chunk_size_feed_forward) would need the ids per chunk.
            raise ValueError(
                f"RoutedFeedForward: expected token-level expert_ids of shape [B, L] = {(batch, length)}, "
                f"got {tuple(expert_ids.shape)}"
            )
        return expert_ids

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        """The FFN output ``[B, L, H]`` of the layer (residual and LayerNorm included)."""
        batch, length, hidden = hidden_states.shape
        tokens = hidden_states.reshape(batch * length, hidden)
        gate = None
        if self.router is None:
            assignment = self._enforced_assignment(batch, length, hidden_states.device).reshape(-1)
        else:
            probs = torch.softmax(self.router(tokens).float(), dim=-1)
            assignment = probs.argmax(dim=-1)
            chosen = probs.gather(1, assignment.unsqueeze(1))
            gate = chosen / chosen.detach()
            self.last_router_probs = probs
            self.last_assignment = assignment
            mask = self._state.token_mask
            same_shape = mask is not None and mask.shape == (batch, length)
            self.last_token_mask = mask.reshape(-1).to(hidden_states.device).bool() if same_shape else None
        order = torch.argsort(assignment, stable=True)
        counts = torch.bincount(assignment, minlength=self.num_experts).tolist()
        sorted_tokens = tokens.index_select(0, order)
        outputs = []
        for expert, expert_tokens in zip(self.experts, sorted_tokens.split(counts), strict=True):
            if expert_tokens.shape[0] == 0:
                continue  # an unused expert is not run: it gets no gradient
            # Experts see [1, n, H] so that modules written for [B, L, H] work unchanged.
            outputs.append(expert(expert_tokens.unsqueeze(0)).squeeze(0))
        sorted_outputs = torch.cat(outputs) if outputs else sorted_tokens[:0]
        out = sorted_outputs.index_select(0, torch.argsort(order))
        if gate is not None:
            out = out * gate.to(out.dtype)
        return out.reshape(batch, length, -1)


def _base_model(model: nn.Module) -> nn.Module:
    """The module with ``encoder.layer``: ``model`` itself or its ``base_model`` (e.g. ``BertForMaskedLM.bert``)."""
    for candidate in (model, getattr(model, "base_model", None)):
        encoder = getattr(candidate, "encoder", None)
        if isinstance(getattr(encoder, "layer", None), nn.ModuleList):
            return candidate
    raise ValueError(
        "add_routed_experts: expected a BERT-like model with `encoder.layer` (an nn.ModuleList of layers "
        f"that each have `.intermediate` and `.output`), got {type(model).__name__} without it"
    )


@dataclass
class ExpertRouting:
    """Handle on the routed experts of a model, returned by :func:`add_routed_experts`.

    Attributes:
        model: the converted model (the same object that was passed in).
        num_experts: N.
        router: ``"enforced"`` or ``"learned"``.
        layers: the layer indices that were converted.
        modules: the :class:`RoutedFeedForward` of each converted layer, in order.
    """

    model: nn.Module = field(repr=False)
    num_experts: int
    router: str
    layers: list[int]
    modules: list[RoutedFeedForward] = field(repr=False)
    _state: _RouteState = field(repr=False)
    _hooks: list[torch.utils.hooks.RemovableHandle] = field(repr=False)

    def _check_expert_ids(self, expert_ids: torch.Tensor) -> torch.Tensor:
        if self.router != "enforced":
            raise ValueError(
                f"ExpertRouting: routes are set under enforced routing only; this model uses {self.router!r}"
            )
        if not isinstance(expert_ids, torch.Tensor) or expert_ids.dim() not in (1, 2):
            got = tuple(expert_ids.shape) if isinstance(expert_ids, torch.Tensor) else type(expert_ids).__name__
            raise ValueError(f"ExpertRouting: expected expert_ids as a LongTensor [B] or [B, L], got {got}")
        if expert_ids.is_floating_point() or expert_ids.is_complex() or expert_ids.dtype == torch.bool:
            raise ValueError(f"ExpertRouting: expected integer expert_ids, got dtype {expert_ids.dtype}")
        if expert_ids.numel() and (int(expert_ids.min()) < 0 or int(expert_ids.max()) >= self.num_experts):
            raise ValueError(
                f"ExpertRouting: expected expert ids in [0, {self.num_experts - 1}], "
                f"got values in [{int(expert_ids.min())}, {int(expert_ids.max())}]"
            )
        return expert_ids.long()

    def set_route(self, expert_ids: torch.Tensor) -> None:
        """Route the following forwards: sample ``b`` (or token ``(b, l)``) to expert ``expert_ids[b]``.

        The route stays until :meth:`clear_route` or another :meth:`set_route`.

        Raises:
            ValueError: learned routing, a non-integer tensor, or ids outside ``[0, N)``.
                A length that does not match the batch is reported at the forward.
        """
        self._state.expert_ids = self._check_expert_ids(expert_ids)

    def clear_route(self) -> None:
        """Forget the route; an enforced forward without one raises."""
        self._state.expert_ids = None

    @contextlib.contextmanager
    def route(self, expert_ids: torch.Tensor) -> Iterator[None]:
        """``with routing.route(expert_ids): model(**batch)``: a route for the forwards inside only."""
        previous = self._state.expert_ids
        self.set_route(expert_ids)
        try:
            yield
        finally:
            self._state.expert_ids = previous

    def router_loss(self) -> torch.Tensor:
        """Switch-Transformer load-balancing loss of the last forward, averaged over the routed layers.

        Fedus, Zoph & Shazeer, JMLR 2022, eq. (4) without its ``α``: per layer,
        ``N · Σ_i f_i · P_i`` with ``f_i`` the fraction of tokens sent to expert
        ``i`` and ``P_i`` the mean router probability of expert ``i``, over the
        real tokens (the ``attention_mask`` of the forward, when the model was
        called with one). It is 1 at perfect balance; scale it (Switch uses
        ``α = 0.01``) and add it to the objective.

        Raises:
            ValueError: enforced routing (there is no router), or no forward yet.
        """
        if self.router != "learned":
            raise ValueError(
                "ExpertRouting.router_loss: expected learned routing, got 'enforced' (there is no router)"
            )
        losses = []
        for module in self.modules:
            if module.last_router_probs is None or module.last_assignment is None:
                raise ValueError("ExpertRouting.router_loss: expected a forward through the model first, got none")
            probs, assignment = module.last_router_probs, module.last_assignment
            if module.last_token_mask is not None:
                probs, assignment = probs[module.last_token_mask], assignment[module.last_token_mask]
            fraction = torch.bincount(assignment, minlength=self.num_experts).to(probs.dtype) / max(len(assignment), 1)
            losses.append(self.num_experts * (fraction * probs.mean(dim=0)).sum())
        return torch.stack(losses).mean()

    def expert_parameters(self, expert: int) -> list[nn.Parameter]:
        """The parameters of expert ``expert`` in every converted layer."""
        if isinstance(expert, bool) or not isinstance(expert, int) or not 0 <= expert < self.num_experts:
            raise ValueError(
                f"ExpertRouting: expected an expert index in [0, {self.num_experts - 1}], got {expert!r}"
            )
        return [param for module in self.modules for param in module.experts[expert].parameters()]

    def remove_hooks(self) -> None:
        """Stop recording the attention mask at each forward (router_loss then counts padding too)."""
        for hook in self._hooks:
            hook.remove()
        self._state.token_mask = None


def add_routed_experts(
    model: nn.Module,
    num_experts: int,
    *,
    layers: Sequence[int] | None = None,
    router: str = "enforced",
    generator: torch.Generator | None = None,
) -> ExpertRouting:
    """Turn the FFN of chosen layers of a BERT-like model into ``num_experts`` routed experts, in place.

    MoE-SentSim (Hallee et al. 2024): each expert is a deep copy of the layer's
    pretrained FFN (``intermediate`` and ``output``, LayerNorm included), so right
    after conversion every route computes what the original model did. The
    parameter count grows by ``(N - 1)`` FFNs per converted layer (plus an
    ``H × N`` router per layer under learned routing).

    Args:
        model: a Hugging Face BERT-like model (``model.encoder.layer[i]`` with
            ``.intermediate`` and ``.output``), or one that has such a ``base_model``.
        num_experts: N >= 1.
        layers: indices of the layers to convert (default: all).
        router: ``"enforced"`` (the caller gives the expert of each sample or
            token, e.g. its domain) or ``"learned"`` (a linear top-1 router per layer).
        generator: optional ``torch.Generator`` for the routers' initial weights.

    Returns:
        An :class:`ExpertRouting` handle: ``route``/``set_route`` for enforced
        routing, ``router_loss`` for learned routing.

    Raises:
        ValueError: a model without that structure, a bad ``num_experts``, layer
            index or router name, or layers that were converted already. Under
            enforced routing, a training forward with gradient checkpointing on
            raises too (the recomputation in backward would not see the route).

    Example:
        >>> routing = add_routed_experts(bert, num_experts=3)
        >>> with routing.route(torch.tensor([0, 2, 1])):
        ...     hidden = bert(**batch).last_hidden_state
    """
    if isinstance(num_experts, bool) or not isinstance(num_experts, int) or num_experts < 1:
        raise ValueError(f"add_routed_experts: expected num_experts as an int >= 1, got {num_experts!r}")
    if router not in ROUTER_MODES:
        raise ValueError(f"add_routed_experts: expected router in {ROUTER_MODES}, got {router!r}")
    if generator is not None and not isinstance(generator, torch.Generator):
        raise ValueError(f"add_routed_experts: expected a torch.Generator, got {type(generator).__name__}")
    base = _base_model(model)
    encoder_layers = base.encoder.layer
    count = len(encoder_layers)
    if layers is None:
        chosen = list(range(count))
    else:
        chosen = []
        for index in layers:
            if isinstance(index, bool) or not isinstance(index, int) or not -count <= index < count:
                raise ValueError(f"add_routed_experts: expected layer indices in [0, {count - 1}], got {index!r}")
            chosen.append(index % count)
        if len(set(chosen)) != len(chosen) or not chosen:
            raise ValueError(f"add_routed_experts: expected distinct layer indices, at least one, got {list(layers)}")
    hidden_size = getattr(getattr(model, "config", None), "hidden_size", None)
    state = _RouteState()
    modules = []
    for index in chosen:
        layer = encoder_layers[index]
        intermediate, output = getattr(layer, "intermediate", None), getattr(layer, "output", None)
        if not isinstance(intermediate, nn.Module) or not isinstance(output, nn.Module):
            raise ValueError(
                f"add_routed_experts: expected encoder.layer[{index}] to have `.intermediate` and `.output` "
                f"modules (the BERT FFN), got {type(layer).__name__} without them"
            )
        if isinstance(intermediate, RoutedFeedForward):
            raise ValueError(f"add_routed_experts: encoder.layer[{index}] already has routed experts")
        if hidden_size is None:
            hidden_size = next(p for p in output.parameters() if p.dim() == 2).shape[0]
        experts = [FeedForwardExpert(copy.deepcopy(intermediate), copy.deepcopy(output)) for _ in range(num_experts)]
        routed = RoutedFeedForward(experts, hidden_size, router, state, generator=generator)
        reference = next(intermediate.parameters(), None)
        if reference is not None and routed.router is not None:
            routed.router.to(device=reference.device, dtype=reference.dtype)
        layer.intermediate = routed
        layer.output = _FeedForwardPassThrough()
        modules.append(routed)

    converted = [encoder_layers[index] for index in chosen]

    def before_forward(module: nn.Module, args: tuple, kwargs: dict) -> None:
        if router == "enforced" and module.training and torch.is_grad_enabled():
            if any(getattr(layer, "gradient_checkpointing", False) for layer in converted):
                # Checkpointing re-runs the FFN during backward, when the route given for this
                # forward may have been cleared or replaced by another batch's.
                raise ValueError(
                    "add_routed_experts: enforced routing does not support gradient checkpointing on the "
                    "converted layers (the FFN would be recomputed in backward with whatever route is set "
                    "then); call model.gradient_checkpointing_disable()"
                )
        # The FFN does not see the attention mask; keep it for router_loss.
        mask = kwargs.get("attention_mask")
        if mask is None and len(args) > 1 and isinstance(args[1], torch.Tensor):
            mask = args[1]
        state.token_mask = mask if isinstance(mask, torch.Tensor) and mask.dim() == 2 else None

    def forget_mask(module: nn.Module, args: tuple, output: object) -> None:
        # A later call of a sub-module alone must not read this forward's mask.
        state.token_mask = None

    hooks = [
        model.register_forward_pre_hook(before_forward, with_kwargs=True),
        model.register_forward_hook(forget_mask),
    ]
    return ExpertRouting(
        model=model, num_experts=num_experts, router=router, layers=chosen, modules=modules, _state=state, _hooks=hooks
    )
