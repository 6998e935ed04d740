"""Load ground-truth and prediction files and score them (see docs/architecture.md).

Everything here returns data; the CLI prints or writes it. All coordinates stay in the native
frame (MPII: MATLAB 1-based pixels), so predictions are compared with ground truth as stored.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import scipy.io

from hgbench.iofiles import atomic_path
from hgbench.joints import MPII_JOINTS
from hgbench.kinds import MPII, kind_for_joint_count, kind_for_joints, kind_of
from hgbench.metrics import Protocol, decode_correct, get_protocol, pck
from hgbench.runs import PREDICTIONS_FORMAT, prediction_attrs, run_of, write_metrics  # noqa: F401 (write_metrics: API)
from hgbench.stats import bootstrap_ci

N_JOINTS = len(MPII_JOINTS)
N_BOOT = 1000
"""Bootstrap replicates for the 95 % CIs written into metrics.json (seeded, so reproducible)."""
SC_BIAS = 0.6
"""PCKh head size = SC_BIAS × head-box diagonal (util_get_head_size.m)."""


@dataclass(frozen=True)
class GroundTruth:
    """Ground truth of one split, native frame.

    joints: (N, J, 2) float64 px, NaN where missing; missing: (N, J) bool; normalizer: (N,)
    float64 px (MPII: PCKh head size; FLIC: torso diagonal); visible: (N, J) bool or None when
    the file has no flag; layout: which file layout was read; frame: description of the
    coordinate frame; dataset: the name of its :class:`hgbench.kinds.DatasetKind`, "mpii" (J = 16)
    or "flic" (J = 11), which decides the PCK flavour.
    """

    joints: np.ndarray
    missing: np.ndarray
    normalizer: np.ndarray
    visible: np.ndarray | None
    layout: str
    frame: str
    dataset: str = MPII.name
    image_index: np.ndarray | None = None  # (N,) 0-based RELEASE.annolist index, when the file has it
    person_index: np.ndarray | None = None  # (N,) 0-based annorect index, when the file has it
    frame_offset: int = 1  # native = 0-based + frame_offset (every layout read here is 1-based by default)


H5_FIX = "delete it and rerun the stage that wrote it (`hgbench prepare` for a split file, `hgbench predict` for predictions)"


def _h5_read(path: Path, fn, fix: str = H5_FIX):
    """``fn(h5py.File)`` on ``path``; a truncated or corrupt file raises ValueError naming it and ``fix``.

    h5py reports damage as OSError (a cut file, a failed Fletcher-32 checksum), KeyError or
    RuntimeError (damaged metadata); none of them says which file or what to do.
    """
    try:
        with h5py.File(path, "r") as f:
            return fn(f)
    except (OSError, KeyError, RuntimeError) as exc:
        raise ValueError(
            f"{path}: cannot read the HDF5 file, it is truncated or corrupt ({type(exc).__name__}: {exc}); {fix}"
        ) from None


def _read_arrays(path: Path) -> tuple[dict[str, np.ndarray], dict, bool]:
    """All top-level arrays of an HDF5 or MATLAB v5 file, its HDF5 attributes, and is-HDF5.

    MATLAB v7.3 files are HDF5; their arrays come back with the axes reversed. A processed split's
    ``images`` (the crops, gigabytes for MPII) are never scored and are not read.
    """
    path = Path(path)
    if path.is_dir():
        raise FileNotFoundError(f"{path} is a folder; give the .h5 or .mat file itself")
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: no such file; check the path (predictions are written by `hgbench predict`, "
            f"splits by `hgbench prepare`)"
        )
    if h5py.is_hdf5(path):

        def read(f):
            arrays = {k: f[k][()] for k in f if k != "images" and isinstance(f[k], h5py.Dataset)}
            return arrays, dict(f.attrs)

        arrays, attrs = _h5_read(path, read)
        return arrays, attrs, True
    try:
        mat = scipy.io.loadmat(path)
    except Exception as err:  # scipy raises several types for non-MAT input
        # A JSON or image file given by mistake lands here too: deleting it would be the wrong fix.
        raise ValueError(
            f"{path}: neither HDF5 nor a MATLAB v5 .mat file ({err}); give a .h5 or .mat file here, and "
            f"if it is one, it is truncated or corrupt: {H5_FIX}"
        ) from None
    return {k: v for k, v in mat.items() if not k.startswith("__")}, {}, False


def _dataset_of(joints: np.ndarray, names) -> str:
    """The kind's name of a ground-truth file: from its ``joint_names`` attribute when it has one (a
    synthetic split has either layout; its joints decide), else from the joint axis of ``joints``
    (pose-hg-train's files name no joints); MPII when no kind fits (the shape check then says so)."""
    if names is not None:
        return kind_for_joints(np.ravel(names)).name
    kind = kind_for_joint_count(joints.shape[1]) if joints.ndim == 3 else None
    return (kind or MPII).name


SHIPPED = "hgbench:mpii_valid_gt"
"""How metrics.json names the shipped MPII validation ground truth (``--ground-truth`` omitted)."""
TEST_SPLIT_FIX = (
    "MPI never released the test labels: write the submission with `hgbench export-mpii "
    "--split test` and send it to the MPII evaluation server (README, 'Submitting to the MPII "
    "test server')"
)


def _annotation_gt(
    arrays: dict, layout: str, frame: str = "native frame (MATLAB 1-based pixels, as the MPII annotation list)"
) -> GroundTruth:
    """A :class:`GroundTruth` from :data:`hgbench.data.mpii_gt.FIELDS` arrays."""
    from hgbench.data.mpii_gt import head_size

    joints = np.array(arrays["joints"], dtype=np.float64)
    missing = np.asarray(arrays["missing"], dtype=bool)
    joints[missing] = np.nan
    return GroundTruth(
        joints,
        missing,
        head_size(arrays["headbox"]),
        np.asarray(arrays["visible"], dtype=bool),
        layout,
        frame,
        MPII.name,
        np.asarray(arrays["image_index"], dtype=np.int64),
        np.asarray(arrays["person_index"], dtype=np.int64),
    )


def shipped_ground_truth() -> GroundTruth:
    """The standard MPII validation split (2958 people) as the official annotation list has it
    (:data:`hgbench.data.mpii_gt.VALID_GT`); layout ``annolist``."""
    from hgbench.data.mpii_gt import load_valid_gt

    return _annotation_gt(load_valid_gt(), "annolist")


def _mat_variables(path: Path) -> set[str]:
    """Names of the variables of a MATLAB v5 file (no data read); empty when it is not one."""
    try:
        return {name for name, _, _ in scipy.io.whosmat(path)}
    except Exception:  # not a MAT file: _read_arrays reports it
        return set()


def load_ground_truth(path=None) -> GroundTruth:
    """Read ground truth from one of the layouts below, chosen by the keys present.

    - ``None``: the shipped standard MPII validation split (:func:`shipped_ground_truth`);
    - the official annotation file (a ``.mat`` with ``RELEASE``, e.g. ``mpii_human_pose_v1_u12_1.mat``):
      the standard validation split's people (``mpii_valid_split.csv``) in its order; or a bare
      ``annolist`` with ``RELEASE_img_index``/``RELEASE_person_index`` (Tompson's ``detections.mat``):
      its entries in order. Both: joints and head boxes exactly as annotated, 1-based px;
    - hgbench's annotation ground-truth HDF5 (:mod:`hgbench.data.mpii_gt`, the shipped file's layout);
    - processed split HDF5 (``joints_image``, ``missing``, ``normalizer``, ``visible``); the
      ``joint_names`` attribute says MPII (16) or FLIC (11); a ``test`` split (no labels) is refused;
    - official ``gt_valid.mat`` (``pos_gt_src`` (16,2,N), ``jnt_missing`` (16,N),
      ``headboxes_src`` (2,2,N)); normalizer = 0.6 × ‖corner2 − corner1‖; no visibility;
    - hourglass annotation HDF5 (``part`` (N,J,2), ``visible``, ``normalize``); (0, 0) = missing;
      J = 16 (MPII, ``normalize`` = head size) or 11 (pose-hg-train FLIC files, ``normalize`` =
      torso diagonal).
    """
    if path is None:
        return shipped_ground_truth()
    path = Path(path)
    if path.is_file() and not h5py.is_hdf5(path) and _mat_variables(path) & {"RELEASE", "annolist"}:
        from hgbench.data.mpii import MPIIFormatError
        from hgbench.data.mpii_gt import arrays_from_people, read_annotation_people

        try:
            people, layout = read_annotation_people(path)
        except MPIIFormatError as exc:
            raise ValueError(f"{exc} (the standard validation split is {N_VALID_HINT})") from None
        if not people:
            raise ValueError(f"{path}: no annotated people in the annotation list")
        return _annotation_gt(arrays_from_people(people), layout)
    from hgbench.data.mpii_gt import is_valid_gt_file, load_valid_gt

    if is_valid_gt_file(path):
        return _annotation_gt(load_valid_gt(path), "annolist")
    a, attrs, is_h5 = _read_arrays(path)
    if {"joints_image", "missing", "normalizer"} <= a.keys():
        split = attrs.get("split", "")
        split = split.decode() if isinstance(split, bytes) else str(split)
        if split == "test":
            raise ValueError(
                f"{path}: this is the MPII test split (attribute split = test): it has no joint "
                f"labels and cannot be scored here; {TEST_SPLIT_FIX}"
            )
        joints = np.asarray(a["joints_image"], dtype=np.float64)
        missing = np.asarray(a["missing"], dtype=bool)
        normalizer = np.asarray(a["normalizer"], dtype=np.float64)
        visible = np.asarray(a["visible"], dtype=bool) if "visible" in a else None
        offset = int(attrs.get("frame_offset", 1))
        layout, frame = "processed", f"native frame (frame_offset = {offset})"
        dataset = _dataset_of(joints, attrs.get("joint_names"))
    elif {"pos_gt_src", "jnt_missing", "headboxes_src"} <= a.keys():
        # h5py sees MATLAB v7.3 arrays with reversed axes; .T restores the MATLAB shapes.
        pos, miss, box = (a[k].T if is_h5 else a[k] for k in ("pos_gt_src", "jnt_missing", "headboxes_src"))
        joints = np.asarray(pos, dtype=np.float64).transpose(2, 0, 1)
        missing = np.asarray(miss).T.astype(bool)
        box = np.asarray(box, dtype=np.float64)
        normalizer = SC_BIAS * np.linalg.norm(box[1] - box[0], axis=0)
        visible = None
        layout, frame, dataset = "gt_valid", "native frame (MATLAB 1-based pixels)", MPII.name
    elif {"part", "normalize"} <= a.keys():
        joints = np.asarray(a["part"], dtype=np.float64)
        missing = (joints == 0).all(axis=-1)
        normalizer = np.asarray(a["normalize"], dtype=np.float64)
        visible = np.asarray(a["visible"]) > 0 if "visible" in a else None
        layout, frame = "hourglass", "native frame (MATLAB 1-based pixels, integer-truncated)"
        dataset = _dataset_of(joints, None)
    else:
        raise ValueError(
            f"{path}: unknown ground-truth layout; found keys {sorted(a)}, expected "
            "{joints_image, missing, normalizer} (processed), "
            "{pos_gt_src, jnt_missing, headboxes_src} (gt_valid.mat), "
            "{part, normalize} (hourglass annot .h5) or RELEASE/annolist (MPII annotation .mat)"
        )

    n = joints.shape[0] if joints.ndim == 3 else -1
    n_joints = len(kind_of(dataset).joints)
    expected = {"joints": (n, n_joints, 2), "missing": (n, n_joints), "normalizer": (n,)}
    for name, arr in (("joints", joints), ("missing", missing), ("normalizer", normalizer)):
        shape = expected[name]
        if arr.shape != shape:
            raise ValueError(f"{path} ({layout} layout): {name} has shape {arr.shape}; expected {shape}")
    if visible is not None and visible.shape != missing.shape:
        raise ValueError(f"{path} ({layout} layout): visible has shape {visible.shape}; expected {missing.shape}")
    if missing.size and missing.all():
        raise ValueError(
            f"{path} ({layout} layout): no joint is annotated, there is nothing to score "
            f"(a test split? {TEST_SPLIT_FIX})"
        )
    joints = joints.copy()
    joints[missing] = np.nan
    return GroundTruth(
        joints,
        missing,
        normalizer,
        visible,
        layout,
        frame,
        dataset,
        frame_offset=offset if layout == "processed" else 1,
    )


N_VALID_HINT = "2958 people in the order of src/hgbench/data/mpii_valid_split.csv"
DIFF_PX = 0.01
"""A gt_valid.mat coordinate further than this from the annotation list is a real difference (the
file's float noise is below 1e-4 px)."""


def official_ground_truth(gt: GroundTruth, path) -> tuple[GroundTruth, dict | None]:
    """The ground truth the ``official`` protocol scores for a given ground-truth file.

    The MPII toolkit reads the annotation list. A Tompson ``gt_valid.mat`` / ``detections_our_format.mat``
    (layout ``gt_valid``) of the standard validation split is therefore replaced by the shipped
    annotation-list ground truth, and the joints where the file differs from it by more than
    :data:`DIFF_PX` are named: ``(ground truth used, {"file", "used", "joints": [{row, image_index,
    person_index, joint, given, official}], "n"})``. Every other layout, and a gt_valid file that is
    not the standard split (other rows, other missing joints, other coordinates), is scored as given
    (``None``).
    """
    if gt.layout != "gt_valid":
        return gt, None
    ref = shipped_ground_truth()
    if gt.joints.shape != ref.joints.shape or not (gt.missing == ref.missing).all():
        return gt, None
    ok = ~ref.missing
    far = np.zeros_like(ok)
    far[ok] = (np.abs(gt.joints - ref.joints)[ok] > DIFF_PX).any(axis=-1)
    # More than a handful of differences, or other head boxes: another file, not a noisy copy.
    if far.sum() > 100 or not np.allclose(gt.normalizer, ref.normalizer, rtol=1e-5, atol=1e-3):
        return gt, None
    joints = []
    for r, j in np.argwhere(far):
        joints.append(
            {
                "row": int(r),
                "image_index": int(ref.image_index[r]),
                "person_index": int(ref.person_index[r]),
                "joint": MPII_JOINTS[j],
                "given": [float(v) for v in gt.joints[r, j]],
                "official": [float(v) for v in ref.joints[r, j]],
            }
        )
    note = {
        "file": str(path),
        "used": f"{SHIPPED} (the MPII annotation list, as the toolkit reads it)",
        "n": len(joints),
        "joints": joints,
        "why": "the official protocol scores against the annotation list; this file's coordinates differ "
        f"from it by more than {DIFF_PX} px at these joints (and by float noise elsewhere)",
    }
    return ref, note


def _orient_predictions(arr: np.ndarray, n_rows: int | None, n_joints: int) -> np.ndarray | None:
    """(N, J, 2) view of ``arr`` stored as (N,J,2), (2,J,N) or (J,2,N); None if none fits."""
    if arr.ndim != 3:
        return None
    candidates = (arr, arr.transpose(2, 1, 0), arr.transpose(2, 0, 1))
    for cand in candidates:  # (N,J,2) first: it wins when N is 2 or J
        if cand.shape[1:] == (n_joints, 2) and (n_rows is None or cand.shape[0] == n_rows):
            return cand
    return None


def load_predictions(path, n_rows: int | None = None, n_joints: int = N_JOINTS, allow_nan: bool = False) -> np.ndarray:
    """``preds`` of an HDF5 or .mat file as (N, J, 2) float64, native-frame px.

    Accepts (N,J,2), (2,J,N) and (J,2,N) storage (J = 16 for MPII, 11 for FLIC). ``n_rows`` (the
    ground-truth row count) is checked when given. NaN coordinates are an error unless
    ``allow_nan`` (then they score as wrong, as in the MATLAB toolkit): a NaN in a predictions
    file almost always means a broken run, and must not turn silently into a lower score.
    Raises ValueError naming the file, what was found and what is expected.
    """
    path = Path(path)
    a, _, _ = _read_arrays(path)
    if "preds" not in a:
        hint = (
            "; it is an MPII submission file (variable pred, written by export-mpii): give the predictions "
            "file it was made from"
            if "pred" in a
            else ""
        )
        if not hint:
            hint = "; give a predictions file (written by `hgbench predict`)"
        raise ValueError(f"{path}: no 'preds' array; found keys {sorted(a)}{hint}")
    raw = np.asarray(a["preds"])
    if not np.issubdtype(raw.dtype, np.number):
        raise ValueError(f"{path}: 'preds' has dtype {raw.dtype}; expected numbers")
    rows = f"N = {n_rows}" if n_rows is not None else "any N"
    preds = _orient_predictions(raw, n_rows, n_joints)
    if preds is None:
        any_rows = _orient_predictions(raw, None, n_joints)
        if any_rows is not None:
            found = any_rows.shape[0]
            raise ValueError(
                f"{path}: 'preds' has {found} rows (stored shape {raw.shape}) but the "
                f"ground truth has {n_rows}; predictions must be for the same split"
            )
        raise ValueError(
            f"{path}: 'preds' has shape {raw.shape}; expected (N, {n_joints}, 2), "
            f"(2, {n_joints}, N) or ({n_joints}, 2, N) with {rows}: give the predictions of a model "
            f"with this layout's {n_joints} joints"
        )
    preds = np.ascontiguousarray(preds, dtype=np.float64)
    bad = ~np.isfinite(preds).all(axis=-1)
    if bad.any() and not allow_nan:
        r, j = np.argwhere(bad)[0]
        raise ValueError(
            f"{path}: 'preds' has {int(bad.sum())} non-finite joints (first: row {r}, "
            f"joint {j}); fix the run, or pass --allow-nan to score them as wrong"
        )
    return preds


def load_prediction_stacks(path, n_joints: int = N_JOINTS) -> np.ndarray | None:
    """``preds_stack`` (N, S, J, 2) float64 of a predictions HDF5, or None if absent."""
    path = Path(path)
    if not h5py.is_hdf5(path):
        return None
    stack = _h5_read(path, lambda f: f["preds_stack"][()] if "preds_stack" in f else None)
    if stack is None:
        return None
    stack = np.asarray(stack, dtype=np.float64)
    if stack.ndim != 4 or stack.shape[2:] != (n_joints, 2):
        raise ValueError(f"{path}: 'preds_stack' has shape {stack.shape}; expected (N, S, {n_joints}, 2)")
    return stack


def _run_attrs(path: Path, gt: GroundTruth) -> dict | None:
    """``{dataset, variant, seed}`` of an hgbench predictions file (None for another codebase's
    file); refuses a file of another format or whose coordinate frame is not the ground truth's."""
    attrs = prediction_attrs(path)
    if "format" in attrs and attrs["format"] != PREDICTIONS_FORMAT:
        raise ValueError(
            f"{path}: format {attrs['format']!r}, expected {PREDICTIONS_FORMAT!r}; rerun "
            f"`hgbench predict` to rewrite it"
        )
    offset = attrs.get("frame_offset")
    if offset is None and "0-based" in str(attrs.get("frame", "")):
        offset = 0
    if offset is not None and int(offset) != gt.frame_offset:
        raise ValueError(
            f"{path}: predictions are in a {int(offset)}-based pixel frame (attribute frame_offset), "
            f"the ground truth in a {gt.frame_offset}-based one ({gt.frame}); convert them, or "
            f"rerun `hgbench predict` on this split"
        )
    return run_of(attrs)


def resolve_protocol(name: str, gt: GroundTruth) -> Protocol:
    """The protocol to score ``gt`` with: the PCK flavour follows the dataset's kind.

    A protocol of the ground truth's kind is used as asked. ``official`` (the pipeline's default
    for every dataset) means the kind's own protocol (``DatasetKind.protocol``: ``flic`` for FLIC
    ground truth, PCK torso-normalised). Another kind's protocol (an MPII PCKh protocol on FLIC
    ground truth, ``flic`` on MPII ground truth) is an error.
    """
    proto = get_protocol(name)
    kind = kind_of(gt.dataset)
    if proto.kind is kind:
        return proto
    if proto.name == "official":
        return get_protocol(kind.protocol)
    if kind.protocol != "official":  # the kind has a protocol of its own, which 'official' stands for
        raise ValueError(
            f"protocol {name!r} is an {proto.kind.label} {proto.kind.metric} protocol; {kind.label} "
            f"ground truth ({len(kind.joints)} joints) is scored with {kind.protocol!r} (or "
            f"'official', which means {kind.protocol!r} here)"
        )
    raise ValueError(
        f"protocol {name!r} needs {proto.kind.label} ground truth; this "
        f"ground truth has {gt.joints.shape[1]} {kind.label}-layout joints"
    )


def confidence_intervals(per_person: dict, protocol: Protocol, n_boot: int = N_BOOT, seed: int = 0) -> dict:
    """95 % bootstrap CIs over people of Mean (and, for MPII, the ablation metric).

    per_person: the ``per_person`` entry of :func:`hgbench.metrics.pck`'s result. Returns
    {"Mean": {value, low, high, level, n_boot, seed}, "ablation@0.5": {...}} in %.
    """
    from hgbench.metrics import statistic_for

    correct, scored = decode_correct(per_person["correct"])
    out = {"Mean": bootstrap_ci(correct, scored, statistic_for(protocol, "Mean"), n_boot, seed)}
    if protocol.kind.has_ablation:
        out["ablation@0.5"] = bootstrap_ci(correct, scored, statistic_for(protocol, "ablation"), n_boot, seed)
    return out


def evaluate_files(
    ground_truth, predictions, protocol: str = "official", n_boot: int = N_BOOT, allow_nan: bool = False
) -> dict:
    """Score a predictions file against a ground-truth file (``None``: the shipped MPII validation
    ground truth, :func:`shipped_ground_truth`; the ``official`` protocol only).

    Returns :func:`hgbench.metrics.pck`'s dict plus ``ground_truth`` and ``predictions`` (the
    paths as given; :data:`SHIPPED` for the shipped ground truth), ``ground_truth_layout``,
    ``dataset``, ``run`` ({dataset, variant, seed}, when the predictions HDF5 has those
    attributes), ``ci95`` (bootstrap over people, see :func:`confidence_intervals`; omitted when
    ``n_boot`` is 0), ``per_stack`` (list of {stack (1-based), mean@<thr>, ablation@0.5 (MPII)} in
    %, when it has ``preds_stack``) and, when ``official`` replaced a ``gt_valid.mat`` by the
    annotation list, ``ground_truth_differences`` (:func:`official_ground_truth`).
    """
    pred_path = Path(predictions)
    if ground_truth is None and get_protocol(protocol).name != "official":
        raise ValueError(
            f"protocol {protocol!r} scores against the ground-truth file its codebase reads "
            f"({get_protocol(protocol).ground_truth}): pass it with --ground-truth; without "
            f"--ground-truth only 'official' is scored (against the MPII annotation list)"
        )
    gt = load_ground_truth(ground_truth)
    proto = resolve_protocol(protocol, gt)
    differences = None
    if proto.name == "official":
        gt, differences = official_ground_truth(gt, ground_truth)
    n, n_joints = gt.joints.shape[:2]
    try:
        preds = load_predictions(pred_path, n, n_joints, allow_nan=allow_nan)
    except ValueError as exc:
        if ground_truth is None and "rows" in str(exc):
            raise ValueError(
                f"{exc}; without --ground-truth they are scored against the standard MPII "
                f"validation split ({N_VALID_HINT}): pass --ground-truth for another split"
            ) from None
        raise
    result = pck(preds, gt.joints, gt.missing, gt.normalizer, protocol=proto, visible=gt.visible)
    out = {"protocol": result.pop("protocol")}
    run = _run_attrs(pred_path, gt)
    if run is not None:
        out["run"] = run
    out.update(
        ground_truth=SHIPPED if ground_truth is None else str(ground_truth),
        predictions=str(predictions),
        ground_truth_layout=gt.layout if differences is None else "gt_valid",
        dataset=gt.dataset,
    )
    if differences is not None:
        out["ground_truth_differences"] = differences
    out.update(result)
    if n_boot:
        out["ci95"] = confidence_intervals(result["per_person"], proto, n_boot)

    stacks = load_prediction_stacks(pred_path, n_joints)
    if stacks is not None:
        if stacks.shape[0] != n:
            raise ValueError(f"{pred_path}: 'preds_stack' has {stacks.shape[0]} rows; the ground truth has {n}")
        if not allow_nan and not np.isfinite(stacks).all():
            raise ValueError(
                f"{pred_path}: 'preds_stack' has non-finite coordinates; fix the run, or pass --allow-nan "
                f"to score them as wrong"
            )
        key, thr = proto.headline
        out["per_stack"] = []
        for k in range(stacks.shape[1]):
            s = pck(stacks[:, k], gt.joints, gt.missing, gt.normalizer, protocol=proto, thresholds=[thr])
            row = {"stack": k + 1, f"mean@{thr:g}": s[key]["Mean"]}
            if "ablation@0.5" in s:
                row["ablation@0.5"] = s["ablation@0.5"]
            out["per_stack"].append(row)
    return out


def headline_metrics(metrics: dict) -> dict:
    """The numbers of one run that DVC shows and diffs (``dvc exp show``, ``dvc metrics diff``).

    From an :func:`evaluate_files` result: the headline table row in % under its metric's name
    (``{"pckh@0.5": {Head, …, Mean}}`` for MPII, ``{"pck@0.2": {…}}`` for FLIC), ``AUC`` (%), the §4.2
    ablation metric (MPII), and the bootstrap 95 % CI of Mean (``Mean_low``, ``Mean_high``).
    About a dozen numeric leaves, so that a table of experiments stays readable; everything else
    stays in ``metrics.json``.
    """
    from hgbench.metrics import get_protocol

    key, _ = get_protocol(metrics["protocol"]).headline
    # Numbers only, and the metric in the key (DVC columns read "<file>:pckh@0.5.Mean"); the
    # protocol's name is in metrics.json.
    out = {key: {name: metrics[key][name] for name in metrics[key]}, "AUC": metrics["auc"]}
    if "ablation@0.5" in metrics:
        out["ablation"] = metrics["ablation@0.5"]
    ci = metrics.get("ci95", {}).get("Mean")
    if ci:
        out["Mean_low"], out["Mean_high"] = ci["low"], ci["high"]
    return out


def write_curve_csv(metrics: dict, out) -> Path:
    """Write the run's PCK(h) curve as CSV (``threshold`` then the groups and ``Mean``, in %),
    one row per threshold of the protocol's curve: the file DVC plots (``dvc plots show``)."""
    import csv

    curve = metrics["curve"]
    columns = [k for k in curve if k != "thresholds"]
    out = Path(out)
    with atomic_path(out) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["threshold", *columns])
        for i, t in enumerate(curve["thresholds"]):
            writer.writerow([f"{t:g}", *(f"{curve[c][i]:.4f}" for c in columns)])
    return out
