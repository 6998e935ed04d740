"""Gallery of predicted vs ground-truth skeletons: the best, median and worst person per variant.

The report regenerates from ``results/`` alone, so ``hgbench summarize --data DIR`` copies the
few people it shows into ``results/summary/<dataset>/gallery.h5`` (a few hundred kB):

=============  ======================  ==================================================
``images``     (M, S, S, 3) uint8      person crops (``valid.h5``, ``samples.h5``), downscaled to S px
``gt``         (M, J, 2) float32       ground truth in the downscaled crop's pixels
``pred``       (M, J, 2) float32       prediction (final stack, flip test) in the same frame
``source``     (M,) str                where the person comes from (``validation``, ``real MPII image``)
``variant``    (M,) str                the variant whose prediction is drawn
``case``       (M,) str                ``best``, ``median`` or ``worst`` (real images: the image name)
``seed``       (M,) int64              the run's seed
``person``     (M,) int64              row of the person in the split file
``score``      (M,) float64            normalised error (:func:`normalised_error`)
=============  ======================  ==================================================

Attributes: ``dataset``, ``joint_names``, ``image_size``, ``score_definition``. Pixel coordinates
are 0-based continuous (docs/architecture.md); NaN marks a missing joint. The real MPII sample
photographs are a second source (``source`` = "real MPII image", ``case`` = the image name):
``prepare`` writes them as the split ``samples.h5`` and the ``predict`` job predicts it
for every run (``samples_predictions.h5``), so this module only reads processed splits and
predictions files; it never loads a model (no torch). :func:`append_people` adds people of any
other source; the report groups by ``source``.
"""

from __future__ import annotations

import logging
from pathlib import Path

import h5py
import numpy as np
from PIL import Image

from hgbench.config import Params
from hgbench.data.prepare import SAMPLES, SAMPLES_FILENAME  # noqa: F401  (SAMPLES: re-exported for callers)
from hgbench.data.schema import open_split
from hgbench.iofiles import atomic_path
from hgbench.kinds import kind_of
from hgbench.runs import RunFileError, prediction_attrs, read_final_predictions, run_dir, run_of

log = logging.getLogger(__name__)

IMAGE_SIZE = 128
"""Side of a stored crop in px: enough to see a limb, small enough to keep the file tiny."""
CASES = ("best", "median", "worst")
SCORE_DEFINITION = (
    "mean over annotated joints of |prediction - ground truth| / normaliser "
    "(PCKh head size, or FLIC torso size), native pixels; lower is better"
)
FIELDS = ("images", "gt", "pred", "source", "variant", "case", "seed", "person", "score")


def normalised_error(pred: np.ndarray, gt: np.ndarray, missing: np.ndarray, normalizer: np.ndarray) -> np.ndarray:
    """(N,) mean normalised joint error per person; NaN for a person without annotated joints."""
    dist = np.linalg.norm(np.asarray(pred, float) - np.asarray(gt, float), axis=-1)  # (N, J)
    dist = np.where(np.asarray(missing, bool), np.nan, dist) / np.asarray(normalizer, float)[:, None]
    counted = np.isfinite(dist).sum(1)
    total = np.nansum(np.where(np.isfinite(dist), dist, 0.0), axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counted > 0, total / counted, np.nan)


def pick_cases(scores: np.ndarray) -> list[tuple[str, int]]:
    """``[("best", i), ("median", j), ("worst", k)]`` by ascending error, NaN people ignored.

    The median is the lower median (an actual person, not an average); ties keep the lower row
    index (stable sort), so the choice is deterministic. Fewer than three scored people give
    fewer distinct cases: a person is listed once, under the first case that picks it.
    """
    scores = np.asarray(scores, float)
    rows = np.flatnonzero(np.isfinite(scores))
    if rows.size == 0:
        return []
    ranked = rows[np.argsort(scores[rows], kind="stable")]
    picks, seen = [], set()
    for case, rank in zip(CASES, (0, (ranked.size - 1) // 2, ranked.size - 1)):
        if int(ranked[rank]) not in seen:
            seen.add(int(ranked[rank]))
            picks.append((case, int(ranked[rank])))
    return picks


def native_to_crop(points: np.ndarray, crop_to_image: np.ndarray) -> np.ndarray:
    """Native pixels (J, 2) → stored-crop pixels, inverting ``native = A · [x, y, 1]``."""
    a = np.asarray(crop_to_image, float)
    return (np.asarray(points, float) - a[:, 2]) @ np.linalg.inv(a[:, :2]).T


def downscale(image: np.ndarray, points: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """A square crop resized to ``size`` px (box filter) and its points in the new pixels.

    0-based continuous pixels: the centre of pixel i is at i, so x' = (x + 0.5)·f − 0.5.
    """
    f = size / image.shape[0]
    small = np.asarray(Image.fromarray(image).resize((size, size), Image.Resampling.BOX))
    return small, (np.asarray(points, float) + 0.5) * f - 0.5


def _read_predictions(path: Path, n: int, run: dict) -> np.ndarray | None:
    """``preds`` (n, J, 2) of a run (:func:`hgbench.runs.read_final_predictions`), or None when
    missing, unreadable or of another split: the gallery is an illustration, not a result. A file
    that names another run (``run``: its dataset, variant, seed) is refused: copied in from another
    run's folder, it would show that run's people under this variant's name."""
    try:
        preds = read_final_predictions(path, n)
        found = run_of(prediction_attrs(path))
    except RunFileError as err:
        log.warning("no predictions for the gallery: %s", err)
        return None
    if found is not None and (str(found["dataset"]), str(found["variant"]), int(found["seed"])) != (
        run["dataset"],
        run["variant"],
        run["seed"],
    ):
        raise RunFileError(
            f"{path} holds the predictions of run {found['dataset']}/{found['variant']}/s{found['seed']}, "
            f"not {run['dataset']}/{run['variant']}/s{run['seed']}; rerun `hgbench predict` for this run "
            f"(or put the file back in its own run's folder)"
        )
    return preds


def _lowest_seed_predictions(
    params: Params, dataset: str, results_dir: Path, name: str, n: int
) -> dict[str, tuple[int, np.ndarray]]:
    """Variant → (seed, ``preds``) of its lowest seed with a readable ``name`` of ``n`` rows."""
    found: dict[str, tuple[int, np.ndarray]] = {}
    for exp in params.experiments_for(dataset):  # experiments are in seed order per variant
        if exp.variant in found:
            continue
        run = {"dataset": dataset, "variant": exp.variant, "seed": int(exp.seed)}
        preds = _read_predictions(run_dir(results_dir, dataset, exp.variant, exp.seed) / name, n, run)
        if preds is not None:
            found[exp.variant] = (exp.seed, preds)
    return found


def select_people(
    params: Params, dataset: str, results_dir: Path, valid_file: Path, size: int = IMAGE_SIZE
) -> dict[str, np.ndarray]:
    """Best, median and worst person of every variant of ``dataset`` (its lowest seed with
    predictions), as gallery columns (see the module docstring). A variant without predictions
    is left out (the report shows it as missing)."""
    rows: list[dict] = []
    with open_split(valid_file) as split:  # checked reads: a damaged split is named, with the fix
        fields = split.read(["joints_image", "missing", "normalizer", "crop_to_image"])
        gt, missing = fields["joints_image"].astype(float), fields["missing"].astype(bool)
        normalizer, affine = fields["normalizer"].astype(float), fields["crop_to_image"].astype(float)
        n_joints = gt.shape[1]
        runs = _lowest_seed_predictions(params, dataset, results_dir, "predictions.h5", gt.shape[0])
        for variant, (seed, preds) in runs.items():
            scores = normalised_error(preds, gt, missing, normalizer)
            for case, i in pick_cases(scores):
                truth = np.where(missing[i][:, None], np.nan, gt[i])
                crop = split.image(i)
                image, pts = downscale(
                    crop, np.concatenate([native_to_crop(truth, affine[i]), native_to_crop(preds[i], affine[i])]), size
                )
                rows.append(
                    {
                        "images": image,
                        "gt": pts[:n_joints],
                        "pred": pts[n_joints:],
                        "source": "validation",
                        "variant": variant,
                        "case": case,
                        "seed": seed,
                        "person": i,
                        "score": scores[i],
                    }
                )
    return _columns(rows, size, n_joints)


def _columns(rows: list[dict], size: int, n_joints: int) -> dict[str, np.ndarray]:
    """Gallery rows → column arrays (empty arrays of the right shape when there are none)."""

    def col(key, dtype, shape=()):
        return np.stack([np.asarray(r[key], dtype) for r in rows]) if rows else np.zeros((0, *shape), dtype)

    return {
        "images": col("images", np.uint8, (size, size, 3)),
        "gt": col("gt", np.float32, (n_joints, 2)),
        "pred": col("pred", np.float32, (n_joints, 2)),
        "source": np.array([r["source"] for r in rows], str),
        "variant": np.array([r["variant"] for r in rows], str),
        "case": np.array([r["case"] for r in rows], str),
        "seed": col("seed", np.int64),
        "person": col("person", np.int64),
        "score": col("score", np.float64),
    }


def write_gallery(
    path: Path, columns: dict[str, np.ndarray], dataset: str, joint_names, size: int = IMAGE_SIZE
) -> Path:
    """Write ``gallery.h5`` atomically (an empty gallery is a valid file with zero rows)."""
    with atomic_path(Path(path)) as tmp, h5py.File(tmp, "w") as f:
        for key in FIELDS:
            values = columns[key]
            if values.dtype.kind == "U":
                f.create_dataset(key, data=values.astype(object), dtype=h5py.string_dtype())
            else:
                f.create_dataset(key, data=values)
        f.attrs["dataset"] = dataset
        f.attrs["joint_names"] = list(joint_names)
        f.attrs["image_size"] = size
        f.attrs["score_definition"] = SCORE_DEFINITION
    return Path(path)


def read_gallery(path: Path) -> dict | None:
    """``{"columns": {field: array}, "attrs": {...}}`` of a gallery file, None if missing/unreadable."""
    if not Path(path).is_file():
        log.warning("%s: missing; no gallery", path)
        return None
    try:
        with h5py.File(path, "r") as f:
            columns = {}
            for key in FIELDS:
                values = f[key][()]
                columns[key] = (
                    np.array([v.decode() if isinstance(v, bytes) else str(v) for v in values], str)
                    if values.dtype.kind in "OS"
                    else np.asarray(values)
                )
            attrs = {
                "dataset": str(f.attrs["dataset"]),
                "joint_names": [str(j) for j in f.attrs["joint_names"]],
                "image_size": int(f.attrs["image_size"]),
                "score_definition": str(f.attrs.get("score_definition", "")),
            }
    except (OSError, KeyError, ValueError) as err:
        log.warning("%s: unreadable, no gallery (%s)", path, str(err).split(" (")[0])
        return None
    return {"columns": columns, "attrs": attrs}


def append_people(path: Path, columns: dict[str, np.ndarray]) -> Path:
    """Add people from another source (same fields, same image size) to an existing gallery."""
    old = read_gallery(path)
    if old is None:
        raise FileNotFoundError(f"{path}: no gallery to append to")
    size = old["attrs"]["image_size"]
    merged = {k: np.concatenate([old["columns"][k], np.asarray(columns[k])]) for k in FIELDS}
    return write_gallery(path, merged, old["attrs"]["dataset"], old["attrs"]["joint_names"], size)


SAMPLE_SOURCE = "real MPII image"
SAMPLES_PREDICTIONS = "samples_predictions.h5"
"""A run's predictions of the samples split (``hgbench predict --data .../samples.h5``)."""


def sample_people(
    params: Params, dataset: str, results_dir: Path, samples_file: Path, size: int = IMAGE_SIZE
) -> dict[str, np.ndarray] | None:
    """Every variant's predictions of the real sample photographs (the ``samples`` split).

    Reads the processed split ``samples_file`` (``hgbench prepare --split samples``) and, for each
    variant, its lowest seed's ``samples_predictions.h5`` (the ``predict`` job: ``hgbench
    predict`` on that split, flip test as in the profile). Returns gallery columns with ``source``
    = "real MPII image" and ``case`` = the image name, one row per person and variant, or None when
    the split is missing (a damaged one raises :class:`~hgbench.data.schema.DataFileError`) or has
    no labelled joint (a FLIC-layout dataset's samples split carries no labels: its models predict
    FLIC's 11 joints) or no variant has predictions.
    Nothing here loads a model.
    """
    samples_file = Path(samples_file)
    if not samples_file.is_file():
        log.warning("%s: missing; no real sample people in the gallery", samples_file)
        return None
    with open_split(samples_file) as split:  # checked reads, as for the validation split
        fields = split.read(["joints_image", "missing", "normalizer", "crop_to_image", "image_name"])
        crops = split.images(range(len(split)))
    gt, missing = fields["joints_image"].astype(float), fields["missing"].astype(bool)
    normalizer, affine = fields["normalizer"].astype(float), fields["crop_to_image"].astype(float)
    names = [str(n) for n in fields["image_name"]]
    if missing.all():  # no labels in this dataset's layout: nothing to compare a prediction with
        return None
    runs = _lowest_seed_predictions(params, dataset, results_dir, SAMPLES_PREDICTIONS, gt.shape[0])
    if not runs:
        return None
    rows: list[dict] = []
    for variant, (seed, preds) in runs.items():
        scores = normalised_error(preds, gt, missing, normalizer)
        for i in range(len(gt)):
            truth = np.where(missing[i][:, None], np.nan, gt[i])
            image, pts = downscale(
                crops[i], np.concatenate([native_to_crop(truth, affine[i]), native_to_crop(preds[i], affine[i])]), size
            )
            rows.append(
                {
                    "images": image,
                    "gt": pts[: len(truth)],
                    "pred": pts[len(truth) :],
                    "source": SAMPLE_SOURCE,
                    "variant": variant,
                    "case": names[i],
                    "seed": seed,
                    "person": i,
                    "score": scores[i],
                }
            )
    return _columns(rows, size, gt.shape[1])


def build_gallery(
    params: Params, dataset: str, results_dir: Path, data_dir: Path, out: Path, size: int = IMAGE_SIZE
) -> Path:
    """``hgbench summarize --data DIR``: the validation people (``DIR/valid.h5`` and each run's
    ``predictions.h5``) and the real sample people (``DIR/samples.h5`` and each run's
    ``samples_predictions.h5``), written to ``out`` in one go. The file is empty when the
    validation split is missing (the report then says that no gallery people exist, and does not
    fail); the sample people are left out when their split or predictions are missing."""
    data_dir = Path(data_dir)
    valid_file = data_dir / "valid.h5"
    names = kind_of(params.datasets[dataset].layout).joints
    if valid_file.is_file():
        columns = select_people(params, dataset, results_dir, valid_file, size)
        samples = sample_people(params, dataset, results_dir, data_dir / SAMPLES_FILENAME, size)
        if samples is not None and samples["gt"].shape[1:] == columns["gt"].shape[1:]:
            columns = {k: np.concatenate([columns[k], samples[k]]) for k in FIELDS}
    else:
        log.warning("%s: missing; writing an empty gallery", valid_file)
        columns = _columns([], size, len(names))
    return write_gallery(out, columns, dataset, names, size)
