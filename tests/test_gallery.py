"""Gallery: normalised error, best/median/worst selection, frames, and the gallery.h5 round trip."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from conftest import write_split
from hgbench import gallery
from hgbench.joints import MPII_JOINTS

J = len(MPII_JOINTS)


def test_normalised_error_skips_missing_joints():
    gt = np.zeros((2, 3, 2))
    pred = np.zeros((2, 3, 2))
    pred[0, :, 0] = [3.0, 6.0, 600.0]  # the 600 px joint is missing: not counted
    missing = np.array([[False, False, True], [True, True, True]])
    err = gallery.normalised_error(pred, gt, missing, np.array([3.0, 1.0]))
    assert err[0] == pytest.approx((1.0 + 2.0) / 2)
    assert np.isnan(err[1])  # nobody annotated


def test_pick_cases_best_median_worst_on_a_tiny_case():
    scores = np.array([0.3, 0.1, np.nan, 0.5, 0.2])
    # ranked: 0.1 (row 1), 0.2 (row 4), 0.3 (row 0), 0.5 (row 3); lower median = second of four
    assert gallery.pick_cases(scores) == [("best", 1), ("median", 4), ("worst", 3)]
    assert gallery.pick_cases(np.array([0.2, 0.9, 0.4])) == [("best", 0), ("median", 2), ("worst", 1)]


def test_pick_cases_with_few_people():
    assert gallery.pick_cases(np.array([np.nan, np.nan])) == []
    assert gallery.pick_cases(np.array([0.7])) == [("best", 0)]
    assert gallery.pick_cases(np.array([0.7, 0.1])) == [("best", 1), ("worst", 0)]


def test_native_to_crop_inverts_the_stored_affine_and_downscale_keeps_pixel_centres():
    a = np.array([[2.0, 0.0, 10.0], [0.0, 2.0, 20.0]])  # crop px → native: ×2, then shift
    crop = np.array([[0.0, 0.0], [5.0, 7.5]])
    native = crop @ a[:, :2].T + a[:, 2]
    assert gallery.native_to_crop(native, a) == pytest.approx(crop)
    image = np.zeros((64, 64, 3), np.uint8)
    small, pts = gallery.downscale(image, np.array([[-0.5, -0.5], [63.5, 63.5], [31.5, 31.5]]), 16)
    assert small.shape == (16, 16, 3)
    assert pts == pytest.approx(np.array([[-0.5, -0.5], [15.5, 15.5], [7.5, 7.5]]))  # edges stay edges


def _write_split(path, n=5, crop=32, labelled=True):
    rng = np.random.default_rng(0)
    gt = rng.uniform(40, 60, (n, J, 2))
    missing = np.zeros((n, J), bool) if labelled else np.ones((n, J), bool)
    missing[:, 6] = True
    affine = np.tile(np.array([[2.0, 0.0, 10.0], [0.0, 2.0, 20.0]]), (n, 1, 1))
    write_split(
        path,
        images=rng.integers(0, 255, (n, crop, crop, 3), dtype=np.uint8),
        joints_image=gt,
        missing=missing,
        normalizer=np.full(n, 10.0),
        crop_to_image=affine,
    )
    return gt


def _write_preds(path, preds):
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        f["preds"] = preds


def test_build_gallery_selects_per_variant_and_round_trips(tmp_path):
    from test_summarize import make_params  # the fake profile: synth has hg1 (s0, s1), hg2, evil

    params = make_params()
    data = tmp_path / "data"
    data.mkdir()
    gt = _write_split(data / "valid.h5")
    offsets = np.array([3.0, 0.5, 8.0, 1.0, 2.0])  # person error = offset / 10 (normaliser)
    _write_preds(tmp_path / "results/synth/hg1/s0/predictions.h5", gt + offsets[:, None, None] * [1, 0])
    _write_preds(tmp_path / "results/synth/hg2/s0/predictions.h5", gt[:3])  # wrong split: left out
    out = gallery.build_gallery(params, "synth", tmp_path / "results", data, tmp_path / "gallery.h5", size=16)

    g = gallery.read_gallery(out)
    cols = g["columns"]
    assert list(cols["variant"]) == ["hg1"] * 3 and list(cols["case"]) == ["best", "median", "worst"]
    assert list(cols["person"]) == [1, 4, 2] and list(cols["seed"]) == [0, 0, 0]
    assert cols["score"] == pytest.approx([0.05, 0.2, 0.8])
    assert cols["images"].shape == (3, 16, 16, 3) and cols["images"].dtype == np.uint8
    assert set(cols["source"]) == {"validation"}
    # ground truth: native → crop (÷2 after the shift) → 16/32 downscale; pelvis missing stays NaN
    expected = ((gt[1] - [10, 20]) / 2 + 0.5) * 0.5 - 0.5
    assert np.isnan(cols["gt"][0, 6]).all()
    keep = np.arange(J) != 6
    assert cols["gt"][0][keep] == pytest.approx(expected[keep], abs=1e-4)
    assert cols["pred"][0][keep, 0] - cols["gt"][0][keep, 0] == pytest.approx(0.5 / 2 * 0.5, abs=1e-4)
    assert g["attrs"]["joint_names"] == list(MPII_JOINTS) and g["attrs"]["image_size"] == 16

    # a second source of people (e.g. real sample images) is appended, not rebuilt
    extra = {k: v[:1] for k, v in cols.items()}
    extra["source"] = np.array(["mpii-sample"])
    gallery.append_people(out, extra)
    assert list(gallery.read_gallery(out)["columns"]["source"]) == ["validation"] * 3 + ["mpii-sample"]


def test_missing_split_writes_an_empty_gallery_and_unreadable_is_none(tmp_path):
    from test_summarize import make_params

    out = gallery.build_gallery(make_params(), "synth", tmp_path, tmp_path / "nope", tmp_path / "g.h5")
    g = gallery.read_gallery(out)
    assert len(g["columns"]["variant"]) == 0 and g["columns"]["gt"].shape == (0, J, 2)
    (tmp_path / "bad.h5").write_text("not hdf5")
    assert gallery.read_gallery(tmp_path / "bad.h5") is None
    assert gallery.read_gallery(tmp_path / "absent.h5") is None


def test_sample_people_come_from_the_samples_split_and_its_predictions(tmp_path):
    """The real sample people: samples.h5 + each variant's lowest seed with samples_predictions.h5."""
    from test_summarize import make_params  # synth: hg1 (s0, s1), hg2 (s0, s1), evil (s0)

    params = make_params()
    data, results = tmp_path / "data", tmp_path / "results"
    data.mkdir()
    gt = _write_split(data / "valid.h5")
    _write_preds(results / "synth/hg1/s0/predictions.h5", gt)
    samples_gt = _write_split(data / "samples.h5", n=4)
    offsets = np.array([1.0, 2.0, 3.0, 4.0])
    # hg1: no samples predictions for s0, so s1 (its lowest seed with them); hg2: another split's rows
    _write_preds(results / "synth/hg1/s1/samples_predictions.h5", samples_gt + offsets[:, None, None] * [0, 1])
    _write_preds(results / "synth/hg2/s0/samples_predictions.h5", samples_gt[:2])
    out = gallery.build_gallery(params, "synth", results, data, tmp_path / "gallery.h5", size=16)
    cols = gallery.read_gallery(out)["columns"]
    assert list(cols["source"]) == ["validation"] * 3 + [gallery.SAMPLE_SOURCE] * 4
    real = cols["source"] == gallery.SAMPLE_SOURCE
    assert set(cols["variant"][real]) == {"hg1"} and set(cols["seed"][real]) == {1}
    assert list(cols["case"][real]) == ["000000000.jpg", "000000001.jpg", "000000002.jpg", "000000003.jpg"]
    assert list(cols["person"][real]) == [0, 1, 2, 3]
    assert cols["score"][real] == pytest.approx(offsets / 10)
    assert cols["images"][real].shape == (4, 16, 16, 3)
    # gallery.sample_people alone: the same rows; None without the split
    alone = gallery.sample_people(params, "synth", results, data / "samples.h5", size=16)
    assert list(alone["case"]) == list(cols["case"][real])
    assert gallery.sample_people(params, "synth", results, data / "absent.h5") is None


def test_unlabelled_samples_split_adds_nobody(tmp_path):
    """A FLIC-layout dataset's samples split has no labels: nothing to score, so no sample people."""
    from test_summarize import make_params

    params = make_params()
    data, results = tmp_path / "data", tmp_path / "results"
    data.mkdir()
    gt = _write_split(data / "samples.h5", labelled=False)
    _write_preds(results / "synth/hg1/s0/samples_predictions.h5", gt)
    assert gallery.sample_people(params, "synth", results, data / "samples.h5") is None


def test_the_gallery_reads_files_only_and_never_loads_a_model(tmp_path):
    """No torch and no model code: the gallery is built with torch made unimportable, and neither
    the module nor what it imports loads hgbench's predict/inference/checkpoint/model code."""
    tree = ast.parse(Path(gallery.__file__).read_text())
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)} | {
        a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names
    }
    forbidden = (
        "torch",
        "hgbench.predict",
        "hgbench.inference",
        "hgbench.checkpoint",
        "hgbench.model",
        "hgbench.train",
        "hgbench.infer",
    )
    assert not [m for m in imported if m.startswith(forbidden)], imported

    data = tmp_path / "data"
    data.mkdir()
    gt = _write_split(data / "valid.h5")
    _write_split(data / "samples.h5")
    _write_preds(tmp_path / "results/synth/hg1/s0/predictions.h5", gt)
    _write_preds(tmp_path / "results/synth/hg1/s0/samples_predictions.h5", gt)
    (tmp_path / "models").mkdir()  # empty: no model.pt anywhere
    code = f"""
import sys
sys.modules["torch"] = None  # any `import torch` raises ImportError
sys.path.insert(0, {str(Path(__file__).parent)!r})
from test_summarize import make_params
from conftest import write_split
from hgbench import gallery
out = gallery.build_gallery(make_params(), "synth", {str(tmp_path / "results")!r}, {str(data)!r},
                            {str(tmp_path / "g.h5")!r}, size=16)
cols = gallery.read_gallery(out)["columns"]
assert list(cols["source"]).count(gallery.SAMPLE_SOURCE) == 5, list(cols["source"])
loaded = [m for m in sys.modules if m.startswith({forbidden!r}) and sys.modules[m] is not None]
assert not loaded, loaded
print("ok")
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr[-3000:]
