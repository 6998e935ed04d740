"""``hgbench infer`` and :func:`predict_image`: a trained model on your own images.

    hgbench infer --checkpoint models/demo/synthetic/hg2x1/s0/model.pt --images photos/ --out poses/
    hgbench infer --checkpoint hg2x1.safetensors --images a.jpg b.png --boxes boxes.json --out poses/

Every person goes through the code path of the benchmark itself, not a copy of it: cut like
``prepare`` cuts a person (:func:`hgbench.data.prepare.crop_transform`, ``crop_size``,
``cut_crops``, the model's ``input_res`` and its dataset's ``crop_margin``), predicted with the
flip test of ``predict`` (the one inference loop, :func:`hgbench.inference.decode_rows`), decoded with the ¼-cell
shift (:func:`hgbench.heatmaps.decode_heatmaps`) and mapped back through the crop's affine
(:func:`hgbench.inference.cells_to_native`). So a person given by the same centre/scale as in a
prepared split gets the joints ``predict`` writes for it (within float rounding).

Frames. Everything here — boxes in, joints out — is in **0-based image pixels**: the centre of
the top-left pixel is (0, 0), x to the right, y down, the image spans [-0.5, W - 0.5] ×
[-0.5, H - 0.5] (MPII's annotations are 1-based: subtract 1 from an MPII ``objpos``). Images
are read with their EXIF orientation applied, i.e. as a viewer shows them.

People (``BOXES.json``, keyed by image file name; an image without an entry is one person, the
whole image):

- ``[x1, y1, x2, y2]``: a box around the person. The network sees the square of side
  :data:`BOX_PADDING` × the box's longer side centred on the box (MPII's rule: the person's
  height is about 200·scale px and the crop 1.25 × that);
- ``{"center": [x, y], "scale": s}``: the dataset convention (MPII: 200·s px ≈ the person's
  height; ``center`` is MPII's ``objpos`` minus 1); an MPII-layout model applies the hourglass
  adjustment of ``prepare`` (``c.y += 15·s; s *= 1.25``), a FLIC model takes the box as given;
- ``{"box": [x1, y1, x2, y2]}``; or a list of any of these for several people.

Outputs, per image ``<name>.<ext>``: ``<name>.json`` (schema: ``infer.schema.json`` beside this
module) and ``<name>.png`` (the image with every skeleton drawn by :func:`hgbench.draw.draw_skeleton`).
Every input is checked before the model runs, and outputs are written to a staging folder that
is moved into place only when every image succeeded: a failed run writes nothing.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageOps, UnidentifiedImageError

from .data.prepare import crop_size, crop_spec, crop_transform, cut_crops
from .data.schema import FRAME_OFFSET
from .draw import PRED_COLOUR, draw_skeleton, line_width
from .inference import ModelInfo, cells_to_native, decode_rows, load_model, resolve_device
from .joints import skeleton_limbs

OUTPUT_FORMAT = "hgbench-infer/1"
SCHEMA_PATH = Path(__file__).with_name("infer.schema.json")
"""JSON schema of ``<name>.json`` (draft 2020-12)."""
FRAME = (
    "0-based image pixels: the centre of the top-left pixel is (0, 0), x to the right, y down; "
    "the image spans [-0.5, width - 0.5] x [-0.5, height - 0.5] (EXIF orientation applied)"
)
SCORE = "heatmap peak of the final stack (flip-test average when flip_test), about 1 for a confident joint"
BOX_PADDING = 1.25
"""Side of the square the network sees / the longer side of a person box (MPII's crop rule)."""
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
IMAGE_FORMATS = ("JPEG", "MPO", "PNG")  # MPO: a camera JPEG with extra frames; frame 0 is read
MAX_PIXELS = 178_956_970
"""Largest image read (width × height): Pillow's own refusal limit (2 × ``Image.MAX_IMAGE_PIXELS``),
past which a header is taken for a decompression bomb; a 179 Mpx RGB image is 0.5 GB decoded."""
MAX_PEOPLE = 1000
"""People of one image in a boxes file: each is a crop in memory (MPII images hold at most ~20)."""
MAX_BOXES_BYTES = 64 * 2**20
"""Size of a boxes file (a JSON object read whole)."""
MAX_PERSON_FACTOR = 100
"""A person (box side, or 200·scale) may be at most this many times the image's longer side: more
is no person of that image, and overflows the crop's integer pixel bounds."""
SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")
"""Pillow's modes of a 16-bit greyscale PNG: ``convert("RGB")`` clips them at 255 (an all-white image)."""


class InferError(ValueError):
    """Bad input to ``hgbench infer`` (image, boxes, output folder); the message names the file and fix."""


@dataclass(frozen=True)
class Person:
    """Where one person is, in 0-based image px: a ``box`` [x1, y1, x2, y2], or ``center``/``scale``
    (dataset convention), or the whole image (``source`` ``whole_image``, ``box`` = the image)."""

    source: str  # "box", "center_scale" or "whole_image"
    box: tuple[float, float, float, float] | None = None
    center: tuple[float, float] | None = None
    scale: float | None = None


def whole_image(width: int, height: int) -> Person:
    return Person("whole_image", box=(-0.5, -0.5, width - 0.5, height - 0.5))


def _numbers(value, n: int) -> tuple[float, ...] | None:
    if (
        isinstance(value, (list, tuple))
        and len(value) == n
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
        and all(np.isfinite(value))
    ):
        return tuple(float(v) for v in value)
    return None


def parse_person(entry, where: str) -> Person:
    """One person of a boxes entry: ``[x1, y1, x2, y2]``, ``{"box": [...]}`` or ``{"center": [x, y], "scale": s}``."""
    expected = 'expected [x1, y1, x2, y2], {"box": [x1, y1, x2, y2]} or {"center": [x, y], "scale": s}'
    box = _numbers(entry, 4)
    if box is None and isinstance(entry, dict) and "box" in entry:
        box = _numbers(entry["box"], 4)
        if box is None:
            raise InferError(f'{where}: "box" must be 4 finite numbers [x1, y1, x2, y2]; fix the boxes file')
    if box is not None:
        if not (box[2] > box[0] and box[3] > box[1]):
            raise InferError(f"{where}: box {list(box)} is empty (it needs x2 > x1 and y2 > y1); fix the boxes file")
        return Person("box", box=box)
    if isinstance(entry, dict) and "center" in entry:
        center, scale = _numbers(entry.get("center"), 2), entry.get("scale")
        if (
            center is None
            or not isinstance(scale, (int, float))
            or isinstance(scale, bool)
            or not np.isfinite(scale)
            or scale <= 0
        ):
            raise InferError(
                f'{where}: needs "center": [x, y] (finite) and "scale" > 0 (200·scale px ≈ the '
                f"person's height); fix the boxes file"
            )
        return Person("center_scale", center=center, scale=float(scale))
    raise InferError(f"{where}: {expected}, got {json.dumps(entry)[:80]}; fix the boxes file")


def parse_entry(entry, where: str) -> list[Person]:
    """The people of one image's entry: one person, or a (non-empty) list of them."""
    if isinstance(entry, list) and entry and not all(isinstance(v, (int, float)) for v in entry):
        return [parse_person(e, f"{where}, person {k + 1}") for k, e in enumerate(entry)]
    return [parse_person(entry, where)]


def read_boxes(path: Path) -> dict[str, list[Person]]:
    """``BOXES.json`` → {image file name: people}; :class:`InferError` names the file and the entry."""
    path = Path(path)
    if path.is_file() and path.stat().st_size > MAX_BOXES_BYTES:
        raise InferError(
            f"boxes file {path} is {path.stat().st_size / 2**20:.0f} MiB, more than the "
            f"{MAX_BOXES_BYTES // 2**20} MiB a boxes file may hold; split the images over several runs"
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InferError(f"boxes file {path} not found; give an existing --boxes file or leave it out") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise InferError(f"boxes file {path} is not valid JSON ({exc}); fix it") from None
    if not isinstance(data, dict):
        raise InferError(
            f"boxes file {path} must be a JSON object keyed by image file name, e.g. "
            f'{{"photo.jpg": [x1, y1, x2, y2]}}; fix it'
        )
    return {str(name): parse_entry(entry, f"boxes file {path}, entry {name!r}") for name, entry in data.items()}


def check_person(person: Person, width: int, height: int, where: str) -> None:
    """A box must overlap the image and a centre lie inside it (0-based px), and the person be at
    most :data:`MAX_PERSON_FACTOR` × the image's longer side; else :class:`InferError`."""
    lo_x, lo_y, hi_x, hi_y = -0.5, -0.5, width - 0.5, height - 0.5
    frame = f"the image is {width}×{height} px: x in [-0.5, {hi_x}], y in [-0.5, {hi_y}], 0-based pixels"
    limit = MAX_PERSON_FACTOR * max(width, height)
    if person.box is not None:
        x1, y1, x2, y2 = person.box
        if x2 <= lo_x or x1 >= hi_x or y2 <= lo_y or y1 >= hi_y:
            raise InferError(f"{where}: box {list(person.box)} lies outside the image ({frame}); fix the box")
        if max(x2 - x1, y2 - y1) > limit:
            raise InferError(
                f"{where}: box {list(person.box)} is {max(x2 - x1, y2 - y1):.3g} px across, more than "
                f"{MAX_PERSON_FACTOR} times the image's longer side ({frame}); fix the box"
            )
    if person.scale is not None and 200 * person.scale > limit:
        raise InferError(
            f"{where}: scale {person.scale:.3g} is a person {200 * person.scale:.3g} px tall, more than "
            f"{MAX_PERSON_FACTOR} times the image's longer side ({frame}); fix the scale (200·scale px ≈ "
            f"the person's height)"
        )
    if person.center is not None:
        x, y = person.center
        if not (lo_x <= x <= hi_x and lo_y <= y <= hi_y):
            raise InferError(
                f"{where}: center {list(person.center)} lies outside the image ({frame}); "
                f"fix the center (MPII objpos is 1-based: subtract 1)"
            )


def crop_geometry(person: Person, info: ModelInfo) -> tuple[np.ndarray, float, np.ndarray]:
    """(crop centre [2] 0-based px, scale s (crop side 200·s px), ``crop_to_image`` A [2, 3]).

    A maps crop px to the *native* (1-based) frame, exactly as ``prepare`` stores it, so that
    ``cut_crops`` and ``cells_to_native`` take it unchanged; subtract ``FRAME_OFFSET`` for 0-based px.
    """
    c = crop_size(info.input_res, info.crop_margin)
    if person.source == "center_scale":
        centre = np.asarray(person.center, float) + FRAME_OFFSET
        native, s, a = crop_transform(centre, person.scale, info.input_res, c, adjust=info.hourglass_adjust)
    else:  # a person box: its centre, the square side BOX_PADDING × its longer side
        x1, y1, x2, y2 = person.box
        centre = np.array([(x1 + x2) / 2, (y1 + y2) / 2]) + FRAME_OFFSET
        native, s, a = crop_transform(
            centre, BOX_PADDING * max(x2 - x1, y2 - y1) / 200.0, info.input_res, c, adjust=False
        )
    return native - FRAME_OFFSET, s, a


def input_window(a: np.ndarray, info: ModelInfo) -> list[float]:
    """[x1, y1, x2, y2], 0-based image px: the outer edges of the network's input pixels."""
    c = crop_size(info.input_res, info.crop_margin)
    off = (c - info.input_res) / 2
    lo = a[:, :2] @ np.array([off - 0.5, off - 0.5]) + a[:, 2] - FRAME_OFFSET
    hi = a[:, :2] @ np.array([off + info.input_res - 0.5] * 2) + a[:, 2] - FRAME_OFFSET
    return [float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1])]


def crop_people(image: Image.Image, people: list[Person], info: ModelInfo) -> tuple[np.ndarray, np.ndarray]:
    """Crops [N, C, C, 3] uint8 (C = ``crop_size``) and their ``crop_to_image`` [N, 2, 3] (native frame)."""
    c = crop_size(info.input_res, info.crop_margin)
    affines = np.stack([crop_geometry(p, info)[2] for p in people]) if people else np.zeros((0, 2, 3))
    crops = cut_crops(image.convert("RGB"), [crop_spec(a) for a in affines], c)
    return (np.stack(crops) if crops else np.zeros((0, c, c, 3), np.uint8)), affines


@torch.no_grad()
def predict_crops(
    model: torch.nn.Module,
    crops: np.ndarray,
    affines: np.ndarray,
    info: ModelInfo,
    *,
    flip_test: bool = True,
    batch_size: int = 16,
) -> np.ndarray:
    """Joints [N, J, 3] — (x, y) in 0-based image px and the heatmap peak score — of crops
    [N, C, C, 3] uint8 with their ``crop_to_image`` [N, 2, 3] (native frame), final stack."""
    dev = next(model.parameters()).device
    perm = torch.as_tensor(info.flip_permutation, device=dev) if flip_test else None
    if not len(crops):
        return np.zeros((0, len(info.joint_names), 3))
    uv, peak = decode_rows(
        model,
        lambda rows: torch.from_numpy(np.ascontiguousarray(crops[rows])),
        len(crops),
        batch_size,
        info.input_res,
        flip_permutation=perm,
    )
    cells, peaks = uv[:, -1].double().numpy(), peak[:, -1].double().numpy()
    xy = cells_to_native(cells, affines, crops.shape[1], info.input_res, info.output_res)
    return np.concatenate([xy - FRAME_OFFSET, peaks[..., None]], axis=-1)


def _info(model, info: ModelInfo | None) -> ModelInfo:
    info = info if info is not None else getattr(model, "info", None)
    if not isinstance(info, ModelInfo):
        raise ValueError(
            "the model carries no hgbench ModelInfo: load it with hgbench.load_model(path), or pass info=ModelInfo(...)"
        )
    return info


def to_rgb(image: Image.Image) -> Image.Image:
    """``image`` as 8-bit RGB; 16-bit greyscale scaled to 8 bits (Pillow's ``convert`` clips it)."""
    if image.mode in SIXTEEN_BIT_MODES:
        grey = np.clip(np.rint(np.asarray(image, dtype=np.float64) / 257.0), 0, 255).astype(np.uint8)
        return Image.fromarray(grey, "L").convert("RGB")
    return image.convert("RGB")


def _as_image(image) -> Image.Image:
    if isinstance(image, (str, os.PathLike)):
        return read_image(Path(image))[0]
    if isinstance(image, Image.Image):
        return to_rgb(image)
    array = np.asarray(image)
    if array.dtype != np.uint8 or array.ndim != 3 or array.shape[2] != 3:
        raise ValueError(
            f"image must be a path, a PIL image or a uint8 [H, W, 3] RGB array, got {array.dtype} {list(array.shape)}"
        )
    return Image.fromarray(array, "RGB")


def _as_person(box, width: int, height: int) -> Person:
    if isinstance(box, (tuple, np.ndarray)):
        box = np.asarray(box, dtype=float).tolist()
    person = whole_image(width, height) if box is None else parse_person(box, "box")
    check_person(person, width, height, "box")
    return person


def predict_people(
    model, image, boxes, *, flip_test: bool = True, batch_size: int = 16, info: ModelInfo | None = None
) -> np.ndarray:
    """Joints [N, J, 3] of N people in one image; see :func:`predict_image` (``boxes``: N of its ``box``)."""
    info = _info(model, info)
    img = _as_image(image)
    people = [_as_person(b, *img.size) for b in boxes]
    crops, affines = crop_people(img, people, info)
    return predict_crops(model, crops, affines, info, flip_test=flip_test, batch_size=batch_size)


def predict_image(model, image, box=None, *, flip_test: bool = True, info: ModelInfo | None = None) -> np.ndarray:
    """Joints of one person: float64 [J, 3], rows (x, y, score) in ``model.info.joint_names`` order.

    ``model``: from :func:`hgbench.load_model` (its ``info`` gives resolution, joints and crop
    rule; a bare ``StackedHourglass`` needs ``info=``). ``image``: a path (JPEG/PNG, EXIF
    orientation applied), a PIL image or a uint8 [H, W, 3] RGB array. ``box``: None (the whole
    image is the person), ``[x1, y1, x2, y2]`` or ``{"center": [x, y], "scale": s}``. x, y and
    the box are 0-based image pixels (the centre of the top-left pixel is (0, 0)); score is the
    final stack's heatmap peak (about 1 for a confident joint). ``flip_test`` averages the
    image's and its mirror's heatmaps, as ``hgbench predict`` does.

    >>> import numpy as np, torch
    >>> from hgbench.inference import ModelInfo
    >>> from hgbench.joints import MPII_FLIP, MPII_JOINTS
    >>> from hgbench.model import ModelConfig, StackedHourglass
    >>> _ = torch.manual_seed(0)
    >>> net = StackedHourglass(ModelConfig(stacks=1, modules=1, features=16, depth=2)).eval()
    >>> info = ModelInfo(net.config, input_res=64, output_res=16, joint_names=MPII_JOINTS,
    ...                  flip_permutation=MPII_FLIP, hourglass_adjust=True)
    >>> photo = np.zeros((120, 90, 3), np.uint8)                 # H = 120, W = 90
    >>> joints = predict_image(net, photo, box=[10, 5, 80, 115], info=info)
    >>> joints.shape                                             # [J, (x, y, score)]
    (16, 3)
    >>> bool(((joints[:, :2] > -30) & (joints[:, :2] < 150)).all())   # inside the padded box
    True
    """
    return predict_people(model, image, [box], flip_test=flip_test, info=info)[0]


# ---------------------------------------------------------------------------------------------
# hgbench infer: files in, files out


def _orientation(im: Image.Image) -> int:
    try:
        return int(im.getexif().get(0x0112, 1))
    except Exception:  # a damaged EXIF block: show the pixels as stored
        return 1


def probe_image(path: Path) -> tuple[int, int]:
    """(width, height) of an image as shown (EXIF orientation applied), reading its header only."""
    too_big = f"image {path} has more than {MAX_PIXELS / 1e6:.0f} Mpx, more than infer decodes"
    try:
        with Image.open(path) as im:
            fmt, (w, h), rot = im.format, im.size, _orientation(im)
    except FileNotFoundError:
        raise InferError(f"image {path} not found; check the --images path") from None
    except Image.DecompressionBombError:  # Pillow's own limit, met while reading the header
        raise InferError(f"{too_big}; downscale it, or leave it out") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise InferError(
            f"image {path} cannot be read ({type(exc).__name__}: {exc}); give a JPEG or PNG file, or leave it out"
        ) from None
    if fmt not in IMAGE_FORMATS:
        raise InferError(f"image {path} is a {fmt} file; infer reads JPEG and PNG: convert it or leave it out")
    if w * h > MAX_PIXELS:  # (when Image.MAX_IMAGE_PIXELS was raised or switched off)
        raise InferError(f"{too_big} ({w}×{h} px); downscale it, or leave it out")
    return (h, w) if rot in (5, 6, 7, 8) else (w, h)


def read_image(path: Path) -> tuple[Image.Image, bool]:
    """(decoded RGB image as shown, whether an EXIF orientation was applied); :class:`InferError` if unreadable."""
    try:
        with Image.open(path) as im:
            im.load()
            rot = _orientation(im)
            shown = ImageOps.exif_transpose(im) if rot != 1 else im
            return to_rgb(shown), rot != 1
    except FileNotFoundError:
        raise InferError(f"image {path} not found; check the --images path") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise InferError(
            f"image {path} cannot be decoded ({type(exc).__name__}: {exc}); the file is damaged: "
            f"replace it or leave it out"
        ) from None


def collect_images(paths: list[str | Path]) -> list[Path]:
    """Image files from files and folders (a folder: its .jpg/.jpeg/.png files, sorted, not recursive)."""
    files: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            found = sorted(
                f
                for f in p.iterdir()
                if f.is_file() and not f.name.startswith(".") and f.suffix.lower() in IMAGE_SUFFIXES
            )
            if not found:
                raise InferError(f"folder {p} holds no {'/'.join(IMAGE_SUFFIXES)} images; give another folder or files")
            files += found
        elif p.is_file():
            if p.suffix.lower() not in IMAGE_SUFFIXES:
                raise InferError(
                    f"{p} is not a JPEG or PNG file (suffix {p.suffix or 'none'}); convert it or leave it out"
                )
            files.append(p)
        else:
            raise InferError(f"image {p} not found; check the --images path")
    unique = list(dict.fromkeys(files))
    stems: dict[str, Path] = {}
    for f in unique:
        if f.stem in stems:
            raise InferError(
                f"{stems[f.stem]} and {f} would both write {f.stem}.json/.png; rename one or run "
                f"them with different --out folders"
            )
        stems[f.stem] = f
    return unique


def _plan(files: list[Path], boxes: Path | None, out_dir: Path) -> list[tuple[Path, list[Person]]]:
    """Every image's people, checked against its size, before any model work."""
    by_name = read_boxes(boxes) if boxes is not None else {}
    given = {f.name for f in files}
    unknown = [name for name in by_name if name not in given]
    if unknown:
        raise InferError(
            f"boxes file {boxes} has boxes for {unknown[0]!r}, which is not among the images given "
            f"(--images; keys are bare file names such as {files[0].name!r}); add that image or "
            f"remove its entry"
        )
    out = Path(out_dir).resolve()
    for f in files:
        if f.resolve().parent == out:
            raise InferError(
                f"--out {out_dir} is the folder of input image {f}: the overlays would land among "
                f"(or overwrite) the inputs; choose another --out folder"
            )
    plan = []
    for f in files:
        width, height = probe_image(f)
        people = by_name.get(f.name) or [whole_image(width, height)]
        if len(people) > MAX_PEOPLE:
            raise InferError(
                f"boxes file {boxes}, entry {f.name!r}: {len(people)} people, more than the {MAX_PEOPLE} "
                f"infer cuts from one image; fix the boxes file"
            )
        for k, person in enumerate(people):
            check_person(
                person,
                width,
                height,
                f"{f.name}, person {k + 1}" + (f" (boxes file {boxes})" if f.name in by_name else ""),
            )
        plan.append((f, people))
    return plan


def _record(
    path: Path,
    image: Image.Image,
    rotated: bool,
    people: list[Person],
    joints: np.ndarray,
    affines: np.ndarray,
    info: ModelInfo,
    flip_test: bool,
    checkpoint: Path,
) -> dict:
    """The ``<name>.json`` document (``infer.schema.json``)."""
    width, height = image.size
    rows = []
    for person, pts, a in zip(people, joints, affines):
        rows.append(
            {
                "source": person.source,
                "box": None if person.box is None else [float(v) for v in person.box],
                "center": None if person.center is None else [float(v) for v in person.center],
                "scale": person.scale,
                "input_window": input_window(a, info),
                "joints": [[float(x), float(y), float(s)] for x, y, s in pts],
            }
        )
    return {
        "format": OUTPUT_FORMAT,
        "image": path.name,
        "path": str(path),
        "width": width,
        "height": height,
        "exif_transposed": rotated,
        "frame": FRAME,
        "score": SCORE,
        "model": {
            "checkpoint": str(checkpoint),
            "variant": info.variant,
            "dataset": info.dataset,
            "seed": info.seed,
            "input_res": info.input_res,
            "output_res": info.output_res,
            "crop_margin": info.crop_margin,
            "flip_test": flip_test,
        },
        "joint_names": list(info.joint_names),
        "people": rows,
    }


_NUMBER_LIST = re.compile(r"\[\s+(-?[0-9][^\[\]\"]*?)\s+\]")


def dumps(record: dict) -> str:
    """JSON text with every list of numbers on one line (a joint per line, readable by eye)."""
    text = json.dumps(record, indent=1)
    return _NUMBER_LIST.sub(lambda m: "[" + re.sub(r"\s+", " ", m.group(1)) + "]", text) + "\n"


def draw_overlay(
    image: Image.Image, people: list[Person], joints: np.ndarray, joint_names, min_score: float | None = None
) -> Image.Image:
    """``image`` with each person's box (thin) and skeleton (:func:`hgbench.draw.draw_skeleton`)."""
    limbs = skeleton_limbs(joint_names)
    width = line_width(*image.size)
    draw = ImageDraw.Draw(image)
    for person, pts in zip(people, joints):
        if person.source == "box":
            draw.rectangle(person.box, outline=PRED_COLOUR, width=max(1, width // 2))
        draw_skeleton(image, pts[:, :2], limbs, PRED_COLOUR, width=width, scores=pts[:, 2], min_score=min_score)
    return image


def check_info(info: ModelInfo, checkpoint: Path) -> None:
    """The crop geometry a model's config gives (a hand-edited ``<name>.json`` beside an export
    is read as it stands) lies in the params schema's ranges; else :class:`InferError`."""
    fix = "export the model again with `hgbench export` (without --crop-margin, or one in [1, 2])"
    if not 1.0 <= info.crop_margin <= 2.0:  # NaN fails too
        raise InferError(f"{checkpoint}: crop_margin {info.crop_margin} is outside [1, 2]; {fix}")
    if not (16 <= info.input_res <= 1024 and info.input_res % 16 == 0 and info.output_res * 4 == info.input_res):
        raise InferError(
            f"{checkpoint}: input_res {info.input_res} / output_res {info.output_res} are no model's (input_res "
            f"a multiple of 16 in [16, 1024], output_res a quarter of it); {fix}"
        )


def _publish(staging: Path, out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    for f in sorted(staging.iterdir()):
        try:
            os.replace(f, out_dir / f.name)
        except OSError:  # another file system
            shutil.move(str(f), str(out_dir / f.name))


def run_infer(
    checkpoint: Path,
    images: list[str | Path],
    out_dir: Path,
    boxes: Path | None = None,
    *,
    device: str = "auto",
    batch_size: int = 16,
    flip_test: bool = True,
    min_score: float | None = None,
    progress: bool = False,
) -> dict:
    """``hgbench infer``: writes ``out_dir/<name>.json`` and ``<name>.png`` for every image.

    People of consecutive images are batched together (``batch_size`` crops a forward pass).
    Returns ``{"images": n, "people": m, "out": out_dir}``. Raises :class:`InferError` /
    :class:`hgbench.checkpoint.CheckpointError` (one line, naming the file and the fix) and then
    writes nothing.
    """
    checkpoint, out_dir = Path(checkpoint), Path(out_dir)
    if batch_size < 1:
        raise InferError(f"--batch-size must be at least 1, got {batch_size}")
    model = load_model(checkpoint, resolve_device(device))
    info = model.info
    check_info(info, checkpoint)
    plan = _plan(collect_images(images), boxes, out_dir)
    base = out_dir.parent if out_dir.parent.is_dir() else None
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name or 'infer'}.tmp-", dir=base))
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(plan), desc="hgbench infer", unit="image")
    try:
        pending: list[tuple] = []  # (path, image, rotated, people, crops, affines) waiting for a forward pass

        def flush():
            crops = np.concatenate([p[4] for p in pending])
            affines = np.concatenate([p[5] for p in pending])
            joints = predict_crops(model, crops, affines, info, flip_test=flip_test, batch_size=batch_size)
            start = 0
            for path, image, rotated, people, _, _ in pending:
                pts, a = joints[start : start + len(people)], affines[start : start + len(people)]
                start += len(people)
                record = _record(path, image, rotated, people, pts, a, info, flip_test, checkpoint)
                (staging / f"{path.stem}.json").write_text(dumps(record), encoding="utf-8")
                draw_overlay(image, people, pts, info.joint_names, min_score).save(staging / f"{path.stem}.png")
                if bar is not None:
                    bar.update(1)
            pending.clear()

        n_people = 0
        for path, people in plan:
            image, rotated = read_image(path)
            crops, affines = crop_people(image, people, info)
            pending.append((path, image, rotated, people, crops, affines))
            n_people += len(people)
            if sum(len(p[3]) for p in pending) >= batch_size:
                flush()
        if pending:
            flush()
        _publish(staging, out_dir)
    finally:
        if bar is not None:
            bar.close()
        shutil.rmtree(staging, ignore_errors=True)
    return {"images": len(plan), "people": n_people, "out": out_dir}
