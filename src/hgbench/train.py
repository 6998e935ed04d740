"""Training: MSE on Gaussian heatmaps for every supervised output, per-step resumable state.

    hgbench train --params params/demo.yaml --dataset synthetic --variant hg2x1 --seed 0 \
        --data data/processed/demo/synthetic --out models/demo/synthetic/hg2x1/s0

Writes ``model.pt`` (final weights + the config that built them), ``last.pt`` (resumable state,
rewritten atomically every ``train.checkpoint_every`` steps and after every epoch; contents in
``checkpoint.py``) and ``log.csv`` (one row per epoch, columns in docs/training.md). A rerun with
``last.pt`` present resumes at the step it was written after. SIGTERM/SIGINT write ``last.pt``
at the end of the current step and stop with :class:`TrainingInterrupted` (the CLI exits with
:data:`hgbench.cli.EXIT_INTERRUPTED`, for the scheduler to retry). A non-finite loss stops with
:class:`NonFiniteLoss` before the step is applied, leaving the last good ``last.pt``.
This module is the run (how a job lives); what one step is, is the recipe (:mod:`hgbench.recipe`).
It reads top to bottom in phases: build (recipe, data), resume (``last.pt``), epochs (steps,
then the epoch's validation, log row and checkpoint), finish (``log.csv``, ``model.pt``). The
recipe, speed knobs and multi-GPU use are described in docs/training.md.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sys
import time
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from . import distributed
from .checkpoint import (
    CheckpointError,
    another_run,
    load_checkpoint,
    read_model_file,
    restore_last,
    save_last,
    save_model_file,
)
from .config import SPEED_KEYS, DatasetConfig, TrainConfig, VariantConfig
from .data.dataset import CropDataset, epoch_batches, iterate_batches, step_generator
from .data.schema import open_split
from .heatmaps import cells_to_pixels
from .inference import decode_rows, resolve_device
from .iofiles import output_lock, remove_stale_temps
from .joints import joints_of, layout_of
from .machine import device_label
from .memory import check_training_memory
from .metrics import training_accuracy, training_metric  # valid_acc: each layout's own metric and joints
from .precision import check_training_precision
from .recipe import NonFiniteLoss, Recipe, build_recipe
from .runs import write_log

__all__ = ["TEST_SIGNAL_ENV", "NonFiniteLoss", "TrainingInterrupted", "run_fingerprint", "train", "validate"]

TEST_SIGNAL_ENV = "HGBENCH_TEST_SIGNAL_AT_STEP"
"""Test hook: ``"<iteration>:<SIGNAL>"`` makes the process send itself SIGNAL after that step."""


class TrainingInterrupted(Exception):
    """SIGTERM/SIGINT arrived; ``last.pt`` holds the state after the last finished step."""


@torch.no_grad()
def validate(
    model: torch.nn.Module,
    data: CropDataset,
    input_res: int,
    output_res: int,
    device: torch.device,
    batch_size: int,
    precision: str = "fp32",
    layout: str | None = None,
) -> np.ndarray:
    """The layout's training metric (%) for every output, centre crops, no flip. Returns [O].

    ``layout`` (default: the split's own, from its joint names) picks the metric in one place,
    :func:`hgbench.metrics.training_metric`: MPII → PCKh@0.5 on the ablation joints, FLIC →
    PCK@0.2 (torso diagonal) on elbows and wrists. Runs the one inference loop of ``predict``
    (:func:`hgbench.inference.decode_rows`) without the flip test.
    """
    layout = layout or layout_of(data.joint_names)
    model.eval()
    uv, _ = decode_rows(
        model,
        lambda rows: data.batch(rows)[0],
        len(data),
        batch_size,
        input_res,
        precision=precision,
        channels_last=True,
    )
    preds = (
        cells_to_pixels(uv, input_res / output_res) + (data.crop_size - input_res) / 2
    ).numpy()  # [N, O, J, 2] crop px
    # Normaliser (head size or torso diagonal, native px) in crop px: the crop→image map is a
    # uniform scale (no rotation in prepare).
    pixel = np.linalg.norm(data.crop_to_image[:, :, 0], axis=1)
    norm = data.normalizer / pixel
    acc = [
        training_accuracy(preds[:, o].astype(np.float64), data.joints.astype(np.float64), data.missing, norm, layout)
        for o in range(preds.shape[1])
    ]
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

    def due(self) -> bool:
        """Whether the next :meth:`update` prints a line (the run's cadence for reading values
        back from a GPU)."""
        return (self.done + 1) % self.every == 0 or self.done + 1 == self.total

    def update(self, epoch: int, epochs: int, loss, img_per_s: float, wait_share: float) -> None:
        """``loss``: a function giving the step's loss, called only when it is shown (on a GPU
        reading it stops the host until the device has finished the step)."""
        shown = self.due()
        self.done += 1
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.update(1)  # the bar's count every step, its numbers at the cadence
        if not shown:
            return
        rate = (self.done - self.steps0) / max(time.perf_counter() - self.t0, 1e-9)
        eta = (self.total - self.done) / max(rate, 1e-9)
        text = f"loss {loss():.3e}  {img_per_s:.1f} img/s  data wait {100 * wait_share:.0f}%"
        if self.bar is not None:
            self.bar.set_description(f"epoch {epoch + 1}/{epochs}", refresh=False)
            self.bar.set_postfix_str(text)
        else:
            self.log(
                f"epoch {epoch + 1}/{epochs}  step {self.done}/{self.total}  {text}  "
                f"ETA {time.strftime('%H:%M:%S', time.gmtime(eta))}"
                + (f" +{int(eta // 86400)}d" if eta >= 86400 else "")
            )

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def run_fingerprint(
    dataset: DatasetConfig, variant: VariantConfig, cfg: TrainConfig, seed: int, train_file: Path
) -> str:
    """sha256 of everything that decides the weights: dataset/variant/train params, seed, data size.

    Stored in ``last.pt``; a checkpoint with another fingerprint is not resumed. The speed knobs
    (:data:`hgbench.config.SPEED_KEYS`) are left out: a retry with other threads, workers, GPUs or
    compilation resumes where the run stopped.
    """
    train_params = {k: v for k, v in asdict(cfg).items() if k not in SPEED_KEYS}
    blob = json.dumps(
        {
            "dataset": asdict(dataset),
            "variant": asdict(variant),
            "train": train_params,
            "seed": seed,
            "train_bytes": Path(train_file).stat().st_size,
        },
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(blob.encode()).hexdigest()


def train(
    *,
    dataset: DatasetConfig,
    variant: VariantConfig,
    cfg: TrainConfig,
    seed: int,
    train_file: Path,
    valid_file: Path,
    out_dir: Path,
    device: str = "auto",
    log=print,
) -> Path:
    """Train one variant with one seed; returns the path of ``model.pt``.

    Inside a torchrun worker (``train.devices`` > 1) this is one rank of a DDP job. The writing
    rank holds ``out_dir``'s lock (:func:`hgbench.iofiles.output_lock`), so a second job with the
    same ``out_dir`` fails at once (:class:`hgbench.iofiles.OutputLockedError`) instead of writing
    the same ``last.pt``.
    """
    device = resolve_device(device)
    check_training_precision(cfg.precision, device)  # no silent scalar-bf16 fallback on CPUs without it
    splits = []
    for split, role in ((train_file, "train"), (valid_file, "valid")):  # refused before --out exists
        with open_split(split) as opened:
            found = str(opened.attrs.get("split", role))
            if found != role:  # swapped files would train on the validation people and score on seen ones
                raise ValueError(
                    f"{split} holds the {found!r} split (its attribute split), where the {role!r} split "
                    f"belongs; give --data the folder hgbench prepare wrote (train.h5, valid.h5) unchanged"
                )
            splits.append((len(opened), opened.crop_size))
    ctx, dev = distributed.setup(device)
    try:
        # Before --out and its lock exist, once the device is chosen: a job that cannot fit is
        # refused with its estimate, not SIGKILLed by the OOM killer at its first step.
        check_training_memory(
            dataset,
            variant,
            cfg,
            device=dev,
            joints=len(joints_of(dataset.layout)),
            splits=tuple(splits),
            world=ctx.world,
        )
        out_dir = Path(out_dir)
        with output_lock(out_dir, "hgbench train") if ctx.is_main else nullcontext():
            if ctx.is_main:  # temporaries of a run killed while writing (the lock says it is dead)
                for name in ("last.pt", "model.pt", "log.csv"):
                    remove_stale_temps(out_dir / name)
            run = _build(
                dataset=dataset,
                variant=variant,
                cfg=cfg,
                seed=seed,
                train_file=train_file,
                valid_file=valid_file,
                out_dir=out_dir,
                dev=dev,
                ctx=ctx,
                log=log,
            )
            _resume(run)
            run.recipe.wrap(ctx.world)
            _epochs(run)
            return _finish(run)
    finally:
        distributed.teardown(ctx)


@dataclass
class _Run:
    """One training job between two steps: what it was built from and where it stands."""

    dataset: DatasetConfig
    variant: VariantConfig
    cfg: TrainConfig
    seed: int
    out_dir: Path
    recipe: Recipe
    train_data: CropDataset
    valid_data: CropDataset | None  # rank 0 only
    flip_perm: torch.Tensor
    steps_per_epoch: int
    fingerprint: str
    ctx: distributed.Context
    log: object
    device: str  # where this process trains, as log.csv names it (machine.device_label)
    # Position: the 0-based epoch in progress, its batches done, steps done in all, the log rows
    # of finished epochs and the running sums of the epoch in progress (None: a fresh epoch).
    epoch: int = 0
    batch_done: int = 0
    iteration: int = 0
    rows: list[dict] = field(default_factory=list)
    sums: dict | None = None

    @property
    def last_path(self) -> Path:
        return self.out_dir / "last.pt"

    @property
    def identity(self) -> dict:
        """The run this folder is for, as ``last.pt`` records it."""
        return {"dataset": self.dataset.name, "variant": self.variant.name, "seed": self.seed}

    def save(self, epoch: int, batch: int, sums: dict | None) -> None:
        """Write ``last.pt`` at (epoch, batch) on rank 0; every rank waits until it is written."""
        if self.ctx.is_main:
            r = self.recipe
            save_last(
                self.last_path,
                net=r.net,
                optimizer=r.optimizer,
                scheduler=r.scheduler,
                epoch=epoch,
                batch=batch,
                iteration=self.iteration,
                progress=sums,
                log=self.rows,
                seed=self.seed,
                model_config=asdict(r.net.config),
                fingerprint=self.fingerprint,
                run=self.identity,
            )
        if self.ctx.world > 1:
            torch.distributed.barrier()  # nobody stops before rank 0 has written the state


# -- build --------------------------------------------------------------------------------------


def check_split(path: Path, data: CropDataset, dataset: DatasetConfig) -> None:
    """The split was prepared for this dataset's input size and joints (else ValueError naming the
    file, both values and the fix), checked before any step: a size mismatch would otherwise
    train a whole epoch and die on a tensor-size error."""
    fix = "rerun `hgbench prepare` with this profile (the pipeline's data/processed/<profile>/<dataset>)"
    if data.input_res != dataset.input_res:
        raise ValueError(
            f"{path} was prepared for input_res {data.input_res} px, but datasets.{dataset.name}."
            f"input_res is {dataset.input_res}; {fix}"
        )
    expected = joints_of(dataset.layout)
    if tuple(data.joint_names) != tuple(expected):
        raise ValueError(
            f"{path} has the joints {', '.join(data.joint_names)}, but dataset {dataset.name} has the "
            f"{dataset.layout} layout ({', '.join(expected)}); {fix}"
        )
    if data.crop_size < dataset.input_res:
        raise ValueError(f"{path}: crops of {data.crop_size} px are smaller than input_res {dataset.input_res}; {fix}")


def _build(*, dataset, variant, cfg, seed, train_file, valid_file, out_dir, dev, ctx, log) -> _Run:
    """The recipe (weights drawn from ``seed``), the splits and the run's fingerprint."""
    out_dir.mkdir(parents=True, exist_ok=True)
    if cfg.batch_size < ctx.world:
        raise ValueError(f"train.batch_size {cfg.batch_size} is smaller than train.devices {ctx.world}")
    torch.set_num_threads(cfg.threads)
    recipe = build_recipe(
        dataset,
        variant,
        cfg,
        len(joints_of(dataset.layout)),
        seed,
        dev,
        sync_batchnorm=distributed.sync_batchnorm if ctx.world > 1 else None,
    )
    train_data = CropDataset(train_file)
    valid_data = CropDataset(valid_file) if ctx.is_main else None
    for path, data in ((train_file, train_data), (valid_file, valid_data)):
        if data is not None:
            check_split(path, data, dataset)
    return _Run(
        dataset=dataset,
        variant=variant,
        cfg=cfg,
        seed=seed,
        out_dir=out_dir,
        recipe=recipe,
        train_data=train_data,
        valid_data=valid_data,
        flip_perm=torch.as_tensor(train_data.flip_permutation),
        steps_per_epoch=len(epoch_batches(len(train_data), cfg.batch_size, seed, 0)),
        fingerprint=run_fingerprint(dataset, variant, cfg, seed, train_file),
        ctx=ctx,
        log=log,
        device=device_label(dev, cfg.threads, ctx.world),
    )


# -- resume -------------------------------------------------------------------------------------


def _resume(run: _Run) -> None:
    """Continue from ``last.pt`` when it belongs to this run; start over when it was written under
    other settings (its weights answer another question: resuming would mix two runs)."""
    _refuse_another_runs_model(run)
    if not run.last_path.exists():
        return
    r, main = run.recipe, run.ctx.is_main
    state = load_checkpoint(
        run.last_path, seed=run.seed, model_config=asdict(r.net.config), fingerprint=run.fingerprint, run=run.identity
    )
    if state is None:
        if main:
            run.log(f"{run.last_path} was written under other training settings; starting over")
        return
    position = restore_last(state, net=r.net, optimizer=r.optimizer, scheduler=r.scheduler)
    run.epoch, run.batch_done, run.iteration = position["epoch"], position["batch"], position["iteration"]
    run.rows, run.sums = position["log"], position["progress"]
    if main and run.epoch >= run.cfg.epochs:
        run.log(
            f"{run.last_path} holds the finished run ({run.cfg.epochs} epochs); writing model.pt and log.csv from it"
        )
    elif main:
        run.log(
            f"resuming {run.out_dir} at epoch {run.epoch + 1}, step {run.batch_done} of {run.steps_per_epoch} "
            f"(iteration {run.iteration})"
        )


def _refuse_another_runs_model(run: _Run) -> None:
    """A ``model.pt`` of another run in ``--out`` is refused (train would replace it). A damaged
    one is left for training to rewrite."""
    path = run.out_dir / "model.pt"
    if not path.is_file():
        return
    try:
        meta = read_model_file(path)
    except CheckpointError:
        return
    found = {"dataset": meta["dataset"], "variant": meta["variant"], "seed": int(meta["seed"])}
    if found != run.identity:
        raise CheckpointError(another_run(path, found, run.identity))


# -- epochs -------------------------------------------------------------------------------------


def _epochs(run: _Run) -> None:
    """Every remaining epoch: its steps, then its log row and checkpoint. SIGTERM/SIGINT stop at
    the next step boundary with ``last.pt`` written (:class:`TrainingInterrupted`)."""
    progress = Progress(
        run.cfg.epochs * run.steps_per_epoch, run.iteration, run.steps_per_epoch, run.ctx.is_main, run.log
    )
    try:
        with _stop_requests() as stop:
            for epoch in range(run.epoch, run.cfg.epochs):
                lr = run.recipe.lr_for_epoch(epoch)
                sums = _steps(run, epoch, stop, progress)
                _end_epoch(run, epoch, lr, sums, stop)
    finally:
        progress.close()


def _steps(run: _Run, epoch: int, stop: dict, progress: Progress) -> dict:
    """The epoch's remaining steps (from ``run.batch_done``); returns its running sums."""
    cfg, ctx = run.cfg, run.ctx
    sums = run.sums or {"losses": [0.0] * run.recipe.net.config.outputs, "seen": 0, "wait": 0.0, "compute": 0.0}
    run.sums = None
    batches = epoch_batches(len(run.train_data), cfg.batch_size, run.seed, epoch)
    parts = [distributed.shard(b, ctx) for b in batches]  # each rank reads only its rows
    local = [b[part] for b, part in zip(batches[run.batch_done :], parts[run.batch_done :])]
    test_signal = _test_signal()
    # Running loss sums stay on the device (float64: the same sums, bit for bit, as Python floats
    # would give) and are read back only for a checkpoint, a shown line or the epoch's row.
    losses = torch.tensor(sums["losses"], dtype=torch.float64, device=run.recipe.device)
    sup = run.recipe.supervised
    t_data = time.perf_counter()
    for k, (crops, joints, missing) in enumerate(
        iterate_batches(run.train_data, local, cfg.workers), start=run.batch_done
    ):
        t_step = time.perf_counter()
        sums["wait"] += t_step - t_data
        per_output = _step(run, epoch, crops, joints, missing, parts[k], len(batches[k]))
        n = len(batches[k])
        losses += per_output.double() * n
        sums["seen"] += n
        sums["compute"] += time.perf_counter() - t_step
        elapsed = sums["wait"] + sums["compute"]
        if progress.due():
            _check_finite(run, epoch)
        progress.update(
            epoch,
            cfg.epochs,
            lambda out=per_output: float(out[sup].sum()),
            sums["seen"] / elapsed,
            sums["wait"] / elapsed,
        )
        if test_signal is not None and run.iteration == test_signal[0]:
            os.kill(os.getpid(), test_signal[1])
        _checkpoint_or_stop(run, epoch, k + 1, len(batches), sums, stop, losses)
        t_data = time.perf_counter()
    _check_finite(run, epoch)
    sums["losses"] = losses.tolist()
    run.batch_done = 0
    return sums


def _check_finite(run: _Run, epoch: int) -> None:
    """GPU runs: stop on a NaN/inf loss of the steps since the last check (see Recipe.step)."""
    try:
        run.recipe.raise_if_nonfinite()
    except NonFiniteLoss as exc:
        raise NonFiniteLoss(
            f"{exc} at epoch {epoch + 1}, by iteration {run.iteration}; the last good state "
            f"is {run.last_path} (try a lower lr or train.precision: fp32)"
        ) from None


def _step(run: _Run, epoch: int, crops, joints, missing, part: slice, global_batch: int) -> torch.Tensor:
    """One step of the recipe on this rank's rows; per-output MSE [O]."""
    r = run.recipe
    images, targets = r.batch(
        crops,
        joints,
        missing,
        step_generator(run.seed, run.iteration),
        run.flip_perm,
        part=part,
        global_batch=global_batch,
    )
    try:
        per_output = r.step(images, targets, run.ctx.world)
    except NonFiniteLoss as exc:
        raise NonFiniteLoss(
            f"{exc} at epoch {epoch + 1}, iteration {run.iteration + 1}; the last good state "
            f"is {run.last_path} (try a lower lr or train.precision: fp32)"
        ) from None
    run.iteration += 1
    return per_output


def _checkpoint_or_stop(
    run: _Run, epoch: int, done: int, n_batches: int, sums: dict, stop: dict, losses: torch.Tensor
) -> None:
    """Inside an epoch (``done`` < ``n_batches`` batches): write ``last.pt`` every
    ``train.checkpoint_every`` steps, and on a stop request write it and stop. After the epoch's
    last batch the epoch's end does both."""
    stop_now = stop["signal"] is not None
    if run.ctx.world > 1:  # every rank stops at the same step
        flag = torch.tensor([float(stop_now)], device=run.recipe.device)
        torch.distributed.all_reduce(flag)
        stop_now = bool(flag.item())
    if done >= n_batches:
        return
    every = run.cfg.checkpoint_every
    if stop_now or (every and run.iteration % every == 0):
        _check_finite(run, epoch)  # never a checkpoint of weights a non-finite step has reached
        run.save(epoch, done, {**sums, "losses": losses.tolist()})
    if stop_now:
        raise TrainingInterrupted(
            f"stopped by {stop['signal'] or 'another rank'} at iteration {run.iteration}; "
            f"{run.last_path} holds the state, rerun to resume"
        )


def _end_epoch(run: _Run, epoch: int, lr: float, sums: dict, stop: dict) -> None:
    """Validation, the plateau schedule, the log row (``log.csv`` rewritten) and ``last.pt``."""
    cfg = run.cfg
    row = _epoch_row(run, epoch, lr, sums)
    if run.recipe.scheduler is not None:
        run.recipe.scheduler.step(row["valid_acc"])
    run.rows.append(row)
    if run.ctx.is_main:
        run.log(
            f"epoch {epoch + 1}/{cfg.epochs}  loss {row['train_loss']:.3e}  valid "
            f"{training_metric(run.dataset.layout).label} {row['valid_acc']:.1f}%  lr {lr:.3g}  "
            f"{row['images_per_s']:.1f} img/s  data wait {100 * row['data_wait_share']:.0f}%"
        )
        write_log(run.rows, run.out_dir / "log.csv", (run.dataset.name, run.variant.name, run.seed))
    run.save(epoch + 1, 0, None)
    if stop["signal"] is not None and epoch + 1 < cfg.epochs:
        raise TrainingInterrupted(
            f"stopped by {stop['signal']} after epoch {epoch + 1}; {run.last_path} holds the state, rerun to resume"
        )


def _epoch_row(run: _Run, epoch: int, lr: float, sums: dict) -> dict:
    """The log row of a finished epoch (validation on rank 0, its result shared with every rank)."""
    r, ds, ctx = run.recipe, run.dataset, run.ctx
    t0 = time.perf_counter()
    acc = np.zeros(len(r.names))
    if ctx.is_main:
        acc = validate(
            r.net, run.valid_data, ds.input_res, ds.output_res, r.device, run.cfg.batch_size * 2, run.cfg.precision
        )
    if ctx.world > 1:  # the plateau scheduler of every rank needs the same accuracy
        shared = torch.as_tensor(acc, dtype=torch.float64, device=r.device)
        torch.distributed.broadcast(shared, 0)
        acc = shared.cpu().numpy()
    valid_s = time.perf_counter() - t0
    losses = np.array(sums["losses"]) / max(sums["seen"], 1)
    wall = sums["wait"] + sums["compute"]
    row = {"epoch": epoch + 1, "iteration": run.iteration, "lr": lr, "train_loss": float(losses[r.supervised].sum())}
    row.update({f"train_loss_{n}": float(v) for n, v in zip(r.names, losses)})
    row["valid_acc"] = float(acc[-1])
    row.update({f"valid_acc_{n}": float(v) for n, v in zip(r.names, acc)})
    row.update(
        images_per_s=sums["seen"] / max(wall, 1e-9),
        data_wait_share=sums["wait"] / max(wall, 1e-9),
        wall_s=wall,
        data_wait_s=sums["wait"],
        step_s=sums["compute"] / max(1, round(sums["seen"] / run.cfg.batch_size)),
        valid_s=valid_s,
        # Where the epoch ran (a resumed run may have moved): its img/s mean nothing without it.
        device=run.device,
    )
    return row


# -- finish -------------------------------------------------------------------------------------


def _finish(run: _Run) -> Path:
    """``log.csv`` and ``model.pt`` on rank 0; returns the path of ``model.pt``.

    Also when ``last.pt`` already held the finished run (a rerun, a kill after the last step): the
    epochs did nothing, and every declared output is rewritten from ``last.pt``'s rows and
    weights, byte for byte as the first time.
    """
    model_path = run.out_dir / "model.pt"
    if run.ctx.is_main:
        write_log(run.rows, run.out_dir / "log.csv", (run.dataset.name, run.variant.name, run.seed))
        ds, v, net = run.dataset, run.variant, run.recipe.net
        save_model_file(
            model_path,
            net=net,
            model_config=asdict(net.config),
            variant=v.name,
            supervision=v.supervision,
            dataset=ds.name,
            input_res=ds.input_res,
            output_res=ds.output_res,
            seed=run.seed,
            epochs=run.cfg.epochs,
        )
    return model_path
