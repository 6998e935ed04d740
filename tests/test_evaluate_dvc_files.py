"""The files `hgbench evaluate` writes for DVC: the headline metric (``--headline``) and the curve
plot (``--curve``), checked against the full metrics.json of the same run."""

import csv
import json
from pathlib import Path

from conftest import ROOT, run

REF = Path(__file__).parent / "data" / "reference"


def test_headline_and_curve_files_repeat_the_metrics_of_the_run(tmp_path):
    out, headline, curve = tmp_path / "metrics.json", tmp_path / "headline.json", tmp_path / "curve.csv"
    run(
        [
            "hgbench",
            "evaluate",
            "--ground-truth",
            str(REF / "detections_our_format.mat"),
            "--predictions",
            str(REF / "eval-mpii-pose_newell.h5"),
            "--out",
            str(out),
            "--headline",
            str(headline),
            "--curve",
            str(curve),
        ],
        ROOT,
    )
    full, head = json.loads(out.read_text()), json.loads(headline.read_text())
    assert head["pckh@0.5"] == full["pckh@0.5"] and round(head["pckh@0.5"]["Mean"], 2) == 88.43
    assert head["AUC"] == full["auc"] and head["ablation"] == full["ablation@0.5"]
    ci = full["ci95"]["Mean"]
    assert (head["Mean_low"], head["Mean_high"]) == (ci["low"], ci["high"])
    leaves = sum(len(v) if isinstance(v, dict) else 1 for v in head.values())
    assert leaves == 12  # Head … Ankle, Mean, AUC, ablation, the CI's two ends
    rows = list(csv.DictReader(curve.open()))
    assert [float(r["threshold"]) for r in rows] == full["curve"]["thresholds"]
    assert [round(float(r["Mean"]), 4) for r in rows] == [round(v, 4) for v in full["curve"]["Mean"]]
    assert rows[0].keys() == {"threshold", *(k for k in full["curve"] if k != "thresholds")}


def test_an_output_that_is_an_input_is_refused(tmp_path):
    preds = tmp_path / "p.h5"
    preds.write_bytes((REF / "eval-mpii-pose_newell.h5").read_bytes())
    proc = run(
        [
            "hgbench",
            "evaluate",
            "--ground-truth",
            str(REF / "detections_our_format.mat"),
            "--predictions",
            str(preds),
            "--out",
            str(tmp_path / "m.json"),
            "--headline",
            str(preds),
        ],
        ROOT,
        check=False,
    )
    assert proc.returncode == 2 and "is an input" in proc.stderr
    assert preds.read_bytes() == (REF / "eval-mpii-pose_newell.h5").read_bytes()
    assert not (tmp_path / "m.json").exists()
