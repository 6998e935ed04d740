"""Several processes (GPUs) inside one training job: torchrun launch, DDP context, batch shards.

``hgbench train`` with ``train.devices: N > 1`` relaunches itself through torchrun's launcher
(``torch.distributed.run``, the same code as the ``torchrun`` command, standalone rendezvous on
this node) with N worker processes; each worker sees ``LOCAL_RANK``/``WORLD_SIZE`` and joins the
process group (NCCL on CUDA, gloo on CPU). The global batch ``train.batch_size`` is the same as
with one process: every rank draws the same global batch and augmentation and keeps its contiguous
slice, and BatchNorm statistics are synchronised across ranks, so N processes compute what one
process with the whole batch computes (up to float summation order).
"""

from __future__ import annotations

import os
import sys
import uuid
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist
from torch import nn


@dataclass(frozen=True)
class Context:
    """This process's place in the job: rank among ``world`` processes, GPU index ``local_rank``."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """Rank 0 writes the files and the log."""
        return self.rank == 0


def under_torchrun() -> bool:
    """True inside a worker started by torchrun (it sets LOCAL_RANK and WORLD_SIZE)."""
    return "LOCAL_RANK" in os.environ and "WORLD_SIZE" in os.environ


def setup(device: torch.device) -> tuple[Context, torch.device]:
    """Join the process group when started by torchrun; returns the context and this rank's device."""
    if not under_torchrun():
        return Context(), device
    ctx = Context(int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), int(os.environ["LOCAL_RANK"]))
    if device.type == "cuda":
        device = torch.device("cuda", ctx.local_rank)
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return ctx, device


def teardown(ctx: Context) -> None:
    if ctx.world > 1 and dist.is_initialized():
        dist.destroy_process_group()


def shard(rows: np.ndarray, ctx: Context) -> slice:
    """This rank's contiguous part of a global batch of ``len(rows)`` samples."""
    bounds = np.linspace(0, len(rows), ctx.world + 1).round().astype(int)
    return slice(int(bounds[ctx.rank]), int(bounds[ctx.rank + 1]))


def launch(nproc: int, argv: list[str], interrupted: int) -> int:
    """Run ``python -m hgbench <argv>`` as ``nproc`` torchrun workers on this node; returns the exit code.

    The exit code is the workers' own when they agree (so the documented interrupt code survives
    the launcher), else 1; ``interrupted`` (the CLI's code for "stopped by a signal, state
    saved") when the launcher itself was signalled.
    """
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    config = LaunchConfig(
        min_nodes=1,
        max_nodes=1,
        nproc_per_node=nproc,
        run_id=str(uuid.uuid4()),
        rdzv_backend="c10d",
        rdzv_endpoint="localhost:0",
        max_restarts=0,
        start_method="spawn",
    )
    try:
        elastic_launch(config, sys.executable)("-m", "hgbench", *argv)
    except ChildFailedError as exc:
        codes = {f.exitcode for f in exc.failures.values()}
        if len(codes) > 1:
            # One rank failed, so the launcher stopped the others (they exit as interrupted, or by
            # the signal): the job's status is the failure's own.
            codes = {c for c in codes if c > 0 and c != interrupted} or codes
        return codes.pop() if len(codes) == 1 and codes != {-1} else 1
    except SignalException:
        # The launcher itself was signalled; the workers got the signal too and saved last.pt.
        return interrupted
    return 0


class _SumOverRanks(torch.autograd.Function):
    """all_reduce(SUM) with its gradient: d(sum over ranks)/d(own part) sums the ranks' gradients."""

    @staticmethod
    def forward(ctx, tensor: torch.Tensor) -> torch.Tensor:
        out = tensor.clone()
        dist.all_reduce(out)
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.clone()
        dist.all_reduce(grad)
        return grad


class CrossRankBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm2d whose training statistics are taken over the global batch of all ranks.

    ``nn.SyncBatchNorm`` does the same on GPUs only; this version works on any backend (gloo on
    CPU) through a differentiable ``all_reduce``, so the gradient flows through the shared
    statistics as it would in one process. Same parameters, buffers and state-dict keys as
    ``nn.BatchNorm2d``; in eval mode, or in a single process, it is ``nn.BatchNorm2d``.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or not dist.is_initialized() or dist.get_world_size() == 1:
            return super().forward(x)
        c = x.shape[1]
        xf = x.float() if x.dtype in (torch.float16, torch.bfloat16) else x  # statistics in fp32 or better
        count = torch.tensor([xf.numel() // c], dtype=xf.dtype, device=x.device)
        # One all_reduce of [sum, sum of squares, count] per layer.
        stats = _SumOverRanks.apply(torch.cat([xf.sum(dim=(0, 2, 3)), (xf * xf).sum(dim=(0, 2, 3)), count]))
        n = stats[-1]
        mean = stats[:c] / n
        var = (stats[c : 2 * c] / n - mean * mean).clamp_min(0)
        with torch.no_grad():
            self.num_batches_tracked += 1
            self.running_mean.mul_(1 - self.momentum).add_(self.momentum * mean.detach())
            self.running_var.mul_(1 - self.momentum).add_(self.momentum * var.detach() * n / (n - 1))
        scale = torch.rsqrt(var + self.eps) * self.weight
        y = (xf - mean[None, :, None, None]) * scale[None, :, None, None] + self.bias[None, :, None, None]
        return y.to(x.dtype)


def sync_batchnorm(model: nn.Module, device: torch.device) -> nn.Module:
    """Replace every BatchNorm2d by a cross-rank one (``nn.SyncBatchNorm`` on CUDA); in place."""
    if device.type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(model)
    for name, child in model.named_children():
        if type(child) is nn.BatchNorm2d:
            new = CrossRankBatchNorm2d(
                child.num_features, child.eps, child.momentum, child.affine, child.track_running_stats
            )
            new.load_state_dict(child.state_dict())
            new.to(device=child.running_mean.device, dtype=child.running_mean.dtype)
            setattr(model, name, new)
        else:
            sync_batchnorm(child, device)
    return model
