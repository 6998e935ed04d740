"""PCKh metrics for MPII-style 16-joint predictions (numpy only).

Every array has a person axis N and a joint axis of the 16 MPII joints (:data:`MPII_JOINTS`
order). Coordinates may be in any frame as long as predictions, ground truth and normaliser
share it (the project uses the native MATLAB 1-based frame). Scores are percentages.

A protocol is one small :class:`Protocol` record in :data:`PROTOCOLS`; the computation below is
shared, so a new protocol is a new entry there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from hgbench.joints import ABLATION_JOINTS, MPII_GROUPS, MPII_JOINTS, joint_index

N_JOINTS = len(MPII_JOINTS)
UNSCORED_JOINTS = ("pelv", "thrx")
"""Never scored by any MPII protocol (annolist2matrix keeps 14 of the 16 joints)."""
SCORED_JOINTS = tuple(j for j in MPII_JOINTS if j not in UNSCORED_JOINTS)
CURVE_THRESHOLDS = np.round(np.linspace(0.0, 0.5, 51), 2)
"""MATLAB ``0:0.01:0.5``; rounded so that e.g. 0.07 is exactly the float literal 0.07."""


@dataclass(frozen=True)
class Protocol:
    """One PCKh scoring convention.

    inclusive: a joint is correct iff ``dist <= thr`` (True) or ``dist < thr`` (False).
    head: the Head group is the mean of neck and head-top PCK ("neck+head") or head top only.
    mean: "pooled" = correct / scored over every scored joint instance; "per_joint" = unweighted
        mean of the 14 per-joint PCKs.
    """

    name: str
    inclusive: bool
    head: Literal["neck+head", "head"]
    mean: Literal["pooled", "per_joint"]
    source: str


PROTOCOLS: dict[str, Protocol] = {
    p.name: p
    for p in (
        Protocol("official", inclusive=True, head="neck+head", mean="pooled",
                 source="MPII MATLAB toolkit (evalMPII: computePCK.m, genTablePCK.m)"),
        Protocol("bearpaw", inclusive=False, head="head", mean="per_joint",
                 source="bearpaw/pytorch-pose evaluation/eval_PCKh.py and eval_PCKh.m"),
    )
}


def get_protocol(name: str) -> Protocol:
    """The :class:`Protocol` called ``name``; ValueError naming the allowed names otherwise."""
    try:
        return PROTOCOLS[name]
    except KeyError:
        raise ValueError(
            f"unknown PCKh protocol {name!r}; allowed: {', '.join(sorted(PROTOCOLS))}") from None


def _check_shape(name: str, arr: np.ndarray, expected: tuple, n: int | None) -> None:
    """Raise a ValueError naming ``name`` unless ``arr`` has ``expected`` shape (None = any N)."""
    want = tuple(n if e is None else e for e in expected) if n is not None else expected
    ok = arr.ndim == len(expected) and all(
        e is None or s == e for s, e in zip(arr.shape, want))
    if not ok:
        dims = ["N" if e is None else str(e) for e in expected]
        shown = f"({dims[0]},)" if len(dims) == 1 else "(" + ", ".join(dims) + ")"
        rows = f" with N = {n}" if n is not None else ""
        raise ValueError(f"{name} has shape {arr.shape}; expected {shown}{rows}")


def _validate(preds, gt, missing, normalizer, visible=None):
    preds = np.asarray(preds, dtype=np.float64)
    gt = np.asarray(gt, dtype=np.float64)
    _check_shape("preds", preds, (None, N_JOINTS, 2), None)
    n = preds.shape[0]
    # Row-count mismatches get their own message: they usually mean a wrong split file.
    for name, arr in (("gt", gt), ("missing", missing), ("normalizer", normalizer),
                      ("visible", visible)):
        arr = np.asarray(arr) if arr is not None else None
        if arr is not None and arr.ndim >= 1 and arr.shape[0] != n:
            raise ValueError(f"{name} has {arr.shape[0]} rows but preds has {n} rows "
                             f"(shape {arr.shape} vs preds {preds.shape})")
    _check_shape("gt", gt, (None, N_JOINTS, 2), n)
    missing = np.asarray(missing)
    _check_shape("missing", missing, (None, N_JOINTS), n)
    missing = missing.astype(bool)
    normalizer = np.asarray(normalizer, dtype=np.float64)
    _check_shape("normalizer", normalizer, (None,), n)
    if visible is not None:
        visible = np.asarray(visible)
        _check_shape("visible", visible, (None, N_JOINTS), n)
        visible = visible.astype(bool)

    scored = _scored_mask(missing)
    bad_gt = scored & ~np.isfinite(gt).all(axis=-1)
    if bad_gt.any():
        r, j = np.argwhere(bad_gt)[0]
        raise ValueError(f"gt has {int(bad_gt.sum())} non-finite coordinates at joints not marked "
                         f"missing (first: row {r}, joint {MPII_JOINTS[j]})")
    bad_norm = scored.any(axis=1) & ~(np.isfinite(normalizer) & (normalizer > 0))
    if bad_norm.any():
        rows = np.flatnonzero(bad_norm)
        raise ValueError(f"normalizer must be finite and > 0 for rows with scored joints; "
                         f"{rows.size} rows are not (first: row {rows[0]} = {normalizer[rows[0]]})")
    return preds, gt, missing, normalizer, visible


def _scored_mask(missing: np.ndarray) -> np.ndarray:
    """(N, 16) bool: joints that count (annotated and not pelvis/thorax)."""
    scored = ~missing.astype(bool)
    scored[:, [joint_index(j) for j in UNSCORED_JOINTS]] = False
    return scored


def pckh_distances(preds, gt, missing, normalizer) -> np.ndarray:
    """Normalised joint errors.

    preds, gt: (N, 16, 2) coordinates, same frame (px). missing: (N, 16) bool, True = not
    annotated. normalizer: (N,) head size in px (0.6 × head-box diagonal for MPII).
    Returns (N, 16) float64: ``||pred - gt|| / normalizer``, unitless; NaN where the ground
    truth is missing; +inf where the prediction is NaN (so it counts as wrong at every threshold).
    """
    preds, gt, missing, normalizer, _ = _validate(preds, gt, missing, normalizer)
    with np.errstate(invalid="ignore", divide="ignore"):
        dist = np.linalg.norm(preds - gt, axis=-1) / normalizer[:, None]
    dist[np.isnan(preds).any(axis=-1)] = np.inf
    dist[missing] = np.nan
    return dist


def _rate(correct: np.ndarray, mask: np.ndarray, axis=None) -> np.ndarray | float:
    """100 · (correct & mask).sum / mask.sum along ``axis``; NaN where nothing is counted."""
    hits = (correct & mask).sum(axis=axis)
    count = mask.sum(axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        return 100.0 * hits / count


def _group_joints(protocol: Protocol) -> dict[str, tuple[str, ...]]:
    groups = dict(MPII_GROUPS)
    if protocol.head == "head":
        groups["Head"] = ("head",)
    return groups


def pckh(preds, gt, missing, normalizer, thresholds=CURVE_THRESHOLDS, protocol="official",
         visible=None) -> dict:
    """PCKh scores of one prediction set.

    preds, gt: (N, 16, 2) px; missing: (N, 16) bool; normalizer: (N,) head size in px;
    thresholds: 1-D fractions of the head size for the curve (default 0:0.01:0.5; the AUC is
    the area under the Mean curve over these thresholds with x scaled to [0, 1]);
    protocol: a name in :data:`PROTOCOLS`; visible: optional (N, 16) bool, True = annotated
    visible (joints neither missing nor visible count as occluded).

    Returns a dict (values in %, full precision, NaN where no joint is counted):
    ``protocol``, ``n_people``, ``pckh@0.5`` and ``pckh@0.1`` ({Head..Ankle, Mean}), ``auc``,
    ``per_joint`` (14 scored joints at 0.5), ``ablation@0.5`` (pooled over the 8
    :data:`ABLATION_JOINTS`, paper §4.2), ``curve`` ({"thresholds", Head..Ankle, Mean} lists) and,
    with ``visible``, ``visibility`` ({"visible", "occluded"} pooled at 0.5).
    """
    proto = get_protocol(protocol)
    preds, gt, missing, normalizer, visible = _validate(preds, gt, missing, normalizer, visible)
    dist = pckh_distances(preds, gt, missing, normalizer)
    scored = _scored_mask(missing)
    groups = _group_joints(proto)
    thresholds = np.asarray(thresholds, dtype=np.float64).ravel()

    def correct(thr):
        # NaN distances (missing joints) compare False; they are masked out anyway.
        return dist <= thr if proto.inclusive else dist < thr

    def table(thr) -> tuple[dict[str, float], np.ndarray]:
        ok = correct(thr)
        per_joint = _rate(ok, scored, axis=0)  # (16,), NaN for pelvis/thorax
        row = {g: float(np.mean([per_joint[joint_index(j)] for j in js]))
               for g, js in groups.items()}
        if proto.mean == "pooled":
            row["Mean"] = float(_rate(ok, scored))
        else:
            row["Mean"] = float(np.mean([per_joint[joint_index(j)] for j in SCORED_JOINTS]))
        return row, per_joint

    at_05, per_joint_05 = table(0.5)
    rows = [table(t)[0] for t in thresholds]
    curve = {"thresholds": [float(t) for t in thresholds]}
    curve.update({k: [r[k] for r in rows] for k in at_05})

    mean_curve = np.array(curve["Mean"])
    if thresholds.size > 1:
        x = (thresholds - thresholds.min()) / (thresholds.max() - thresholds.min())
        auc = float(np.sum(np.diff(x) * (mean_curve[1:] + mean_curve[:-1]) / 2))
    else:
        auc = float("nan")

    ablation = np.zeros(N_JOINTS, dtype=bool)
    ablation[[joint_index(j) for j in ABLATION_JOINTS]] = True
    ok_05 = correct(0.5)
    out = {
        "protocol": proto.name,
        "n_people": int(preds.shape[0]),
        "pckh@0.5": at_05,
        "pckh@0.1": table(0.1)[0],
        "auc": auc,
        "per_joint": {j: float(per_joint_05[joint_index(j)]) for j in SCORED_JOINTS},
        "ablation@0.5": float(_rate(ok_05, scored & ablation)),
        "curve": curve,
    }
    if visible is not None:
        out["visibility"] = {"visible": float(_rate(ok_05, scored & visible)),
                             "occluded": float(_rate(ok_05, scored & ~visible))}
    return out
