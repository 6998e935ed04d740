"""Inference: flip test, ¼-cell shift, back-projection to original image pixels (floats).

    hgbench predict --params params/demo.yaml --checkpoint models/demo/synthetic/hg2x1/s0/model.pt \
        --data data/processed/demo/synthetic/valid.h5 --out results/demo/synthetic/hg2x1/s0/predictions.h5

Every output of the network (each stack; HG-Int's inner heads too) is decoded, so evaluation can
report accuracy at each intermediate stage (the paper's Fig. 9). Predictions are written in the
ground truth's native frame (1-based for the MPII layout), unrounded; the file's layout is in
:mod:`hgbench.runs`.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import torch

from .data.dataset import CropDataset
from .data.schema import FRAME_OFFSET
from .inference import ModelInfo, cells_to_native, decode_rows, load_model, predict_heatmaps, resolve_device
from .runs import write_predictions

__all__ = ["cells_to_native", "predict", "predict_heatmaps"]


def check_fit(data_file: Path, data: CropDataset, info: ModelInfo, checkpoint: Path) -> None:
    """The split was prepared for the model's input size and joints (ValueError naming both and
    the fix): a 64-px model must not silently predict 128-px crops, nor FLIC's joints MPII's."""
    fix = "predict a split prepared with the model's profile, or the model trained on this one"
    if data.input_res != info.input_res:
        raise ValueError(
            f"{data_file} was prepared for input_res {data.input_res} px, but {checkpoint} takes "
            f"{info.input_res} px; {fix}"
        )
    if tuple(data.joint_names) != tuple(info.joint_names):
        raise ValueError(
            f"{data_file} has {len(data.joint_names)} joints ({data.joint_names[0]}…), {checkpoint} predicts "
            f"{len(info.joint_names)} ({info.joint_names[0]}…); {fix}"
        )
    if data.crop_size < info.input_res:
        raise ValueError(
            f"{data_file}: crops of {data.crop_size} px are smaller than the model's input {info.input_res} px; {fix}"
        )


def predict(
    *,
    checkpoint: Path,
    data_file: Path,
    out: Path,
    flip_test: bool,
    batch_size: int,
    device: str = "auto",
    threads: int | None = None,
    run: dict | None = None,
) -> np.ndarray:
    """Predict every row of a processed split; writes ``out`` and returns ``preds`` [N, J, 2]."""
    return predict_splits(
        checkpoint=checkpoint,
        splits=[(data_file, out)],
        flip_test=flip_test,
        batch_size=batch_size,
        device=device,
        threads=threads,
        run=run,
    )[0]


def predict_splits(
    *,
    checkpoint: Path,
    splits: list[tuple[Path, Path]],
    flip_test: bool,
    batch_size: int,
    device: str = "auto",
    threads: int | None = None,
    run: dict | None = None,
) -> list[np.ndarray]:
    """Predict several processed splits with one model load: ``splits`` = [(split file, output
    file), ...]. Every split is checked against the model and no output may be an input (or
    another output) before anything is predicted. Returns each split's ``preds`` [N, J, 2]."""
    inputs = {Path(checkpoint).resolve(), *(Path(d).resolve() for d, _ in splits)}
    outs = [Path(o).resolve() for _, o in splits]
    for (_, out), resolved in zip(splits, outs):
        if resolved in inputs or outs.count(resolved) > 1:
            raise ValueError(f"output {out} is an input of this prediction or given twice; give another --out")
    if threads:
        torch.set_num_threads(threads)
    dev = resolve_device(device)
    model = load_model(checkpoint, dev)
    data = [CropDataset(d) for d, _ in splits]
    for (data_file, _), split in zip(splits, data):
        check_fit(data_file, split, model.info, checkpoint)
    return [
        _predict_split(model, split, data_file, out, checkpoint, flip_test, batch_size, run)
        for (data_file, out), split in zip(splits, data)
    ]


def _predict_split(
    model,
    data: CropDataset,
    data_file: Path,
    out: Path,
    checkpoint: Path,
    flip_test: bool,
    batch_size: int,
    run: dict | None,
) -> np.ndarray:
    dev = next(model.parameters()).device
    input_res, output_res = model.info.input_res, model.info.output_res
    perm = torch.as_tensor(data.flip_permutation, device=dev) if flip_test else None
    uv, _ = decode_rows(
        model, lambda rows: data.batch(rows)[0], len(data), batch_size, input_res, flip_permutation=perm
    )
    native = cells_to_native(uv.double().numpy(), data.crop_to_image, data.crop_size, input_res, output_res)
    with h5py.File(data_file, "r") as f:
        frame_offset = int(f.attrs.get("frame_offset", FRAME_OFFSET))
    write_predictions(out, native, flip_test=flip_test, checkpoint=str(checkpoint), frame_offset=frame_offset, run=run)
    return native[:, -1]
