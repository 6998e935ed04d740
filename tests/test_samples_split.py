"""The real sample photographs as a processed split (``hgbench prepare --split samples``)."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import ROOT
from hgbench import cli
from hgbench.data import prepare
from hgbench.data.schema import open_split, read_split_arrays
from hgbench.joints import FLIC_FLIP, FLIC_JOINTS, MPII_FLIP, MPII_JOINTS

RES, MARGIN = 64, 1.25


def test_mpii_layout_samples_split_is_a_valid_labelled_split(tmp_path):
    counts = prepare.prepare_samples(tmp_path, dataset="synth", input_res=RES, crop_margin=MARGIN)
    assert counts == {"samples": 5, "labelled": True, "crop_size": prepare.crop_size(RES, MARGIN)}
    path = tmp_path / prepare.SAMPLES_FILENAME
    with open_split(path) as f:  # validates datasets, dtypes, shapes and attributes (data/schema.py)
        assert len(f) == 5 and f.joint_names == MPII_JOINTS
        attrs = f.attrs
        assert attrs["split"] == "samples" and attrs["dataset"] == "synth" and attrs["input_res"] == RES
        assert list(attrs["flip_permutation"]) == list(MPII_FLIP)
        assert list(attrs["source_checksums"]) == ["release_subset.mat"]
        assert f.image(0).shape == (f.crop_size, f.crop_size, 3)
    arrays = read_split_arrays(path)
    assert not arrays["missing"].all() and np.isfinite(arrays["normalizer"]).all()
    assert sorted(str(n) for n in np.char.decode(arrays["image_name"].astype(bytes))) == sorted(
        p.name for p in (prepare.SAMPLES / "images").glob("*.jpg")
    )
    assert not list(tmp_path.glob("*.tmp"))

    # the same people, crops and labels as any split that prepare cuts from these files
    prepare.prepare_sample(
        prepare.SAMPLES / "release_subset.mat",
        prepare.SAMPLES / "images",
        tmp_path / "other.h5",
        input_res=RES,
        crop_margin=MARGIN,
        dataset="synth",
    )
    other = read_split_arrays(tmp_path / "other.h5")
    for key in ("joints_image", "crop_to_image", "normalizer", "center", "scale"):
        np.testing.assert_array_equal(arrays[key], other[key])
    with open_split(path) as a, open_split(tmp_path / "other.h5") as b:
        np.testing.assert_array_equal(a.image(3), b.image(3))


def test_flic_layout_samples_split_is_valid_and_unlabelled(tmp_path):
    counts = prepare.prepare_samples(tmp_path, dataset="flicky", input_res=RES, crop_margin=MARGIN, layout="flic")
    assert counts["samples"] == 5 and counts["labelled"] is False
    path = tmp_path / prepare.SAMPLES_FILENAME
    with open_split(path) as f:
        assert len(f) == 5 and f.joint_names == FLIC_JOINTS
        assert list(f.attrs["flip_permutation"]) == list(FLIC_FLIP) and f.attrs["split"] == "samples"
    arrays = read_split_arrays(path)
    assert arrays["missing"].all() and not arrays["visible"].any()
    assert np.isnan(arrays["joints_image"]).all() and np.isnan(arrays["normalizer"]).all()
    # the crops are placed from the MPII rects, as in the MPII layout
    mpii_dir = tmp_path / "mpii"
    prepare.prepare_samples(mpii_dir, dataset="synth", input_res=RES, crop_margin=MARGIN)
    np.testing.assert_array_equal(arrays["crop_to_image"], read_split_arrays(mpii_dir / "samples.h5")["crop_to_image"])


def test_unknown_layout_and_missing_photographs_are_errors(tmp_path):
    with pytest.raises(ValueError, match="layout"):
        prepare.prepare_samples(tmp_path, dataset="x", input_res=RES, crop_margin=MARGIN, layout="lsp")
    with pytest.raises(prepare.PrepareError, match="sample photographs not found"):
        prepare.prepare_samples(tmp_path, dataset="x", input_res=RES, crop_margin=MARGIN, samples=tmp_path / "nope")


def test_cli_prepares_the_samples_split_without_raw_data(tmp_path, capsys):
    profile = str(ROOT / "params" / "smoke.yaml")
    for dataset, joints in (("smoke", MPII_JOINTS), ("smoke-flic", FLIC_JOINTS)):
        out = tmp_path / dataset
        assert (
            cli.main(["prepare", "--params", profile, "--dataset", dataset, "--out", str(out), "--split", "samples"])
            == 0
        )
        with open_split(out / "samples.h5") as f:
            assert f.joint_names == joints and f.attrs["dataset"] == dataset
    assert "samples.h5" in capsys.readouterr().out
    # the other splits still need the raw data
    assert cli.main(["prepare", "--params", profile, "--dataset", "smoke", "--out", str(tmp_path / "x")]) == 2
    assert "needs --raw" in capsys.readouterr().err
