"""The training recipe: what one optimisation step is, apart from how a training job lives.

The recipe is the paper's arithmetic (docs/training.md): the variant's network, channels-last;
RMSprop (or Adam) with the profile's lr schedule; one augmented batch drawn from (seed,
iteration); the summed MSE of the supervised outputs against Gaussian heatmaps; one step. It
is shared by ``hgbench train`` (:mod:`hgbench.train`, the run: resume, epochs, checkpoints,
signals), ``hgbench bench train`` (:mod:`hgbench.bench`, the same step timed) and the DDP tests.
Nothing here reads a file, writes a file or logs.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .config import DatasetConfig, TrainConfig, VariantConfig
from .data.dataset import Augmentation, jitter_colours, sample_transforms, warp_batch
from .heatmaps import heatmap_targets, pixels_to_cells
from .model import ModelConfig, StackedHourglass, model_config
from .precision import autocast

__all__ = [
    "NonFiniteLoss",
    "Recipe",
    "autocast",
    "FlatRMSprop",
    "build_recipe",
    "flat_update",
    "make_batch",
    "make_model",
    "make_optimizer",
    "make_scheduler",
    "output_names",
    "set_lr",
    "step_schedule_lr",
    "supervised_outputs",
    "train_step",
]


class NonFiniteLoss(RuntimeError):
    """The loss became NaN or inf; the step was not applied."""


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


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr


def step_schedule_lr(cfg: TrainConfig, epoch: int) -> float:
    """lr of 0-based ``epoch`` under ``lr_schedule: steps``."""
    return cfg.lr * cfg.lr_drop_factor ** sum(epoch >= e for e in cfg.lr_drop_epochs)


def compile_mode(value: bool | str) -> str | None:
    """``torch.compile``'s mode for ``train.compile``: true → the default mode, or the mode named
    (``reduce-overhead``: CUDA graphs, for small batches; ``max-autotune``)."""
    return None if value is True else str(value)


def _view_like(flat: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """A view of the 1-D ``flat`` (``t.numel()`` elements) with ``t``'s shape and strides (``t``
    dense: contiguous or channels-last), so that kernels see the same memory layout."""
    return flat.as_strided(t.shape, t.stride())


class FlatRMSprop(torch.optim.RMSprop):
    """RMSprop whose parameters, gradients, square averages and step counts live in one flat
    buffer each (every parameter's tensor is a view into it), so that one update is five tensor
    operations instead of five per parameter.

    On a CPU ``foreach=True`` still runs one kernel per parameter (PyTorch has no multi-tensor CPU
    kernels): for the demo's hg2x1 (324 parameter tensors) its update takes 2.6 ms of a 50 ms step,
    this one 0.1 ms; autograd then adds each new gradient into the flat buffer instead of handing
    its tensor over, which costs part of the gain back (net +11–13 % img/s;
    bench/results/README.md). The arithmetic is the same elementwise formula as
    :class:`torch.optim.RMSprop` without momentum, centring or weight decay, and ``state_dict``
    has its format, so ``last.pt`` files move between the two. Gradients are accumulated into the
    flat buffer: :meth:`zero_grad` zeroes it (``set_to_none`` is ignored), so every parameter must
    receive a gradient each step (every parameter of the hourglass networks does).
    """

    def __init__(self, params, **kwargs):
        params = list(params)
        super().__init__(params, **kwargs)
        group = self.param_groups[0]
        if len(self.param_groups) != 1 or group["momentum"] or group["centered"] or group["weight_decay"]:
            raise ValueError("FlatRMSprop: one parameter group, no momentum, centring or weight decay")
        first = params[0]
        n = sum(p.numel() for p in params)
        self._params = torch.empty(n, dtype=first.dtype, device=first.device)
        self._grads = torch.zeros_like(self._params)
        self._square = torch.zeros_like(self._params)
        self._steps = torch.zeros(len(params), dtype=torch.float32)
        offset = 0
        for i, p in enumerate(params):
            k = p.numel()
            view = _view_like(self._params[offset : offset + k], p)
            view.copy_(p.detach())
            p.data = view
            p.grad = _view_like(self._grads[offset : offset + k], p)
            self.state[p] = {"step": self._steps[i], "square_avg": _view_like(self._square[offset : offset + k], p)}
            offset += k

    def zero_grad(self, set_to_none: bool = True) -> None:
        self._grads.zero_()

    @torch.no_grad()
    def step(self, closure=None):
        if closure is not None:
            raise ValueError("FlatRMSprop.step takes no closure")
        group = self.param_groups[0]
        alpha = group["alpha"]
        self._steps.add_(1.0)
        self._square.mul_(alpha)
        self._square.addcmul_(self._grads, self._grads, value=1 - alpha)
        avg = self._square.sqrt()
        avg.add_(group["eps"])
        self._params.addcdiv_(self._grads, avg, value=-group["lr"])

    def state_dict(self):
        # Copies: the views share the flat buffers, and a saved view would carry the whole buffer.
        saved = super().state_dict()
        saved["state"] = {k: {n: v.clone() for n, v in s.items()} for k, s in saved["state"].items()}
        return saved

    def load_state_dict(self, state_dict) -> None:
        super().load_state_dict(state_dict)
        # The base class puts the loaded tensors in ``state``; copy them into the flat buffers.
        offset = 0
        for i, p in enumerate(self.param_groups[0]["params"]):
            k = p.numel()
            loaded = self.state[p]
            square = _view_like(self._square[offset : offset + k], p)
            square.copy_(loaded["square_avg"])
            self._steps[i] = loaded["step"]
            self.state[p] = {"step": self._steps[i], "square_avg": square}
            offset += k


def make_optimizer(
    cfg: TrainConfig, model: torch.nn.Module, capturable: bool = False, flat: bool = False
) -> torch.optim.Optimizer:
    """RMSprop (the paper) or Adam. ``capturable``: keep the step count on the device, as CUDA
    graphs need (``train.compile: reduce-overhead`` on a GPU); the same arithmetic. ``flat``:
    RMSprop on flat buffers (:class:`FlatRMSprop`; :func:`flat_update` says when)."""
    # foreach: one multi-tensor update instead of a Python loop over ~300 parameters (PyTorch
    # picks it on CUDA only). Bit-identical weights (bench/results/README.md).
    extra = {"capturable": True} if capturable else {}
    if cfg.optimizer == "rmsprop":
        # The Torch original: alpha 0.99, eps 1e-8, no momentum, no weight decay.
        if flat and not capturable:
            return FlatRMSprop(model.parameters(), lr=cfg.lr, alpha=0.99, eps=1e-8, foreach=True)
        return torch.optim.RMSprop(model.parameters(), lr=cfg.lr, alpha=0.99, eps=1e-8, foreach=True, **extra)
    return torch.optim.Adam(model.parameters(), lr=cfg.lr, foreach=True, **extra)


def flat_update(cfg: TrainConfig, device: torch.device, world: int = 1) -> bool:
    """Whether a run takes :class:`FlatRMSprop`: one CPU process without ``torch.compile`` (DDP
    sets the gradients itself, and CUDA has multi-tensor kernels already)."""
    return device.type == "cpu" and world == 1 and not cfg.compile


def make_scheduler(cfg: TrainConfig, optimizer: torch.optim.Optimizer):
    """The paper's plateau rule: lr × lr_drop_factor when more than ``plateau_patience`` epochs in a
    row bring no higher validation accuracy (None under ``lr_schedule: steps``)."""
    if cfg.lr_schedule != "plateau":
        return None
    return torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer,
        mode="max",
        factor=cfg.lr_drop_factor,
        patience=cfg.plateau_patience,
        threshold=0.0,
        threshold_mode="abs",
    )


def make_model(variant: VariantConfig, joints: int, device: torch.device) -> StackedHourglass:
    """The variant's network on ``device``, channels-last (~40 % faster convolutions on CPU and
    on tensor cores)."""
    return StackedHourglass(model_config(variant, joints)).to(device, memory_format=torch.channels_last)


def make_batch(
    crops: torch.Tensor,
    joints: torch.Tensor,
    missing: torch.Tensor,
    *,
    aug: Augmentation,
    generator: torch.Generator,
    flip_perm: torch.Tensor,
    input_res: int,
    output_res: int,
    sigma: float,
    device: torch.device,
    part: slice | None = None,
    global_batch: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
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
    images, joints_px, missing = warp_batch(
        crops.to(device, non_blocking=True), joints, missing, input_res, angle, scale, flip, flip_perm
    )
    if aug.color_jitter:
        images = jitter_colours(images, gains)
    targets = heatmap_targets(pixels_to_cells(joints_px, input_res / output_res), ~missing, output_res, sigma)
    return images.contiguous(memory_format=torch.channels_last), targets


def _index(supervised: list[int]) -> slice | list[int]:
    """The supervised outputs as a slice where they are a run (all, or the last): indexing by a
    Python list copies an index tensor to the device at every step."""
    if supervised and supervised == list(range(supervised[0], supervised[-1] + 1)):
        return slice(supervised[0], supervised[-1] + 1)
    return supervised


def train_step(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    images: torch.Tensor,
    targets: torch.Tensor,
    supervised: list[int],
    precision: str,
    world: int = 1,
    check_finite: bool = True,
) -> torch.Tensor:
    """One optimisation step; returns the per-output MSE [O] (fp32, detached, mean over ranks).

    images [B, 3, R, R], targets [B, J, H, W]. The loss is the sum of the supervised outputs'
    MSE. With ``check_finite`` it is checked before the backward pass, so a NaN/inf never reaches
    the weights (:class:`NonFiniteLoss`; with DDP on the all-reduced loss, so that every rank
    stops together). That check reads a value back from the device; on a GPU the run checks the
    returned losses every few steps instead (:meth:`Recipe.step`), before any checkpoint.
    """
    device = images.device
    with autocast(device, precision):
        out = model(images)
    per_output = ((out.float() - targets[:, None]) ** 2).mean(dim=(0, 2, 3, 4))
    loss = per_output[_index(supervised)].sum()
    report = per_output.detach().clone()
    if world > 1:
        torch.distributed.all_reduce(report)
        report /= world
    if check_finite and not torch.isfinite(report).all():
        raise NonFiniteLoss(f"loss became {report[supervised].sum().item()} (per output {report.tolist()})")
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return report


@dataclass
class Recipe:
    """One variant's training step, built: the network and its optimiser state, the schedule, the
    augmentation and the target geometry. ``net`` is the plain module (what is saved);
    ``model`` what a step calls (``net`` compiled and/or wrapped in DDP, see :meth:`wrap`)."""

    net: StackedHourglass
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.ReduceLROnPlateau | None
    supervised: list[int]
    names: list[str]
    aug: Augmentation
    cfg: TrainConfig
    input_res: int
    output_res: int
    device: torch.device
    defer_checks: bool = False  # GPU runs: losses checked at the run's check points, not every step
    _nonfinite: torch.Tensor | None = None  # any non-finite loss since the last check

    def lr_for_epoch(self, epoch: int) -> float:
        """Set (step schedule) or read (plateau schedule) the lr of 0-based ``epoch``."""
        if self.scheduler is None:
            set_lr(self.optimizer, step_schedule_lr(self.cfg, epoch))
        return self.optimizer.param_groups[0]["lr"]

    def batch(self, crops, joints, missing, generator, flip_perm, part=None, global_batch=None):
        """:func:`make_batch` with this recipe's augmentation, resolution, sigma and device."""
        return make_batch(
            crops,
            joints,
            missing,
            aug=self.aug,
            generator=generator,
            flip_perm=flip_perm,
            input_res=self.input_res,
            output_res=self.output_res,
            sigma=self.cfg.sigma,
            device=self.device,
            part=part,
            global_batch=global_batch,
        )

    def step(self, images: torch.Tensor, targets: torch.Tensor, world: int = 1) -> torch.Tensor:
        """:func:`train_step` on ``model``; per-output MSE [O], left on the device.

        On a CPU every step's loss is checked before it is applied. On a GPU that check would
        stop the host at every step until the device catches up, so non-finite losses are
        collected on the device and :meth:`raise_if_nonfinite` reports them at the run's check
        points (its progress cadence and before every checkpoint)."""
        report = train_step(
            self.model,
            self.optimizer,
            images,
            targets,
            self.supervised,
            self.cfg.precision,
            world,
            check_finite=not self.defer_checks,
        )
        if self.defer_checks:
            bad = ~torch.isfinite(report).all()
            self._nonfinite = bad if self._nonfinite is None else self._nonfinite | bad
        return report

    def raise_if_nonfinite(self) -> None:
        """:class:`NonFiniteLoss` when a step since the last call had a NaN/inf loss (GPU runs:
        one read from the device; a no-op on CPU, where every step is checked)."""
        bad, self._nonfinite = self._nonfinite, None
        if bad is not None and bool(bad):
            raise NonFiniteLoss("loss became nan or inf")

    def wrap(self, world: int) -> None:
        """Wrap in DDP (``world`` > 1), then compile (``train.compile``): compiling the DDP module,
        not the other way round, keeps DDP's overlap of gradient sync with the backward pass.
        Call after a resume has loaded the weights into ``net``."""
        model: torch.nn.Module = self.net
        if world > 1:
            dev = self.device
            model = torch.nn.parallel.DistributedDataParallel(
                model, device_ids=[dev.index] if dev.type == "cuda" else None
            )
        if self.cfg.compile:
            model = torch.compile(model, mode=compile_mode(self.cfg.compile))
        self.model = model
        model.train()


def build_recipe(
    dataset: DatasetConfig,
    variant: VariantConfig,
    cfg: TrainConfig,
    joints: int,
    seed: int,
    device: torch.device,
    sync_batchnorm=None,
    flat: bool | None = None,
) -> Recipe:
    """The recipe of one variant on ``device``, weights drawn from ``seed``.

    ``joints``: 16 (MPII layout) or 11 (FLIC); ``sync_batchnorm``: a function replacing the
    network's BatchNorm layers for DDP (``hgbench.distributed.sync_batchnorm``), or None;
    ``flat``: force (True) or forbid (False) the flat-buffer update, default
    :func:`flat_update`'s choice (benchmarks compare the two; training keeps the default).
    """
    torch.manual_seed(seed)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed shapes: pick the fastest kernels once
    net = make_model(variant, joints, device)
    if sync_batchnorm is not None:
        net = sync_batchnorm(net, device)
    optimizer = make_optimizer(
        cfg,
        net,
        capturable=device.type == "cuda" and cfg.compile == "reduce-overhead",
        flat=flat_update(cfg, device, world=1 if sync_batchnorm is None else 2) if flat is None else flat,
    )
    return Recipe(
        net=net,
        model=net,
        optimizer=optimizer,
        scheduler=make_scheduler(cfg, optimizer),
        supervised=supervised_outputs(variant, net.config),
        names=output_names(net.config),
        aug=Augmentation(rotation=cfg.rotation, scale=cfg.scale, flip=cfg.flip, color_jitter=cfg.color_jitter),
        cfg=cfg,
        input_res=dataset.input_res,
        output_res=dataset.output_res,
        device=device,
        defer_checks=device.type != "cpu",  # a CPU check costs nothing; a GPU one stalls the host
    )
