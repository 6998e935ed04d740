"""Every protocol against what its codebase published, on the real reference files.

Where a codebase published a table for one of our prediction files, the table is pinned here with
its source. Where it did not (HRNet and mmpose never scored these files), the protocol is pinned by
an independent few-line transcription of that codebase's arithmetic, written from reading it
(docs/evaluation.md has the details), plus the numbers it produces.
"""

import json
from pathlib import Path

import h5py
import numpy as np
import pytest
import scipy.io

from hgbench.cli import main
from hgbench.evaluate import evaluate_files, load_ground_truth
from hgbench.metrics import HRNET_AT_01, PROTOCOLS, scored_mask

REF = Path(__file__).parent / "data" / "reference"
GT_VALID = REF / "detections_our_format.mat"
HG_VALID = REF / "valid.h5"
FILES = [
    "eval-mpii-pose_newell.h5",
    "pose-hg-demo_valid-ours.h5",
    "bearpaw-hg_s1_b1.mat",
    "bearpaw-hg_s2_b1.mat",
    "bearpaw-hg_s8_b1.mat",
]
GROUPS = ("Head", "Shoulder", "Elbow", "Wrist", "Hip", "Knee", "Ankle", "Mean")


def _preds(name):
    if name.endswith(".mat"):
        return scipy.io.loadmat(REF / name)["preds"].astype(np.float64)
    with h5py.File(REF / name, "r") as f:
        return f["preds"][()]


def _score(name, protocol, gt=GT_VALID):
    return evaluate_files(gt, REF / name, protocol=protocol, n_boot=0)


# --- published tables ---------------------------------------------------------------------

# bearpaw in princeton-vl/pose-hg-demo issue #1 (2016-07-28), row "valid-ours", computed with
# bearpaw's eval_PCKh against detections_our_format.mat: head top only, strict <, unweighted mean.
BEARPAW_ISSUE_VALID_OURS = dict(
    Head=95.94, Shoulder=94.68, Elbow=88.53, Wrist=83.38, Hip=87.48, Knee=83.09, Ankle=79.05, Mean=87.56
)


def test_bearpaw_table_of_valid_ours():
    row = _score("pose-hg-demo_valid-ours.h5", "bearpaw")["pckh@0.5"]
    for key, value in BEARPAW_ISSUE_VALID_OURS.items():
        assert row[key] == pytest.approx(value, abs=0.005), key


# dbaranchuk in princeton-vl/pose-hg-demo issue #6 (2016-12-06), row "valid-ours": the demo's Lua
# evaluation (calcDists: joint used iff GT x > 1 and y > 1; distAccuracy: dist <= 0.5; groups =
# mean of the two joints' accuracies; Head = neck and head top) on valid.h5 `part`/`normalize`.
# Head, Shoulder, Elbow, Wrist and Ankle match to the printed 2 decimals. Hip (87.4848 here) and
# Knee (83.0944) are printed as 87.49 and 83.10: 0.005-0.006 apart, below one joint instance
# (0.017 points); no rule in the Lua code explains it (float32 distances do not change it), so
# those two are pinned to 0.011 and the gap is reported in docs/evaluation.md.
LUA_ISSUE_VALID_OURS = dict(Head=96.67, Shoulder=94.68, Elbow=88.54, Wrist=83.38, Ankle=79.07)
LUA_ISSUE_CLOSE = dict(Hip=87.49, Knee=83.10)


def test_pose_hg_train_lua_table_of_valid_ours():
    row = _score("pose-hg-demo_valid-ours.h5", "pose-hg-train", gt=HG_VALID)["pckh@0.5"]
    for key, value in LUA_ISSUE_VALID_OURS.items():
        assert row[key] == pytest.approx(value, abs=0.005), key
    for key, value in LUA_ISSUE_CLOSE.items():
        assert row[key] == pytest.approx(value, abs=0.011), key


def test_pytorch_stacked_hourglass_instance_counts():
    # jiang-du in princeton-vl/pytorch_stacked_hourglass PR #14 prints test.py's counts on
    # valid.h5: total 44239, ankle 4234, knee 4963, hip 5777, pelvis 2878, thorax 2932, neck 2932,
    # head 2931, wrist 5837, elbow 5867, shoulder 5888; visible total 33996. test.py skips a joint
    # only when its x is 0, pools all 16 joints, and one head top has x = 0 with y != 0 (44240
    # joints are annotated, 33997 flagged visible).
    gt = load_ground_truth(HG_VALID)
    scored = scored_mask(gt.joints, gt.missing, PROTOCOLS["pytorch-stacked-hourglass"])
    per_joint = scored.sum(axis=0)
    assert scored.sum() == 44239 and (scored & gt.visible).sum() == 33996
    pairs = {"ankle": (0, 5), "knee": (1, 4), "hip": (2, 3), "wrist": (10, 15), "elbow": (11, 14), "shoulder": (12, 13)}
    counts = {k: int(per_joint[list(v)].sum()) for k, v in pairs.items()}
    assert counts == {"ankle": 4234, "knee": 4963, "hip": 5777, "wrist": 5837, "elbow": 5867, "shoulder": 5888}
    assert per_joint[6:10].tolist() == [2878, 2932, 2932, 2931]  # pelvis, thorax, neck, head


# --- independent transcriptions of each codebase's arithmetic ------------------------------


def _gt_valid_arrays():
    m = scipy.io.loadmat(GT_VALID)
    head = 0.6 * np.linalg.norm(m["headboxes_src"][1] - m["headboxes_src"][0], axis=0)
    return m["pos_gt_src"], 1 - m["jnt_missing"], head  # (16,2,N), (16,N), (N,)


def _hrnet_like(preds, strict, at01_row):
    """HRNet / mmpose: (16,2,N) arrays, count-weighted Mean with pelvis/thorax masked."""
    pos_gt, vis, head = _gt_valid_arrays()
    err = np.linalg.norm(preds.transpose(1, 2, 0) - pos_gt, axis=1) / head
    rng = np.arange(0, 0.5 + 0.01, 0.01)

    def pck(thr):
        ok = (err < thr) if strict else (err <= thr)
        return 100.0 * (ok * vis).sum(axis=1) / vis.sum(axis=1)

    ratio = vis.sum(axis=1).astype(float)
    ratio[6:8] = 0
    ratio /= ratio.sum()
    p = pck(0.5)
    return {
        "Head": p[9],
        "Wrist": 0.5 * (p[10] + p[15]),
        "Mean": (p * ratio).sum(),
        "Mean@0.1": (pck(rng[at01_row]) * ratio).sum(),
    }


@pytest.mark.parametrize("name", FILES)
def test_hrnet_protocol(name):
    out = _score(name, "hrnet")
    ref = _hrnet_like(_preds(name), strict=False, at01_row=11)
    assert out["thresholds"]["pckh@0.1"] == HRNET_AT_01 == np.arange(0, 0.51, 0.01)[11]
    for key in ("Head", "Wrist", "Mean"):
        assert out["pckh@0.5"][key] == pytest.approx(ref[key], abs=1e-9)
    assert out["pckh@0.1"]["Mean"] == pytest.approx(ref["Mean@0.1"], abs=1e-9)


@pytest.mark.parametrize("name", FILES)
def test_mmpose_protocol(name):
    out = _score(name, "mmpose")
    ref = _hrnet_like(_preds(name), strict=True, at01_row=10)  # mmpose PR #516 fixed row 11 → 10
    for key in ("Head", "Wrist", "Mean"):
        assert out["pckh@0.5"][key] == pytest.approx(ref[key], abs=1e-9)
    assert out["pckh@0.1"]["Mean"] == pytest.approx(ref["Mean@0.1"], abs=1e-9)


def test_psh_pools_sixteen_joints_and_pools_groups():
    # test.py: 'total' = correct / count over every joint with x != 0, pelvis and thorax included;
    # a group ('wrist') pools both sides' instances; strict bound > error; valid.h5 GT.
    p = _preds("eval-mpii-pose_newell.h5")
    with h5py.File(HG_VALID, "r") as f:
        part, norm = f["part"][()], f["normalize"][()]
    err = np.linalg.norm(p - part, axis=-1) / norm[:, None]
    use = part[..., 0] != 0
    ok = (0.5 > err) & use
    out = _score("eval-mpii-pose_newell.h5", "pytorch-stacked-hourglass", gt=HG_VALID)
    assert out["pckh@0.5"]["Mean"] == pytest.approx(100 * ok.sum() / use.sum(), abs=1e-9)
    wr = [10, 15]
    assert out["pckh@0.5"]["Wrist"] == pytest.approx(100 * ok[:, wr].sum() / use[:, wr].sum())
    assert out["per_joint"]["pelv"] > 0 and "thrx" in out["per_joint"]


# --- the closing-note table: every protocol × reference file (PCKh@0.5 Mean, %) -------------
# Each row is the protocol on the ground truth its codebase uses (docs/evaluation.md): official on
# the MPII annotation list (here given as gt_valid.mat, which official replaces by the shipped
# annotation list; s1 was 85.08 on gt_valid.mat as stored: one real ankle that file zeroes is a hit).
MEAN_TABLE = {
    #                               newell  valid-ours  s1     s2     s8
    ("official", "gt"): (88.43, 88.04, 85.09, 87.30, 89.09),
    ("bearpaw", "gt"): (87.98, 87.56, 84.46, 86.76, 88.64),
    ("hrnet", "gt"): (88.43, 88.04, 85.08, 87.30, 89.09),
    ("mmpose", "gt"): (88.43, 88.04, 85.08, 87.30, 89.09),
    ("pytorch-stacked-hourglass", "hg"): (89.25, 88.96, 86.21, 88.20, 89.89),
    ("pose-hg-train", "hg"): (88.41, 88.02, 85.08, 87.29, 89.08),
}


@pytest.mark.parametrize("protocol, gt", sorted(MEAN_TABLE))
def test_mean_table(protocol, gt):
    got = [_score(f, protocol, GT_VALID if gt == "gt" else HG_VALID)["pckh@0.5"]["Mean"] for f in FILES]
    assert got == pytest.approx(list(MEAN_TABLE[(protocol, gt)]), abs=0.005)


# --- the CLI door ---------------------------------------------------------------------------


def test_cli_evaluate_writes_metrics(tmp_path, capsys):
    out = tmp_path / "m.json"
    rc = main(
        [
            "evaluate",
            "--ground-truth",
            str(GT_VALID),
            "--predictions",
            str(REF / "bearpaw-hg_s8_b1.mat"),
            "--protocol",
            "hrnet",
            "--out",
            str(out),
        ]
    )
    assert rc == 0
    m = json.loads(out.read_text())
    assert m["protocol"] == "hrnet" and m["n_people"] == 2958
    assert set(m["pckh@0.5"]) == set(GROUPS) and set(m["pckh@0.1"]) == set(GROUPS)
    assert len(m["per_joint"]) == 14 and m["ablation@0.5"] == pytest.approx(85.47, abs=0.005)
    ci = m["ci95"]["Mean"]
    assert ci["low"] < m["pckh@0.5"]["Mean"] < ci["high"] and ci["high"] - ci["low"] < 2
    assert len(m["per_person"]["correct"]) == 2958
    assert "pckh@0.5 (hrnet): Head 96.8" in capsys.readouterr().out


def test_cli_errors_name_the_file(tmp_path, capsys):
    bad = tmp_path / "nan.h5"
    p = _preds("bearpaw-hg_s8_b1.mat")
    p[5, 3] = np.nan
    with h5py.File(bad, "w") as f:
        f["preds"] = p
    args = ["evaluate", "--ground-truth", str(GT_VALID), "--predictions", str(bad), "--out", str(tmp_path / "m.json")]
    assert main(args) == 2
    assert "nan.h5: 'preds' has 1 non-finite joints (first: row 5, joint 3)" in capsys.readouterr().err
    assert not (tmp_path / "m.json").exists()
    assert main(args + ["--allow-nan"]) == 0  # scored as wrong, like the MATLAB toolkit
    short = tmp_path / "short.h5"
    with h5py.File(short, "w") as f:
        f["preds"] = p[:100]
    args[4] = str(short)
    assert main(args) == 2
    assert "short.h5: 'preds' has 100 rows" in capsys.readouterr().err
