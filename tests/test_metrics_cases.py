"""More hand-made PCK cases with known answers, across protocols (complements test_metrics.py)."""

import numpy as np
import pytest

from hgbench.joints import MPII_FLIP, MPII_JOINTS, joint_index
from hgbench.metrics import PROTOCOLS, decode_correct, encode_correct, pck, scored_mask, table_from_counts

J = len(MPII_JOINTS)


def people(n=4):
    """n people, joints spread 30 px apart along x (so a left/right swap is far off), head 10 px."""
    gt = np.zeros((n, J, 2))
    gt[..., 0] = 100.0 + 30.0 * np.arange(J)
    gt[..., 1] = 50.0 + 5.0 * np.arange(n)[:, None]
    return gt.copy(), gt, np.zeros((n, J), bool), np.full(n, 10.0)


@pytest.mark.parametrize("name, inclusive", [(k, p.inclusive) for k, p in PROTOCOLS.items() if p.dataset == "mpii"])
def test_distance_exactly_at_threshold_every_protocol(name, inclusive):
    preds, gt, missing, norm = people(1)
    preds[0, joint_index("lelb"), 1] += 5.0  # exactly 0.5 head sizes
    got = pck(preds, gt, missing, norm, protocol=name)["per_joint"]["lelb"]
    assert got == (100.0 if inclusive else 0.0)


def test_flipped_left_right_pairs():
    # Predictions with every left/right pair swapped: all limb joints wrong, neck and head (their
    # own mirror image) right, so Head stays 100 and every paired group drops to 0.
    preds, gt, missing, norm = people(3)
    preds = preds[:, list(MPII_FLIP)]
    out = pck(preds, gt, missing, norm)
    assert out["pckh@0.5"]["Head"] == 100.0
    for group in ("Shoulder", "Elbow", "Wrist", "Hip", "Knee", "Ankle"):
        assert out["pckh@0.5"][group] == 0.0, group
    assert out["pckh@0.5"]["Mean"] == pytest.approx(100 * 2 / 14)
    assert out["ablation@0.5"] == 0.0


def test_missing_vs_occluded_in_visibility_groups():
    preds, gt, missing, norm = people(4)
    visible = np.ones((4, J), bool)
    w = joint_index("rwri")
    missing[0, w] = True  # not annotated: never counted, even though the prediction is far off
    preds[0, w] += 500.0
    visible[1, w] = False  # occluded and wrong: counted as a miss
    preds[1, w] += 500.0
    out = pck(preds, gt, missing, norm, visible=visible)
    assert out["per_joint"]["rwri"] == pytest.approx(100 * 2 / 3)
    vg = out["visibility_groups"]["Wrist"]
    assert vg == {"all": pytest.approx(100 * 6 / 7), "visible": 100.0, "occluded": 0.0}


def test_pelvis_thorax_scored_only_by_pytorch_stacked_hourglass():
    preds, gt, missing, norm = people(2)
    preds[:, joint_index("pelv")] += 100.0
    official = pck(preds, gt, missing, norm, protocol="official")
    psh = pck(preds, gt, missing, norm, protocol="pytorch-stacked-hourglass")
    assert official["pckh@0.5"]["Mean"] == 100.0
    assert psh["pckh@0.5"]["Mean"] == pytest.approx(100 * 15 / 16)
    assert psh["per_joint"]["pelv"] == 0.0 and "pelv" not in official["per_joint"]


def test_gt_rules_zero_and_one_coordinates():
    # PSH skips a joint whose GT x is 0; pose-hg-train skips x <= 1 or y <= 1; official scores both.
    preds, gt, missing, norm = people(1)
    gt[0, joint_index("lank")] = (0.0, 40.0)
    gt[0, joint_index("rank")] = (1.0, 40.0)
    preds[0, [joint_index("lank"), joint_index("rank")]] = (300.0, 300.0)  # both wrong
    mask = {
        k: scored_mask(gt, missing, PROTOCOLS[k])[0] for k in ("official", "pytorch-stacked-hourglass", "pose-hg-train")
    }
    assert mask["official"][[0, 5]].tolist() == [True, True]
    assert mask["pytorch-stacked-hourglass"][[0, 5]].tolist() == [True, False]
    assert mask["pose-hg-train"][[0, 5]].tolist() == [False, False]
    assert pck(preds, gt, missing, norm, protocol="pose-hg-train")["pckh@0.5"]["Mean"] == 100.0


def test_hrnet_at_01_reads_the_curve_at_011():
    preds, gt, missing, norm = people(1)
    preds[0, joint_index("head"), 0] += 1.05  # 0.105 head sizes
    assert pck(preds, gt, missing, norm, protocol="hrnet")["per_joint"]["head"] == 100.0
    hrnet = pck(preds, gt, missing, norm, protocol="hrnet")["pckh@0.1"]["Head"]
    mmpose = pck(preds, gt, missing, norm, protocol="mmpose")["pckh@0.1"]["Head"]
    assert (hrnet, mmpose) == (100.0, 0.0)


def test_nan_prediction_wrong_under_every_protocol():
    preds, gt, missing, norm = people(2)
    preds[0, joint_index("lwri")] = np.nan
    for name, proto in PROTOCOLS.items():
        if proto.dataset == "mpii":
            assert pck(preds, gt, missing, norm, protocol=name)["per_joint"]["lwri"] == 50.0, name


def test_per_person_strings_round_trip_and_reproduce_the_table():
    rng = np.random.default_rng(0)
    preds, gt, missing, norm = people(30)
    preds += rng.normal(0, 4, preds.shape)
    missing[rng.random(missing.shape) < 0.1] = True
    gt[missing] = np.nan
    for name in ("official", "bearpaw", "pytorch-stacked-hourglass"):
        out = pck(preds, gt, missing, norm, protocol=name)
        correct, scored = decode_correct(out["per_person"]["correct"])
        assert encode_correct(correct, scored) == out["per_person"]["correct"]
        table = table_from_counts((correct & scored).sum(0), scored.sum(0), name)
        assert table["Mean"] == pytest.approx(out["pckh@0.5"]["Mean"])
        assert table["Wrist"] == pytest.approx(out["pckh@0.5"]["Wrist"])
