"""The HTML report (``hgbench report``): summary CSVs → figures + one self-contained page.

Reads only ``results_dir/summary/<dataset>/*.csv`` (written by :mod:`hgbench.summarize`) for the
datasets of the profile. A missing dataset summary, table or run shows as missing on the page.
Tables are prepared here as plain rows; the template only loops and formats.
"""

from __future__ import annotations

import math
from pathlib import Path

import jinja2
import pandas as pd

from hgbench.config import Params
from hgbench.iofiles import atomic_path
from hgbench.metrics import PROTOCOLS
from hgbench.report import figures

GROUPS = figures.GROUPS
REQUIRED = {  # columns each summary table must have to be used (hgbench.summarize writes them)
    "per_joint": ("variant", "seed", "protocol", "metric", *GROUPS, "ablation", "auc", "status"),
    "curves": ("variant", "seed", "group", "threshold", "pckh"),
    "ablations": ("variant", "seed", "stacks", "stack", "ablation@0.5", "is_final"),
    "training": ("variant", "seed", "iteration", "train_loss"),
    "variants": ("variant", "label", "stacks", "modules", "features", "depth", "supervision",
                 "params", "macs"),
}

# The paper's published numbers (REFERENCE.md §1; Newell et al., ECCV 2016).
PAPER_MPII_TEST = {"Head": 98.2, "Shoulder": 96.3, "Elbow": 91.2, "Wrist": 87.1, "Hip": 90.1,
                   "Knee": 87.4, "Ankle": 83.6, "Mean": 90.9}
PAPER_STACKS = [  # Fig. 9: equal capacity, intermediate supervision, MPII validation
    {"stacks": 2, "modules": 4, "final": 87.4, "halfway": 84.6},
    {"stacks": 4, "modules": 2, "final": 87.8, "halfway": 86.5},
    {"stacks": 8, "modules": 1, "final": 88.1, "halfway": 87.1},
]
PAPER_FLIC = {"Elbow": 99.0, "Wrist": 97.0}  # Table 1, PCK@0.2, observer-centric


def describe_protocol(name: str) -> str:
    """One sentence saying what a PCKh protocol name means (from :data:`hgbench.metrics.PROTOCOLS`)."""
    p = PROTOCOLS.get(name)
    if p is None:
        return f"'{name}': no description available (unknown protocol name)."
    threshold = ("inclusive: distance ≤ threshold × head size" if p.inclusive
                 else "strict: distance < threshold × head size")
    head = "Head = mean of neck and head top" if p.head == "neck+head" else "Head = head top only"
    mean = ("Mean pooled over all scored instances of the 14 joints" if p.mean == "pooled"
            else "Mean = unweighted mean of the 14 per-joint scores")
    semantics = "official MPII toolkit semantics" if name == "official" else f"semantics of {p.source}"
    return (f"'{name}': {semantics} ({p.source}); a joint is correct when its distance to the ground "
            f"truth is within the threshold, {threshold} (head size = 0.6 × head-box diagonal); "
            f"{head}; {mean}; pelvis and thorax are never scored, missing joints are skipped and "
            f"occluded joints are scored.")


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


def _score_rows(per_joint: pd.DataFrame, variants: list[str], names: dict[str, str],
                expected: dict[str, int]) -> list[dict]:
    """One row per variant: group scores at 0.5 (mean over its scored seeds), Mean@0.1, AUC, ablation."""
    ok = per_joint[per_joint["status"].astype(str) != "missing"]
    rows = []
    for v in variants:
        at05 = ok[(ok["variant"] == v) & (ok["metric"] == "pckh@0.5")]
        at01 = ok[(ok["variant"] == v) & (ok["metric"] == "pckh@0.1")]
        rows.append({
            "label": names[v], "variant": v, "n": len(at05), "n_expected": expected[v],
            "groups": [_mean(at05[g]) for g in GROUPS], "mean01": _mean(at01["Mean"]),
            "auc": _mean(at05["auc"]), "ablation": _mean(at05["ablation"]),
        })
    return rows


def _ablation_rows(ablations: pd.DataFrame, variants: list[str], names: dict[str, str],
                   params: Params) -> list[dict]:
    """One row per variant: final-stack ablation metric (mean, sd, n seeds), halfway and every stack."""
    scored = ablations[pd.to_numeric(ablations["ablation@0.5"], errors="coerce").notna()]
    rows = []
    for v in variants:
        cfg = params.variants[v]
        run = scored[scored["variant"] == v].astype({"stack": int, "ablation@0.5": float})
        per_stack = run.groupby("stack")["ablation@0.5"].mean()
        final = run[run["is_final"].astype(str).str.lower() == "true"]["ablation@0.5"]
        half = cfg.stacks // 2 if cfg.stacks > 1 else None
        rows.append({
            "label": names[v], "stacks": cfg.stacks, "modules": cfg.modules, "supervision": cfg.supervision,
            "n": len(final), "final": _mean(final), "sd": float(final.std()) if len(final) > 1 else None,
            "halfway": _value(per_stack.get(half)) if half else None,
            "per_stack": [(int(s), _value(a)) for s, a in per_stack.items()],
        })
    return rows


def _run_notes(per_joint: pd.DataFrame, experiments, names: dict[str, str]) -> list[str]:
    """One line for every run of the profile that is not complete in the summary."""
    at05 = per_joint[per_joint["metric"] == "pckh@0.5"]
    status = {(str(r.variant), int(r.seed)): str(r.status) for r in at05.itertuples()}
    notes = []
    for e in experiments:
        state = status.get((e.variant, e.seed), "missing")
        if state != "ok":
            what = "training log missing (scores present)" if state == "no-log" else "no metrics (run missing)"
            notes.append(f"{names[e.variant]} ({e.variant}), seed {e.seed}: {what}")
    return notes


def _dataset_section(params: Params, dataset: str, folder: Path, fig_dir: Path) -> dict:
    """Everything the page shows for one dataset, from its summary folder (figures drawn here)."""
    cfg = params.datasets[dataset]
    experiments = params.experiments_for(dataset)
    variants = list(dict.fromkeys(e.variant for e in experiments))
    names = _display_names(params, variants)
    runs = {(e.variant, e.seed) for e in experiments}
    expected = {v: sum(e.variant == v for e in experiments) for v in variants}
    tables = _read_tables(folder)
    section = {"name": dataset, "source": cfg.source, "synthetic": cfg.source == "synthetic",
               "input_res": cfg.input_res, "folder": f"summary/{dataset}/",
               "found": any(t is not None for t in tables.values()),
               "missing_tables": [f"{s}.csv" for s, t in tables.items() if t is None],
               "n_runs": len(experiments)}
    per_joint = _expected_runs(tables, "per_joint", runs)
    ablations = _expected_runs(tables, "ablations", runs)
    curves = _expected_runs(tables, "curves", runs)
    training = _expected_runs(tables, "training", runs)

    section["run_notes"] = _run_notes(per_joint, experiments, names)
    protocols = sorted({str(p) for p in per_joint["protocol"].dropna() if str(p)})
    section["protocol"] = ", ".join(protocols) or params.evaluate.protocol
    section["protocol_notes"] = [describe_protocol(p) for p in (protocols or [params.evaluate.protocol])]

    section["scores"] = _score_rows(per_joint, variants, names, expected)
    section["ablations"] = _ablation_rows(ablations, variants, names, params)
    vt = tables["variants"]
    section["variants"] = ([] if vt is None else
                           [{**r, "label": names.get(r["variant"], r["label"])}
                            for r in vt[vt["variant"].isin(variants)].to_dict("records")])

    section["figures"] = _draw_figures(params, dataset, section, names, fig_dir, curves=curves,
                                       training=training, ablations=ablations)
    return section


def _draw_figures(params: Params, dataset: str, section: dict, names: dict[str, str], fig_dir: Path,
                  curves: pd.DataFrame, training: pd.DataFrame, ablations: pd.DataFrame) -> list[dict]:
    """Draw a dataset's figures; return ``{src, alt, caption}`` for each one that has data."""
    heat = pd.DataFrame({r["label"]: r["groups"] for r in section["scores"] if r["n"]},
                        index=list(GROUPS), dtype=float).T
    stacks = {v: params.variants[v].stacks for v in names}
    plan = [  # (file stem, drawing function, alt text, caption)
        ("pckh_curve", lambda p: figures.pckh_curve(curves, names, p, section["protocol"]),
         "PCKh curve: Mean PCKh against the normalised distance threshold, per variant",
         "PCKh curve (Mean, 14 joints) against the distance threshold as a fraction of the head size."),
        ("training", lambda p: figures.training_curves(training, names, p),
         "Training loss and validation accuracy against training iteration, per variant",
         "Training loss and final-stack validation accuracy during training (cf. the paper's Fig. 8). "
         "Training-time accuracy uses the ablation joints, without flip test."),
        ("stack_training", lambda p: figures.stack_training_curves(training, names, stacks, p),
         "Validation accuracy of every stack against training iteration, per multi-stack variant",
         "Validation accuracy of every intermediate stack during training (cf. the paper's Fig. 9, right)."),
        ("ablation", lambda p: figures.ablation_chart(ablations, names, p),
         "Ablation chart: final-stack accuracy on wrists, elbows, knees and ankles per variant, and "
         "accuracy at each stack",
         "The paper's ablation metric (PCKh@0.5 over wrists, elbows, knees and ankles): final stack "
         "per variant, seeds as points, and the accuracy at every stack."),
        ("per_joint", lambda p: figures.per_joint_heat(heat, p, section["protocol"]),
         "Heat table of PCKh@0.5 per joint group and variant",
         "PCKh@0.5 per joint group, mean over seeds."),
    ]
    drawn = []
    for stem, draw, alt, caption in plan:
        path = fig_dir / f"{dataset}_{stem}.png"
        if draw(path) is None:
            path.unlink(missing_ok=True)  # no stale figure from an earlier build
        else:
            drawn.append({"src": f"figures/{path.name}", "alt": alt, "caption": caption})
    return drawn


def _fmt(x, digits: int = 1, scale: float = 1.0) -> str:
    """Number for the page with ``digits`` decimals; a dash for a missing value."""
    return "—" if _value(x) is None else f"{x / scale:.{digits}f}"


def _sig(x, scale: float = 1.0) -> str:
    """Three significant digits (parameter and MAC counts span 0.001 to 100 M); a dash if missing."""
    return "—" if _value(x) is None else f"{x / scale:#.3g}".rstrip(".")


def build_report(params: Params, results_dir: Path, out_html: Path) -> Path:
    """Write the report page ``out_html`` and its figures in ``out_html.parent/figures/``."""
    out_html = Path(out_html)
    out_html.parent.mkdir(parents=True, exist_ok=True)
    fig_dir = out_html.parent / "figures"
    summary = Path(results_dir) / "summary"
    sections = [_dataset_section(params, d, summary / d, fig_dir) for d in params.datasets]
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
                             autoescape=True, undefined=jinja2.StrictUndefined,
                             trim_blocks=True, lstrip_blocks=True)
    env.filters["fmt"] = _fmt
    env.filters["sig"] = _sig
    html = env.get_template("index.html.j2").render(
        title=params.report_title or f"Stacked Hourglass benchmark: profile {params.profile}",
        profile=params.profile, description=params.description, sections=sections, groups=GROUPS,
        paper_mpii=[PAPER_MPII_TEST[g] for g in GROUPS], paper_stacks=PAPER_STACKS, paper_flic=PAPER_FLIC,
        flip_test=params.predict.flip_test,
    )
    with atomic_path(out_html) as tmp:
        tmp.write_text(html, encoding="utf-8")
    return out_html
