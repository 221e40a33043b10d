"""Routed experts on a tiny random BERT: equivalence at conversion, per-sample routing against a
per-expert reference model, gradients only where used, learned routing's loss, errors."""

import copy

import pytest
import torch
import transformers

from contrastkit.nn.experts import (
    FeedForwardExpert,
    RoutedFeedForward,
    add_routed_experts,
)

CONFIG = dict(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)


def tiny_bert(seed: int = 0) -> transformers.BertModel:
    torch.manual_seed(seed)
    return transformers.BertModel(transformers.BertConfig(**CONFIG)).eval()


def tiny_batch(rows: int = 6, length: int = 9, seed: int = 0) -> dict:
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, 100, (rows, length), generator=generator)
    mask = torch.ones_like(ids)
    mask[1, 6:] = 0
    mask[4, 3:] = 0
    return {"input_ids": ids.masked_fill(mask == 0, 0), "attention_mask": mask}


def ffn_size(model) -> int:
    layer = model.encoder.layer[0]
    return sum(p.numel() for p in layer.intermediate.parameters()) + sum(p.numel() for p in layer.output.parameters())


def perturb(module: torch.nn.Module, seed: int) -> None:
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in module.parameters():
            param.add_(0.5 * torch.randn(param.shape, generator=generator))


def single_expert_reference(original, routing, expert: int):
    """A plain copy of the original model whose FFNs carry expert ``expert``'s weights."""
    reference = copy.deepcopy(original)
    for index, module in zip(routing.layers, routing.modules, strict=True):
        chosen = module.experts[expert]
        reference.encoder.layer[index].intermediate.load_state_dict(chosen.intermediate.state_dict())
        reference.encoder.layer[index].output.load_state_dict(chosen.output.state_dict())
    return reference


def test_conversion_keeps_outputs_and_grows_parameters():
    model, batch = tiny_bert(), tiny_batch()
    with torch.no_grad():
        before = model(**batch).last_hidden_state
    count, ffn = sum(p.numel() for p in model.parameters()), ffn_size(model)
    routing = add_routed_experts(model, 3)
    assert routing.layers == [0, 1]
    assert sum(p.numel() for p in model.parameters()) - count == 2 * (3 - 1) * ffn
    for route in (torch.zeros(6, dtype=torch.long), torch.tensor([0, 1, 2, 2, 1, 0])):
        with torch.no_grad(), routing.route(route):
            torch.testing.assert_close(model(**batch).last_hidden_state, before, atol=1e-5, rtol=1e-5)
    layer = model.encoder.layer[0]
    assert isinstance(layer.intermediate, RoutedFeedForward) and len(layer.intermediate.experts) == 3
    assert all(isinstance(expert, FeedForwardExpert) for expert in layer.intermediate.experts)
    # Deep copies: the experts do not share storage.
    pointers = {expert.intermediate.dense.weight.data_ptr() for expert in layer.intermediate.experts}
    assert len(pointers) == 3


def test_each_sample_goes_through_its_expert():
    original, batch = tiny_bert(), tiny_batch()
    model = copy.deepcopy(original)
    routing = add_routed_experts(model, 3, layers=[1])
    for expert in range(3):
        perturb(routing.modules[0].experts[expert], seed=expert + 10)
    route = torch.tensor([2, 0, 1, 0, 2, 1])
    with torch.no_grad(), routing.route(route):
        routed = model(**batch).last_hidden_state
    with torch.no_grad():
        for expert in range(3):
            expected = single_expert_reference(original, routing, expert)(**batch).last_hidden_state
            rows = route == expert
            torch.testing.assert_close(routed[rows], expected[rows], atol=1e-5, rtol=1e-5)
            assert not torch.allclose(routed[~rows], expected[~rows], atol=1e-3)


def test_perturbing_expert_one_changes_only_its_samples():
    model, batch = tiny_bert(), tiny_batch()
    routing = add_routed_experts(model, 2)
    route = torch.tensor([0, 1, 0, 1, 1, 0])
    routing.set_route(route)
    with torch.no_grad():
        before = model(**batch).last_hidden_state
        for module in routing.modules:
            perturb(module.experts[1], seed=3)
        after = model(**batch).last_hidden_state
    real = batch["attention_mask"].bool()
    assert torch.equal(after[route == 0], before[route == 0])
    changed = (after - before).abs().amax(dim=-1) > 1e-3  # [B, L]
    assert changed[(route == 1).unsqueeze(1) & real].all()


def test_each_expert_runs_on_its_tokens_only_and_gradients_reach_used_experts_only():
    model, batch = tiny_bert(), tiny_batch()
    routing = add_routed_experts(model, 3)
    seen = {expert: 0 for expert in range(3)}
    for expert in range(3):
        routing.modules[0].experts[expert].register_forward_hook(
            lambda module, args, output, expert=expert: seen.__setitem__(expert, seen[expert] + args[0].shape[1])
        )
    route = torch.tensor([0, 2, 2, 0, 0, 2])
    model.train()
    with routing.route(route):
        model(**batch).last_hidden_state.pow(2).mean().backward()
    length = batch["input_ids"].shape[1]
    assert seen == {0: 3 * length, 1: 0, 2: 3 * length}
    for expert in (0, 2):
        grads = [param.grad for param in routing.expert_parameters(expert)]
        assert all(grad is not None and torch.isfinite(grad).all() for grad in grads)
        assert sum(grad.abs().sum() for grad in grads) > 0
    assert all(param.grad is None for param in routing.expert_parameters(1))
    assert model.embeddings.word_embeddings.weight.grad is not None


def test_token_level_route():
    model, batch = tiny_bert(), tiny_batch()
    routing = add_routed_experts(model, 2)
    for module in routing.modules:
        perturb(module.experts[1], seed=4)
    route = torch.tensor([1, 0, 0, 1, 0, 1])
    with torch.no_grad():
        with routing.route(route):
            by_sample = model(**batch).last_hidden_state
        with routing.route(route.unsqueeze(1).expand_as(batch["input_ids"]).clone()):
            by_token = model(**batch).last_hidden_state
    assert torch.equal(by_sample, by_token)


def test_learned_routing():
    original, batch = tiny_bert(), tiny_batch()
    model = copy.deepcopy(original)
    count = sum(p.numel() for p in model.parameters())
    routing = add_routed_experts(model, 4, router="learned", layers=[0], generator=torch.Generator().manual_seed(0))
    assert sum(p.numel() for p in model.parameters()) - count == 3 * ffn_size(original) + (32 * 4 + 4)
    with torch.no_grad():
        torch.testing.assert_close(
            model(**batch).last_hidden_state, original(**batch).last_hidden_state, atol=1e-5, rtol=1e-5
        )
    model.train()
    out = model(**batch).last_hidden_state
    loss = routing.router_loss()
    assert loss.ndim == 0 and torch.isfinite(loss) and loss.requires_grad
    # The Switch formula by hand, over real tokens only.
    module = routing.modules[0]
    real = batch["attention_mask"].reshape(-1).bool()
    probs = module.last_router_probs[real]
    fraction = torch.stack([(module.last_assignment[real] == e).float().mean() for e in range(4)])
    torch.testing.assert_close(loss, 4 * (fraction * probs.mean(dim=0)).sum())
    (loss + out.pow(2).mean()).backward()
    router = model.encoder.layer[0].intermediate.router
    assert router.weight.grad is not None and router.weight.grad.abs().sum() > 0
    # The task loss alone reaches the router too (through the gate).
    router.weight.grad = None
    model(**batch).last_hidden_state.pow(2).mean().backward()
    assert router.weight.grad.abs().sum() > 0


def test_base_model_lookup():
    torch.manual_seed(0)
    masked_lm = transformers.BertForMaskedLM(transformers.BertConfig(**CONFIG)).eval()
    routing = add_routed_experts(masked_lm, 2, layers=[-1])
    assert routing.layers == [1]
    with torch.no_grad(), routing.route(torch.zeros(6, dtype=torch.long)):
        assert masked_lm(**tiny_batch()).logits.shape == (6, 9, 100)


def test_errors():
    with pytest.raises(ValueError, match="encoder.layer"):
        add_routed_experts(torch.nn.Linear(3, 3), 2)
    model, batch = tiny_bert(), tiny_batch()
    for options, message in [
        ({"num_experts": 0}, "num_experts"),
        ({"num_experts": 2, "router": "random"}, "router"),
        ({"num_experts": 2, "layers": [5]}, "layer indices"),
        ({"num_experts": 2, "layers": [0, 0]}, "distinct"),
    ]:
        with pytest.raises(ValueError, match=message):
            add_routed_experts(model, **options)
    routing = add_routed_experts(model, 2)
    with pytest.raises(ValueError, match="already"):
        add_routed_experts(model, 2)
    with pytest.raises(ValueError, match="routing.route"):
        model(**batch)
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        routing.set_route(torch.tensor([0, 2, 0, 0, 0, 0]))
    with pytest.raises(ValueError, match="integer"):
        routing.set_route(torch.zeros(6))
    with pytest.raises(ValueError, match="length B = 6"), routing.route(torch.zeros(4, dtype=torch.long)):
        model(**batch)
    with pytest.raises(ValueError, match=r"\[B, L\]"), routing.route(torch.zeros(6, 4, dtype=torch.long)):
        model(**batch)
    with pytest.raises(ValueError, match="learned"):
        routing.router_loss()
    with pytest.raises(ValueError, match="expert index"):
        routing.expert_parameters(2)
    routing.set_route(torch.zeros(6, dtype=torch.long))
    model(**batch)
    routing.clear_route()
    with pytest.raises(ValueError, match="no route"):
        model(**batch)
    learned = add_routed_experts(tiny_bert(), 2, router="learned")
    with pytest.raises(ValueError, match="enforced routing only"):
        learned.set_route(torch.zeros(6, dtype=torch.long))
    with pytest.raises(ValueError, match="forward"):
        learned.router_loss()


def test_gradient_checkpointing_is_refused_under_enforced_routing():
    model, batch = tiny_bert(), tiny_batch()
    routing = add_routed_experts(model, 2)
    model.gradient_checkpointing_enable()
    model.train()
    with pytest.raises(ValueError, match="gradient checkpointing"), routing.route(torch.zeros(6, dtype=torch.long)):
        model(**batch)
    model.eval()
    with torch.no_grad(), routing.route(torch.zeros(6, dtype=torch.long)):
        model(**batch)  # no recomputation without gradients: allowed
