"""The embedded synthetic dataset, written in the MPII raw layout or in the FLIC raw layout.

:func:`generate` draws articulated figures and writes them exactly as the official MPII Human
Pose release is laid out (``layout: mpii``, the default), so that the *same* parser
(``data/mpii.py``) and the *same* prepare code read it::

    out_dir/images/000000000.jpg ...                                    RGB, JPEG quality 95
    out_dir/mpii_human_pose_v1_u12_2/mpii_human_pose_v1_u12_1.mat       RELEASE struct
    out_dir/valid_split.csv                                             image_index,person_index
    out_dir/MANIFEST.json                                               config + sha256 per file

or as ``FLIC.zip`` unpacks (``layout: flic``), read by ``data/flic.py`` and ``prepare_flic``
with no synthetic special case::

    out_dir/FLIC/images/synthetic-00000000.jpg ...                      the same pictures
    out_dir/FLIC/examples.mat                                           1×N ``examples`` struct
    out_dir/MANIFEST.json

The FLIC layout renders the same images (image ``i`` is identical in both layouts) and labels the
11 FLIC joints, person-centric, 1-based, every one in every example as in FLIC (so it requires
``missing_rate: 0``; joints outside the frame keep their coordinates): shoulders, elbows, wrists
and hips from the skeleton, eyes and nose from the head (fixed points of the head frame,
:data:`_FACE_POINTS`, projected on every view: on front views exactly where the eyes and nose are
painted, on back views where the turned-away face is). ``torsobox`` is the box around shoulders
and hips padded by 10 % of its longer side; ``imgdims`` is ``[image_size image_size 3]``, so
``flic.record`` frames the person with a box of 0.917 × ``image_size`` (see ``data/flic.py``);
``istrain`` marks the first ``n_train`` images and ``istest`` the last ``n_valid``.

The task is built to need global context, which is what the paper's ablations measure:

* **body model**: a 3-D kinematic tree (limb lengths proportional to the height with small random
  proportions, joint angles drawn from a prior with six pose families: standing, walking, arms
  raised, crouching/sitting, reaching, free), turned by a yaw around the vertical axis (front view
  = facing the camera, back view = facing away), pitched a little, projected orthographically and
  rotated in the image plane by ~N(0, ``rotation``) degrees;
* **left/right** is ambiguous by construction: a back view is the mirror image of a front view.
  The only cues are a face (eyes, nose, mouth) on the head in front views, and a tint of the
  person's left limbs towards red and right limbs towards blue whose strength is ``lr_cue``
  (0 = both sides identical). Far-side parts are drawn first and darker (depth shading);
* **visibility**: a joint is ``is_visible = 0`` when, at its position, the top-most drawn surface
  is not one of the body parts it belongs to (self-occlusion by depth ordering, opaque occluders
  placed over the body, unannotated distractor people drawn in front). Occluded joints keep
  their coordinates;
* **missing joints**: joints outside the image are not annotated, and every other in-image joint
  is dropped with probability ``missing_rate`` (never pelvis, thorax, upper neck, head top: the
  head box and the torso centre stay defined). Missing joints are simply absent from
  ``annopoints.point`` as in MPII;
* **clutter**: a textured, noisy background plus ~Poisson(``clutter``) shapes whose colours and
  widths look like limbs, ~Poisson(``distractors``) other (unannotated) people, possibly
  overlapping the annotated one, ~Poisson(``occluders``) opaque objects over the body.

Annotation conventions (all coordinates 1-based MATLAB pixels, as in MPII):

* ``scale`` = standing height / 200 (the brief's "person scale w.r.t. 200 px height").
  Note that the real MPII ``scale`` is head-derived: over the 2958 validation people
  200·scale = 6·‖head top − upper neck‖ exactly (pose-hg-train's ``valid.h5`` has
  normalize = 20·scale for every person). Here
  200·scale ≈ 7.7·‖head top − upper neck‖ for an upright head.
* ``objpos`` = the torso centre (midpoint of pelvis and thorax).
* head box ``x1 y1 x2 y2``: axis-aligned, centred on the midpoint of upper neck and head top, height
  = ‖head top − upper neck‖ and width 0.75 × that, so that its diagonal is 1.25 × the head
  segment — the relation the real MPII validation boxes satisfy exactly.

Determinism: image ``i`` is drawn only from ``numpy.random.default_rng([seed, i])`` so it does not
depend on how many images came before it; the ``.mat`` header timestamp is replaced by a fixed
text, the JPEG encoder settings are fixed, and the manifest is written with sorted keys. The same
config gives byte-identical files.
"""

from __future__ import annotations

import colorsys
import csv
import dataclasses
import hashlib
import io
import json
import math
from pathlib import Path

import numpy as np
import scipy.io
import scipy.special
from PIL import Image, ImageDraw

from hgbench.config import SyntheticConfig
from hgbench.data import flic
from hgbench.joints import FLIC_JOINTS, MPII_JOINTS

GENERATOR_NAME = "hgbench.data.synthetic"
GENERATOR_VERSION = "1"
RELEASE_RELPATH = "mpii_human_pose_v1_u12_2/mpii_human_pose_v1_u12_1.mat"
SPLIT_FILENAME = "valid_split.csv"
MANIFEST_FILENAME = "MANIFEST.json"
IMAGES_DIRNAME = "images"
LAYOUTS = ("mpii", "flic")
FLIC_MOVIE = "synthetic"
"""``moviename`` of every FLIC-layout example (FLIC names frames ``<movie>-<frame>.jpg``)."""
FLIC_FIELDS = (
    "poselet_hit_idx",
    "moviename",
    "coords",
    "filepath",
    "imgdims",
    "currframe",
    "torsobox",
    "istrain",
    "istest",
    "isbad",
    "isunchecked",
)
"""The fields of the real ``examples`` struct, in its order."""
_FLIC_FACE = {"leye": 0, "reye": 1, "nose": 2}  # FLIC joint → row of ``_Figure.face``

JPEG_SETTINGS = {"format": "JPEG", "quality": 95, "subsampling": 2, "optimize": False, "progressive": False}
"""Fixed encoder settings (4:2:0 chroma subsampling, baseline, standard Huffman tables)."""

POSE_FAMILIES = ("standing", "walking", "arms_raised", "crouch_sit", "reaching", "free")
_FAMILY_P = np.array([0.2, 0.2, 0.15, 0.15, 0.15, 0.15])

_SS = 2  # supersampling factor of the drawing canvas (anti-aliasing)
_BACK_VIEW_P = 0.35
_LEFT_CUE = np.array([235.0, 60.0, 40.0])
_RIGHT_CUE = np.array([40.0, 110.0, 240.0])
_CUE_MAX_MIX = 0.55  # tint fraction at lr_cue = 1

J = len(MPII_JOINTS)
(RANK, RKNE, RHIP, LHIP, LKNE, LANK, PELV, THRX, NECK, HEAD, RWRI, RELB, RSHO, LSHO, LELB, LWRI) = range(16)
_CORE = (PELV, THRX, NECK, HEAD)  # always annotated (never dropped, placed inside the image)

# part ids of the annotated person in the visibility buffer (0 = background, 255 = foreign object)
(
    P_TORSO,
    P_NECK,
    P_HEAD,
    P_UARM_L,
    P_UARM_R,
    P_FARM_L,
    P_FARM_R,
    P_HAND_L,
    P_HAND_R,
    P_THIGH_L,
    P_THIGH_R,
    P_SHIN_L,
    P_SHIN_R,
    P_FOOT_L,
    P_FOOT_R,
) = range(1, 16)
P_FOREIGN = 255

_OWNERS = {
    RANK: (P_SHIN_R, P_FOOT_R),
    RKNE: (P_THIGH_R, P_SHIN_R),
    RHIP: (P_THIGH_R, P_TORSO),
    LHIP: (P_THIGH_L, P_TORSO),
    LKNE: (P_THIGH_L, P_SHIN_L),
    LANK: (P_SHIN_L, P_FOOT_L),
    PELV: (P_TORSO, P_THIGH_L, P_THIGH_R),
    THRX: (P_TORSO, P_NECK),
    NECK: (P_NECK, P_HEAD),
    HEAD: (P_HEAD,),
    RWRI: (P_FARM_R, P_HAND_R),
    RELB: (P_UARM_R, P_FARM_R),
    RSHO: (P_UARM_R, P_TORSO),
    LSHO: (P_UARM_L, P_TORSO),
    LELB: (P_UARM_L, P_FARM_L),
    LWRI: (P_FARM_L, P_HAND_L),
}
"""Surfaces a joint belongs to: it is visible when one of them is on top at its position."""
_TORSO_SIDE_JOINTS = (RHIP, LHIP, RSHO, LSHO)  # torso counts as owner only on the near side
_SAMPLE_TOWARD = {RANK: RKNE, LANK: LKNE, HEAD: NECK, RWRI: RELB, LWRI: LELB, NECK: THRX}
"""End joints sit on a surface boundary; their visibility is sampled 1.5 px toward this joint."""

_FACE_POINTS = ((0.019, 0.004, 0.04), (-0.019, 0.004, 0.04), (0.0, -0.012, 0.045), (0.0, -0.032, 0.04))
"""Left eye, right eye, nose, mouth in the head frame (x = person's left, y = up, z = forward;
height units, relative to the head centre). The first three are the FLIC layout's face joints."""

_GAUSS_LUT = scipy.special.ndtri((np.arange(256) + 0.5) / 256).astype(np.float32)
"""Sensor noise: standard-normal quantiles indexed by random bytes (fast, truncated at ±2.9σ)."""

_SKIN = np.array(
    [
        [255, 224, 196],
        [241, 194, 160],
        [224, 172, 130],
        [198, 134, 98],
        [161, 102, 70],
        [120, 74, 50],
        [90, 56, 38],
        [234, 190, 150],
    ],
    dtype=float,
)


# --------------------------------------------------------------------------------------------
# body model
# --------------------------------------------------------------------------------------------


def _rx(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[1.0, 0, 0], [0, c, -s], [0, s, c]])


def _ry(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, 0, s], [0, 1.0, 0], [-s, 0, c]])


def _rz(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1.0]])


_MIRROR = np.diag([-1.0, 1.0, 1.0])
_DOWN = np.array([0.0, -1.0, 0.0])
_UP = np.array([0.0, 1.0, 0.0])
_FWD = np.array([0.0, 0.0, 1.0])


def _sample_angles(rng: np.random.Generator, family: int) -> dict:
    """Joint angles in degrees. Arms/legs are given per side as (flex, abd, twist, bend)."""
    u = rng.uniform
    name = POSE_FAMILIES[family]
    a: dict = {"lean": u(-5, 10), "lat": u(-6, 6), "twist": u(-12, 12), "neck_fwd": u(-12, 20), "neck_side": u(-12, 12)}

    def std_arm():
        return [u(-15, 25), u(3, 25), u(-20, 60), u(0, 35)]

    def std_leg():
        return [u(-8, 12), u(0, 10), u(-10, 25), u(0, 15)]

    arms = [std_arm(), std_arm()]
    legs = [std_leg(), std_leg()]
    if name == "walking":
        s = u(15, 38)
        front = int(rng.integers(2))
        legs[front] = [s, u(0, 8), u(-5, 20), u(0, 25)]
        legs[1 - front] = [-u(5, 25), u(0, 8), u(-5, 20), u(15, 60)]
        arms[front] = [-u(5, 30), u(3, 15), u(0, 50), u(5, 60)]  # arm opposite the leg
        arms[1 - front] = [u(5, 40), u(3, 15), u(0, 50), u(5, 60)]
        a["lean"] = u(0, 12)
    elif name == "arms_raised":
        for k in range(2):
            if k == 1 and rng.random() < 0.3:
                continue  # one arm stays down
            if rng.random() < 0.5:
                arms[k] = [u(-10, 40), u(70, 175), u(-30, 60), u(0, 70)]
            else:
                arms[k] = [u(70, 175), u(0, 40), u(-30, 60), u(0, 70)]
        if rng.random() < 0.5:
            arms.reverse()
        a["lean"] = u(-10, 10)
    elif name == "crouch_sit":
        for k in range(2):
            hip = u(45, 115)
            legs[k] = [hip, u(0, 30), u(-10, 30), min(150.0, max(20.0, hip + u(-40, 45)))]
            arms[k] = [u(-10, 85), u(0, 40), u(-20, 70), u(0, 115)]
        a["lean"] = u(-5, 45)
    elif name == "reaching":
        k = int(rng.integers(2))
        arms[k] = [u(45, 135), u(-25, 65), u(-20, 40), u(0, 35)]
        if rng.random() < 0.35:
            arms[1 - k] = [u(20, 120), u(-10, 60), u(-20, 40), u(0, 60)]
        if rng.random() < 0.5:
            s = u(5, 30)
            legs[k] = [s, u(0, 10), u(-5, 20), u(0, 30)]
            legs[1 - k] = [-u(0, 20), u(0, 10), u(-5, 20), u(5, 40)]
        a["lean"] = u(0, 35)
        a["lat"] = u(-15, 15)
    elif name == "free":
        for k in range(2):
            arms[k] = [u(-40, 180), u(-10, 180), u(-40, 90), u(0, 150)]
            legs[k] = [u(-30, 110), u(0, 45), u(-20, 40), u(0, 150)]
        a["lean"] = u(-15, 45)
        a["lat"] = u(-20, 20)
        a["twist"] = u(-30, 30)
    a["arm_l"], a["arm_r"] = arms
    a["leg_l"], a["leg_r"] = legs
    return a


def _skeleton(rng: np.random.Generator, family: int) -> tuple[dict, dict, np.ndarray]:
    """3-D points in the person frame (x = person's left, y = up, z = forward; units = height).

    Returns (points, geometry, R_head) where ``points`` holds the 16 joints under their index and
    named auxiliary points (hand ends, toes, torso box corners, head centre).
    """
    ang = _sample_angles(rng, family)
    d = math.radians
    g = rng.normal(1.0, 0.035)

    def seg(base: float) -> float:
        return base * g * rng.normal(1.0, 0.03)

    pw = rng.normal(1.0, 0.06)  # body width factor
    geo = {
        "thigh": seg(0.245),
        "shin": seg(0.24),
        "uarm": seg(0.17),
        "farm": seg(0.15),
        "hand": seg(0.06),
        "foot": seg(0.075),
        "spine": seg(0.27),
        "neck": seg(0.07),
        "head": seg(0.125),
        "hip_w": 0.085 * pw,
        "sho_w": 0.105 * pw,
        "pw": pw,
        "thick": rng.uniform(0.85, 1.2),
    }
    r_t = _ry(d(ang["twist"])) @ _rz(d(ang["lat"])) @ _rx(d(ang["lean"]))
    r_h = r_t @ _rx(d(ang["neck_fwd"])) @ _rz(d(ang["neck_side"]))
    p: dict = {}
    p[PELV] = np.zeros(3)
    p[THRX] = r_t @ (_UP * geo["spine"])
    p[NECK] = p[THRX] + r_t @ _rx(d(ang["neck_fwd"]) * 0.5) @ (_UP * geo["neck"])
    p[HEAD] = p[NECK] + r_h @ (_UP * geo["head"])
    p["head_c"] = p[NECK] + r_h @ np.array([0.0, 0.48 * geo["head"], 0.012])
    for side, (hip_i, kne_i, ank_i, sho_i, elb_i, wri_i) in (
        ("l", (LHIP, LKNE, LANK, LSHO, LELB, LWRI)),
        ("r", (RHIP, RKNE, RANK, RSHO, RELB, RWRI)),
    ):
        m = np.eye(3) if side == "l" else _MIRROR
        # arm (left-side convention: abduction toward +x, inward twist toward -x)
        flex, abd, twist, bend = (d(v) for v in ang["arm_" + side])
        r_a = r_t @ m @ _rz(abd) @ _rx(-flex) @ _ry(-twist)
        p[sho_i] = p[THRX] + r_t @ (m @ np.array([geo["sho_w"], 0.012, -0.005]))
        du, bu = r_a @ _DOWN, r_a @ _FWD
        p[elb_i] = p[sho_i] + geo["uarm"] * du
        df = math.cos(bend) * du + math.sin(bend) * bu
        p[wri_i] = p[elb_i] + geo["farm"] * df
        p["hand_" + side] = p[wri_i] + geo["hand"] * df
        # leg (knee bends backward)
        flex, abd, twist, bend = (d(v) for v in ang["leg_" + side])
        r_l = m @ _rz(abd) @ _rx(-flex) @ _ry(twist)
        p[hip_i] = m @ np.array([geo["hip_w"], -0.015, 0.0])
        dt, bt = r_l @ _DOWN, -(r_l @ _FWD)
        p[kne_i] = p[hip_i] + geo["thigh"] * dt
        ds = math.cos(bend) * dt + math.sin(bend) * bt
        p[ank_i] = p[kne_i] + geo["shin"] * ds
        foot = math.sin(bend) * dt - math.cos(bend) * bt
        p["heel_" + side] = p[ank_i] - 0.02 * foot + 0.01 * ds
        p["toe_" + side] = p[ank_i] + geo["foot"] * foot + 0.02 * ds
    # torso box: bottom corners in the pelvis frame, top corners in the torso frame
    corners = []
    for sx in (-1, 1):
        for sz in (-1, 1):
            corners.append(np.array([sx * 0.1 * pw, -0.045, sz * 0.06]))
            corners.append(p[THRX] + r_t @ np.array([sx * 0.125 * pw, 0.03, sz * 0.065]))
            corners.append(r_t @ np.array([sx * 0.095 * pw, 0.5 * geo["spine"], sz * 0.06]))
    p["torso"] = np.array(corners)
    return p, geo, r_h


def _hull(pts: np.ndarray) -> np.ndarray:
    """Convex hull (monotone chain) of a few 2-D points."""
    pts = sorted(map(tuple, pts))

    def cross(o, a, b):
        return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])

    lower: list = []
    for q in pts:
        while len(lower) >= 2 and cross(lower[-2], lower[-1], q) <= 0:
            lower.pop()
        lower.append(q)
    upper: list = []
    for q in reversed(pts):
        while len(upper) >= 2 and cross(upper[-2], upper[-1], q) <= 0:
            upper.pop()
        upper.append(q)
    return np.array(lower[:-1] + upper[:-1])


def _ellipse_poly(
    c: np.ndarray, u: np.ndarray, a: float, b: float, n: int = 20, t0: float = 0.0, t1: float = 2 * math.pi
) -> np.ndarray:
    t = np.linspace(t0, t1, n, endpoint=(t1 - t0) < 2 * math.pi - 1e-9)
    v = np.array([-u[1], u[0]])
    return c + np.outer(a * np.cos(t), u) + np.outer(b * np.sin(t), v)


# --------------------------------------------------------------------------------------------
# colours
# --------------------------------------------------------------------------------------------


def _hsv(rng: np.random.Generator, s: tuple[float, float], v: tuple[float, float]) -> np.ndarray:
    r, g, b = colorsys.hsv_to_rgb(rng.random(), rng.uniform(*s), rng.uniform(*v))
    return np.array([r, g, b]) * 255.0


def _clothing_colour(rng: np.random.Generator) -> np.ndarray:
    if rng.random() < 0.25:  # greys, black, white
        return np.full(3, rng.uniform(25, 235)) + rng.normal(0, 6, 3)
    return _hsv(rng, (0.15, 0.85), (0.2, 0.95))


def _skin_colour(rng: np.random.Generator) -> np.ndarray:
    return _SKIN[rng.integers(len(_SKIN))] * rng.uniform(0.9, 1.05) + rng.normal(0, 5, 3)


def _person_palette(rng: np.random.Generator, lr_cue: float) -> dict:
    skin, shirt, pants = _skin_colour(rng), _clothing_colour(rng), _clothing_colour(rng)
    shoes = _clothing_colour(rng) * 0.6
    hair = _hsv(rng, (0.2, 0.7), (0.05, 0.45)) if rng.random() < 0.85 else np.full(3, 200.0)
    uarm = skin if rng.random() < 0.15 else shirt
    farm = shirt if (uarm is shirt and rng.random() < 0.5) else skin
    shin = skin if rng.random() < 0.2 else pants
    pal = {"skin": skin, "shirt": shirt, "hair": hair}
    mix = _CUE_MAX_MIX * lr_cue
    for side, cue in (("l", _LEFT_CUE), ("r", _RIGHT_CUE)):
        for part, col in (
            ("uarm", uarm),
            ("farm", farm),
            ("hand", skin),
            ("thigh", pants),
            ("shin", shin),
            ("foot", shoes),
        ):
            pal[f"{part}_{side}"] = (1.0 - mix) * col + mix * cue
    return pal


def _rgb(col: np.ndarray, shade: float = 1.0) -> tuple[int, int, int]:
    r, g, b = (min(255, max(0, int(v * shade))) for v in col)
    return r, g, b


# --------------------------------------------------------------------------------------------
# figures (2-D, relative to the pelvis, image px, before translation)
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass
class _Figure:
    joints: np.ndarray  # (16, 2) image px relative to the pelvis
    depth: np.ndarray  # (16,) depth (height units), larger = farther
    parts: list  # [(depth, part_id, [ops])], drawn far → near
    family: int
    front: bool
    face: np.ndarray  # (3, 2) person's left eye, right eye, nose; same frame as ``joints``


def _make_figure(rng: np.random.Generator, height: float, rotation_sd: float, lr_cue: float) -> _Figure:
    family = int(rng.choice(len(POSE_FAMILIES), p=_FAMILY_P))
    p3, geo, r_h = _skeleton(rng, family)
    front = rng.random() >= _BACK_VIEW_P
    yaw = rng.uniform(-75, 75) + (0.0 if front else 180.0)
    cam = _rx(math.radians(rng.normal(0, 8))) @ _ry(math.radians(yaw))
    rho = math.radians(rng.normal(0, rotation_sd)) if rotation_sd > 0 else 0.0
    cr, sr = math.cos(rho), math.sin(rho)
    rot2 = np.array([[cr, -sr], [sr, cr]])

    def proj(v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        v = np.atleast_2d(v) @ cam.T
        xy = np.stack([v[:, 0], -v[:, 1]], axis=1) * height
        return xy @ rot2.T, -v[:, 2]

    j3 = np.stack([p3[k] for k in range(J)])
    joints, depth = proj(j3)
    pal = _person_palette(rng, lr_cue)
    d_pelv = depth[PELV]
    th = geo["thick"] * height

    def shade(dep: float) -> float:
        return 1.0 - 0.9 * min(0.2, max(-0.2, dep - d_pelv))

    parts = []

    keys = [k for k in p3 if k != "torso"]
    all2, alld = proj(np.stack([p3[k] for k in keys]))
    at = {k: (all2[n], float(alld[n])) for n, k in enumerate(keys)}

    def limb(pid, a, b, w0, w1, col, bias=0.0):
        (pa, da), (pb, db) = at[a], at[b]
        dep = 0.5 * (da + db)
        parts.append((dep + bias, pid, [("seg", pa, pb, w0 * th, w1 * th, _rgb(col, shade(dep)))]))

    # torso
    tor2, tor_d = proj(p3["torso"])
    dep_t = float(tor_d.mean())
    parts.append((dep_t + 0.03, P_TORSO, [("poly", _hull(tor2), _rgb(pal["shirt"], shade(dep_t)))]))
    limb(P_NECK, THRX, NECK, 0.05, 0.045, pal["skin"], bias=0.025)
    # head: ellipse + hair cap + face (front view only)
    (hc, ht, hn), hd = proj(np.stack([p3["head_c"], p3[HEAD], p3[NECK]]))
    axis = ht - hn
    nrm = float(np.hypot(*axis))
    u = axis / nrm if nrm > 1e-6 else np.array([0.0, -1.0])
    b = 0.05 * geo["pw"] * height * rng.uniform(0.9, 1.1)
    a = max(float(np.hypot(*(ht - hc))), 0.8 * b)
    dep_h = float(hd[0])
    ops = [
        ("poly", _ellipse_poly(hc, u, a, b, 22), _rgb(pal["skin"], shade(dep_h))),
        ("poly", _ellipse_poly(hc, u, a * 1.04, b * 1.06, 12, -1.25, 1.25), _rgb(pal["hair"], shade(dep_h))),
    ]
    face_n = cam @ (r_h @ _FWD)
    # Projected on every view (no random draw, so the MPII layout's bytes are unchanged): the FLIC
    # layout labels eyes and nose in every example, also on a head turned away, where they are.
    feats, _ = proj(np.stack([p3["head_c"] + r_h @ np.array(v) for v in _FACE_POINTS]))
    if face_n[2] > 0.35:  # facing the camera: eyes, nose, mouth
        er = max(0.7, 0.008 * height)
        perp = np.array([-u[1], u[0]]) * er * 1.4
        ops += [
            ("circle", feats[0], er, (25, 20, 18)),
            ("circle", feats[1], er, (25, 20, 18)),
            ("circle", feats[2], er * 0.8, _rgb(pal["skin"], 0.7)),
            ("seg", feats[3] - perp, feats[3] + perp, er * 0.8, er * 0.8, (120, 40, 40)),
        ]
    parts.append((dep_h - 0.02, P_HEAD, ops))
    for s in ("l", "r"):
        left = s == "l"
        sho, elb, wri = (LSHO, LELB, LWRI) if left else (RSHO, RELB, RWRI)
        hip, kne, ank = (LHIP, LKNE, LANK) if left else (RHIP, RKNE, RANK)
        ids = (
            (P_UARM_L, P_FARM_L, P_HAND_L, P_THIGH_L, P_SHIN_L, P_FOOT_L)
            if left
            else (P_UARM_R, P_FARM_R, P_HAND_R, P_THIGH_R, P_SHIN_R, P_FOOT_R)
        )
        limb(ids[0], sho, elb, 0.056, 0.046, pal["uarm_" + s])
        limb(ids[1], elb, wri, 0.046, 0.036, pal["farm_" + s])
        limb(ids[2], wri, "hand_" + s, 0.042, 0.034, pal["hand_" + s])
        limb(ids[3], hip, kne, 0.088, 0.062, pal["thigh_" + s])
        limb(ids[4], kne, ank, 0.06, 0.045, pal["shin_" + s])
        limb(ids[5], "heel_" + s, "toe_" + s, 0.045, 0.035, pal["foot_" + s])
    parts.sort(key=lambda t: -t[0])
    return _Figure(
        joints=joints - joints[PELV],
        depth=depth,
        parts=parts,
        family=family,
        front=front,
        face=feats[:3] - joints[PELV],
    )


# --------------------------------------------------------------------------------------------
# canvas
# --------------------------------------------------------------------------------------------


class _Canvas:
    """RGB drawing at ``_SS``× resolution plus an optional part-id buffer (same geometry)."""

    def __init__(self, rgb: Image.Image, ids: Image.Image):
        self.rgb, self.ids = rgb, ids
        self.d_rgb, self.d_ids = ImageDraw.Draw(rgb), ImageDraw.Draw(ids)

    @staticmethod
    def _xy(p: np.ndarray) -> np.ndarray:
        return p * _SS + (_SS - 1) / 2.0

    def op(self, op: tuple, offset: np.ndarray, pid: int | None) -> None:
        kind = op[0]
        targets = [(self.d_rgb, op[-1])] + ([(self.d_ids, pid)] if pid is not None else [])
        if kind == "poly":
            pts = [tuple(q) for q in self._xy(op[1] + offset).tolist()]
            for dr, fill in targets:
                dr.polygon(pts, fill=fill)
        elif kind == "circle":
            c, r = self._xy(op[1] + offset), op[2] * _SS
            for dr, fill in targets:
                dr.ellipse([c[0] - r, c[1] - r, c[0] + r, c[1] + r], fill=fill)
        elif kind == "seg":
            a, b = self._xy(op[1] + offset), self._xy(op[2] + offset)
            w0, w1 = op[3] * _SS / 2, op[4] * _SS / 2
            v = b - a
            n = float(np.hypot(*v))
            for dr, fill in targets:
                if n > 1e-6:
                    nv = np.array([-v[1], v[0]]) / n
                    quad = [tuple(a + nv * w0), tuple(b + nv * w1), tuple(b - nv * w1), tuple(a - nv * w0)]
                    dr.polygon(quad, fill=fill)
                dr.ellipse([a[0] - w0, a[1] - w0, a[0] + w0, a[1] + w0], fill=fill)
                dr.ellipse([b[0] - w1, b[1] - w1, b[0] + w1, b[1] + w1], fill=fill)

    def figure(self, fig: _Figure, offset: np.ndarray, annotated: bool, foreign: bool) -> None:
        for _, pid, ops in fig.parts:
            tag = pid if annotated else (P_FOREIGN if foreign else None)
            for o in ops:
                self.op(o, offset, tag)


def _textured(rng: np.random.Generator, w: int, h: int) -> Image.Image:
    """A colour gradient plus low-frequency texture: a small random grid, upsampled bilinearly."""
    k = int(rng.integers(3, 10))
    c1 = _hsv(rng, (0.0, 0.6), (0.15, 0.95))
    c2 = _hsv(rng, (0.0, 0.6), (0.15, 0.95))
    ang = rng.uniform(0, 2 * math.pi)
    t = np.linspace(-0.5, 0.5, k)
    ramp = (math.cos(ang) * t[None, :] + math.sin(ang) * t[:, None]) + 0.5
    grid = c1 * (1 - ramp[..., None]) + c2 * ramp[..., None] + rng.normal(0, rng.uniform(10, 45), (k, k, 3))
    small = Image.fromarray(np.clip(grid, 0, 255).astype(np.uint8))
    return small.resize((w, h), Image.BILINEAR)


def _background(rng: np.random.Generator, size: int) -> Image.Image:
    img = _textured(rng, size, size)
    if rng.random() < 0.5:  # a floor / horizon
        h = int(rng.uniform(0.45, 0.85) * size)
        img.paste(_textured(rng, size, size - h), (0, h))
    return img.resize((size * _SS, size * _SS), Image.NEAREST)


def _clutter(rng: np.random.Generator, canvas: _Canvas, size: int, count: int, height: float) -> None:
    for _ in range(count):
        kind = rng.choice(5, p=[0.35, 0.2, 0.15, 0.15, 0.15])
        col = _rgb(_clothing_colour(rng) if rng.random() < 0.7 else _skin_colour(rng))
        c = rng.uniform(-0.1, 1.1, 2) * size
        if kind == 0:  # limb-like segment (or two joined, like an arm)
            w = height * rng.uniform(0.035, 0.09)
            pts = [c]
            for _ in range(int(rng.integers(1, 3))):
                ang = rng.uniform(0, 2 * math.pi)
                pts.append(pts[-1] + height * rng.uniform(0.1, 0.25) * np.array([math.cos(ang), math.sin(ang)]))
            for a, b in zip(pts[:-1], pts[1:]):
                canvas.op(("seg", a, b, w, w * rng.uniform(0.7, 1.0), col), np.zeros(2), None)
        elif kind == 1:  # ellipse
            u = rng.normal(size=2)
            u /= np.hypot(*u)
            r = size * rng.uniform(0.03, 0.15)
            canvas.op(("poly", _ellipse_poly(c, u, r, r * rng.uniform(0.3, 1.0), 16), col), np.zeros(2), None)
        elif kind == 2:  # rotated rectangle
            canvas.op(("poly", _rect(rng, c, size * 0.04, size * 0.3), col), np.zeros(2), None)
        elif kind == 3:  # stripes
            ang = rng.uniform(0, math.pi)
            dvec = np.array([math.cos(ang), math.sin(ang)])
            nvec = np.array([-dvec[1], dvec[0]])
            length, w = size * rng.uniform(0.2, 0.6), height * rng.uniform(0.02, 0.06)
            for k in range(int(rng.integers(3, 7))):
                o = c + nvec * k * w * rng.uniform(2.0, 3.0)
                canvas.op(("seg", o - dvec * length / 2, o + dvec * length / 2, w, w, col), np.zeros(2), None)
        else:  # irregular blob
            canvas.op(("poly", _blob(rng, c, size * rng.uniform(0.03, 0.12)), col), np.zeros(2), None)


def _rect(rng: np.random.Generator, c: np.ndarray, lo: float, hi: float) -> np.ndarray:
    w, h = rng.uniform(lo, hi, 2)
    ang = rng.uniform(0, math.pi)
    r = np.array([[math.cos(ang), -math.sin(ang)], [math.sin(ang), math.cos(ang)]])
    return c + (np.array([[-w, -h], [w, -h], [w, h], [-w, h]]) / 2) @ r.T


def _blob(rng: np.random.Generator, c: np.ndarray, r: float) -> np.ndarray:
    k = int(rng.integers(5, 9))
    t = np.sort(rng.uniform(0, 2 * math.pi, k))
    rad = r * rng.uniform(0.6, 1.3, k)
    return c + np.stack([rad * np.cos(t), rad * np.sin(t)], axis=1)


# --------------------------------------------------------------------------------------------
# one image
# --------------------------------------------------------------------------------------------


def _place(rng: np.random.Generator, joints: np.ndarray, size: int) -> np.ndarray:
    """Translation putting the core joints (and usually the whole body) inside the image."""
    m = 2.0

    def box(pts):
        lo = m - pts.min(axis=0)
        hi = size - 1 - m - pts.max(axis=0)
        return lo, hi

    lo, hi = box(joints)
    if (lo <= hi).all() and rng.random() < 0.75:
        return rng.uniform(lo, hi)
    lo, hi = box(joints[list(_CORE)])
    if (lo <= hi).all():
        return rng.uniform(lo, hi)
    return (size - 1) / 2.0 - joints[list(_CORE)].mean(axis=0)


def _render(cfg: SyntheticConfig, index: int) -> tuple[bytes, dict]:
    """Draw image ``index``; return the JPEG bytes and its annotation (0-based px)."""
    rng = np.random.default_rng([cfg.seed, index])
    size = cfg.image_size
    lo_h, hi_h = cfg.person_height
    height = rng.uniform(lo_h, hi_h)
    fig = _make_figure(rng, height, cfg.rotation, cfg.lr_cue)
    offset = _place(rng, fig.joints, size)
    joints = fig.joints + offset

    canvas = _Canvas(_background(rng, size), Image.new("L", (size * _SS, size * _SS), 0))
    _clutter(rng, canvas, size, int(rng.poisson(cfg.clutter)), height)
    n_dis = int(rng.poisson(cfg.distractors))
    distractors = []
    for _ in range(n_dis):
        dh = rng.uniform(lo_h, hi_h) * rng.uniform(0.7, 1.1)
        dfig = _make_figure(rng, dh, cfg.rotation, cfg.lr_cue)
        doff = rng.uniform(-0.1, 1.1, 2) * size - dfig.joints[[PELV, THRX]].mean(axis=0)
        distractors.append((dfig, doff, rng.random() < 0.35))
    for dfig, doff, in_front in distractors:
        if not in_front:
            canvas.figure(dfig, doff, annotated=False, foreign=False)
    canvas.figure(fig, offset, annotated=True, foreign=False)
    for dfig, doff, in_front in distractors:
        if in_front:
            canvas.figure(dfig, doff, annotated=False, foreign=True)
    for _ in range(int(rng.poisson(cfg.occluders))):
        target = joints[int(rng.integers(J))]
        c = target + rng.normal(0, 0.08 * height, 2)
        col = _rgb(_hsv(rng, (0.0, 1.0), (0.1, 1.0)))
        shape = (
            _rect(rng, c, 0.08 * height, 0.3 * height)
            if rng.random() < 0.5
            else _blob(rng, c, rng.uniform(0.06, 0.16) * height)
        )
        canvas.op(("poly", shape, col), np.zeros(2), P_FOREIGN)
        if rng.random() < 0.4:  # a second tone makes the occluder textured
            canvas.op(("poly", (shape - c) * 0.5 + c, _rgb(_hsv(rng, (0, 1), (0.1, 1)))), np.zeros(2), P_FOREIGN)

    # visibility from the part-id buffer
    ids = np.asarray(canvas.ids)
    visible = np.zeros(J, bool)
    for j in range(J):
        q = joints[j]
        if j in _SAMPLE_TOWARD:
            v = joints[_SAMPLE_TOWARD[j]] - q
            n = float(np.hypot(*v))
            if n > 1e-6:
                q = q + v / n * min(1.5, 0.3 * n)
        xs = min(size * _SS - 1, max(0, round(float(q[0]) * _SS + (_SS - 1) / 2)))
        ys = min(size * _SS - 1, max(0, round(float(q[1]) * _SS + (_SS - 1) / 2)))
        owners = set(_OWNERS[j])
        if j in _TORSO_SIDE_JOINTS and fig.depth[j] > fig.depth[PELV] + 0.02:
            owners.discard(P_TORSO)
        visible[j] = int(ids[ys, xs]) in owners

    # annotated / missing
    inside = (joints >= -0.5).all(axis=1) & (joints <= size - 0.5).all(axis=1)
    dropped = rng.random(J) < cfg.missing_rate
    present = inside & ~dropped
    present[list(_CORE)] = True

    # pixels: downsample, sensor noise, JPEG
    img = np.asarray(canvas.rgb.reduce(_SS), dtype=np.float32)
    noise = _GAUSS_LUT[np.frombuffer(rng.bytes(img.size), dtype=np.uint8)].reshape(img.shape)
    img = img + noise * np.float32(rng.uniform(2.0, 7.0))
    out = Image.fromarray(np.clip(img + 0.5, 0, 255).astype(np.uint8))
    buf = io.BytesIO()
    out.save(buf, **JPEG_SETTINGS)

    hn = joints[HEAD] - joints[NECK]
    hlen = float(np.hypot(*hn))
    hc = (joints[HEAD] + joints[NECK]) / 2
    headbox = np.array([[hc[0] - 0.375 * hlen, hc[1] - 0.5 * hlen], [hc[0] + 0.375 * hlen, hc[1] + 0.5 * hlen]])
    anno = {
        "joints": joints,
        "visible": visible,
        "present": present,
        "headbox": headbox,
        "objpos": (joints[PELV] + joints[THRX]) / 2,
        "scale": height / 200.0,
        "family": fig.family,
        "front": fig.front,
        "face": fig.face + offset,
    }
    return buf.getvalue(), anno


# --------------------------------------------------------------------------------------------
# writing
# --------------------------------------------------------------------------------------------


def image_name(index: int) -> str:
    """File name of synthetic image ``index`` (0-based annolist index)."""
    return f"{index:09d}.jpg"


def _struct_array(fields: list[str], rows: list[dict]) -> np.ndarray:
    arr = np.empty((1, len(rows)), dtype=[(f, object) for f in fields])
    for k, row in enumerate(rows):
        for f in fields:
            arr[0, k][f] = row[f]
    return arr


def _empty() -> np.ndarray:
    return np.zeros((0, 0))


def _test_rects(a: dict, second: bool) -> np.ndarray:
    """A test image's annorect as MPII gives it: the rough location only (``scale``, ``objpos``; no
    joints, no head box). ``second``: also an unlisted second rect, a person the benchmark does
    not score (not in ``single_person``), half a person height to the right."""
    rects = [{"scale": float(a["scale"]), "objpos": {"x": float(a["objpos"][0] + 1), "y": float(a["objpos"][1] + 1)}}]
    if second:
        rects.append(
            {
                "scale": float(a["scale"]) * 0.8,
                "objpos": {"x": float(a["objpos"][0] + 1 + 100 * a["scale"]), "y": float(a["objpos"][1] + 1)},
            }
        )
    return _struct_array(["scale", "objpos"], rects)


def _release(annos: list[dict], n_test: int = 0) -> dict:
    """The RELEASE struct in the official layout (all coordinates 1-based). The last ``n_test``
    images are test images (``img_train = 0``, :func:`_test_rects`; the last one of two or more
    has the second rect)."""
    annolist, acts = [], []
    first_test = len(annos) - n_test
    for i, a in enumerate(annos):
        if i >= first_test:
            annolist.append(
                {
                    "image": {"name": image_name(i)},
                    "annorect": _test_rects(a, second=n_test > 1 and i == len(annos) - 1),
                    "frame_sec": _empty(),
                    "vidx": _empty(),
                }
            )
            acts.append(
                {"act_name": POSE_FAMILIES[a["family"]], "cat_name": "synthetic", "act_id": float(a["family"] + 1)}
            )
            continue
        pts = []
        for j in range(J):
            if a["present"][j]:
                pts.append(
                    {
                        "x": float(a["joints"][j, 0] + 1),
                        "y": float(a["joints"][j, 1] + 1),
                        "id": float(j),
                        "is_visible": float(a["visible"][j]),
                    }
                )
        hb = a["headbox"] + 1
        rect = _struct_array(
            ["x1", "y1", "x2", "y2", "annopoints", "scale", "objpos"],
            [
                {
                    "x1": float(hb[0, 0]),
                    "y1": float(hb[0, 1]),
                    "x2": float(hb[1, 0]),
                    "y2": float(hb[1, 1]),
                    "annopoints": {"point": _struct_array(["x", "y", "id", "is_visible"], pts)},
                    "scale": float(a["scale"]),
                    "objpos": {"x": float(a["objpos"][0] + 1), "y": float(a["objpos"][1] + 1)},
                }
            ],
        )
        annolist.append({"image": {"name": image_name(i)}, "annorect": rect, "frame_sec": _empty(), "vidx": _empty()})
        acts.append({"act_name": POSE_FAMILIES[a["family"]], "cat_name": "synthetic", "act_id": float(a["family"] + 1)})
    n = len(annos)
    single = np.empty((n, 1), dtype=object)
    for i in range(n):
        single[i, 0] = np.array([[1.0]])
    act = np.empty((n, 1), dtype=[(f, object) for f in ("act_name", "cat_name", "act_id")])
    for i, row in enumerate(acts):
        for f, v in row.items():
            act[i, 0][f] = v
    img_train = np.ones((1, n))
    img_train[0, first_test:] = 0
    return {
        "annolist": _struct_array(["image", "annorect", "frame_sec", "vidx"], annolist),
        "img_train": img_train,
        "version": "12",
        "single_person": single,
        "act": act,
        "video_list": np.empty((1, 0), dtype=object),
    }


def flic_image_name(index: int) -> str:
    """File name of synthetic image ``index`` in the FLIC layout (``<movie>-<8-digit frame>.jpg``, as FLIC)."""
    return f"{FLIC_MOVIE}-{index:08d}.jpg"


def flic_coords(anno: dict) -> np.ndarray:
    """(11, 2) person-centric FLIC joints (:data:`hgbench.joints.FLIC_JOINTS` order) of one rendered
    person, 0-based px: the 8 body joints from the skeleton, eyes and nose from the head geometry."""
    out = np.empty((len(FLIC_JOINTS), 2))
    for k, name in enumerate(FLIC_JOINTS):
        out[k] = anno["face"][_FLIC_FACE[name]] if name in _FLIC_FACE else anno["joints"][MPII_JOINTS.index(name)]
    return out


def torso_box(coords: np.ndarray) -> np.ndarray:
    """``[x1 y1 x2 y2]`` around the shoulders and hips of (11, 2) FLIC joints (any frame), padded
    by 10 % of the box's longer side so that the torso joints lie strictly inside it."""
    torso = coords[[FLIC_JOINTS.index(n) for n in ("lsho", "rsho", "lhip", "rhip")]]
    lo, hi = torso.min(axis=0), torso.max(axis=0)
    pad = max(0.1 * float((hi - lo).max()), 1.0)
    return np.concatenate([lo - pad, hi + pad])


def _flic_examples(annos: list[dict], cfg: SyntheticConfig) -> np.ndarray:
    """The (1, N) ``examples`` struct array of FLIC's ``examples.mat`` (1-based coordinates).

    Every field of the real file: ``coords`` 2×29 (person-centric labels in the 11 annotated
    slots, NaN in the other 18, as FLIC), ``filepath``, ``imgdims`` ``[rows cols 3]``,
    ``torsobox``, ``istrain``/``istest`` (the first ``n_train`` / the last ``n_valid`` images),
    ``moviename``, ``currframe``, ``poselet_hit_idx`` (empty: no poselet detector ran),
    ``isbad``/``isunchecked`` (0).
    """
    rows = []
    size = float(cfg.image_size)
    for i, a in enumerate(annos):
        pc = flic_coords(a) + 1.0  # 1-based MATLAB pixels
        coords = np.full((2, len(flic.SLOTS)), np.nan)
        coords[:, list(flic.ANNOTATED_SLOTS)] = pc.T
        train = i < cfg.n_train
        rows.append(
            {
                "poselet_hit_idx": np.zeros((1, 0)),
                "moviename": FLIC_MOVIE,
                "coords": coords,
                "filepath": flic_image_name(i),
                "imgdims": np.array([[size, size, 3.0]]),
                "currframe": float(i),
                "torsobox": torso_box(pc)[None, :],
                "istrain": np.uint8(train),
                "istest": np.uint8(not train),
                "isbad": np.uint8(0),
                "isunchecked": np.uint8(0),
            }
        )
    return _struct_array(list(FLIC_FIELDS), rows)


def _mat_bytes(name: str, value) -> bytes:
    buf = io.BytesIO()
    scipy.io.savemat(buf, {name: value}, do_compression=True, oned_as="row")
    data = bytearray(buf.getvalue())
    header = f"MATLAB 5.0 MAT-file, written by {GENERATOR_NAME} {GENERATOR_VERSION}".encode("ascii")
    data[:116] = header.ljust(116, b" ")  # replace the creation timestamp: byte-identical output
    return bytes(data)


JPEG_BYTES_PER_PIXEL = 1.5
"""Upper bound of one image's bytes per pixel at :data:`JPEG_SETTINGS` (measured with heavy
clutter, occluders and distractors: 0.94 at 64², 0.62 at 192², 0.43 at 1024²)."""
FILE_OVERHEAD = 8192
"""Bytes per image beyond its pixels: a file-system block, its share of the annotation file."""


def disk_bytes(cfg: SyntheticConfig, n_test: int = 0) -> int:
    """Upper estimate of the bytes :func:`generate` writes for ``cfg`` (fetch checks it against the
    free disk before it starts)."""
    n = cfg.n_train + cfg.n_valid + n_test
    return math.ceil(n * (JPEG_BYTES_PER_PIXEL * cfg.image_size**2 + FILE_OVERHEAD))


def _config_dict(cfg: SyntheticConfig) -> dict:
    return json.loads(json.dumps(dataclasses.asdict(cfg)))


def generate(out_dir: Path, cfg: SyntheticConfig, progress: bool = False, n_test: int = 0) -> None:
    """Write the synthetic dataset for ``cfg`` into ``out_dir`` in ``cfg.layout`` (see the module docstring).

    The same ``cfg`` always gives byte-identical files. ``out_dir`` is created if needed;
    existing files of the same names are overwritten (use ``data.fetch.fetch_synthetic`` for an
    atomic, idempotent write). ``n_test`` (MPII layout only; not a profile key, for tests of the
    MPII test-split path) appends that many test images after the ``n_train + n_valid`` others:
    ``img_train = 0``, one single-person rect with ``objpos``/``scale`` and no joints or head box,
    as MPII releases its test set (the last of two or more also has an unlisted second rect). The
    other images, their annotations and the split list are those of ``n_test = 0``; the manifest
    records ``n_test`` when it is not 0.
    """
    if cfg.layout not in LAYOUTS:
        raise ValueError(f"synthetic layout must be one of {LAYOUTS}, got {cfg.layout!r}")
    if cfg.layout == "flic" and cfg.missing_rate:
        raise ValueError(
            f"synthetic missing_rate {cfg.missing_rate} with layout flic: FLIC labels all 11 of its "
            f"joints in every example; set missing_rate: 0"
        )
    if n_test and cfg.layout != "mpii":
        raise ValueError(f"synthetic n_test {n_test}: test images exist in the MPII layout only, not {cfg.layout!r}")
    out_dir = Path(out_dir)
    flic_layout = cfg.layout == "flic"
    n = cfg.n_train + cfg.n_valid + n_test
    images_rel = flic.IMAGES_RELPATH if flic_layout else IMAGES_DIRNAME
    name = flic_image_name if flic_layout else image_name
    (out_dir / images_rel).mkdir(parents=True, exist_ok=True)
    checksums: dict[str, str] = {}
    annos = []
    indices = range(n)
    if progress:
        from tqdm import tqdm

        indices = tqdm(indices, desc="synthetic images", unit="img")
    for i in indices:
        data, anno = _render(cfg, i)
        rel = f"{images_rel}/{name(i)}"
        (out_dir / rel).write_bytes(data)
        checksums[rel] = hashlib.sha256(data).hexdigest()
        annos.append(anno)

    def write(rel: str, data: bytes) -> None:
        (out_dir / rel).parent.mkdir(parents=True, exist_ok=True)
        (out_dir / rel).write_bytes(data)
        checksums[rel] = hashlib.sha256(data).hexdigest()

    if flic_layout:  # FLIC: the split is istrain/istest inside examples.mat
        write(flic.EXAMPLES_RELPATH, _mat_bytes("examples", _flic_examples(annos, cfg)))
    else:
        write(RELEASE_RELPATH, _mat_bytes("RELEASE", _release(annos, n_test)))
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["image_index", "person_index"])
        for i in range(cfg.n_train, cfg.n_train + cfg.n_valid):
            w.writerow([i, 0])
        write(SPLIT_FILENAME, buf.getvalue().encode("ascii"))

    manifest = {
        "generator": GENERATOR_NAME,
        "version": GENERATOR_VERSION,
        "config": _config_dict(cfg),
        "n_images": n,
        "files": dict(sorted(checksums.items())),
    }
    if n_test:
        manifest["n_test"] = n_test
    (out_dir / MANIFEST_FILENAME).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")


def manifest_matches(out_dir: Path, cfg: SyntheticConfig, verify_files: bool = True, n_test: int = 0) -> bool:
    """True when ``out_dir`` holds a complete dataset generated from ``cfg`` (and ``n_test``) by this version."""
    path = Path(out_dir) / MANIFEST_FILENAME
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    if (
        manifest.get("generator") != GENERATOR_NAME
        or manifest.get("version") != GENERATOR_VERSION
        or manifest.get("config") != _config_dict(cfg)
        or manifest.get("n_test", 0) != n_test
    ):
        return False
    files = manifest.get("files")
    if not isinstance(files, dict) or not files:
        return False
    for rel, sha in files.items():
        f = Path(out_dir) / rel
        if not f.is_file():
            return False
        if verify_files and hashlib.sha256(f.read_bytes()).hexdigest() != sha:
            return False
    return True
