"""The smoke profile end to end, through the real command lines: snakemake, dvc repro, hgbench."""

import json

import h5py
import numpy as np

from conftest import ROOT, run


def check_outputs(cwd):
    with h5py.File(cwd / "results/smoke/summary/smoke/gallery.h5") as f:
        sources = [s.decode() for s in f["source"][()]]
        # validation best/median/worst for both variants, and both models on the 5 real MPII images
        assert sources.count("validation") == 6 and sources.count("real MPII image") == 10
    metrics = json.loads((cwd / "results/smoke/smoke/hg2x1/s0/metrics.json").read_text())
    assert metrics["protocol"] == "official"
    assert set(metrics["pckh@0.5"]) == {"Head", "Shoulder", "Elbow", "Wrist", "Hip", "Knee", "Ankle", "Mean"}
    assert 0 <= metrics["pckh@0.5"]["Mean"] <= 100
    assert [s["stack"] for s in metrics["per_stack"]] == [1, 2]
    with h5py.File(cwd / "results/smoke/smoke/hg2x1/s0/predictions.h5") as f:
        preds = f["preds"][()]
    with h5py.File(cwd / "data/processed/smoke/smoke/valid.h5") as f:
        assert preds.shape == f["joints_image"].shape
    assert np.isfinite(preds).all()
    html = (cwd / "reports/smoke/index.html").read_text()
    assert "hg2x1" in html and "official" in html
    for name in ("per_joint", "curves", "ablations", "training", "variants"):
        assert (cwd / f"results/smoke/summary/smoke/{name}.csv").stat().st_size > 0


def test_smoke_profile_through_snakemake(finished_smoke):
    cwd = finished_smoke
    check_outputs(cwd)
    # Up to date: a second run has nothing to do.
    proc = run(["snakemake", "-n", "--configfile", "params/smoke.yaml"], cwd)
    assert "Nothing to be done" in proc.stdout + proc.stderr


def test_smoke_profile_through_dvc_repro(project):
    cwd = project("smoke")
    run(["dvc", "repro", "--quiet"], cwd)
    check_outputs(cwd)
    lock = (cwd / "dvc.lock").read_text()
    assert "models/smoke/smoke/hg2x1/s0/model.pt" in lock and "md5" in lock
    status = run(["dvc", "status"], cwd).stdout
    assert "up to date" in status


def test_cli_errors_are_one_clear_line(tmp_path):
    proc = run(["hgbench", "describe", "--params", str(tmp_path / "missing.yaml")], ROOT, check=False)
    assert proc.returncode == 2
    assert "not found" in proc.stderr and "Traceback" not in proc.stderr
    proc = run(
        [
            "hgbench",
            "train",
            "--params",
            "params/smoke.yaml",
            "--dataset",
            "smoke",
            "--variant",
            "nope",
            "--seed",
            "0",
            "--data",
            str(tmp_path),
            "--out",
            str(tmp_path / "m"),
        ],
        ROOT,
        check=False,
    )
    assert proc.returncode == 2 and "'nope'" in proc.stderr and "hg1x2" in proc.stderr
    proc = run(
        [
            "hgbench",
            "evaluate",
            "--ground-truth",
            str(tmp_path / "gt.h5"),
            "--predictions",
            str(tmp_path / "p.h5"),
            "--out",
            str(tmp_path / "m.json"),
        ],
        ROOT,
        check=False,
    )
    assert proc.returncode == 2 and "gt.h5" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "m.json").exists()


def test_describe_json_matches_the_paper_counts():
    rows = json.loads(run(["hgbench", "describe", "--params", "params/paper.yaml", "--json"], ROOT).stdout)
    by = {(r["dataset"], r["variant"]): r for r in rows}
    assert round(by["mpii", "hg8"]["params"] / 1e6, 2) == 25.43
    assert round(by["mpii", "hg4x2"]["params"] / 1e6, 2) == 24.87
    assert round(by["mpii", "hg2x4"]["params"] / 1e6, 2) == 24.59
    assert abs(by["mpii", "hg8"]["macs"] / 1e9 - 27.4) < 0.05
    assert set(rows[0]) >= {"variant", "params", "macs"}
