"""The two kernels PyTorch can take for a demo variant's 1×1 convolutions on one CPU thread (issue 20).

With one thread and a batch under 16, PyTorch sends every 1×1 convolution to its own
``_slow_conv2d`` (im2col + GEMM; on channels-last tensors with layout copies) instead of oneDNN;
the heuristic dates from NCHW days. A 1×1 kernel computes the same with any dilation, and a dilated
convolution always goes to oneDNN, so timing ``dilation=1`` against ``dilation=2`` on the same
tensors compares the two paths. For every 1×1 convolution of ``--variant`` at its real input shape
(demo batch, one forward with hooks), this times forward + backward both ways (CPU time, best of 3
rounds), checks whether the two give bit-identical outputs and gradients, and sums the step's
total for each path and for the best path per shape.

    .venv/bin/python bench/conv1x1_paths.py [--variant hg2x1]

Prints a line per shape and the totals, and appends one row per variant to
bench/results/conv1x1_paths.csv (CPU model, flags, load average).
"""

from __future__ import annotations

import argparse
import os
import time
from collections import Counter
from pathlib import Path

import torch
import torch.nn.functional as F

from hgbench.bench import append_csv
from hgbench.config import load_params
from hgbench.machine import cpu_model, simd_flags
from hgbench.model import StackedHourglass, model_config

ROOT = Path(__file__).resolve().parents[1]


def pointwise_shapes(net: torch.nn.Module, batch: int, res: int) -> Counter:
    """(input shape [B, C, H, W], output channels) → how many 1×1 convolutions run at it."""
    shapes: Counter = Counter()

    def hook(module, inputs, _output):
        if module.kernel_size == (1, 1):
            shapes[(tuple(inputs[0].shape), module.out_channels)] += 1

    handles = [m.register_forward_hook(hook) for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    with torch.no_grad():
        net(torch.zeros(batch, 3, res, res))
    for h in handles:
        h.remove()
    return shapes


def forward_backward_us(dilation: int, x, w, b, grad, n: int) -> float:
    """CPU µs of one forward + backward, best of 3 rounds of ``n``."""
    best = float("inf")
    for _ in range(3):
        t0 = time.process_time()
        for _ in range(n):
            F.conv2d(x, w, b, dilation=dilation).backward(grad)
        best = min(best, (time.process_time() - t0) / n * 1e6)
    return best


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--params", default=str(ROOT / "params/demo.yaml"))
    ap.add_argument("--variant", default="hg2x1")
    ap.add_argument("--out", default=str(ROOT / "bench/results/conv1x1_paths.csv"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    params = load_params(Path(args.params))
    ds = next(iter(params.datasets.values()))
    net = StackedHourglass(model_config(params.variants[args.variant], 16))
    totals = {"thnn": 0.0, "onednn": 0.0, "best": 0.0}
    identical = 0
    shapes = pointwise_shapes(net, params.train.batch_size, ds.input_res)
    for (shape, out_ch), count in sorted(shapes.items()):
        g = torch.Generator().manual_seed(0)
        cl = torch.channels_last
        x = torch.randn(shape, generator=g).to(memory_format=cl).requires_grad_()
        w = torch.randn(out_ch, shape[1], 1, 1, generator=g).to(memory_format=cl).requires_grad_()
        b = torch.randn(out_ch, generator=g).requires_grad_()
        grad = torch.randn(shape[0], out_ch, *shape[2:], generator=g).to(memory_format=cl)
        results = []
        for dilation in (1, 2):
            x.grad = w.grad = b.grad = None
            y = F.conv2d(x, w, b, dilation=dilation)
            y.backward(grad)
            results.append([y.detach(), x.grad.clone(), w.grad.clone(), b.grad.clone()])
        same = all(torch.equal(p, q) for p, q in zip(*results))
        identical += count * same
        n = max(20, int(2e5 / (shape[1] * shape[2] * shape[3])))
        thnn, onednn = (forward_backward_us(d, x, w, b, grad, n) for d in (1, 2))
        totals["thnn"] += count * thnn
        totals["onednn"] += count * onednn
        totals["best"] += count * min(thnn, onednn)
        print(
            f"{count:2d} × {list(shape)} → {out_ch}: _slow_conv2d {thnn:6.0f} µs, oneDNN {onednn:6.0f} µs"
            f"{'' if same else '  (not bit-identical)'}"
        )
    n_convs = sum(shapes.values())
    print(
        f"{args.variant}: {n_convs} 1×1 convolutions per step, forward + backward: _slow_conv2d "
        f"{totals['thnn'] / 1e3:.2f} ms, oneDNN {totals['onednn'] / 1e3:.2f} ms, best path per shape "
        f"{totals['best'] / 1e3:.2f} ms; bit-identical on {identical} of {n_convs}"
    )
    row = {
        "date": time.strftime("%Y-%m-%d"),
        "cpu": cpu_model(),
        "flags": simd_flags(),
        "torch": torch.__version__,
        "threads": 1,
        "variant": args.variant,
        "batch": params.train.batch_size,
        "input_res": ds.input_res,
        "pointwise_convs": n_convs,
        "thnn_ms": round(totals["thnn"] / 1e3, 2),
        "onednn_ms": round(totals["onednn"] / 1e3, 2),
        "best_per_shape_ms": round(totals["best"] / 1e3, 2),
        "bit_identical_convs": identical,
        "loadavg_1min": round(os.getloadavg()[0], 2),
    }
    print(f"appended to {append_csv(Path(args.out), [row])}")


if __name__ == "__main__":
    main()
