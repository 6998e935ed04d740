"""The embedded synthetic dataset: determinism, MPII layout, visibility/missing semantics, split."""

import dataclasses
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from hgbench.config import SyntheticConfig
from hgbench.data import fetch, mpii, synthetic
from hgbench.joints import MPII_JOINTS, joint_index

CFG = SyntheticConfig(
    seed=7,
    n_train=6,
    n_valid=3,
    image_size=96,
    person_height=(50.0, 80.0),
    rotation=15,
    occluders=1.0,
    distractors=0.7,
    clutter=6,
    lr_cue=0.5,
    missing_rate=0.05,
)
CORE = [joint_index(n) for n in ("pelv", "thrx", "neck", "head")]


def files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def raw(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synth")
    synthetic.generate(out, CFG)
    return out


def test_layout(raw):
    n = CFG.n_train + CFG.n_valid
    assert sorted(p.name for p in (raw / "images").iterdir()) == [f"{i:09d}.jpg" for i in range(n)]
    assert (raw / "mpii_human_pose_v1_u12_2" / "mpii_human_pose_v1_u12_1.mat").is_file()
    from PIL import Image

    with Image.open(raw / "images" / "000000000.jpg") as im:
        assert im.mode == "RGB" and im.size == (CFG.image_size, CFG.image_size) and im.format == "JPEG"


def test_same_seed_same_bytes(raw, tmp_path):
    synthetic.generate(tmp_path, CFG)
    assert files(tmp_path) == files(raw)


def test_image_does_not_depend_on_earlier_images(raw, tmp_path):
    # fewer images before → image i unchanged (per-image seeds from (seed, i))
    synthetic.generate(tmp_path, dataclasses.replace(CFG, n_train=2, n_valid=1))
    for i in range(3):
        name = f"images/{i:09d}.jpg"
        assert (tmp_path / name).read_bytes() == (raw / name).read_bytes()


def test_other_seed_differs(raw, tmp_path):
    synthetic.generate(tmp_path, dataclasses.replace(CFG, seed=8))
    assert (tmp_path / "images/000000000.jpg").read_bytes() != (raw / "images/000000000.jpg").read_bytes()


def test_release_parses_back_with_the_same_annotations(raw):
    rel = mpii.load_release(raw / synthetic.RELEASE_RELPATH)
    n = CFG.n_train + CFG.n_valid
    assert len(rel) == n and (rel.img_train == 1).all()
    assert rel.single_person == ((0,),) * n
    recs = mpii.people(rel)
    assert [(r.image_index, r.person_index) for r in recs] == [(i, 0) for i in range(n)]
    for i, r in enumerate(recs):
        _, anno = synthetic._render(CFG, i)
        assert r.image_name == f"{i:09d}.jpg" and r.is_train
        want = np.where(anno["present"][:, None], anno["joints"] + 1, np.nan)  # 1-based native frame
        np.testing.assert_allclose(r.joints, want, rtol=0, atol=1e-9)
        np.testing.assert_array_equal(r.visible, anno["visible"] & anno["present"])
        np.testing.assert_allclose(r.headbox, anno["headbox"] + 1, atol=1e-9)
        np.testing.assert_allclose(r.objpos, anno["objpos"] + 1, atol=1e-9)
        assert r.scale == pytest.approx(anno["scale"])
        lo, hi = CFG.person_height
        assert lo / 200 <= r.scale <= hi / 200
        # head box: centred on neck/head top, diagonal = 1.25 × head segment (MPII relation)
        seg = np.linalg.norm(r.joints[joint_index("head")] - r.joints[joint_index("neck")])
        assert np.linalg.norm(r.headbox[1] - r.headbox[0]) == pytest.approx(1.25 * seg)
        np.testing.assert_allclose(r.headbox.mean(axis=0), r.joints[[8, 9]].mean(axis=0), atol=1e-9)


def test_visible_and_missing_semantics(tmp_path):
    cfg = dataclasses.replace(CFG, n_train=30, n_valid=10, missing_rate=0.2, occluders=2.0, distractors=1.0)
    synthetic.generate(tmp_path, cfg)
    recs = mpii.people(mpii.load_release(tmp_path / synthetic.RELEASE_RELPATH))
    joints = np.stack([r.joints for r in recs])
    visible = np.stack([r.visible for r in recs])
    missing = np.isnan(joints[..., 0])
    assert not missing[:, CORE].any()  # pelvis, thorax, neck, head top always annotated
    assert not visible[missing].any()
    other = np.setdiff1d(np.arange(16), CORE)
    # annotated joints lie inside the image (1-based: [0.5, size + 0.5])
    inside = (joints[:, other] >= 0.5) & (joints[:, other] <= cfg.image_size + 0.5)
    assert inside.all(axis=-1)[~missing[:, other]].all()
    rate = missing[:, other].mean()
    assert 0.15 < rate < 0.45  # missing_rate 0.2 plus joints outside the image
    occluded = ~visible & ~missing
    assert 0.05 < occluded.sum() / (~missing).sum() < 0.6  # occlusion happens, but not everywhere


def test_no_occluders_means_mostly_visible(tmp_path):
    cfg = dataclasses.replace(
        CFG,
        n_train=20,
        n_valid=5,
        missing_rate=0.0,
        occluders=0.0,
        distractors=0.0,
        image_size=128,
        person_height=(50.0, 60.0),
        rotation=0.0,
    )
    synthetic.generate(tmp_path, cfg)
    recs = mpii.people(mpii.load_release(tmp_path / synthetic.RELEASE_RELPATH))
    vis = np.stack([r.visible for r in recs])
    assert vis.mean() > 0.7  # only self-occlusion remains
    # small people usually fit in the image (a quarter are placed with only the core joints inside)
    assert np.isnan(np.stack([r.joints for r in recs])[..., 0]).mean() < 0.1


def test_valid_split(raw):
    split = mpii.load_split(raw / "valid_split.csv")
    assert split == [(CFG.n_train + k, 0) for k in range(CFG.n_valid)]
    assert (raw / "valid_split.csv").read_text().splitlines()[0] == "image_index,person_index"


def test_manifest(raw, tmp_path):
    man = json.loads((raw / "MANIFEST.json").read_text())
    assert man["generator"] == synthetic.GENERATOR_NAME and man["version"] == synthetic.GENERATOR_VERSION
    assert man["config"] == json.loads(json.dumps(dataclasses.asdict(CFG)))
    written = {k for k in files(raw) if k != "MANIFEST.json"}
    assert set(man["files"]) == written
    for rel, sha in man["files"].items():
        assert hashlib.sha256((raw / rel).read_bytes()).hexdigest() == sha
    assert synthetic.manifest_matches(raw, CFG)
    assert not synthetic.manifest_matches(raw, dataclasses.replace(CFG, clutter=5))


def test_left_right_cue_and_views():
    rng = np.random.default_rng(0)
    pal = synthetic._person_palette(rng, 0.0)
    for part in ("uarm", "farm", "hand", "thigh", "shin", "foot"):
        np.testing.assert_array_equal(pal[part + "_l"], pal[part + "_r"])
    pal = synthetic._person_palette(np.random.default_rng(0), 1.0)
    assert pal["thigh_l"][0] - pal["thigh_l"][2] > pal["thigh_r"][0] - pal["thigh_r"][2]  # left redder
    # front view: the person's right shoulder is on image left; back view: on image right
    rsho, lsho = joint_index("rsho"), joint_index("lsho")
    agree = {True: [], False: []}
    for i in range(300):
        fig = synthetic._make_figure(np.random.default_rng([1, i]), 100.0, 0.0, 0.5)
        agree[fig.front].append(fig.joints[rsho, 0] < fig.joints[lsho, 0])
    assert np.mean(agree[True]) > 0.9 and np.mean(agree[False]) < 0.1
    assert 0.2 < len(agree[False]) / 300 < 0.5


def test_pose_families_all_occur():
    fams = {synthetic._make_figure(np.random.default_rng([2, i]), 100.0, 0.0, 0.5).family for i in range(200)}
    assert fams == set(range(len(synthetic.POSE_FAMILIES)))


def test_limb_lengths_scale_with_height():
    for h in (60.0, 180.0):
        fig = synthetic._make_figure(np.random.default_rng(3), h, 0.0, 0.5)
        seg = np.linalg.norm(fig.joints[joint_index("head")] - fig.joints[joint_index("neck")])
        assert 0.06 * h < seg < 0.16 * h


def test_fetch_synthetic_is_idempotent_and_atomic(tmp_path):
    out = tmp_path / "raw" / "synthetic"
    cfg = dataclasses.replace(CFG, n_train=2, n_valid=1)
    assert fetch.fetch_synthetic(out, cfg) is True
    stamp = (out / "MANIFEST.json").stat().st_mtime_ns
    assert fetch.fetch_synthetic(out, cfg) is False
    assert (out / "MANIFEST.json").stat().st_mtime_ns == stamp
    (out / "images" / "000000000.jpg").write_bytes(b"damaged")
    assert fetch.fetch_synthetic(out, cfg) is True  # checksum mismatch → regenerated
    assert fetch.fetch_synthetic(out, dataclasses.replace(cfg, seed=9)) is True
    assert json.loads((out / "MANIFEST.json").read_text())["config"]["seed"] == 9
    assert sorted(p.name for p in out.parent.iterdir()) == ["synthetic"]  # no temp folders left


def test_joint_names_are_mpii_order():
    assert MPII_JOINTS[6] == "pelv" and MPII_JOINTS[7] == "thrx" and len(MPII_JOINTS) == synthetic.J
