"""`hgbench bench train|data`: the contract is the CLI (last line JSON, CSV named by conditions)."""

import csv
import json

from conftest import ROOT, run
from hgbench import machine
from hgbench.config import load_params
from hgbench.describe import model_config
from hgbench.model import StackedHourglass, count_macs
from test_resume import smoke_data  # noqa: F401 (fixture)


def bench(args, tmp_path, check=True):
    return run(["hgbench", "bench", *args, "--results", str(tmp_path / "results")], ROOT, check=check)


def test_bench_train_prints_json_last_and_appends_to_a_csv_named_by_conditions(tmp_path, monkeypatch):
    # bf16 as asked on any CPU (without native bf16 bench would measure fp32: tests/test_precision.py)
    monkeypatch.setenv("HGBENCH_CPU_BF16", "native")
    args = [
        "train",
        "--params",
        "params/smoke.yaml",
        "--variant",
        "hg2x1",
        "--batch",
        "2",
        "--steps",
        "2",
        "--warmup",
        "1",
        "--threads",
        "1",
        "--device",
        "cpu",
        "--json",
    ]
    for precision in ("fp32", "bf16", "bf16"):
        proc = bench(args + ["--precision", precision], tmp_path)
    record = json.loads(proc.stdout.strip().splitlines()[-1])
    assert record["precision"] == "bf16" and record["batch"] == 2 and record["variant"] == "hg2x1"
    assert record["img_per_s"] > 0 and record["peak_rss_mib"] > 100
    # The machine by its CPU model and SIMD flags (platform.processor() says "x86_64" or nothing).
    assert record["device_name"] == machine.cpu_model() and record["cpu_flags"] == machine.simd_flags()
    p = load_params(ROOT / "params/smoke.yaml")
    macs = count_macs(StackedHourglass(model_config(p.variants["hg2x1"], 16)), 64)
    assert record["flops_per_img"] == 6 * macs
    # The fraction is achieved / measured peak; its size depends on what else the machine is doing
    # (a loaded machine can even put it above 1), so check how it is made, not how big it is.
    assert record["peak_source"].startswith("measured") and record["peak_gflops"] > 0
    # (achieved and peak are rounded to 0.1 GFLOP/s and the fraction to 4 decimals in the record)
    frac, achieved, peak = record["fraction_of_peak"], record["achieved_gflops"], record["peak_gflops"]
    assert frac > 0 and abs(frac * peak - achieved) <= 0.05 + 0.05 * frac + 1e-4 * peak
    files = sorted(f.name for f in (tmp_path / "results").iterdir())
    assert files == ["train_cpu_bf16_b2_t1.csv", "train_cpu_fp32_b2_t1.csv"]
    with open(tmp_path / "results" / "train_cpu_bf16_b2_t1.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 2 and rows[0]["variant"] == "hg2x1"


def test_bench_data_reports_ms_per_sample(smoke_data, tmp_path):
    proc = bench(["data", "--data", str(smoke_data / "train.h5"), "--batch", "8", "--batches", "4", "--json"], tmp_path)
    record = json.loads(proc.stdout.strip().splitlines()[-1])
    assert record["samples"] == 32 and record["read_ms_per_sample"] > 0 and record["augment_ms_per_sample"] > 0
    assert (tmp_path / "results" / "data_cpu_b8_w0_t1.csv").is_file()


def test_bench_errors_are_one_line(tmp_path):
    proc = bench(["train", "--params", "params/smoke.yaml", "--variant", "nope", "--steps", "1"], tmp_path, check=False)
    assert proc.returncode == 2 and "'nope'" in proc.stderr and "Traceback" not in proc.stderr
    import torch

    if not torch.cuda.is_available():
        proc = bench(
            ["train", "--params", "params/smoke.yaml", "--variant", "hg2x1", "--device", "cuda"], tmp_path, check=False
        )
        assert proc.returncode == 2 and "no CUDA GPU" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "results").exists()
