"""Peak memory of a training job, estimated from the profile before the first step, and checked.

The estimate is arithmetic on the config, like :func:`hgbench.config.parameter_estimate`: no
model is built. It adds, in bytes:

* **weights and optimiser**: fp32 weights, their gradients, the optimiser's per-parameter state
  (RMSprop: 1 buffer, Adam: 2), the update's temporary (``sqrt`` of the averages: 1), and under
  bf16 autocast its bf16 copy of the weights;
* **activations**: every tensor the forward pass of :class:`hgbench.model.StackedHourglass` and
  the loss save for the backward pass, counted module by module (:func:`saved_elements`; equal to
  what autograd saves, tests/reliability/test_memory_estimate.py), times :data:`BACKWARD_FACTOR`,
  the measured share of the backward pass's own buffers (gradients of activations, convolution
  workspaces), plus the step's input batch. bf16 halves the feature maps (on the CPU autocast
  runs the convolutions and, on their bf16 outputs, BatchNorm and ReLU in bf16; a GPU is assumed
  alike); max-pooling indices stay int64 and the loss fp32;
* **data**: the crops of splits small enough to be held in memory
  (:data:`hgbench.data.dataset.IN_MEMORY_LIMIT`) and the per-person fields of every split;
* **runtime**: a fixed :data:`RUNTIME_BYTES` for the Python interpreter, torch and its kernels.

Calibrated against the peak RSS of ``hgbench bench train`` and ``hgbench train`` on a 2-core Zen 4
CPU (bench/results/memory_estimate.csv): 1 % to 19 % above what was measured, from the smoke
and demo variants at 64–96 px to the paper's 8-stack network at 256 px, fp32 and bf16, RMSprop
and Adam. Not modelled: ``torch.compile`` (its graphs and workspaces), loader worker processes
(each a process of its own), per-thread buffers of many CPU threads (measured with 1 and 2), and
on a GPU the CUDA context, cuDNN workspaces and the caching allocator's slack (not calibrated).

:func:`check_training_memory` refuses a run whose estimate exceeds the memory available: on the
CPU the smaller of ``MemAvailable`` and the cgroup's limit minus its usage; on a GPU the weights,
optimiser and activations against the device's free memory (``torch.cuda.mem_get_info``), the
rest against the host. ``HGBENCH_SKIP_MEMORY_CHECK=1`` skips the check.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

from .config import DatasetConfig, TrainConfig, VariantConfig, parameter_estimate
from .data.dataset import IN_MEMORY_LIMIT

SKIP_ENV = "HGBENCH_SKIP_MEMORY_CHECK"
"""``1`` skips :func:`check_training_memory` (an estimate wrong for an unusual machine)."""

AVAILABLE_ENV = "HGBENCH_MEMORY_AVAILABLE_BYTES"
"""Replaces the host's available memory (bytes) read by :func:`available_memory` (tests)."""

GiB = 2**30

RUNTIME_BYTES = 400 * 2**20
"""The process before its first tensor: Python, torch, hgbench and the CPU kernels' pools.
Measured 352–385 MiB peak RSS for the smallest runs (smoke and demo variants at batch 8, 1 thread)."""

BACKWARD_FACTOR = {"fp32": 1.3, "bf16": 1.2}
"""Peak activation memory ÷ the bytes the forward saves, by precision: the backward pass's own
buffers on top. Measured as the slope of peak RSS over the batch, hg8 at 256 px (565 MiB saved
per image in fp32, 296 MiB in bf16): 534–700 MiB per image in fp32 (0.95–1.24 of it, two
sessions), 314–347 MiB in bf16 (1.06–1.17); rounded up (bench/results/memory_estimate.csv)."""

MEMINFO = Path("/proc/meminfo")
CGROUP_ROOT = Path("/sys/fs/cgroup")
SELF_CGROUP = Path("/proc/self/cgroup")
_NO_LIMIT = 2**60  # cgroup v1 writes "unlimited" as a page-rounded 2**63


class NotEnoughMemory(ValueError):
    """A training job's estimated peak memory exceeds what the machine has free."""


# ---------------------------------------------------------------------------------------------
# the estimate
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SavedElements:
    """Elements (not bytes) the forward pass saves for backward, for one image.

    features: feature maps (fp32, or bf16 under autocast); indices: max-pooling argmax (int64);
    loss: the output minus target, kept for the squared error (fp32).
    """

    features: int
    indices: int
    loss: int


def saved_elements(
    stacks: int,
    modules: int,
    features: int,
    depth: int,
    input_res: int,
    joints: int = 16,
    inner_heads: bool = False,
) -> SavedElements:
    """What the forward of ``StackedHourglass`` saves for one ``input_res``² (pixels) image.

    Walks the network as ``model.py`` builds it. A residual module saves its BatchNorm-ReLU
    outputs and its convolutions' outputs (``c_in + 4·c_out/2`` channels); a module's own output
    counts once where the next layer saves it (a residual, pooling or convolution) and not where
    only an addition or a nearest upsampling reads it (those save nothing).
    """
    f, c1, c2, m = features, features // 4, features // 2, modules
    q = input_res // 4  # the hourglass's top resolution (px)

    def res(c_in: int, c_out: int) -> int:  # channels a residual saves inside itself
        return c_in + 4 * (c_out // 2)

    feats = 3 * input_res**2  # the image, saved by the first convolution
    feats += (2 * c1 + res(c1, c2) + c2) * (input_res // 2) ** 2  # conv, BN, residual; pooled
    feats += (c2 + res(c2, c2) + c2 + res(c2, f) + f) * q**2  # pooled, residual, residual → x
    idx = c2 * q**2
    levels = {depth - 1, depth - 2} if inner_heads else set()

    def hourglass(d: int, r: int) -> tuple[int, int]:
        h = r // 2
        fe = f * h**2  # pooled
        fe += m * (res(f, f) + f) * h**2  # down: every output read by the next layer
        ix = f * h**2
        if d > 1:
            inner_f, inner_i = hourglass(d - 1, h)
            fe, ix = fe + inner_f, ix + inner_i
        else:
            fe += m * (res(f, f) + f) * h**2
        fe += (m * res(f, f) + (m - 1) * f) * h**2  # after: its last output is upsampled only
        fe += (m * res(f, f) + (m - 1) * f) * r**2  # up: its last output is added only
        fe += f * r**2  # the sum, read by the next layer
        if d in levels:  # the head reads the sum, the remap its heatmaps; their sum is the output
            fe += (f + joints) * r**2
        return fe, ix

    per_stack_f, per_stack_i = hourglass(depth, q)
    per_stack_f += (m * (res(f, f) + f) + 2 * f) * q**2  # features: residuals, conv and BN
    feats += stacks * per_stack_f + (stacks - 1) * (joints + f) * q**2  # remapped heatmaps, next x
    idx += stacks * per_stack_i
    outputs = stacks + (2 if inner_heads else 0)
    return SavedElements(features=feats, indices=idx, loss=outputs * joints * q**2)


def _activation_bytes(variant: VariantConfig, dataset: DatasetConfig, batch: int, precision: str, joints: int) -> int:
    """Peak bytes of the forward's saved tensors and the backward's buffers, plus the batch."""
    s = saved_elements(
        variant.stacks,
        variant.modules,
        variant.features,
        variant.depth,
        dataset.input_res,
        joints,
        variant.supervision == "inner",
    )
    feature_bytes = 2 if precision == "bf16" else 4
    saved = s.features * feature_bytes + s.indices * 8 + s.loss * 4
    # The output itself stays alive through the backward pass (train_step holds it).
    saved += s.loss * feature_bytes
    r, c = dataset.input_res, dataset.crop_size
    # Stored crops (uint8), as float, the warped images, the sampling grid and the targets.
    batch_input = 3 * c**2 + 12 * c**2 + 12 * r**2 + 8 * r**2 + 4 * joints * (r // 4) ** 2
    return batch * (math.ceil(BACKWARD_FACTOR[precision] * saved) + batch_input)


def _parameter_bytes(variant: VariantConfig, cfg: TrainConfig, joints: int) -> int:
    """Weights, gradients, optimiser state and the foreach update's temporaries (bytes)."""
    n = parameter_estimate(
        variant.stacks, variant.modules, variant.features, variant.depth, joints, variant.supervision == "inner"
    )
    state = 2 if cfg.optimizer == "adam" else 1
    cast = 2 * n if cfg.precision == "bf16" else 0  # autocast's bf16 copies of the weights
    return 4 * n * (3 + state) + cast


def split_memory_bytes(n: int, crop_size: int, joints: int = 16) -> int:
    """Bytes :class:`hgbench.data.dataset.CropDataset` holds for a split of ``n`` people with
    ``crop_size``² px crops: the crops when they are under ``IN_MEMORY_LIMIT`` (read lazily
    otherwise), and the per-person fields (joints, flags, normaliser, crop transform) always,
    twice over while they are converted."""
    crops = 3 * crop_size**2 * n
    fields = 2 * n * (10 * joints + 56)
    return (crops if crops <= IN_MEMORY_LIMIT else 0) + fields


@dataclass(frozen=True)
class MemoryEstimate:
    """Estimated peak memory of one training process, in bytes, by part."""

    weights_and_optimizer: int
    activations: int
    data: int
    runtime: int = RUNTIME_BYTES

    @property
    def total(self) -> int:
        return self.weights_and_optimizer + self.activations + self.data + self.runtime

    @property
    def device_bytes(self) -> int:
        """What lives on the training device when it is a GPU."""
        return self.weights_and_optimizer + self.activations

    @property
    def host_bytes_with_gpu(self) -> int:
        """What stays in host memory when the network trains on a GPU."""
        return self.data + self.runtime

    def parts(self) -> str:
        """The parts for a message: ``weights and optimiser …, activations …, data …, runtime …``."""
        return (
            f"weights and optimiser {_gib(self.weights_and_optimizer)}, activations {_gib(self.activations)}, "
            f"data {_gib(self.data)}, runtime {_gib(self.runtime)}"
        )


def training_estimate(
    dataset: DatasetConfig,
    variant: VariantConfig,
    cfg: TrainConfig,
    *,
    joints: int = 16,
    batch: int | None = None,
    splits: tuple[tuple[int, int], ...] = (),
) -> MemoryEstimate:
    """Peak memory of one process training ``variant`` on ``dataset`` with ``cfg``.

    ``batch``: rows this process steps on (default ``train.batch_size``; a DDP rank has its
    share). ``splits``: ``(people, crop_size px)`` of each split file the process loads.
    """
    batch = cfg.batch_size if batch is None else batch
    return MemoryEstimate(
        weights_and_optimizer=_parameter_bytes(variant, cfg, joints),
        activations=_activation_bytes(variant, dataset, batch, cfg.precision, joints),
        data=sum(split_memory_bytes(n, c, joints) for n, c in splits),
    )


# ---------------------------------------------------------------------------------------------
# what the machine has
# ---------------------------------------------------------------------------------------------


def meminfo_available(path: Path | None = None) -> int | None:
    """``MemAvailable`` of ``/proc/meminfo`` (or ``path``) in bytes; None where the file or line is missing."""
    try:
        for line in (path or MEMINFO).read_text().splitlines():
            key, _, value = line.partition(":")
            if key == "MemAvailable":
                number, *unit = value.split()
                return int(number) * (1024 if unit == ["kB"] else 1)
    except (OSError, ValueError):
        return None
    return None


def _read_int(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None  # v2 writes "max" for no limit


def _stat_value(path: Path, key: str) -> int:
    try:
        for line in path.read_text().splitlines():
            name, _, value = line.partition(" ")
            if name == key and value.strip().isdigit():
                return int(value)
    except OSError:
        pass
    return 0


def _own_cgroups(self_cgroup: Path) -> dict[str, str]:
    """``{"v2": path, "v1": path}`` of this process's memory cgroup, from ``/proc/self/cgroup``."""
    found: dict[str, str] = {}
    try:
        lines = self_cgroup.read_text().splitlines()
    except OSError:
        return found
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        if parts[0] == "0" and parts[1] == "":
            found["v2"] = parts[2]
        elif "memory" in parts[1].split(","):
            found["v1"] = parts[2]
    return found


def _ancestors(root: Path, relative: str) -> list[Path]:
    """``root/relative`` and every folder above it up to ``root`` (only ``root`` when the
    relative path is not visible, as inside a container's cgroup namespace)."""
    start = root / relative.strip("/")
    if not start.is_dir():
        return [root]
    out = [start]
    while out[-1] != root and root in out[-1].parents:
        out.append(out[-1].parent)
    return out


def cgroup_available(root: Path | None = None, self_cgroup: Path | None = None) -> int | None:
    """Bytes this process's memory cgroup (and those above it) can still give; None without a limit.

    cgroup v2: ``memory.max − memory.current``; v1 (``<root>/memory/``): ``memory.limit_in_bytes
    − memory.usage_in_bytes``. Both add back the inactive page cache (``memory.stat``), which the
    kernel reclaims before it kills: usage includes the cache of every file read. The smallest
    over the cgroup and its ancestors. ``root``, ``self_cgroup``: the cgroup mount and the
    process's cgroup file (default ``/sys/fs/cgroup``, ``/proc/self/cgroup``).
    """
    root = root or CGROUP_ROOT
    own = _own_cgroups(self_cgroup or SELF_CGROUP)
    levels = []
    if (root / "cgroup.controllers").is_file() or (root / "memory.max").is_file():
        levels += [(d, "memory.max", "memory.current", "inactive_file") for d in _ancestors(root, own.get("v2", "/"))]
    v1 = root / "memory"
    if v1.is_dir():
        levels += [
            (d, "memory.limit_in_bytes", "memory.usage_in_bytes", "total_inactive_file")
            for d in _ancestors(v1, own.get("v1", "/"))
        ]
    best = None
    for folder, limit_file, usage_file, inactive in levels:
        limit, usage = _read_int(folder / limit_file), _read_int(folder / usage_file)
        if limit is None or usage is None or limit >= _NO_LIMIT:
            continue
        free = max(0, limit - usage + _stat_value(folder / "memory.stat", inactive))
        best = free if best is None else min(best, free)
    return best


def available_memory() -> tuple[int | None, str]:
    """(bytes of host memory a new allocation can get, where the figure comes from); None when
    nothing can be read."""
    forced = os.environ.get(AVAILABLE_ENV, "").strip()
    if forced:
        return int(forced), AVAILABLE_ENV
    candidates = [
        (meminfo_available(), "MemAvailable in /proc/meminfo"),
        (cgroup_available(), "the memory cgroup's limit"),
    ]
    known = [c for c in candidates if c[0] is not None]
    return min(known, key=lambda c: c[0]) if known else (None, "")


def gpu_free(device) -> int:
    """Free bytes of the chosen CUDA ``device`` (``torch.device``); call after it is set."""
    import torch

    return torch.cuda.mem_get_info(device)[0]


# ---------------------------------------------------------------------------------------------
# the check
# ---------------------------------------------------------------------------------------------


def check_training_memory(
    dataset: DatasetConfig,
    variant: VariantConfig,
    cfg: TrainConfig,
    *,
    device,
    joints: int = 16,
    splits: tuple[tuple[int, int], ...] = (),
    world: int = 1,
) -> MemoryEstimate:
    """Refuse, before the first step, a training job that cannot fit; returns its estimate.

    Raises :class:`NotEnoughMemory` (one line: the estimate by part, what is available, the fix)
    when the estimate exceeds what is available; checks nothing under ``HGBENCH_SKIP_MEMORY_CHECK=1``.
    ``device``: this process's ``torch.device``, once chosen. ``splits``: ``(people, crop_size
    px)`` of the split files it loads. ``world``: DDP ranks, each stepping on its share of
    ``train.batch_size`` and holding the splits, all on this host.
    """
    batch = -(-cfg.batch_size // world)  # the largest share (distributed.shard)
    estimate = training_estimate(dataset, variant, cfg, joints=joints, batch=batch, splits=splits)
    if os.environ.get(SKIP_ENV, "").strip() == "1":
        return estimate
    what = f"variant {variant.name!r} at batch {cfg.batch_size}, {dataset.input_res} px"
    fix = (
        f"lower train.batch_size or datasets.{dataset.name}.input_res, or run on a larger machine "
        f"({SKIP_ENV}=1 skips this check)"
    )
    on_gpu = getattr(device, "type", None) == "cuda"
    if on_gpu:
        free = gpu_free(device)
        if estimate.device_bytes > free:
            raise NotEnoughMemory(
                f"train.batch_size: {what} needs about {_gib(estimate.device_bytes)} of GPU memory (estimate: "
                f"weights and optimiser {_gib(estimate.weights_and_optimizer)}, activations "
                f"{_gib(estimate.activations)}), {_gib(free)} are free on {device}; {fix}"
            )
        parts = f"data {_gib(estimate.data)}, runtime {_gib(estimate.runtime)}"
        need = world * estimate.host_bytes_with_gpu
    else:
        parts, need = estimate.parts(), world * estimate.total
    available, source = available_memory()
    if available is not None and need > available:
        each = f"{world} processes, each " if world > 1 else ""
        raise NotEnoughMemory(
            f"train.batch_size: {what} needs about {_gib(need)} of memory (estimate: {each}{parts}), "
            f"{_gib(available)} are available ({source}); {fix}"
        )
    return estimate


def _gib(n: int) -> str:
    """Bytes for people: GiB with one decimal, MiB under 1 GiB (where 0.0 GiB would say nothing)."""
    if n >= GiB:
        return f"{n / GiB:,.1f} GiB"
    return f"{n / 2**20:,.0f} MiB" if n >= 10 * 2**20 else f"{n / 2**20:.1f} MiB"
