"""The run layout (hgbench.runs): predictions.h5 and metrics.json written and read in one place,
versioned, and checked when read (a headline number that its own per-person records contradict,
a file of another run, a predictions file in another pixel frame)."""

import json
from pathlib import Path

import h5py
import numpy as np
import pytest

from hgbench.evaluate import evaluate_files
from hgbench.runs import (
    METRICS_FORMAT,
    PREDICTIONS_FORMAT,
    RunFileError,
    prediction_attrs,
    read_final_predictions,
    read_metrics,
    run_dir,
    run_of,
    write_metrics,
    write_predictions,
)

REF = Path(__file__).parent / "data" / "reference"
GT = REF / "detections_our_format.mat"
PREDS = REF / "eval-mpii-pose_newell.h5"
RUN = {"dataset": "mpii", "variant": "hg8", "seed": 0}


def test_run_dir_is_dataset_variant_seed():
    assert run_dir("results/paper", "mpii", "hg8", 3) == Path("results/paper/mpii/hg8/s3")


def test_predictions_round_trip_with_format_frame_and_run(tmp_path):
    stack = np.random.default_rng(0).uniform(1, 200, (5, 2, 16, 2))
    path = write_predictions(tmp_path / "p.h5", stack, flip_test=True, checkpoint="m.pt", frame_offset=1, run=RUN)
    attrs = prediction_attrs(path)
    assert attrs["format"] == PREDICTIONS_FORMAT and attrs["frame_offset"] == 1 and attrs["flip_test"]
    assert run_of(attrs) == RUN
    np.testing.assert_array_equal(read_final_predictions(path, 5), stack[:, -1])
    with pytest.raises(RunFileError, match="expected \\(4, J, 2\\)"):
        read_final_predictions(path, 4)
    assert not list(tmp_path.glob(".*"))  # no temporary left


@pytest.fixture(scope="module")
def metrics(tmp_path_factory):
    """A real metrics.json (Newell's published predictions on the standard validation split)."""
    path = tmp_path_factory.mktemp("m") / "metrics.json"
    write_metrics(evaluate_files(GT, PREDS, n_boot=0), path)
    return path


def test_a_written_metrics_file_reads_back_and_its_headline_is_rederived(metrics):
    raw = json.loads(metrics.read_text())
    assert raw["format"] == METRICS_FORMAT
    m = read_metrics(metrics)
    assert round(m["pckh@0.5"]["Mean"], 2) == 88.43  # Newell et al.'s published validation Mean
    correct, scored = m["per_person"]
    assert correct.shape == scored.shape == (int(m["n_people"]), 16)


@pytest.mark.parametrize("value", [8.0, -50.0, 1e308, 88.0])
def test_an_edited_headline_number_is_refused(metrics, tmp_path, value):
    raw = json.loads(metrics.read_text())
    raw["pckh@0.5"]["Mean"] = value
    edited = tmp_path / "metrics.json"
    edited.write_text(json.dumps(raw))
    with pytest.raises(RunFileError) as err:
        read_metrics(edited)
    msg = str(err.value)
    assert str(edited) in msg and "pckh@0.5.Mean" in msg and "per-person records give 88.4" in msg
    assert "rerun `hgbench evaluate`" in msg and "\n" not in msg


def test_an_edited_group_or_ablation_or_count_is_refused(metrics, tmp_path):
    for edit, word in (
        (lambda r: r["pckh@0.5"].__setitem__("Wrist", 99.0), "Wrist"),
        (lambda r: r.__setitem__("ablation@0.5", 12.0), "ablation@0.5"),
        (lambda r: r.__setitem__("n_people", 3), "n_people"),
    ):
        raw = json.loads(metrics.read_text())
        edit(raw)
        (tmp_path / "m.json").write_text(json.dumps(raw))
        with pytest.raises(RunFileError, match=word):
            read_metrics(tmp_path / "m.json")


def test_another_run_another_format_and_damage_are_refused(metrics, tmp_path):
    raw = json.loads(metrics.read_text())
    raw["run"] = {"dataset": "mpii", "variant": "hg2", "seed": 0}
    (tmp_path / "a.json").write_text(json.dumps(raw))
    with pytest.raises(RunFileError, match="run mpii/hg2/0, expected mpii/hg8/0"):
        read_metrics(tmp_path / "a.json", ("mpii", "hg8", 0))
    raw.pop("format")
    (tmp_path / "b.json").write_text(json.dumps(raw))
    with pytest.raises(RunFileError, match="format is None"):
        read_metrics(tmp_path / "b.json")
    (tmp_path / "c.json").write_text(metrics.read_text()[:200])
    with pytest.raises(RunFileError, match="c.json"):
        read_metrics(tmp_path / "c.json")
    with pytest.raises(RunFileError, match="run `hgbench evaluate` first"):
        read_metrics(tmp_path / "none.json")


def test_predictions_in_another_pixel_frame_are_refused_by_evaluate(tmp_path):
    with h5py.File(PREDS) as f:
        preds = np.asarray(f["preds"], np.float64)
    stack = preds[:, None]
    zero = write_predictions(tmp_path / "zero.h5", stack - 1, flip_test=True, checkpoint="m.pt", frame_offset=0)
    with pytest.raises(ValueError, match="0-based pixel frame .* the ground truth in a 1-based one"):
        evaluate_files(GT, zero, n_boot=0)
    one = write_predictions(tmp_path / "one.h5", stack, flip_test=True, checkpoint="m.pt", frame_offset=1)
    assert round(evaluate_files(GT, one, n_boot=0)["pckh@0.5"]["Mean"], 2) == 88.43
    # A file that says so in words only (the attribute `frame`) is refused too.
    with h5py.File(one, "a") as f:
        del f.attrs["frame_offset"]
        f.attrs["frame"] = "0-based pixels"
    with pytest.raises(ValueError, match="0-based pixel frame"):
        evaluate_files(GT, one, n_boot=0)


def test_log_rows_of_an_older_version_keep_their_place_when_a_column_is_new(tmp_path):
    # A run resumed after an upgrade: its first epochs were logged without `device`.
    import csv

    from hgbench.runs import LOG_RUN_COLUMN, write_log

    rows = [{"epoch": 1, "train_loss": 0.5}, {"epoch": 2, "train_loss": 0.25, "device": "cpu: X, 1 thread"}]
    write_log(rows, tmp_path / "log.csv", ("synth", "hg1", 0))
    with open(tmp_path / "log.csv", newline="") as fh:
        got = list(csv.DictReader(fh))
    assert list(got[0]) == ["epoch", "train_loss", "device", LOG_RUN_COLUMN]
    assert [r["device"] for r in got] == ["", "cpu: X, 1 thread"] and {r["run"] for r in got} == {"synth/hg1/s0"}
