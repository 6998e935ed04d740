"""summarize: fake results/models trees in the documented formats → the five CSV tables.

The fake metrics.json files are produced by :func:`hgbench.metrics.pckh` on made-up predictions, so
they have exactly the format ``evaluate`` writes. The helpers here are also used by test_report.py.
"""

from __future__ import annotations

import copy
import csv
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hgbench import summarize as summarize_module
from hgbench.config import params_from_dict
from hgbench.evaluate import confidence_intervals
from hgbench.joints import MPII_JOINTS
from hgbench.metrics import PROTOCOLS, pckh
from hgbench.runs import RunFileError, write_metrics
from hgbench.summarize import GROUPS, summarize

EVIL_LABEL = "<script>alert('x')</script> $HG$"

PROFILE = {
    "profile": "tiny",
    "description": "tiny fake profile for tests",
    "device": "cpu",
    "datasets": {
        "synth": {
            "source": "synthetic",
            "input_res": 64,
            "output_res": 16,
            "crop_margin": 1.25,
            "synthetic": {
                "seed": 0,
                "n_train": 4,
                "n_valid": 4,
                "image_size": 128,
                "person_height": [60, 100],
                "rotation": 10,
                "occluders": 0.5,
                "distractors": 0.2,
                "clutter": 1,
                "lr_cue": 0.5,
                "missing_rate": 0.05,
            },
        },
        "mpii": {"source": "mpii", "input_res": 64, "output_res": 16, "crop_margin": 1.25},
    },
    "variants": {
        "hg1": {"stacks": 1, "modules": 1, "features": 32, "depth": 2, "supervision": "all", "label": "HG"},
        "hg2": {"stacks": 2, "modules": 1, "features": 32, "depth": 2, "supervision": "all", "label": "HG-Stacked-Int"},
        "evil": {"stacks": 1, "modules": 1, "features": 16, "depth": 2, "supervision": "last", "label": EVIL_LABEL},
    },
    "experiments": [
        {"dataset": "synth", "variant": "hg1", "seed": 0},
        {"dataset": "synth", "variant": "hg1", "seed": 1},
        {"dataset": "synth", "variant": "hg2", "seed": 0},
        {"dataset": "synth", "variant": "hg2", "seed": 1},  # metrics.json missing
        {"dataset": "synth", "variant": "evil", "seed": 0},  # log.csv missing
        {"dataset": "mpii", "variant": "hg2", "seed": 0},
    ],
    "submissions": [],
    "train": {
        "epochs": 3,
        "batch_size": 2,
        "optimizer": "rmsprop",
        "lr": 2.5e-4,
        "lr_drop_epochs": [2],
        "lr_drop_factor": 0.2,
        "sigma": 1.0,
        "rotation": 30,
        "scale": 0.25,
        "flip": True,
        "lr_schedule": "steps",
        "plateau_patience": 5,
        "color_jitter": 0.0,
        "precision": "fp32",
        "threads": 1,
        "workers": 0,
    },
    "predict": {"flip_test": True, "batch_size": 2},
    "evaluate": {"protocol": "official"},
    "report": {"title": "Tiny test report"},
}

MISSING_METRICS = {("synth", "hg2", 1)}
MISSING_LOG = {("synth", "evil", 0)}
QUALITY = {"hg1": 0.35, "hg2": 0.25, "evil": 0.5}
"""Std of the fake prediction error in head sizes (smaller = better variant)."""


def make_params(raw: dict | None = None):
    return params_from_dict(copy.deepcopy(raw or PROFILE), "test-profile")


def fake_metrics(dataset: str, variant: str, seed: int, stacks: int, n: int = 40) -> dict:
    """A metrics.json dict as ``evaluate`` writes it, from made-up predictions."""
    rng = np.random.default_rng([seed, len(variant), stacks])
    gt = rng.uniform(50, 400, size=(n, len(MPII_JOINTS), 2))
    missing = rng.random((n, len(MPII_JOINTS))) < 0.05
    gt[missing] = np.nan
    visible = ~missing & (rng.random((n, len(MPII_JOINTS))) < 0.8)
    norm = np.full(n, 40.0)
    scale = QUALITY[variant] * 40.0
    stack_preds = [gt + rng.normal(0, scale * (1 + 0.5 * (stacks - 1 - k)), gt.shape) for k in range(stacks)]
    out = {
        "protocol": "official",
        "run": {"dataset": dataset, "variant": variant, "seed": seed},
        "ground_truth": "gt.h5",
        "predictions": "predictions.h5",
    }
    out.update(pckh(stack_preds[-1], gt, missing, norm, visible=visible))
    out["ci95"] = confidence_intervals(out["per_person"], PROTOCOLS["official"], n_boot=200)
    out["per_stack"] = []
    for k, p in enumerate(stack_preds):
        s = pckh(p, gt, missing, norm, thresholds=[0.5])
        out["per_stack"].append({"stack": k + 1, "mean@0.5": s["pckh@0.5"]["Mean"], "ablation@0.5": s["ablation@0.5"]})
    return out


def write_log(path: Path, stacks: int, epochs: int = 4, seed: int = 0, skill: float = 1.0) -> None:
    """A log.csv in the documented column layout (one row per epoch)."""
    cols = (
        ["epoch", "iteration", "lr", "train_loss"]
        + [f"train_loss_s{k}" for k in range(1, stacks + 1)]
        + ["valid_acc"]
        + [f"valid_acc_s{k}" for k in range(1, stacks + 1)]
        + ["images_per_s", "data_wait_share", "wall_s"]
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(cols)
        for e in range(1, epochs + 1):
            losses = [0.01 / (skill * e) * (1 + 0.2 * (stacks - k)) + 0.0001 * seed for k in range(1, stacks + 1)]
            accs = [min(95.0, 20 + 15 * skill * e - 5 * (stacks - k) + seed) for k in range(1, stacks + 1)]
            w.writerow([e, 50 * e, 2.5e-4, sum(losses), *losses, accs[-1], *accs, 120.5, 0.1, 3.2 * e])


def write_fake_tree(root: Path, params, skip_metrics=MISSING_METRICS, skip_logs=MISSING_LOG) -> tuple[Path, Path]:
    """results/ and models/ trees for every experiment of ``params``, minus the skipped runs."""
    results, models = root / "results", root / "models"
    for e in params.experiments:
        key = (e.dataset, e.variant, e.seed)
        stacks = params.variants[e.variant].stacks
        rel = Path(e.dataset) / e.variant / f"s{e.seed}"
        if key not in skip_metrics:
            (results / rel).mkdir(parents=True, exist_ok=True)
            write_metrics(fake_metrics(e.dataset, e.variant, e.seed, stacks), results / rel / "metrics.json")
        if key not in skip_logs:
            write_log(models / rel / "log.csv", stacks, seed=e.seed, skill=0.1 / QUALITY[e.variant])
    return results, models


def fake_describe(variant, dataset) -> dict:
    """Stand-in for hgbench.describe.describe_variant (fast; no torch)."""
    return {
        "variant": variant.name,
        "params": 1_000_000 * variant.stacks + variant.features,
        "macs": 2_000_000_000 * variant.stacks * (dataset.input_res / 256) ** 2,
    }


@pytest.fixture
def stub_describe(monkeypatch):
    monkeypatch.setattr(summarize_module, "_describe_variant", fake_describe)


@pytest.fixture
def tree(tmp_path, stub_describe):
    params = make_params()
    results, models = write_fake_tree(tmp_path, params)
    out = tmp_path / "results" / "summary" / "synth"
    tables = summarize(params, "synth", results, models, out)
    return params, results, models, out, tables


def test_writes_every_table(tree):
    _, _, _, out, tables = tree
    assert set(tables) == {
        "per_joint",
        "curves",
        "ablations",
        "training",
        "variants",
        "seeds",
        "paired",
        "paired_pooled",
        "claims",
    }
    for stem, frame in tables.items():
        on_disk = pd.read_csv(out / f"{stem}.csv")
        assert list(on_disk.columns) == list(frame.columns)
        assert len(on_disk) == len(frame)
    assert not [p for p in out.iterdir() if p.suffix != ".csv"], "temporary files left behind"


def test_per_joint_rows_values_and_status(tree):
    _, results, _, out, _ = tree
    pj = pd.read_csv(out / "per_joint.csv")
    # The report reads the first 16 columns; the uncertainty columns are appended after them.
    assert list(pj.columns) == [
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
        "Mean_ci_low",
        "Mean_ci_high",
        "ablation_ci_low",
        "ablation_ci_high",
        "n_people",
        "visible",
        "occluded",
    ]
    assert len(pj) == 5 * 2  # 5 synth runs × 2 metrics
    assert set(pj["metric"]) == {"pckh@0.5", "pckh@0.1"}
    status = {(r.variant, r.seed): r.status for r in pj.itertuples()}
    assert status == {
        ("hg1", 0): "ok",
        ("hg1", 1): "ok",
        ("hg2", 0): "ok",
        ("hg2", 1): "missing",
        ("evil", 0): "no-log",
    }
    missing = pj[(pj["variant"] == "hg2") & (pj["seed"] == 1)]
    assert missing[list(GROUPS)].isna().all().all()

    metrics = json.loads((results / "synth/hg1/s0/metrics.json").read_text())
    row05 = pj[(pj["variant"] == "hg1") & (pj["seed"] == 0) & (pj["metric"] == "pckh@0.5")].iloc[0]
    row01 = pj[(pj["variant"] == "hg1") & (pj["seed"] == 0) & (pj["metric"] == "pckh@0.1")].iloc[0]
    for g in GROUPS:
        assert row05[g] == pytest.approx(metrics["pckh@0.5"][g])
        assert row01[g] == pytest.approx(metrics["pckh@0.1"][g])
    assert row05["ablation"] == pytest.approx(metrics["ablation@0.5"])
    assert math.isnan(row01["ablation"])
    assert row05["auc"] == pytest.approx(metrics["auc"])
    assert row05["protocol"] == "official" and row05["label"] == "HG"
    # CIs only on the headline row, bracketing the value; visibility split from metrics.json.
    assert row05["Mean_ci_low"] == pytest.approx(metrics["ci95"]["Mean"]["low"])
    assert row05["Mean_ci_low"] < row05["Mean"] < row05["Mean_ci_high"]
    assert row05["ablation_ci_low"] < row05["ablation"] < row05["ablation_ci_high"]
    assert math.isnan(row01["Mean_ci_low"]) and row05["n_people"] == 40
    assert row05["visible"] == pytest.approx(metrics["visibility"]["visible"])
    assert set(pj[pj["variant"] == "evil"]["label"]) == {EVIL_LABEL}


def test_curves_long_table(tree):
    _, results, _, out, _ = tree
    curves = pd.read_csv(out / "curves.csv")
    assert list(curves.columns) == ["dataset", "variant", "seed", "protocol", "group", "threshold", "pckh"]
    runs = set(zip(curves["variant"], curves["seed"]))
    assert runs == {("hg1", 0), ("hg1", 1), ("hg2", 0), ("evil", 0)}  # no rows for the missing run
    one = curves[(curves["variant"] == "hg2") & (curves["seed"] == 0)]
    assert set(one["group"]) == set(GROUPS)
    mean = one[one["group"] == "Mean"].sort_values("threshold")
    metrics = json.loads((results / "synth/hg2/s0/metrics.json").read_text())
    assert mean["threshold"].tolist() == pytest.approx(metrics["curve"]["thresholds"])
    assert mean["pckh"].tolist() == pytest.approx(metrics["curve"]["Mean"])


def test_ablations_per_stack(tree):
    _, _, _, out, _ = tree
    ab = pd.read_csv(out / "ablations.csv")
    for col in [
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
    ]:
        assert col in ab.columns
    hg2 = ab[(ab["variant"] == "hg2") & (ab["seed"] == 0)].sort_values("stack")
    assert hg2["stack"].tolist() == [1, 2]
    assert hg2["is_final"].tolist() == [False, True]
    assert (hg2["params"] == 2_000_032).all()
    assert hg2["ablation@0.5"].iloc[1] > hg2["ablation@0.5"].iloc[0]  # fake data: later stacks better
    gone = ab[(ab["variant"] == "hg2") & (ab["seed"] == 1)]
    assert len(gone) == 1 and gone["ablation@0.5"].isna().all() and (gone["status"] == "missing").all()


def test_training_concatenates_logs(tree):
    _, _, _, out, _ = tree
    tr = pd.read_csv(out / "training.csv")
    assert list(tr.columns[:3]) == ["dataset", "variant", "seed"]
    assert set(zip(tr["variant"], tr["seed"])) == {("hg1", 0), ("hg1", 1), ("hg2", 0), ("hg2", 1)}
    assert len(tr) == 4 * 4
    assert {"iteration", "train_loss", "valid_acc", "valid_acc_s1", "valid_acc_s2"} <= set(tr.columns)
    assert tr[tr["variant"] == "hg1"]["valid_acc_s2"].isna().all()  # union of the stacks' columns


def test_variants_table(tree):
    _, _, _, out, _ = tree
    v = pd.read_csv(out / "variants.csv")
    assert list(v.columns) == [
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
    assert v["variant"].tolist() == ["hg1", "hg2", "evil"]
    assert (v["input_res"] == 64).all()
    assert v.set_index("variant").loc["hg2", "macs"] == pytest.approx(2e9 * 2 / 16)


def test_a_missing_log_is_recorded_and_untrustworthy_metrics_stop_the_summary(tmp_path, stub_describe):
    """A missing file is a gap in a partial pipeline (recorded as a status); a metrics.json that
    exists but is damaged, of another run, or contradicts its own per-person records (issue 16:
    an edited Mean reported as ok) stops the summary before any table is written."""
    params = make_params()
    results, models = write_fake_tree(tmp_path, params, skip_metrics=set(), skip_logs=set())
    (models / "synth/hg2/s1/log.csv").write_text("")
    tables = summarize(params, "synth", results, models, tmp_path / "out")
    status = tables["per_joint"].drop_duplicates(["variant", "seed"]).set_index(["variant", "seed"])["status"]
    assert status.to_dict() == {
        ("hg1", 0): "ok",
        ("hg1", 1): "ok",
        ("hg2", 0): "ok",
        ("hg2", 1): "no-log",
        ("evil", 0): "ok",
    }
    target = results / "synth/hg1/s1/metrics.json"
    good = json.loads(target.read_text())
    other = {**good, "run": {**good["run"], "seed": 7}}
    edited = {**good, "pckh@0.5": {**good["pckh@0.5"], "Mean": 8.0}}
    for text, words in (
        ("{not json", "Expecting property name"),
        (json.dumps(other), "run synth/hg1/7"),
        (json.dumps(edited), "pckh@0.5.Mean is 8.0 but the per-person records give"),
    ):
        target.write_text(text)
        out = tmp_path / f"out-{len(text)}"
        with pytest.raises(RunFileError, match=words) as err:
            summarize(params, "synth", results, models, out)
        assert str(target) in str(err.value)
        assert not out.exists()  # nothing half-written


def test_everything_missing_still_writes_tables(tmp_path, stub_describe):
    params = make_params()
    tables = summarize(params, "mpii", tmp_path / "results", tmp_path / "models", tmp_path / "out")
    assert (tables["per_joint"]["status"] == "missing").all()
    assert tables["curves"].empty and tables["training"].empty
    for stem in tables:
        assert (tmp_path / "out" / f"{stem}.csv").is_file()


def test_unknown_dataset_is_an_error(tmp_path, stub_describe):
    with pytest.raises(ValueError, match="allowed: mpii, synth"):
        summarize(make_params(), "flic", tmp_path, tmp_path, tmp_path / "out")


def test_real_describe_variant_counts(tmp_path):
    pytest.importorskip("hgbench.describe")
    params = make_params()
    tables = summarize(params, "mpii", tmp_path / "r", tmp_path / "m", tmp_path / "out")
    row = tables["variants"].iloc[0]
    assert row["variant"] == "hg2" and row["params"] > 0 and row["macs"] > 0


def test_seeds_table_mean_and_std_across_seeds(tree):
    _, _, _, out, _ = tree
    seeds = pd.read_csv(out / "seeds.csv")
    assert list(seeds.columns) == [
        "dataset",
        "variant",
        "label",
        "protocol",
        "metric",
        "quantity",
        "mean",
        "std",
        "n_seeds",
    ]
    pj = pd.read_csv(out / "per_joint.csv")
    hg1 = pj[(pj["variant"] == "hg1") & (pj["metric"] == "pckh@0.5")]["Mean"]
    row = seeds[(seeds["variant"] == "hg1") & (seeds["metric"] == "pckh@0.5") & (seeds["quantity"] == "Mean")].iloc[0]
    assert row["n_seeds"] == 2
    assert row["mean"] == pytest.approx(hg1.mean()) and row["std"] == pytest.approx(hg1.std(ddof=1))
    hg2 = seeds[(seeds["variant"] == "hg2") & (seeds["quantity"] == "Mean")]
    assert (hg2["n_seeds"] == 1).all() and hg2["std"].isna().all()  # seed 1 is missing


def test_paired_table(tree):
    _, _, _, out, _ = tree
    paired = pd.read_csv(out / "paired.csv")
    # seed 0: hg1, hg2, evil → 3 pairs; seed 1: only hg1 scored → none; × (Mean, ablation).
    assert len(paired) == 3 * 2
    assert set(zip(paired["variant_a"], paired["variant_b"])) == {("hg1", "hg2"), ("hg1", "evil"), ("hg2", "evil")}
    pj = pd.read_csv(out / "per_joint.csv").query("metric == 'pckh@0.5' and seed == 0")
    means = dict(zip(pj["variant"], pj["Mean"]))
    row = paired[(paired["variant_a"] == "hg1") & (paired["variant_b"] == "hg2") & (paired["quantity"] == "Mean")].iloc[
        0
    ]
    assert row["diff"] == pytest.approx(means["hg1"] - means["hg2"])
    assert row["ci_low"] <= row["diff"] <= row["ci_high"] and 0 <= row["p"] <= 1
    assert row["n_people"] == 40 and row["n_boot"] == summarize_module.N_BOOT


def test_pooled_table_averages_the_seeds_both_variants_have(tree):
    _, _, _, out, _ = tree
    pooled = pd.read_csv(out / "paired_pooled.csv")
    paired = pd.read_csv(out / "paired.csv")
    # hg1 has seeds 0 and 1, hg2 and evil only seed 0: every pair pools the one common seed.
    assert set(zip(pooled["variant_a"], pooled["variant_b"])) == {("hg1", "hg2"), ("hg1", "evil"), ("hg2", "evil")}
    assert (pooled["n_seeds"] == 1).all() and (pooled["seeds"].astype(str) == "0").all()
    for r in pooled.itertuples():
        one = paired[
            (paired["variant_a"] == r.variant_a)
            & (paired["variant_b"] == r.variant_b)
            & (paired["quantity"] == r.quantity)
        ].iloc[0]
        assert r.diff == pytest.approx(one["diff"]) and float(r.per_seed) == pytest.approx(one["diff"], abs=1e-4)
        assert r.ci_low <= r.diff <= r.ci_high and np.isnan(r.seed_std)
        assert r.n_boot == summarize_module.N_BOOT_POOLED and r.n_people == 40


def test_claims_table_comes_from_the_pooled_table(tree):
    """claims.csv: every pooled pair × quantity, as claims (hgbench.claims; tests/test_claims.py)."""
    from hgbench.claims import COLUMNS, NO_CLAIM

    _, _, _, out, tables = tree
    claims = pd.read_csv(out / "claims.csv")
    pooled = pd.read_csv(out / "paired_pooled.csv")
    assert list(claims.columns) == COLUMNS and len(claims) == len(pooled) == 6
    assert set(claims["claim"]) == {NO_CLAIM}  # no equal-capacity pair in the fake profile: kept as A − B
    merged = claims.merge(
        pooled,
        left_on=["first", "second", "quantity"],
        right_on=["variant_a", "variant_b", "quantity"],
        suffixes=("", "_pooled"),
    )
    assert len(merged) == 6
    assert (merged["diff"] == merged["diff_pooled"]).all() and (merged["ci_low"] == merged["ci_low_pooled"]).all()
    expected = np.where(
        merged["ci_low"] > 0,
        "first higher",
        np.where(merged["ci_high"] < 0, "second higher", "not resolved at this sample size"),
    )
    assert list(merged["verdict"]) == list(expected)
