"""The value-check switch: checks off change no result, skip the data-dependent errors, never sync on GPU."""

import pytest
import torch

from contrastkit import functional as CF
from contrastkit.utils.validation import set_validation, validating, validation, validation_mode


def test_auto_checks_cpu_tensors_and_the_switch_turns_them_off():
    assert validation_mode() == "auto" and validating(torch.zeros(1)) and validating(3.0)
    bad = torch.randn(6, 4)
    bad[0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN/inf"):
        CF.info_nce(bad, torch.randn(6, 4))
    with validation(False):
        assert not validating(torch.zeros(1))
        assert torch.isnan(CF.info_nce(bad, torch.randn(6, 4)))  # not reported: the trainer refuses it
    assert validating(torch.zeros(1))  # restored on leaving the block


@pytest.mark.parametrize("objective", ["info_nce", "clip_loss", "nt_xent", "supcon", "labelled"])
def test_results_do_not_depend_on_the_switch(objective):
    torch.manual_seed(0)
    a, b = torch.randn(16, 8, requires_grad=True), torch.randn(16, 8, requires_grad=True)
    labels = torch.randint(0, 4, (16,))
    calls = {
        "info_nce": lambda: CF.info_nce(a, b, symmetric=True),
        "clip_loss": lambda: CF.clip_loss(a, b, torch.tensor(14.0)),
        "nt_xent": lambda: CF.nt_xent(a, b),
        "supcon": lambda: CF.supcon(torch.stack([a, b], dim=1), labels),
        "labelled": lambda: CF.info_nce(a, b, labels=labels, chunk_size=5),
    }
    results = []
    for mode in (True, False):
        with validation(mode):
            loss = calls[objective]()
            results.append((loss.detach(), *torch.autograd.grad(loss, (a, b))))
    for on, off in zip(*results):
        assert torch.equal(on, off)


def test_bad_mode_is_one_clear_error():
    with pytest.raises(ValueError, match="CONTRASTKIT_VALIDATE"):
        set_validation("sometimes")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA: counts host syncs with set_sync_debug_mode")
@pytest.mark.parametrize("objective", ["info_nce", "clip_loss", "nt_xent"])
def test_no_host_sync_on_cuda_by_default(objective):
    a = torch.randn(512, 64, device="cuda", requires_grad=True)
    b = torch.randn(512, 64, device="cuda", requires_grad=True)
    scale = torch.tensor(14.0, device="cuda")
    calls = {"info_nce": lambda: CF.info_nce(a, b, symmetric=True), "clip_loss": lambda: CF.clip_loss(a, b, scale),
             "nt_xent": lambda: CF.nt_xent(a, b)}
    calls[objective]()  # warm-up outside the probe (lazy CUDA initialisation syncs)
    torch.cuda.set_sync_debug_mode("error")
    try:
        calls[objective]().backward()
    finally:
        torch.cuda.set_sync_debug_mode(0)
