"""costs: Snakemake benchmark tables and training logs → costs.csv rows (NaN where absent)."""

from __future__ import annotations

import math

import h5py
import numpy as np
import pytest

from hgbench import costs

# Snakemake's benchmark layout (tab-separated; "-" where a value was not measured).
BENCH = (
    "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"
    "120.5\t0:02:00\t812.3\t2048.0\t700.1\t710.2\t1.0\t2.0\t95.0\t118.0\n"
    "119.5\t0:01:59\t830.0\t2048.0\t700.1\t710.2\t1.0\t2.0\t95.0\t117.0\n"
)


def test_read_benchmark_mean_time_and_peak_rss(tmp_path):
    path = tmp_path / "s0.tsv"
    path.write_text(BENCH)
    assert costs.read_benchmark(path) == {"s": pytest.approx(120.0), "max_rss_mb": pytest.approx(830.0)}
    path.write_text("s\th:m:s\tmax_rss\n3.5\t0:00:03\t-\n")
    got = costs.read_benchmark(path)
    assert got["s"] == 3.5 and math.isnan(got["max_rss_mb"])
    assert all(math.isnan(v) for v in costs.read_benchmark(tmp_path / "absent.tsv").values())


def test_log_costs_reads_whatever_columns_exist(tmp_path):
    path = tmp_path / "log.csv"
    path.write_text(
        "epoch,iteration,train_loss,images_per_s,data_wait_share,wall_s,valid_s,device,peak_mem_mb\n"
        "1,10,0.1,100,0.2,30,2,cuda:0,900\n2,20,0.05,120,0.1,28,2,cuda:0,950\n3,30,0.04,110,0.3,29,2,cuda:0,940\n"
    )
    got = costs.log_costs(path)
    assert got["log_train_s"] == pytest.approx(30 + 28 + 29 + 6)  # per-epoch wall + validation
    assert got["log_images_per_s"] == 110 and got["log_data_wait_share"] == pytest.approx(0.2)
    assert got["log_peak_mem_mb"] == 950 and got["device"] == "cuda:0"
    path.write_text("epoch,iteration,train_loss,device\n1,10,0.1,\n2,20,0.1,cpu: A\n3,30,0.1,cpu: B\n4,40,0.1,cpu: A\n")
    assert costs.log_costs(path)["device"] == "cpu: A; cpu: B"  # resumed on another machine: both, in order
    path.write_text("epoch,iteration,train_loss\n1,10,0.1\n")  # an old log: nothing but the loss
    old = costs.log_costs(path)
    assert math.isnan(old["log_train_s"]) and old["device"] == ""


def test_collect_costs_per_run(tmp_path):
    from test_summarize import make_params

    params = make_params()
    bench = tmp_path / "benchmarks"
    (bench / "train/synth/hg1").mkdir(parents=True)
    (bench / "train/synth/hg1/s0.tsv").write_text(BENCH)
    (bench / "predict/synth/hg1").mkdir(parents=True)
    (bench / "predict/synth/hg1/s0.tsv").write_text("s\tmax_rss\n8.0\t400\n")
    run = tmp_path / "results/synth/hg1/s0"
    run.mkdir(parents=True)
    with h5py.File(run / "predictions.h5", "w") as f:
        f["preds"] = np.zeros((40, 16, 2))
    frame = costs.collect_costs(params, "synth", bench, tmp_path / "models", tmp_path / "results")
    assert list(frame.columns) == costs.COST_COLUMNS
    assert list(zip(frame["variant"], frame["seed"])) == [("hg1", 0), ("hg1", 1), ("hg2", 0), ("hg2", 1), ("evil", 0)]
    row = frame.iloc[0]
    assert row["train_s"] == pytest.approx(120.0) and row["predict_max_rss_mb"] == 400
    assert row["predict_ms_per_person"] == pytest.approx(8.0 / 40 * 1000)
    assert frame.iloc[1:][["train_s", "predict_s", "n_predicted"]].isna().all().all()  # a run is never dropped
    none = costs.collect_costs(params, "synth", None, tmp_path / "models", tmp_path / "results")
    assert none["train_s"].isna().all()
