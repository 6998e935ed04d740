"""FLIC PCK@0.2 (torso-normalised) on pose-hg-train's FLIC annotation files (tests/data/reference).

flic_valid.h5 (observer-centric) and flic_valid_personcentric.h5 are pose-hg-train's
data/flic/annot/valid*.h5: 1016 test people, part (N, 11, 2), normalize = ‖rsho − lhip‖ of the
person-centric labels (SOURCES.md §2); the two differ by a left/right swap in 48 rows.
"""

from pathlib import Path

import h5py
import numpy as np
import pytest

from hgbench.evaluate import evaluate_files, load_ground_truth, resolve_protocol
from hgbench.joints import FLIC_JOINTS

REF = Path(__file__).parent / "data" / "reference"
OBSERVER = REF / "flic_valid.h5"
PERSON = REF / "flic_valid_personcentric.h5"


def _write_preds(path, preds):
    with h5py.File(path, "w") as f:
        f["preds"] = preds
    return path


def test_flic_layout_and_torso_normaliser():
    gt = load_ground_truth(PERSON)
    assert gt.dataset == "flic" and gt.layout == "hourglass"
    assert gt.joints.shape == (1016, 11, 2) and not gt.missing.any()
    torso = np.linalg.norm(gt.joints[:, FLIC_JOINTS.index("rsho")] - gt.joints[:, FLIC_JOINTS.index("lhip")], axis=-1)
    np.testing.assert_allclose(gt.normalizer, torso, rtol=0, atol=1e-9)


def test_official_means_flic_and_mpii_protocols_refuse(tmp_path):
    gt = load_ground_truth(OBSERVER)
    assert resolve_protocol("official", gt).name == "flic"
    with pytest.raises(ValueError, match="'bearpaw' is an MPII PCKh protocol"):
        resolve_protocol("bearpaw", gt)
    with pytest.raises(ValueError, match="needs FLIC ground truth"):
        resolve_protocol("flic", load_ground_truth(REF / "valid.h5"))


def test_perfect_and_shifted_predictions(tmp_path):
    gt = load_ground_truth(OBSERVER)
    out = evaluate_files(OBSERVER, _write_preds(tmp_path / "p.h5", gt.joints), n_boot=0)
    assert out["protocol"] == "flic" and out["dataset"] == "flic"
    assert out["thresholds"] == {"pck@0.2": 0.2} and "pckh@0.5" not in out
    assert set(out["pck@0.2"]) == {"Head", "Shoulder", "Elbow", "Wrist", "Hip", "Mean"}
    assert all(v == 100.0 for v in out["pck@0.2"].values()) and out["auc"] == pytest.approx(100)
    assert out["curve"]["thresholds"][-1] == 0.2 and len(out["curve"]["thresholds"]) == 21
    assert "ablation@0.5" not in out and len(out["per_joint"]) == 11

    # Every joint moved by just under / over 0.2 torso (an exact 0.2 is not representable after
    # adding to a pixel coordinate; test_metrics_cases pins the boundary itself).
    for frac, want in ((0.1999, 100.0), (0.2001, 0.0)):
        shifted = gt.joints.copy()
        shifted[..., 0] += frac * gt.normalizer[:, None]
        got = evaluate_files(OBSERVER, _write_preds(tmp_path / f"s{frac}.h5", shifted), n_boot=0)
        assert got["pck@0.2"]["Mean"] == pytest.approx(want, abs=1e-9), frac


def test_observer_vs_person_centric(tmp_path):
    # Observer-centric labels scored against person-centric GT: only the 48 swapped people differ,
    # and only on the swapped left/right joints (the nose is never swapped).
    obs = load_ground_truth(OBSERVER).joints
    person = load_ground_truth(PERSON).joints
    swapped = (obs != person).any(axis=(1, 2))
    assert swapped.sum() == 48
    out = evaluate_files(PERSON, _write_preds(tmp_path / "obs.h5", obs), n_boot=200)
    assert out["per_joint"]["nose"] == 100.0
    assert out["pck@0.2"]["Wrist"] < 100.0 and out["pck@0.2"]["Elbow"] < 100.0
    assert out["pck@0.2"]["Wrist"] >= 100 * (1 - 48 / 1016) - 1e-9
    assert out["ci95"]["Mean"]["low"] < out["pck@0.2"]["Mean"] <= out["ci95"]["Mean"]["high"]


def test_processed_flic_layout_uses_joint_names(tmp_path):
    # The processed schema (data/flic.py) names its joints; a FLIC split is scored as FLIC.
    gt = load_ground_truth(OBSERVER)
    path = tmp_path / "valid.h5"
    with h5py.File(path, "w") as f:
        f["joints_image"] = gt.joints
        f["missing"] = gt.missing
        f["normalizer"] = gt.normalizer
        f["visible"] = np.ones(gt.missing.shape, bool)
        f.attrs["joint_names"] = list(FLIC_JOINTS)
        f.attrs["normalizer_definition"] = "torso diagonal |rsho - lhip|"
    processed = load_ground_truth(path)
    assert processed.dataset == "flic" and processed.layout == "processed"
    preds = gt.joints.copy()
    preds[:10, FLIC_JOINTS.index("lwri"), 1] += 1000.0
    out = evaluate_files(path, _write_preds(tmp_path / "p.h5", preds), n_boot=0)
    assert out["per_joint"]["lwri"] == pytest.approx(100 * (1 - 10 / 1016))
    assert out["visibility"]["occluded"] != out["visibility"]["occluded"]  # NaN: none occluded
