"""Metrics and training logs of one dataset of a profile → CSV tables (``hgbench summarize``).

Inputs (formats in docs/architecture.md): for every experiment of the dataset,
``results_dir/<dataset>/<variant>/s<seed>/metrics.json`` and
``models_dir/<dataset>/<variant>/s<seed>/log.csv``. A missing file never stops the summary: the
run is recorded with a ``status`` that says what is missing. A ``metrics.json`` that exists but
cannot be trusted (damaged, another run's, or headline numbers its per-person records contradict:
:func:`hgbench.runs.read_metrics`) stops it before any table is written.

Outputs (``out_dir``, normally ``results/<profile>/summary/<dataset>/``, each written atomically):

- ``per_joint.csv``: one row per run × metric (pckh@0.5, pckh@0.1): the group scores Head…Ankle,
  Mean, the paper's §4.2 ablation metric (pckh@0.5 rows only), AUC and ``status``.
- ``curves.csv``: long table of the PCKh curves, one row per run × group × threshold.
- ``ablations.csv``: one row per run × stack: every stack's mean@0.5 and ablation@0.5.
- ``training.csv``: all runs' ``log.csv`` rows with dataset/variant/seed columns in front.
- ``variants.csv``: one row per variant of the dataset's experiments, with parameter and MAC counts.
- ``seeds.csv``: one row per variant × metric × quantity (groups, Mean, ablation, auc): mean ± std
  across the variant's seeds (``n_seeds``).
- ``paired.csv``: one row per pair of variants × seed × quantity (Mean, ablation) scored on the same
  people: the difference A − B with its paired-bootstrap 95 % CI and two-sided p
  (:func:`hgbench.stats.paired_bootstrap`, resampling people).
- ``paired_pooled.csv``: one row per pair of variants × quantity, pooled over the seeds both were
  run with: the mean of the per-seed differences with a two-level (seeds and people) paired
  bootstrap 95 % CI and p (:func:`hgbench.stats.paired_bootstrap_seeds`), the per-seed
  differences, their std and how many seeds agree in sign.
- ``claims.csv``: ``paired_pooled.csv`` as the paper's claims (:mod:`hgbench.claims`): each pair
  oriented so that a positive difference supports the paper where the pair tests one of its
  claims, with the verdict from the CI and the paper's own difference. The report renders it.

``per_joint.csv`` also carries, on the headline rows (pckh@0.5, FLIC pck@0.2), the bootstrap 95 % CIs
over people of Mean and of the ablation metric (``Mean_ci_low`` … ``ablation_ci_high``), ``n_people``
and PCK of visible and occluded joints (``visible``, ``occluded``). FLIC runs have ``metric`` =
``pck@0.2`` and NaN for the groups FLIC lacks (Knee, Ankle).

``status`` is ``ok`` (metrics and log read), ``no-log`` (metrics read; the training log is missing
or unreadable) or ``missing`` (metrics.json missing; the scores are empty).
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import pandas as pd

from hgbench import runs as run_files
from hgbench.claims import claims_table
from hgbench.config import DatasetConfig, Experiment, Params, VariantConfig
from hgbench.iofiles import atomic_path
from hgbench.metrics import PROTOCOLS, statistic_for
from hgbench.stats import paired_bootstrap, paired_bootstrap_seeds, seed_summary

log = logging.getLogger(__name__)

GROUPS = run_files.GROUPS  # the table columns of metrics.json
METRICS = ("pckh@0.5", "pckh@0.1")
"""MPII tables; a metrics.json names its own in ``thresholds`` (FLIC: ``pck@0.2``)."""
N_BOOT = 1000
"""Paired-bootstrap replicates (seeded: the summary is reproducible)."""
N_BOOT_POOLED = 2000
"""Replicates of the two-level (seeds × people) bootstrap behind the verdicts."""

CI_COLUMNS = ["Mean_ci_low", "Mean_ci_high", "ablation_ci_low", "ablation_ci_high"]
PER_JOINT_COLUMNS = [
    "dataset",
    "variant",
    "label",
    "seed",
    "protocol",
    "metric",
    *GROUPS,
    "ablation",
    "auc",
    "status",
    *CI_COLUMNS,
    "n_people",
    "visible",
    "occluded",
]
SEED_COLUMNS = ["dataset", "variant", "label", "protocol", "metric", "quantity", "mean", "std", "n_seeds"]
PAIRED_COLUMNS = [
    "dataset",
    "variant_a",
    "variant_b",
    "seed",
    "protocol",
    "metric",
    "quantity",
    "diff",
    "ci_low",
    "ci_high",
    "p",
    "n_boot",
    "n_people",
]
POOLED_COLUMNS = [
    "dataset",
    "variant_a",
    "variant_b",
    "seeds",
    "n_seeds",
    "protocol",
    "metric",
    "quantity",
    "diff",
    "ci_low",
    "ci_high",
    "p",
    "per_seed",
    "seed_std",
    "seeds_agree",
    "n_boot",
    "n_people",
]
CURVE_COLUMNS = ["dataset", "variant", "seed", "protocol", "group", "threshold", "pckh"]
ABLATION_COLUMNS = [
    "dataset",
    "variant",
    "label",
    "seed",
    "stacks",
    "modules",
    "features",
    "depth",
    "supervision",
    "params",
    "macs",
    "stack",
    "mean@0.5",
    "ablation@0.5",
    "is_final",
    "status",
]
TRAINING_KEYS = ["dataset", "variant", "seed"]
VARIANT_COLUMNS = [
    "variant",
    "label",
    "stacks",
    "modules",
    "features",
    "depth",
    "supervision",
    "params",
    "macs",
    "input_res",
]

STATUS_OK, STATUS_NO_LOG, STATUS_MISSING = "ok", "no-log", "missing"


def _describe_variant(variant: VariantConfig, dataset: DatasetConfig) -> dict:
    """Parameter and MAC counts (imported lazily: it needs torch)."""
    from hgbench.describe import describe_variant

    return describe_variant(variant, dataset)


def read_metrics(path: Path, exp: Experiment) -> dict | None:
    """The checked ``metrics.json`` of a run (:func:`hgbench.runs.read_metrics`), or None when it
    does not exist (the run is recorded as missing: a partial pipeline still gets its summary).

    A file that exists but is damaged, of another format or run, or whose headline numbers its
    own per-person records contradict raises :class:`hgbench.runs.RunFileError` before any table
    is written: a wrong number must not be reported as a result.
    """
    if not Path(path).is_file():
        log.warning("%s: missing; run %s/%s/s%s recorded as missing", path, exp.dataset, exp.variant, exp.seed)
        return None
    return run_files.read_metrics(path, (exp.dataset, exp.variant, exp.seed))


def read_log(path: Path, run: tuple[str, str, int] | None = None) -> pd.DataFrame | None:
    """A run's ``log.csv`` as a DataFrame (without its run column), or None when missing, empty or
    unreadable. ``run`` = (dataset, variant, seed): a log of another run is refused
    (:class:`hgbench.runs.RunFileError`)."""
    try:
        frame = pd.read_csv(path)
    except FileNotFoundError:
        log.warning("%s: missing training log", path)
        return None
    except (OSError, ValueError) as err:  # pandas' EmptyDataError and ParserError are ValueErrors
        log.warning("%s: unreadable training log (%s)", path, err)
        return None
    if frame.empty or not {"iteration", "train_loss"} <= set(frame.columns):
        log.warning("%s: training log without rows or without iteration/train_loss columns", path)
        return None
    if run is not None:
        run_files.check_log_run(frame, path, run)
    return frame.drop(columns=[run_files.LOG_RUN_COLUMN], errors="ignore")


def _variant_row(variant: VariantConfig, dataset: DatasetConfig) -> dict:
    counts = _describe_variant(variant, dataset)
    return {
        "variant": variant.name,
        "label": variant.label or variant.name,
        "stacks": variant.stacks,
        "modules": variant.modules,
        "features": variant.features,
        "depth": variant.depth,
        "supervision": variant.supervision,
        "params": counts["params"],
        "macs": counts["macs"],
        "input_res": dataset.input_res,
    }


def _per_joint_rows(exp: Experiment, label: str, metrics: dict | None, status: str) -> list[dict]:
    rows = []
    keys = metrics["metrics"] if metrics else METRICS
    for i, metric in enumerate(keys):
        headline = i == 0
        row = {
            "dataset": exp.dataset,
            "variant": exp.variant,
            "label": label,
            "seed": exp.seed,
            "protocol": metrics["protocol"] if metrics else "",
            "metric": metric,
        }
        row.update(metrics[metric] if metrics else {g: math.nan for g in GROUPS})
        row["ablation"] = metrics["ablation"] if metrics and headline else math.nan
        row["auc"] = metrics["auc"] if metrics else math.nan
        row["status"] = status
        ci = metrics["ci95"] if metrics and headline else {}
        row["Mean_ci_low"], row["Mean_ci_high"] = ci.get("Mean", (math.nan, math.nan))
        row["ablation_ci_low"], row["ablation_ci_high"] = ci.get("ablation@0.5", (math.nan, math.nan))
        row["n_people"] = metrics["n_people"] if metrics else math.nan
        vis = metrics["visibility"] if metrics and headline else {}
        row["visible"], row["occluded"] = vis.get("visible", math.nan), vis.get("occluded", math.nan)
        rows.append(row)
    return rows


def _seed_rows(dataset: str, per_joint: list[dict]) -> list[dict]:
    """Mean ± std across seeds of every score column, per variant × metric (scored runs only)."""
    frame = pd.DataFrame(per_joint, columns=PER_JOINT_COLUMNS)
    frame = frame[frame["status"] != STATUS_MISSING]
    rows = []
    for (variant, metric), runs in frame.groupby(["variant", "metric"], sort=False):
        for quantity in (*GROUPS, "ablation", "auc"):
            summary = seed_summary(runs[quantity].to_numpy(dtype=float))
            if summary["n"] == 0:
                continue
            rows.append(
                {
                    "dataset": dataset,
                    "variant": variant,
                    "label": runs["label"].iloc[0],
                    "protocol": runs["protocol"].iloc[0],
                    "metric": metric,
                    "quantity": quantity,
                    "mean": summary["mean"],
                    "std": summary["std"],
                    "n_seeds": summary["n"],
                }
            )
    return rows


def _paired_rows(dataset: str, scored_runs: list[tuple[Experiment, dict]]) -> list[dict]:
    """Paired bootstrap A − B for every pair of variants run with the same seed on the same people."""
    rows = []
    for i, (exp_a, ma) in enumerate(scored_runs):
        for exp_b, mb in scored_runs[i + 1 :]:
            if exp_a.seed != exp_b.seed or exp_a.variant == exp_b.variant or not _comparable(ma, mb):
                continue
            proto = PROTOCOLS[ma["protocol"]]
            quantities = ("Mean", "ablation") if proto.kind.has_ablation else ("Mean",)
            for quantity in quantities:
                res = paired_bootstrap(
                    *ma["per_person"], *mb["per_person"], statistic_for(proto, quantity), n_boot=N_BOOT, seed=exp_a.seed
                )
                rows.append(
                    {
                        "dataset": dataset,
                        "variant_a": exp_a.variant,
                        "variant_b": exp_b.variant,
                        "seed": exp_a.seed,
                        "protocol": proto.name,
                        "metric": ma["metrics"][0],
                        "quantity": quantity,
                        "diff": res["diff"],
                        "ci_low": res["low"],
                        "ci_high": res["high"],
                        "p": res["p"],
                        "n_boot": res["n_boot"],
                        "n_people": int(ma["per_person"][0].shape[0]),
                    }
                )
    return rows


def _comparable(ma: dict, mb: dict) -> bool:
    """Two runs' per-person scores can be paired: same protocol, same people."""
    return (
        ma["per_person"] is not None
        and mb["per_person"] is not None
        and ma["protocol"] == mb["protocol"]
        and ma["protocol"] in PROTOCOLS
        and ma["per_person"][0].shape == mb["per_person"][0].shape
    )


def _pooled_rows(dataset: str, scored_runs: list[tuple[Experiment, dict]]) -> list[dict]:
    """Per pair of variants: A − B pooled over the seeds both have (two-level paired bootstrap)."""
    by_variant: dict[str, dict[int, dict]] = {}
    for exp, metrics in scored_runs:
        by_variant.setdefault(exp.variant, {})[exp.seed] = metrics
    names = list(by_variant)
    rows = []
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            seeds = [s for s in by_variant[a] if s in by_variant[b] and _comparable(by_variant[a][s], by_variant[b][s])]
            if not seeds:
                continue
            runs_a = [by_variant[a][s] for s in seeds]
            runs_b = [by_variant[b][s] for s in seeds]
            if len({m["protocol"] for m in runs_a}) != 1 or len({m["per_person"][0].shape for m in runs_a}) != 1:
                continue  # seeds scored differently cannot be pooled
            proto = PROTOCOLS[runs_a[0]["protocol"]]
            quantities = ("Mean", "ablation") if proto.kind.has_ablation else ("Mean",)
            for quantity in quantities:
                res = paired_bootstrap_seeds(
                    [m["per_person"] for m in runs_a],
                    [m["per_person"] for m in runs_b],
                    statistic_for(proto, quantity),
                    n_boot=N_BOOT_POOLED,
                    seed=0,
                )
                rows.append(
                    {
                        "dataset": dataset,
                        "variant_a": a,
                        "variant_b": b,
                        "seeds": " ".join(str(s) for s in seeds),
                        "n_seeds": len(seeds),
                        "protocol": proto.name,
                        "metric": runs_a[0]["metrics"][0],
                        "quantity": quantity,
                        "diff": res["diff"],
                        "ci_low": res["low"],
                        "ci_high": res["high"],
                        "p": res["p"],
                        "per_seed": " ".join(f"{d:.4f}" for d in res["per_seed"]),
                        "seed_std": res["seed_std"],
                        "seeds_agree": res["seeds_agree"],
                        "n_boot": res["n_boot"],
                        "n_people": int(runs_a[0]["per_person"][0].shape[0]),
                    }
                )
    return rows


def _curve_rows(exp: Experiment, metrics: dict) -> list[dict]:
    return [
        {
            "dataset": exp.dataset,
            "variant": exp.variant,
            "seed": exp.seed,
            "protocol": metrics["protocol"],
            "group": group,
            "threshold": t,
            "pckh": v,
        }
        for group, (thresholds, values) in metrics["curve"].items()
        for t, v in zip(thresholds, values)
    ]


def _ablation_rows(exp: Experiment, vrow: dict, metrics: dict | None, status: str) -> list[dict]:
    base = {
        "dataset": exp.dataset,
        "variant": exp.variant,
        "label": vrow["label"],
        "seed": exp.seed,
        **{k: vrow[k] for k in ("stacks", "modules", "features", "depth", "supervision", "params", "macs")},
    }
    per_stack = metrics["per_stack"] if metrics else []
    if not per_stack:
        # No per-stack scores: one final-stack row (from the overall metrics when there are any).
        per_stack = [
            {
                "stack": vrow["stacks"],
                "mean@0.5": metrics["pckh@0.5"]["Mean"] if metrics else math.nan,
                "ablation@0.5": metrics["ablation"] if metrics else math.nan,
            }
        ]
    last = max(s["stack"] for s in per_stack)
    return [{**base, **s, "is_final": s["stack"] == last, "status": status} for s in per_stack]


def write_csv_atomic(frame: pd.DataFrame, path: Path) -> Path:
    """Write ``frame`` (no index) to ``path`` through a temporary file and ``os.replace``."""
    path = Path(path)
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)
    return path


def summarize(
    params: Params, dataset: str, results_dir: Path, models_dir: Path, out_dir: Path
) -> dict[str, pd.DataFrame]:
    """Summarise every experiment of ``dataset`` into CSV tables in ``out_dir``.

    Returns the tables as DataFrames keyed by file stem (``per_joint``, ``curves``, ``ablations``,
    ``training``, ``variants``, ``seeds``, ``paired``, ``paired_pooled``, ``claims``); the same tables
    are written as ``out_dir/<stem>.csv``.
    """
    if dataset not in params.datasets:
        raise ValueError(
            f"dataset {dataset!r} is not in profile {params.profile!r}; allowed: {', '.join(sorted(params.datasets))}"
        )
    ds = params.datasets[dataset]
    experiments = params.experiments_for(dataset)

    variant_rows: dict[str, dict] = {}
    for exp in experiments:
        if exp.variant not in variant_rows:
            variant_rows[exp.variant] = _variant_row(params.variants[exp.variant], ds)

    per_joint, curves, ablations, logs, scored_runs = [], [], [], [], []
    for exp in experiments:
        vrow = variant_rows[exp.variant]
        metrics = read_metrics(run_files.run_dir(results_dir, exp.dataset, exp.variant, exp.seed) / "metrics.json", exp)
        train_log = read_log(
            run_files.run_dir(models_dir, exp.dataset, exp.variant, exp.seed) / "log.csv",
            (exp.dataset, exp.variant, exp.seed),
        )
        if metrics is None:
            status = STATUS_MISSING
        else:
            status = STATUS_OK if train_log is not None else STATUS_NO_LOG
        per_joint += _per_joint_rows(exp, vrow["label"], metrics, status)
        ablations += _ablation_rows(exp, vrow, metrics, status)
        if metrics is not None:
            curves += _curve_rows(exp, metrics)
            scored_runs.append((exp, metrics))
        if train_log is not None:
            train_log.insert(0, "seed", exp.seed)
            train_log.insert(0, "variant", exp.variant)
            train_log.insert(0, "dataset", exp.dataset)
            logs.append(train_log)

    tables = {
        "per_joint": pd.DataFrame(per_joint, columns=PER_JOINT_COLUMNS),
        "curves": pd.DataFrame(curves, columns=CURVE_COLUMNS),
        "ablations": pd.DataFrame(ablations, columns=ABLATION_COLUMNS),
        "training": (
            pd.concat(logs, ignore_index=True)
            if logs
            else pd.DataFrame(columns=[*TRAINING_KEYS, "epoch", "iteration", "train_loss", "valid_acc"])
        ),
        "variants": pd.DataFrame(list(variant_rows.values()), columns=VARIANT_COLUMNS),
        "seeds": pd.DataFrame(_seed_rows(dataset, per_joint), columns=SEED_COLUMNS),
        "paired": pd.DataFrame(_paired_rows(dataset, scored_runs), columns=PAIRED_COLUMNS),
        "paired_pooled": pd.DataFrame(_pooled_rows(dataset, scored_runs), columns=POOLED_COLUMNS),
    }
    tables["claims"] = claims_table(tables["paired_pooled"], params, dataset)
    out_dir = Path(out_dir)
    for stem, frame in tables.items():
        write_csv_atomic(frame, out_dir / f"{stem}.csv")
    # A missing run always gets the MPII metric rows, so counting pckh@0.5 rows counts runs.
    n_missing = sum(1 for r in per_joint if r["metric"] == METRICS[0] and r["status"] == STATUS_MISSING)
    log.info("summarized %d runs of %s (%d missing) into %s", len(experiments), dataset, n_missing, out_dir)
    return tables
