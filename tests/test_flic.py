"""FLIC examples.mat parser and FLIC prepare, against pose-hg-train's real FLIC annotations.

tests/data/flic holds 24 real records in the examples.mat layout (see its README); the full
check over all 5003 examples needs the reference copies in ../shared/data/flic and skips without.
"""

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import yaml
from PIL import Image

from hgbench.config import ParamsError, load_params, params_from_dict
from hgbench.data import flic, prepare, schema
from hgbench.joints import FLIC_FLIP, FLIC_JOINTS
from realdata import flic_examples, read_flic_h5

DATA = Path(__file__).parent / "data" / "flic"
PAPER = Path(__file__).resolve().parents[1] / "params" / "paper.yaml"
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "flic"


@pytest.fixture(scope="module")
def ref():
    with np.load(DATA / "reference.npz") as z:
        return {k: z[k] for k in z.files}


@pytest.fixture(scope="module")
def examples():
    return flic.load_examples(DATA / "examples_subset.mat")


def test_subset_labels_normaliser_and_splits(examples, ref):
    assert len(examples) == 24 and [e.image_name for e in examples] == ref["imgname"].tolist()
    for labels, part in (("observer", ref["part_obs"]), ("person", ref["part_pc"])):
        recs = flic.people(examples, "train", labels) + flic.people(examples, "test", labels)
        order = np.concatenate([np.flatnonzero(ref["istrain"]), np.flatnonzero(~ref["istrain"])])
        np.testing.assert_array_equal(np.stack([r.joints for r in recs]), part[order])
        np.testing.assert_array_equal([r.normalizer for r in recs], ref["normalize"][order])
        assert all(r.visible.all() and np.isnan(r.headbox).all() and r.scale == 2.2 for r in recs)
        np.testing.assert_allclose(np.stack([r.objpos for r in recs]), ref["center"][order], atol=1e-4)
    swapped = [
        (a.joints != b.joints).any()
        for a, b in zip(flic.people(examples, "test"), flic.people(examples, "test", "person"))
    ]
    assert sum(swapped) == 4  # the subset holds 4 test people seen from behind (README)


def test_observer_centric_rule():
    pc = np.arange(22, dtype=float).reshape(11, 2)
    pc[FLIC_JOINTS.index("lsho"), 0], pc[FLIC_JOINTS.index("rsho"), 0] = 100.0, 200.0  # seen from behind
    obs = flic.observer_centric(pc)
    np.testing.assert_array_equal(obs, pc[list(FLIC_FLIP)])
    assert obs[FLIC_JOINTS.index("nose")].tolist() == pc[FLIC_JOINTS.index("nose")].tolist()
    pc[FLIC_JOINTS.index("lsho"), 0] = 300.0  # facing the camera: unchanged
    np.testing.assert_array_equal(flic.observer_centric(pc), pc)
    with pytest.raises(ValueError, match="labels"):
        flic.record(flic.load_examples(DATA / "examples_subset.mat")[0], "sideways")


def test_crop_box_scales_with_the_frame_height(examples):
    # FLIC's 480-row frames: exactly pose-hg-train's 2.2 (440 px); a 96-row synthetic frame: the
    # same framing (0.917 of the frame height), centred on half the frame height.
    assert flic.record(examples[0]).scale == 2.2
    small = flic.record(dataclasses.replace(examples[0], height=96))
    assert small.scale == pytest.approx(2.2 * 96 / 480) and small.objpos[1] == 48.0
    assert small.objpos[0] == flic.record(examples[0]).objpos[0]


def test_bad_files(tmp_path):
    scipy.io.savemat(tmp_path / "x.mat", {"foo": 1.0})
    with pytest.raises(flic.FLICFormatError, match="no 'examples'"):
        flic.load_examples(tmp_path / "x.mat")
    (tmp_path / "y.mat").write_bytes(b"garbage")
    with pytest.raises(flic.FLICFormatError, match="y.mat.*re-download"):
        flic.load_examples(tmp_path / "y.mat")
    ex = np.empty((1, 1), dtype=[("coords", object), ("torsobox", object), ("filepath", object)])
    ex[0, 0]["coords"], ex[0, 0]["torsobox"], ex[0, 0]["filepath"] = np.zeros((2, 14)), np.zeros((1, 4)), "a.jpg"
    scipy.io.savemat(tmp_path / "z.mat", {"examples": ex})
    with pytest.raises(flic.FLICFormatError, match=r"coords has shape \(2, 14\)"):
        flic.load_examples(tmp_path / "z.mat")
    with pytest.raises(FileNotFoundError, match="hgbench fetch"):
        flic.load_examples(tmp_path / "absent.mat")


def make_raw_flic(root: Path) -> Path:
    """A raw FLIC tree from the subset: the real examples.mat records, grey stand-in frames."""
    (root / "FLIC" / "images").mkdir(parents=True)
    (root / "FLIC" / "examples.mat").write_bytes((DATA / "examples_subset.mat").read_bytes())
    for e in flic.load_examples(DATA / "examples_subset.mat"):
        Image.new("RGB", (720, 480), (90, 120, 150)).save(root / "FLIC" / "images" / e.image_name, quality=70)
    return root


@pytest.mark.parametrize("labels", ["observer", "person"])
def test_prepare_flic(tmp_path, ref, labels):
    raw = make_raw_flic(tmp_path / "raw")
    counts = prepare.prepare_flic(
        raw, tmp_path / "out", dataset="flic", input_res=64, crop_margin=1.25, labels=labels, workers=2
    )
    assert counts["train"] == 12 and counts["valid"] == 12
    with schema.open_split(tmp_path / "out" / "valid.h5") as f:
        a, attrs = f.read(), f.attrs
        assert f.image(0).shape == (80, 80, 3)
    assert attrs["joint_names"] == list(FLIC_JOINTS) and attrs["flip_permutation"] == list(FLIC_FLIP)
    assert "torso" in attrs["normalizer_definition"] and attrs["frame_offset"] == 1
    assert set(attrs["source_checksums"]) == {"FLIC/examples.mat"}
    test = ~ref["istrain"]
    part = ref["part_obs"] if labels == "observer" else ref["part_pc"]
    np.testing.assert_array_equal(a["joints_image"], part[test])
    np.testing.assert_array_equal(a["normalizer"], ref["normalize"][test])
    # FLIC: the box is centre/scale as given (no hourglass adjustment), 200·2.2 = 440 native px
    np.testing.assert_allclose(a["center"], ref["center"][test], atol=1e-4)
    assert (a["scale"] == 2.2).all() and a["crop_to_image"][0, 0, 0] == pytest.approx(440 / 64)
    back = (
        np.einsum("nij,nkj->nki", a["crop_to_image"][:, :, :2], a["joints"].astype(float))
        + a["crop_to_image"][:, None, :, 2]
    )
    np.testing.assert_allclose(back, part[test], atol=1e-3)


def test_prepare_flic_missing_input_names_the_file(tmp_path):
    with pytest.raises(prepare.PrepareError, match="FLIC/examples.mat not found.*hgbench fetch"):
        prepare.prepare_flic(tmp_path, tmp_path / "o", dataset="flic", input_res=64, crop_margin=1.25)


@pytest.mark.skipif(
    not (SHARED / "valid_personcentric.h5").is_file(),
    reason="pose-hg-train FLIC reference files (../shared/data/flic) not available",
)
def test_all_5003_examples_against_the_hourglass_files(tmp_path):
    rows = read_flic_h5(SHARED)
    scipy.io.savemat(tmp_path / "examples.mat", {"examples": flic_examples(rows)}, oned_as="row")
    ex = flic.load_examples(tmp_path / "examples.mat")
    counts, differ = {}, {}
    for split, sel in (("train", rows["istrain"]), ("test", ~rows["istrain"])):
        obs, pc = flic.people(ex, split, "observer"), flic.people(ex, split, "person")
        counts[split] = len(obs)
        np.testing.assert_array_equal(np.stack([r.joints for r in obs]), rows["part_obs"][sel])
        np.testing.assert_array_equal(np.stack([r.joints for r in pc]), rows["part_pc"][sel])
        np.testing.assert_array_equal([r.normalizer for r in obs], rows["normalize"][sel])
        differ[split] = sum(bool((a.joints != b.joints).any()) for a, b in zip(obs, pc))
    assert counts == {"train": 3987, "test": 1016}
    assert differ == {"train": 199, "test": 48}


def test_labels_knob_in_the_params():
    raw = yaml.safe_load(PAPER.read_text())
    assert load_params(str(PAPER)).datasets["flic"].labels == "observer"
    raw["datasets"]["flic"]["labels"] = "person"
    assert params_from_dict(raw).datasets["flic"].labels == "person"
    raw["datasets"]["flic"]["labels"] = "sideways"
    with pytest.raises(ParamsError, match="datasets.flic.labels.*observer"):
        params_from_dict(raw)
    raw["datasets"]["flic"]["labels"] = "person"
    raw["datasets"]["mpii"]["labels"] = "person"
    with pytest.raises(ParamsError, match="datasets.mpii.labels.*only FLIC"):
        params_from_dict(raw)
