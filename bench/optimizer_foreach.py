"""Before/after of the multi-tensor optimizer step (issue 20) on the demo variants, one thread.

Alternates the two optimizer modes (the per-parameter loop PyTorch uses on CPU by default, and
``foreach=True``, which ``hgbench.recipe.make_optimizer`` now uses) on the same random crops, so
that both see the same machine load, and checks that they end with the same weights.

    .venv/bin/python bench/optimizer_foreach.py [--rounds 3] [--steps 40]

Prints one line per variant and mode, and a CSV row each to bench/results/optimizer_foreach.csv
(with the CPU model and load average).
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import time
from pathlib import Path

import torch

from hgbench.config import load_params
from hgbench.data.dataset import Augmentation, step_generator
from hgbench.recipe import make_batch, make_model, make_optimizer, supervised_outputs, train_step

ROOT = Path(__file__).resolve().parents[1]


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def run(variant, cfg, ds, foreach: bool, steps: int) -> tuple[float, dict]:
    torch.manual_seed(0)
    net = make_model(variant, 16, torch.device("cpu"))
    opt = make_optimizer(cfg, net)
    opt = type(opt)(net.parameters(), **{**opt.defaults, "foreach": foreach})
    g = torch.Generator().manual_seed(0)
    c = ds.crop_size
    crops = torch.randint(0, 255, (cfg.batch_size, c, c, 3), dtype=torch.uint8, generator=g)
    joints = torch.rand(cfg.batch_size, 16, 2, generator=g) * c
    missing = torch.zeros(cfg.batch_size, 16, dtype=torch.bool)
    aug = Augmentation(rotation=cfg.rotation, scale=cfg.scale, flip=cfg.flip, color_jitter=cfg.color_jitter)
    sup = supervised_outputs(variant, net.config)

    def step(i):
        images, targets = make_batch(
            crops,
            joints,
            missing,
            aug=aug,
            generator=step_generator(0, i),
            flip_perm=torch.arange(16),
            input_res=ds.input_res,
            output_res=ds.output_res,
            sigma=cfg.sigma,
            device=torch.device("cpu"),
        )
        train_step(net, opt, images, targets, sup, cfg.precision)

    for i in range(3):
        step(i)
    t0 = time.perf_counter()
    for i in range(3, 3 + steps):
        step(i)
    return cfg.batch_size * steps / (time.perf_counter() - t0), net.state_dict()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=40)
    args = ap.parse_args()
    torch.set_num_threads(1)
    params = load_params(ROOT / "params/demo.yaml")
    ds = params.datasets["synthetic"]
    out = ROOT / "bench/results/optimizer_foreach.csv"
    new = not out.exists()
    with out.open("a", newline="") as fh:
        writer = csv.writer(fh)
        if new:
            writer.writerow(
                [
                    "variant",
                    "foreach",
                    "img_per_s_median",
                    "rounds",
                    "steps",
                    "batch",
                    "threads",
                    "same_weights",
                    "cpu",
                    "loadavg_1min",
                    "torch",
                ]
            )
        for name in ("hg1x2", "hg2x1"):
            rates = {True: [], False: []}
            weights = {}
            for _ in range(args.rounds):
                for fe in (False, True):
                    r, w = run(params.variants[name], params.train, ds, fe, args.steps)
                    rates[fe].append(r)
                    weights[fe] = w
            same = all(torch.equal(weights[True][k], weights[False][k]) for k in weights[True])
            for fe in (False, True):
                med = sorted(rates[fe])[len(rates[fe]) // 2]
                print(f"{name} foreach={fe}: {med:.1f} img/s (median of {args.rounds}), same weights: {same}")
                writer.writerow(
                    [
                        name,
                        fe,
                        f"{med:.1f}",
                        args.rounds,
                        args.steps,
                        params.train.batch_size,
                        1,
                        same,
                        cpu_model(),
                        f"{os.getloadavg()[0]:.2f}",
                        torch.__version__,
                    ]
                )


if __name__ == "__main__":
    main()
