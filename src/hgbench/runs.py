"""One run's place on disk and the files its stages hand each other: ``predictions.h5`` and
``metrics.json``, each written and read here only.

A *run* is one (dataset, variant, seed) of a profile. Its folders (docs/architecture.md):
``models/<profile>/<dataset>/<variant>/s<seed>/`` (train) and
``results/<profile>/<dataset>/<variant>/s<seed>/`` (predict, evaluate): :func:`run_dir` under
either root. Both files carry a format string; a file of another format is refused with the
command that rewrites it, never read through a compatibility branch.

``predictions.h5`` (:func:`write_predictions`):

- ``preds`` (N, J, 2) float64: the final output's joints, native frame (1-based pixels for the
  MPII layout: ``frame_offset`` = 1), unrounded; NaN nowhere (the network always answers);
- ``preds_stack`` (N, O, J, 2): every output (each stack, HG-Int's inner heads), same frame;
- attributes ``format``, ``frame`` (words), ``frame_offset``, ``flip_test``, ``checkpoint`` and
  the run's ``dataset``, ``variant``, ``seed``.

``metrics.json`` (:func:`write_metrics`, from :func:`hgbench.evaluate.evaluate_files`) and its
checked reading (:func:`read_metrics`): the headline tables are re-derived from the per-person
records in the same file, so an edited or damaged headline number is refused, not reported.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from .data.schema import set_str_attr
from .iofiles import atomic_path
from .metrics import ablation_from_counts, decode_correct, get_protocol, table_from_counts

PREDICTIONS_FORMAT = "hgbench-predictions/1"
METRICS_FORMAT = "hgbench-metrics/1"
GROUPS = ("Head", "Shoulder", "Elbow", "Wrist", "Hip", "Knee", "Ankle", "Mean")
"""Report groups of both layouts (FLIC's tables leave out the joints it lacks: NaN)."""
TOLERANCE = 1e-6
"""% by which a stored headline number may differ from the one re-derived from per-person records
(JSON round-trips floats exactly; this only absorbs summation order)."""


class RunFileError(ValueError):
    """A run file is missing, damaged, of another format, or belongs to another run."""


def run_dir(root: Path | str, dataset: str, variant: str, seed: int) -> Path:
    """``<root>/<dataset>/<variant>/s<seed>``: one run's folder under a profile's models or results root."""
    return Path(root) / dataset / variant / f"s{seed}"


# -- log.csv ------------------------------------------------------------------------------------

LOG_RUN_COLUMN = "run"
"""Last column of ``log.csv``: ``<dataset>/<variant>/s<seed>`` of the run that wrote it, on every row."""


def run_label(dataset: str, variant: str, seed: int) -> str:
    """``<dataset>/<variant>/s<seed>``, the name of a run in messages and in ``log.csv``."""
    return f"{dataset}/{variant}/s{seed}"


def write_log(rows: list[dict], path: Path, run: tuple[str, str, int]) -> None:
    """``log.csv`` atomically: one row per epoch (floats with 6 significant digits), the run's
    :func:`run_label` in the last column (:data:`LOG_RUN_COLUMN`)."""
    label = run_label(*run)
    # The union of the rows' columns: epochs from before a resume may lack a newer column.
    columns = [*dict.fromkeys(k for r in rows for k in r), LOG_RUN_COLUMN]
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns, restval="")
        writer.writeheader()
        for r in rows:
            cells = {k: (f"{v:.6g}" if isinstance(v, float) and math.isfinite(v) else v) for k, v in r.items()}
            writer.writerow({**cells, LOG_RUN_COLUMN: label})


def check_log_run(frame, path: Path, run: tuple[str, str, int]) -> None:
    """Refuse a ``log.csv`` (read as a DataFrame) written by another run: a log copied from another
    run's folder would be summarised as this run's training curve. Logs of hgbench before the
    :data:`LOG_RUN_COLUMN` column are accepted unchecked."""
    if LOG_RUN_COLUMN not in frame:
        return
    expected = run_label(*run)
    found = sorted({str(v) for v in frame[LOG_RUN_COLUMN]} - {expected})
    if found:
        raise RunFileError(
            f"{path} is the training log of run {found[0]}, expected {expected}; put back this run's log.csv "
            f"(it is written with its model.pt) or rerun `hgbench train` for {expected}"
        )


# -- predictions.h5 -----------------------------------------------------------------------------


def write_predictions(
    path: Path, stack: np.ndarray, *, flip_test: bool, checkpoint: str, frame_offset: int, run: dict | None = None
) -> Path:
    """Write ``predictions.h5`` atomically from every output's joints ``stack`` (N, O, J, 2),
    native frame (``frame_offset`` = 1: 1-based MPII pixels; 0: 0-based). ``run``: the run's
    ``dataset``, ``variant``, ``seed`` (attributes; evaluate checks them against the profile)."""
    stack = np.asarray(stack, dtype=np.float64)
    if stack.ndim != 4 or stack.shape[-1] != 2:
        raise ValueError(f"predictions of shape {stack.shape}; expected (N, O, J, 2)")
    # Fletcher-32 checksums and the HDF5 1.10 format's metadata checksums: a damaged file is
    # reported by evaluate instead of being scored (docs/reliability.md).
    kw = {"fletcher32": True, "chunks": True} if stack.size else {}
    with atomic_path(path) as tmp, h5py.File(tmp, "w", libver="v110") as f:
        f.create_dataset("preds", data=stack[:, -1], **kw)
        f.create_dataset("preds_stack", data=stack, **kw)
        f.attrs["flip_test"] = flip_test
        f.attrs["frame_offset"] = int(frame_offset)
        set_str_attr(f, "format", PREDICTIONS_FORMAT)  # fixed-length strings: see schema.fixed_utf8
        set_str_attr(f, "checkpoint", str(checkpoint))
        set_str_attr(
            f,
            "frame",
            "native (MPII layout: 1-based MATLAB pixels)" if frame_offset == 1 else "native (0-based pixels)",
        )
        for key, value in (run or {}).items():
            if isinstance(value, str):
                set_str_attr(f, key, value)
            else:
                f.attrs[key] = value
    return Path(path)


def _plain(v):
    """numpy scalars / bytes → JSON-friendly values."""
    v = v.decode() if isinstance(v, bytes) else v
    return v.item() if isinstance(v, np.generic) else v


def prediction_attrs(path: Path) -> dict:
    """The attributes of an hgbench ``predictions.h5`` as plain values ({} for a file that is no
    HDF5, e.g. a ``.mat`` predictions file of another codebase)."""
    path = Path(path)
    if not path.is_file() or not h5py.is_hdf5(path):
        return {}
    try:
        with h5py.File(path, "r") as f:
            return {k: _plain(f.attrs[k]) for k in f.attrs}
    except OSError as exc:
        raise RunFileError(f"{path}: cannot be read ({exc}); rerun `hgbench predict` to rewrite it") from None


def run_of(attrs: dict) -> dict | None:
    """``{dataset, variant, seed}`` of a predictions file's attributes; None if not all there."""
    if not all(k in attrs for k in ("dataset", "variant", "seed")):
        return None
    return {k: attrs[k] for k in ("dataset", "variant", "seed")}


def read_final_predictions(path: Path, n_rows: int | None = None) -> np.ndarray:
    """``preds`` (N, J, 2) float64 of an hgbench ``predictions.h5``; ``n_rows`` checked when given.
    :class:`RunFileError` names the file and the fix."""
    path = Path(path)
    fix = "rerun `hgbench predict` to rewrite it"
    if not path.is_file():
        raise RunFileError(f"{path} not found; run `hgbench predict` first")
    try:
        with h5py.File(path, "r") as f:
            preds = np.asarray(f["preds"], np.float64)
    except (OSError, KeyError) as exc:
        raise RunFileError(f"{path}: no readable 'preds' ({type(exc).__name__}); {fix}") from None
    if preds.ndim != 3 or preds.shape[-1] != 2 or (n_rows is not None and preds.shape[0] != n_rows):
        raise RunFileError(f"{path}: 'preds' has shape {preds.shape}, expected ({n_rows or 'N'}, J, 2); {fix}")
    return preds


def count_predictions(path: Path) -> float:
    """People predicted in ``path`` (NaN when the file is missing or unreadable: a cost table cell)."""
    try:
        with h5py.File(path, "r") as f:
            return float(f["preds"].shape[0])
    except (OSError, KeyError):
        return math.nan


# -- metrics.json -------------------------------------------------------------------------------


def _json_safe(obj):
    """Replace NaN/inf floats by None so the file is strict JSON."""
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def _write_json(obj: dict, out: Path) -> Path:
    out = Path(out)
    with atomic_path(out) as tmp, open(tmp, "w") as f:
        json.dump(_json_safe(obj), f, indent=2, allow_nan=False)
        f.write("\n")
    return out


def write_metrics(metrics: dict, out: Path) -> Path:
    """Write ``metrics`` (an :func:`hgbench.evaluate.evaluate_files` result) as strict JSON to
    ``out`` atomically, with ``format`` first."""
    return _write_json({"format": METRICS_FORMAT, **metrics}, out)


def write_headline(headline: dict, out: Path) -> Path:
    """Write the DVC headline file (:func:`hgbench.evaluate.headline_metrics`: numbers only, so
    every leaf is a column of ``dvc exp show``) atomically."""
    return _write_json(headline, out)


def _number(value: Any) -> float:
    """A JSON score as float; null (written for NaN) becomes NaN. TypeError if not a number."""
    if value is None:
        return math.nan
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"expected a number, got {value!r}")
    return float(value)


def _same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or abs(a - b) <= TOLERANCE


def _check_headline(raw: dict, key: str, correct: np.ndarray, scored: np.ndarray) -> None:
    """The stored headline table and ablation number equal the ones re-derived from per-person
    records; ValueError naming the first number that differs."""
    proto = get_protocol(raw["protocol"])
    if correct.shape[0] != _number(raw.get("n_people")):
        raise ValueError(f"n_people is {raw.get('n_people')} but per_person holds {correct.shape[0]} people")
    if correct.shape[0] and correct.shape[1] != len(proto.joint_names):
        raise ValueError(
            f"per_person has {correct.shape[1]} joints; protocol {proto.name} has {len(proto.joint_names)}"
        )
    hits, counts = (correct & scored).sum(0), scored.sum(0)
    derived = table_from_counts(hits, counts, proto)
    for group, value in derived.items():
        stored = _number(raw[key].get(group))
        if not _same(stored, float(value)):
            raise ValueError(f"{key}.{group} is {stored} but the per-person records give {float(value):.6g}")
    if "ablation@0.5" in raw:
        value = float(ablation_from_counts(hits, counts))
        if not _same(_number(raw["ablation@0.5"]), value):
            raise ValueError(f"ablation@0.5 is {raw['ablation@0.5']} but the per-person records give {value:.6g}")


def read_metrics(path: Path, run: tuple[str, str, int] | None = None) -> dict:
    """The checked ``metrics.json`` of a run, with plain floats (NaN for JSON null).

    Returns ``{"protocol", "metrics" (table keys, headline first), <key>: {group: %} for each,
    "auc", "ablation", "curve" ({group: (thresholds, values)}), "per_stack" ([{stack, mean,
    ablation@0.5}], the Mean at the headline threshold under "mean@0.5"), "ci95" ({quantity: (low, high)}), "n_people", "visibility", "per_person"
    ((correct, scored) (N, J) bool)}``. ``run`` = (dataset, variant, seed) is checked against the
    file's own. Raises :class:`RunFileError` (one line: file, what is wrong, the fix) when the file
    is missing, not JSON, of another format, of another run, or its headline numbers disagree
    with its per-person records.
    """
    path = Path(path)
    fix = "rerun `hgbench evaluate` to rewrite it"
    if not path.is_file():
        raise RunFileError(f"{path} not found; run `hgbench evaluate` first")
    try:
        raw = json.loads(path.read_text())
        if not isinstance(raw, dict) or raw.get("format") != METRICS_FORMAT:
            found = raw.get("format") if isinstance(raw, dict) else type(raw).__name__
            raise ValueError(f"format is {found!r}, expected {METRICS_FORMAT!r}")
        if run is not None:
            found = raw.get("run") or {}
            found = (str(found.get("dataset")), str(found.get("variant")), str(found.get("seed")))
            if found != tuple(str(x) for x in run):
                raise ValueError(f"it is the metrics of run {'/'.join(found)}, expected {'/'.join(map(str, run))}")
        return _parse_metrics(raw)
    except (OSError, ValueError, KeyError, TypeError, AttributeError, IndexError) as err:
        raise RunFileError(f"{path}: {err}; {fix}") from None


def _parse_metrics(raw: dict) -> dict:
    keys = tuple(raw["thresholds"])
    correct, scored = decode_correct(raw["per_person"]["correct"])
    _check_headline(raw, keys[0], correct, scored)
    out = {
        "protocol": str(raw["protocol"]),
        "metrics": keys,
        "auc": _number(raw.get("auc")),
        "ablation": _number(raw.get("ablation@0.5")),
        "n_people": _number(raw.get("n_people")),
        "per_person": (correct, scored),
    }
    for metric in keys:
        out[metric] = {g: _number(raw[metric].get(g)) for g in GROUPS}
    curve = raw.get("curve") or {}
    thresholds = [_number(t) for t in curve.get("thresholds", [])]
    out["curve"] = {}
    for group, values in curve.items():
        if group == "thresholds":
            continue
        if len(values) != len(thresholds):
            raise ValueError(f"curve '{group}' has {len(values)} points, thresholds {len(thresholds)}")
        out["curve"][group] = (thresholds, [_number(v) for v in values])
    mean_key = f"mean@{raw['thresholds'][keys[0]]:g}"  # mean@0.5 (MPII), mean@0.2 (FLIC)
    # Summary column "mean@0.5" for either layout: the headline threshold's Mean of each output.
    out["per_stack"] = [
        {"stack": int(s["stack"]), "mean@0.5": _number(s.get(mean_key)), "ablation@0.5": _number(s.get("ablation@0.5"))}
        for s in raw.get("per_stack") or []
    ]
    ci = raw.get("ci95") or {}
    out["ci95"] = {
        q: (_number(ci[q].get("low")), _number(ci[q].get("high"))) for q in ("Mean", "ablation@0.5") if q in ci
    }
    vis = raw.get("visibility") or {}
    out["visibility"] = {k: _number(vis.get(k)) for k in ("visible", "occluded")}
    return out
