"""Parser of the official MPII Human Pose ``RELEASE`` struct (``mpii_human_pose_v1_u12_1.mat``).

:func:`load_release` reads the ``.mat`` file into a :class:`Release`; :func:`people` turns it
into :class:`PersonRecord` s (one per annotated person, joints in the native **1-based** MATLAB
frame, NaN where a joint is not annotated). The same functions read the embedded synthetic
dataset, which is written in this layout, and a bare ``annolist`` such as the one in Tompson et
al.'s ``detections.mat`` (same struct layout as ``RELEASE.annolist``).

Quirks of the real file that are handled here (docs/data.md, "MPII"):

* fields that are absent, or present as empty ``[]`` arrays (test images have no head box and no
  ``annopoints``; some ``annolist`` entries have no ``annorect``);
* a struct array of one element (a single ``point``, a single ``annorect``) comes back from
  ``scipy.io.loadmat(squeeze_me=True)`` as a struct, not an array;
* ``is_visible`` may be empty (treated as visible = 1, as pose-hg-train's ``mpii.py`` does), a
  number, or a string such as ``'1'``;
* annorects without ``annopoints`` (or with an empty point list) are not pose data and are
  skipped, as are people without ``objpos``/``scale`` (a crop cannot be placed without them);
* any ``loadmat`` choice of ``squeeze_me`` / ``struct_as_record`` (:func:`release_from_mat`
  accepts the dict ``loadmat`` returns in either form).

The standard validation split (Tompson et al. 2015; 2958 people in 2729 images, all from
``img_train == 1`` images) ships as ``mpii_valid_split.csv`` next to this module
(:data:`MPII_VALID_SPLIT`). It was generated from pose-hg-train's ``data/mpii/annot/valid.h5``
(princeton-vl/pose-hg-train, snapshot 2fef6915, sha256 6c9e29d1…b2b760): one row per person,
in that file's order, ``image_index = int(index)`` and ``person_index = int(person)`` — both
0-based indices into ``RELEASE.annolist`` and ``annolist(i).annorect``.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import scipy.io

from hgbench.joints import MPII_JOINTS

J = len(MPII_JOINTS)
MPII_VALID_SPLIT = Path(__file__).with_name("mpii_valid_split.csv")
"""The standard MPII validation split (2958 rows, header ``image_index,person_index``)."""
SPLIT_HEADER = ("image_index", "person_index")


class MPIIFormatError(ValueError):
    """An annotation or split file does not have the expected MPII layout."""


@dataclass(frozen=True, eq=False)
class PersonRecord:
    """One annotated person. Coordinates in the native (1-based MATLAB pixel) frame."""

    image_name: str
    image_index: int  # 0-based annolist index
    person_index: int  # 0-based annorect index
    joints: np.ndarray  # (16, 2) float64, NaN where not annotated
    visible: np.ndarray  # (16,) bool, is_visible = 1 (False where not annotated)
    headbox: np.ndarray  # (2, 2) [[x1, y1], [x2, y2]], NaN if the rect has no head box
    objpos: np.ndarray  # (2,) rough person position (x, y)
    scale: float  # MPII person scale (box side 200·scale px)
    is_train: bool  # img_train == 1

    @property
    def missing(self) -> np.ndarray:
        """(16,) bool: joint not annotated."""
        return np.isnan(self.joints[:, 0])

    @property
    def normalizer(self) -> float:
        """PCKh head size: 0.6 × head-box diagonal, native px (NaN without a head box)."""
        return float(0.6 * np.linalg.norm(self.headbox[1] - self.headbox[0]))


@dataclass(frozen=True, eq=False)
class RectAnno:
    """One ``annorect`` as parsed (None where the field is absent or empty)."""

    headbox: np.ndarray | None
    objpos: np.ndarray | None
    scale: float | None
    points: tuple[tuple[int, float, float, bool], ...] | None  # (id, x, y, is_visible)


@dataclass(frozen=True, eq=False)
class ImageAnno:
    name: str
    rects: tuple[RectAnno, ...]


@dataclass(frozen=True, eq=False)
class Release:
    """The parts of ``RELEASE`` that pose benchmarks use."""

    source: str
    images: tuple[ImageAnno, ...]
    img_train: np.ndarray  # (N,) int: 1 train, 0 test, -1 unknown (bare annolist)
    single_person: tuple[tuple[int, ...], ...]  # 0-based annorect indices per image ((), if absent)

    def __len__(self) -> int:
        return len(self.images)


# ---------------------------------------------------------------------------------------------
# generic access to loadmat output (mat_struct, record arrays, dicts; squeezed or not)
# ---------------------------------------------------------------------------------------------


def _is_struct(x: Any) -> bool:
    return (
        isinstance(x, scipy.io.matlab.mat_struct)
        or isinstance(x, dict)
        or (isinstance(x, np.void) and x.dtype.names is not None)
    )


def _items(x: Any) -> list:
    """Elements of a struct array or cell array; a lone struct is a list of one; empty → []."""
    if x is None:
        return []
    if isinstance(x, np.ndarray):
        if x.size == 0:
            return []
        if x.dtype.names is not None:
            return [x.reshape(-1, order="F")[k] for k in range(x.size)]
        if x.dtype == object:
            out = []
            for e in x.reshape(-1, order="F"):
                out.extend(_items(e) if isinstance(e, np.ndarray) and e.dtype == object else [e])
            return out
        return list(x.reshape(-1, order="F"))
    return [x]


def _one(x: Any) -> Any:
    """The single element of a 1×1 array (recursively); None for empty arrays."""
    while isinstance(x, np.ndarray):
        if x.size == 0:
            return None
        if x.size > 1 and x.dtype.kind not in "US":
            return x
        if x.dtype.kind in "US" and x.size > 1:  # char matrix rows
            return "".join(str(v) for v in x.reshape(-1))
        x = x.reshape(-1)[0]
    return x


def _field(s: Any, name: str) -> Any:
    s = _one(s)
    if s is None:
        return None
    if isinstance(s, scipy.io.matlab.mat_struct):
        return getattr(s, name, None)
    if isinstance(s, dict):
        return s.get(name)
    if isinstance(s, np.void) and s.dtype.names is not None:
        return s[name] if name in s.dtype.names else None
    return None


def _scalar(x: Any) -> float | None:
    x = _one(x)
    if x is None:
        return None
    if isinstance(x, np.ndarray):  # more than one value where one is expected
        raise MPIIFormatError(f"expected a scalar, got an array of shape {x.shape}")
    if isinstance(x, bytes):
        x = x.decode()
    if isinstance(x, str):
        x = x.strip()
        if not x:
            return None
        return float(x)
    return float(x)


def _string(x: Any) -> str:
    x = _one(x)
    if x is None:
        return ""
    if isinstance(x, bytes):
        return x.decode()
    return str(x)


# ---------------------------------------------------------------------------------------------
# parsing
# ---------------------------------------------------------------------------------------------


def _parse_rect(rect: Any, where: str) -> RectAnno:
    corners = [_scalar(_field(rect, k)) for k in ("x1", "y1", "x2", "y2")]
    headbox = None
    if all(c is not None for c in corners):
        headbox = np.array(corners, dtype=float).reshape(2, 2)
    op = _field(rect, "objpos")
    objpos = None
    if _is_struct(_one(op)):
        ox, oy = _scalar(_field(op, "x")), _scalar(_field(op, "y"))
        if ox is not None and oy is not None:
            objpos = np.array([ox, oy], dtype=float)
    scale = _scalar(_field(rect, "scale"))
    points = None
    ap = _items(_field(rect, "annopoints"))
    if ap:
        pts = []
        for p in _items(_field(ap[0], "point")):
            pid, x, y = _scalar(_field(p, "id")), _scalar(_field(p, "x")), _scalar(_field(p, "y"))
            if pid is None or x is None or y is None:
                continue
            if not (0 <= pid < J and pid == int(pid)):
                raise MPIIFormatError(f"{where}: joint id {pid} is outside 0..{J - 1}")
            vis = _scalar(_field(p, "is_visible"))
            pts.append((int(pid), x, y, True if vis is None else bool(vis)))
        points = tuple(pts)
    return RectAnno(headbox=headbox, objpos=objpos, scale=scale, points=points)


def release_from_mat(mat: dict, source: str = "<mat>") -> Release:
    """Build a :class:`Release` from the dict ``scipy.io.loadmat`` returned (any options).

    Accepts a file with a ``RELEASE`` variable (official layout) or a bare ``annolist``
    variable (e.g. ``detections.mat``); for the latter ``img_train`` is unknown (-1).
    """
    if "RELEASE" in mat:
        rel = _one(mat["RELEASE"])
        annolist = _field(rel, "annolist")
        img_train_raw = _field(rel, "img_train")
        single_raw = _field(rel, "single_person")
    elif "annolist" in mat:
        annolist, img_train_raw, single_raw = mat["annolist"], None, None
    else:
        keys = ", ".join(k for k in mat if not k.startswith("__"))
        raise MPIIFormatError(f"{source}: no RELEASE (or annolist) variable; found: {keys or 'nothing'}")
    entries = _items(annolist)
    if not entries:
        raise MPIIFormatError(f"{source}: RELEASE.annolist is empty")
    images = []
    for i, e in enumerate(entries):
        name = _string(_field(_field(e, "image"), "name"))
        rects = tuple(
            _parse_rect(r, f"{source}: annolist({i + 1}).annorect({k + 1})")
            for k, r in enumerate(_items(_field(e, "annorect")))
        )
        images.append(ImageAnno(name=name, rects=rects))
    n = len(images)
    if img_train_raw is None or np.asarray(img_train_raw).size == 0:
        img_train = np.full(n, -1, dtype=np.int64)
    else:
        img_train = np.asarray(img_train_raw, dtype=float).reshape(-1).astype(np.int64)
        if img_train.size != n:
            raise MPIIFormatError(f"{source}: img_train has {img_train.size} entries for {n} images")
    single: list[tuple[int, ...]] = [()] * n
    if single_raw is not None:
        cells = _items(single_raw) if np.asarray(single_raw).dtype == object else None
        if cells is not None and len(cells) == n:
            single = [
                tuple(int(v) - 1 for v in np.asarray(c, dtype=float).reshape(-1)) if c is not None else ()
                for c in cells
            ]
    img_train.setflags(write=False)
    return Release(source=source, images=tuple(images), img_train=img_train, single_person=tuple(single))


def load_release(mat_path: str | Path) -> Release:
    """Read an MPII ``RELEASE`` .mat file (or a bare-annolist file such as ``detections.mat``)."""
    path = Path(mat_path)
    if not path.is_file():
        raise FileNotFoundError(f"MPII annotation file {path} not found")
    try:
        mat = scipy.io.loadmat(str(path), struct_as_record=False, squeeze_me=True)
    except Exception as exc:  # scipy raises ValueError/TypeError/OSError on damaged files
        raise MPIIFormatError(f"{path}: cannot read the MATLAB file ({exc}); re-download it") from None
    return release_from_mat(mat, str(path))


def _record(release: Release, i: int, r: int) -> PersonRecord | None:
    rect = release.images[i].rects[r]
    if not rect.points or rect.objpos is None or rect.scale is None:
        return None
    joints = np.full((J, 2), np.nan)
    visible = np.zeros(J, dtype=bool)
    for pid, x, y, vis in rect.points:
        joints[pid] = (x, y)
        visible[pid] = vis
    headbox = rect.headbox.copy() if rect.headbox is not None else np.full((2, 2), np.nan)
    objpos = rect.objpos.copy()
    for a in (joints, visible, headbox, objpos):
        a.setflags(write=False)
    return PersonRecord(
        image_name=release.images[i].name,
        image_index=i,
        person_index=r,
        joints=joints,
        visible=visible,
        headbox=headbox,
        objpos=objpos,
        scale=float(rect.scale),
        is_train=bool(release.img_train[i] == 1),
    )


def people(
    release: Release,
    indices: Iterable[tuple[int, int]] | None = None,
    *,
    train_only: bool = False,
    single_person_only: bool = False,
) -> list[PersonRecord]:
    """Annotated people of ``release``.

    Without ``indices``: every annorect with at least one joint and with ``objpos``/``scale``, in
    (image, annorect) order, optionally only ``img_train == 1`` images or only the
    ``single_person`` rects. With ``indices`` (0-based (image, person) pairs, e.g. from
    :func:`load_split`): exactly those people in that order; a pair that does not name an
    annotated person raises :class:`MPIIFormatError`.
    """
    if indices is not None:
        out = []
        for i, r in indices:
            if not (0 <= i < len(release.images)) or not (0 <= r < len(release.images[i].rects)):
                raise MPIIFormatError(
                    f"{release.source}: split names image {i} person {r}, which does not "
                    f"exist (0-based indices; {len(release.images)} images)"
                )
            rec = _record(release, i, r)
            if rec is None:
                raise MPIIFormatError(
                    f"{release.source}: split names image {i} person {r}, which has no "
                    f"joint annotations (or no objpos/scale)"
                )
            out.append(rec)
        return out
    out = []
    for i, img in enumerate(release.images):
        if train_only and release.img_train[i] != 1:
            continue
        for r in range(len(img.rects)):
            if single_person_only and r not in release.single_person[i]:
                continue
            rec = _record(release, i, r)
            if rec is not None:
                out.append(rec)
    return out


def split_test_people(release: Release) -> list[PersonRecord]:
    """The MPII test split: every single-person person of the ``img_train == 0`` images.

    In RELEASE order ((image, annorect) order), each annorect listed in the image's
    ``single_person`` that has the rough location the benchmark gives (``objpos`` and ``scale``; the
    official ``flatten_annolist`` drops rects without ``objpos``). MPI withholds the test joints:
    ``joints`` are all NaN (every joint missing), ``visible`` all False, ``headbox`` the rect's if it
    has one, else NaN, ``is_train`` False. A file without ``img_train`` (a bare annolist) has none.
    """
    out = []
    for i, img in enumerate(release.images):
        if release.img_train[i] != 0:
            continue
        for r, rect in enumerate(img.rects):
            if r not in release.single_person[i] or rect.objpos is None or rect.scale is None:
                continue
            joints = np.full((J, 2), np.nan)
            visible = np.zeros(J, dtype=bool)
            headbox = rect.headbox.copy() if rect.headbox is not None else np.full((2, 2), np.nan)
            objpos = rect.objpos.copy()
            for a in (joints, visible, headbox, objpos):
                a.setflags(write=False)
            out.append(
                PersonRecord(
                    image_name=img.name,
                    image_index=i,
                    person_index=r,
                    joints=joints,
                    visible=visible,
                    headbox=headbox,
                    objpos=objpos,
                    scale=float(rect.scale),
                    is_train=False,
                )
            )
    return out


def load_split(csv_path: str | Path) -> list[tuple[int, int]]:
    """Read a split list (header ``image_index,person_index``; 0-based indices)."""
    path = Path(csv_path)
    if not path.is_file():
        raise FileNotFoundError(f"split list {path} not found")
    out: list[tuple[int, int]] = []
    with path.open(newline="", encoding="utf-8-sig") as f:
        rows = csv.reader(f)
        header = next(rows, None)
        if header is None or tuple(h.strip() for h in header) != SPLIT_HEADER:
            raise MPIIFormatError(f"{path}: the first line must be 'image_index,person_index', got {header}")
        for line, row in enumerate(rows, start=2):
            if not row or all(not c.strip() for c in row):
                continue
            try:
                vals = [float(c) for c in row]
                if len(vals) != 2 or any(v != int(v) or v < 0 for v in vals):
                    raise ValueError
            except ValueError:
                raise MPIIFormatError(f"{path}:{line}: expected two non-negative integers, got {row}") from None
            out.append((int(vals[0]), int(vals[1])))
    if len(set(out)) != len(out):
        raise MPIIFormatError(f"{path}: a person is listed twice")
    return out


def split_people(release: Release, split: list[tuple[int, int]]) -> tuple[list[PersonRecord], list[PersonRecord]]:
    """(train, valid) people of the standard split.

    valid = exactly the people of ``split`` (0-based (image, person) pairs) in that order; train =
    every annotated person of the ``img_train == 1`` images that hold no validation person, in
    (image, annorect) order. For real MPII this is the 22,246-person training set of the
    hourglass code (its records equal bearpaw's ``mpii_annotations.json`` ``isValidation == 0``
    records, none of which shares an image with a validation person).
    """
    valid = people(release, split)
    valid_images = {i for i, _ in split}
    train = [p for p in people(release, train_only=True) if p.image_index not in valid_images]
    return train, valid


def people_from_hrnet_json(json_path: str | Path) -> list[PersonRecord]:
    """Records from an HRNet/mmpose ``valid.json``-format file (e.g. mmpose's ``test_mpii.json``).

    Each entry has ``image``, ``center`` (= MPII ``objpos``), ``scale`` (= MPII scale), ``joints``
    16×[x, y] in the native 1-based frame and ``joints_vis`` (1 = annotated). The format has no
    head box (``headbox`` and so ``normalizer`` are NaN), no MPII indices (``image_index`` = entry
    number, ``person_index`` = 0) and no occlusion flag (``visible`` = annotated).
    """
    import json

    path = Path(json_path)
    if not path.is_file():
        raise FileNotFoundError(f"annotation file {path} not found")
    try:
        entries = json.loads(path.read_text())
        out = []
        for k, e in enumerate(entries):
            present = np.asarray(e["joints_vis"], dtype=float).reshape(J) > 0
            joints = np.asarray(e["joints"], dtype=float).reshape(J, 2).copy()
            joints[~present] = np.nan
            headbox = np.full((2, 2), np.nan)
            objpos = np.asarray(e["center"], dtype=float).reshape(2).copy()
            visible = present.copy()
            for a in (joints, visible, headbox, objpos):
                a.setflags(write=False)
            out.append(
                PersonRecord(
                    image_name=str(e["image"]),
                    image_index=k,
                    person_index=0,
                    joints=joints,
                    visible=visible,
                    headbox=headbox,
                    objpos=objpos,
                    scale=float(e["scale"]),
                    is_train=False,
                )
            )
    except (ValueError, KeyError, TypeError) as exc:
        raise MPIIFormatError(f"{path}: not an HRNet valid.json-format list ({type(exc).__name__}: {exc})") from None
    return out
