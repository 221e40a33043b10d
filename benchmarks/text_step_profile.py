"""Where a MiniLM fine-tuning step spends its time: the figures quoted under the code-search table.

Run::

    .venv/bin/python benchmarks/text_step_profile.py

Prints (1) the seconds of one AdamW step over all-MiniLM-L6-v2's parameters with
torch's default implementation, ``foreach=True`` and ``fused=True``; (2) for a few
steps of the ``code-search`` recipe's MNRL training (batch 32, 128 tokens), the share
of the encoder's forward time spent in scaled-dot-product attention (cProfile).
"""

from __future__ import annotations

import cProfile
import pstats
import tempfile
import time

import torch

from contrastkit.nn.text import TextEncoder
from contrastkit.train.config import load_config, resolved
from contrastkit.train.run import build_method_from_config, load_data
from contrastkit.train.trainer import TrainConfig, Trainer


def optimizer_step_seconds(repeats: int = 10) -> dict[str, float]:
    parameters = list(TextEncoder().parameters())
    for parameter in parameters:
        parameter.grad = torch.randn_like(parameter) * 1e-3
    out = {}
    for label, options in (("default", {}), ("foreach", {"foreach": True}), ("fused", {"fused": True})):
        optimizer = torch.optim.AdamW(parameters, lr=1e-5, **options)
        for _ in range(3):  # warm-up: state allocation
            optimizer.step()
        started = time.perf_counter()
        for _ in range(repeats):
            optimizer.step()
        out[label] = (time.perf_counter() - started) / repeats
    return out


def attention_share(steps: int = 6) -> tuple[float, float]:
    """``(seconds per step, attention time / encoder forward time)`` over ``steps`` MNRL steps."""
    config = resolved(load_config("code-search", ["encoder.query_max_length=128"]))
    splits = load_data(config)
    method = build_method_from_config(config, splits)
    train = TrainConfig(**{**config["train"], "steps": steps, "progress": False, "checkpoint_every": 0})
    with tempfile.TemporaryDirectory() as directory:
        trainer = Trainer(method, splits.train, train, directory, seed=0)
        profile = cProfile.Profile()
        started = time.perf_counter()
        profile.enable()
        trainer.fit()
        profile.disable()
        per_step = (time.perf_counter() - started) / steps
    stats = pstats.Stats(profile).stats  # type: ignore[attr-defined]
    forward = sum(v[3] for k, v in stats.items() if k[0].endswith("nn/text.py") and k[2] == "forward")
    attention = sum(v[3] for k, v in stats.items() if "scaled_dot_product_attention" in k[2])
    return per_step, attention / forward


def main() -> None:
    for label, seconds in optimizer_step_seconds().items():
        print(f"AdamW step ({label}): {seconds * 1000:.0f} ms")
    per_step, share = attention_share()
    print(f"MNRL step (profiled): {per_step:.2f} s; attention share of the encoder forward: {share:.0%}")


if __name__ == "__main__":
    main()
