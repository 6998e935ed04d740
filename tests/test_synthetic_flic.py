"""The synthetic dataset in the FLIC raw layout, read by the real FLIC code; per-layout validation metric.

Tiny data (9 images of 96 px) so that every test takes a second or two on one CPU core.
"""

import csv
import dataclasses
import json

import numpy as np
import pytest
import scipy.io
import yaml
from PIL import Image

from conftest import ROOT
from hgbench.config import DatasetConfig, ParamsError, SyntheticConfig, load_params, params_from_dict
from hgbench.data import flic, prepare, schema, synthetic
from hgbench.joints import FLIC_FLIP, FLIC_JOINTS, joint_index
from hgbench.metrics import training_accuracy, training_metric
from realdata import FLIC_FIELDS

CFG = SyntheticConfig(
    seed=5,
    n_train=6,
    n_valid=3,
    image_size=96,
    person_height=(90.0, 130.0),
    rotation=10,
    occluders=0.5,
    distractors=0.3,
    clutter=4,
    lr_cue=0.5,
    missing_rate=0.0,
    layout="flic",
)
N = CFG.n_train + CFG.n_valid
TORSO = [FLIC_JOINTS.index(n) for n in ("lsho", "rsho", "lhip", "rhip")]
SMOKE = load_params(ROOT / "params/smoke.yaml")


@pytest.fixture(scope="module")
def raw(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth-flic")
    synthetic.generate(out, CFG)
    return out


@pytest.fixture(scope="module")
def prepared(raw, tmp_path_factory):
    out = tmp_path_factory.mktemp("synth-flic-processed")
    counts = prepare.prepare_flic(raw, out, dataset="sflic", input_res=64, crop_margin=1.25)
    return out, counts


def test_examples_mat_has_the_real_fields_and_layout(raw):
    assert sorted(p.relative_to(raw).as_posix() for p in raw.rglob("*") if p.is_file()) == sorted(
        ["MANIFEST.json", flic.EXAMPLES_RELPATH] + [f"{flic.IMAGES_RELPATH}/synthetic-{i:08d}.jpg" for i in range(N)]
    )
    ex = scipy.io.loadmat(raw / flic.EXAMPLES_RELPATH)["examples"]
    assert ex.shape == (1, N) and ex.dtype.names == FLIC_FIELDS  # the real file's fields, in its order
    others = [s for s in range(len(flic.SLOTS)) if s not in flic.ANNOTATED_SLOTS]
    for k in range(N):
        e = ex[0, k]
        coords = e["coords"]
        assert coords.shape == (2, 29)
        assert np.isnan(coords[:, others]).all() and np.isfinite(coords[:, list(flic.ANNOTATED_SLOTS)]).all()
        assert e["imgdims"].tolist() == [[96.0, 96.0, 3.0]] and e["torsobox"].shape == (1, 4)
        assert e["filepath"][0] == f"synthetic-{k:08d}.jpg" and e["moviename"][0] == "synthetic"
        assert (int(e["istrain"][0, 0]), int(e["istest"][0, 0])) == ((1, 0) if k < CFG.n_train else (0, 1))
        assert e["poselet_hit_idx"].size == 0 and int(e["currframe"][0, 0]) == k
    with Image.open(raw / flic.IMAGES_RELPATH / "synthetic-00000000.jpg") as im:
        assert im.size == (96, 96) and im.mode == "RGB"


def test_round_trip_through_the_flic_parser(raw):
    examples = flic.load_examples(raw / flic.EXAMPLES_RELPATH)
    assert len(examples) == N
    assert sum(e.istrain for e in examples) == CFG.n_train and sum(e.istest for e in examples) == CFG.n_valid
    for i, e in enumerate(examples):
        _, anno = synthetic._render(CFG, i)
        pc = e.coords[list(flic.ANNOTATED_SLOTS)]
        # 1-based MATLAB pixels: the renderer's 0-based coordinates + 1, person-centric
        np.testing.assert_allclose(pc, synthetic.flic_coords(anno) + 1, rtol=0, atol=1e-9)
        for name in ("lsho", "lelb", "lwri", "rsho", "relb", "rwri", "lhip", "rhip"):
            np.testing.assert_allclose(pc[FLIC_JOINTS.index(name)], anno["joints"][joint_index(name)] + 1, atol=1e-9)
        x1, y1, x2, y2 = e.torsobox
        torso = pc[TORSO]
        assert (torso[:, 0] > x1).all() and (torso[:, 0] < x2).all()
        assert (torso[:, 1] > y1).all() and (torso[:, 1] < y2).all()
        assert e.height == 96


def test_eyes_and_nose_sit_on_the_head_consistently():
    # Upright heads (no image rotation): eyes above the nose, on the head, left eye on the side of
    # the left shoulder (image right in a front view, image left in a back view).
    sides = []
    for i in range(60):
        fig = synthetic._make_figure(np.random.default_rng([3, i]), 100.0, 0.0, 0.5)
        head, neck = fig.joints[joint_index("head")], fig.joints[joint_index("neck")]
        seg = np.linalg.norm(head - neck)
        centre = (head + neck) / 2
        assert (np.linalg.norm(fig.face - centre, axis=1) < 0.75 * seg).all()
        leye, reye, nose = fig.face
        shoulders = fig.joints[joint_index("lsho"), 0] - fig.joints[joint_index("rsho"), 0]
        if abs(shoulders) > 5 and abs(leye[0] - reye[0]) > 0.5:
            sides.append(np.sign(leye[0] - reye[0]) == np.sign(shoulders))
        if fig.front:
            assert nose[1] > max(leye[1], reye[1]) - 0.5  # image y grows downward
    assert np.mean(sides) > 0.9 and len(sides) > 30


def test_same_pictures_as_the_mpii_layout_and_deterministic(raw, tmp_path):
    synthetic.generate(tmp_path / "mpii", dataclasses.replace(CFG, layout="mpii", n_train=2, n_valid=1))
    for i in range(3):
        assert (raw / flic.IMAGES_RELPATH / f"synthetic-{i:08d}.jpg").read_bytes() == (
            tmp_path / "mpii" / "images" / f"{i:09d}.jpg"
        ).read_bytes()
    synthetic.generate(tmp_path / "again", CFG)
    for rel in ("MANIFEST.json", flic.EXAMPLES_RELPATH, f"{flic.IMAGES_RELPATH}/synthetic-00000004.jpg"):
        assert (tmp_path / "again" / rel).read_bytes() == (raw / rel).read_bytes()


def test_manifest_records_the_layout(raw):
    man = json.loads((raw / "MANIFEST.json").read_text())
    assert man["config"]["layout"] == "flic" and flic.EXAMPLES_RELPATH in man["files"]
    assert synthetic.manifest_matches(raw, CFG)
    assert not synthetic.manifest_matches(raw, dataclasses.replace(CFG, layout="mpii"))


def test_missing_rate_and_layout_are_checked(tmp_path):
    with pytest.raises(ValueError, match="missing_rate: 0"):
        synthetic.generate(tmp_path, dataclasses.replace(CFG, missing_rate=0.1))
    with pytest.raises(ValueError, match="layout must be one of"):
        synthetic.generate(tmp_path, dataclasses.replace(CFG, layout="coco"))


def test_prepare_flic_on_the_synthetic_files(prepared, raw):
    out, counts = prepared
    assert counts == {"train": CFG.n_train, "valid": CFG.n_valid, "labels": "observer", "crop_size": 80}
    with schema.open_split(out / "valid.h5") as f:
        a, attrs = f.read(), f.attrs
        assert f.image(0).shape == (80, 80, 3)
    assert attrs["joint_names"] == list(FLIC_JOINTS) and attrs["flip_permutation"] == list(FLIC_FLIP)
    assert set(attrs["source_checksums"]) == {flic.EXAMPLES_RELPATH, "MANIFEST.json"}
    test = flic.people(flic.load_examples(raw / flic.EXAMPLES_RELPATH), "test")
    np.testing.assert_array_equal(a["joints_image"], np.stack([r.joints for r in test]))
    assert not a["missing"].any()
    # the FLIC box, scaled to the frame: side 440 × 96 / 480 = 88 native px, centre y = 96 / 2
    np.testing.assert_allclose(a["scale"], 2.2 * 96 / 480)
    np.testing.assert_allclose(a["center"][:, 1], 48.0)
    assert a["crop_to_image"][0, 0, 0] == pytest.approx(88 / 64)
    pc = np.stack([r.person_centric for r in test])
    np.testing.assert_allclose(
        a["normalizer"], np.linalg.norm(pc[:, FLIC_JOINTS.index("rsho")] - pc[:, FLIC_JOINTS.index("lhip")], axis=1)
    )


def test_one_epoch_of_training_logs_pck_on_elbows_and_wrists(prepared, tmp_path):
    from hgbench.train import train

    out, _ = prepared
    dataset = DatasetConfig(
        name="sflic", source="synthetic", input_res=64, output_res=16, crop_margin=1.25, synthetic=CFG
    )
    assert dataset.layout == "flic"
    messages = []
    cfg = dataclasses.replace(SMOKE.train, epochs=1, batch_size=3)
    model = train(
        dataset=dataset,
        variant=SMOKE.variants["hg1x2"],
        cfg=cfg,
        seed=0,
        train_file=out / "train.h5",
        valid_file=out / "valid.h5",
        out_dir=tmp_path,
        device="cpu",
        log=messages.append,
    )
    with open(tmp_path / "log.csv") as fh:
        row = next(csv.DictReader(fh))
    assert 0.0 <= float(row["valid_acc"]) <= 100.0
    assert any("valid PCK@0.2 (elbows, wrists)" in m for m in messages)
    import torch

    assert torch.load(model, weights_only=True)["model_config"]["joints"] == len(FLIC_JOINTS)


def test_training_metric_hand_checked_mpii():
    # 1 person, normaliser 10 px; ablation joints relb lelb rwri lwri rkne lkne rank lank.
    gt = np.zeros((1, 16, 2))
    preds = gt.copy()
    missing = np.zeros((1, 16), bool)
    preds[0, joint_index("relb")] = (3.0, 4.0)  # distance 5 = exactly 0.5 × 10: correct (inclusive)
    preds[0, joint_index("lelb")] = (3.0, 4.1)  # just beyond: wrong
    missing[0, joint_index("rwri")] = True  # not annotated: not scored
    preds[0, joint_index("lwri")] = np.nan  # no prediction: wrong
    preds[0, joint_index("head")] = (100.0, 0.0)  # not an ablation joint: ignored
    acc = training_accuracy(preds, gt, missing, np.array([10.0]), "mpii")
    assert acc == pytest.approx(100.0 * 5 / 7)  # relb, rkne, lkne, rank, lank of 7 scored
    assert training_metric("mpii").label == "PCKh@0.5 (ablation joints)"


def test_training_metric_hand_checked_flic():
    gt = np.zeros((1, 11, 2))
    preds = gt.copy()
    missing = np.zeros((1, 11), bool)
    preds[0, FLIC_JOINTS.index("lelb")] = (2.0, 0.0)  # exactly 0.2 × 10: correct
    missing[0, FLIC_JOINTS.index("relb")] = True  # not scored
    preds[0, FLIC_JOINTS.index("lwri")] = (0.0, 2.1)  # 0.21: wrong
    preds[0, FLIC_JOINTS.index("nose")] = (50.0, 0.0)  # not an elbow or wrist: ignored
    acc = training_accuracy(preds, gt, missing, np.array([10.0]), "flic")
    assert acc == pytest.approx(100.0 * 2 / 3)  # lelb and rwri of lelb, lwri, rwri
    assert training_metric("flic").label == "PCK@0.2 (elbows, wrists)"
    all_missing = np.ones((1, 11), bool)
    assert np.isnan(training_accuracy(preds, gt, all_missing, np.array([10.0]), "flic"))
    with pytest.raises(ValueError, match="layout 'mpii' needs"):
        training_accuracy(preds, gt, missing, np.array([10.0]), "mpii")
    with pytest.raises(ValueError, match="allowed: flic, mpii"):
        training_metric("coco")


def test_layout_property_and_the_labels_rule():
    assert {n: d.layout for n, d in SMOKE.datasets.items()} == {"smoke": "mpii", "smoke-flic": "flic"}
    assert DatasetConfig(name="f", source="flic", input_res=64, output_res=16, crop_margin=1.25).layout == "flic"
    assert DatasetConfig(name="m", source="mpii", input_res=64, output_res=16, crop_margin=1.25).layout == "mpii"
    raw = yaml.safe_load((ROOT / "params/smoke.yaml").read_text())
    raw["datasets"]["smoke-flic"]["labels"] = "person"  # a FLIC-layout set has FLIC's label choice
    assert params_from_dict(raw).datasets["smoke-flic"].labels == "person"
    raw["datasets"]["smoke"]["labels"] = "person"
    with pytest.raises(ParamsError, match="datasets.smoke.labels.*only FLIC.*set synthetic.layout: flic"):
        params_from_dict(raw)
