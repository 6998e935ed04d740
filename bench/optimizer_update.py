"""Before/after of the optimizer update (issue 20) on the demo variants, one thread.

Alternates three implementations of the same RMSprop update on the same random crops, so that all
see the same machine load, and checks that they end with the same weights:

- ``loop``: the per-parameter Python loop (PyTorch's CPU default; hgbench before issue 20),
- ``foreach``: ``foreach=True``, one call per tensor operation but still one kernel per parameter
  on a CPU (stop 22),
- ``flat``: :class:`hgbench.recipe.FlatRMSprop`, parameters, gradients and state in one flat
  buffer each (what a one-process CPU run takes since issue 20).

    .venv/bin/python bench/optimizer_update.py [--rounds 3] [--steps 40]

Time is the CPU time of this process (``time.process_time``) over the timed steps (the step:
augmentation, forward, loss, backward and update), so a figure holds with other work on the other
core; the load average is recorded beside it. Prints one line per variant and mode, and appends a
CSV row each to bench/results/optimizer_update.csv (CPU model, flags, load average).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import torch

from hgbench.bench import append_csv
from hgbench.config import load_params
from hgbench.data.dataset import step_generator
from hgbench.machine import cpu_model, simd_flags
from hgbench.recipe import build_recipe

ROOT = Path(__file__).resolve().parents[1]
CPU = torch.device("cpu")
MODES = ("loop", "foreach", "flat")


def run(variant, cfg, ds, mode: str, steps: int) -> tuple[float, dict, float]:
    """(images per CPU second over ``steps`` timed steps after 3 untimed ones, the weights then,
    CPU ms of the update alone) of the recipe ``hgbench train`` builds, with the ``mode`` update."""
    recipe = build_recipe(ds, variant, cfg, 16, 0, CPU, flat=mode == "flat")
    if mode != "flat":
        opt = recipe.optimizer
        recipe.optimizer = type(opt)(recipe.net.parameters(), **{**opt.defaults, "foreach": mode == "foreach"})
    g = torch.Generator().manual_seed(0)
    c = ds.crop_size
    crops = torch.randint(0, 255, (cfg.batch_size, c, c, 3), dtype=torch.uint8, generator=g)
    joints = torch.rand(cfg.batch_size, 16, 2, generator=g) * c
    missing = torch.zeros(cfg.batch_size, 16, dtype=torch.bool)

    def step(i):
        recipe.step(*recipe.batch(crops, joints, missing, step_generator(0, i), torch.arange(16)))

    for i in range(3):
        step(i)
    t0 = time.process_time()
    for i in range(3, 3 + steps):
        step(i)
    rate = cfg.batch_size * steps / (time.process_time() - t0)
    weights = {k: v.clone() for k, v in recipe.net.state_dict().items()}
    t0 = time.process_time()
    for _ in range(50):  # the update alone, on the last gradients
        recipe.optimizer.step()
    return rate, weights, (time.process_time() - t0) / 50 * 1e3


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--variants", nargs="+", default=["hg1x2", "hg2x1"])
    args = ap.parse_args()
    torch.set_num_threads(1)
    params = load_params(ROOT / "params/demo.yaml")
    ds = params.datasets["synthetic"]
    records = []
    for name in args.variants:
        rates: dict[str, list[float]] = {m: [] for m in MODES}
        updates: dict[str, list[float]] = {m: [] for m in MODES}
        weights = {}
        for _ in range(args.rounds):
            for mode in MODES:  # alternated, so that every mode sees the same machine load
                r, w, u = run(params.variants[name], params.train, ds, mode, args.steps)
                rates[mode].append(r)
                updates[mode].append(u)
                weights[mode] = w
        med = {m: sorted(v)[len(v) // 2] for m, v in rates.items()}
        upd = {m: sorted(v)[len(v) // 2] for m, v in updates.items()}
        for mode in MODES:
            same = all(torch.equal(weights[mode][k], weights["loop"][k]) for k in weights["loop"])
            gain = med[mode] / med["loop"]
            print(
                f"{name} {mode}: {med[mode]:.1f} img/CPU-s (×{gain:.2f} of loop), update alone "
                f"{upd[mode]:.2f} ms, same weights as loop: {same}"
            )
            records.append(
                {
                    "date": time.strftime("%Y-%m-%d"),
                    "variant": name,
                    "mode": mode,
                    "img_per_cpu_s_median": f"{med[mode]:.1f}",
                    "vs_loop": f"{gain:.3f}",
                    "update_ms": f"{upd[mode]:.2f}",
                    "rounds": args.rounds,
                    "steps": args.steps,
                    "batch": params.train.batch_size,
                    "threads": 1,
                    "same_weights_as_loop": same,
                    "cpu": f"{cpu_model()} [{simd_flags()}]",
                    "loadavg_1min": f"{os.getloadavg()[0]:.2f}",
                    "torch": torch.__version__,
                }
            )
    print(f"appended to {append_csv(ROOT / 'bench/results/optimizer_update.csv', records)}")


if __name__ == "__main__":
    main()
