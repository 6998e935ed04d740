"""The official protocol's arithmetic against the MPII toolkit's rules, on hand-made cases: MATLAB's
0:0.01:0.5, <= on exact ties at 0, 0.1 and 0.5, the AUC as the area under the piecewise-linear
Total curve, NaN predictions as misses."""

import numpy as np
import pytest

from hgbench.joints import MPII_JOINTS, joint_index
from hgbench.metrics import (
    CURVE_THRESHOLDS,
    MATLAB_CURVE_THRESHOLDS,
    compared_thresholds,
    matlab_colon,
    pck,
)

J = len(MPII_JOINTS)
LELB = joint_index("lelb")


def test_matlab_colon():
    r = matlab_colon(0.0, 0.01, 0.5)
    assert r.size == 51 and r[0] == 0.0 and r[25] == 0.25 and r[50] == 0.5
    assert r[10] == 10 * 0.01 == 0.1 and r[29] == 0.5 - 21 * 0.01 == 0.29000000000000004
    # one ulp off the decimal literals at exactly four points
    assert [round(float(t), 2) for t in r[r != CURVE_THRESHOLDS]] == [0.29, 0.33, 0.34, 0.41]
    assert np.abs(r - CURVE_THRESHOLDS).max() < 1e-16
    # the classic: 0:0.1:1 holds 3*0.1 (not 0.3) in the first half and 1 - 3*0.1 (= 0.7) in the second
    tenth = matlab_colon(0.0, 0.1, 1.0)
    assert tenth[3] == 3 * 0.1 != 0.3 and tenth[7] == 1 - 3 * 0.1 == 0.7 and tenth.size == 11
    assert compared_thresholds([0.5, 0.29, 0.123], "official").tolist() == [0.5, r[29], 0.123]
    assert compared_thresholds([0.29], "hrnet").tolist() == [0.29]


def one_person(offset_x: float, head: float = 1.0):
    """One person, every joint on its ground truth except lelb, ``offset_x`` px right of it."""
    gt = np.zeros((1, J, 2))
    gt[0, :, 0] = (np.arange(J) - LELB) * 10.0  # lelb at x = 0: pred x - gt x is exactly offset_x
    preds = gt.copy()
    preds[0, LELB, 0] += offset_x
    return preds, gt, np.zeros((1, J), bool), np.full(1, head)


def test_a_distance_on_matlabs_value_is_a_hit_under_official_only():
    preds, gt, missing, head = one_person(float(MATLAB_CURVE_THRESHOLDS[29]))  # 0.29000000000000004
    official = pck(preds, gt, missing, head, "official")["curve_per_joint"]["lelb"]
    hrnet = pck(preds, gt, missing, head, "hrnet")["curve_per_joint"]["lelb"]
    assert official[29] == 100.0 and hrnet[29] == 0.0  # hrnet compares with the literal 0.29
    assert pck(preds, gt, missing, head, "official")["curve"]["thresholds"][29] == 0.29  # reported as the literal


@pytest.mark.parametrize("offset, at", [(0.0, 0), (0.1, 10), (0.5, 50)])
def test_exact_ties_are_hits(offset, at):
    preds, gt, missing, head = one_person(offset)
    out = pck(preds, gt, missing, head, "official")
    assert out["curve_per_joint"]["lelb"][at] == 100.0
    if at:
        assert out["curve_per_joint"]["lelb"][at - 1] == 0.0
    key = {10: "pckh@0.1", 50: "pckh@0.5"}.get(at)
    if key:
        assert out[key]["Elbow"] == 100.0  # both elbows hit: lelb exactly at the threshold


def test_auc_is_the_area_under_the_piecewise_linear_total_curve():
    rng = np.random.default_rng(0)
    n = 40
    gt = rng.uniform(0, 100, (n, J, 2))
    preds = gt + rng.normal(0, 4, (n, J, 2))
    missing = rng.random((n, J)) < 0.1
    gt[missing] = np.nan
    out = pck(preds, gt, missing, np.full(n, 10.0), "official")
    x = np.asarray(out["curve"]["thresholds"]) / 0.5  # scale01(range)
    y = np.asarray(out["curve"]["Mean"])  # pck(:, end): Total
    fine = np.linspace(0, 1, 20001)  # the interpolant, integrated finely
    assert out["auc"] == pytest.approx(np.trapezoid(np.interp(fine, x, y), fine), abs=1e-6)
    assert out["auc"] == pytest.approx(float(np.sum(np.diff(x) * (y[1:] + y[:-1]) / 2)), abs=1e-12)


def test_nan_predictions_are_misses_and_missing_gt_is_skipped():
    preds, gt, missing, head = one_person(0.0, head=10.0)
    preds[0, LELB] = np.nan, 5.0  # one NaN coordinate: inf distance, a miss at every threshold
    missing[0, joint_index("rank")] = True  # not annotated: never scored, whatever the prediction
    gt[0, joint_index("rank")] = np.nan
    preds[0, joint_index("rank")] = 1e6
    out = pck(preds, gt, missing, head, "official")
    assert out["curve_per_joint"]["lelb"] == [0.0] * 51
    assert out["pckh@0.5"]["Mean"] == pytest.approx(100 * 12 / 13)  # 13 scored, lelb wrong
    assert out["per_person"]["correct"][0][LELB] == "0" and out["per_person"]["correct"][0][0] == "-"
