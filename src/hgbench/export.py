"""``hgbench export``: a trained model as ONNX or safetensors, for deployment without hgbench.

    hgbench export --checkpoint models/demo/synthetic/hg2x1/s0/model.pt --format onnx --out hg2x1.onnx
    hgbench export --checkpoint models/demo/synthetic/hg2x1/s0/model.pt --format safetensors --out hg2x1.safetensors

**ONNX** (the ``export`` extra: onnx, onnxruntime): opset :data:`ONNX_OPSET` (17), written by
torch's TorchScript-based exporter (``dynamo=False``: it needs no onnxscript, and exports this
convolution-only network exactly). Input ``images`` float32 [batch, 3, R, R] (RGB in [0, 1], the
central R² window of a crop), output ``heatmaps`` float32 [batch, O, J, R/4, R/4] (O supervised
outputs, the last is the final stack); the batch axis is dynamic. The model's metadata
(``metadata_props``) holds ``hgbench_config`` (the JSON of the safetensors config below, plus
``onnx_opset``) and ``onnx_opset``. After writing, the file is run with onnxruntime on a random
batch and compared with PyTorch (max abs heatmap difference, printed; over
:data:`ONNX_TOLERANCE` is an error).

**safetensors** (core install): the weights (state dict; no pickle) and ``<name>.json`` beside
them, :data:`hgbench.inference.CONFIG_FORMAT`: ``model_config`` (``ModelConfig`` fields),
``joint_names``, ``flip_permutation``, ``input_res``, ``output_res``, ``crop_margin``,
``hourglass_adjust``, ``variant``, ``dataset``, ``seed``, ``supervision``. The same JSON is in the
file's header (``__metadata__["hgbench_config"]``). :func:`hgbench.load_model` and
``hgbench infer`` read it; so does plain code (docs/inference.md)::

    cfg = json.load(open("hg2x1.json"))
    net = StackedHourglass(ModelConfig(**cfg["model_config"]))
    net.load_state_dict(safetensors.torch.load_file("hg2x1.safetensors"))
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from pathlib import Path

import torch

from . import __version__
from .inference import config_path, load_model
from .iofiles import atomic_path

ONNX_OPSET = 17
"""ONNX opset of exported models (ONNX 1.12+, onnxruntime 1.12+)."""
ONNX_TOLERANCE = 1e-3
"""Largest max-abs heatmap difference between onnxruntime and PyTorch accepted by the check."""


MIN_OPSET = 9
"""Oldest opset that holds the network: opsets 7 and 8 cannot express its nearest upsampling."""
CROP_MARGINS = (1.0, 2.0)
"""Range of ``--crop-margin``: the params schema's ``datasets.*.crop_margin``."""


class ExportError(ValueError):
    """An export cannot be done as asked; the message names the file and the fix."""


def max_opset() -> int:
    """Newest opset torch's TorchScript exporter writes (23 in torch 2.13)."""
    try:
        from torch.onnx import _constants

        return int(_constants.ONNX_MAX_OPSET)
    except (ImportError, AttributeError):  # a private module: fall back to what every torch >= 2.1 writes
        return 17


@contextlib.contextmanager
def _stdout_silenced():
    """File descriptor 1 sent to /dev/null (C++ output too) for the duration of the block."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 1)
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def _check_paths(checkpoint: Path, *outputs: Path) -> None:
    """No output may be the checkpoint: ``--out model.pt`` replaced the trained model with ONNX."""
    for out in outputs:
        if out.resolve() == checkpoint.resolve():
            raise ExportError(
                f"--out {out} is the checkpoint being exported: it would be replaced; give another --out path"
            )


def _config(model, checkpoint: Path, crop_margin: float | None) -> dict:
    config = model.info.config()
    if crop_margin is not None:
        lo, hi = CROP_MARGINS
        if not lo <= crop_margin <= hi:  # NaN fails too; infer cuts crops of input_res × crop_margin px
            raise ExportError(
                f"--crop-margin {crop_margin} is outside [{lo:g}, {hi:g}] (datasets.*.crop_margin of the "
                f"params schema); give the training dataset's crop_margin, or leave it out"
            )
        config["crop_margin"] = float(crop_margin)
    config["exported_from"] = str(checkpoint)
    config["hgbench_version"] = __version__
    return config


def export_safetensors(checkpoint: Path, out: Path, crop_margin: float | None = None) -> tuple[Path, Path]:
    """``out`` (.safetensors) and its config ``out.with_suffix('.json')``, each written atomically."""
    from safetensors.torch import save_file

    checkpoint, out = Path(checkpoint), Path(out)
    if out.suffix.lower() != ".safetensors":
        raise ExportError(
            f"--out {out}: a safetensors export is named <name>.safetensors (its config is written "
            f"beside it as <name>.json); give a .safetensors path"
        )
    side = config_path(out)
    _check_paths(checkpoint, out, side)
    model = load_model(checkpoint, "cpu")
    config = _config(model, checkpoint, crop_margin)
    weights = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:
        save_file(weights, str(tmp), metadata={"format": config["format"], "hgbench_config": json.dumps(config)})
    with atomic_path(side) as tmp:
        tmp.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    return out, side


def export_onnx(
    checkpoint: Path, out: Path, *, opset: int = ONNX_OPSET, crop_margin: float | None = None, verify: bool = True
) -> tuple[Path, float | None]:
    """Write ``out`` (ONNX, dynamic batch); return it and the onnxruntime-vs-PyTorch max abs
    difference on a random batch of 2 (None without ``verify``)."""
    import warnings

    import onnx

    checkpoint, out = Path(checkpoint), Path(out)
    if not MIN_OPSET <= opset <= max_opset():
        # torch refuses these only after tracing, printing the whole graph (hundreds of lines) to stdout
        raise ExportError(
            f"--opset {opset}: this export writes opsets {MIN_OPSET} to {max_opset()}; give one of them "
            f"(default {ONNX_OPSET})"
        )
    _check_paths(checkpoint, out)
    model = load_model(checkpoint, "cpu")
    info = model.info
    config = {**_config(model, checkpoint, crop_margin), "onnx_opset": opset}
    example = torch.rand(1, 3, info.input_res, info.input_res, generator=torch.Generator().manual_seed(0))
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:
        # When it fails, the exporter's C++ side prints the traced graph (hundreds of lines) to the
        # process's stdout; its error is kept, in one line.
        with warnings.catch_warnings(), _stdout_silenced():
            # The TorchScript exporter is deprecated in favour of the dynamo one, which needs onnxscript
            # and gains nothing for a plain convolutional network.
            warnings.simplefilter("ignore")
            try:
                torch.onnx.export(
                    model,
                    (example,),
                    str(tmp),
                    dynamo=False,
                    opset_version=opset,
                    input_names=["images"],
                    output_names=["heatmaps"],
                    dynamic_axes={"images": {0: "batch"}, "heatmaps": {0: "batch"}},
                )
            except (RuntimeError, ValueError, TypeError) as exc:  # torch.onnx.errors.* derive from these
                first = next((line for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
                raise ExportError(
                    f"{checkpoint}: torch cannot export it as ONNX opset {opset} ({first[:300]}); try another "
                    f"--opset (default {ONNX_OPSET}), or --format safetensors"
                ) from None
        proto = onnx.load(str(tmp))
        onnx.helper.set_model_props(proto, {"hgbench_config": json.dumps(config), "onnx_opset": str(opset)})
        proto.doc_string = (
            f"hgbench {info.variant}: images float32 [batch, 3, {info.input_res}, {info.input_res}] RGB "
            f"in [0, 1] -> heatmaps float32 [batch, {info.model_config.outputs}, "
            f"{info.model_config.joints}, {info.output_res}, {info.output_res}] (last = final stack)"
        )
        onnx.checker.check_model(proto)
        onnx.save(proto, str(tmp))
        diff = verify_onnx(model, Path(tmp)) if verify else None
        if diff is not None and diff > ONNX_TOLERANCE:
            raise ExportError(
                f"{out}: onnxruntime's heatmaps differ from PyTorch's by {diff:.2e} (more than "
                f"{ONNX_TOLERANCE:g}); not written — report this with the checkpoint's variant"
            )
    return out, diff


@torch.no_grad()
def verify_onnx(model: torch.nn.Module, path: Path, batch: int = 2, seed: int = 0) -> float:
    """Max abs difference of heatmaps between onnxruntime (CPU) and ``model`` on a random batch."""
    import onnxruntime as ort

    res = model.info.input_res
    x = torch.rand(batch, 3, res, res, generator=torch.Generator().manual_seed(seed))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(["heatmaps"], {"images": x.numpy()})[0]
    want = model(x.to(next(model.parameters()).device)).float().cpu().numpy()
    return float(abs(got - want).max())
