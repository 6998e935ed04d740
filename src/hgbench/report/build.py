"""The HTML report (``hgbench report``): summary CSVs → figures + one self-contained page.

Reads only ``results_dir/summary/<dataset>/`` (``*.csv`` written by :mod:`hgbench.summarize`, among
them ``claims.csv`` by :mod:`hgbench.claims`; ``costs.csv`` by :mod:`hgbench.costs`, ``gallery.h5``
by :mod:`hgbench.gallery`) for the datasets of the profile, plus the provenance of the checkout
that builds the page. A missing dataset summary, table or run shows as missing on the page. Tables
are prepared here as plain rows (display labels, formatting); what they say, e.g. which pair tests
a claim and its verdict, comes from the tables. The template only loops and formats.
"""

from __future__ import annotations

import math
from pathlib import Path

import jinja2
import pandas as pd

from hgbench import claims as claims_module
from hgbench import gallery
from hgbench.config import Params, as_dict
from hgbench.iofiles import atomic_path
from hgbench.joints import skeleton_limbs
from hgbench.kinds import FLIC, MPII, kind_of
from hgbench.metrics import PROTOCOLS
from hgbench.report import figures, provenance

GROUPS = figures.GROUPS
REQUIRED = {  # columns each summary table must have to be used (hgbench.summarize writes them)
    "per_joint": ("variant", "seed", "protocol", "metric", *GROUPS, "ablation", "auc", "status"),
    "curves": ("variant", "seed", "group", "threshold", "pckh"),
    "ablations": ("variant", "seed", "stacks", "stack", "ablation@0.5", "is_final"),
    "training": ("variant", "seed", "iteration", "train_loss"),
    "variants": ("variant", "label", "stacks", "modules", "features", "depth", "supervision", "params", "macs"),
    "seeds": ("variant", "metric", "quantity", "mean", "std", "n_seeds"),
    "claims": tuple(claims_module.COLUMNS),
    "costs": ("variant", "seed", "train_s", "train_max_rss_mb", "predict_ms_per_person"),
}


# The paper's published numbers (Newell et al., ECCV 2016: Table 1 FLIC, Table 2 MPII test, Fig. 9
# stack ablation) live with their dataset kind: hgbench.kinds.MPII/FLIC .paper_test, .paper_stacks.


def describe_protocol(name: str) -> str:
    """One sentence saying what a PCKh protocol name means (from :data:`hgbench.metrics.PROTOCOLS`)."""
    p = PROTOCOLS.get(name)
    if p is None:
        return f"'{name}': no description available (unknown protocol name)."
    if p.kind is FLIC:  # one fixed convention, not the PCKh variants below
        return (
            f"'{name}': PCK@0.2 of FLIC ({p.source}); a joint is correct when its distance to the "
            f"ground truth is at most 0.2 × the torso diagonal; Elbow and Wrist are the means of "
            f"left and right; observer-centric labels unless the dataset says otherwise."
        )
    norm = p.kind.normalizer
    threshold = f"inclusive: distance ≤ threshold × {norm}" if p.inclusive else f"strict: distance < threshold × {norm}"
    head = "Head = mean of neck and head top" if p.head == "neck+head" else "Head = head top only"
    scored = len(p.kind.joints) - len(p.unscored)
    mean = (
        f"Mean pooled over all scored instances of the {scored} joints"
        if p.mean == "pooled"
        else f"Mean = unweighted mean of the {scored} per-joint scores"
    )
    semantics = "the semantics of"
    unscored = (
        " and ".join({"pelv": "pelvis", "thrx": "thorax"}.get(j, j) for j in p.unscored) + " are never scored"
        if p.unscored
        else "every joint, pelvis and thorax included, is scored"
    )
    counted = {
        "annotated": "missing joints are skipped",
        "x_nonzero": "a joint counts when its ground-truth x is not 0",
        "coords_gt_1": "a joint counts only when both ground-truth coordinates are > 1",
    }[p.gt_rule]
    return (
        f"'{name}': {semantics} {p.source}; a joint is correct when its distance to the ground "
        f"truth is within the threshold, {threshold} ({norm} from {p.ground_truth}); "
        f"{head}; {mean}; {unscored}; {counted}; occluded joints are scored. Details: docs/evaluation.md."
    )


def _read_tables(folder: Path) -> dict[str, pd.DataFrame | None]:
    """Every summary table of one dataset; None for a missing, unreadable or malformed file."""
    tables = {}
    for stem, columns in REQUIRED.items():
        try:
            frame = pd.read_csv(folder / f"{stem}.csv")
        except (OSError, ValueError):
            frame = None
        tables[stem] = frame if frame is not None and set(columns) <= set(frame.columns) else None
    return tables


def _value(x) -> float | None:
    """A table cell as float, None for missing values (the template prints a dash)."""
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)


def _display_names(params: Params, variants: list[str]) -> dict[str, str]:
    """Variant → report label (the variant name is appended when two labels collide)."""
    labels = {v: params.variants[v].label or v for v in variants}
    counts = pd.Series(list(labels.values())).value_counts()
    return {v: (f"{lab} [{v}]" if counts[lab] > 1 and lab != v else lab) for v, lab in labels.items()}


def _expected_runs(tables: dict, stem: str, runs: set[tuple[str, int]]) -> pd.DataFrame:
    """Rows of a table that belong to the profile's runs (empty, with its columns, if none)."""
    frame = tables[stem]
    if frame is None or frame.empty:
        return pd.DataFrame(columns=list(REQUIRED[stem]))
    keys = list(zip(frame["variant"].astype(str), frame["seed"].astype(int)))
    return frame[[k in runs for k in keys]]


def _mean(values: pd.Series) -> float | None:
    """Mean of a column over seeds, None when there is no value."""
    values = pd.to_numeric(values, errors="coerce").dropna()
    return float(values.mean()) if len(values) else None


METRIC_LABELS = {"pckh@0.5": "PCKh@0.5", "pck@0.2": "PCK@0.2", "pckh@0.1": "PCKh@0.1"}


def _seed_stat(seeds: pd.DataFrame | None, variant: str, metric: str, quantity: str) -> float | None:
    """Std across seeds of one quantity from ``seeds.csv`` (None with fewer than two seeds)."""
    if seeds is None:
        return None
    row = seeds[(seeds["variant"] == variant) & (seeds["metric"] == metric) & (seeds["quantity"] == quantity)]
    return _value(pd.to_numeric(row["std"], errors="coerce").iloc[0]) if len(row) else None


def _score_rows(
    per_joint: pd.DataFrame,
    seeds: pd.DataFrame | None,
    variants: list[str],
    names: dict[str, str],
    expected: dict[str, int],
    headline: str,
) -> list[dict]:
    """One row per variant: headline group scores (mean over its scored seeds) with the std across
    seeds of Mean and of the ablation metric, PCKh@0.1 Mean, AUC."""
    ok = per_joint[per_joint["status"].astype(str) != "missing"]
    rows = []
    for v in variants:
        head = ok[(ok["variant"] == v) & (ok["metric"] == headline)]
        at01 = ok[(ok["variant"] == v) & (ok["metric"] == "pckh@0.1")]
        rows.append(
            {
                "label": names[v],
                "variant": v,
                "n": len(head),
                "n_expected": expected[v],
                "groups": [_mean(head[g]) for g in GROUPS],
                "mean_sd": _seed_stat(seeds, v, headline, "Mean"),
                "mean01": _mean(at01["Mean"]),
                "auc": _mean(head["auc"]),
                "ablation": _mean(head["ablation"]),
                "ablation_sd": _seed_stat(seeds, v, headline, "ablation"),
            }
        )
    return rows


def _column(frame: pd.DataFrame, name: str) -> pd.Series:
    """A numeric column, all-NaN when an older summary lacks it."""
    return pd.to_numeric(frame[name], errors="coerce") if name in frame else pd.Series(math.nan, index=frame.index)


def _run_rows(per_joint: pd.DataFrame, experiments, names: dict[str, str], headline: str) -> list[dict]:
    """One row per run of the profile: headline Mean and ablation metric with their 95 % bootstrap
    CIs over people, visible/occluded PCK, people scored, status (missing runs included)."""
    head = per_joint[per_joint["metric"] == headline]
    cols = {
        c: _column(head, c)
        for c in (
            "Mean",
            "Mean_ci_low",
            "Mean_ci_high",
            "ablation",
            "ablation_ci_low",
            "ablation_ci_high",
            "n_people",
            "visible",
            "occluded",
        )
    }
    index = {(str(v), int(s)): i for i, v, s in zip(head.index, head["variant"], head["seed"])}
    status = {(str(r.variant), int(r.seed)): str(r.status) for r in per_joint.itertuples()}
    rows = []
    for e in experiments:
        i = index.get((e.variant, e.seed))
        row = {"label": names[e.variant], "seed": e.seed, "status": status.get((e.variant, e.seed), "missing")}
        row.update({c: (_value(values.get(i)) if i is not None else None) for c, values in cols.items()})
        rows.append(row)
    return rows


def _is_true(x) -> bool:
    """A CSV boolean cell (pandas reads True/False, or strings when a column has gaps)."""
    return str(x).strip().lower() in ("true", "1", "1.0")


def _checked_verdict(r: dict, source) -> str:
    """The row's stored verdict, after checking it against the one its own CI gives
    (:func:`hgbench.claims.verdict`): an edited ``claims.csv`` would put a verdict on the page that
    its numbers do not support."""
    low, high = _value(r["ci_low"]), _value(r["ci_high"])
    derived = claims_module.verdict(low, high)
    if not _is_true(r["is_claim"]):
        derived = {
            claims_module.HOLDS: claims_module.FIRST_HIGHER,
            claims_module.REVERSED: claims_module.SECOND_HIGHER,
        }.get(derived, derived)
    if str(r["verdict"]) != derived:
        raise ValueError(
            f"{source}: the verdict {str(r['verdict'])!r} of {r['first']} vs {r['second']} ({r['quantity']}) does not "
            f"follow from its 95 % CI [{low}, {high}] ({derived!r}); rerun `hgbench summarize` to rewrite it"
        )
    return derived


def _claim_rows(claims: pd.DataFrame | None, names: dict[str, str], source="claims.csv") -> list[dict]:
    """The rows of ``claims.csv`` (written by ``hgbench summarize``, :mod:`hgbench.claims`) for the
    page: display labels for the variants, the per-seed differences and the quantity in words.
    Which pairs are claims, their orientation and verdicts are the table's; nothing is decided
    here. Rows of variants that are not in ``names`` (another profile's summary) are left out."""
    if claims is None:
        return []
    rows = []
    for r in claims.to_dict("records"):
        first, second = str(r["first"]), str(r["second"])
        if first not in names or second not in names:
            continue
        n_seeds = int(r["n_seeds"])
        agree = _value(r["seeds_agree"])
        words = _checked_verdict(r, source)
        words = {
            claims_module.FIRST_HIGHER: f"{names[first]} higher",
            claims_module.SECOND_HIGHER: f"{names[second]} higher",
        }.get(words, words)
        quantity, metric = str(r["quantity"]), str(r["metric"])
        rows.append(
            {
                "claim": str(r["claim"]),
                "is_claim": _is_true(r["is_claim"]),
                "higher": names[first],
                "other": names[second],
                "seeds": str(r["seeds"]),
                "n_seeds": n_seeds,
                "per_seed": ", ".join(f"{d:+.1f}" for d in _per_seed(r["per_seed"])),
                "seed_std": _value(r["seed_std"]),
                "agree": f"{int(agree)} of {n_seeds}" if agree is not None else None,
                "quantity": ("ablation metric" if quantity == "ablation" else quantity)
                + f" ({METRIC_LABELS.get(metric, metric)})",
                "diff": _value(r["diff"]),
                "low": _value(r["ci_low"]),
                "high": _value(r["ci_high"]),
                "p": _value(r["p"]),
                "verdict": words,
                "paper": _value(r["paper_diff"]),
            }
        )
    rows.sort(key=lambda x: (not x["is_claim"], x["claim"], x["higher"], x["other"], x["quantity"]))
    return rows


def _per_seed(text) -> list[float]:
    """The space-separated per-seed differences of a claims.csv row ([] when empty or unreadable)."""
    if text is None or (isinstance(text, float) and math.isnan(text)):
        return []
    try:
        return [float(x) for x in str(text).split()]
    except ValueError:
        return []


def _ablation_rows(ablations: pd.DataFrame, variants: list[str], names: dict[str, str], params: Params) -> list[dict]:
    """One row per variant: final-stack ablation metric (mean, sd, n seeds), halfway and every stack."""
    scored = ablations[pd.to_numeric(ablations["ablation@0.5"], errors="coerce").notna()]
    rows = []
    for v in variants:
        cfg = params.variants[v]
        run = scored[scored["variant"] == v].astype({"stack": int, "ablation@0.5": float})
        per_stack = run.groupby("stack")["ablation@0.5"].mean()
        final = run[run["is_final"].astype(str).str.lower() == "true"]["ablation@0.5"]
        half = cfg.stacks // 2 if cfg.stacks > 1 else None
        rows.append(
            {
                "label": names[v],
                "stacks": cfg.stacks,
                "modules": cfg.modules,
                "supervision": cfg.supervision,
                "n": len(final),
                "final": _mean(final),
                "sd": float(final.std()) if len(final) > 1 else None,
                "halfway": _value(per_stack.get(half)) if half else None,
                "per_stack": [(int(s), _value(a)) for s, a in per_stack.items()],
            }
        )
    return rows


def _card_rows(
    variants_table: pd.DataFrame | None,
    costs: pd.DataFrame | None,
    variants: list[str],
    names: dict[str, str],
    params: Params,
) -> list[dict]:
    """One model card per variant: architecture and counts (variants.csv), and what its runs cost
    (costs.csv, mean over seeds): Snakemake's benchmark when there is one, else the training log."""
    arch = {} if variants_table is None else {str(r["variant"]): r for r in variants_table.to_dict("records")}
    rows = []
    for v in variants:
        cfg = params.variants[v]
        run = costs[costs["variant"] == v] if costs is not None else pd.DataFrame()

        def mean(col, run=run):
            return _mean(run[col]) if col in run else None

        train_s, train_src = mean("train_s"), "Snakemake benchmark (whole job)"
        if train_s is None and mean("log_train_s") is not None:
            train_s, train_src = mean("log_train_s"), "training log (training loop only)"
        peak, peak_src = mean("train_max_rss_mb"), "peak RSS, benchmark"
        if peak is None and mean("log_peak_mem_mb") is not None:
            peak, peak_src = mean("log_peak_mem_mb"), "training log"
        devices = (
            sorted({d for cell in run["device"].dropna() for d in str(cell).split("; ") if d})
            if "device" in run
            else []
        )
        rows.append(
            {
                "label": names[v],
                "variant": v,
                "arch": f"{cfg.stacks}×{cfg.modules}, {cfg.features} features, depth {cfg.depth}",
                "supervision": cfg.supervision,
                "params": _value(arch.get(v, {}).get("params")),
                "macs": _value(arch.get(v, {}).get("macs")),
                "train_s": train_s,
                "train_source": train_src if train_s is not None else "",
                "peak_mb": peak,
                "peak_source": peak_src if peak is not None else "",
                "latency_ms": mean("predict_ms_per_person"),
                "images_per_s": mean("log_images_per_s"),
                "data_wait": mean("log_data_wait_share"),
                "device": "; ".join(devices) if devices else f"{params.device} (profile setting; not logged)",
            }
        )
    return rows


def _run_notes(per_joint: pd.DataFrame, experiments, names: dict[str, str]) -> list[str]:
    """One line for every run of the profile that is not complete in the summary."""
    # every row of a run carries the run's status (FLIC runs write pck@0.2 rows, missing ones pckh@0.5)
    status = {(str(r.variant), int(r.seed)): str(r.status) for r in per_joint.itertuples()}
    notes = []
    for e in experiments:
        state = status.get((e.variant, e.seed), "missing")
        if state != "ok":
            what = "training log missing (scores present)" if state == "no-log" else "no metrics (run missing)"
            notes.append(f"{names[e.variant]} ({e.variant}), seed {e.seed}: {what}")
    return notes


def _gallery_rows(found: dict | None, names: dict[str, str]) -> tuple[list[dict], list[str]]:
    """Figure rows (validation people per variant in display order, then every other source) and
    the labels of variants without gallery people."""
    if found is None:
        return [], list(names.values())
    cols = found["columns"]
    n = len(cols["variant"])

    def panel(i, prefix):
        return {
            "image": cols["images"][i],
            "gt": cols["gt"][i].astype(float),
            "pred": cols["pred"][i].astype(float),
            "caption": f"{prefix}error {cols['score'][i]:.2f} (#{cols['person'][i]}, s{cols['seed'][i]})",
        }

    rows, missing = [], []
    for v, label in names.items():
        picked = [i for i in range(n) if cols["source"][i] == "validation" and cols["variant"][i] == v]
        picked.sort(key=lambda i: gallery.CASES.index(cols["case"][i]) if cols["case"][i] in gallery.CASES else 9)
        if picked:
            rows.append({"title": label, "panels": [panel(i, f"{cols['case'][i]}: ") for i in picked]})
        else:
            missing.append(label)
    # Other sources (the real MPII images): one row per source and variant, the image name as case.
    for source in dict.fromkeys(s for s in cols["source"] if s != "validation"):
        for v in dict.fromkeys(cols["variant"][i] for i in range(n) if cols["source"][i] == source):
            picked = [i for i in range(n) if cols["source"][i] == source and cols["variant"][i] == v][:6]
            rows.append(
                {
                    "title": f"{source}\n{names.get(v, v)}",
                    "panels": [
                        {**panel(i, ""), "caption": f"{cols['case'][i]}: error {cols['score'][i]:.2f}"} for i in picked
                    ],
                }
            )
    return rows, missing


def _dataset_section(params: Params, dataset: str, folder: Path, fig_dir: Path) -> dict:
    """Everything the page shows for one dataset, from its summary folder (figures drawn here)."""
    cfg = params.datasets[dataset]
    experiments = params.experiments_for(dataset)
    variants = list(dict.fromkeys(e.variant for e in experiments))
    names = _display_names(params, variants)
    runs = {(e.variant, e.seed) for e in experiments}
    expected = {v: sum(e.variant == v for e in experiments) for v in variants}
    tables = _read_tables(folder)
    kind = kind_of(cfg.layout)
    headline = kind.headline  # the metric key of the dataset's headline rows (summarize writes it)
    section = {
        "name": dataset,
        "source": cfg.source,
        "synthetic": cfg.source == "synthetic",
        "flic": kind is FLIC,
        "layout": kind.name,
        "input_res": cfg.input_res,
        "folder": f"summary/{dataset}/",
        "found": any(t is not None for t in tables.values()),
        "missing_tables": [f"{s}.csv" for s, t in tables.items() if t is None],
        "n_runs": len(experiments),
        "metric": METRIC_LABELS[headline],
    }
    per_joint = _expected_runs(tables, "per_joint", runs)
    ablations = _expected_runs(tables, "ablations", runs)
    curves = _expected_runs(tables, "curves", runs)
    training = _expected_runs(tables, "training", runs)

    section["run_notes"] = _run_notes(per_joint, experiments, names)
    protocols = sorted({str(p) for p in per_joint["protocol"].dropna() if str(p)})
    section["protocol"] = ", ".join(protocols) or params.evaluate.protocol
    section["protocol_notes"] = [describe_protocol(p) for p in (protocols or [params.evaluate.protocol])]

    section["scores"] = _score_rows(per_joint, tables["seeds"], variants, names, expected, headline)
    section["paper_row"] = {"label": kind.paper_label, "groups": [kind.paper_test.get(g) for g in GROUPS]}
    section["runs"] = _run_rows(per_joint, experiments, names, headline)
    section["claims"] = _claim_rows(tables["claims"], names, folder / "claims.csv")
    section["ablations"] = _ablation_rows(ablations, variants, names, params)
    section["cards"] = _card_rows(tables["variants"], tables["costs"], variants, names, params)

    found = gallery.read_gallery(folder / "gallery.h5")
    rows, section["gallery_missing"] = _gallery_rows(found, names)
    section["gallery_found"] = found is not None
    section["gallery_definition"] = found["attrs"]["score_definition"] if found else ""
    joint_names = found["attrs"]["joint_names"] if found else []
    limbs = skeleton_limbs(joint_names)
    section["gallery_figure"] = _draw(
        fig_dir / f"{dataset}_gallery.png", lambda p: figures.gallery_figure(rows, limbs, p)
    )

    head = per_joint[(per_joint["metric"] == headline) & (per_joint["status"].astype(str) != "missing")]
    cis = pd.DataFrame(
        {
            "variant": head["variant"],
            "seed": head["seed"].astype(int),
            "low": _column(head, "ablation_ci_low"),
            "high": _column(head, "ablation_ci_high"),
        }
    )
    visibility = pd.DataFrame(
        {
            "variant": head["variant"],
            "seed": head["seed"],
            "visible": _column(head, "visible"),
            "occluded": _column(head, "occluded"),
        }
    )
    section["figures"] = _draw_figures(
        dataset,
        section,
        names,
        fig_dir,
        curves=curves,
        training=training,
        ablations=ablations,
        cis=cis,
        visibility=visibility,
    )
    return section


def _draw(path: Path, draw) -> dict | None:
    """Draw one figure; ``{"src"}`` when drawn, None (and no stale file) when there is no data."""
    if draw(path) is None:
        path.unlink(missing_ok=True)  # no stale figure from an earlier build
        return None
    return {"src": f"figures/{path.name}"}


def _draw_figures(
    dataset: str,
    section: dict,
    names: dict[str, str],
    fig_dir: Path,
    curves: pd.DataFrame,
    training: pd.DataFrame,
    ablations: pd.DataFrame,
    cis: pd.DataFrame,
    visibility: pd.DataFrame,
) -> list[dict]:
    """Draw a dataset's figures; return ``{src, alt, caption}`` for each one that has data."""
    heat = pd.DataFrame(
        {r["label"]: r["groups"] for r in section["scores"] if r["n"]}, index=list(GROUPS), dtype=float
    ).T
    metric = section["metric"]
    kind = kind_of(section["layout"])
    norm = kind.normalizer
    plan = [  # (file stem, drawing function, alt text, caption)
        (
            "pckh_curve",
            lambda p: figures.pckh_curve(curves, names, p, section["protocol"], norm=norm),
            "PCK curve: Mean PCK against the normalised distance threshold, per variant",
            f"PCK curve (Mean) against the distance threshold as a fraction of the {norm}; line: mean over "
            "seeds, band: range of seeds.",
        ),
        (
            "training",
            lambda p: figures.training_curves(training, names, p),
            "Training loss and validation accuracy against training iteration, per variant",
            "Training loss and final-stack validation accuracy during training (cf. the paper's Fig. 8). "
            f"Training-time accuracy is {kind.training_metric.label}, without flip test.",
        ),
        (
            "stack_training",
            lambda p: figures.stack_training_curves(training, names, p),
            "Loss and validation accuracy of every supervised output against training iteration",
            "Loss and validation accuracy of every intermediate output during training (cf. the paper's "
            "Fig. 8 and Fig. 9, right); drawn for variants that log more than one output.",
        ),
        (
            "ablation",
            lambda p: figures.ablation_chart(ablations, names, p, cis=cis),
            "Ablation chart: final-stack accuracy on wrists, elbows, knees and ankles per variant with 95% "
            "confidence intervals, and accuracy at each stack",
            "The paper's ablation metric (PCKh@0.5 over wrists, elbows, knees and ankles): final stack per "
            "variant, seeds as points with their 95 % bootstrap CI over people; right: accuracy at every "
            "intermediate stack.",
        ),
        (
            "visibility",
            lambda p: figures.visibility_chart(visibility, names, p, metric),
            "Accuracy on visible versus occluded joints, per variant",
            f"{metric} of joints annotated as visible vs occluded (occluded joints have coordinates and are "
            "scored; missing joints are not).",
        ),
        (
            "per_joint",
            lambda p: figures.per_joint_heat(heat, p, section["protocol"], metric=metric),
            f"Heat table of {metric} per joint group and variant",
            f"{metric} per joint group, mean over seeds.",
        ),
    ]
    drawn = []
    for stem, draw, alt, caption in plan:
        fig = _draw(fig_dir / f"{dataset}_{stem}.png", draw)
        if fig is not None:
            drawn.append({**fig, "alt": alt, "caption": caption})
    return drawn


TABLES_DIR = "tables"
"""Folder beside the report page (``reports/<profile>/tables/``) with each dataset's score table as
CSV and LaTeX, for papers."""
_TEX_ESCAPES = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "<": r"\textless{}",
    ">": r"\textgreater{}",
}


def _tex(text: str) -> str:
    """``text`` with LaTeX's special characters escaped (variant labels go into a tabular)."""
    return "".join(_TEX_ESCAPES.get(c, c) for c in str(text))


def score_table(section: dict) -> tuple[list[str], list[list]]:
    """The page's score table of one dataset as (header, rows): one row per variant (mean over its
    scored seeds, as on the page) and the paper's row; numbers in %, None where missing."""
    groups = list(GROUPS)
    header = ["variant", "label", "seeds", *groups, "Mean_sd", "Mean@0.1", "AUC", "ablation", "ablation_sd"]
    rows = [
        [
            r["variant"],
            r["label"],
            r["n"],
            *r["groups"],
            r["mean_sd"],
            r["mean01"],
            r["auc"],
            r["ablation"],
            r["ablation_sd"],
        ]
        for r in section["scores"]
    ]
    paper = section["paper_row"]
    rows.append(["paper", paper["label"], None, *paper["groups"], None, None, None, None, None])
    return header, rows


def write_score_tables(section: dict, folder: Path) -> dict[str, str]:
    """Write ``<dataset>_scores.csv`` (2 decimals) and ``<dataset>_scores.tex`` (1 decimal, a tabular
    like the MPII toolkit's ``genTablePCK``) into ``folder``; returns their page-relative links."""
    import csv
    import io

    header, rows = score_table(section)
    stem = f"{section['name']}_scores"
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["dataset", "metric", "protocol", *header])
    for row in rows:
        writer.writerow(
            [
                section["name"],
                section["metric"],
                section["protocol"],
                *("" if v is None else f"{v:.2f}" if isinstance(v, float) else v for v in row),
            ]
        )
    groups = list(GROUPS)
    cols = groups + ["AUC"]
    lines = [
        f"% {section['metric']} (%) on the validation split of {section['name']}, protocol {section['protocol']}; "
        f"mean over each variant's scored seeds; written by hgbench report",
        r"\begin{tabular}{l" + "r" * len(cols) + "}",
        r"\hline",
        "Setting & " + " & ".join(cols) + r" \\",
        r"\hline",
    ]
    for row in rows:
        values = dict(zip(header, row))
        cells = [_fmt(values[c]) if values[c] is not None else "--" for c in cols]
        lines.append(f"{_tex(values['label'])} & " + " & ".join(cells) + r" \\")
    lines += [r"\hline", r"\end{tabular}", ""]
    folder.mkdir(parents=True, exist_ok=True)
    links = {}
    for ext, text in (("csv", buf.getvalue()), ("tex", "\n".join(lines))):
        with atomic_path(folder / f"{stem}.{ext}") as tmp:
            tmp.write_text(text, encoding="utf-8")
        links[ext] = f"{TABLES_DIR}/{stem}.{ext}"
    return links


def _fmt(x, digits: int = 1, scale: float = 1.0) -> str:
    """Number for the page with ``digits`` decimals; a dash for a missing value."""
    return "—" if _value(x) is None else f"{x / scale:.{digits}f}"


def _sig(x, scale: float = 1.0) -> str:
    """Three significant digits (parameter and MAC counts span 0.001 to 100 M); a dash if missing."""
    return "—" if _value(x) is None else f"{x / scale:#.3g}".rstrip(".")


def _ci(low, high, digits: int = 1) -> str:
    """A confidence interval as ``[low, high]``; a dash when either end is missing."""
    return "—" if _value(low) is None or _value(high) is None else f"[{low:.{digits}f}, {high:.{digits}f}]"


def _pvalue(p) -> str:
    """A p-value with three decimals, ``<0.001`` below that (a bootstrap cannot resolve smaller)."""
    if _value(p) is None:
        return "—"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def _duration(seconds) -> str:
    """Seconds as ``42 s``, ``9 min 11 s`` or ``3.2 h``; a dash if missing."""
    if _value(seconds) is None:
        return "—"
    s = float(seconds)
    if s < 60:
        return f"{s:.0f} s"
    if s < 3600:
        return f"{int(s // 60)} min {int(round(s % 60))} s"
    return f"{s / 3600:.1f} h"


def build_report(
    params: Params, results_dir: Path, out_html: Path, params_file: str | None = None, root: Path | None = None
) -> Path:
    """Write the report page ``out_html`` and its figures in ``out_html.parent/figures/``.

    ``params_file`` (the profile path the commands were given) and ``root`` (the project checkout,
    default the current directory) feed the provenance section.
    """
    out_html = Path(out_html)
    summary = Path(results_dir) / "summary"
    if not any((summary / d).is_dir() for d in params.datasets):
        # A missing dataset is shown as missing; no dataset at all is a wrong --results (or a
        # report asked for before the pipeline ran), not an empty result.
        raise FileNotFoundError(
            f"{summary}: no summary of any dataset of profile {params.profile!r} "
            f"({', '.join(params.datasets)}); run `hgbench summarize` (or the pipeline) "
            f"first, or give the profile's results folder as --results"
        )
    out_html.parent.mkdir(parents=True, exist_ok=True)
    fig_dir = out_html.parent / "figures"
    sections = [_dataset_section(params, d, summary / d, fig_dir) for d in params.datasets]
    for section in sections:  # the score tables also as files, for papers (linked from the page)
        section["table_files"] = write_score_tables(section, out_html.parent / TABLES_DIR)
    prov = provenance.collect(Path(root) if root else Path.cwd(), params_file or "params.yaml", as_dict(params))
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["fmt"] = _fmt
    env.filters["sig"] = _sig
    env.filters["duration"] = _duration
    env.filters["pvalue"] = _pvalue
    env.globals["ci"] = _ci
    html = env.get_template("index.html.j2").render(
        title=params.report_title or f"Stacked Hourglass benchmark: profile {params.profile}",
        profile=params.profile,
        description=params.description,
        sections=sections,
        groups=GROUPS,
        paper_mpii=[MPII.paper_test[g] for g in GROUPS],
        paper_stacks=MPII.paper_stacks,
        paper_flic=FLIC.paper_test,
        flip_test=params.predict.flip_test,
        prov=prov,
    )
    with atomic_path(out_html) as tmp:
        tmp.write_text(html, encoding="utf-8")
    return out_html
