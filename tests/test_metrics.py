"""PCKh protocol semantics on small hand-made arrays."""

import numpy as np
import pytest

from hgbench.joints import MPII_JOINTS, joint_index
from hgbench.metrics import PROTOCOLS, SCORED_JOINTS, Protocol, pckh, pckh_distances

J = len(MPII_JOINTS)
NORM = 10.0  # head size in px: an offset of 5 px is exactly 0.5


def perfect(n=3):
    """n people with distinct joint positions, predictions equal to the ground truth."""
    gt = np.arange(n * J * 2, dtype=float).reshape(n, J, 2) * 7.0 + 1.0
    return gt.copy(), gt, np.zeros((n, J), bool), np.full(n, NORM)


def move(preds, joint, dx, rows=slice(None)):
    preds[rows, joint_index(joint), 0] += dx


def test_protocol_registry():
    assert set(PROTOCOLS) == {
        "official",
        "bearpaw",
        "hrnet",
        "mmpose",
        "pytorch-stacked-hourglass",
        "pose-hg-train",
        "flic",
    }
    assert all(isinstance(p, Protocol) and p.source and p.name == k for k, p in PROTOCOLS.items())
    with pytest.raises(ValueError, match="allowed: bearpaw, flic, hrnet, mmpose, official"):
        pckh(*perfect(), protocol="hrnet-typo")


def test_threshold_boundary_inclusive_vs_strict():
    preds, gt, missing, norm = perfect(1)
    move(preds, "lwri", 5.0)  # distance exactly 0.5
    move(preds, "rwri", 1.0)  # distance exactly 0.1
    assert pckh_distances(preds, gt, missing, norm)[0, joint_index("lwri")] == 0.5
    official = pckh(preds, gt, missing, norm, protocol="official")
    strict = pckh(preds, gt, missing, norm, protocol="bearpaw")
    assert official["per_joint"]["lwri"] == 100.0
    assert strict["per_joint"]["lwri"] == 0.0
    assert official["pckh@0.1"]["Wrist"] == 50.0  # rwri right on the boundary, lwri far off
    assert strict["pckh@0.1"]["Wrist"] == 0.0


def test_pckh_at_01_is_exactly_01():
    # HRNet's Mean@0.1 reads the curve at 0.11; a 0.105 error must fail at 0.1.
    preds, gt, missing, norm = perfect(1)
    move(preds, "lank", 1.05)
    assert pckh(preds, gt, missing, norm)["pckh@0.1"]["Ankle"] == 50.0


def test_missing_joints_skipped_and_nan_gt_allowed():
    preds, gt, missing, norm = perfect(4)
    move(preds, "lkne", 100.0, rows=0)  # wrong, but not annotated
    missing[0, joint_index("lkne")] = True
    gt[0, joint_index("lkne")] = np.nan
    out = pckh(preds, gt, missing, norm)
    assert out["per_joint"]["lkne"] == 100.0
    assert out["pckh@0.5"]["Mean"] == 100.0
    assert np.isnan(pckh_distances(preds, gt, missing, norm)[0, joint_index("lkne")])


def test_occluded_joints_are_scored():
    preds, gt, missing, norm = perfect(2)
    visible = np.ones((2, J), bool)
    visible[0, joint_index("relb")] = False  # occluded, wrong
    move(preds, "relb", 100.0, rows=0)
    out = pckh(preds, gt, missing, norm, visible=visible)
    assert out["per_joint"]["relb"] == 50.0
    assert out["visibility"] == {"visible": 100.0, "occluded": 0.0}


def test_pelvis_and_thorax_never_scored():
    preds, gt, missing, norm = perfect(2)
    move(preds, "pelv", 100.0)
    move(preds, "thrx", 100.0)
    out = pckh(preds, gt, missing, norm)
    assert out["pckh@0.5"]["Mean"] == 100.0
    assert "pelv" not in out["per_joint"] and "thrx" not in out["per_joint"]
    assert list(out["per_joint"]) == list(SCORED_JOINTS) and len(SCORED_JOINTS) == 14


def test_head_group():
    preds, gt, missing, norm = perfect(2)
    move(preds, "neck", 100.0)  # neck always wrong, head top right
    assert pckh(preds, gt, missing, norm, protocol="official")["pckh@0.5"]["Head"] == 50.0
    assert pckh(preds, gt, missing, norm, protocol="bearpaw")["pckh@0.5"]["Head"] == 100.0


def test_left_right_groups_average_per_joint_pck():
    preds, gt, missing, norm = perfect(4)
    missing[:3, joint_index("lsho")] = True  # lsho: 1 annotated instance, wrong
    move(preds, "lsho", 100.0)
    move(preds, "rsho", 100.0, rows=0)  # rsho: 3/4
    assert pckh(preds, gt, missing, norm)["pckh@0.5"]["Shoulder"] == pytest.approx((0 + 75) / 2)


def test_pooled_vs_unweighted_mean():
    # Ankle annotated once of 4 and wrong: the per-joint mean weights it like every other joint.
    preds, gt, missing, norm = perfect(4)
    missing[1:, joint_index("rank")] = True
    move(preds, "rank", 100.0, rows=0)
    n_scored = 14 * 4 - 3
    official = pckh(preds, gt, missing, norm, protocol="official")
    bearpaw = pckh(preds, gt, missing, norm, protocol="bearpaw")
    assert official["pckh@0.5"]["Mean"] == pytest.approx(100 * (n_scored - 1) / n_scored)
    assert bearpaw["pckh@0.5"]["Mean"] == pytest.approx(100 * 13 / 14)


def test_auc_and_curve():
    preds, gt, missing, norm = perfect(3)
    out = pckh(preds, gt, missing, norm)
    assert out["auc"] == pytest.approx(100.0)
    assert out["curve"]["thresholds"][0] == 0.0 and out["curve"]["thresholds"][-1] == 0.5
    assert len(out["curve"]["thresholds"]) == 51
    assert set(out["curve"]) == {"thresholds", "Head", "Shoulder", "Elbow", "Wrist", "Hip", "Knee", "Ankle", "Mean"}
    assert pckh(preds + 6.0, gt, missing, norm)["auc"] == 0.0  # every error is 0.85 > 0.5


def test_auc_is_trapezoid_on_scaled_thresholds():
    # Errors spread evenly: the Mean curve is a staircase; compare with a direct trapezoid.
    preds, gt, missing, norm = perfect(5)
    preds[..., 0] += np.linspace(0.0, 6.0, 5 * J).reshape(5, J)
    out = pckh(preds, gt, missing, norm)
    x = np.array(out["curve"]["thresholds"]) / 0.5
    assert out["auc"] == pytest.approx(np.trapezoid(out["curve"]["Mean"], x))


def test_nan_prediction_counts_as_wrong():
    preds, gt, missing, norm = perfect(2)
    preds[0, joint_index("head")] = np.nan
    assert np.isinf(pckh_distances(preds, gt, missing, norm)[0, joint_index("head")])
    out = pckh(preds, gt, missing, norm)
    assert out["per_joint"]["head"] == 50.0
    assert out["pckh@0.5"]["Mean"] == pytest.approx(100 * 27 / 28)


def test_ablation_pools_the_eight_limb_joints():
    preds, gt, missing, norm = perfect(1)
    move(preds, "lsho", 100.0)  # not an ablation joint
    move(preds, "rwri", 100.0)
    assert pckh(preds, gt, missing, norm)["ablation@0.5"] == pytest.approx(100 * 7 / 8)


@pytest.mark.parametrize(
    "name, mutate, message",
    [
        ("preds", lambda a: {**a, "preds": a["preds"][:, :14]}, r"preds has shape \(2, 14, 2\)"),
        ("gt rows", lambda a: {**a, "gt": a["gt"][:1]}, r"gt has 1 rows but preds has 2"),
        ("gt shape", lambda a: {**a, "gt": a["gt"][..., :1]}, r"gt has shape \(2, 16, 1\)"),
        ("missing", lambda a: {**a, "missing": a["missing"][:, :15]}, r"missing has shape .*\(N, 16\)"),
        (
            "normalizer shape",
            lambda a: {**a, "normalizer": a["normalizer"][:, None]},
            r"normalizer has shape \(2, 1\); expected \(N,\)",
        ),
        ("normalizer zero", lambda a: {**a, "normalizer": np.array([10.0, 0.0])}, "normalizer"),
        ("normalizer nan", lambda a: {**a, "normalizer": np.array([np.nan, 10.0])}, "normalizer"),
        (
            "gt nan",
            lambda a: {**a, "gt": np.where(np.arange(J)[None, :, None] == 3, np.nan, a["gt"])},
            "gt has .*non-finite",
        ),
    ],
)
def test_bad_inputs_raise_naming_the_array(name, mutate, message):
    preds, gt, missing, norm = perfect(2)
    args = mutate({"preds": preds, "gt": gt, "missing": missing, "normalizer": norm})
    with pytest.raises(ValueError, match=message):
        pckh(**args)


def test_bad_normalizer_allowed_for_rows_without_scored_joints():
    preds, gt, missing, norm = perfect(2)
    missing[1] = True
    norm[1] = np.nan
    assert pckh(preds, gt, missing, norm)["pckh@0.5"]["Mean"] == 100.0
