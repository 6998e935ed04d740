"""The MPII test split: `prepare --split test` on a RELEASE-layout fixture with test images (the real
records and photographs of tests/data/mpii) and on the synthetic generator's test images; `predict`
(flip test) on it, `evaluate` refusing it, and `export-mpii --split test` round-tripping."""

from dataclasses import asdict
from pathlib import Path

import h5py
import numpy as np
import pytest
import scipy.io
import torch

from hgbench.checkpoint import save_state
from hgbench.cli import main
from hgbench.config import SyntheticConfig
from hgbench.data import mpii, prepare, schema, synthetic
from hgbench.evaluate import load_predictions
from hgbench.model import ModelConfig, StackedHourglass
from hgbench.predict import predict
from hgbench.submission import read_submission

ROOT = Path(__file__).resolve().parents[1]
MPII_DATA = Path(__file__).parent / "data" / "mpii"
SMOKE = str(ROOT / "params" / "smoke.yaml")  # dataset "smoke": MPII layout, input 64, crop margin 1.25
RES, MARGIN = 64, 1.25
CFG = SyntheticConfig(
    seed=5,
    n_train=4,
    n_valid=2,
    image_size=96,
    person_height=(50.0, 80.0),
    rotation=15,
    occluders=1.0,
    distractors=0.7,
    clutter=6,
    lr_cue=0.5,
    missing_rate=0.05,
)
N_TEST = 3


def _release_with_test_images(path: Path) -> Path:
    """release_subset.mat (5 real validation people, one image each) turned into a RELEASE with test
    images: entries 1-2 stay training images; 3-5 become test images (img_train = 0) whose rect keeps
    only objpos and scale (entry 4 also its head box), as MPII releases its test set; entry 5 gets a
    second rect outside single_person; entry 6 is a test image whose only single-person rect has no
    objpos (the official flatten_annolist drops it)."""
    mat = scipy.io.loadmat(MPII_DATA / "release_subset.mat", squeeze_me=False, struct_as_record=True)
    rel = mat["RELEASE"][0, 0]
    old = rel["annolist"]
    fields = ("x1", "y1", "x2", "y2", "annopoints", "scale", "objpos")
    entries = np.empty((1, 6), dtype=old.dtype)
    for k in range(5):
        entries[0, k] = old[0, k]
    empty = np.zeros((0, 0))
    for k in (2, 3, 4):
        src = old[0, k]["annorect"][0, 0]
        n_rects = 2 if k == 4 else 1
        rects = np.empty((1, n_rects), dtype=[(f, object) for f in fields])
        for f in fields:
            keep = f in ("objpos", "scale") or (k == 3 and f in ("x1", "y1", "x2", "y2"))
            rects[0, 0][f] = src[f] if keep else empty
        if n_rects == 2:
            other = old[0, 0]["annorect"][0, 0]
            for f in fields:
                rects[0, 1][f] = other[f] if f in ("objpos", "scale") else empty
        entries[0, k]["annorect"] = rects
    rect = np.empty((1, 1), dtype=[(f, object) for f in ("scale",)])
    rect[0, 0]["scale"] = np.array([[2.0]])
    entries[0, 5]["image"] = {"name": "no-objpos.jpg"}  # never read: nobody there is cropped
    entries[0, 5]["annorect"] = rect
    entries[0, 5]["frame_sec"] = empty
    entries[0, 5]["vidx"] = empty
    single = np.empty((6, 1), dtype=object)
    for k in range(6):
        single[k, 0] = np.array([[1.0]])
    release = {
        "annolist": entries,
        "img_train": np.array([[1.0, 1, 0, 0, 0, 0]]),
        "version": "12",
        "single_person": single,
        "video_list": np.empty((1, 0), dtype=object),
    }
    scipy.io.savemat(path, {"RELEASE": release}, do_compression=True, oned_as="row")
    return path


@pytest.fixture(scope="module")
def real_raw(tmp_path_factory) -> Path:
    raw = tmp_path_factory.mktemp("mpii") / "raw"
    (raw / prepare.RELEASE_RELPATH).parent.mkdir(parents=True)
    _release_with_test_images(raw / prepare.RELEASE_RELPATH)
    (raw / "images").mkdir()
    for image in (MPII_DATA / "images").iterdir():
        (raw / "images" / image.name).write_bytes(image.read_bytes())
    return raw


def test_prepare_test_split_of_a_release_with_test_images(real_raw, tmp_path, capsys):
    out = tmp_path / "processed"
    assert (
        main(
            [
                "prepare",
                "--params",
                SMOKE,
                "--dataset",
                "smoke",
                "--raw",
                str(real_raw),
                "--out",
                str(out),
                "--split",
                "test",
            ]
        )
        == 0
    )
    assert "'test': 3" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == ["test.h5"]  # nothing else, no temporaries
    release = mpii.load_release(real_raw / prepare.RELEASE_RELPATH)
    with schema.open_split(out / "test.h5") as f:
        a, attrs = f.read(), f.attrs
        crops = f.images(range(len(f)))
    assert attrs["split"] == "test" and len(a["image_name"]) == 3
    assert a["image_index"].tolist() == [2, 3, 4] and a["person_index"].tolist() == [0, 0, 0]  # RELEASE order
    assert a["image_name"].tolist() == [release.images[i].name for i in (2, 3, 4)]
    assert a["missing"].all() and not a["visible"].any() and np.isnan(a["joints"]).all()
    assert np.isnan(a["normalizer"][[0, 2]]).all() and np.isfinite(a["normalizer"][1])  # head box kept for entry 4
    for row, i in enumerate((2, 3, 4)):
        rect = release.images[i].rects[0]
        np.testing.assert_allclose(a["center"][row], rect.objpos + [0, 15 * rect.scale])
        assert a["scale"][row] == pytest.approx(1.25 * rect.scale)
    # the same crop code as train/valid: the annotated versions of these people crop identically
    sample = tmp_path / "sample.h5"
    prepare.prepare_sample(
        MPII_DATA / "release_subset.mat", real_raw / "images", sample, input_res=RES, crop_margin=MARGIN
    )
    with schema.open_split(sample) as f:
        np.testing.assert_array_equal(crops, f.images([2, 3, 4]))
        np.testing.assert_array_equal(a["crop_to_image"], f.read(["crop_to_image"])["crop_to_image"][2:5])


def test_evaluate_refuses_the_test_split(real_raw, tmp_path, capsys):
    prepare.prepare_test(real_raw, tmp_path, dataset="mpii", input_res=RES, crop_margin=MARGIN)
    preds = tmp_path / "p.h5"
    with h5py.File(preds, "w") as f:
        f["preds"] = np.zeros((3, 16, 2))
    out = tmp_path / "m.json"
    assert (
        main(["evaluate", "--ground-truth", str(tmp_path / "test.h5"), "--predictions", str(preds), "--out", str(out)])
        == 2
    )
    err = capsys.readouterr().err.strip()
    assert "test.h5: this is the MPII test split" in err and "export-mpii --split test" in err
    assert len(err.splitlines()) == 1 and not out.exists()


def test_prepare_test_split_errors(tmp_path, capsys):
    assert (
        main(
            [
                "prepare",
                "--params",
                SMOKE,
                "--dataset",
                "smoke-flic",
                "--raw",
                str(tmp_path),
                "--out",
                str(tmp_path / "o"),
                "--split",
                "test",
            ]
        )
        == 2
    )
    assert "FLIC layout" in capsys.readouterr().err
    raw = tmp_path / "raw"
    synthetic.generate(raw, CFG)  # no test images
    assert (
        main(
            [
                "prepare",
                "--params",
                SMOKE,
                "--dataset",
                "smoke",
                "--raw",
                str(raw),
                "--out",
                str(tmp_path / "o"),
                "--split",
                "test",
            ]
        )
        == 2
    )
    assert "no test people" in capsys.readouterr().err
    assert not (tmp_path / "o" / "test.h5").exists()


# --- the synthetic generator's test images, end to end -------------------------------------------


@pytest.fixture(scope="module")
def synthetic_test(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth-test")
    raw, out = root / "raw", root / "processed"
    synthetic.generate(raw, CFG, n_test=N_TEST)
    counts = prepare.prepare_dataset(raw, out, dataset="synthetic", input_res=RES, crop_margin=MARGIN)
    test_counts = prepare.prepare_test(raw, out, dataset="synthetic", input_res=RES, crop_margin=MARGIN)
    return raw, out, counts, test_counts


def test_synthetic_test_images(synthetic_test, tmp_path):
    raw, _, counts, test_counts = synthetic_test
    release = mpii.load_release(raw / synthetic.RELEASE_RELPATH)
    n = CFG.n_train + CFG.n_valid
    assert release.img_train.tolist() == [1] * n + [0] * N_TEST
    assert counts["train"] == CFG.n_train and counts["valid"] == CFG.n_valid  # test images are neither
    assert test_counts["test"] == N_TEST
    last = release.images[-1]
    assert len(last.rects) == 2 and release.single_person[-1] == (0,)
    assert all(
        r.points is None and r.headbox is None and r.objpos is not None
        for i in range(n, n + N_TEST)
        for r in release.images[i].rects
    )
    # the train/valid images and annotations are those of a dataset without test images
    plain = tmp_path / "plain"
    synthetic.generate(plain, CFG)
    for i in range(n):
        name = f"images/{synthetic.image_name(i)}"
        assert (raw / name).read_bytes() == (plain / name).read_bytes()
    assert (raw / "valid_split.csv").read_bytes() == (plain / "valid_split.csv").read_bytes()
    np.testing.assert_array_equal(
        np.stack([p.joints for p in mpii.people(release)]),
        np.stack([p.joints for p in mpii.people(mpii.load_release(plain / synthetic.RELEASE_RELPATH))]),
    )
    assert synthetic.manifest_matches(raw, CFG, n_test=N_TEST) and not synthetic.manifest_matches(raw, CFG)


def _model(path: Path) -> Path:
    torch.manual_seed(0)
    net = StackedHourglass(ModelConfig(stacks=2, modules=1, features=16, depth=2))
    save_state(
        {
            "model": net.state_dict(),
            "model_config": asdict(net.config),
            "variant": "hg2x1",
            "supervision": "all",
            "dataset": "synthetic",
            "input_res": RES,
            "output_res": RES // 4,
            "seed": 0,
            "epochs": 1,
        },
        path,
    )
    return path


def test_predict_and_export_the_synthetic_test_split(synthetic_test, tmp_path, capsys):
    raw, out, _, _ = synthetic_test
    preds_file = tmp_path / "test_predictions.h5"
    preds = predict(
        checkpoint=_model(tmp_path / "model.pt"),
        data_file=out / "test.h5",
        out=preds_file,
        flip_test=True,
        batch_size=2,
        device="cpu",
        threads=1,
    )
    assert preds.shape == (N_TEST, 16, 2) and np.isfinite(preds).all()
    with h5py.File(preds_file) as f:
        assert bool(f.attrs["flip_test"]) and f["preds_stack"].shape == (N_TEST, 2, 16, 2)

    sub = tmp_path / "pred_keypoints_mpii.mat"
    release_path = raw / synthetic.RELEASE_RELPATH
    assert (
        main(
            [
                "export-mpii",
                "--predictions",
                str(preds_file),
                "--annotations",
                str(release_path),
                "--split",
                "test",
                "--out",
                str(sub),
            ]
        )
        == 0
    )
    assert f"{N_TEST} people in {N_TEST} test images" in capsys.readouterr().out
    np.testing.assert_array_equal(read_submission(sub, release_path, "test"), load_predictions(preds_file))
    pred = scipy.io.loadmat(sub, struct_as_record=False, squeeze_me=True)["pred"]
    release = mpii.load_release(release_path)
    assert [e.image.name for e in pred] == [release.images[i].name for i in range(len(release) - N_TEST, len(release))]
    second = np.atleast_1d(pred[-1].annorect)[1]  # not a single person: kept, located, no points
    want = release.images[-1].rects[1]
    assert (second.objpos.x, second.objpos.y, second.scale) == (want.objpos[0], want.objpos[1], want.scale)
    assert np.size(second.annopoints) == 0
    point = np.atleast_1d(pred[0].annorect)[0].annopoints.point
    assert [int(p.id) for p in point] == list(range(16))
    assert [(p.x, p.y) for p in point] == [tuple(v) for v in preds[0]]  # 1-based image px, as predicted


def test_export_errors(synthetic_test, tmp_path, capsys):
    raw, _, _, _ = synthetic_test
    short = tmp_path / "short.h5"
    with h5py.File(short, "w") as f:
        f["preds"] = np.zeros((N_TEST + 1, 16, 2))
    sub = tmp_path / "sub.mat"
    args = [
        "export-mpii",
        "--predictions",
        str(short),
        "--annotations",
        str(raw / synthetic.RELEASE_RELPATH),
        "--split",
        "test",
        "--out",
        str(sub),
    ]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert "short.h5: 'preds' has 4 rows, but the test split" in err and "prepare --split test" in err
    assert len(err.splitlines()) == 1 and not sub.exists()
    with h5py.File(short, "w") as f:
        f["preds"] = np.full((N_TEST, 16, 2), np.nan)
    assert main(args) == 2 and "--allow-nan" in capsys.readouterr().err and not sub.exists()
    plain = tmp_path / "plain"
    synthetic.generate(plain, CFG)  # no test images
    args[4] = str(plain / synthetic.RELEASE_RELPATH)
    assert main(args) == 2 and "no image has img_train == 0" in capsys.readouterr().err
