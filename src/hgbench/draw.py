"""Skeleton drawing with Pillow: the one function behind ``hgbench infer``'s overlays and the
report's gallery (:func:`hgbench.report.figures.gallery_figure` shows panels drawn here), so
that both look the same and the core install needs no matplotlib.

Frame: points are 0-based continuous image pixels (the centre of pixel (i, j) is at (i, j)),
which is also Pillow's drawing frame. NaN marks a joint that is not drawn.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw

GT_COLOUR, PRED_COLOUR = "#0072B2", "#E69F00"
"""Okabe–Ito blue (ground truth) and orange (prediction): distinguishable with every common
colour-vision deficiency; a white outline keeps them visible on any image."""
OUTLINE = "white"


def line_width(width: int, height: int) -> int:
    """Limb width in px that reads at the image's size (1/160 of the shorter side, at least 2)."""
    return max(2, round(min(width, height) / 160))


def _dashes(p: np.ndarray, q: np.ndarray, dash: float, gap: float):
    """Segments of the dashed line p → q (dash, gap in px)."""
    length = float(np.hypot(*(q - p)))
    if length == 0:
        return
    step = dash + gap
    for k in range(max(1, math.ceil(length / step))):
        a, b = k * step, min(k * step + dash, length)
        yield p + (q - p) * (a / length), p + (q - p) * (b / length)


def draw_skeleton(
    image: Image.Image,
    points,
    limbs,
    colour: str = PRED_COLOUR,
    *,
    width: int | None = None,
    dashed: bool = False,
    scores=None,
    min_score: float | None = None,
) -> Image.Image:
    """Draw one skeleton onto ``image`` (in place; returned for chaining).

    points: [J, 2] (x, y), 0-based image px; limbs: (i, j) index pairs (``joints.skeleton_limbs``);
    width: limb width in px (default :func:`line_width`); dashed: dashes (the gallery's ground
    truth). With ``scores`` [J] and ``min_score``, joints scoring below it and their limbs are left
    out. Each limb and joint gets a white outline 1/2 width wide.
    """
    pts = np.asarray(points, dtype=float).reshape(-1, 2)
    ok = np.isfinite(pts).all(axis=1)
    if scores is not None and min_score is not None:
        ok &= np.asarray(scores, dtype=float).reshape(-1) >= min_score
    w = width or line_width(*image.size)
    outline = max(1, w // 2)
    draw = ImageDraw.Draw(image)
    segments = []
    for a, b in limbs:
        if ok[a] and ok[b]:
            segments += list(_dashes(pts[a], pts[b], 3.0 * w, 2.0 * w)) if dashed else [(pts[a], pts[b])]
    # Outlines first, everywhere, so that no outline covers another limb's colour.
    for extra, fill in ((2 * outline, OUTLINE), (0, colour)):
        for p, q in segments:
            draw.line([tuple(p), tuple(q)], fill=fill, width=w + extra)
            if not dashed:  # round caps, so that limbs meet without notches
                r = (w + extra) / 2
                for c in (p, q):
                    draw.ellipse([c[0] - r, c[1] - r, c[0] + r, c[1] + r], fill=fill)
    r = 0.9 * w
    for x, y in pts[ok]:
        draw.ellipse([x - r, y - r, x + r, y + r], fill=colour, outline=OUTLINE, width=outline)
    return image


def gallery_panel(image: np.ndarray, gt, pred, limbs, upscale: int = 4) -> np.ndarray:
    """A gallery crop [S, S, 3] uint8 with the ground truth (blue, dashed) and prediction (orange)
    drawn by :func:`draw_skeleton`, returned at ``upscale``× the size ([S·u, S·u, 3]) so the lines
    stay thin next to the crop's pixels. ``gt``/``pred``: [J, 2] in the crop's 0-based px."""
    size = image.shape[0]
    canvas = Image.fromarray(np.asarray(image, dtype=np.uint8)).resize(
        (size * upscale, size * upscale), Image.Resampling.BICUBIC
    )

    def scaled(p):  # 0-based continuous px: x' = (x + 0.5)·f − 0.5
        return (np.asarray(p, dtype=float) + 0.5) * upscale - 0.5

    width = max(2, round(1.5 * upscale))
    draw_skeleton(canvas, scaled(gt), limbs, GT_COLOUR, width=width, dashed=True)
    draw_skeleton(canvas, scaled(pred), limbs, PRED_COLOUR, width=width)
    return np.asarray(canvas)
