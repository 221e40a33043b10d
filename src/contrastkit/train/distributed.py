"""The process group's life: set up under ``torchrun``, barrier, tear down.

``train/`` owns the process group (DESIGN.md): it initialises it from the
environment ``torchrun`` sets (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
``MASTER_ADDR``, ``MASTER_PORT``), hands the default group to the code that needs
collectives (:mod:`contrastkit.negatives`), and destroys it at the end — after a
barrier, since destroying the group right after an autograd all_gather crashed
without one.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass
class DistributedContext:
    """Where this process stands in a (possibly single-process) run."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    initialised_here: bool = False

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0 alone writes logs, checkpoints, metrics and plots."""
        return self.rank == 0

    def barrier(self) -> None:
        if self.enabled and dist.is_initialized():
            dist.barrier()

    def shutdown(self) -> None:
        """Barrier, then destroy the process group if this context created it."""
        if self.initialised_here and dist.is_initialized():
            dist.barrier()
            dist.destroy_process_group()
            self.initialised_here = False


def setup_distributed(device: str = "auto") -> DistributedContext:
    """Initialise the default process group when launched by ``torchrun`` (``WORLD_SIZE`` > 1).

    The backend is NCCL when each process gets a CUDA device, gloo otherwise (CPU).
    A single process (no ``WORLD_SIZE`` or ``WORLD_SIZE=1``) gets a disabled context.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return DistributedContext()
    rank = int(os.environ["RANK"])
    local_rank = int(os.environ.get("LOCAL_RANK", rank))
    if dist.is_initialized():  # set up by the caller: use it, leave its life to them
        return DistributedContext(dist.get_rank(), dist.get_world_size(), local_rank, initialised_here=False)
    use_cuda = torch.cuda.is_available() and device in ("auto", "cuda")
    if use_cuda:
        torch.cuda.set_device(local_rank)
    dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return DistributedContext(rank, world_size, local_rank, initialised_here=True)


def average_gradients(module: torch.nn.Module, context: DistributedContext) -> None:
    """Average the ``.grad`` of ``module``'s trainable parameters over processes, in place.

    What ``DistributedDataParallel`` does during ``backward``, for steps that run their
    backward passes outside it (gradient caching: many partial backward passes, one
    reduction). One flat all-reduce; a parameter without a gradient counts as zeros, so
    every process joins the same collective.
    """
    if not context.enabled:
        return
    params = [p for p in module.parameters() if p.requires_grad]
    if not params:
        return
    flat = torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1) for p in params])
    dist.all_reduce(flat)
    flat /= context.world_size
    offset = 0
    for p in params:
        size = p.numel()
        p.grad = flat[offset : offset + size].view_as(p).clone()
        offset += size


def device_for(context: DistributedContext, device: str) -> str:
    """Each process's device: ``cuda:LOCAL_RANK`` under torchrun with CUDA, else ``device`` unchanged."""
    if context.enabled and device in ("auto", "cuda") and torch.cuda.is_available():
        return f"cuda:{context.local_rank}"
    return device
