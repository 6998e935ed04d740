"""Loading a trained model for inference, without any training code.

Two file formats are read, both without running code from the file:

- ``model.pt``, written by ``hgbench train`` (``torch.load(weights_only=True)``, its sha256
  content digest checked: :func:`hgbench.checkpoint.read_model_file`);
- ``<name>.safetensors`` with ``<name>.json`` beside it, written by ``hgbench export --format
  safetensors`` (:mod:`hgbench.export`): the weights in the safetensors format (no pickle) and a
  plain JSON config, :data:`CONFIG_FORMAT`. The same JSON is also embedded in the safetensors
  header (``__metadata__["hgbench_config"]``), used when the file beside it is missing.

:func:`load_model` returns the :class:`~hgbench.model.StackedHourglass` in eval mode with an
``info`` attribute (:class:`ModelInfo`): everything inference needs besides the weights (input and
output resolution, joint names, flip permutation, crop rule). This module imports the model, the
checkpoint reader, the joint tables and the crop/heatmap geometry only; no training code.

It also holds the one inference loop (:func:`decode_crops`, :func:`decode_rows`: centre crop →
network, optionally with the flip test → decoded heatmap peaks), shared by ``hgbench predict``,
training-time validation and ``hgbench infer``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch

from .checkpoint import CheckpointError, read_model_file
from .data.dataset import centre_inputs
from .heatmaps import decode_heatmaps
from .kinds import DatasetKind, kind_for_joint_count, known_layouts
from .model import ModelConfig, StackedHourglass
from .precision import autocast

CONFIG_FORMAT = "hgbench-safetensors/1"
"""``format`` of the JSON config beside an exported ``.safetensors`` file."""

DEFAULT_CROP_MARGIN = 1.25
"""Crop margin assumed when a checkpoint does not record its dataset's (``model.pt`` of hgbench
0.1 does not). The network only ever sees the central ``input_res``² window of a crop, so the
margin changes the unused border, not a prediction; it is recorded for the crop geometry of
``prepare`` (every CPU profile uses 1.25, the paper profile 1.5)."""


def resolve_device(name: str | torch.device) -> torch.device:
    """``auto`` → CUDA when available, else CPU; ``cuda`` without a GPU is an error."""
    if isinstance(name, torch.device):
        return name
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' was asked for but torch sees no CUDA GPU; use --device auto or cpu")
    return torch.device(name)


@dataclass(frozen=True)
class ModelInfo:
    """What inference needs to know about a model besides its weights.

    ``input_res``: side of the network input in px (RGB, values in [0, 1]); ``output_res``: side
    of a heatmap in cells (``input_res / 4``). ``joint_names``/``flip_permutation``: the joint
    axis of the heatmaps, and joint ``i`` of a mirrored image is joint ``flip_permutation[i]``.
    ``hourglass_adjust``: MPII layout; a person given as centre/scale gets the hourglass
    adjustment of ``prepare`` (``c.y += 15·s; s *= 1.25``); FLIC: the box as given.
    ``crop_margin``: the dataset's stored-crop margin (see :data:`DEFAULT_CROP_MARGIN`).
    """

    model_config: ModelConfig
    input_res: int
    output_res: int
    joint_names: tuple[str, ...]
    flip_permutation: tuple[int, ...]
    hourglass_adjust: bool
    crop_margin: float = DEFAULT_CROP_MARGIN
    variant: str = ""
    dataset: str = ""
    seed: int | None = None
    supervision: str | None = None
    source: str = ""
    """The file the model was loaded from."""

    def config(self) -> dict:
        """The plain-JSON config written beside an exported model (:data:`CONFIG_FORMAT`)."""
        return {
            "format": CONFIG_FORMAT,
            "model_config": asdict(self.model_config),
            "input_res": self.input_res,
            "output_res": self.output_res,
            "joint_names": list(self.joint_names),
            "flip_permutation": list(self.flip_permutation),
            "hourglass_adjust": self.hourglass_adjust,
            "crop_margin": self.crop_margin,
            "variant": self.variant,
            "dataset": self.dataset,
            "seed": self.seed,
            "supervision": self.supervision,
            "input": "images float32 [B, 3, input_res, input_res], RGB in [0, 1], the central input_res² "
            "window of the crop (docs/inference.md)",
            "output": "heatmaps float32 [B, O, J, output_res, output_res]: one set per supervised output, "
            "the last one is the final stack",
        }


def _kind(joints: int, path: Path) -> DatasetKind:
    """The dataset kind of a model with ``joints`` outputs: ``model.pt`` records no joint names, so its
    joint count names the kind (:func:`hgbench.kinds.kind_for_joint_count`)."""
    kind = kind_for_joint_count(joints)
    if kind is None:
        raise CheckpointError(f"{path} has {joints} joints; only {known_layouts()} layouts are known")
    return kind


def info_from_state(state: dict, path: Path, crop_margin: float | None = None) -> ModelInfo:
    """:class:`ModelInfo` of a ``model.pt`` state (keys :data:`hgbench.checkpoint.MODEL_KEYS`).

    Joint names, flip permutation and crop margin are taken from the state when it records them,
    else from the layout its joint count implies (16: MPII, 11: FLIC) and ``crop_margin`` (else
    :data:`DEFAULT_CROP_MARGIN`).
    """
    try:
        mconf = ModelConfig(**state["model_config"])
    except TypeError as exc:
        raise CheckpointError(f"{path}: model_config does not describe a StackedHourglass ({exc})") from None
    kind = _kind(mconf.joints, path)
    names, flip, adjust = kind.joints, kind.flip, kind.hourglass_adjust
    margin = state.get("crop_margin", crop_margin if crop_margin is not None else DEFAULT_CROP_MARGIN)
    return ModelInfo(
        model_config=mconf,
        input_res=int(state["input_res"]),
        output_res=int(state["output_res"]),
        joint_names=tuple(state.get("joint_names", names)),
        flip_permutation=tuple(int(i) for i in state.get("flip_permutation", flip)),
        hourglass_adjust=bool(state.get("hourglass_adjust", adjust)),
        crop_margin=float(margin),
        variant=str(state.get("variant", "")),
        dataset=str(state.get("dataset", "")),
        seed=None if state.get("seed") is None else int(state["seed"]),
        supervision=state.get("supervision"),
        source=str(path),
    )


def info_from_config(config: dict, path: Path) -> ModelInfo:
    """:class:`ModelInfo` of an exported config (:data:`CONFIG_FORMAT`); errors name ``path``."""
    fix = "export it again with `hgbench export --format safetensors`"
    if not isinstance(config, dict) or config.get("format") != CONFIG_FORMAT:
        found = config.get("format") if isinstance(config, dict) else type(config).__name__
        raise CheckpointError(
            f"{path}: not an hgbench model config (format {found!r}, expected {CONFIG_FORMAT!r}); {fix}"
        )
    try:
        mconf = ModelConfig(**config["model_config"])
        info = ModelInfo(
            model_config=mconf,
            input_res=int(config["input_res"]),
            output_res=int(config["output_res"]),
            joint_names=tuple(str(n) for n in config["joint_names"]),
            flip_permutation=tuple(int(i) for i in config["flip_permutation"]),
            hourglass_adjust=bool(config["hourglass_adjust"]),
            crop_margin=float(config["crop_margin"]),
            variant=str(config.get("variant") or ""),
            dataset=str(config.get("dataset") or ""),
            seed=None if config.get("seed") is None else int(config["seed"]),
            supervision=config.get("supervision"),
            source=str(path),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: incomplete model config ({type(exc).__name__}: {exc}); {fix}") from None
    if len(info.joint_names) != mconf.joints or sorted(info.flip_permutation) != list(range(mconf.joints)):
        raise CheckpointError(
            f"{path}: joint_names/flip_permutation do not match the model's {mconf.joints} joints; {fix}"
        )
    return info


def config_path(weights: Path) -> Path:
    """The JSON config beside an exported ``.safetensors`` file: same name, ``.json`` suffix."""
    return Path(weights).with_suffix(".json")


def _is_safetensors(path: Path) -> bool:
    """Suffix ``.safetensors``, or the format's header: 8-byte little-endian length, then ``{``."""
    if path.suffix.lower() == ".safetensors":
        return True
    try:
        with open(path, "rb") as f:
            head = f.read(9)
    except OSError:
        return False
    return len(head) == 9 and head[8:9] == b"{" and int.from_bytes(head[:8], "little") < 100 * 2**20


def _parsed(text: str):
    try:
        return json.loads(text)
    except ValueError:
        return None


def read_safetensors(path: Path, device: torch.device | str = "cpu") -> tuple[dict, ModelInfo]:
    """(state dict, :class:`ModelInfo`) of an exported ``.safetensors`` file: no pickle, no torch.load."""
    from safetensors import SafetensorError, safe_open
    from safetensors.torch import load_file

    path = Path(path)
    fix = "export it again with `hgbench export --format safetensors`"
    if not path.is_file():
        raise CheckpointError(f"{path} not found; {fix}")
    try:
        with safe_open(str(path), framework="pt") as f:
            embedded = (f.metadata() or {}).get("hgbench_config")
        weights = load_file(str(path), device=str(device))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{path} cannot be read as safetensors ({type(exc).__name__}: {exc}); {fix}") from None
    side = config_path(path)
    if side.is_file():
        try:
            config, where = json.loads(side.read_text(encoding="utf-8")), side
        except (OSError, ValueError) as exc:
            raise CheckpointError(f"{side} cannot be read as JSON ({exc}); {fix}") from None
        if embedded and _parsed(embedded) != config:
            # Both describe this file; a .json left from another export would crop and decode with
            # another model's geometry and joints.
            differ = sorted(
                k for k in set(config) | set(_parsed(embedded)) if config.get(k) != _parsed(embedded).get(k)
            )
            raise CheckpointError(
                f"{side} does not match the config embedded in {path} (differs in {', '.join(differ)}); "
                f"put back the .json exported with it, or delete {side} to use the embedded one"
            )
    elif embedded:
        config, where = json.loads(embedded), path
    else:
        raise CheckpointError(f"{path}: no model config ({side} is missing and the file embeds none); {fix}")
    info = info_from_config(config, where)
    return weights, replace(info, source=str(path))


def load_model(path: str | Path, device: str | torch.device = "cpu") -> StackedHourglass:
    """A trained model in eval mode, from ``model.pt`` or an exported ``.safetensors``.

    ``device``: ``cpu``, ``cuda``, ``auto`` or a :class:`torch.device`. The returned
    :class:`~hgbench.model.StackedHourglass` maps images [B, 3, R, R] (RGB in [0, 1], R =
    ``model.info.input_res``) to heatmaps [B, O, J, R/4, R/4]; ``model.info`` is its
    :class:`ModelInfo`. Raises :class:`hgbench.checkpoint.CheckpointError` (a RuntimeError)
    naming the file and the fix for a missing, damaged or foreign file.

    >>> import tempfile
    >>> from dataclasses import asdict
    >>> from pathlib import Path
    >>> from hgbench.checkpoint import save_state
    >>> net = StackedHourglass(ModelConfig(stacks=1, modules=1, features=16, depth=2))
    >>> path = Path(tempfile.mkdtemp()) / "model.pt"
    >>> save_state({"model": net.state_dict(), "model_config": asdict(net.config), "variant": "tiny",
    ...             "dataset": "mpii", "input_res": 64, "output_res": 16, "seed": 0}, path)
    >>> model = load_model(path)
    >>> model.info.joint_names[:3], model.info.input_res
    (('rank', 'rkne', 'rhip'), 64)
    """
    path = Path(path)
    dev = resolve_device(device)
    if path.suffix.lower() == ".onnx":
        raise CheckpointError(
            f"{path} is an ONNX model; hgbench reads model.pt (hgbench train) or .safetensors "
            f"(hgbench export --format safetensors); run the ONNX file with onnxruntime"
        )
    if path.is_file() and _is_safetensors(path):
        weights, info = read_safetensors(path, dev)
        fix = "export it again with `hgbench export --format safetensors`"
    else:
        state = read_model_file(path, map_location=dev)  # weights_only, digest checked; errors name the fix
        weights, info = state["model"], info_from_state(state, path)
        fix = "delete it and rerun `hgbench train`"
    try:
        model = StackedHourglass(info.model_config).to(dev)
        model.load_state_dict(weights)
    except (RuntimeError, TypeError, ValueError, KeyError) as exc:
        raise CheckpointError(f"checkpoint {path} does not fit the model it describes ({exc}); {fix}") from None
    model.eval()
    model.info = info
    return model


@torch.no_grad()
def predict_heatmaps(
    model: torch.nn.Module, images: torch.Tensor, flip_permutation: torch.Tensor, flip_test: bool
) -> torch.Tensor:
    """Heatmaps [B, O, J, H, W] (fp32) for images [B, 3, R, R]; with ``flip_test`` the average of
    the image's and its mirror's heatmaps (mirrored back, left/right channels swapped)."""
    hm = model(images).float()
    if flip_test:
        flipped = model(images.flip(-1)).float().flip(-1)[:, :, flip_permutation]
        hm = (hm + flipped) / 2
    return hm


@torch.no_grad()
def decode_crops(
    model: torch.nn.Module,
    crops: torch.Tensor,
    input_res: int,
    *,
    flip_permutation: torch.Tensor | None = None,
    precision: str = "fp32",
    channels_last: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Stored crops uint8 [B, C, C, 3] → heatmap peaks of every output.

    The network sees the central ``input_res``² window of each crop; with ``flip_permutation``
    (joint ``i`` of the mirror is joint ``flip_permutation[i]``) the flip test is applied.
    ``precision``: ``fp32`` or ``bf16`` (autocast). Returns ``uv`` [B, O, J, 2] in 0-based
    heatmap cells (¼-cell shift applied) and ``peak`` [B, O, J], both fp32 on the model's device.
    """
    device = next(model.parameters()).device
    images = centre_inputs(crops.to(device), input_res)
    if channels_last:
        images = images.contiguous(memory_format=torch.channels_last)
    with autocast(device, precision):
        hm = predict_heatmaps(model, images, flip_permutation, flip_permutation is not None)
    return decode_heatmaps(hm)


def decode_rows(
    model: torch.nn.Module, crops_of, n: int, batch_size: int, input_res: int, **kwargs
) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`decode_crops` over ``n`` rows in batches of ``batch_size``.

    ``crops_of(rows)`` returns the uint8 crops [b, C, C, 3] of the 0-based row indices ``rows``
    (e.g. ``lambda rows: data.batch(rows)[0]`` for a :class:`~hgbench.data.dataset.CropDataset`).
    ``kwargs`` go to :func:`decode_crops`. Returns ``uv`` [n, O, J, 2] cells and ``peak``
    [n, O, J], fp32 on the CPU.
    """
    uvs, peaks = [], []
    for start in range(0, n, batch_size):
        uv, peak = decode_crops(model, crops_of(np.arange(start, min(start + batch_size, n))), input_res, **kwargs)
        uvs.append(uv.cpu())
        peaks.append(peak.cpu())
    if not uvs:
        config = getattr(model, "config", None)
        o, j = (config.outputs, config.joints) if isinstance(config, ModelConfig) else (0, 0)
        return torch.zeros(0, o, j, 2), torch.zeros(0, o, j)
    return torch.cat(uvs), torch.cat(peaks)


def cells_to_native(
    uv: np.ndarray, crop_to_image: np.ndarray, crop_size: int, input_res: int, output_res: int
) -> np.ndarray:
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
