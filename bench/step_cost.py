"""Where a demo-sized training step spends its time (issue 20): a fixed cost per step and a cost
per image, at the input sizes a small demo can use.

Times the real step (``hgbench.recipe.make_batch`` + ``train_step``: augmentation, forward, loss,
backward, the RMSprop update ``hgbench train`` takes, or ``--update``) of one variant on one thread, at two batch sizes per input size, and fits
``step = fixed + per_image × batch``. CPU time of this process (``time.process_time``), so the
figures hold while other work runs on the other core; the load average is recorded beside them.

    .venv/bin/python bench/step_cost.py [--variant hg2x1] [--res 96 64] [--batches 2 8] [--steps 30]

Prints one line per (input size, batch) and the fit, and appends a CSV row per input size to
bench/results/step_cost.csv (with the CPU model, its flags and the load average).
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import os
import time
from pathlib import Path

import torch

from hgbench.config import load_params
from hgbench.data.dataset import Augmentation, step_generator
from hgbench.model import StackedHourglass, count_macs, model_config
from hgbench.recipe import flat_update, make_batch, make_model, make_optimizer, supervised_outputs, train_step

ROOT = Path(__file__).resolve().parents[1]


def cpu_model() -> tuple[str, str]:
    """(model name, the SIMD flags that matter here) from /proc/cpuinfo."""
    name, flags = "unknown", set()
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name") and name == "unknown":
            name = line.split(":", 1)[1].strip()
        if line.startswith("flags"):
            flags = set(line.split(":", 1)[1].split())
    info = []
    for key in ("cpu family", "model"):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.split(":")[0].strip() == key:
                info.append(f"{key.split()[-1]} {line.split(':', 1)[1].strip()}")
                break
    wanted = [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16") if f in flags]
    return f"{name} ({', '.join(info)})", " ".join(wanted)


def step_ms(params, variant_name: str, res: int, batch: int, steps: int, update: str) -> float:
    """Median CPU milliseconds of one training step over 3 rounds of ``steps`` steps."""
    variant = params.variants[variant_name]
    ds = next(iter(params.datasets.values()))
    ds = dataclasses.replace(ds, input_res=res, output_res=res // 4)
    cfg = dataclasses.replace(params.train, batch_size=batch)
    torch.manual_seed(0)
    net = make_model(variant, 16, torch.device("cpu"))
    opt = make_optimizer(cfg, net, flat=update == "flat")
    g = torch.Generator().manual_seed(0)
    c = ds.crop_size
    crops = torch.randint(0, 255, (batch, c, c, 3), dtype=torch.uint8, generator=g)
    joints = torch.rand(batch, 16, 2, generator=g) * c
    missing = torch.zeros(batch, 16, dtype=torch.bool)
    aug = Augmentation(rotation=cfg.rotation, scale=cfg.scale, flip=cfg.flip, color_jitter=cfg.color_jitter)
    sup = supervised_outputs(variant, net.config)

    def step(i: int) -> None:
        images, targets = make_batch(
            crops,
            joints,
            missing,
            aug=aug,
            generator=step_generator(0, i),
            flip_perm=torch.arange(16),
            input_res=res,
            output_res=res // 4,
            sigma=cfg.sigma,
            device=torch.device("cpu"),
        )
        train_step(net, opt, images, targets, sup, cfg.precision)

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
    cpu, flags = cpu_model()
    update = args.update or ("flat" if flat_update(params.train, torch.device("cpu")) else "foreach")
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
    out = Path(args.out)
    new = not out.exists()
    with out.open("a", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        if new:
            w.writeheader()
        w.writerows(rows)
    print(f"appended to {out}")


if __name__ == "__main__":
    main()
