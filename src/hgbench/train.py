"""Training: MSE on Gaussian heatmaps for every supervised output, RMSprop, per-epoch log.

    hgbench train --params params/demo.yaml --dataset synthetic --variant hg2x2 --seed 0 \
        --data data/processed/synthetic --out models/synthetic/hg2x2/s0

Writes ``model.pt`` (final weights + the config that built them), ``last.pt`` (resumable state,
rewritten atomically after every epoch) and ``log.csv`` (one row per epoch, columns in
docs/architecture.md). A rerun with ``last.pt`` present resumes after its epoch.
"""

from __future__ import annotations

import csv
import math
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from .config import DatasetConfig, TrainConfig, VariantConfig
from .data.dataset import Augmentation, CropDataset, centre_inputs, sample_transforms, warp_batch
from .describe import model_config
from .heatmaps import cells_to_pixels, decode_heatmaps, heatmap_targets, pixels_to_cells
from .iofiles import atomic_path
from .joints import ABLATION_JOINTS, MPII_JOINTS, joints_of
from .metrics import pckh_distances
from .model import ModelConfig, StackedHourglass

ABLATION_IDX = [MPII_JOINTS.index(j) for j in ABLATION_JOINTS]


def resolve_device(name: str) -> torch.device:
    """``auto`` → CUDA when available, else CPU; ``cuda`` without a GPU is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' was asked for but torch sees no CUDA GPU; use --device auto or cpu")
    return torch.device(name)


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


def _set_lr(optimizer: torch.optim.Optimizer, cfg: TrainConfig, epoch: int) -> float:
    lr = cfg.lr * cfg.lr_drop_factor ** sum(epoch >= e for e in cfg.lr_drop_epochs)
    for group in optimizer.param_groups:
        group["lr"] = lr
    return lr


def make_optimizer(cfg: TrainConfig, model: torch.nn.Module) -> torch.optim.Optimizer:
    if cfg.optimizer == "rmsprop":
        # The Torch original: alpha 0.99, eps 1e-8, no momentum, no weight decay.
        return torch.optim.RMSprop(model.parameters(), lr=cfg.lr, alpha=0.99, eps=1e-8)
    return torch.optim.Adam(model.parameters(), lr=cfg.lr)


@torch.no_grad()
def validate(model: StackedHourglass, data: CropDataset, input_res: int, output_res: int,
             device: torch.device, batch_size: int) -> np.ndarray:
    """PCKh@0.5 (%) on the ablation joints for every output, centre crops, no flip. Returns [O]."""
    model.eval()
    stride = input_res / output_res
    offset = (data.crop_size - input_res) / 2
    preds = []
    for start in range(0, len(data), batch_size):
        idx = range(start, min(start + batch_size, len(data)))
        crops = torch.stack([data[i][0] for i in idx]).to(device)
        hm = model(centre_inputs(crops, input_res)).float()
        uv, _ = decode_heatmaps(hm)
        preds.append((cells_to_pixels(uv, stride) + offset).cpu().numpy())
    preds = np.concatenate(preds)  # [N, O, J, 2] crop px
    # Head size in crop px: the crop→image map is a uniform scale (no rotation in prepare).
    pixel = np.linalg.norm(data.crop_to_image[:, :, 0], axis=1)
    head = data.normalizer / pixel
    acc = []
    for o in range(preds.shape[1]):
        d = pckh_distances(preds[:, o].astype(np.float64), data.joints.astype(np.float64), data.missing, head)
        d = d[:, ABLATION_IDX]
        scored = ~np.isnan(d)
        acc.append(100.0 * (d[scored] <= 0.5).mean() if scored.any() else float("nan"))
    model.train()
    return np.array(acc)


def _save(obj: dict, path: Path) -> None:
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def train(
    *, dataset: DatasetConfig, variant: VariantConfig, cfg: TrainConfig, seed: int,
    train_file: Path, valid_file: Path, out_dir: Path, device: str = "auto",
    log=print,
) -> Path:
    """Train one variant with one seed; returns the path of ``model.pt``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    dev = resolve_device(device)
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(seed)
    mconf = model_config(variant, len(joints_of(dataset.source)))
    # channels-last is ~40 % faster for these convolutions on CPU (and on tensor cores).
    model = StackedHourglass(mconf).to(dev, memory_format=torch.channels_last)
    optimizer = make_optimizer(cfg, model)
    supervised = supervised_outputs(variant, mconf)
    names = output_names(mconf)

    train_data = CropDataset(train_file, cfg.max_train_samples)
    valid_data = CropDataset(valid_file, cfg.max_valid_samples)
    aug = Augmentation(rotation=cfg.rotation, scale=cfg.scale, flip=cfg.flip)
    flip_perm = torch.as_tensor(train_data.flip_permutation)
    stride = dataset.input_res / dataset.output_res
    generator = torch.Generator().manual_seed(seed)

    log_path, last_path = out_dir / "log.csv", out_dir / "last.pt"
    first_epoch, rows = 0, []
    if last_path.exists():
        state = torch.load(last_path, map_location=dev, weights_only=True)
        if state["model_config"] != asdict(mconf) or state["seed"] != seed:
            raise RuntimeError(f"{last_path} was written for another model or seed; delete it to start over")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        generator.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])
        first_epoch, rows = state["epoch"], state["log"]
        log(f"resuming {out_dir} after epoch {first_epoch}")

    loader = torch.utils.data.DataLoader(
        train_data, batch_size=cfg.batch_size, shuffle=True, drop_last=len(train_data) >= cfg.batch_size,
        num_workers=cfg.workers, generator=generator, persistent_workers=cfg.workers > 0,
    )
    iteration = first_epoch * len(loader)
    model.train()
    for epoch in range(first_epoch, cfg.epochs):
        lr = _set_lr(optimizer, cfg, epoch)
        t0, wait = time.perf_counter(), 0.0
        losses, seen = np.zeros(mconf.outputs), 0
        t_data = time.perf_counter()
        for crops, joints, missing in loader:
            wait += time.perf_counter() - t_data
            angle, scale, flip = sample_transforms(crops.shape[0], aug, generator)
            images, joints_px, missing = warp_batch(
                crops.to(dev), joints, missing, dataset.input_res, angle, scale, flip, flip_perm
            )
            targets = heatmap_targets(pixels_to_cells(joints_px, stride), ~missing, dataset.output_res, cfg.sigma)
            out = model(images.contiguous(memory_format=torch.channels_last))
            per_output = ((out - targets[:, None]) ** 2).mean(dim=(0, 2, 3, 4))
            loss = per_output[supervised].sum()
            if not torch.isfinite(loss):
                raise FloatingPointError(
                    f"loss became {loss.item()} at epoch {epoch + 1}, iteration {iteration}; "
                    f"the last good state is {last_path} (try a lower lr)"
                )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses += per_output.detach().cpu().numpy() * crops.shape[0]
            seen += crops.shape[0]
            iteration += 1
            t_data = time.perf_counter()
        wall = time.perf_counter() - t0
        acc = validate(model, valid_data, dataset.input_res, dataset.output_res, dev, cfg.batch_size * 2)
        losses /= max(seen, 1)
        row = {"epoch": epoch + 1, "iteration": iteration, "lr": lr,
               "train_loss": float(losses[supervised].sum())}
        row.update({f"train_loss_{n}": float(v) for n, v in zip(names, losses)})
        row["valid_acc"] = float(acc[-1])
        row.update({f"valid_acc_{n}": float(v) for n, v in zip(names, acc)})
        row.update(images_per_s=seen / wall, data_wait_share=wait / wall, wall_s=wall)
        rows.append(row)
        log(f"epoch {epoch + 1}/{cfg.epochs}  loss {row['train_loss']:.3e}  valid PCKh@0.5 (ablation joints) "
            f"{row['valid_acc']:.1f}%  {row['images_per_s']:.0f} img/s  data wait {100 * row['data_wait_share']:.0f}%")
        _write_log(rows, log_path)
        _save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "generator": generator.get_state(),
               "torch_rng": torch.get_rng_state(), "epoch": epoch + 1, "log": rows, "seed": seed,
               "model_config": asdict(mconf)}, last_path)

    model_path = out_dir / "model.pt"
    _save({"model": model.state_dict(), "model_config": asdict(mconf), "variant": variant.name,
           "supervision": variant.supervision, "dataset": dataset.name, "input_res": dataset.input_res,
           "output_res": dataset.output_res, "seed": seed, "epochs": cfg.epochs}, model_path)
    return model_path


def _write_log(rows: list[dict], path: Path) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        for r in rows:
            writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) and math.isfinite(v) else v) for k, v in r.items()})


def load_model(path: Path, device: torch.device) -> tuple[StackedHourglass, dict]:
    """Model and metadata from ``model.pt`` (loaded with ``weights_only=True``)."""
    try:
        state = torch.load(path, map_location=device, weights_only=True)
        model = StackedHourglass(ModelConfig(**state["model_config"])).to(device)
        model.load_state_dict(state["model"])
    except (OSError, RuntimeError, KeyError, EOFError) as exc:
        raise RuntimeError(f"checkpoint {path} cannot be read ({exc}); delete it and rerun `hgbench train`") from None
    model.eval()
    return model, state
