"""The standard MPII validation split's ground truth, exactly as the official annotation list has it.

The MPII toolkit (``evalMPII``: ``annolist2matrix``, ``getHeadSizeAll``) scores against the
annotation list (``RELEASE.annolist``), not against Tompson et al.'s ``gt_valid.mat`` /
``detections_our_format.mat``, whose ``pos_gt_src`` zeroes x and/or y of 13 annotated joints and
carries up to 1e-4 px of float noise on every coordinate. hgbench ships the annotation-list values
of the 2958 standard validation people (Tompson's split, the order of ``mpii_valid_split.csv``) as
``mpii_valid_gt.h5`` next to this module (:data:`VALID_GT`, about 300 KB), so that ``hgbench
evaluate --predictions P`` scores the official way without the 12 GB release.

Provenance: built by ``tests/data/mpii/make_valid_gt.py`` from the ``annolist`` of Tompson et al.'s
``detections.mat`` (bearpaw/pytorch-pose ``evaluation/data/detections.mat``, sha256 ``cfb56b43…ef4d13``),
whose 2958 entries hold, one rect each, the annotation-list records of the validation people;
``RELEASE_img_index`` / ``RELEASE_person_index`` (1-based) place them in ``RELEASE`` and equal the
split list row for row. ``tests/test_mpii_gt.py`` checks the shipped file against those records.

File layout (HDF5, every dataset gzip + shuffle + Fletcher-32; N = 2958 rows in split order):

* ``joints`` (N, 16, 2) float64: x, y in native MATLAB **1-based** image pixels, NaN where the joint
  is not annotated (no ``annopoints.point`` with that id);
* ``missing`` (N, 16) bool: not annotated (never scored);
* ``visible`` (N, 16) bool: ``is_visible`` (an empty field reads as visible, as in pose-hg-train;
  False where missing);
* ``headbox`` (N, 2, 2) float64: ``[[x1, y1], [x2, y2]]`` of the rect, 1-based px;
* ``objpos`` (N, 2) float64 (1-based px) and ``scale`` (N,) float64: the rect's rough position and
  scale (person height ≈ 200·scale px), as annotated (no hourglass adjustment);
* ``image_index``, ``person_index`` (N,) int64: 0-based ``RELEASE.annolist`` / ``annorect`` indices;
* attributes ``hgbench_ground_truth`` (= :data:`KIND`), ``source`` (file name and sha256),
  ``built_by``, ``split`` (the split list's sha256), ``joint_names``, ``frame``.

The PCKh normaliser is derived, not stored: :func:`head_size`.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import h5py
import numpy as np
import scipy.io

from hgbench.data import mpii
from hgbench.iofiles import atomic_path
from hgbench.joints import MPII_JOINTS

VALID_GT = Path(__file__).with_name("mpii_valid_gt.h5")
"""The shipped ground truth of the standard validation split (see the module docstring)."""
KIND = "mpii-valid-annolist"
"""Value of the ``hgbench_ground_truth`` attribute that marks a file of this layout."""
N_VALID = 2958
SC_BIAS = 0.6
"""PCKh head size = SC_BIAS × head-box diagonal (util_get_head_size.m)."""
FIELDS = ("joints", "missing", "visible", "headbox", "objpos", "scale", "image_index", "person_index")


def head_size(headbox: np.ndarray) -> np.ndarray:
    """PCKh normaliser (…,) native px of head boxes (…, 2, 2): 0.6 × ‖corner2 − corner1‖.

    ``sqrt(dx·dx + dy·dy)``, correctly rounded; for the integer MPII boxes it is exact up to that
    one rounding, which is what decides exact ties such as a distance of exactly 0.5 head sizes.
    """
    d = np.asarray(headbox, dtype=np.float64)
    d = d[..., 1, :] - d[..., 0, :]
    return SC_BIAS * np.sqrt(d[..., 0] * d[..., 0] + d[..., 1] * d[..., 1])


def arrays_from_people(people: list[mpii.PersonRecord]) -> dict[str, np.ndarray]:
    """The :data:`FIELDS` of :class:`~hgbench.data.mpii.PersonRecord` s, in their order."""
    n = len(people)
    j = len(MPII_JOINTS)
    joints = np.stack([p.joints for p in people]) if n else np.zeros((0, j, 2))
    return {
        "joints": joints,
        "missing": np.isnan(joints[..., 0]),
        "visible": np.stack([p.visible for p in people]) if n else np.zeros((0, j), bool),
        "headbox": np.stack([p.headbox for p in people]) if n else np.zeros((0, 2, 2)),
        "objpos": np.stack([p.objpos for p in people]) if n else np.zeros((0, 2)),
        "scale": np.array([p.scale for p in people], dtype=np.float64),
        "image_index": np.array([p.image_index for p in people], dtype=np.int64),
        "person_index": np.array([p.person_index for p in people], dtype=np.int64),
    }


def _sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def read_annotation_people(
    path: str | Path, split_csv: str | Path = mpii.MPII_VALID_SPLIT
) -> tuple[list[mpii.PersonRecord], str]:
    """The standard split's people from an annotation file, and which layout it was.

    ``path`` is either the official ``RELEASE`` file (``mpii_human_pose_v1_u12_1.mat``, or any file
    in its layout): the people named by ``split_csv`` in its order → ``"release"``; or a bare
    annotation list with ``RELEASE_img_index`` / ``RELEASE_person_index`` (Tompson's
    ``detections.mat``): its entries in its order, one rect each, placed by those indices →
    ``"annolist"``. Raises :class:`~hgbench.data.mpii.MPIIFormatError` naming the file otherwise.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"annotation file {path} not found")
    try:
        mat = scipy.io.loadmat(str(path), struct_as_record=False, squeeze_me=True)
    except Exception as exc:  # scipy raises several types on damaged or non-MAT input
        raise mpii.MPIIFormatError(f"{path}: cannot read the MATLAB file ({exc})") from None
    release = mpii.release_from_mat(mat, str(path))
    if "RELEASE" in mat:
        return mpii.people(release, mpii.load_split(split_csv)), "release"
    if not {"RELEASE_img_index", "RELEASE_person_index"} <= mat.keys():
        raise mpii.MPIIFormatError(
            f"{path}: a bare annolist without RELEASE_img_index/RELEASE_person_index cannot be placed in "
            f"RELEASE; give the official mpii_human_pose_v1_u12_1.mat (RELEASE) instead"
        )
    people = mpii.people(release)
    img = np.asarray(mat["RELEASE_img_index"], dtype=np.int64).reshape(-1) - 1
    rect = np.asarray(mat["RELEASE_person_index"], dtype=np.int64).reshape(-1) - 1
    if not (len(people) == len(release) == img.size == rect.size):
        raise mpii.MPIIFormatError(
            f"{path}: expected one annotated rect per annolist entry and one RELEASE_img_index/"
            f"RELEASE_person_index per entry; found {len(people)} people, {len(release)} entries, "
            f"{img.size}/{rect.size} indices"
        )
    placed = [
        mpii.PersonRecord(
            image_name=p.image_name,
            image_index=int(i),
            person_index=int(r),
            joints=p.joints,
            visible=p.visible,
            headbox=p.headbox,
            objpos=p.objpos,
            scale=p.scale,
            is_train=p.is_train,
        )
        for p, i, r in zip(people, img, rect)
    ]
    return placed, "annolist"


def build_valid_gt(annotations: str | Path, split_csv: str | Path = mpii.MPII_VALID_SPLIT) -> dict[str, np.ndarray]:
    """:data:`FIELDS` of the standard validation split from an annotation file (see
    :func:`read_annotation_people`); the people must be exactly the split list's, in its order."""
    people, _ = read_annotation_people(annotations, split_csv)
    split = mpii.load_split(split_csv)
    got = [(p.image_index, p.person_index) for p in people]
    if got != split:
        first = next((k for k, (a, b) in enumerate(zip(got, split)) if a != b), min(len(got), len(split)))
        raise mpii.MPIIFormatError(
            f"{annotations}: its people are not the split {split_csv} in order "
            f"({len(got)} vs {len(split)} people, first difference at row {first})"
        )
    return arrays_from_people(people)


def write_valid_gt(
    arrays: dict[str, np.ndarray],
    out: str | Path,
    *,
    source: Path,
    split_csv: str | Path = mpii.MPII_VALID_SPLIT,
    built_by: str = "",
) -> Path:
    """Write :data:`FIELDS` to ``out`` (the layout of the module docstring), atomically."""
    out = Path(out)
    attrs = {
        "hgbench_ground_truth": KIND,
        "source": json.dumps({"file": Path(source).name, "sha256": _sha256(source)}),
        "split": json.dumps({"file": Path(split_csv).name, "sha256": _sha256(split_csv)}),
        "built_by": built_by,
        "frame": "native MATLAB 1-based image pixels",
    }
    with atomic_path(out) as tmp, h5py.File(tmp, "w", libver="v110", track_order=True) as f:
        for key in FIELDS:
            data = np.ascontiguousarray(arrays[key])
            # shuffle groups the doubles' bytes, which halves the size under gzip
            f.create_dataset(
                key, data=data, compression="gzip", compression_opts=9, shuffle=True, fletcher32=True, track_times=False
            )
        for key, value in attrs.items():
            f.attrs[key] = np.bytes_(value)
        f.attrs["joint_names"] = np.array([n.encode() for n in MPII_JOINTS])
    return out


def is_valid_gt_file(path: str | Path) -> bool:
    """True when ``path`` is an HDF5 file in this module's layout."""
    path = Path(path)
    if not (path.is_file() and h5py.is_hdf5(path)):
        return False
    try:
        with h5py.File(path, "r") as f:
            kind = f.attrs.get("hgbench_ground_truth")
    except OSError:
        return False
    return (kind.decode() if isinstance(kind, bytes) else kind) == KIND


def load_valid_gt(path: str | Path = VALID_GT) -> dict[str, np.ndarray]:
    """Read a file in this layout (default: the shipped :data:`VALID_GT`) as :data:`FIELDS` arrays.

    Raises ValueError naming the file and the fix when it is missing, damaged or incomplete.
    """
    path = Path(path)
    fix = (
        "reinstall hgbench (the file ships with the package)"
        if path == VALID_GT
        else "rebuild it with tests/data/mpii/make_valid_gt.py"
    )
    if not path.is_file():
        raise FileNotFoundError(f"{path}: MPII validation ground truth not found; {fix}")
    try:
        with h5py.File(path, "r") as f:
            absent = [k for k in FIELDS if k not in f]
            if absent:
                raise ValueError(f"{path}: dataset(s) {', '.join(absent)} missing; {fix}")
            out = {k: f[k][()] for k in FIELDS}
    except (OSError, KeyError, RuntimeError) as exc:
        raise ValueError(
            f"{path}: cannot read the ground truth, the file is truncated or corrupt "
            f"({type(exc).__name__}: {exc}); {fix}"
        ) from None
    n = out["joints"].shape[0]
    shapes = {
        "joints": (n, 16, 2),
        "missing": (n, 16),
        "visible": (n, 16),
        "headbox": (n, 2, 2),
        "objpos": (n, 2),
        "scale": (n,),
        "image_index": (n,),
        "person_index": (n,),
    }
    for key, shape in shapes.items():
        if out[key].shape != shape:
            raise ValueError(f"{path}: dataset '{key}' has shape {out[key].shape}, expected {shape}; {fix}")
    out["missing"] = out["missing"].astype(bool)
    out["visible"] = out["visible"].astype(bool)
    return out
