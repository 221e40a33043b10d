"""Image–text evaluation: retrieval both ways and zero-shot classification on unseen classes.

The protocol of ``image-text`` runs. On the test split (whose names are never seen in
training, for ``emoji``) it embeds every image and every caption and reports open_clip's
retrieval numbers (R@1/5/10 both ways, mean and median rank; any-match over an image's
captions) and zero-shot top-1 over the test class names with prompt templates (mean of
normalised template embeddings, renormalised), each with a 95 % bootstrap interval over
queries. Baselines from the same run: random embeddings (chance) and the untrained model
(the towers as built: a pretrained tower without any alignment training, or a random one).

``embed`` exports the same embeddings: tables ``images`` (row numbers as ids, the item labels)
and ``captions`` (ids ``ROW/K``: caption ``K`` of image ``ROW``); text queries are encoded like
the captions, into the shared space.
"""

from __future__ import annotations

import dataclasses

import torch

from contrastkit.data.registry import DatasetSplits
from contrastkit.eval.cross_modal import (
    DEFAULT_TEMPLATES,
    bootstrap_interval,
    query_ranks,
    retrieval_scores,
    zero_shot_classifier,
    zero_shot_top1,
)
from contrastkit.eval.protocols.base import (
    EmbeddingTable,
    EvaluationProtocol,
    Model,
    ProtocolSettings,
    evaluation_mode,
    merge_splits,
    split_parts,
)
from contrastkit.utils.schema import bounded

__all__ = ["ImageTextProtocol", "ImageTextSettings"]


@dataclasses.dataclass
class ImageTextSettings(ProtocolSettings):
    """The ``eval:`` keys of the image–text protocol.

    Attributes:
        templates: zero-shot prompt templates, each with ``{}`` for the class name.
        batch_size: images per forward pass.
        bootstrap: bootstrap resamples of the intervals (0: none).
    """

    templates: list[str] = dataclasses.field(default_factory=lambda: list(DEFAULT_TEMPLATES))
    batch_size: int = bounded(512, minimum=1)
    bootstrap: int = bounded(1000, minimum=0)


class ImageTextProtocol(EvaluationProtocol):
    """Retrieval and zero-shot classification on the test split of an image–caption data set."""

    settings_type = ImageTextSettings
    settings: ImageTextSettings

    def __init__(self, splits: DatasetSplits, settings: ImageTextSettings, device: torch.device | None,
                 seed: int) -> None:
        super().__init__(splits, settings, device, seed)
        test = splits.test
        if not hasattr(test, "captions") or not hasattr(test, "images"):
            raise ValueError(f"dataset {splits.name!r}: the image-text evaluation needs an image-caption test split")
        self.test = test
        self.texts = [text for texts in test.captions for text in texts]
        self.owner = torch.tensor([row for row, texts in enumerate(test.captions) for _ in texts])

    @torch.no_grad()
    def _encode_images(self, model: Model, images: torch.Tensor) -> torch.Tensor:
        """Image embeddings ``[N, D]``, ``batch_size`` images per pass (call in eval mode)."""
        device = self.device or torch.device("cpu")
        return torch.cat([model.encode_images(images[start:start + self.settings.batch_size].to(device)).float().cpu()
                          for start in range(0, images.shape[0], self.settings.batch_size)])

    @torch.no_grad()
    def _encode_texts(self, model: Model, texts: list[str]) -> torch.Tensor:
        """Caption (or prompt, or query) embeddings ``[N, D]``, 256 texts per pass (call in eval mode)."""
        return torch.cat([model.encode_texts(texts[start:start + 256]).float().cpu()
                          for start in range(0, len(texts), 256)])

    def _embed(self, model: Model) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        with evaluation_mode(model):
            images = self._encode_images(model, self.test.images)
            texts = self._encode_texts(model, self.texts)
            classifier = zero_shot_classifier(lambda prompts: self._encode_texts(model, prompts),
                                              self.test.class_names, self.settings.templates)
        return images, texts, classifier

    def embed(self, model: Model, split: str) -> list[EmbeddingTable]:  # type: ignore[override]
        """Tables ``images`` and ``captions`` of the split's image–caption pairs (every caption of every image)."""
        datasets = {"train": self.splits.train, "test": self.test}
        tables = {}
        for part in split_parts(split):
            dataset = datasets[part]
            if not hasattr(dataset, "captions") or not hasattr(dataset, "images"):
                raise ValueError(f"dataset {self.splits.name!r}: its {part} split holds no image-caption pairs")
            captions = [(row, number, text) for row, texts in enumerate(dataset.captions)
                        for number, text in enumerate(texts)]
            owners = torch.tensor([row for row, _, _ in captions])
            with evaluation_mode(model):
                images = self._encode_images(model, dataset.images)
                texts = self._encode_texts(model, [text for _, _, text in captions])
            class_names = list(dataset.class_names)
            tables[part] = [
                EmbeddingTable("images", images, list(range(len(dataset))), labels=dataset.labels,
                               texts=["; ".join(texts) for texts in dataset.captions], class_names=class_names,
                               text_queries=True),
                EmbeddingTable("captions", texts, [f"{row}/{number}" for row, number, _ in captions],
                               labels=dataset.labels[owners], texts=[text for _, _, text in captions],
                               class_names=class_names, text_queries=True),
            ]
        return merge_splits(tables)

    def encode_queries(self, model: Model, texts: list[str]) -> torch.Tensor:
        """Text queries encoded like the captions (into the space both towers share)."""
        with evaluation_mode(model):
            return self._encode_texts(model, list(texts))

    def score_embeddings(self, images: torch.Tensor, texts: torch.Tensor, classifier: torch.Tensor) -> dict[str, float]:
        """The protocol's scores from embeddings (normalised here)."""
        images, texts = torch.nn.functional.normalize(images, dim=-1), torch.nn.functional.normalize(texts, dim=-1)
        image_to_text, text_to_image = query_ranks(images, texts, self.owner)
        scores = retrieval_scores(image_to_text, text_to_image)
        correct = zero_shot_top1(images, torch.nn.functional.normalize(classifier, dim=-1), self.test.labels)
        scores["zero_shot_top1"] = float(correct.mean())
        if self.settings.bootstrap:
            for name, values in (("i2t_r@1", (image_to_text <= 1).float()), ("t2i_r@1", (text_to_image <= 1).float()),
                                 ("zero_shot_top1", correct)):
                low, high = bootstrap_interval(values, resamples=self.settings.bootstrap, seed=self.seed)
                scores[f"{name}_ci_low"], scores[f"{name}_ci_high"] = low, high
        return scores

    def final(self, model: Model) -> tuple[dict[str, float], None]:  # type: ignore[override]
        images, texts, classifier = self._embed(model)
        return self.score_embeddings(images, texts, classifier), None

    def periodic(self, model: Model) -> dict[str, float]:  # type: ignore[override]
        images, texts, classifier = self._embed(model)
        scores = self.score_embeddings(images, texts, classifier)
        return {key: scores[key] for key in ("i2t_r@1", "t2i_r@1", "zero_shot_top1")}

    def baselines(self, model: Model) -> dict[str, dict[str, float]]:  # type: ignore[override]
        untrained = self.final(model)[0]
        generator = torch.Generator().manual_seed(self.seed)
        dim = 64
        random = self.score_embeddings(torch.randn(len(self.test), dim, generator=generator),
                                       torch.randn(len(self.texts), dim, generator=generator),
                                       torch.randn(len(self.test.class_names), dim, generator=generator))
        return {"random": random, "untrained": untrained}

    def columns(self) -> list[str]:
        return ["i2t_r@1", "i2t_r@5", "t2i_r@1", "t2i_r@5", "zero_shot_top1"]

    def describe(self) -> str:
        return (f"test split: {len(self.test)} images, {len(self.texts)} captions (any-match), "
                f"{len(self.test.class_names)} unseen classes; zero-shot with {len(self.settings.templates)} templates")

    def evaluated_rows(self) -> dict[str, int | None]:
        return {"train": None, "test": len(self.test)}

    def plot_labels(self) -> torch.Tensor | None:
        return None
