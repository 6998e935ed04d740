"""Parser of FLIC's ``examples.mat`` (Sapp & Taskar 2013) into person records for ``prepare``.

``examples`` is a 1×5003 struct array; the fields used here (docs/data.md, "FLIC"):

* ``coords`` 2×29 float: row 1 = x, row 2 = y, in **1-based** MATLAB pixels of the 720×480
  frame; NaN = the slot is not labelled. 11 of the 29 slots are annotated
  (:data:`ANNOTATED_SLOTS`), giving the project's FLIC joint order
  ``lsho lelb lwri rsho relb rwri lhip rhip leye reye nose`` (:data:`hgbench.joints.FLIC_JOINTS`).
* ``torsobox`` 1×4 ``[x1 y1 x2 y2]``, ``filepath`` (image file name), ``imgdims`` ``[rows cols 3]``,
  ``istrain`` / ``istest`` (3987 / 1016 examples, one person each).

Labels. ``coords`` are **person-centric** (left = the person's own left). The paper reports
**observer-centric** numbers (pose-hg-train's default FLIC files): for a person seen from behind
(left shoulder left of the right shoulder in the image, ``x_lsho < x_rsho``) every left/right
pair is swapped. Checked against pose-hg-train's ``train.h5``/``valid.h5`` and their
``*_personcentric.h5``: the rule reproduces exactly the 199 train and 48 test rows that differ.

Crop box (no hourglass adjustment for FLIC): centre x = middle of ``torsobox``, centre y = half the
frame height (pose-hg-train's files: y = 240 for every row), scale 2.2 × rows / 480 (box side
440 px on FLIC's 480-row frames). The centre-x rule could not be checked here (no ``examples.mat``
in the reference data; pose-hg-train's centre x lies within a few px of the torso joints' mean for
most rows).

Why the box scales with the frame height: pose-hg-train's fixed 440 px box is 0.917 of FLIC's
480-row frame, i.e. it frames the whole frame height, where FLIC's upper-body people are. The
synthetic FLIC layout (``data/synthetic.py``, ``layout: flic``) writes small frames (96–192 rows);
in a fixed 440 px box a 96-row frame would fill only 22 % of the crop, the person a few heatmap
cells. Scaling the side by ``imgdims(1) / 480`` keeps the real framing (0.917 of the frame
height) on any frame size and is exactly 2.2 on real FLIC (its frames are 720×480, and
``2.2 * (480 / 480)`` is exactly 2.2 in floating point, so no real-data number changes). The frame
height comes from ``imgdims`` (the data), not from the dataset's source, so synthetic and real
files go through the same lines.

Normaliser: the torso diagonal ``‖rsho − lhip‖`` of the **person-centric** labels, in native px,
whatever labelling is stored (pose-hg-train's ``normalize`` equals it for every row).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.io

from hgbench.data.mpii import _field, _items, _scalar, _string
from hgbench.data.schema import Layout
from hgbench.joints import FLIC_FLIP, FLIC_JOINTS

SLOTS = (
    "lsho",
    "lelb",
    "lwri",
    "rsho",
    "relb",
    "rwri",
    "lhip",
    "lkne",
    "lank",
    "rhip",
    "rkne",
    "rank",
    "leye",
    "reye",
    "lear",
    "rear",
    "nose",
    "msho",
    "mhip",
    "mear",
    "mtorso",
    "mluarm",
    "mruarm",
    "mllarm",
    "mrlarm",
    "mluleg",
    "mruleg",
    "mllleg",
    "mrlleg",
)
"""The 29 ``coords`` slots of ``examples.mat``, 0-based."""
ANNOTATED_SLOTS = tuple(SLOTS.index(n) for n in FLIC_JOINTS)  # (0, 1, 2, 3, 4, 5, 6, 9, 12, 13, 16)
J = len(FLIC_JOINTS)
CROP_SCALE = 2.2
"""pose-hg-train's box scale on FLIC's frames (side 200 × 2.2 = 440 px)."""
FRAME_HEIGHT = 480
"""Rows of every real FLIC frame (720×480); the crop scale is ``CROP_SCALE × rows / FRAME_HEIGHT``."""
EXAMPLES_RELPATH = "FLIC/examples.mat"
"""Where ``FLIC.zip`` puts the annotations (relative to ``data/raw/<dataset>/``)."""
IMAGES_RELPATH = "FLIC/images"
NORMALIZER_DEFINITION = "torso diagonal ||rsho - lhip|| of the person-centric labels, native px (FLIC PCK)"
LABELS = ("observer", "person")

FLIC_LAYOUT = Layout(
    joint_names=FLIC_JOINTS,
    flip_permutation=FLIC_FLIP,
    normalizer_definition=NORMALIZER_DEFINITION,
    hourglass_adjust=False,
)


class FLICFormatError(ValueError):
    """``examples.mat`` does not have the expected FLIC layout."""


@dataclass(frozen=True, eq=False)
class Example:
    """One entry of ``examples``. Coordinates in the native 1-based frame."""

    index: int  # 0-based position in ``examples``
    image_name: str  # ``filepath``
    coords: np.ndarray  # (29, 2) float64, NaN where unlabelled
    torsobox: np.ndarray  # (4,) x1 y1 x2 y2
    height: int  # frame rows (px), ``imgdims(1)``; 480 when imgdims is absent
    istrain: bool
    istest: bool


@dataclass(frozen=True, eq=False)
class FlicRecord:
    """One FLIC person in the shape ``prepare`` expects (same attributes as ``mpii.PersonRecord``)."""

    image_name: str
    image_index: int  # 0-based ``examples`` index
    person_index: int  # always 0 (one person per example)
    joints: np.ndarray  # (11, 2) native px, the chosen labelling; NaN where unlabelled
    visible: np.ndarray  # (11,) bool: FLIC has no visibility flag, True where labelled
    headbox: np.ndarray  # (2, 2) NaN (FLIC has no head box)
    objpos: np.ndarray  # (2,) crop centre, native 1-based px
    scale: float  # box side / 200 px: 2.2 × frame rows / 480 (2.2 for real FLIC)
    normalizer: float  # torso diagonal, native px
    person_centric: np.ndarray  # (11, 2) the person-centric labels (as in examples.mat)

    @property
    def missing(self) -> np.ndarray:
        return np.isnan(self.joints[:, 0])


def examples_from_mat(mat: dict, source: str = "<mat>") -> list[Example]:
    """:class:`Example` s from the dict ``scipy.io.loadmat`` returned (any options)."""
    if "examples" not in mat:
        keys = ", ".join(k for k in mat if not k.startswith("__"))
        raise FLICFormatError(
            f"{source}: no 'examples' variable (found: {keys or 'nothing'}); "
            f"expected FLIC's examples.mat — re-download FLIC.zip"
        )
    out = []
    for i, e in enumerate(_items(mat["examples"])):
        raw = _field(e, "coords")
        coords = np.asarray(raw if raw is not None else [], dtype=float)
        if coords.shape != (2, len(SLOTS)):
            raise FLICFormatError(f"{source}: examples({i + 1}).coords has shape {coords.shape}, expected (2, 29)")
        box = np.asarray(_field(e, "torsobox"), dtype=float).reshape(-1)
        if box.size != 4:
            raise FLICFormatError(f"{source}: examples({i + 1}).torsobox has {box.size} values, expected 4")
        dims = np.asarray(_field(e, "imgdims"), dtype=float).reshape(-1)
        name = _string(_field(e, "filepath"))
        if not name:
            raise FLICFormatError(f"{source}: examples({i + 1}).filepath is empty")
        out.append(
            Example(
                index=i,
                image_name=name,
                coords=coords.T.copy(),
                torsobox=box,
                height=int(dims[0]) if dims.size else 480,
                istrain=bool(_scalar(_field(e, "istrain")) or 0),
                istest=bool(_scalar(_field(e, "istest")) or 0),
            )
        )
    if not out:
        raise FLICFormatError(f"{source}: 'examples' is empty")
    return out


def load_examples(mat_path: str | Path) -> list[Example]:
    """Read FLIC's ``examples.mat``."""
    path = Path(mat_path)
    if not path.is_file():
        raise FileNotFoundError(f"FLIC annotation file {path} not found; run `hgbench fetch` for the FLIC dataset")
    try:
        mat = scipy.io.loadmat(str(path), struct_as_record=False, squeeze_me=True)
    except Exception as exc:  # scipy raises ValueError/TypeError/OSError on damaged files
        raise FLICFormatError(f"{path}: cannot read the MATLAB file ({exc}); re-download FLIC.zip") from None
    return examples_from_mat(mat, str(path))


def observer_centric(joints: np.ndarray) -> np.ndarray:
    """(11, 2) person-centric joints → observer-centric: swap left/right when ``x_lsho < x_rsho``."""
    lsho, rsho = FLIC_JOINTS.index("lsho"), FLIC_JOINTS.index("rsho")
    if joints[lsho, 0] < joints[rsho, 0]:
        return joints[list(FLIC_FLIP)].copy()
    return joints.copy()


def record(ex: Example, labels: str = "observer") -> FlicRecord:
    """The person of one example, with ``labels`` ``observer`` (default, the paper's) or ``person``."""
    if labels not in LABELS:
        raise ValueError(f"FLIC labels must be one of {LABELS}, got {labels!r}")
    pc = ex.coords[list(ANNOTATED_SLOTS)].copy()
    joints = observer_centric(pc) if labels == "observer" else pc.copy()
    lhip, rsho = FLIC_JOINTS.index("lhip"), FLIC_JOINTS.index("rsho")
    norm = float(np.linalg.norm(pc[rsho] - pc[lhip]))
    objpos = np.array([(ex.torsobox[0] + ex.torsobox[2]) / 2.0, ex.height / 2.0])
    scale = CROP_SCALE * (ex.height / FRAME_HEIGHT)  # exactly 2.2 on 480-row frames (module docstring)
    visible = ~np.isnan(joints[:, 0])
    headbox = np.full((2, 2), np.nan)
    for a in (joints, visible, headbox, objpos, pc):
        a.setflags(write=False)
    return FlicRecord(
        image_name=ex.image_name,
        image_index=ex.index,
        person_index=0,
        joints=joints,
        visible=visible,
        headbox=headbox,
        objpos=objpos,
        scale=scale,
        normalizer=norm,
        person_centric=pc,
    )


def people(examples: list[Example], split: str, labels: str = "observer") -> list[FlicRecord]:
    """Records of ``split`` (``train``: ``istrain``, 3987; ``test``/``valid``: ``istest``, 1016), in file order."""
    if split == "train":
        chosen = [e for e in examples if e.istrain]
    elif split in ("test", "valid"):
        chosen = [e for e in examples if e.istest]
    else:
        raise ValueError(f"FLIC split must be train or test, got {split!r}")
    return [record(e, labels) for e in chosen]
