import json

import pytest
import torch

from contrastkit.eval import plot_embedding_2d, plot_loss_curve

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_loss_curve_from_jsonl_and_records(tmp_path):
    metrics = tmp_path / "metrics.jsonl"
    records = [{"step": i, "loss": 5.0 / (i + 1), "lr": 0.1} for i in range(20)] + [{"step": 20, "knn_top1": 0.5}]
    metrics.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    out = plot_loss_curve(metrics, tmp_path / "plots" / "loss.png")
    assert out.read_bytes()[:8] == PNG_MAGIC
    plot_loss_curve(records, tmp_path / "loss2.png", keys=["loss", "lr"])
    assert (tmp_path / "loss2.png").read_bytes()[:8] == PNG_MAGIC
    assert sorted(p.name for p in tmp_path.iterdir()) == ["loss2.png", "metrics.jsonl", "plots"]
    with pytest.raises(ValueError, match="no numeric values"):
        plot_loss_curve([{"step": 1}], tmp_path / "empty.png")
    assert not (tmp_path / "empty.png").exists()


def test_embedding_plot(tmp_path):
    generator = torch.Generator().manual_seed(0)
    features = torch.randn(3000, 16, generator=generator)
    labels = torch.randint(0, 10, (3000,), generator=generator)
    out = plot_embedding_2d(features, labels, tmp_path / "pca.png", max_points=500)
    assert out.read_bytes()[:8] == PNG_MAGIC
    plot_embedding_2d(features[:60], None, tmp_path / "tsne.png", method="tsne")
    assert (tmp_path / "tsne.png").read_bytes()[:8] == PNG_MAGIC
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp files left
    with pytest.raises(ValueError, match="unknown method"):
        plot_embedding_2d(features, labels, tmp_path / "x.png", method="umap")


def test_many_classes_get_a_legend_of_the_largest_and_outliers_do_not_set_the_axes(tmp_path, monkeypatch):
    import numpy as np

    from contrastkit.eval import plots

    captured = {}
    save = plots.save_figure_atomically

    def keep(figure, out_png):
        captured["axes"] = figure.axes[0]
        return save(figure, out_png)

    monkeypatch.setattr(plots, "save_figure_atomically", keep)
    generator = np.random.default_rng(0)
    labels = np.repeat(np.arange(52), np.arange(1, 53))  # class 51 is the largest
    features = generator.normal(size=(labels.size, 8))
    features[0] = 1e6  # one far outlier
    plots.plot_embedding_2d(features, labels, tmp_path / "e.png", max_points=10_000)
    axes = captured["axes"]
    legend = axes.get_legend()
    names = [text.get_text() for text in legend.get_texts()]
    assert len(names) == plots.LEGEND_CLASSES and "51" in names and "0" not in names
    assert "of 52 classes" in legend.get_title().get_text()
    low, high = axes.get_xlim()
    assert high - low < 100  # the cloud's spread (a few units), not the outlier's 1e6
