"""The CUDA-only lines, executed (issue 19). Marked ``gpu``: deselected by default (pytest.ini
options) and skipped where torch sees no CUDA GPU; run them with ``pytest -m gpu``.

Each test is small (the smoke profile's tiny model and data), so the whole file takes well under a
minute on one GPU; the figures of record come from ``hgbench bench`` and ../shared/gpu-check/.
"""

import dataclasses
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
import yaml

from conftest import ROOT, tool_env
from test_resume import CFG, DATASET, VARIANT, cli_train, smoke_data, weights  # noqa: F401
from test_resume import write_params as write_cpu_params


def write_params(tmp_path, **train_overrides):
    """The resume tests' smoke profile with ``device: cuda``."""
    path = write_cpu_params(tmp_path, **train_overrides)
    raw = yaml.safe_load(path.read_text())
    raw["device"] = "cuda"
    path.write_text(yaml.safe_dump(raw))
    return path


pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]


def test_bench_step_runs_on_cuda_and_records_the_gpu():
    from hgbench.bench import bench_train
    from hgbench.config import load_params

    params = load_params(ROOT / "params/smoke.yaml")
    for precision in ("fp32", "bf16"):
        rec = bench_train(
            params, "hg2x1", batch=4, steps=3, threads=1, device="cuda", precision=precision, compile=False, warmup=1
        )
        assert rec["device"] == "cuda" and rec["precision"] == precision and rec["img_per_s"] > 0
        assert rec["peak_gpu_mib"] > 0 and rec["device_name"] == torch.cuda.get_device_name(0)


def test_one_smoke_training_through_the_cli_on_cuda_then_resume(smoke_data, tmp_path):  # noqa: F811
    from test_resume import TEST_SIGNAL_ENV

    params = write_params(tmp_path, epochs=2, checkpoint_every=2)
    out = tmp_path / "run"
    proc = cli_train(params, smoke_data, out, {TEST_SIGNAL_ENV: "3:SIGTERM"})
    assert proc.returncode == 75, proc.stderr
    state = torch.load(out / "last.pt", map_location="cpu", weights_only=True)
    assert state["iteration"] == 3 and "cuda" in state["rng"]
    proc = subprocess.run(
        [
            "hgbench",
            "train",
            "--params",
            str(params),
            "--dataset",
            "smoke",
            "--variant",
            "hg2x1",
            "--seed",
            "0",
            "--data",
            str(smoke_data),
            "--out",
            str(out),
            "--device",
            "cuda",
        ],
        cwd=ROOT,
        env=tool_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0 and "resuming" in proc.stdout, proc.stderr
    w = weights(out / "model.pt")
    assert all(torch.isfinite(v).all() for v in w.values() if v.is_floating_point())


def test_flip_test_prediction_on_cuda_matches_the_cpu(smoke_data, tmp_path):  # noqa: F811
    from hgbench.predict import predict
    from hgbench.train import train

    model = train(
        dataset=DATASET,
        variant=VARIANT,
        cfg=dataclasses.replace(CFG, epochs=1),
        seed=0,
        train_file=smoke_data / "train.h5",
        valid_file=smoke_data / "valid.h5",
        out_dir=tmp_path / "m",
        device="cuda",
        log=lambda *_: None,
    )
    kw = {"checkpoint": model, "data_file": smoke_data / "valid.h5", "flip_test": True, "batch_size": 8}
    gpu = predict(out=tmp_path / "gpu.h5", device="cuda", **kw)
    cpu = predict(out=tmp_path / "cpu.h5", device="cpu", **kw)
    # TF32/cuDNN against CPU fp32: the argmax may move by one cell on a flat heatmap, rarely.
    close = np.abs(gpu - cpu).max(axis=-1) < 1e-3
    assert close.mean() > 0.95


def test_device_auto_runs_on_the_claimed_gpu():
    code = (
        "import os, torch\nfrom hgbench import cli\n"
        "with cli._gpu_claim('auto', 1) as ids:\n"
        "    print(ids, os.environ['CUDA_VISIBLE_DEVICES'], torch.cuda.device_count())\n"
    )
    env = {k: v for k, v in tool_env().items() if k != "CUDA_VISIBLE_DEVICES"}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout.strip()
    assert out.endswith(" 1"), out  # torch sees exactly the one claimed GPU, though the machine may have more


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs 2 GPUs")
def test_ddp_on_two_gpus(smoke_data, tmp_path):  # noqa: F811
    params = write_params(tmp_path, epochs=1, checkpoint_every=0, devices=2)
    proc = cli_train(params, smoke_data, tmp_path / "run")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "run" / "model.pt").exists()
    assert os.listdir(tmp_path / "run")
