"""Tabulate the difficulty-knob sweep of the synthetic generator (issue 9, docs/laptop.md).

    snakemake --cores 2 --resources gpu=1 --configfile params/calibration.yaml
    .venv/bin/python bench/synthetic_calibration.py [--params params/calibration.yaml] [--summary results/summary]

Reads each dataset's ``per_joint.csv`` and ``paired_pooled.csv`` written by ``hgbench summarize``
and prints one markdown row per dataset: the knob that differs from the base dataset, PCKh@0.5
Mean, the paper's ablation metric, Shoulder and Hip (the joints a left/right swap breaks),
occluded-joint PCKh of every variant, and the stacked − single-hourglass difference with its
paired-bootstrap 95 % CI. The same rows go to ``bench/results/synthetic_calibration.csv``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from hgbench.config import load_params

ROOT = Path(__file__).resolve().parents[1]
KNOBS = ("occluders", "distractors", "clutter", "lr_cue", "rotation", "missing_rate")


def changed_knobs(base, other) -> str:
    """'knob base → value' for every difficulty knob in which ``other`` differs from ``base``."""
    diffs = [
        f"{k} {getattr(base, k):g} → {getattr(other, k):g}" for k in KNOBS if getattr(base, k) != getattr(other, k)
    ]
    return ", ".join(diffs) or "(base)"


def calibration_rows(params_path: Path, summary: Path, base: str = "cal-base") -> pd.DataFrame:
    """One row per dataset × variant of the calibration profile, with the pooled gap per dataset."""
    params = load_params(params_path)
    base_cfg = params.datasets[base].synthetic
    rows = []
    for name, ds in params.datasets.items():
        folder = summary / name
        try:
            per_joint = pd.read_csv(folder / "per_joint.csv")
            pooled = pd.read_csv(folder / "paired_pooled.csv")
        except (OSError, ValueError):
            rows.append({"dataset": name, "knobs": changed_knobs(base_cfg, ds.synthetic), "status": "missing"})
            continue
        head = per_joint[per_joint["metric"] == "pckh@0.5"]
        gap = pooled[pooled["quantity"] == "Mean"]
        for r in head.itertuples():
            row = {
                "dataset": name,
                "knobs": changed_knobs(base_cfg, ds.synthetic),
                "status": r.status,
                "variant": r.variant,
                "seed": r.seed,
                "Mean": r.Mean,
                "ablation": r.ablation,
                "Shoulder": r.Shoulder,
                "Hip": r.Hip,
                "Head": r.Head,
                "occluded": r.occluded,
                "visible": r.visible,
            }
            for g in gap.itertuples():  # orient as (more stacks − fewer): the paper's direction
                a, b = params.variants[g.variant_a], params.variants[g.variant_b]
                sign = 1 if a.stacks > b.stacks else -1
                lo, hi = sorted((sign * g.ci_low, sign * g.ci_high))
                row.update(
                    {
                        "gap": sign * g.diff,
                        "gap_low": lo,
                        "gap_high": hi,
                        "gap_pair": f"{g.variant_a if sign > 0 else g.variant_b} − "
                        f"{g.variant_b if sign > 0 else g.variant_a}",
                    }
                )
            rows.append(row)
    return pd.DataFrame(rows)


def markdown(frame: pd.DataFrame) -> str:
    """The docs table: one line per dataset, the variants side by side."""
    variants = [v for v in frame.get("variant", pd.Series(dtype=str)).dropna().unique()]
    head = (
        "| dataset | knob changed | "
        + " | ".join(f"Mean {v}" for v in variants)
        + " | "
        + " | ".join(f"Sho/Hip {v}" for v in variants)
        + " | "
        + " | ".join(f"occluded {v}" for v in variants)
        + " | stacked − single, 95 % CI |"
    )
    lines = [head, "|" + "---|" * (3 + 3 * len(variants))]
    for name, runs in frame.groupby("dataset", sort=False):
        by_v = {r.variant: r for r in runs.itertuples()} if "variant" in runs else {}
        cells = [name, runs["knobs"].iloc[0]]
        cells += [f"{by_v[v].Mean:.1f}" if v in by_v else "–" for v in variants]
        cells += [f"{by_v[v].Shoulder:.0f}/{by_v[v].Hip:.0f}" if v in by_v else "–" for v in variants]
        cells += [f"{by_v[v].occluded:.1f}" if v in by_v else "–" for v in variants]
        first = runs.iloc[0]
        cells.append(
            f"{first['gap']:+.1f} [{first['gap_low']:+.1f}, {first['gap_high']:+.1f}]"
            if "gap" in runs and pd.notna(first.get("gap"))
            else "–"
        )
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", type=Path, default=ROOT / "params" / "calibration.yaml")
    parser.add_argument("--summary", type=Path, default=ROOT / "results" / "summary")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "synthetic_calibration.csv")
    args = parser.parse_args()
    frame = calibration_rows(args.params, args.summary)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(args.out, index=False)
    print(markdown(frame))


if __name__ == "__main__":
    main()
