"""PCK metrics (numpy only): MPII PCKh under several published protocols, and FLIC PCK.

Every array has a person axis N and a joint axis J in the order of the protocol's dataset
(:data:`hgbench.joints.MPII_JOINTS`, 16 joints, or :data:`hgbench.joints.FLIC_JOINTS`, 11).
Coordinates may be in any frame as long as predictions, ground truth and normaliser share it (the
project uses the native MATLAB 1-based frame). Scores are percentages.

A protocol is one small :class:`Protocol` record in :data:`PROTOCOLS`; the computation below is
shared, so a protocol is only data. ``docs/evaluation.md`` has the table of protocols and the
source of every field.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from hgbench.joints import joint_index
from hgbench.kinds import FLIC, KINDS, MPII, DatasetKind, TrainingMetric, kind_of

N_JOINTS = len(MPII.joints)
UNSCORED_JOINTS = MPII.unscored
"""Never scored by the MPII toolkit (annolist2matrix keeps 14 of the 16 joints)."""
SCORED_JOINTS = MPII.scored
CURVE_THRESHOLDS = np.round(np.linspace(0.0, 0.5, 51), 2)
"""MATLAB ``0:0.01:0.5``; rounded so that e.g. 0.07 is exactly the float literal 0.07."""
FLIC_CURVE_THRESHOLDS = np.round(np.linspace(0.0, 0.2, 21), 2)
"""FLIC PCK curve 0:0.01:0.2 (the paper's Fig. 6 x axis)."""

FLIC_GROUPS = dict(FLIC.groups)
"""FLIC report groups (:data:`hgbench.kinds.FLIC`); the paper's Table 1 shows Elbow and Wrist."""


def matlab_colon(start: float, step: float, stop: float) -> np.ndarray:
    """The values MATLAB's ``start:step:stop`` holds (float64), for ``step > 0``.

    MATLAB fills the vector from both ends, ``start + k·step`` in the first half and
    ``stop − k·step`` in the second, with the middle element of an odd-length vector set to
    ``(start + stop) / 2`` (MathWorks' published ``colonop`` description of its colon operator).
    For ``0:0.01:0.5`` this differs from the decimal literals by one ulp at 0.29, 0.33, 0.34 and
    0.41 (e.g. 0.29000000000000004), which decides a distance exactly at such a threshold.
    """
    n = round((stop - start) / step)
    tol = 2.0 * np.finfo(float).eps * max(abs(start), abs(stop))
    if start + n * step - stop > tol:
        n -= 1
    last = start + n * step
    if last - stop > -tol:
        last = stop
    out = np.empty(n + 1)
    k = np.arange(n // 2 + 1)
    out[k] = start + k * step
    out[n - k] = last - k * step
    if n % 2 == 0:
        out[n // 2] = (start + last) / 2
    return out


MATLAB_CURVE_THRESHOLDS = matlab_colon(0.0, 0.01, 0.5)
"""The MPII toolkit's ``range = 0:0.01:0.5`` as MATLAB holds it (compared in the ``official``
protocol; reported as :data:`CURVE_THRESHOLDS`)."""

# HRNet and mmpose read their "@0.1" value off a curve built with np.arange(0, 0.51, 0.01);
# HRNet takes row 11 of it, i.e. 0.11000000000000001, not 0.1 (HRNet issue #167).
_ARANGE_CURVE = np.arange(0, 0.5 + 0.01, 0.01)
HRNET_AT_01 = float(_ARANGE_CURVE[11])


@dataclass(frozen=True)
class Protocol:
    """One PCK scoring convention (every field is documented in docs/evaluation.md).

    inclusive: a joint is correct iff ``dist <= thr`` (True) or ``dist < thr`` (False).
    head: Head group as the kind defines it ("neck+head": MPII's neck and head top) or its head top
        only ("head"; a kind without a head top, FLIC, keeps its own Head group).
    mean: "pooled" = correct / scored over every scored joint instance; "per_joint" = unweighted
        mean of the per-joint PCKs.
    source: the file(s) of the reference code this protocol reproduces.
    groups: "mean" = a group is the mean of its joints' PCKs (left/right); "pooled" = correct /
        scored over the group's instances (pytorch_stacked_hourglass).
    unscored: joints never scored (MPII pelvis and thorax; none for PSH and FLIC).
    gt_rule: which ground-truth joints count: "annotated" (not missing), "x_nonzero" (PSH:
        ``g[j, 0] != 0``) or "coords_gt_1" (pose-hg-train ``calcDists``: x > 1 and y > 1).
    key_thresholds: ((key, threshold), ...): the tables written to the output; the first is the
        headline (used for per_joint, ablation, visibility, stacks and the bootstrap).
    curve: thresholds of the curve whose Mean is integrated into ``auc``.
    dataset: the name of the protocol's :class:`hgbench.kinds.DatasetKind` (:attr:`kind`): "mpii"
        (16 joints, head-size normaliser) or "flic" (11 joints, torso diagonal).
    ground_truth: the ground-truth file the reference code scores against.
    matlab_range: compare distances against the values MATLAB's ``0:0.01:0.5`` holds
        (:data:`MATLAB_CURVE_THRESHOLDS`) instead of the decimal literals; the thresholds are
        still reported as the literals (official: the toolkit's ``computePCK(dist, range)``).
    """

    name: str
    inclusive: bool
    head: Literal["neck+head", "head"]
    mean: Literal["pooled", "per_joint"]
    source: str
    groups: Literal["mean", "pooled"] = "mean"
    unscored: tuple[str, ...] = UNSCORED_JOINTS
    gt_rule: Literal["annotated", "x_nonzero", "coords_gt_1"] = "annotated"
    key_thresholds: tuple[tuple[str, float], ...] = (("pckh@0.5", 0.5), ("pckh@0.1", 0.1))
    curve: tuple[float, ...] = tuple(CURVE_THRESHOLDS)
    dataset: str = MPII.name
    ground_truth: str = "gt_valid.mat (pos_gt_src, jnt_missing, headboxes_src)"
    matlab_range: bool = False

    @property
    def kind(self) -> DatasetKind:
        """The dataset kind the protocol scores (joints, groups, ablation metric)."""
        return kind_of(self.dataset)

    @property
    def joint_names(self) -> tuple[str, ...]:
        return self.kind.joints

    @property
    def headline(self) -> tuple[str, float]:
        return self.key_thresholds[0]

    def group_joints(self) -> dict[str, tuple[str, ...]]:
        """Group name → joint names, in report order."""
        groups = dict(self.kind.groups)
        if self.head == "head" and self.kind.head_top is not None:
            groups["Head"] = (self.kind.head_top,)
        return groups


PROTOCOLS: dict[str, Protocol] = {
    p.name: p
    for p in (
        Protocol(
            "official",
            inclusive=True,
            head="neck+head",
            mean="pooled",
            matlab_range=True,
            ground_truth="the MPII annotation list (RELEASE.annolist; hgbench ships the validation split's records)",
            source="MPII MATLAB toolkit evalMPII (annolist2matrix.m, getDistPCKh.m, computePCK.m, "
            "genTablePCK.m, util_get_head_size.m)",
        ),
        Protocol(
            "bearpaw",
            inclusive=False,
            head="head",
            mean="per_joint",
            source="bearpaw/pytorch-pose evaluation/eval_PCKh.py and eval_PCKh.m",
        ),
        Protocol(
            "hrnet",
            inclusive=True,
            head="head",
            mean="pooled",
            key_thresholds=(("pckh@0.5", 0.5), ("pckh@0.1", HRNET_AT_01)),
            source="leoxiaobin/deep-high-resolution-net.pytorch lib/dataset/mpii.py (MPIIDataset.evaluate)",
        ),
        Protocol(
            "mmpose",
            inclusive=False,
            head="head",
            mean="pooled",
            source="open-mmlab/mmpose mmpose/evaluation/metrics/keypoint_2d_metrics.py "
            "(MpiiPCKAccuracy) with functional/keypoint_eval.py (_distance_acc)",
        ),
        Protocol(
            "pytorch-stacked-hourglass",
            inclusive=False,
            head="head",
            mean="pooled",
            groups="pooled",
            unscored=(),
            gt_rule="x_nonzero",
            ground_truth="valid.h5 (part, normalize)",
            source="princeton-vl/pytorch_stacked_hourglass test.py (mpii_eval)",
        ),
        Protocol(
            "pose-hg-train",
            inclusive=True,
            head="neck+head",
            mean="pooled",
            gt_rule="coords_gt_1",
            ground_truth="valid.h5 (part, normalize)",
            source="princeton-vl/pose-hg-train src/util/eval.lua (calcDists, distAccuracy, "
            "displayPCK); pose-hg-demo main.lua eval",
        ),
        Protocol(
            FLIC.protocol,
            inclusive=True,
            head="head",
            mean="pooled",
            unscored=FLIC.unscored,
            key_thresholds=((FLIC.headline, 0.2),),
            curve=tuple(FLIC_CURVE_THRESHOLDS),
            dataset=FLIC.name,
            ground_truth="FLIC valid.h5 (part, normalize = torso diagonal)",
            source="Newell et al. 2016 §4 (PCK@0.2, torso-normalised); normaliser and "
            "joints from princeton-vl/pose-hg-train data/flic/annot/*.h5",
        ),
    )
}


def get_protocol(name: str) -> Protocol:
    """The :class:`Protocol` called ``name``; ValueError naming the allowed names otherwise."""
    try:
        return PROTOCOLS[name]
    except KeyError:
        raise ValueError(f"unknown PCK protocol {name!r}; allowed: {', '.join(sorted(PROTOCOLS))}") from None


def _check_shape(name: str, arr: np.ndarray, expected: tuple, n: int | None) -> None:
    """Raise a ValueError naming ``name`` unless ``arr`` has ``expected`` shape (None = any N)."""
    want = tuple(n if e is None else e for e in expected) if n is not None else expected
    ok = arr.ndim == len(expected) and all(e is None or s == e for s, e in zip(arr.shape, want))
    if not ok:
        dims = ["N" if e is None else str(e) for e in expected]
        shown = f"({dims[0]},)" if len(dims) == 1 else "(" + ", ".join(dims) + ")"
        rows = f" with N = {n}" if n is not None else ""
        raise ValueError(f"{name} has shape {arr.shape}; expected {shown}{rows}")


def _validate(preds, gt, missing, normalizer, visible, proto: Protocol):
    """Arrays as float64/bool with checked shapes; ValueError naming the bad array otherwise."""
    n_joints = len(proto.joint_names)
    preds = np.asarray(preds, dtype=np.float64)
    gt = np.asarray(gt, dtype=np.float64)
    _check_shape("preds", preds, (None, n_joints, 2), None)
    n = preds.shape[0]
    # Row-count mismatches get their own message: they usually mean a wrong split file.
    for name, arr in (("gt", gt), ("missing", missing), ("normalizer", normalizer), ("visible", visible)):
        arr = np.asarray(arr) if arr is not None else None
        if arr is not None and arr.ndim >= 1 and arr.shape[0] != n:
            raise ValueError(
                f"{name} has {arr.shape[0]} rows but preds has {n} rows (shape {arr.shape} vs preds {preds.shape})"
            )
    _check_shape("gt", gt, (None, n_joints, 2), n)
    missing = np.asarray(missing)
    _check_shape("missing", missing, (None, n_joints), n)
    missing = missing.astype(bool)
    normalizer = np.asarray(normalizer, dtype=np.float64)
    _check_shape("normalizer", normalizer, (None,), n)
    if visible is not None:
        visible = np.asarray(visible)
        _check_shape("visible", visible, (None, n_joints), n)
        visible = visible.astype(bool)

    annotated = ~missing
    bad_gt = annotated & ~np.isfinite(gt).all(axis=-1)
    if bad_gt.any():
        r, j = np.argwhere(bad_gt)[0]
        raise ValueError(
            f"gt has {int(bad_gt.sum())} non-finite coordinates at joints not marked "
            f"missing (first: row {r}, joint {proto.joint_names[j]})"
        )
    bad_norm = annotated.any(axis=1) & ~(np.isfinite(normalizer) & (normalizer > 0))
    if bad_norm.any():
        rows = np.flatnonzero(bad_norm)
        raise ValueError(
            f"normalizer must be finite and > 0 for rows with scored joints; "
            f"{rows.size} rows are not (first: row {rows[0]} = {normalizer[rows[0]]})"
        )
    return preds, gt, missing, normalizer, visible


def scored_mask(gt: np.ndarray, missing: np.ndarray, protocol: Protocol | str) -> np.ndarray:
    """(N, J) bool: the joints a protocol scores.

    gt: (N, J, 2) px (NaN allowed where missing); missing: (N, J) bool. Applies the protocol's
    ground-truth rule, then drops its unscored joints (MPII pelvis and thorax).
    """
    proto = get_protocol(protocol) if isinstance(protocol, str) else protocol
    scored = ~np.asarray(missing, dtype=bool)
    with np.errstate(invalid="ignore"):
        if proto.gt_rule == "x_nonzero":
            scored &= gt[..., 0] != 0
        elif proto.gt_rule == "coords_gt_1":
            scored &= (gt > 1).all(axis=-1)
    for name in proto.unscored:
        scored[:, proto.joint_names.index(name)] = False
    return scored


def _scored_mask(missing: np.ndarray) -> np.ndarray:
    """(N, 16) bool: official MPII scored joints (annotated, not pelvis/thorax)."""
    scored = ~np.asarray(missing, dtype=bool).copy()
    scored[:, [joint_index(j) for j in UNSCORED_JOINTS]] = False
    return scored


def pckh_distances(preds, gt, missing, normalizer, layout: str = MPII.name) -> np.ndarray:
    """Normalised joint errors.

    preds, gt: (N, J, 2) coordinates, same frame (px), J = the joints of ``layout`` (a
    :data:`hgbench.kinds.KINDS` name: 16 for mpii, 11 for flic). missing: (N, J) bool, True = not
    annotated. normalizer: (N,) px (MPII head size = 0.6 × head-box diagonal; FLIC torso
    diagonal). Returns (N, J) float64: ``||pred - gt|| / normalizer``, unitless; NaN where the
    ground truth is missing; +inf where the prediction is NaN (wrong at every threshold, as in
    the MATLAB toolkit).
    """
    proto = PROTOCOLS[kind_of(layout).protocol]
    preds, gt, missing, normalizer, _ = _validate(preds, gt, missing, normalizer, None, proto)
    with np.errstate(invalid="ignore", divide="ignore"):
        dist = np.sqrt(((preds - gt) ** 2).sum(axis=-1)) / normalizer[:, None]
    dist[np.isnan(preds).any(axis=-1)] = np.inf
    dist[missing] = np.nan
    return dist


TRAINING_METRICS: dict[str, TrainingMetric] = {k.name: k.training_metric for k in KINDS.values()}
"""Each kind's :class:`~hgbench.kinds.TrainingMetric` (``DatasetKind.training_metric``) by layout."""


def training_metric(layout: str) -> TrainingMetric:
    """The per-epoch validation metric of a joint layout (``DatasetConfig.layout``: mpii or flic)."""
    try:
        return TRAINING_METRICS[layout]
    except KeyError:
        raise ValueError(
            f"no training metric for layout {layout!r}; allowed: {', '.join(sorted(TRAINING_METRICS))}"
        ) from None


def training_accuracy(preds, gt, missing, normalizer, layout: str) -> float:
    """The layout's :class:`TrainingMetric` in % (NaN when none of its joints is annotated).

    preds, gt: (N, J, 2) in one frame (``train.validate`` uses crop px), J = 16 (mpii) or 11
    (flic); missing: (N, J) bool; normalizer: (N,) in the same units as the coordinates (MPII head
    size, FLIC torso diagonal). A NaN prediction counts as wrong, a missing joint is not scored.
    """
    metric = training_metric(layout)
    n_joints = len(kind_of(layout).joints)
    if np.ndim(preds) != 3 or np.shape(preds)[1] != n_joints:
        raise ValueError(f"preds has shape {np.shape(preds)}; layout {layout!r} needs (N, {n_joints}, 2)")
    dist = pckh_distances(preds, gt, missing, normalizer, layout)[:, metric.indices]
    scored = ~np.isnan(dist)
    return float(100.0 * (dist[scored] <= metric.threshold).mean()) if scored.any() else float("nan")


def correct_at(dist: np.ndarray, thresholds, inclusive: bool) -> np.ndarray:
    """(T, N, J) bool: ``dist <= thr`` (inclusive) or ``dist < thr`` for every threshold.

    NaN distances (missing joints) compare False; callers mask them out anyway.
    """
    thr = np.asarray(thresholds, dtype=np.float64).reshape(-1, 1, 1)
    with np.errstate(invalid="ignore"):
        return dist[None] <= thr if inclusive else dist[None] < thr


def table_from_counts(hits: np.ndarray, counts: np.ndarray, protocol: Protocol | str) -> dict[str, np.ndarray]:
    """Group scores and Mean (%) from per-joint hit and scored counts.

    hits, counts: (..., J) numbers of correct and of scored instances per joint, any leading
    shape (thresholds, bootstrap replicates). Returns {group: (...), "Mean": (...)} in %, NaN
    where nothing is counted. This is the one place that turns counts into a table, so the
    bootstrap (:mod:`hgbench.stats`) resamples exactly the published statistic.
    """
    proto = get_protocol(protocol) if isinstance(protocol, str) else protocol
    names = proto.joint_names
    hits = np.asarray(hits, dtype=np.float64)
    counts = np.asarray(counts, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = 100.0 * hits / counts
        out = {}
        for group, joints in proto.group_joints().items():
            idx = [names.index(j) for j in joints]
            if proto.groups == "pooled":
                out[group] = 100.0 * hits[..., idx].sum(-1) / counts[..., idx].sum(-1)
            else:
                out[group] = rate[..., idx].mean(-1)
        scored = [i for i, j in enumerate(names) if j not in proto.unscored]
        if proto.mean == "pooled":
            out["Mean"] = 100.0 * hits[..., scored].sum(-1) / counts[..., scored].sum(-1)
        else:
            out["Mean"] = rate[..., scored].mean(-1)
    return out


def ablation_from_counts(hits: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Paper §4.2 metric (%): pooled over wrists, elbows, knees and ankles. hits, counts (..., 16)."""
    idx = [MPII.joints.index(j) for j in MPII.ablation_joints]
    with np.errstate(invalid="ignore", divide="ignore"):
        return 100.0 * np.asarray(hits)[..., idx].sum(-1) / np.asarray(counts)[..., idx].sum(-1)


def _auc(thresholds: np.ndarray, mean_curve: np.ndarray) -> float:
    """Area under the Mean curve with x scaled to [0, 1] (evalMPII area_under_curve/scale01), %."""
    if thresholds.size < 2:
        return float("nan")
    x = (thresholds - thresholds.min()) / (thresholds.max() - thresholds.min())
    return float(np.sum(np.diff(x) * (mean_curve[1:] + mean_curve[:-1]) / 2))


def compared_thresholds(thresholds, protocol: Protocol | str) -> np.ndarray:
    """The values distances are compared with for nominal ``thresholds`` (1-D, fractions).

    Nominal = the decimal literals reported in the output. A protocol with ``matlab_range`` compares
    each nominal threshold that is a point of ``0:0.01:0.5`` with MATLAB's value of that point
    (:data:`MATLAB_CURVE_THRESHOLDS`); any other threshold, and every threshold of the other
    protocols, as given.
    """
    proto = get_protocol(protocol) if isinstance(protocol, str) else protocol
    nominal = np.asarray(thresholds, dtype=np.float64).ravel()
    if not proto.matlab_range:
        return nominal
    out = nominal.copy()
    for i, t in enumerate(nominal):
        hit = np.flatnonzero(CURVE_THRESHOLDS == t)
        if hit.size:
            out[i] = MATLAB_CURVE_THRESHOLDS[hit[0]]
    return out


def encode_correct(correct: np.ndarray, scored: np.ndarray) -> list[str]:
    """Per-person correctness as one string per person: '1' correct, '0' wrong, '-' not scored.

    correct, scored: (N, J) bool. Compact enough for metrics.json (2958 × 16 characters) and
    everything a paired bootstrap needs (:func:`decode_correct` inverts it).
    """
    codes = np.where(scored, np.where(correct, ord("1"), ord("0")), ord("-")).astype(np.uint8)
    return [row.tobytes().decode("ascii") for row in codes]


def decode_correct(rows: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of :func:`encode_correct`: (correct, scored), each (N, J) bool."""
    if not rows:
        return np.zeros((0, 0), dtype=bool), np.zeros((0, 0), dtype=bool)
    width = len(rows[0])
    if any(len(r) != width for r in rows):
        raise ValueError("per-person correctness strings have different lengths")
    arr = np.frombuffer("".join(rows).encode("ascii"), dtype=np.uint8).reshape(len(rows), width)
    return arr == ord("1"), arr != ord("-")


def pck(preds, gt, missing, normalizer, protocol="official", thresholds=None, visible=None) -> dict:
    """PCK scores of one prediction set under one protocol.

    preds, gt: (N, J, 2) px, J = 16 (MPII) or 11 (FLIC) as the protocol says; missing: (N, J)
    bool; normalizer: (N,) px (MPII head size, FLIC torso diagonal); protocol: a name in
    :data:`PROTOCOLS` or a :class:`Protocol`; thresholds: curve thresholds (default: the
    protocol's, 0:0.01:0.5 for MPII, 0:0.01:0.2 for FLIC); visible: optional (N, J) bool, True =
    annotated visible (annotated joints that are not visible count as occluded).

    Returns a dict (values in %, full precision, NaN where no joint is counted):

    - ``protocol``, ``n_people``, ``thresholds`` ({key: threshold actually used});
    - one table per key threshold (``pckh@0.5``, ``pckh@0.1`` for MPII; ``pck@0.2`` for FLIC):
      {group…, Mean};
    - ``auc`` (area under the Mean curve, x scaled to [0, 1]);
    - ``per_joint``: scored joint → % at the headline threshold;
    - MPII only: ``ablation@0.5`` (pooled over the 8 ablation joints of :data:`hgbench.kinds.MPII`, paper §4.2);
    - ``curve`` ({"thresholds", group…, Mean} lists) and ``curve_per_joint`` (joint → list);
    - with ``visible``: ``visibility`` = {"visible", "occluded"} pooled at the headline
      threshold and ``visibility_groups`` = {group: {"all", "visible", "occluded"}};
    - ``per_person``: {"metric", "joints", "correct"}: per-person correctness strings at the
      headline threshold (:func:`encode_correct`), for bootstraps and paired comparisons.
    """
    proto = get_protocol(protocol) if isinstance(protocol, str) else protocol
    preds, gt, missing, normalizer, visible = _validate(preds, gt, missing, normalizer, visible, proto)
    names = proto.joint_names
    with np.errstate(invalid="ignore", divide="ignore"):
        dist = np.sqrt(((preds - gt) ** 2).sum(axis=-1)) / normalizer[:, None]
    dist[np.isnan(preds).any(axis=-1)] = np.inf  # NaN prediction: wrong at every threshold
    scored = scored_mask(gt, missing, proto)
    curve_thr = np.asarray(proto.curve if thresholds is None else thresholds, dtype=np.float64).ravel()
    key_thr = np.array([t for _, t in proto.key_thresholds])

    # Every threshold in one vectorised pass: (T, N, J) booleans, T ≈ 53. The thresholds compared
    # may be MATLAB's values of the nominal ones (official); the output reports the nominal ones.
    correct = correct_at(dist, compared_thresholds(np.concatenate([key_thr, curve_thr]), proto), proto.inclusive)
    hits = (correct & scored).sum(axis=1)  # (T, J)
    counts = scored.sum(axis=0)  # (J,)
    tables = table_from_counts(hits, counts, proto)
    with np.errstate(invalid="ignore", divide="ignore"):
        rates = 100.0 * hits / counts  # (T, J), NaN for joints never scored

    def row(t: int) -> dict[str, float]:
        return {g: float(v[t]) for g, v in tables.items()}

    nk = len(key_thr)
    head_key = proto.headline[0]
    out = {
        "protocol": proto.name,
        "n_people": int(preds.shape[0]),
        "thresholds": {k: float(t) for k, t in proto.key_thresholds},
    }
    for i, (key, _) in enumerate(proto.key_thresholds):
        out[key] = row(i)
    out["auc"] = _auc(curve_thr, tables["Mean"][nk:])
    out["per_joint"] = {j: float(rates[0, k]) for k, j in enumerate(names) if j not in proto.unscored}
    if proto.kind.has_ablation:
        out["ablation@0.5"] = float(ablation_from_counts(hits[0], counts))
    out["curve"] = {
        "thresholds": [float(t) for t in curve_thr],
        **{g: [float(x) for x in v[nk:]] for g, v in tables.items()},
    }
    out["curve_per_joint"] = {
        j: [float(x) for x in rates[nk:, k]] for k, j in enumerate(names) if j not in proto.unscored
    }
    ok = correct[0]
    if visible is not None:

        def pooled(mask):
            n = mask.sum()
            return float(100.0 * (ok & mask).sum() / n) if n else float("nan")

        out["visibility"] = {"visible": pooled(scored & visible), "occluded": pooled(scored & ~visible)}
        out["visibility_groups"] = {}
        for group, joints in proto.group_joints().items():
            cols = np.zeros(len(names), dtype=bool)
            cols[[names.index(j) for j in joints]] = True
            out["visibility_groups"][group] = {
                "all": pooled(scored & cols),
                "visible": pooled(scored & visible & cols),
                "occluded": pooled(scored & ~visible & cols),
            }
    out["per_person"] = {"metric": head_key, "joints": list(names), "correct": encode_correct(ok, scored)}
    return out


def pckh(preds, gt, missing, normalizer, thresholds=None, protocol="official", visible=None) -> dict:
    """MPII PCKh: :func:`pck` with the official protocol by default (same arguments)."""
    return pck(preds, gt, missing, normalizer, protocol=protocol, thresholds=thresholds, visible=visible)


def statistic_for(protocol: Protocol | str, quantity: str = "Mean"):
    """A callable (hits (..., J), counts (..., J)) → (...,) % for the bootstrap.

    quantity: "Mean" or a group name of the protocol (the published table value), or "ablation"
    (paper §4.2, MPII only).
    """
    proto = get_protocol(protocol) if isinstance(protocol, str) else protocol
    if quantity == "ablation":
        if not proto.kind.has_ablation:
            raise ValueError(f"the ablation metric is defined for MPII, not {proto.dataset}")
        return ablation_from_counts
    if quantity != "Mean" and quantity not in proto.group_joints():
        raise ValueError(f"unknown quantity {quantity!r} for protocol {proto.name!r}")
    return lambda hits, counts: table_from_counts(hits, counts, proto)[quantity]
