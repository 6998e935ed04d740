"""Exact resume, interruption by signals and the NaN guard of `hgbench train` (CPU, tiny model)."""

import csv
import dataclasses
import os
import signal

import pytest
import torch
import yaml

from conftest import ROOT
from hgbench.cli import EXIT_INTERRUPTED
from hgbench.config import load_params
from hgbench.data.fetch import fetch_synthetic
from hgbench.data.prepare import prepare_dataset
from hgbench.machine import device_label
from hgbench.train import TEST_SIGNAL_ENV, NonFiniteLoss, TrainingInterrupted, train

SMOKE = load_params(ROOT / "params/smoke.yaml")
DATASET = SMOKE.datasets["smoke"]
VARIANT = SMOKE.variants["hg2x1"]
# 24 training people at batch 8 = 3 steps per epoch; 3 epochs = 9 steps. Every source of
# randomness is on (rotation, scale, flip, colour jitter) and the plateau scheduler has state.
CFG = dataclasses.replace(
    SMOKE.train, epochs=3, color_jitter=0.2, lr_schedule="plateau", plateau_patience=1, lr=1e-3, checkpoint_every=2
)


@pytest.fixture(scope="session")
def smoke_data(tmp_path_factory):
    """The smoke profile's dataset, prepared once: a directory with train.h5 and valid.h5."""
    root = tmp_path_factory.mktemp("smoke-data")
    fetch_synthetic(root / "raw", DATASET.synthetic)
    prepare_dataset(
        root / "raw", root / "processed", dataset="smoke", input_res=DATASET.input_res, crop_margin=DATASET.crop_margin
    )
    return root / "processed"


def run_train(data, out, cfg=CFG, *, seed=0, variant=VARIANT, dataset=DATASET, log=None):
    return train(
        dataset=dataset,
        variant=variant,
        cfg=cfg,
        seed=seed,
        train_file=data / "train.h5",
        valid_file=data / "valid.h5",
        out_dir=out,
        device="cpu",
        log=log or (lambda *_: None),
    )


def weights(path):
    return torch.load(path, map_location="cpu", weights_only=True)["model"]


def assert_bit_identical(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


@pytest.fixture(scope="session")
def reference(smoke_data, tmp_path_factory):
    """model.pt of the uninterrupted run."""
    return run_train(smoke_data, tmp_path_factory.mktemp("reference"))


@pytest.mark.parametrize("stop_at", [2, 3, 7])  # mid-epoch, the last step of an epoch, mid-epoch later
def test_sigterm_at_any_step_then_resume_gives_bit_identical_weights(
    smoke_data, reference, tmp_path, monkeypatch, stop_at
):
    monkeypatch.setenv(TEST_SIGNAL_ENV, f"{stop_at}:SIGTERM")
    with pytest.raises(TrainingInterrupted, match=f"iteration {stop_at}|after epoch"):
        run_train(smoke_data, tmp_path)
    state = torch.load(tmp_path / "last.pt", weights_only=True)
    assert state["iteration"] == stop_at
    assert (state["epoch"], state["batch"]) == divmod(stop_at, 3)
    assert not (tmp_path / "model.pt").exists()
    monkeypatch.delenv(TEST_SIGNAL_ENV)
    run_train(smoke_data, tmp_path)
    assert_bit_identical(weights(tmp_path / "model.pt"), weights(reference))
    ref_log = (reference.parent / "log.csv").read_text().splitlines()
    log = (tmp_path / "log.csv").read_text().splitlines()
    assert len(log) == len(ref_log) == 4
    # Losses, accuracies and lr agree; only the timing columns may differ.
    n_same = ref_log[0].split(",").index("images_per_s")
    assert [r.split(",")[:n_same] for r in log] == [r.split(",")[:n_same] for r in ref_log]


def test_every_epoch_of_the_log_names_the_machine_it_ran_on(reference):
    # img/s mean nothing without the CPU (issue 20); the model cards show this column.
    with open(reference.parent / "log.csv", newline="") as fh:
        devices = {row["device"] for row in csv.DictReader(fh)}
    assert devices == {device_label(torch.device("cpu"), CFG.threads)}


def test_a_folder_of_another_run_is_refused_not_replaced(smoke_data, tmp_path, monkeypatch):
    # Issue 16: `train --seed 1 --out <seed 0's folder>` used to say "starting over" and replace
    # seed 0's state; last.pt and model.pt name their run, and another run's folder is refused.
    monkeypatch.setenv(TEST_SIGNAL_ENV, "1:SIGINT")
    with pytest.raises(TrainingInterrupted):
        run_train(smoke_data, tmp_path)
    monkeypatch.delenv(TEST_SIGNAL_ENV)
    before = (tmp_path / "last.pt").read_bytes()
    with pytest.raises(RuntimeError, match=r"belongs to run smoke/hg2x1/s0, not smoke/hg2x1/s1; give this run its own"):
        run_train(smoke_data, tmp_path, seed=1)
    other = dataclasses.replace(VARIANT, name="hg2x1-last", supervision="last")  # same network, another run
    with pytest.raises(RuntimeError, match=r"belongs to run smoke/hg2x1/s0, not smoke/hg2x1-last/s0"):
        run_train(smoke_data, tmp_path, variant=other)
    assert (tmp_path / "last.pt").read_bytes() == before and not (tmp_path / "model.pt").exists()
    run_train(smoke_data, tmp_path)  # the run itself resumes its own folder
    with pytest.raises(RuntimeError, match=r"model.pt belongs to run smoke/hg2x1/s0, not smoke/hg2x1/s1"):
        (tmp_path / "last.pt").unlink()  # only model.pt left: still refused
        run_train(smoke_data, tmp_path, seed=1)


def test_a_split_of_another_input_size_is_refused_before_any_step(smoke_data, tmp_path):
    # Issue 16: a profile at another input_res used to train a whole epoch, then die on a tensor size.
    bigger = dataclasses.replace(DATASET, input_res=DATASET.input_res * 2, output_res=DATASET.output_res * 2)
    with pytest.raises(
        ValueError,
        match=r"train.h5 was prepared for input_res 64 px, but datasets.smoke.input_res "
        r"is 128; rerun `hgbench prepare`",
    ):
        run_train(smoke_data, tmp_path, dataset=bigger)
    assert not list(tmp_path.iterdir())


def test_load_checkpoint_refuses_another_model_or_seed(smoke_data, tmp_path, monkeypatch):
    from hgbench.checkpoint import load_checkpoint

    monkeypatch.setenv(TEST_SIGNAL_ENV, "1:SIGINT")
    with pytest.raises(TrainingInterrupted):
        run_train(smoke_data, tmp_path)
    state = torch.load(tmp_path / "last.pt", weights_only=True)
    with pytest.raises(RuntimeError, match="another model or seed"):
        load_checkpoint(tmp_path / "last.pt", seed=1, model_config=state["model_config"])


def write_params(tmp_path, **train_overrides):
    raw = yaml.safe_load((ROOT / "params/smoke.yaml").read_text())
    raw["train"].update(
        {
            k: v
            for k, v in dataclasses.asdict(CFG).items()
            if k in ("epochs", "color_jitter", "lr_schedule", "plateau_patience", "lr", "checkpoint_every")
        }
    )
    raw["train"].update(train_overrides)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def cli_train(params, data, out, env_extra=None):
    import subprocess

    from conftest import tool_env

    env = {**tool_env(), **(env_extra or {})}
    cmd = [
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
        str(data),
        "--out",
        str(out),
    ]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def test_sigkill_of_the_cli_then_rerun_resumes_from_the_periodic_checkpoint(smoke_data, reference, tmp_path):
    params = write_params(tmp_path)
    out = tmp_path / "run"
    proc = cli_train(params, smoke_data, out, {TEST_SIGNAL_ENV: "5:SIGKILL"})
    assert proc.returncode == -signal.SIGKILL
    state = torch.load(out / "last.pt", weights_only=True)
    assert state["iteration"] == 4  # checkpoint_every = 2: step 5 is lost and redone
    proc = cli_train(params, smoke_data, out)
    assert proc.returncode == 0, proc.stderr
    assert "resuming" in proc.stdout
    assert_bit_identical(weights(out / "model.pt"), weights(reference))


def test_sigterm_of_the_cli_saves_and_exits_with_the_retry_code(smoke_data, tmp_path):
    params = write_params(tmp_path, checkpoint_every=0)
    out = tmp_path / "run"
    proc = cli_train(params, smoke_data, out, {TEST_SIGNAL_ENV: "4:SIGTERM"})
    assert proc.returncode == EXIT_INTERRUPTED == 75
    assert proc.stderr.strip().splitlines()[-1].startswith("hgbench train: interrupted: stopped by SIGTERM")
    assert "Traceback" not in proc.stderr
    assert torch.load(out / "last.pt", weights_only=True)["iteration"] == 4
    assert not (out / "model.pt").exists()


def test_nan_loss_stops_with_a_clear_error_and_keeps_the_last_good_checkpoint(smoke_data, tmp_path):
    # An absurd lr blows the weights up within a few steps; the run must stop, not write NaNs.
    cfg = dataclasses.replace(CFG, lr=1e12, optimizer="adam", checkpoint_every=1, lr_schedule="steps")
    with pytest.raises(NonFiniteLoss, match=r"loss became (nan|inf).*the last good state is .*last\.pt"):
        run_train(smoke_data, tmp_path, cfg)
    state = torch.load(tmp_path / "last.pt", weights_only=True)
    assert state["iteration"] >= 1
    assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())
    assert not (tmp_path / "model.pt").exists()
    assert os.listdir(tmp_path) == ["last.pt"]  # no temporary files left behind


def test_last_pt_of_other_params_is_not_resumed(smoke_data, reference, tmp_path):
    # A finished run's last.pt (kept by DVC's persist) must not be "resumed" after a params change:
    # that would return the old weights for the new settings.
    out = tmp_path / "run"
    run_train(smoke_data, out)
    assert_bit_identical(weights(out / "model.pt"), weights(reference))
    messages = []
    changed = dataclasses.replace(CFG, lr=5e-4)
    run_train(smoke_data, out, changed, log=messages.append)
    assert any("starting over" in m for m in messages)
    fresh = run_train(smoke_data, tmp_path / "fresh", cfg=changed)
    assert_bit_identical(weights(out / "model.pt"), weights(fresh))
    # Speed-only settings do not invalidate it: this one resumes (and has nothing left to do).
    messages.clear()
    run_train(smoke_data, out, dataclasses.replace(changed, threads=2, checkpoint_every=5), log=messages.append)
    assert not any("starting over" in m for m in messages)
