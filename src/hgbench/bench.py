"""Benchmarks of training speed: the real training step, and the data path from a prepared HDF5.

    hgbench bench train --params params/paper.yaml --variant hg8 --batch 4 --steps 6 --threads 2 \\
        --precision bf16 --json
    hgbench bench data --data data/processed/mpii/train.h5 --batch 16 --batches 20 --threads 1 --json

``bench train`` times :meth:`hgbench.recipe.Recipe.batch` + :meth:`hgbench.recipe.Recipe.step` of
the recipe ``hgbench train`` builds (:func:`hgbench.recipe.build_recipe`) on random crops at the profile's resolution, after a
few warm-up steps. ``bench data`` times reading batches of rows from the file (shuffled order, no
in-memory copy, what the loader workers do) and, separately, the augmentation + target generation
that runs on the training device. Each prints one JSON object as its last line and appends a row
to a CSV under ``bench/results/`` whose name states the conditions, e.g.
``bench/results/train_cpu_bf16_b4_t2.csv``.

Units: ``img_per_s`` images per second of the whole step; ``flops_per_img`` = 3 × 2 × conv MACs
(forward 2·MACs, backward ≈ 2 × forward); ``fraction_of_peak`` = achieved FLOP/s ÷ the device's
peak in that dtype: for CUDA the vendor's dense figure of known GPUs, for CPU a measured large
matrix multiply with the same threads and dtype (``peak_source`` says which);
``peak_rss_mib`` the measured peak resident memory up to the last timed step, MiB, and
``estimated_peak_mib`` the estimate of it that ``hgbench train`` checks before its first step
(:mod:`hgbench.memory`; on CUDA the host's part, with ``estimated_gpu_mib`` next to ``peak_gpu_mib``).
"""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import resource
import statistics
import sys
import time
from pathlib import Path

import h5py
import torch

from .config import Params
from .data.dataset import Augmentation, CropDataset, epoch_batches, step_generator
from .inference import resolve_device
from .iofiles import atomic_path
from .joints import joints_of
from .machine import device_name, simd_flags
from .memory import training_estimate
from .model import count_macs
from .precision import bench_precision
from .recipe import build_recipe, compile_mode, make_batch

RESULTS_DIR = Path("bench/results")

# Dense peak TFLOP/s by (GPU name fragment, dtype), vendor data sheets (SXM parts; PCIe parts are
# lower). Unknown GPUs report no fraction rather than a guess.
GPU_PEAK_TFLOPS = {
    ("H200", "bf16"): 989.0,
    ("H200", "fp32"): 67.0,
    ("H100", "bf16"): 989.0,
    ("H100", "fp32"): 67.0,
    ("A100", "bf16"): 312.0,
    ("A100", "fp32"): 19.5,
    ("L40S", "bf16"): 362.0,
    ("L40S", "fp32"): 91.6,
    ("4090", "bf16"): 165.0,
    ("4090", "fp32"): 82.6,
}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far, MiB.

    ``VmHWM`` of /proc/self/status (KiB): the high-water mark of this program's own memory.
    ``ru_maxrss`` is only the fallback, because Linux carries it over ``exec`` from the process
    that forked this one: a bench started by a 600 MiB test runner reported 639 MiB for a
    350 MiB run."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def device_peak_gflops(device: torch.device, precision: str, threads: int) -> tuple[float | None, str]:
    """(peak GFLOP/s, where it comes from) of ``device`` in ``precision``."""
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        for (fragment, dtype), tflops in GPU_PEAK_TFLOPS.items():
            if fragment in name and dtype == precision:
                return tflops * 1e3, f"data sheet, {name}"
        return None, f"unknown GPU {name}"
    # CPU: no reliable data sheet figure (clock and AVX-512 frequency vary), so measure a large
    # matrix multiply, the best case the convolution kernels can approach.
    torch.set_num_threads(threads)
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    # A CPU without native bf16 (no AVX512-bf16/AMX, e.g. AMD Zen 3) runs bf16 matmuls through a
    # scalar fallback at well under 1 GFLOP/s, where a 2048² product takes a minute. So size the
    # product from a small probe: about 0.1 s per product, at most 2048².
    probe = 128
    a, b = torch.randn(probe, probe, dtype=dtype), torch.randn(probe, probe, dtype=dtype)
    a @ b
    t0 = time.perf_counter()
    a @ b
    probe_gflops = 2 * probe**3 / max(time.perf_counter() - t0, 1e-9) / 1e9
    n = int(min(2048, max(probe, (0.1 * probe_gflops * 1e9 / 2) ** (1 / 3))) // 64 * 64) or probe
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    a @ b
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best / 1e9, f"measured {n}x{n} matmul, {threads} threads"


def _variant_dataset(params: Params, variant: str):
    """The dataset the variant is trained on in this profile (its first experiment's)."""
    for e in params.experiments:
        if e.variant == variant:
            return params.datasets[e.dataset]
    return next(iter(params.datasets.values()))


def bench_train(
    params: Params,
    variant: str,
    *,
    batch: int,
    steps: int,
    threads: int,
    device: str = "auto",
    precision: str | None = None,
    compile: bool | str | None = None,
    warmup: int = 2,
    seed: int = 0,
) -> dict:
    """Time ``steps`` real training steps of ``variant`` on random crops; returns the result record."""
    if variant not in params.variants:
        raise ValueError(
            f"variant {variant!r} is not in profile {params.profile!r}; allowed values: "
            + ", ".join(sorted(params.variants))
        )
    if steps < 1 or batch < 1:
        raise ValueError("--steps and --batch must be at least 1")
    cfg = params.train
    precision = precision or cfg.precision
    compile = cfg.compile if compile is None else compile
    dev = resolve_device(device)
    requested = precision
    precision = bench_precision(precision, dev, log=lambda m: print(m, file=sys.stderr))
    torch.set_num_threads(threads)
    v, ds = params.variants[variant], _variant_dataset(params, variant)
    joints = len(joints_of(ds.layout))
    # The recipe `hgbench train` builds (model, optimizer and its update path, augmentation, the
    # step), with this benchmark's batch, precision and compile setting.
    cfg = dataclasses.replace(cfg, batch_size=batch, precision=precision, compile=compile)
    recipe = build_recipe(ds, v, cfg, joints, seed, dev)
    recipe.wrap(world=1)
    flip_perm = torch.arange(joints)

    # Random stored crops and joints inside the central input window, 5 % missing.
    g = torch.Generator().manual_seed(seed)
    c = ds.crop_size
    crops = torch.randint(0, 256, (batch, c, c, 3), dtype=torch.uint8, generator=g)
    lo, hi = (c - ds.input_res) / 2, (c + ds.input_res) / 2
    joint_px = lo + (hi - lo) * torch.rand(batch, joints, 2, generator=g)
    missing = torch.rand(batch, joints, generator=g) < 0.05
    if dev.type == "cuda":
        crops = crops.pin_memory()
        torch.cuda.reset_peak_memory_stats(dev)

    data_s, step_s = [], []
    for it in range(warmup + steps):
        _sync(dev)
        t0 = time.perf_counter()
        images, targets = recipe.batch(crops, joint_px, missing, step_generator(seed, it), flip_perm)
        _sync(dev)
        t1 = time.perf_counter()
        recipe.step(images, targets)
        _sync(dev)
        t2 = time.perf_counter()
        if it >= warmup:
            data_s.append(t1 - t0)
            step_s.append(t2 - t1)

    # Read before the peak-FLOP/s probe below: its 2048² matrices (48 MiB in fp32) would otherwise
    # be the peak of a small variant's run.
    rss_mib = peak_rss_mib()
    total = sum(data_s) + sum(step_s)
    img_per_s = batch * steps / total
    recipe.raise_if_nonfinite()
    flops = 6 * count_macs(recipe.net, ds.input_res)
    peak, peak_source = device_peak_gflops(dev, precision, threads)
    achieved = flops * img_per_s / 1e9
    record = {
        "bench": "train",
        "profile": params.profile,
        "variant": variant,
        "input_res": ds.input_res,
        "device": dev.type,
        "device_name": device_name(dev),
        "cpu_flags": simd_flags(),
        "precision": precision,
        "precision_requested": requested,
        "compile": bool(compile),
        "compile_mode": (compile_mode(compile) or "default") if compile else None,
        "batch": batch,
        "threads": threads,
        "steps": steps,
        "img_per_s": round(img_per_s, 4),
        "step_ms_median": round(1e3 * statistics.median(step_s), 2),
        "augment_ms_per_img": round(1e3 * sum(data_s) / (batch * steps), 3),
        "flops_per_img": flops,
        "achieved_gflops": round(achieved, 1),
        "peak_gflops": round(peak, 1) if peak else None,
        "peak_source": peak_source,
        "fraction_of_peak": round(achieved / peak, 4) if peak else None,
        "torch": torch.__version__,
        "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
        # Other processes on the machine make CPU figures noisy; the load average records it.
        "loadavg_1min": round(os.getloadavg()[0], 2),
        "cpu_count": os.cpu_count(),
    }
    # The estimate `hgbench train` checks before its first step, for the same step (random crops:
    # no split held in memory), next to what was measured.
    estimate = training_estimate(ds, v, dataclasses.replace(cfg, precision=precision), joints=joints, batch=batch)
    if dev.type == "cuda":
        record["peak_gpu_mib"] = round(torch.cuda.max_memory_allocated(dev) / 2**20, 1)
        record["estimated_gpu_mib"] = round(estimate.device_bytes / 2**20, 1)
    record["peak_rss_mib"] = round(rss_mib, 1)
    host = estimate.host_bytes_with_gpu if dev.type == "cuda" else estimate.total
    record["estimated_peak_mib"] = round(host / 2**20, 1)
    return record


def bench_data(
    data_file: Path,
    *,
    batch: int,
    batches: int,
    threads: int,
    workers: int = 0,
    device: str = "cpu",
    input_res: int | None = None,
    output_res: int | None = None,
    seed: int = 0,
) -> dict:
    """ms per training sample of the data path from a prepared HDF5 file.

    ``read_ms_per_sample``: rows read from the file in shuffled batches (the loader's work, no
    in-memory copy), per sample, wall time ÷ max(1, workers) processes, i.e. per core.
    ``augment_ms_per_sample``: :func:`hgbench.recipe.make_batch` (warp, colour jitter, targets)
    on ``device`` with ``threads`` threads (on a GPU this runs on the GPU).
    """
    from .data.dataset import iterate_batches

    torch.set_num_threads(threads)
    dev = resolve_device(device)
    data = CropDataset(data_file, in_memory=False)
    with h5py.File(data_file, "r") as h5:
        input_res = input_res or int(h5.attrs["input_res"])
    output_res = output_res or input_res // 4
    order = [
        b for e in range(1 + batches * batch // max(len(data), 1)) for b in epoch_batches(len(data), batch, seed, e)
    ]
    order = order[:batches]
    read_s, aug_s, n = 0.0, 0.0, 0
    t_read = time.perf_counter()
    for it, (crops, joints, missing) in enumerate(iterate_batches(data, order, workers)):
        t0 = time.perf_counter()
        read_s += t0 - t_read
        make_batch(
            crops,
            joints,
            missing,
            aug=Augmentation(30, 0.25, True, 0.2),
            generator=step_generator(seed, it),
            flip_perm=torch.as_tensor(data.flip_permutation),
            input_res=input_res,
            output_res=output_res,
            sigma=1.0,
            device=dev,
        )
        _sync(dev)
        n += crops.shape[0]
        t_read = time.perf_counter()
        aug_s += t_read - t0
    cores = max(1, workers)
    return {
        "bench": "data",
        "file": str(data_file),
        "rows": len(data),
        "crop_size": data.crop_size,
        "input_res": input_res,
        "batch": batch,
        "samples": n,
        "workers": workers,
        "threads": threads,
        "device": dev.type,
        "device_name": device_name(dev),
        "cpu_flags": simd_flags(),
        "read_ms_per_sample": round(1e3 * read_s * cores / n, 4),
        "augment_ms_per_sample": round(1e3 * aug_s * threads / n, 4),
        "read_mb_per_s": round(n * 3 * data.crop_size**2 / read_s / 1e6, 1),
        "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "loadavg_1min": round(os.getloadavg()[0], 2),
    }


def results_file(record: dict, root: Path = RESULTS_DIR) -> Path:
    """``bench/results/<bench>_<device>_<dtype>_b<batch>_t<threads>.csv`` for a record."""
    if record["bench"] == "train":
        compiled = "_compiled" if record["compile"] else ""
        name = f"train_{record['device']}_{record['precision']}{compiled}_b{record['batch']}_t{record['threads']}.csv"
    else:
        name = f"data_{record['device']}_b{record['batch']}_w{record['workers']}_t{record['threads']}.csv"
    return root / name


def append_csv(path: Path, records: list[dict]) -> Path:
    """Append ``records`` as rows of the CSV at ``path`` (written atomically; a new column widens
    the header, and older rows get an empty cell there)."""
    rows = []
    if path.exists():
        with open(path, newline="") as fh:
            rows = list(csv.DictReader(fh))
    rows += [{k: ("" if v is None else v) for k, v in r.items()} for r in records]
    fields = list(dict.fromkeys(k for r in rows for k in r))
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields, restval="")
        writer.writeheader()
        writer.writerows(rows)
    return path


def append_result(record: dict, root: Path = RESULTS_DIR) -> Path:
    """Append ``record`` as a row of its CSV (:func:`results_file`, :func:`append_csv`)."""
    return append_csv(results_file(record, root), [record])


def summary_line(record: dict) -> str:
    """One human-readable line of a record."""
    if record["bench"] == "train":
        frac = record["fraction_of_peak"]
        mem = f"peak GPU {record['peak_gpu_mib']:.0f} MiB, " if "peak_gpu_mib" in record else ""
        return (
            f"{record['variant']} {record['input_res']}px {record['device']} {record['precision']} batch "
            f"{record['batch']} threads {record['threads']}: {record['img_per_s']:.3f} img/s, "
            f"{record['achieved_gflops']:.0f} GFLOP/s"
            + (f" = {100 * frac:.0f}% of peak" if frac else "")
            + f", {mem}peak RSS {record['peak_rss_mib']:.0f} MiB"
            + (f" (estimate {record['estimated_peak_mib']:.0f} MiB)" if "estimated_peak_mib" in record else "")
        )
    return (
        f"{record['file']}: read {record['read_ms_per_sample']:.3f} ms/sample/core "
        f"({record['read_mb_per_s']:.0f} MB/s), augment {record['augment_ms_per_sample']:.3f} ms/sample "
        f"on {record['device']}"
    )


def dumps(record: dict) -> str:
    return json.dumps(record, sort_keys=False)
