import io

import torch

from contrastkit.eval import evaluate_representation, format_table, print_table


def test_evaluate_representation_combines_knn_and_linear():
    generator = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 5, (300,), generator=generator)
    centres = torch.randn(5, 8, generator=generator) * 3
    features = centres[labels] + 0.2 * torch.randn(300, 8, generator=generator)
    result = evaluate_representation(features[:200], labels[:200], features[200:], labels[200:], knn_k=20)
    assert result["knn_top1"] == 1.0 and result["linear_top1"] == 1.0
    assert set(result) >= {"knn_top1", "knn_top5", "linear_top1", "linear_top5"}
    only_knn = evaluate_representation(features[:200], labels[:200], features[200:], labels[200:], linear=False)
    assert "linear_top1" not in only_knn


def test_format_and_print_table():
    rows = {
        "learned": {"knn_top1": 0.81234, "linear_top1": 0.85},
        "raw_input": {"knn_top1": 0.7},
        "random_init": {"knn_top1": 0.5, "linear_top1": 0.6},
    }
    text = format_table(rows)
    lines = text.splitlines()
    assert lines[0].split() == ["representation", "knn_top1", "linear_top1"]
    assert lines[2].split() == ["learned", "0.8123", "0.8500"]
    assert lines[3].split() == ["raw_input", "0.7000", "-"]
    assert len({len(line) for line in lines[:3]}) == 1  # aligned
    stream = io.StringIO()
    print_table(rows, title="Fashion-MNIST", file=stream)
    assert stream.getvalue() == "Fashion-MNIST\n" + text + "\n"
