import math

import pytest
import torch

from hgbench.heatmaps import cells_to_pixels, decode_heatmaps, heatmap_targets, pixels_to_cells


def test_target_peak_and_sigma():
    joints = torch.tensor([[[5.0, 7.0], [2.0, 3.0]]])
    hm = heatmap_targets(joints, torch.tensor([[True, False]]), size=16, sigma=1.0)
    assert hm.shape == (1, 2, 16, 16)
    assert hm[0, 0, 7, 5] == 1.0
    assert hm[0, 0, 7, 6] == pytest.approx(math.exp(-0.5))
    assert hm[0, 0, 7, 9] == 0.0  # beyond 3 sigma
    assert hm[0, 1].abs().sum() == 0  # missing joint: all-zero target


def test_target_of_missing_nan_joint_is_zero_and_finite():
    hm = heatmap_targets(torch.tensor([[[float("nan"), 1.0]]]), torch.tensor([[False]]), size=8)
    assert torch.isfinite(hm).all() and hm.sum() == 0


@pytest.mark.parametrize("x, y", [(5.0, 7.0), (5.3, 7.4), (10.8, 3.2), (0.2, 14.9)])
def test_decode_recovers_joint_within_quarter_cell(x, y):
    hm = heatmap_targets(torch.tensor([[[x, y]]]), torch.tensor([[True]]), size=16, sigma=1.0)
    coords, maxval = decode_heatmaps(hm)
    assert maxval.item() > 0.5
    assert abs(coords[0, 0, 0] - x) <= 0.25 + 1e-6
    assert abs(coords[0, 0, 1] - y) <= 0.25 + 1e-6


def test_quarter_shift_direction_and_border_rule():
    hm = torch.zeros(1, 1, 8, 8)
    hm[0, 0, 4, 4] = 1.0
    hm[0, 0, 4, 5] = 0.5  # right neighbour higher → +0.25 in x
    hm[0, 0, 3, 4] = 0.5  # upper neighbour higher → −0.25 in y
    coords, _ = decode_heatmaps(hm)
    assert coords[0, 0].tolist() == [4.25, 3.75]
    hm = torch.zeros(1, 1, 8, 8)
    hm[0, 0, 0, 7] = 1.0
    hm[0, 0, 0, 6] = 0.5
    coords, _ = decode_heatmaps(hm)
    assert coords[0, 0].tolist() == [7.0, 0.0]  # border cell: no shift


def test_pixel_cell_round_trip_and_mirror_symmetry():
    px = torch.tensor([[0.0, 0.0], [63.0, 31.5]])
    assert torch.allclose(cells_to_pixels(pixels_to_cells(px, 4), 4), px)
    # Mirroring input pixels (x → R−1−x) mirrors cells (u → W−1−u): flip test needs no shift.
    r, w = 64, 16
    u = pixels_to_cells(torch.tensor([r - 1 - 10.0]), 4)
    assert u.item() == pytest.approx(w - 1 - pixels_to_cells(torch.tensor([10.0]), 4).item())
