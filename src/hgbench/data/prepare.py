"""Person records + raw images → processed split files (``train.h5``, ``valid.h5``; MPII ``test.h5``;
``samples.h5``, the real photographs shipped with hgbench, :func:`prepare_samples`).

One code path for every dataset: the MPII layout (the synthetic set and real MPII,
:func:`prepare_dataset`) and the FLIC layout (real FLIC and the synthetic set with
``layout: flic``, :func:`prepare_flic`); a :class:`~hgbench.data.schema.Layout`
names the joints, flip permutation, normaliser and box rule. For each person (see
docs/architecture.md, "Coordinate frames"; docs/data.md):

* MPII layout: the hourglass adjustment is applied here, exactly once (as pose-hg-train's
  ``crop`` does; applying it twice is a known pitfall of ports):
  ``c = objpos; c.y += 15·scale; scale *= 1.25``; FLIC: the box is taken as given;
* the square box of side ``200·scale`` native px centred on ``c`` maps to ``input_res`` crop px;
  the stored crop has side ``C = 2·round(input_res·crop_margin/2)`` (room for augmentation) and
  its centre ``(C−1)/2`` is ``c``;
* the crop is cut with Pillow ``Image.transform(..., Image.AFFINE, ..., resample=BILINEAR)``,
  zero (black) outside the image. When the box is more than twice the crop resolution the image
  is first box-filtered by an integer factor ``k = floor(200·scale / input_res)`` with
  ``Image.reduce`` (anti-aliasing for large real-MPII people); the affine map accounts for it,
  so coordinates are unaffected;
* ``joints`` are stored in crop px (0-based continuous, pixel centres at integers), and
  ``crop_to_image`` is the affine A with ``native = A · [x_crop, y_crop, 1]``: it already
  includes the 1-based frame offset, so it maps crop px straight to the dataset's native frame
  (the frame of ``joints_image`` and of the official evaluation files).

Files are written to ``<out>.tmp`` (images streamed into a preallocated, per-person-chunked
dataset, decoded by a process pool in deterministic order), validated with
:func:`hgbench.data.schema.open_split`, and only then renamed to ``<out>``. Memory stays bounded
as the dataset grows: one image's crops at a time (per worker), never the whole split's.

Reliability (docs/reliability.md): the output is locked while it is written
(:func:`hgbench.iofiles.output_lock`; a second ``prepare`` of the same folder fails at once), and
every fixed-size dataset carries an HDF5 Fletcher-32 checksum per chunk, with the metadata
checksums of the HDF5 1.10 format (``libver="v110"``), so that a damaged byte in a crop or a
label is reported on read (:class:`~hgbench.data.schema.DataFileError`) instead of being used.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import multiprocessing
import os
from itertools import groupby
from pathlib import Path

import h5py
import numpy as np
from PIL import Image

from hgbench.data import flic, mpii
from hgbench.data.mpii import PersonRecord
from hgbench.data.schema import FRAME_OFFSET, MPII_LAYOUT, SCHEMA_VERSION, Layout, fixed_utf8, open_split, set_str_attr
from hgbench.iofiles import free_disk, output_lock
from hgbench.joints import MPII_JOINTS
from hgbench.kinds import MPII, kind_of

RELEASE_RELPATH = "mpii_human_pose_v1_u12_2/mpii_human_pose_v1_u12_1.mat"
SPLIT_FILENAME = "valid_split.csv"
MANIFEST_FILENAME = "MANIFEST.json"
J = len(MPII_JOINTS)
HDF5_LIBVER = "v110"
"""Lowest HDF5 file format written (1.10, 2016): its object headers carry metadata checksums."""


class PrepareError(ValueError):
    """Raw inputs of ``prepare`` are missing or unreadable; the message names the file and fix."""


def crop_size(input_res: int, crop_margin: float) -> int:
    """Side of the stored crop (same formula as ``DatasetConfig.crop_size``)."""
    return 2 * round(input_res * crop_margin / 2)


def code_version() -> str:
    try:
        from hgbench import __version__

        return str(__version__)
    except Exception:
        return "0"


def crop_transform(
    objpos: np.ndarray, scale: float, input_res: int, crop: int, adjust: bool = True
) -> tuple[np.ndarray, float, np.ndarray]:
    """Crop centre (native), scale and ``crop_to_image`` A (2×3).

    ``objpos`` is in the native 1-based frame; the returned centre too. With ``adjust`` (MPII
    layout) the hourglass adjustment ``c.y += 15·s; s *= 1.25`` is applied; without it (FLIC) the
    box is ``objpos``/``scale`` as given.
    """
    if adjust:
        center = np.array([objpos[0], objpos[1] + 15.0 * scale], dtype=float)
        s = 1.25 * float(scale)
    else:
        center, s = np.array(objpos, dtype=float), float(scale)
    inv = 200.0 * s / input_res  # native px per crop px
    half = (crop - 1) / 2.0
    a = np.array([[inv, 0.0, center[0] - half * inv], [0.0, inv, center[1] - half * inv]])
    return center, s, a


def image_to_crop(points: np.ndarray, a: np.ndarray) -> np.ndarray:
    """Native points (…, 2) → crop px with the inverse of ``crop_to_image`` A (NaN stays NaN)."""
    lin = a[:, :2]
    return (np.asarray(points, float) - a[:, 2]) @ np.linalg.inv(lin).T


def crop_to_image_points(points: np.ndarray, a: np.ndarray) -> np.ndarray:
    """Crop px (…, 2) → native frame."""
    return np.asarray(points, float) @ a[:, :2].T + a[:, 2]


def _pillow_affine(a: np.ndarray, k: int) -> tuple[float, ...]:
    """Pillow AFFINE data for an image reduced by ``k`` (Pillow puts pixel edges at integers)."""
    # Pillow: input edge coords X_in = d · (X_out) where X = centre coords + 0.5, and
    # centre coords of the 0-based image are native - FRAME_OFFSET.
    lin = a[:, :2]
    t = a[:, 2] - FRAME_OFFSET + 0.5 - lin @ np.array([0.5, 0.5])
    return tuple((np.concatenate([lin, t[:, None]], axis=1) / k).reshape(-1).tolist())


def _reduction(a: np.ndarray) -> int:
    return max(1, int(math.floor(abs(a[0, 0]) + 1e-9)))


def crop_spec(a: np.ndarray) -> tuple[tuple[float, ...], int]:
    """How :func:`cut_crops` cuts the crop of ``crop_to_image`` A: (Pillow AFFINE data, reduction k)."""
    k = _reduction(a)
    return _pillow_affine(a, k), k


def cut_crops(rgb: Image.Image, specs: list[tuple[tuple[float, ...], int]], size: int) -> list[np.ndarray]:
    """The crops (size, size, 3) uint8 of one decoded RGB image, one per :func:`crop_spec`, in order.

    Shared by ``prepare`` and ``hgbench infer`` (:mod:`hgbench.infer`), so that a person is cut the
    same way, pixel for pixel, wherever it is predicted.
    """
    reduced: dict[int, Image.Image] = {1: rgb}
    out = []
    for data, k in specs:
        if k not in reduced:
            reduced[k] = rgb.reduce(k)
        crop = reduced[k].transform((size, size), Image.AFFINE, data, resample=Image.BILINEAR, fillcolor=(0, 0, 0))
        out.append(np.asarray(crop, dtype=np.uint8))
    return out


def _crop_image_task(task: tuple[str, list[tuple[tuple[float, ...], int]], int]) -> list[np.ndarray]:
    """Worker: decode one image and cut the crops of its people (in order)."""
    path, specs, size = task
    try:
        with Image.open(path) as im:
            im.load()
            rgb = im.convert("RGB")
    except FileNotFoundError:
        raise PrepareError(
            f"image file {path} not found; the raw dataset is incomplete — "
            f"re-fetch it (hgbench fetch ...) or restore the file"
        ) from None
    except Exception as exc:  # PIL raises OSError/UnidentifiedImageError/SyntaxError/ValueError
        raise PrepareError(
            f"image file {path} cannot be decoded ({type(exc).__name__}: {exc}); the file is corrupt — re-download it"
        ) from None
    return cut_crops(rgb, specs, size)


def _mp_context():
    """``fork`` where available (no re-import of ``__main__``, fast start), else ``spawn``."""
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("fork" if "fork" in methods else "spawn")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def split_geometry(
    people: list, *, input_res: int, crop_margin: float, layout: Layout = MPII_LAYOUT
) -> dict[str, np.ndarray]:
    """Every per-person field of a split file except the crops (same names and units as the schema).

    ``joints`` (N, J, 2) crop px (0-based, pixel centres at integers), ``joints_image`` native px
    (NaN where missing), ``crop_to_image`` (N, 2, 3), ``normalizer`` native px, ``center``/``scale``
    after the layout's box rule, ``visible``/``missing`` (N, J) bool, ``headbox`` (N, 2, 2).
    """
    n = len(people)
    J = len(layout.joint_names)
    c = crop_size(input_res, crop_margin)
    joints_image = np.full((n, J, 2), np.nan)
    visible = np.zeros((n, J), bool)
    a_all = np.zeros((n, 2, 3))
    headbox = np.full((n, 2, 2), np.nan)
    center = np.zeros((n, 2))
    scale = np.zeros(n)
    for i, p in enumerate(people):
        if not (np.isfinite(p.scale) and p.scale > 0 and np.isfinite(p.objpos).all()):
            raise PrepareError(
                f"person {p.image_name} (image {p.image_index}, person {p.person_index}) has no "
                f"usable objpos/scale ({p.objpos}, {p.scale})"
            )
        center[i], scale[i], a_all[i] = crop_transform(p.objpos, p.scale, input_res, c, layout.hourglass_adjust)
        if p.joints.shape != (J, 2):
            raise PrepareError(f"person {p.image_name}: joints of shape {p.joints.shape}, the layout has {J} joints")
        joints_image[i] = p.joints
        visible[i] = p.visible
        headbox[i] = p.headbox
    missing = np.isnan(joints_image).any(axis=2)
    joints_image[missing] = np.nan
    visible &= ~missing
    joints = np.stack([image_to_crop(joints_image[i], a_all[i]) for i in range(n)]) if n else np.zeros((0, J, 2))
    normalizer = np.array([p.normalizer for p in people], dtype=float)
    return {
        "joints": joints,
        "joints_image": joints_image,
        "visible": visible,
        "missing": missing,
        "crop_to_image": a_all,
        "normalizer": normalizer,
        "headbox": headbox,
        "center": center,
        "scale": scale,
    }


SPLIT_BYTES_PER_PERSON = 1024
"""Labels, geometry and names of one person in a split file, with HDF5's chunk overhead (an upper
estimate: the smoke splits hold ~600 B per person besides the crops)."""


def split_disk_bytes(n: int, crop: int) -> int:
    """Bytes a split of ``n`` people with ``crop``² px crops needs on disk: the crops are stored
    uncompressed (one chunk each), so this is their size plus :data:`SPLIT_BYTES_PER_PERSON` and
    1 MiB of file structure."""
    return n * (3 * crop * crop + SPLIT_BYTES_PER_PERSON) + 2**20


def check_free_disk(out_path: Path, *, split: str, n: int, crop: int) -> None:
    """Refuse, before anything is written, a split larger than the free disk (with the estimate):
    the MPII training split at the paper's 1.5 margin is 22,246 crops of 384² px, 9.8 GB."""
    need = split_disk_bytes(n, crop)
    folder, free = free_disk(Path(out_path).parent)
    if need > free:
        raise PrepareError(
            f"{out_path}: the {split} split needs about {need / 1e9:,.2f} GB ({n:,} crops of {crop}x{crop} px), "
            f"but {folder} has {free / 1e9:,.2f} GB free; free space there, or lower input_res or crop_margin"
        )


def prepare_split(
    people: list[PersonRecord],
    images_dir: Path,
    out_path: Path,
    *,
    dataset: str,
    split: str,
    input_res: int,
    crop_margin: float,
    source_checksums: dict,
    workers: int = 1,
    progress: bool = False,
    layout: Layout = MPII_LAYOUT,
) -> None:
    """Write one processed split file for ``people`` (in that order). See the module docstring.

    ``people`` are :class:`~hgbench.data.mpii.PersonRecord` s or records with the same attributes
    (:class:`~hgbench.data.flic.FlicRecord`): joints (J, 2) native px with J = len(layout.joint_names),
    ``normalizer`` in native px. ``layout`` gives joint names, flip permutation, the normaliser's
    definition and whether the hourglass box adjustment applies. A concurrent writer of the same
    file must be excluded by the caller (:func:`hgbench.iofiles.output_lock`, as the functions below do).
    """
    images_dir, out_path = Path(images_dir), Path(out_path)
    n = len(people)
    c = crop_size(input_res, crop_margin)
    check_free_disk(out_path, split=split, n=n, crop=c)
    g = split_geometry(people, input_res=input_res, crop_margin=crop_margin, layout=layout)
    a_all = g["crop_to_image"]

    tasks = []
    for name, grp in groupby(range(n), key=lambda i: people[i].image_name):
        idx = list(grp)
        specs = []
        for i in idx:
            specs.append(crop_spec(a_all[i]))
        tasks.append((str(images_dir / name), specs, c))

    out_path.parent.mkdir(parents=True, exist_ok=True)
    # The caller's lock on the output (prepare_dataset, prepare_flic, prepare_sample) makes the
    # fixed temporary name safe: no live process is writing it, so a leftover is a killed run's.
    tmp = out_path.with_name(out_path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    _write_split(
        tmp,
        out_path,
        people,
        tasks,
        g,
        n=n,
        c=c,
        dataset=dataset,
        split=split,
        input_res=input_res,
        crop_margin=crop_margin,
        source_checksums=source_checksums,
        workers=workers,
        progress=progress,
        layout=layout,
    )


def _checked(h5: h5py.File, name: str, data: np.ndarray) -> None:
    """A fixed-size dataset with a Fletcher-32 checksum (h5py picks the chunking; empty → none)."""
    if data.size:
        h5.create_dataset(name, data=data, fletcher32=True, chunks=True)
    else:  # HDF5 cannot chunk a zero-sized dataset
        h5.create_dataset(name, data=data)


def _write_split(
    tmp: Path,
    out_path: Path,
    people: list,
    tasks: list,
    g: dict,
    *,
    n: int,
    c: int,
    dataset: str,
    split: str,
    input_res: int,
    crop_margin: float,
    source_checksums: dict,
    workers: int,
    progress: bool,
    layout: Layout,
) -> None:
    """Write ``tmp``, check it, rename it to ``out_path``; on any failure (or signal) remove ``tmp``."""
    joints, joints_image, visible, missing = g["joints"], g["joints_image"], g["visible"], g["missing"]
    a_all, normalizer, headbox, center, scale = (
        g["crop_to_image"],
        g["normalizer"],
        g["headbox"],
        g["center"],
        g["scale"],
    )
    pool = None
    try:
        if workers > 1 and len(tasks) > 1:
            # the pool starts before the HDF5 file is opened, so no child inherits an open handle
            pool = _mp_context().Pool(min(workers, len(tasks)))
        with h5py.File(tmp, "w", libver=HDF5_LIBVER) as h5:
            h5.create_dataset(
                "images",
                shape=(n, c, c, 3),
                dtype=np.uint8,
                chunks=(1, c, c, 3),
                maxshape=(None, c, c, 3),
                fletcher32=True,
            )
            _checked(h5, "joints", joints.astype(np.float32))
            _checked(h5, "joints_image", joints_image)
            _checked(h5, "visible", visible)
            _checked(h5, "missing", missing)
            _checked(h5, "crop_to_image", a_all)
            _checked(h5, "normalizer", normalizer)
            _checked(h5, "headbox", headbox)
            _checked(h5, "center", center)
            _checked(h5, "scale", scale)
            # Fixed-length, so that the names are in checksummed chunks (schema.fixed_utf8).
            names = fixed_utf8([p.image_name for p in people])
            if n:
                h5.create_dataset("image_name", data=names, fletcher32=True, chunks=True)
            else:
                h5.create_dataset("image_name", shape=(0,), dtype=h5py.string_dtype("utf-8", 1))
            _checked(h5, "image_index", np.array([p.image_index for p in people], dtype=np.int64).reshape(n))
            _checked(h5, "person_index", np.array([p.person_index for p in people], dtype=np.int64).reshape(n))
            attrs = {
                "schema_version": SCHEMA_VERSION,
                "dataset": dataset,
                "split": split,
                "joint_names": list(layout.joint_names),
                "flip_permutation": np.array(layout.flip_permutation, dtype=np.int64),
                "input_res": int(input_res),
                "crop_size": int(c),
                "crop_margin": float(crop_margin),
                "frame_offset": FRAME_OFFSET,
                "normalizer_definition": layout.normalizer_definition,
                "source_checksums": json.dumps(dict(sorted(source_checksums.items()))),
                "code_version": code_version(),
            }
            for k, v in attrs.items():
                if isinstance(v, str) or (isinstance(v, list) and all(isinstance(x, str) for x in v)):
                    set_str_attr(h5, k, v)  # fixed-length: inside the checksummed header
                else:
                    h5.attrs[k] = v

            if pool is not None:
                results = pool.imap(_crop_image_task, tasks, chunksize=max(1, min(16, len(tasks) // (8 * workers))))
            else:
                results = map(_crop_image_task, tasks)
            bar = None
            if progress:
                from tqdm import tqdm

                bar = tqdm(total=n, desc=f"{dataset}/{split}", unit="person")
            row = 0
            images = h5["images"]
            for crops in results:
                for crop in crops:
                    images[row] = crop
                    row += 1
                if bar is not None:
                    bar.update(len(crops))
            if bar is not None:
                bar.close()
            if row != n:
                raise RuntimeError(f"internal error: wrote {row} crops for {n} people")
        if pool is not None:
            pool.close()
            pool.join()
            pool = None
        open_split(tmp).close()  # the file we are about to publish follows the schema
        os.replace(tmp, out_path)
    except BaseException:
        if pool is not None:
            pool.terminate()
            pool.join()
        tmp.unlink(missing_ok=True)
        raise


def prepare_dataset(
    raw_dir: Path,
    out_dir: Path,
    *,
    dataset: str,
    input_res: int,
    crop_margin: float,
    workers: int = 1,
    progress: bool = False,
    split_csv: Path | None = None,
) -> dict:
    """Raw MPII-layout dataset → ``out_dir/train.h5`` and ``out_dir/valid.h5``.

    valid = the people listed in ``raw_dir/valid_split.csv`` (else ``split_csv``; for real MPII
    pass :data:`hgbench.data.mpii.MPII_VALID_SPLIT`), in that order; train = every annotated
    person of the ``img_train == 1`` images that hold no validation person. Returns counts.
    """
    raw_dir, out_dir = Path(raw_dir), Path(out_dir)
    # One prepare per output folder: a second one fails here, before any work.
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    with output_lock(out_dir, "hgbench prepare"):
        return _prepare_dataset(
            raw_dir,
            out_dir,
            dataset=dataset,
            input_res=input_res,
            crop_margin=crop_margin,
            workers=workers,
            progress=progress,
            split_csv=split_csv,
        )


def _prepare_dataset(
    raw_dir: Path,
    out_dir: Path,
    *,
    dataset: str,
    input_res: int,
    crop_margin: float,
    workers: int,
    progress: bool,
    split_csv: Path | None,
) -> dict:
    mat = raw_dir / RELEASE_RELPATH
    if not mat.is_file():
        raise PrepareError(
            f"annotation file {mat} not found; run `hgbench fetch ...` for dataset {dataset!r} "
            f"first (real MPII: see README 'Real datasets' for the manual route)"
        )
    split_path = raw_dir / SPLIT_FILENAME
    if not split_path.is_file():
        if split_csv is None:
            raise PrepareError(
                f"no split list: {split_path} does not exist and no split_csv was given "
                f"(real MPII: use {mpii.MPII_VALID_SPLIT})"
            )
        split_path = Path(split_csv)
    images_dir = raw_dir / "images"
    if not images_dir.is_dir():
        raise PrepareError(f"image folder {images_dir} not found; run `hgbench fetch ...` for dataset {dataset!r}")

    release = mpii.load_release(mat)
    split = mpii.load_split(split_path)
    train, valid = mpii.split_people(release, split)
    valid_images = {i for i, _ in split}

    def key(path: Path) -> str:
        try:
            return path.resolve().relative_to(raw_dir.resolve()).as_posix()
        except ValueError:
            return path.name

    checksums = {key(mat): _sha256(mat), key(split_path): _sha256(split_path)}
    manifest = raw_dir / MANIFEST_FILENAME
    if manifest.is_file():  # the synthetic manifest lists the sha256 of every image
        checksums[key(manifest)] = _sha256(manifest)
    common = dict(
        dataset=dataset,
        input_res=input_res,
        crop_margin=crop_margin,
        source_checksums=checksums,
        workers=workers,
        progress=progress,
    )
    prepare_split(train, images_dir, out_dir / "train.h5", split="train", **common)
    prepare_split(valid, images_dir, out_dir / "valid.h5", split="valid", **common)
    return {
        "train": len(train),
        "valid": len(valid),
        "train_images": len({p.image_index for p in train}),
        "valid_images": len(valid_images),
        "crop_size": crop_size(input_res, crop_margin),
    }


TEST_FILENAME = "test.h5"


def prepare_test(
    raw_dir: Path,
    out_dir: Path,
    *,
    dataset: str,
    input_res: int,
    crop_margin: float,
    workers: int = 1,
    progress: bool = False,
) -> dict:
    """Raw MPII-layout dataset → ``out_dir/test.h5``: the MPII test split, for the test server.

    Every single-person person of the ``img_train == 0`` images (:func:`hgbench.data.mpii.split_test_people`),
    in RELEASE order, cropped by the same code as train/valid from the rough location the benchmark
    gives (``objpos``/``scale``, hourglass adjustment applied once). The test labels are withheld by
    MPI: ``joints``/``joints_image`` are NaN, ``missing`` all True, ``visible`` all False,
    ``normalizer`` NaN unless the rect has a head box; attribute ``split = test``. ``predict`` reads it
    like any split; ``evaluate`` refuses it; ``hgbench export-mpii --split test`` turns its
    predictions into the submission file. The lock is on ``test.h5`` alone, so it may run beside the
    train/valid ``prepare`` of the same folder. Returns counts.
    """
    raw_dir, out_dir = Path(raw_dir), Path(out_dir)
    out_path = out_dir / TEST_FILENAME
    out_dir.mkdir(parents=True, exist_ok=True)
    with output_lock(out_path, "hgbench prepare --split test"):
        mat = raw_dir / RELEASE_RELPATH
        if not mat.is_file():
            raise PrepareError(
                f"annotation file {mat} not found; run `hgbench fetch ...` for dataset {dataset!r} "
                f"first (real MPII: see README 'Real datasets' for the manual route)"
            )
        images_dir = raw_dir / "images"
        if not images_dir.is_dir():
            raise PrepareError(f"image folder {images_dir} not found; run `hgbench fetch ...` for dataset {dataset!r}")
        release = mpii.load_release(mat)
        people = mpii.split_test_people(release)
        if not people:
            raise PrepareError(
                f"{mat}: no test people (single-person rects with objpos and scale in images with "
                f"img_train == 0); the MPII test split needs the official annotation file"
            )
        checksums = {RELEASE_RELPATH: _sha256(mat)}
        if (raw_dir / MANIFEST_FILENAME).is_file():
            checksums[MANIFEST_FILENAME] = _sha256(raw_dir / MANIFEST_FILENAME)
        prepare_split(
            people,
            images_dir,
            out_path,
            dataset=dataset,
            split="test",
            input_res=input_res,
            crop_margin=crop_margin,
            source_checksums=checksums,
            workers=workers,
            progress=progress,
        )
    return {
        "test": len(people),
        "test_images": len({p.image_index for p in people}),
        "crop_size": crop_size(input_res, crop_margin),
    }


def prepare_flic(
    raw_dir: Path,
    out_dir: Path,
    *,
    dataset: str,
    input_res: int,
    crop_margin: float,
    labels: str = "observer",
    workers: int = 1,
    progress: bool = False,
) -> dict:
    """Raw FLIC (``raw_dir/FLIC/examples.mat`` + ``raw_dir/FLIC/images/``) → ``train.h5`` (3987) and
    ``valid.h5`` (the 1016-person test set, the paper's evaluation set).

    ``labels``: ``observer`` (default, the paper's) or ``person`` (see :mod:`hgbench.data.flic`).
    """
    raw_dir, out_dir = Path(raw_dir), Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    with output_lock(out_dir, "hgbench prepare"):
        return _prepare_flic(
            raw_dir,
            out_dir,
            dataset=dataset,
            input_res=input_res,
            crop_margin=crop_margin,
            labels=labels,
            workers=workers,
            progress=progress,
        )


def _prepare_flic(
    raw_dir: Path,
    out_dir: Path,
    *,
    dataset: str,
    input_res: int,
    crop_margin: float,
    labels: str,
    workers: int,
    progress: bool,
) -> dict:
    mat = raw_dir / flic.EXAMPLES_RELPATH
    images_dir = raw_dir / flic.IMAGES_RELPATH
    if not mat.is_file():
        raise PrepareError(f"annotation file {mat} not found; run `hgbench fetch ...` for dataset {dataset!r} first")
    if not images_dir.is_dir():
        raise PrepareError(f"image folder {images_dir} not found; run `hgbench fetch ...` for dataset {dataset!r}")
    examples = flic.load_examples(mat)
    train = flic.people(examples, "train", labels)
    valid = flic.people(examples, "test", labels)
    checksums = {flic.EXAMPLES_RELPATH: _sha256(mat)}
    if (raw_dir / MANIFEST_FILENAME).is_file():
        checksums[MANIFEST_FILENAME] = _sha256(raw_dir / MANIFEST_FILENAME)
    common = dict(
        dataset=dataset,
        input_res=input_res,
        crop_margin=crop_margin,
        source_checksums=checksums,
        workers=workers,
        progress=progress,
        layout=flic.FLIC_LAYOUT,
    )
    prepare_split(train, images_dir, out_dir / "train.h5", split="train", **common)
    prepare_split(valid, images_dir, out_dir / "valid.h5", split="valid", **common)
    return {"train": len(train), "valid": len(valid), "labels": labels, "crop_size": crop_size(input_res, crop_margin)}


def prepare_sample(
    annotations: Path,
    images_dir: Path,
    out_path: Path,
    *,
    input_res: int,
    crop_margin: float,
    dataset: str = "mpii",
    split: str = "valid",
    workers: int = 1,
) -> int:
    """A small MPII split file from a handful of real images (e.g. the 5 in ``tests/data/mpii``).

    ``annotations`` is a ``RELEASE``-layout ``.mat`` (every annotated person, with head boxes)
    or an HRNet ``valid.json``-format ``.json`` such as mmpose's ``test_mpii.json`` (no head
    boxes: ``normalizer`` is NaN). Returns the number of people written.
    """
    annotations = Path(annotations)
    if annotations.suffix.lower() == ".json":
        people = mpii.people_from_hrnet_json(annotations)
    else:
        people = mpii.people(mpii.load_release(annotations))
    Path(out_path).parent.mkdir(parents=True, exist_ok=True)
    with output_lock(out_path, "prepare_sample"):
        prepare_split(
            people,
            Path(images_dir),
            Path(out_path),
            dataset=dataset,
            split=split,
            input_res=input_res,
            crop_margin=crop_margin,
            source_checksums={annotations.name: _sha256(annotations)},
            workers=workers,
        )
    return len(people)


SAMPLES = Path(__file__).with_name("samples") / "mpii"
"""Five real MPII validation people shipped with hgbench (``release_subset.mat`` + ``images/``;
``samples/mpii/README.md``), shown in every report's gallery."""
SAMPLES_FILENAME = "samples.h5"
SAMPLES_SPLIT = "samples"


@dataclasses.dataclass(frozen=True, eq=False)
class UnlabelledRecord:
    """A person without labels in the dataset's layout (same attributes as ``mpii.PersonRecord``)."""

    image_name: str
    image_index: int
    person_index: int
    joints: np.ndarray  # (J, 2) all NaN
    visible: np.ndarray  # (J,) all False
    headbox: np.ndarray  # (2, 2) NaN
    objpos: np.ndarray  # (2,) the MPII rect's rough position, native 1-based px
    scale: float  # the MPII rect's scale
    normalizer: float  # NaN


def _unlabelled(people: list[PersonRecord], joints: int) -> list[UnlabelledRecord]:
    return [
        UnlabelledRecord(
            image_name=p.image_name,
            image_index=p.image_index,
            person_index=p.person_index,
            joints=np.full((joints, 2), np.nan),
            visible=np.zeros(joints, bool),
            headbox=np.full((2, 2), np.nan),
            objpos=p.objpos,
            scale=p.scale,
            normalizer=math.nan,
        )
        for p in people
    ]


def prepare_samples(
    out_dir: Path,
    *,
    dataset: str,
    input_res: int,
    crop_margin: float,
    layout: str = "mpii",
    samples: Path = SAMPLES,
    workers: int = 1,
) -> dict:
    """The real sample photographs → ``out_dir/samples.h5`` (attribute ``split = samples``), a split
    like any other: ``predict`` reads it, the gallery shows its people beside the validation ones.

    The people of ``samples/release_subset.mat`` (every annotated person, RELEASE order) are cut by
    the same code as train/valid at the dataset's ``input_res``/``crop_margin``, from their MPII
    rect (``objpos``/``scale``, hourglass adjustment applied once). The photographs are labelled
    with MPII's 16 joints, so only an MPII-layout dataset (``layout = "mpii"``: real MPII, the
    synthetic set) gets them labelled. Another kind (FLIC) gets the same people in its own
    layout (its joints and flip permutation) without labels, like ``test.h5``: ``joints``
    NaN, ``missing`` all True, ``normalizer`` NaN. That file exists only because DVC cannot leave
    a dataset out of a ``foreach`` stage (dvc.yaml, ``prepare_samples`` and ``predict``); the
    gallery shows no unlabelled people. The lock is on ``samples.h5`` alone, so it may run beside
    the train/valid ``prepare`` of the same folder. Returns counts.
    """
    samples, out_path = Path(samples), Path(out_dir) / SAMPLES_FILENAME
    mat, images_dir = samples / "release_subset.mat", samples / "images"
    if not mat.is_file() or not images_dir.is_dir():
        raise PrepareError(
            f"sample photographs not found in {samples} (release_subset.mat and images/); "
            f"the hgbench installation is incomplete: reinstall it"
        )
    kind = kind_of(layout)
    people = mpii.people(mpii.load_release(mat))
    # The kind's joints; the crop is placed from the MPII rect with MPII's box rule, whatever the kind.
    split_layout = Layout(
        joint_names=kind.joints,
        flip_permutation=kind.flip,
        normalizer_definition=kind.normalizer_definition,
        hourglass_adjust=MPII.hourglass_adjust,
    )
    labelled = kind is MPII  # the photographs carry MPII's labels
    if not labelled:
        people = _unlabelled(people, len(kind.joints))
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with output_lock(out_path, "hgbench prepare --split samples"):
        prepare_split(
            people,
            images_dir,
            out_path,
            dataset=dataset,
            split=SAMPLES_SPLIT,
            input_res=input_res,
            crop_margin=crop_margin,
            source_checksums={mat.name: _sha256(mat)},
            workers=workers,
            layout=split_layout,
        )
    return {"samples": len(people), "labelled": labelled, "crop_size": crop_size(input_res, crop_margin)}
