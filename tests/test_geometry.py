"""Coordinate frames end to end: augmentation, heatmaps, flip test and back-projection agree."""

import math

import numpy as np
import pytest
import torch

from hgbench.data.dataset import centre_inputs, warp_batch
from hgbench.heatmaps import decode_heatmaps, heatmap_targets, pixels_to_cells
from hgbench.joints import MPII_FLIP
from hgbench.predict import cells_to_native, predict_heatmaps

FLIP = torch.tensor(MPII_FLIP)


def dot_crops(points: np.ndarray, size: int) -> torch.Tensor:
    """uint8 crops [B, size, size, 3] with a 3×3 white dot at each (x, y) crop px."""
    crops = torch.zeros(len(points), size, size, 3, dtype=torch.uint8)
    for b, (x, y) in enumerate(points):
        xi, yi = int(round(x)), int(round(y))
        crops[b, yi - 1 : yi + 2, xi - 1 : xi + 2] = 255
    return crops


@pytest.mark.parametrize(
    "angle, scale, flip", [(0.0, 1.0, False), (25.0, 1.2, False), (-30.0, 0.8, True), (10.0, 1.0, True)]
)
def test_warp_moves_joints_with_the_image(angle, scale, flip):
    c, r = 80, 64
    joints = torch.zeros(1, 16, 2)
    joints[0, 0] = torch.tensor([47.0, 31.0])  # right ankle at a dot
    joints[0, 5] = torch.tensor([20.0, 60.0])
    missing = torch.zeros(1, 16, dtype=torch.bool)
    missing[0, 5] = True
    crops = dot_crops(joints[0, :1].numpy(), c)
    images, out, miss = warp_batch(
        crops,
        joints,
        missing,
        r,
        torch.tensor([math.radians(angle)], dtype=torch.float64),
        torch.tensor([scale], dtype=torch.float64),
        torch.tensor([flip]),
        FLIP,
    )
    ch = 5 if flip else 0  # a flipped right ankle becomes the left ankle's channel
    y, x = np.unravel_index(images[0, 0].argmax().item(), (r, r))
    assert abs(out[0, ch, 0].item() - x) <= 1.0 and abs(out[0, ch, 1].item() - y) <= 1.0
    assert miss[0].sum() == 1 and miss[0, 0 if flip else 5]  # the missing flag moves with its joint


def test_oracle_heatmaps_back_project_to_the_ground_truth():
    # A perfect network: heatmaps drawn at the ground truth of a centre crop.
    rng = np.random.default_rng(0)
    n, crop, res, out_res = 5, 160, 128, 32
    joints_crop = rng.uniform(30, 130, size=(n, 16, 2))  # off the border cells, where no ¼ shift applies
    a = np.zeros((n, 2, 3))
    for i in range(n):  # crop → native: scale k, then translation (1-based native frame)
        k = rng.uniform(1.5, 4)
        a[i] = [[k, 0, rng.uniform(0, 500) + 1], [0, k, rng.uniform(0, 300) + 1]]
    native = np.einsum("nij,nkj->nki", a[:, :, :2], joints_crop) + a[:, None, :, 2]
    offset = (crop - res) / 2
    uv = pixels_to_cells(torch.tensor(joints_crop - offset), res / out_res)
    hm = heatmap_targets(uv, torch.ones(n, 16, dtype=torch.bool), out_res, sigma=1.0)
    decoded, _ = decode_heatmaps(hm)
    got = cells_to_native(decoded.numpy(), a, crop, res, out_res)
    cell_in_native = (res / out_res) * a[:, 0, 0]
    err = np.abs(got - native).max(axis=(1, 2))
    assert (err <= 0.25 * cell_in_native + 1e-9).all()


class DotNet(torch.nn.Module):
    """Stand-in network: channel 0 is the input's brightness pooled to the heatmap grid."""

    def forward(self, x):
        hm = torch.nn.functional.avg_pool2d(x.mean(1, keepdim=True), 4)
        out = torch.zeros(x.shape[0], 1, 16, *hm.shape[-2:])
        out[:, 0, 0] = hm[:, 0]
        return out


def test_flip_test_mirrors_back_to_the_same_place_and_swaps_channels():
    crops = dot_crops(np.array([[45.0, 30.0]]), 64)
    images = centre_inputs(crops, 64)
    plain = predict_heatmaps(DotNet(), images, FLIP, flip_test=False)
    both = predict_heatmaps(DotNet(), images, FLIP, flip_test=True)
    # The mirrored pass sees the right ankle's dot as the left ankle (channel 5), at the same spot.
    assert torch.allclose(both[0, 0, 0], plain[0, 0, 0] / 2)
    assert torch.allclose(both[0, 0, 5], plain[0, 0, 0] / 2)
    c0, _ = decode_heatmaps(both[:, :, [0]])
    c5, _ = decode_heatmaps(both[:, :, [5]])
    assert torch.equal(c0, c5)
