"""Where a demo-sized training step spends its time (issue 20): a fixed cost per step and a cost
per image, at the input sizes a small demo can use.

Times the real step (``Recipe.batch`` + ``Recipe.step`` of :func:`hgbench.recipe.build_recipe`:
augmentation, forward, loss, backward, the RMSprop update ``hgbench train`` takes, or ``--update``) of one variant on one thread, at two batch sizes per input size, and fits
``step = fixed + per_image × batch``. CPU time of this process (``time.process_time``), so the
figures hold while other work runs on the other core; the load average is recorded beside them.

    .venv/bin/python bench/step_cost.py [--variant hg2x1] [--res 96 64] [--batches 2 8] [--steps 30]

Prints one line per (input size, batch) and the fit, and appends a CSV row per input size to
bench/results/step_cost.csv (with the CPU model, its flags and the load average).

What the kernels of a CPU without AVX-512 cost, on this one (the ISA is recorded in the row):

    ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2 \
        .venv/bin/python bench/step_cost.py --res 96
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import time
from pathlib import Path

import torch

from hgbench.bench import append_csv
from hgbench.config import load_params
from hgbench.data.dataset import step_generator
from hgbench.machine import cpu_model, simd_flags
from hgbench.model import StackedHourglass, count_macs, model_config
from hgbench.recipe import build_recipe, flat_update

ROOT = Path(__file__).resolve().parents[1]
CPU = torch.device("cpu")
# The environment variables that cap the instruction set of PyTorch's own kernels, oneDNN's and
# MKL's: with all three at AVX2 a Zen 4 runs the kernels a Zen 2 runs (docs/training.md).
ISA_LIMITS = ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "MKL_ENABLE_INSTRUCTIONS")


def step_ms(params, variant_name: str, res: int, batch: int, steps: int, update: str) -> float:
    """Median CPU milliseconds of one training step (:meth:`Recipe.batch` + :meth:`Recipe.step`
    of the recipe ``hgbench train`` builds) over 3 rounds of ``steps`` steps."""
    ds = next(iter(params.datasets.values()))
    ds = dataclasses.replace(ds, input_res=res, output_res=res // 4)
    cfg = dataclasses.replace(params.train, batch_size=batch)
    recipe = build_recipe(ds, params.variants[variant_name], cfg, 16, 0, CPU, flat=update == "flat")
    g = torch.Generator().manual_seed(0)
    c = ds.crop_size
    crops = torch.randint(0, 255, (batch, c, c, 3), dtype=torch.uint8, generator=g)
    joints = torch.rand(batch, 16, 2, generator=g) * c
    missing = torch.zeros(batch, 16, dtype=torch.bool)

    def step(i: int) -> None:
        recipe.step(*recipe.batch(crops, joints, missing, step_generator(0, i), torch.arange(16)))

    for i in range(3):
        step(i)
    rounds = []
    for r in range(3):
        c0 = time.process_time()
        for i in range(3 + r * steps, 3 + (r + 1) * steps):
            step(i)
        rounds.append((time.process_time() - c0) / steps * 1e3)
    return sorted(rounds)[1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--params", default=str(ROOT / "params/demo.yaml"))
    ap.add_argument("--variant", default="hg2x1")
    ap.add_argument("--res", type=int, nargs="+", default=[96, 64])
    ap.add_argument("--batches", type=int, nargs=2, default=[2, 8])
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument(
        "--update",
        choices=["flat", "foreach"],
        default=None,
        help="the optimizer update (default: the one `hgbench train` takes on this CPU)",
    )
    ap.add_argument("--out", default=str(ROOT / "bench/results/step_cost.csv"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    params = load_params(Path(args.params))
    cpu, flags = cpu_model(), simd_flags()
    update = args.update or ("flat" if flat_update(params.train, CPU) else "foreach")
    b1, b2 = args.batches
    rows = []
    for res in args.res:
        t1 = step_ms(params, args.variant, res, b1, args.steps, update)
        t2 = step_ms(params, args.variant, res, b2, args.steps, update)
        per_image = (t2 - t1) / (b2 - b1)
        fixed = t1 - per_image * b1
        with torch.device("meta"):
            macs = count_macs(StackedHourglass(model_config(params.variants[args.variant], 16)), res)
        row = {
            "date": time.strftime("%Y-%m-%d"),
            "cpu": cpu,
            "flags": flags,
            "torch": torch.__version__,
            "threads": 1,
            # What a Zen 2 lacks can be switched off here: the kernels' ISA as run, and the limits set.
            "isa": torch.backends.cpu.get_cpu_capability(),
            "isa_limits": " ".join(f"{k}={os.environ[k]}" for k in ISA_LIMITS if os.environ.get(k)),
            "update": update,
            "variant": args.variant,
            "input_res": res,
            f"step_ms_b{b1}": round(t1, 2),
            f"step_ms_b{b2}": round(t2, 2),
            "fixed_ms_per_step": round(fixed, 2),
            "ms_per_image": round(per_image, 3),
            f"img_per_s_b{b2}": round(b2 / t2 * 1e3, 1),
            "train_gflop_per_image": round(6 * macs / 1e9, 3),
            "loadavg_1min": round(os.getloadavg()[0], 2),
        }
        rows.append(row)
        print(
            f"{args.variant} {res}px, {update} update: step {t1:.1f} ms at batch {b1}, {t2:.1f} ms at batch {b2} → "
            f"{fixed:.1f} ms fixed + {per_image:.2f} ms per image ({row[f'img_per_s_b{b2}']} img/s at batch {b2})"
        )
    print(f"appended to {append_csv(Path(args.out), rows)}")


if __name__ == "__main__":
    main()
