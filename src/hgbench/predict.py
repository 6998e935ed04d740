"""Inference: flip test, ¼-cell shift, back-projection to original image pixels (floats).

    hgbench predict --params params/demo.yaml --dataset synthetic --checkpoint models/synthetic/hg2x2/s0/model.pt \
        --data data/processed/synthetic/valid.h5 --out results/synthetic/hg2x2/s0/predictions.h5

Every output of the network (each stack; HG-Int's inner heads too) is decoded, so evaluation can
report accuracy at each intermediate stage (the paper's Fig. 9). Predictions are written in the
ground truth's native frame (1-based for the MPII layout), unrounded.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import torch

from .data.dataset import CropDataset, centre_inputs
from .data.schema import set_str_attr
from .heatmaps import decode_heatmaps
from .iofiles import atomic_path
from .inference import load_model, resolve_device


@torch.no_grad()
def predict_heatmaps(model: torch.nn.Module, images: torch.Tensor, flip_permutation: torch.Tensor,
                     flip_test: bool) -> torch.Tensor:
    """Heatmaps [B, O, J, H, W] for images [B, 3, R, R]; with ``flip_test`` the average of the
    image's and its mirror's heatmaps (mirrored back, left/right channels swapped)."""
    hm = model(images).float()
    if flip_test:
        flipped = model(images.flip(-1)).float().flip(-1)[:, :, flip_permutation]
        hm = (hm + flipped) / 2
    return hm


def cells_to_native(uv: np.ndarray, crop_to_image: np.ndarray, crop_size: int, input_res: int,
                    output_res: int) -> np.ndarray:
    """Heatmap cells of centre-crop inputs → native image pixels.

    uv: [N, ..., J, 2] cells (0-based); crop_to_image: [N, 2, 3] (native = A · [x, y, 1]).
    The network input is the central ``input_res``² window of the stored crop, so crop px =
    input px + (crop_size − input_res)/2. Returns [N, ..., J, 2] float64.
    """
    stride = input_res / output_res
    crop_px = (np.asarray(uv, np.float64) + 0.5) * stride - 0.5 + (crop_size - input_res) / 2
    a = np.asarray(crop_to_image, np.float64)
    lead = (slice(None),) + (None,) * (crop_px.ndim - 2)
    return np.einsum("nij,n...j->n...i", a[:, :, :2], crop_px) + a[lead + (slice(None),)][..., 2]


def predict(*, checkpoint: Path, data_file: Path, out: Path, flip_test: bool, batch_size: int,
            device: str = "auto", threads: int | None = None, run: dict | None = None) -> np.ndarray:
    """Predict every row of a processed split; writes ``out`` and returns ``preds`` [N, J, 2]."""
    if threads:
        torch.set_num_threads(threads)
    dev = resolve_device(device)
    model = load_model(checkpoint, dev)
    data = CropDataset(data_file)
    input_res, output_res = model.info.input_res, model.info.output_res
    if data.crop_size < input_res:
        raise ValueError(f"{data_file}: crops of {data.crop_size} px are smaller than the model's input {input_res} px")
    perm = torch.as_tensor(data.flip_permutation, device=dev)
    cells = []
    for start in range(0, len(data), batch_size):
        idx = range(start, min(start + batch_size, len(data)))
        crops = torch.stack([data[i][0] for i in idx]).to(dev)
        hm = predict_heatmaps(model, centre_inputs(crops, input_res), perm, flip_test)
        cells.append(decode_heatmaps(hm)[0].double().cpu().numpy())
    native = cells_to_native(np.concatenate(cells), data.crop_to_image, data.crop_size, input_res, output_res)
    # Fletcher-32 checksums and the HDF5 1.10 format's metadata checksums: a damaged file is
    # reported by evaluate instead of being scored (docs/reliability.md).
    with atomic_path(out) as tmp, h5py.File(tmp, "w", libver="v110") as f:
        f.create_dataset("preds", data=native[:, -1], fletcher32=bool(native.size), chunks=True if native.size else None)
        f.create_dataset("preds_stack", data=native, fletcher32=bool(native.size), chunks=True if native.size else None)
        f.attrs["flip_test"] = flip_test
        set_str_attr(f, "checkpoint", str(checkpoint))  # fixed-length strings: see schema.fixed_utf8
        set_str_attr(f, "frame", "native (MPII layout: 1-based MATLAB pixels)")
        for key, value in (run or {}).items():
            if isinstance(value, str):
                set_str_attr(f, key, value)
            else:
                f.attrs[key] = value
    return native[:, -1]
