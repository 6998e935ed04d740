"""Gaussian heatmap targets and their decoding, vectorised in torch.

Frames: joints are given in heatmap cells, 0-based, cell centres at integers (see
docs/architecture.md). Input pixels relate to cells by ``x_px = (u + 0.5) * stride - 0.5``;
:func:`cells_to_pixels` and :func:`pixels_to_cells` are that relation and its inverse.
"""

from __future__ import annotations

import torch


def pixels_to_cells(xy: torch.Tensor, stride: float) -> torch.Tensor:
    """Input pixels → heatmap cells (any shape [..., 2])."""
    return (xy + 0.5) / stride - 0.5


def cells_to_pixels(uv: torch.Tensor, stride: float) -> torch.Tensor:
    """Heatmap cells → input pixels (any shape [..., 2])."""
    return (uv + 0.5) * stride - 0.5


def heatmap_targets(joints: torch.Tensor, valid: torch.Tensor, size: int, sigma: float = 1.0) -> torch.Tensor:
    """Unnormalised Gaussians (peak 1) centred on each joint.

    joints: [B, J, 2] (x, y) in heatmap cells; valid: [B, J] bool (missing joints → all-zero map,
    the Torch original's rule); size: heatmap side in cells; sigma: std in cells (1 in the paper).
    Values beyond 3σ are set to 0, as the original's 3σ window does. Returns [B, J, size, size].
    """
    grid = torch.arange(size, dtype=joints.dtype, device=joints.device)
    x = joints[..., 0].nan_to_num(-1e4)[..., None]
    y = joints[..., 1].nan_to_num(-1e4)[..., None]
    dx2 = (grid - x) ** 2  # [B, J, W]
    dy2 = (grid - y) ** 2  # [B, J, H]
    # The Gaussian is separable: 2·size exponentials per joint instead of size², the costly part
    # of target generation (the disc-shaped 3σ cut still needs the summed squared distance).
    gx, gy = torch.exp(-dx2 / (2 * sigma**2)), torch.exp(-dy2 / (2 * sigma**2))
    gx = gx * valid[..., None].to(gx.dtype)
    inside = (dy2[..., :, None] + dx2[..., None, :]) <= (3 * sigma) ** 2
    return gy[..., :, None] * gx[..., None, :] * inside


def decode_heatmaps(heatmaps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Argmax location of each heatmap, moved ¼ cell towards the higher neighbour.

    heatmaps: [..., H, W]. Returns (coords [..., 2] as (x, y) in heatmap cells, maxvals [...]).
    The ¼-cell shift follows the paper ("offset by a quarter of a pixel in the direction of its
    next highest neighbor"); like the Torch original it is skipped on border cells and when both
    neighbours are equal.
    """
    *lead, h, w = heatmaps.shape
    flat = heatmaps.reshape(-1, h, w)
    maxvals, idx = flat.reshape(flat.shape[0], -1).max(dim=1)
    ys, xs = idx // w, idx % w
    rows = torch.arange(flat.shape[0], device=flat.device)
    coords = torch.stack([xs, ys], dim=1).to(heatmaps.dtype)
    inner_x = (xs > 0) & (xs < w - 1)
    inner_y = (ys > 0) & (ys < h - 1)
    xl, xr = (xs - 1).clamp(min=0), (xs + 1).clamp(max=w - 1)
    yu, yd = (ys - 1).clamp(min=0), (ys + 1).clamp(max=h - 1)
    dx = torch.sign(flat[rows, ys, xr] - flat[rows, ys, xl]) * inner_x
    dy = torch.sign(flat[rows, yd, xs] - flat[rows, yu, xs]) * inner_y
    coords = coords + 0.25 * torch.stack([dx, dy], dim=1).to(heatmaps.dtype)
    return coords.reshape(*lead, 2), maxvals.reshape(*lead)
