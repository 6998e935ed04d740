"""What each run cost: Snakemake ``benchmark:`` files and the training log → ``costs.csv``.

``hgbench summarize --benchmarks DIR`` writes ``results/summary/<dataset>/costs.csv`` so that the
report's model cards regenerate from ``results/`` alone. Sources, per run:

- ``DIR/train/<dataset>/<variant>/s<seed>.tsv`` and ``DIR/predict/...``: Snakemake's benchmark
  tables (columns ``s`` = wall seconds of the whole job, ``max_rss`` = peak resident memory in MB,
  ``-`` when unmeasured; one row per repeat). DVC runs write none, so these may be absent.
- ``models/<dataset>/<variant>/s<seed>/log.csv``: per-epoch ``wall_s`` (+ ``valid_s``),
  ``images_per_s``, ``data_wait_share`` and, when the trainer records them, ``device`` and a
  peak-memory column (``*mem*_mb``).
- ``results/<dataset>/<variant>/s<seed>/predictions.h5``: the number of people predicted (for the
  per-person latency).

Anything missing is NaN (shown as "—"); a run is never dropped.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import pandas as pd

from hgbench.config import Params
from hgbench.runs import check_log_run, count_predictions, run_dir

log = logging.getLogger(__name__)

COST_COLUMNS = [
    "dataset",
    "variant",
    "seed",
    "train_s",
    "train_max_rss_mb",
    "predict_s",
    "predict_max_rss_mb",
    "n_predicted",
    "predict_ms_per_person",
    "log_train_s",
    "log_images_per_s",
    "log_data_wait_share",
    "log_peak_mem_mb",
    "device",
]


def read_benchmark(path: Path) -> dict[str, float]:
    """``{"s", "max_rss_mb"}`` of a Snakemake benchmark table: mean wall time over repeats, largest
    peak RSS; NaN for a missing or unreadable file or an unmeasured value."""
    try:
        frame = pd.read_csv(path, sep="\t", na_values=["-", "NA", ""])
    except FileNotFoundError:
        return {"s": math.nan, "max_rss_mb": math.nan}
    except (OSError, ValueError) as err:
        log.warning("%s: unreadable benchmark (%s)", path, err)
        return {"s": math.nan, "max_rss_mb": math.nan}

    def column(name, how):
        if name not in frame:
            return math.nan
        values = pd.to_numeric(frame[name], errors="coerce").dropna()
        return float(getattr(values, how)()) if len(values) else math.nan

    return {"s": column("s", "mean"), "max_rss_mb": column("max_rss", "max")}


def log_costs(path: Path, run: tuple[str, str, int] | None = None) -> dict:
    """Training-loop time, throughput, data-wait share, peak memory and device from ``log.csv``;
    ``run`` = (dataset, variant, seed): a log of another run is refused (:class:`RunFileError`)."""
    out = {
        "log_train_s": math.nan,
        "log_images_per_s": math.nan,
        "log_data_wait_share": math.nan,
        "log_peak_mem_mb": math.nan,
        "device": "",
    }
    try:
        frame = pd.read_csv(path)
    except (OSError, ValueError):
        return out
    if run is not None:
        check_log_run(frame, path, run)

    def numbers(name):
        return pd.to_numeric(frame[name], errors="coerce").dropna() if name in frame else pd.Series([], dtype=float)

    wall, valid = numbers("wall_s"), numbers("valid_s")
    if len(wall):  # wall_s is per epoch (steps + data wait); validation time is logged apart
        out["log_train_s"] = float(wall.sum() + valid.sum())
    if len(numbers("images_per_s")):
        out["log_images_per_s"] = float(numbers("images_per_s").median())
    if len(numbers("data_wait_share")):
        out["log_data_wait_share"] = float(numbers("data_wait_share").mean())
    mem = [c for c in frame.columns if "mem" in c.lower() and c.lower().endswith("_mb")]
    if mem and len(numbers(mem[0])):
        out["log_peak_mem_mb"] = float(numbers(mem[0]).max())
    if "device" in frame and frame["device"].notna().any():
        # Every machine the run's epochs ran on, in order (a resumed run may have moved).
        out["device"] = "; ".join(dict.fromkeys(str(d) for d in frame["device"].dropna() if str(d)))
    return out


def collect_costs(
    params: Params, dataset: str, benchmarks_dir: Path | None, models_dir: Path, results_dir: Path
) -> pd.DataFrame:
    """One row per experiment of ``dataset`` with the columns :data:`COST_COLUMNS`."""
    rows = []
    for exp in params.experiments_for(dataset):
        rel = run_dir("", dataset, exp.variant, exp.seed)
        nan = {"s": math.nan, "max_rss_mb": math.nan}
        train = read_benchmark(Path(benchmarks_dir) / "train" / f"{rel}.tsv") if benchmarks_dir else nan
        pred = read_benchmark(Path(benchmarks_dir) / "predict" / f"{rel}.tsv") if benchmarks_dir else nan
        # the predict job also predicts the samples split (five people): they count too
        n = count_predictions(Path(results_dir) / rel / "predictions.h5")
        samples = Path(results_dir) / rel / "samples_predictions.h5"
        n += count_predictions(samples) if samples.is_file() else 0
        per_person = pred["s"] / n * 1000 if n > 0 else math.nan
        rows.append(
            {
                "dataset": dataset,
                "variant": exp.variant,
                "seed": exp.seed,
                "train_s": train["s"],
                "train_max_rss_mb": train["max_rss_mb"],
                "predict_s": pred["s"],
                "predict_max_rss_mb": pred["max_rss_mb"],
                "n_predicted": n,
                "predict_ms_per_person": per_person,
                **log_costs(Path(models_dir) / rel / "log.csv", (dataset, exp.variant, exp.seed)),
            }
        )
    return pd.DataFrame(rows, columns=COST_COLUMNS)
