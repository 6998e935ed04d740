"""Stages check what they read from an earlier stage against the profile and the model before any
work (issue 16, docs/reliability.md §6): split size and joints against the model, outputs that
would replace inputs, another run's folder. Each refusal is one line naming both sides and the
fix, exit status 2, nothing written."""

from __future__ import annotations

import shutil

import pytest

from hgbench.data.prepare import prepare_dataset

from .conftest import DATASET, SMOKE_FILE, hgbench


def test_predict_refuses_a_split_prepared_for_another_input_size(smoke_raw, reference_run, tmp_path):
    prepare_dataset(
        smoke_raw, tmp_path / "big", dataset="smoke", input_res=DATASET.input_res * 2, crop_margin=DATASET.crop_margin
    )
    out = tmp_path / "p.h5"
    proc = hgbench(
        "predict",
        "--params",
        SMOKE_FILE,
        "--checkpoint",
        reference_run / "model.pt",
        "--data",
        tmp_path / "big" / "valid.h5",
        "--out",
        out,
    )
    assert proc.returncode == 2
    line = proc.stderr.strip()
    assert "\n" not in line and "prepared for input_res 128 px" in line and "takes 64 px" in line, line
    assert not out.exists()


def test_predict_refuses_an_output_that_is_an_input(smoke_data, reference_run, tmp_path):
    split = tmp_path / "valid.h5"
    shutil.copy(smoke_data / "valid.h5", split)
    before = split.read_bytes()
    proc = hgbench(
        "predict", "--params", SMOKE_FILE, "--checkpoint", reference_run / "model.pt", "--data", split, "--out", split
    )
    assert proc.returncode == 2 and "is an input of this prediction" in proc.stderr
    assert split.read_bytes() == before


def test_train_refuses_the_folder_of_another_run(smoke_data, reference_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(reference_run, run)
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    proc = hgbench(
        "train",
        "--params",
        SMOKE_FILE,
        "--dataset",
        "smoke",
        "--variant",
        "hg1x2",
        "--seed",
        "3",
        "--data",
        smoke_data,
        "--out",
        run,
    )
    assert proc.returncode == 2
    line = proc.stderr.strip()
    assert "\n" not in line and "belongs to run smoke/hg2x1/s0, not smoke/hg1x2/s3" in line, line
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before


def test_summarize_with_a_damaged_split_keeps_the_previous_summary_whole(smoke_data, reference_run, tmp_path):
    # Issue 16: "unexpected KeyError (bug)" after rewriting half of the summary folder.
    results, models = tmp_path / "results", tmp_path / "models"
    shutil.copytree(reference_run, models / "smoke" / "hg2x1" / "s0")
    run = results / "smoke" / "hg2x1" / "s0"
    assert (
        hgbench(
            "predict",
            "--params",
            SMOKE_FILE,
            "--checkpoint",
            reference_run / "model.pt",
            "--data",
            smoke_data / "valid.h5",
            "--out",
            run / "predictions.h5",
        ).returncode
        == 0
    )
    assert (
        hgbench(
            "evaluate",
            "--ground-truth",
            smoke_data / "valid.h5",
            "--predictions",
            run / "predictions.h5",
            "--out",
            run / "metrics.json",
        ).returncode
        == 0
    )
    out = tmp_path / "summary"
    args = (
        "summarize",
        "--params",
        SMOKE_FILE,
        "--dataset",
        "smoke",
        "--results",
        results,
        "--models",
        models,
        "--out",
        out,
        "--data",
    )
    good = hgbench(*args, smoke_data)
    assert good.returncode == 0, good.stderr
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    assert {"per_joint.csv", "claims.csv", "costs.csv", "gallery.h5"} <= before.keys()
    damaged = tmp_path / "damaged"
    damaged.mkdir()
    data = (smoke_data / "valid.h5").read_bytes()
    (damaged / "valid.h5").write_bytes(data[: len(data) // 2])
    (run / "metrics.json").unlink()  # so that a summary written before the failure would differ
    proc = hgbench(*args, damaged)
    assert proc.returncode == 2
    line = proc.stderr.strip().splitlines()[-1]
    assert str(damaged / "valid.h5") in line and "unexpected" not in line, proc.stderr
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # the previous summary, whole
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # no temporary left


def test_a_training_log_copied_from_another_run_is_refused(reference_run, tmp_path):
    # Found by the second probe: a log.csv copied from another run's folder was summarised as this
    # run's training curve (and its costs), since the log named no run.
    from hgbench import costs, summarize
    from hgbench.runs import LOG_RUN_COLUMN, RunFileError

    log_csv = reference_run / "log.csv"
    header = log_csv.read_text().splitlines()[0].split(",")
    assert header[-1] == LOG_RUN_COLUMN and log_csv.read_text().splitlines()[1].endswith(",smoke/hg2x1/s0")
    frame = summarize.read_log(log_csv, ("smoke", "hg2x1", 0))
    assert frame is not None and LOG_RUN_COLUMN not in frame  # training.csv keeps its columns
    for reader in (summarize.read_log, costs.log_costs):
        with pytest.raises(
            RunFileError, match=r"log.csv is the training log of run smoke/hg2x1/s0, expected smoke/hg1x2/s0"
        ):
            reader(log_csv, ("smoke", "hg1x2", 0))
    older = tmp_path / "log.csv"  # hgbench before the run column: read unchecked
    older.write_text("\n".join(",".join(line.split(",")[:-1]) for line in log_csv.read_text().splitlines()) + "\n")
    assert summarize.read_log(older, ("smoke", "hg1x2", 0)) is not None


def test_summarize_refuses_another_run_s_training_log_in_one_line(smoke_data, reference_run, tmp_path):
    results, models = tmp_path / "results", tmp_path / "models"
    shutil.copytree(reference_run, models / "smoke" / "hg2x1" / "s0")
    shutil.copytree(reference_run, models / "smoke" / "hg1x2" / "s0")  # the copy by hand
    proc = hgbench(
        *("summarize", "--params", SMOKE_FILE, "--dataset", "smoke", "--results", results, "--models", models),
        *("--out", tmp_path / "summary"),
    )
    assert proc.returncode == 2, proc.stderr
    line = proc.stderr.strip().splitlines()[-1]
    assert line.startswith("hgbench summarize: error: ") and "expected smoke/hg1x2/s0" in line, proc.stderr
    assert not (tmp_path / "summary").exists()


def test_train_refuses_swapped_splits(smoke_data, tmp_path):
    # Found by the third probe: valid.h5 given as train.h5 trained on the validation people, exit 0.
    swapped = tmp_path / "swapped"
    swapped.mkdir()
    shutil.copy(smoke_data / "valid.h5", swapped / "train.h5")
    shutil.copy(smoke_data / "train.h5", swapped / "valid.h5")
    proc = hgbench(
        *("train", "--params", SMOKE_FILE, "--dataset", "smoke", "--variant", "hg2x1", "--seed", 0),
        *("--data", swapped, "--out", tmp_path / "out"),
    )
    assert proc.returncode == 2, proc.stderr
    line = proc.stderr.strip()
    assert "\n" not in line and f"{swapped / 'train.h5'} holds the 'valid' split" in line, line
    assert not (tmp_path / "out").exists()
