"""The torch data path: processed HDF5 crops → augmented input batches and heatmap targets.

Rows are read from the HDF5 file (whole split in memory when it is small, else lazily per row in
loader workers); augmentation (rotation, scale, flip with left/right swap) runs batched on the
training device with ``affine_grid``/``grid_sample``, so a GPU is not starved by per-image CPU
warps. Frames: crop pixels and input pixels are 0-based continuous (docs/architecture.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import torch
import torch.nn.functional as F

from .schema import open_split

IN_MEMORY_LIMIT = 2 * 1024**3
"""Splits whose crops take fewer bytes than this are loaded whole (fast epochs on small data)."""


class CropDataset(torch.utils.data.Dataset):
    """Rows of a processed split: ``(crop uint8 [C, C, 3], joints float32 [J, 2] crop px, missing bool [J])``.

    The file is validated on open (:class:`~hgbench.data.schema.DataFileError` names it and the fix).
    ``limit`` keeps the first rows only (quick profiles). ``in_memory`` forces (True) or forbids
    (False) loading every crop up front; by default splits under :data:`IN_MEMORY_LIMIT` are loaded.
    """

    def __init__(self, path: str | Path, limit: int | None = None, in_memory: bool | None = None):
        self.path = Path(path)
        with open_split(self.path) as split:
            self.n = len(split) if limit is None else min(limit, len(split))
            self.crop_size = split.crop_size
            self.input_res = split.input_res  # px of the network input the split was prepared for
            self.flip_permutation = list(split.attrs["flip_permutation"])
            self.joint_names = tuple(split.attrs["joint_names"])  # the layout (MPII 16, FLIC 11)
            fields = split.read(["joints", "missing", "visible", "normalizer", "crop_to_image"])
            if in_memory is None:
                in_memory = self.n * 3 * self.crop_size**2 <= IN_MEMORY_LIMIT
            self.images = split.images(range(self.n)) if in_memory else None
        self.joints = fields["joints"][: self.n].astype(np.float32)
        self.missing = fields["missing"][: self.n].astype(bool)
        self.visible = fields["visible"][: self.n].astype(bool)
        self.normalizer = fields["normalizer"][: self.n].astype(np.float64)
        self.crop_to_image = fields["crop_to_image"][: self.n].astype(np.float64)
        self._split = None
        self._h5 = None

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int):
        if self.images is not None:
            image = self.images[i]
        else:
            if self._split is None:  # opened lazily so that each loader worker has its own handle
                self._split = open_split(self.path)
            image = self._split.image(i)
        return (
            torch.from_numpy(np.ascontiguousarray(image)),
            torch.from_numpy(self.joints[i]),
            torch.from_numpy(self.missing[i]),
        )

    def batch(self, rows: np.ndarray) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Rows ``rows`` stacked: crops uint8 [B, C, C, 3], joints float32 [B, J, 2], missing bool [B, J].

        In memory this is one gather (no per-row Python); from the file it reads row by row straight
        into the batch array (each row is one uncompressed HDF5 chunk; ``read_direct`` skips the
        temporary array and selection objects of ``dataset[i]``, ~3× faster per row).
        """
        rows = np.asarray(rows, dtype=np.int64)
        if self.images is not None:
            crops = self.images[rows]
        else:
            if self._h5 is None:  # opened lazily so that each loader worker has its own handle
                self._h5 = h5py.File(self.path, "r")
            images = self._h5["images"]
            crops = np.empty((len(rows), *images.shape[1:]), dtype=np.uint8)
            try:
                for k, i in enumerate(rows):
                    images.read_direct(crops, np.s_[int(i)], np.s_[k])
            except (OSError, ValueError, IndexError) as exc:
                raise RuntimeError(
                    f"{self.path}: cannot read images rows {rows.tolist()[:4]}… ({exc}); "
                    "rerun `hgbench prepare` to rewrite the file"
                ) from None
        return torch.from_numpy(crops), torch.from_numpy(self.joints[rows]), torch.from_numpy(self.missing[rows])


def epoch_batches(n: int, batch_size: int, seed: int, epoch: int) -> list[np.ndarray]:
    """The row indices of every batch of one epoch, a pure function of (seed, epoch).

    Because the order is recomputed rather than drawn from a stateful generator, a resumed run
    only needs the epoch and the number of batches already done. The last partial batch is
    dropped when at least one full batch exists (BatchNorm dislikes tiny batches).
    """
    order = np.random.default_rng([seed, epoch]).permutation(n)
    full = n // batch_size
    count = full if full > 0 else 1
    return [order[k * batch_size : (k + 1) * batch_size] for k in range(count)]


def step_generator(seed: int, iteration: int) -> torch.Generator:
    """Generator for the augmentation of one training step, a pure function of (seed, iteration)."""
    state = np.random.SeedSequence([seed, iteration]).generate_state(2, dtype=np.uint64)
    return torch.Generator().manual_seed(int(state[0] >> np.uint64(1)))


class _Batches(torch.utils.data.Dataset):
    """Item k = batch k of a list of row-index arrays (lets DataLoader workers read whole batches)."""

    def __init__(self, data: CropDataset, batches: list[np.ndarray]):
        self.data, self.batches = data, batches

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, k: int):
        return self.data.batch(self.batches[k])


def iterate_batches(data: CropDataset, batches: list[np.ndarray], workers: int):
    """Yield ``data.batch(b)`` for each ``b`` in order; with ``workers`` > 0 read ahead in processes."""
    if workers == 0:
        for rows in batches:
            yield data.batch(rows)
        return
    loader = torch.utils.data.DataLoader(
        _Batches(data, batches),
        batch_size=None,
        shuffle=False,
        num_workers=workers,
        prefetch_factor=4,
        pin_memory=torch.cuda.is_available(),
    )
    yield from loader


@dataclass(frozen=True)
class Augmentation:
    """Ranges of the random augmentation (uniform, like the official PyTorch code)."""

    rotation: float = 0.0  # ± degrees
    scale: float = 0.0  # zoom factor in [1 - scale, 1 + scale]
    flip: bool = False
    color_jitter: float = 0.0  # per-channel gain in [1 - color_jitter, 1 + color_jitter]


def sample_transforms(
    batch: int, aug: Augmentation, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Random (angle radians [B], scale [B], flip bool [B], colour gains [B, 3]) from ``generator``."""
    u = torch.rand(batch, 6, generator=generator, dtype=torch.float64)
    angle = (2 * u[:, 0] - 1) * math.radians(aug.rotation)
    scale = 1 + (2 * u[:, 1] - 1) * aug.scale
    flip = (u[:, 2] < 0.5) & aug.flip
    gains = 1 + (2 * u[:, 3:] - 1) * aug.color_jitter
    return angle, scale, flip, gains


def jitter_colours(images: torch.Tensor, gains: torch.Tensor) -> torch.Tensor:
    """Multiply each RGB channel by its gain and clip to [0, 1] (the Torch original's colour jitter).

    images: float [B, 3, R, R] in [0, 1]; gains: [B, 3]. Returns a tensor of the same shape.
    """
    g = gains.to(device=images.device, dtype=images.dtype)[:, :, None, None]
    return (images * g).clamp_(0, 1)


def warp_batch(
    crops: torch.Tensor,
    joints: torch.Tensor,
    missing: torch.Tensor,
    input_res: int,
    angle: torch.Tensor,
    scale: torch.Tensor,
    flip: torch.Tensor,
    flip_permutation: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Warp stored crops to network inputs and move the joints with them.

    crops: uint8 [B, C, C, 3] on the target device; joints: [B, J, 2] crop px; missing: [B, J].
    The input pixel p_i samples crop pixel ``c_c + s · R(angle) · M · (p_i − c_i)`` where c are
    the image centres ((size − 1)/2) and M mirrors x when ``flip``. Returns images float [B, 3,
    R, R] in [0, 1], joints [B, J, 2] in input px and missing [B, J], both with left/right
    channels swapped for flipped samples.
    """
    b, c = crops.shape[0], crops.shape[1]
    device = crops.device
    cos, sin = torch.cos(angle), torch.sin(angle)
    mirror = torch.where(flip, -1.0, 1.0).to(torch.float64)
    # A = s · R · M, the input→crop linear map in pixels.
    a = (
        torch.stack(
            [
                torch.stack([cos * mirror, -sin], dim=1),
                torch.stack([sin * mirror, cos], dim=1),
            ],
            dim=1,
        )
        * scale[:, None, None]
    )
    theta = torch.zeros(b, 2, 3, dtype=torch.float64)
    theta[:, :, :2] = a * (input_res / c)
    grid = F.affine_grid(
        theta.to(device=device, dtype=torch.float32), [b, 3, input_res, input_res], align_corners=False
    )
    images = crops.permute(0, 3, 1, 2).float().div_(255)
    images = F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)

    centre_c, centre_i = (c - 1) / 2, (input_res - 1) / 2
    inv = torch.linalg.inv(a).to(device=device, dtype=torch.float32)
    out = torch.einsum("bij,bkj->bki", inv, joints.to(device) - centre_c) + centre_i
    perm = flip_permutation.to(device)
    flip = flip.to(device)
    out = torch.where(flip[:, None, None], out[:, perm], out)
    missing = torch.where(flip[:, None], missing.to(device)[:, perm], missing.to(device))
    return images, out, missing


def centre_inputs(crops: torch.Tensor, input_res: int) -> torch.Tensor:
    """Evaluation inputs: the central ``input_res``² window of each crop, float [B, 3, R, R] in [0, 1].

    No resampling happens: the stored crop has the network's pixel scale. Requires even margins
    (crop_size − input_res even), which ``prepare`` guarantees.
    """
    c = crops.shape[1]
    o = (c - input_res) // 2
    return crops[:, o : o + input_res, o : o + input_res].permute(0, 3, 1, 2).float().div_(255)
