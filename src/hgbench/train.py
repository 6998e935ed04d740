"""Training: MSE on Gaussian heatmaps for every supervised output, per-step resumable state.

    hgbench train --params params/demo.yaml --dataset synthetic --variant hg2x2 --seed 0 \
        --data data/processed/synthetic --out models/synthetic/hg2x2/s0

Writes ``model.pt`` (final weights + the config that built them), ``last.pt`` (resumable state,
rewritten atomically every ``train.checkpoint_every`` steps and after every epoch; contents in
``checkpoint.py``) and ``log.csv`` (one row per epoch, columns in docs/training.md). A rerun with
``last.pt`` present resumes at the step it was written after. SIGTERM/SIGINT write ``last.pt``
at the end of the current step and stop with :class:`TrainingInterrupted` (the CLI exits with
:data:`EXIT_INTERRUPTED`, for the scheduler to retry). A non-finite loss stops with
:class:`NonFiniteLoss` before the step is applied, leaving the last good ``last.pt``.
The recipe, speed knobs and multi-GPU use are described in docs/training.md.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import os
import signal
import sys
import time
from contextlib import contextmanager, nullcontext
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from . import distributed
from .checkpoint import load_checkpoint, rng_state, save_checkpoint, save_state, set_rng_state
from .config import SPEED_KEYS, DatasetConfig, TrainConfig, VariantConfig
from .data.dataset import (Augmentation, CropDataset, centre_inputs, epoch_batches, iterate_batches,
                           jitter_colours, sample_transforms, step_generator, warp_batch)
from .describe import model_config
from .heatmaps import cells_to_pixels, decode_heatmaps, heatmap_targets, pixels_to_cells
from .inference import resolve_device  # re-exported: callers import it from here too
from .iofiles import atomic_path, output_lock, remove_stale_temps
from .joints import joints_of, layout_of
from .metrics import training_accuracy, training_metric  # valid_acc: each layout's own metric and joints
from .model import ModelConfig, StackedHourglass
from .precision import check_training_precision

EXIT_INTERRUPTED = 75
"""Exit status of ``hgbench train`` stopped by SIGTERM/SIGINT after saving ``last.pt``
(sysexits' EX_TEMPFAIL: "try again later"); a retry resumes from the saved step."""

TEST_SIGNAL_ENV = "HGBENCH_TEST_SIGNAL_AT_STEP"
"""Test hook: ``"<iteration>:<SIGNAL>"`` makes the process send itself SIGNAL after that step."""


class TrainingInterrupted(Exception):
    """SIGTERM/SIGINT arrived; ``last.pt`` holds the state after the last finished step."""


class NonFiniteLoss(RuntimeError):
    """The loss became NaN or inf; the step was not applied and ``last.pt`` was not rewritten."""


def supervised_outputs(variant: VariantConfig, config: ModelConfig) -> list[int]:
    """Indices along the model's output axis that enter the loss."""
    if variant.supervision == "last":
        return [config.outputs - 1]
    return list(range(config.outputs))


def output_names(config: ModelConfig) -> list[str]:
    """Column suffixes of the outputs: s1..sS, with i1, i2 for HG-Int's inner heads."""
    if config.inner_heads:
        return ["i1", "i2", "s1"]
    return [f"s{k + 1}" for k in range(config.stacks)]


def _set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr


def step_schedule_lr(cfg: TrainConfig, epoch: int) -> float:
    """lr of 0-based ``epoch`` under ``lr_schedule: steps``."""
    return cfg.lr * cfg.lr_drop_factor ** sum(epoch >= e for e in cfg.lr_drop_epochs)


def make_optimizer(cfg: TrainConfig, model: torch.nn.Module) -> torch.optim.Optimizer:
    # foreach: one multi-tensor update instead of a Python loop over ~300 parameters (PyTorch
    # picks it on CUDA only). Bit-identical weights on CPU, 13 % more img/s for the demo's hg2x1
    # (bench/results/README.md).
    if cfg.optimizer == "rmsprop":
        # The Torch original: alpha 0.99, eps 1e-8, no momentum, no weight decay.
        return torch.optim.RMSprop(model.parameters(), lr=cfg.lr, alpha=0.99, eps=1e-8, foreach=True)
    return torch.optim.Adam(model.parameters(), lr=cfg.lr, foreach=True)


def make_scheduler(cfg: TrainConfig, optimizer: torch.optim.Optimizer):
    """The paper's plateau rule: lr × lr_drop_factor when more than ``plateau_patience`` epochs in a
    row bring no higher validation accuracy (None under ``lr_schedule: steps``)."""
    if cfg.lr_schedule != "plateau":
        return None
    return torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, mode="max", factor=cfg.lr_drop_factor, patience=cfg.plateau_patience, threshold=0.0,
        threshold_mode="abs",
    )


def make_model(variant: VariantConfig, joints: int, device: torch.device) -> StackedHourglass:
    """The variant's network on ``device``, channels-last (~40 % faster convolutions on CPU and
    on tensor cores)."""
    return StackedHourglass(model_config(variant, joints)).to(device, memory_format=torch.channels_last)


def autocast(device: torch.device, precision: str):
    """bf16 autocast for ``precision == "bf16"`` (convolutions run in bf16, the loss in fp32)."""
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=precision == "bf16")


def make_batch(crops: torch.Tensor, joints: torch.Tensor, missing: torch.Tensor, *, aug: Augmentation,
               generator: torch.Generator, flip_perm: torch.Tensor, input_res: int, output_res: int,
               sigma: float, device: torch.device, part: slice | None = None,
               global_batch: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Augmented inputs and targets of one step, computed on ``device``.

    crops uint8 [b, C, C, 3], joints [b, J, 2] crop px, missing [b, J]: this rank's rows, which
    are rows ``part`` of a global batch of ``global_batch`` (default: the whole batch). The
    transforms are drawn for the whole global batch from ``generator`` so that every DDP rank
    draws the same ones as a single process would. Returns images float [b, 3, R, R]
    channels-last and targets [b, J, R/4, R/4] (all-zero maps for missing joints).
    """
    part = slice(None) if part is None else part
    drawn = sample_transforms(global_batch or crops.shape[0], aug, generator)
    angle, scale, flip, gains = (t[part] for t in drawn)
    images, joints_px, missing = warp_batch(crops.to(device, non_blocking=True), joints, missing, input_res,
                                            angle, scale, flip, flip_perm)
    if aug.color_jitter:
        images = jitter_colours(images, gains)
    targets = heatmap_targets(pixels_to_cells(joints_px, input_res / output_res), ~missing, output_res, sigma)
    return images.contiguous(memory_format=torch.channels_last), targets


def train_step(model: torch.nn.Module, optimizer: torch.optim.Optimizer, images: torch.Tensor,
               targets: torch.Tensor, supervised: list[int], precision: str, world: int = 1) -> torch.Tensor:
    """One optimisation step; returns the per-output MSE [O] (fp32, detached, mean over ranks).

    images [B, 3, R, R], targets [B, J, H, W]. The loss is the sum of the supervised outputs'
    MSE. It is checked before the backward pass, so a NaN/inf never reaches the weights
    (:class:`NonFiniteLoss`); with DDP the check uses the all-reduced loss so that every rank
    stops together.
    """
    device = images.device
    with autocast(device, precision):
        out = model(images)
    per_output = ((out.float() - targets[:, None]) ** 2).mean(dim=(0, 2, 3, 4))
    loss = per_output[supervised].sum()
    report = per_output.detach().clone()
    if world > 1:
        torch.distributed.all_reduce(report)
        report /= world
    if not torch.isfinite(report).all():
        raise NonFiniteLoss(f"loss became {report[supervised].sum().item()} (per output {report.tolist()})")
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return report


@torch.no_grad()
def validate(model: StackedHourglass, data: CropDataset, input_res: int, output_res: int,
             device: torch.device, batch_size: int, precision: str = "fp32", layout: str | None = None) -> np.ndarray:
    """The layout's training metric (%) for every output, centre crops, no flip. Returns [O].

    ``layout`` (default: the split's own, from its joint names) picks the metric in one place,
    :func:`hgbench.metrics.training_metric`: MPII → PCKh@0.5 on the ablation joints, FLIC →
    PCK@0.2 (torso diagonal) on elbows and wrists.
    """
    layout = layout or layout_of(data.joint_names)
    model.eval()
    stride = input_res / output_res
    offset = (data.crop_size - input_res) / 2
    preds = []
    for start in range(0, len(data), batch_size):
        crops, _, _ = data.batch(np.arange(start, min(start + batch_size, len(data))))
        with autocast(device, precision):
            hm = model(centre_inputs(crops.to(device), input_res).contiguous(memory_format=torch.channels_last))
        uv, _ = decode_heatmaps(hm.float())
        preds.append((cells_to_pixels(uv, stride) + offset).cpu().numpy())
    preds = np.concatenate(preds)  # [N, O, J, 2] crop px
    # Normaliser (head size or torso diagonal, native px) in crop px: the crop→image map is a
    # uniform scale (no rotation in prepare).
    pixel = np.linalg.norm(data.crop_to_image[:, :, 0], axis=1)
    norm = data.normalizer / pixel
    acc = [training_accuracy(preds[:, o].astype(np.float64), data.joints.astype(np.float64), data.missing, norm,
                             layout) for o in range(preds.shape[1])]
    model.train()
    return np.array(acc)


@contextmanager
def _stop_requests():
    """Turn SIGTERM/SIGINT into a flag checked between steps (handlers restored afterwards)."""
    flag = {"signal": None}

    def handler(signum, _frame):
        flag["signal"] = signal.Signals(signum).name

    previous = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield flag
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def _test_signal() -> tuple[int, int] | None:
    spec = os.environ.get(TEST_SIGNAL_ENV)
    if not spec:
        return None
    step, name = spec.split(":")
    return int(step), int(getattr(signal, name))


class Progress:
    """Step progress: a tqdm bar on a terminal, else a plain line about every 10 % of an epoch.

    Shows loss, images/s, the share of time spent waiting for data and the ETA of the run.
    """

    def __init__(self, total_steps: int, done: int, steps_per_epoch: int, enabled: bool, log):
        self.total, self.done, self.log = total_steps, done, log
        self.every = max(1, steps_per_epoch // 10)
        self.bar = None
        self.t0, self.steps0 = time.perf_counter(), done
        if enabled and sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=total_steps, initial=done, unit="step", dynamic_ncols=True)
        self.enabled = enabled

    def update(self, epoch: int, epochs: int, loss: float, img_per_s: float, wait_share: float) -> None:
        self.done += 1
        if not self.enabled:
            return
        rate = (self.done - self.steps0) / max(time.perf_counter() - self.t0, 1e-9)
        eta = (self.total - self.done) / max(rate, 1e-9)
        text = f"loss {loss:.3e}  {img_per_s:.1f} img/s  data wait {100 * wait_share:.0f}%"
        if self.bar is not None:
            self.bar.set_description(f"epoch {epoch + 1}/{epochs}", refresh=False)
            self.bar.set_postfix_str(text, refresh=False)
            self.bar.update(1)
        elif self.done % self.every == 0 or self.done == self.total:
            self.log(f"epoch {epoch + 1}/{epochs}  step {self.done}/{self.total}  {text}  "
                     f"ETA {time.strftime('%H:%M:%S', time.gmtime(eta))}" + (f" +{int(eta // 86400)}d" if eta >= 86400 else ""))

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def run_fingerprint(dataset: DatasetConfig, variant: VariantConfig, cfg: TrainConfig, seed: int,
                    train_file: Path) -> str:
    """sha256 of everything that decides the weights: dataset/variant/train params, seed, data size.

    Stored in ``last.pt``; a checkpoint with another fingerprint is not resumed. The speed knobs
    (:data:`hgbench.config.SPEED_KEYS`) are left out: a retry with other threads, workers, GPUs or
    compilation resumes where the run stopped.
    """
    train_params = {k: v for k, v in asdict(cfg).items() if k not in SPEED_KEYS}
    blob = json.dumps({"dataset": asdict(dataset), "variant": asdict(variant), "train": train_params,
                       "seed": seed, "train_bytes": Path(train_file).stat().st_size},
                      sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def train(
    *, dataset: DatasetConfig, variant: VariantConfig, cfg: TrainConfig, seed: int,
    train_file: Path, valid_file: Path, out_dir: Path, device: str = "auto",
    log=print,
) -> Path:
    """Train one variant with one seed; returns the path of ``model.pt``.

    Inside a torchrun worker (``train.devices`` > 1) this is one rank of a DDP job. The writing
    rank holds ``out_dir``'s lock (:func:`hgbench.iofiles.output_lock`), so a second job with the
    same ``out_dir`` fails at once (:class:`hgbench.iofiles.OutputLockedError`) instead of writing
    the same ``last.pt``.
    """
    ctx, dev = distributed.setup(resolve_device(device))
    try:
        out_dir = Path(out_dir)
        with output_lock(out_dir, "hgbench train") if ctx.is_main else nullcontext():
            if ctx.is_main:  # temporaries of a run killed while writing (the lock says it is dead)
                for name in ("last.pt", "model.pt", "log.csv"):
                    remove_stale_temps(out_dir / name)
            return _train(dataset=dataset, variant=variant, cfg=cfg, seed=seed, train_file=train_file,
                          valid_file=valid_file, out_dir=out_dir, dev=dev, ctx=ctx, log=log)
    finally:
        distributed.teardown(ctx)


def _train(*, dataset, variant, cfg, seed, train_file, valid_file, out_dir, dev, ctx, log) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    if cfg.batch_size < ctx.world:
        raise ValueError(f"train.batch_size {cfg.batch_size} is smaller than train.devices {ctx.world}")
    check_training_precision(cfg.precision, dev)  # no silent scalar-bf16 fallback on CPUs without it
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(seed)
    net = make_model(variant, len(joints_of(dataset.layout)), dev)
    mconf = net.config
    if ctx.world > 1:
        net = distributed.sync_batchnorm(net, dev)
    optimizer = make_optimizer(cfg, net)
    scheduler = make_scheduler(cfg, optimizer)
    supervised = supervised_outputs(variant, mconf)
    names = output_names(mconf)

    train_data = CropDataset(train_file)
    valid_data = CropDataset(valid_file) if ctx.is_main else None
    aug = Augmentation(rotation=cfg.rotation, scale=cfg.scale, flip=cfg.flip, color_jitter=cfg.color_jitter)
    flip_perm = torch.as_tensor(train_data.flip_permutation)
    steps_per_epoch = len(epoch_batches(len(train_data), cfg.batch_size, seed, 0))

    log_path, last_path = out_dir / "log.csv", out_dir / "last.pt"
    epoch, batch_done, iteration, rows, progress_sums = 0, 0, 0, [], None
    fingerprint = run_fingerprint(dataset, variant, cfg, seed, train_file)
    if last_path.exists():
        state = load_checkpoint(last_path, seed=seed, model_config=asdict(mconf), fingerprint=fingerprint)
        if state is None:
            # Params changed since last.pt was written (a DVC experiment, an edited profile): its
            # weights answer another question, so resuming would mix two runs. Start over.
            if ctx.is_main:
                log(f"{last_path} was written under other training settings; starting over")
    else:
        state = None
    if state is not None:
        net.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if scheduler is not None and state["scheduler"] is not None:
            scheduler.load_state_dict(state["scheduler"])
        set_rng_state(state["rng"])
        epoch, batch_done, iteration = state["epoch"], state["batch"], state["iteration"]
        rows, progress_sums = state["log"], state["progress"]
        if ctx.is_main and epoch >= cfg.epochs:
            log(f"{last_path} holds the finished run ({cfg.epochs} epochs); writing model.pt and log.csv from it")
        elif ctx.is_main:
            log(f"resuming {out_dir} at epoch {epoch + 1}, step {batch_done} of {steps_per_epoch} (iteration {iteration})")

    model: torch.nn.Module = net
    if cfg.compile:
        model = torch.compile(model)
    if ctx.world > 1:
        model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[dev.index] if dev.type == "cuda" else None)
    model.train()

    def save(epoch_: int, batch_: int, sums: dict | None) -> None:
        if ctx.is_main:
            save_checkpoint({
                "model": net.state_dict(), "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict() if scheduler is not None else None, "rng": rng_state(),
                "epoch": epoch_, "batch": batch_, "iteration": iteration, "progress": sums, "log": rows,
                "seed": seed, "model_config": asdict(mconf), "fingerprint": fingerprint,
            }, last_path)
        if ctx.world > 1:
            torch.distributed.barrier()  # nobody stops before rank 0 has written the state

    test_signal = _test_signal()
    progress = Progress(cfg.epochs * steps_per_epoch, iteration, steps_per_epoch, ctx.is_main, log)
    with _stop_requests() as stop:
        for epoch in range(epoch, cfg.epochs):
            if scheduler is None:
                _set_lr(optimizer, step_schedule_lr(cfg, epoch))
            lr = optimizer.param_groups[0]["lr"]
            sums = progress_sums or {"losses": [0.0] * mconf.outputs, "seen": 0, "wait": 0.0, "compute": 0.0}
            progress_sums = None
            batches = epoch_batches(len(train_data), cfg.batch_size, seed, epoch)
            parts = [distributed.shard(b, ctx) for b in batches]  # each rank reads only its rows
            local = [b[part] for b, part in zip(batches[batch_done:], parts[batch_done:])]
            t_data = time.perf_counter()
            for k, (crops, joints, missing) in enumerate(iterate_batches(train_data, local, cfg.workers),
                                                         start=batch_done):
                t_step = time.perf_counter()
                sums["wait"] += t_step - t_data
                images, targets = make_batch(
                    crops, joints, missing, aug=aug, generator=step_generator(seed, iteration), flip_perm=flip_perm,
                    input_res=dataset.input_res, output_res=dataset.output_res, sigma=cfg.sigma, device=dev,
                    part=parts[k], global_batch=len(batches[k]))
                try:
                    per_output = train_step(model, optimizer, images, targets, supervised, cfg.precision, ctx.world)
                except NonFiniteLoss as exc:
                    raise NonFiniteLoss(f"{exc} at epoch {epoch + 1}, iteration {iteration + 1}; the last good state "
                                        f"is {last_path} (try a lower lr or train.precision: fp32)") from None
                iteration += 1
                n = len(batches[k])
                sums["losses"] = [a + float(b) * n for a, b in zip(sums["losses"], per_output)]
                sums["seen"] += n
                t_data = time.perf_counter()
                sums["compute"] += t_data - t_step
                elapsed = sums["wait"] + sums["compute"]
                progress.update(epoch, cfg.epochs, float(per_output[supervised].sum()), sums["seen"] / elapsed,
                                sums["wait"] / elapsed)
                if test_signal is not None and iteration == test_signal[0]:
                    os.kill(os.getpid(), test_signal[1])
                stop_now = stop["signal"] is not None
                if ctx.world > 1:  # every rank stops at the same step
                    flag = torch.tensor([float(stop_now)], device=dev)
                    torch.distributed.all_reduce(flag)
                    stop_now = bool(flag.item())
                if k + 1 < len(batches) and (stop_now or (cfg.checkpoint_every and iteration % cfg.checkpoint_every == 0)):
                    save(epoch, k + 1, sums)
                if stop_now and k + 1 < len(batches):
                    progress.close()
                    raise TrainingInterrupted(f"stopped by {stop['signal'] or 'another rank'} at iteration {iteration}; "
                                              f"{last_path} holds the state, rerun to resume")
                t_data = time.perf_counter()
            batch_done = 0
            row = _epoch_row(epoch, iteration, lr, sums, supervised, names, valid_data, net, dataset, cfg, dev, ctx)
            if scheduler is not None:
                scheduler.step(row["valid_acc"])
            rows.append(row)
            if ctx.is_main:
                log(f"epoch {epoch + 1}/{cfg.epochs}  loss {row['train_loss']:.3e}  valid {training_metric(dataset.layout).label} "
                    f"{row['valid_acc']:.1f}%  lr {lr:.3g}  {row['images_per_s']:.1f} img/s  "
                    f"data wait {100 * row['data_wait_share']:.0f}%")
                _write_log(rows, log_path)
            save(epoch + 1, 0, None)
            if stop["signal"] is not None and epoch + 1 < cfg.epochs:
                progress.close()
                raise TrainingInterrupted(f"stopped by {stop['signal']} after epoch {epoch + 1}; "
                                          f"{last_path} holds the state, rerun to resume")
    progress.close()

    model_path = out_dir / "model.pt"
    if ctx.is_main:
        # Also when last.pt already held the finished run (a rerun, a kill after the last step):
        # the loop above did nothing, and every declared output is rewritten from last.pt's rows
        # and weights, byte for byte as the first time.
        _write_log(rows, log_path)
        _save({"model": net.state_dict(), "model_config": asdict(mconf), "variant": variant.name,
               "supervision": variant.supervision, "dataset": dataset.name, "input_res": dataset.input_res,
               "output_res": dataset.output_res, "seed": seed, "epochs": cfg.epochs}, model_path)
    return model_path


def _epoch_row(epoch, iteration, lr, sums, supervised, names, valid_data, net, dataset, cfg, dev, ctx) -> dict:
    """The log row of a finished epoch (validation on rank 0, its result shared with every rank)."""
    t0 = time.perf_counter()
    acc = np.zeros(len(names))
    if ctx.is_main:
        acc = validate(net, valid_data, dataset.input_res, dataset.output_res, dev, cfg.batch_size * 2, cfg.precision)
    if ctx.world > 1:  # the plateau scheduler of every rank needs the same accuracy
        shared = torch.as_tensor(acc, dtype=torch.float64, device=dev)
        torch.distributed.broadcast(shared, 0)
        acc = shared.cpu().numpy()
    valid_s = time.perf_counter() - t0
    losses = np.array(sums["losses"]) / max(sums["seen"], 1)
    wall = sums["wait"] + sums["compute"]
    row = {"epoch": epoch + 1, "iteration": iteration, "lr": lr, "train_loss": float(losses[supervised].sum())}
    row.update({f"train_loss_{n}": float(v) for n, v in zip(names, losses)})
    row["valid_acc"] = float(acc[-1])
    row.update({f"valid_acc_{n}": float(v) for n, v in zip(names, acc)})
    row.update(images_per_s=sums["seen"] / max(wall, 1e-9), data_wait_share=sums["wait"] / max(wall, 1e-9), wall_s=wall,
               data_wait_s=sums["wait"], step_s=sums["compute"] / max(1, round(sums["seen"] / cfg.batch_size)),
               valid_s=valid_s)
    return row


def _save(obj: dict, path: Path) -> None:
    save_state(obj, path)  # atomic, with a content digest checked on load


def _write_log(rows: list[dict], path: Path) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        for r in rows:
            writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) and math.isfinite(v) else v) for k, v in r.items()})
