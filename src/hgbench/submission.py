"""The MPII submission file: predictions → ``pred_keypoints_mpii.mat`` (``hgbench export-mpii``).

MPI never released the test-set joints; a test number comes from sending the predictions, in the
format the official test driver loads (``evaluatePCKh.m``: ``load(..., 'pred')``, then
``flatten_annolist(pred, single_person_test)`` and ``annolist2matrix``), to the benchmark's
evaluation server. That format is an annotation list:

* MAT variable ``pred``: a 1×M struct array with fields ``image`` (``name``) and ``annorect``, one
  entry per image of the split in RELEASE order — ``test``: every image with ``img_train == 0``;
  ``valid``: every image holding a person of the validation split list;
* each entry's ``annorect`` is as long as that image's RELEASE ``annorect`` and every rect keeps
  RELEASE's ``objpos`` and ``scale`` (``flatten_annolist`` keeps only rects with a non-empty
  ``objpos``, so a dropped or emptied rect would misalign every later person);
* the split's people get ``annopoints.point``: 16 points with ``id`` 0…15 (MPII joint order) and
  ``x``, ``y`` in native **1-based** pixels of the original image (the frame ``predict`` writes;
  no conversion); the other rects have an empty ``annopoints``.

Rows of the predictions (``preds`` (N, 16, 2), any layout :func:`hgbench.evaluate.load_predictions`
reads) are the split's people in the order ``prepare`` writes them: ``test`` =
:func:`hgbench.data.mpii.split_test_people` (``test.h5``), ``valid`` = the split list
(``mpii_valid_split.csv``, ``valid.h5``). :func:`read_submission` inverts :func:`write_submission`.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import scipy.io

from hgbench.data import mpii
from hgbench.iofiles import atomic_path
from hgbench.joints import MPII_JOINTS

SPLITS = ("valid", "test")
J = len(MPII_JOINTS)
RECT_FIELDS = ("objpos", "scale", "annopoints")
POINT_FIELDS = ("x", "y", "id")
THORAX = MPII_JOINTS.index("thrx")


@dataclass(frozen=True)
class SplitIndex:
    """Where a split's people sit in RELEASE: ``people`` ((image, annorect) 0-based, prediction row
    order) and ``images`` (the annotation-list entries of the submission, 0-based, RELEASE order)."""

    split: str
    people: tuple[tuple[int, int], ...]
    images: tuple[int, ...]


def split_index(release: mpii.Release, split: str, valid_split: str | Path = mpii.MPII_VALID_SPLIT) -> SplitIndex:
    """The people and images of ``split`` ("valid" or "test") in ``release`` (see the module docstring).

    Raises :class:`~hgbench.data.mpii.MPIIFormatError` naming the file when the annotation file
    cannot hold that split (no ``img_train``, a split person that does not exist).
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    if split == "test":
        if (release.img_train < 0).all():
            raise mpii.MPIIFormatError(
                f"{release.source}: no img_train (a bare annotation list?); the test split "
                f"needs the official RELEASE file mpii_human_pose_v1_u12_1.mat"
            )
        people = tuple((p.image_index, p.person_index) for p in mpii.split_test_people(release))
        images = tuple(int(i) for i in np.flatnonzero(release.img_train == 0))
        if not images:
            raise mpii.MPIIFormatError(f"{release.source}: no image has img_train == 0, there is no test split")
        return SplitIndex(split, people, images)
    pairs = mpii.load_split(valid_split)
    for i, r in pairs:
        if not (0 <= i < len(release.images) and 0 <= r < len(release.images[i].rects)):
            raise mpii.MPIIFormatError(
                f"{release.source}: the split list {valid_split} names image {i} person {r} "
                f"(0-based), which this annotation file does not have; give the RELEASE file "
                f"the split was made for"
            )
    return SplitIndex(split, tuple(pairs), tuple(sorted({i for i, _ in pairs})))


def load_annotations(annotations: str | Path) -> mpii.Release:
    """:func:`hgbench.data.mpii.load_release`, with the fix named when the file is not the RELEASE
    file at all (its own message, "re-download it", fits a damaged download only)."""
    path = Path(annotations)
    fix = "give the official RELEASE file, mpii_human_pose_v1_u12_1.mat, as --annotations"
    if not path.is_file():
        raise FileNotFoundError(f"MPII annotation file {path} {'is a folder' if path.is_dir() else 'not found'}; {fix}")
    if h5py.is_hdf5(path):
        raise ValueError(f"{path} is an HDF5 file (a split or predictions file?), not the MPII annotation file; {fix}")
    return mpii.load_release(path)


def _empty() -> np.ndarray:
    return np.zeros((0, 0))


def _struct_array(fields: tuple[str, ...], rows: list[dict]) -> np.ndarray:
    """A 1×len(rows) MATLAB struct array (numpy record array of objects) for ``savemat``."""
    arr = np.empty((1, len(rows)), dtype=[(f, object) for f in fields])
    for k, row in enumerate(rows):
        for f in fields:
            arr[0, k][f] = row[f]
    return arr


def _points(xy: np.ndarray) -> np.ndarray:
    """``annopoints.point``: 16 points, ``id`` 0…15, ``x``, ``y`` (1-based image px) of (16, 2) ``xy``."""
    return _struct_array(POINT_FIELDS, [{"x": float(x), "y": float(y), "id": float(j)} for j, (x, y) in enumerate(xy)])


def submission_annolist(release: mpii.Release, index: SplitIndex, preds: np.ndarray) -> np.ndarray:
    """The ``pred`` struct array (1×M) of ``preds`` (N, 16, 2) for the people of ``index``."""
    row_of = {person: k for k, person in enumerate(index.people)}
    entries = []
    for i in index.images:
        image = release.images[i]
        rects = []
        for r, rect in enumerate(image.rects):
            k = row_of.get((i, r))
            objpos = _empty() if rect.objpos is None else {"x": float(rect.objpos[0]), "y": float(rect.objpos[1])}
            rects.append(
                {
                    "objpos": objpos,
                    "scale": _empty() if rect.scale is None else float(rect.scale),
                    "annopoints": _empty() if k is None else {"point": _points(preds[k])},
                }
            )
        entries.append({"image": {"name": image.name}, "annorect": _struct_array(RECT_FIELDS, rects)})
    return _struct_array(("image", "annorect"), entries)


def thorax_correlation(release: mpii.Release, index: SplitIndex, preds: np.ndarray) -> tuple[float, float]:
    """Correlation (x, y) between the people's ``objpos`` and their predicted thorax.

    The official ``prepareTestResults.m`` prints this check: below 0.5 the rows are probably in
    another order than the split's (or the predictions are very poor). NaN with fewer than 2 people.
    """
    pos = np.array(
        [
            release.images[i].rects[r].objpos if release.images[i].rects[r].objpos is not None else (np.nan, np.nan)
            for i, r in index.people
        ],
        dtype=float,
    ).reshape(-1, 2)
    thorax = np.asarray(preds, dtype=float)[:, THORAX]
    out = []
    for axis in (0, 1):
        a, b = pos[:, axis], thorax[:, axis]
        ok = np.isfinite(a) & np.isfinite(b)
        with np.errstate(invalid="ignore", divide="ignore"):
            out.append(float(np.corrcoef(a[ok], b[ok])[0, 1]) if ok.sum() > 1 else float("nan"))
    return out[0], out[1]


def write_submission(
    predictions: str | Path,
    annotations: str | Path,
    split: str,
    out: str | Path,
    *,
    valid_split: str | Path = mpii.MPII_VALID_SPLIT,
    allow_nan: bool = False,
) -> dict:
    """Write ``out`` (MAT v5, variable ``pred``) from a predictions file, atomically.

    ``predictions``: ``preds`` (N, 16, 2), native 1-based px, rows = the people of ``split`` in
    ``prepare``'s order; ``annotations``: the official ``RELEASE`` file. Returns ``{split, people,
    images, out, thorax_correlation}``. Raises ValueError naming the file and the fix (row count,
    NaN, an annotation file without the split); nothing is written then.
    """
    from hgbench.evaluate import load_predictions

    release = load_annotations(annotations)
    index = split_index(release, split, valid_split)
    preds = load_predictions(predictions, None, J, allow_nan=allow_nan)
    if preds.shape[0] != len(index.people):
        order = (
            "`hgbench prepare --split test` (test.h5)"
            if split == "test"
            else f"the split list {Path(valid_split).name} (valid.h5)"
        )
        raise ValueError(
            f"{predictions}: 'preds' has {preds.shape[0]} rows, but the {split} split of {annotations} has "
            f"{len(index.people)} people; predict the split file written by {order}"
        )
    pred = submission_annolist(release, index, preds)
    buf = io.BytesIO()
    scipy.io.savemat(buf, {"pred": pred}, do_compression=True, oned_as="row")
    with atomic_path(out) as tmp:
        tmp.write_bytes(buf.getvalue())
    return {
        "split": split,
        "people": len(index.people),
        "images": len(index.images),
        "out": str(out),
        "thorax_correlation": thorax_correlation(release, index, preds),
    }


def read_submission(
    path: str | Path, annotations: str | Path, split: str, *, valid_split: str | Path = mpii.MPII_VALID_SPLIT
) -> np.ndarray:
    """The (N, 16, 2) predictions of a submission file, rows = the split's people (NaN where a
    person has no point of that id); the inverse of :func:`write_submission`. Checks that the file
    has one entry per image of the split, with RELEASE's image names and annorect lengths."""
    path = Path(path)
    release = load_annotations(annotations)
    index = split_index(release, split, valid_split)
    try:
        mat = scipy.io.loadmat(str(path), struct_as_record=False, squeeze_me=True)
    except Exception as exc:  # scipy raises several types on damaged or non-MAT input
        raise ValueError(f"{path}: cannot read the MATLAB file ({exc})") from None
    if "pred" not in mat:
        raise ValueError(f"{path}: no variable 'pred'; not an MPII submission file")
    sub = mpii.release_from_mat({"annolist": mat["pred"]}, str(path))
    if len(sub) != len(index.images):
        raise ValueError(f"{path}: 'pred' has {len(sub)} entries, the {split} split has {len(index.images)} images")
    entry = {i: k for k, i in enumerate(index.images)}
    for i, k in entry.items():
        want, got = release.images[i], sub.images[k]
        if got.name != want.name or len(got.rects) != len(want.rects):
            raise ValueError(
                f"{path}: entry {k + 1} is {got.name!r} with {len(got.rects)} rects; RELEASE image "
                f"{i + 1} is {want.name!r} with {len(want.rects)}"
            )
    out = np.full((len(index.people), J, 2), np.nan)
    for row, (i, r) in enumerate(index.people):
        for pid, x, y, _ in sub.images[entry[i]].rects[r].points or ():
            out[row, pid] = x, y
    return out
