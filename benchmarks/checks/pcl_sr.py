"""PCL-SR check: does the contrastive term help a tiny x2 SR network on Fashion-MNIST?

METHODS.md #14 (FULL, toy scale). HR = 28x28 Fashion-MNIST images, LR = their 2x2 average pooling
(14x14). The same :class:`~contrastkit.nn.super_resolution.TinySRNet` (same initialisation, data
order and steps) is trained with ``L1`` (baseline) and with ``L1 + 5 L_CL`` (ours; L1 on the 0-255
pixel scale of the official scripts), where ``L_CL`` is
:func:`~contrastkit.functional.pcl_sr.pcl_sr_contrastive` on layer-4 (pre-activation) features of a
:class:`~contrastkit.nn.super_resolution.PatchDiscriminator` that trains alongside with the dual
contrastive loss (real: HR and unsharp-masked HR; fake: blurred HR and the detached SR output), as
the official ``contras_D_train`` set-up. The embedding is taken in eval mode (running BatchNorm
statistics), so that the SR output and its positives and negatives are normalised alike. Metric:
mean PSNR (dB) on held-out test images, outputs clamped to [0, 1]; the bicubic PSNR is an extra.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from contrastkit.data import load_dataset
from contrastkit.functional.pcl_sr import (
    dual_contrastive_discriminator_loss,
    pcl_sr_contrastive,
)
from contrastkit.nn.super_resolution import PatchDiscriminator, TinySRNet
from contrastkit.utils.seed import seed_everything
from contrastkit.views.sharpness import pcl_sr_samples

ROWS = [
    dict(
        key="pcl-sr",
        method="PCL-SR (L1 + 5 L_CL, patch-D embedding)",
        baseline="L1 only",
        data="Fashion-MNIST x2 (14->28 px, avg-pool LR)",
        metric="test PSNR (dB)",
        budget="400 steps x batch 64, TinySRNet(32 features, 4 layers)",
        higher_is_better=True,
        claim="the contrastive regulariser does not hurt and can raise PSNR at equal steps",
    )
]

STEPS, QUICK_STEPS = 400, 5
BATCH = 64
CL_WEIGHT = 5.0
CL_LAYER = 4
#: The official scripts train on pixel values in [0, 255] (``--rgb_range 255``): their L1 is 255 times
#: ours on [0, 1] images while L_CL (cosines) is scale-free. Weighting ``255 * L1 + 5 * L_CL`` keeps the
#: paper's balance (with ``1 * L1`` on [0, 1] images the contrastive term dominates and PSNR collapses).
RGB_RANGE = 255.0


def psnr(prediction: torch.Tensor, target: torch.Tensor) -> float:
    """Mean over images of ``10 log10(1 / MSE)`` for images in ``[0, 1]``."""
    mse = (prediction.clamp(0, 1) - target).pow(2).flatten(1).mean(dim=1).clamp_min(1e-10)
    return float((10 * torch.log10(1.0 / mse)).mean())


def _train(hr: torch.Tensor, order: torch.Tensor, *, contrastive: bool, seed: int, quick: bool) -> TinySRNet:
    seed_everything(seed)
    net = TinySRNet(channels=1, features=32, num_layers=4, scale=2)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    if contrastive:
        discriminator = PatchDiscriminator(1, base_channels=8 if quick else 16, depth=7, use_wavelet=True)
        d_optimizer = torch.optim.Adam(discriminator.parameters(), lr=1e-4, betas=(0.9, 0.999))
        generator = torch.Generator().manual_seed(seed)
    for rows in order:
        target = hr[rows]
        sr = net(F.avg_pool2d(target, 2))
        loss = RGB_RANGE * F.l1_loss(sr, target)  # Adam is scale-invariant: the baseline is unaffected
        if contrastive:
            positives, negatives = pcl_sr_samples(target, generator=generator)
            # 1) the discriminator: positives are real, blurred HR and the SR output are fake.
            discriminator.train()
            real = discriminator(torch.cat(positives))
            fake = discriminator(torch.cat(negatives + [sr.detach()]))
            d_loss = dual_contrastive_discriminator_loss(real, fake)
            d_optimizer.zero_grad(set_to_none=True)
            d_loss.backward()
            d_optimizer.step()
            # 2) the SR network: InfoNCE on the (frozen) discriminator's layer-4 features.
            discriminator.eval()
            with torch.no_grad():
                positive_features = [discriminator.features(p, CL_LAYER)[CL_LAYER] for p in positives]
                negative_features = [discriminator.features(n, CL_LAYER)[CL_LAYER] for n in negatives]
            sr_features = discriminator.features(sr, CL_LAYER)[CL_LAYER]
            loss = loss + CL_WEIGHT * pcl_sr_contrastive(
                sr_features, positive_features, negative_features, generator=generator
            )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return net.eval()


def run(seed: int, quick: bool = False) -> dict[str, dict[str, float]]:
    if quick:
        splits = load_dataset("digits")
        steps = QUICK_STEPS
    else:
        splits = load_dataset("fashion-mnist", train_subset=4000, test_subset=500, seed=seed)
        steps = STEPS
    hr_train, hr_test = splits.train.inputs, splits.test.inputs
    generator = torch.Generator().manual_seed(seed)
    order = torch.randint(0, hr_train.shape[0], (steps, BATCH), generator=generator)
    results = {}
    for name, contrastive in (("baseline", False), ("ours", True)):
        net = _train(hr_train, order, contrastive=contrastive, seed=seed, quick=quick)
        with torch.no_grad():
            results[name] = psnr(net(F.avg_pool2d(hr_test, 2)), hr_test)
    lr_test = F.avg_pool2d(hr_test, 2)
    bicubic = F.interpolate(lr_test, scale_factor=2, mode="bicubic", align_corners=False)
    results["bicubic"] = psnr(bicubic, hr_test)
    return {"pcl-sr": results}
