"""hgbench infer: real MPII photographs and a folder without boxes through the CLI, the output
schema, agreement with `predict` on the same crop, the overlay drawing, and the error cases."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import jsonschema
import numpy as np
import pytest
import torch
from PIL import Image

from conftest import tool_env
from hgbench import draw
from hgbench.checkpoint import save_state
from hgbench.cli import main
from hgbench.data import mpii
from hgbench.data.prepare import prepare_sample
from hgbench.gallery import SAMPLES
from hgbench.infer import SCHEMA_PATH
from hgbench.joints import MPII_JOINTS, skeleton_limbs
from hgbench.model import ModelConfig, StackedHourglass
from hgbench.predict import predict

INPUT_RES, OUTPUT_RES, CROP_MARGIN = 64, 16, 1.25  # the smoke profile's dataset
SCHEMA = json.loads(SCHEMA_PATH.read_text())


def write_model(path: Path, seed: int = 0) -> Path:
    """A randomly initialised 2-stack model.pt, written the way `hgbench train` writes one."""
    torch.manual_seed(seed)
    net = StackedHourglass(ModelConfig(stacks=2, modules=1, features=16, depth=2))
    save_state(
        {
            "model": net.state_dict(),
            "model_config": asdict(net.config),
            "variant": "hg2x1",
            "supervision": "all",
            "dataset": "smoke",
            "input_res": INPUT_RES,
            "output_res": OUTPUT_RES,
            "seed": seed,
            "epochs": 1,
        },
        path,
    )
    return path


@pytest.fixture(scope="module")
def model_pt(tmp_path_factory):
    return write_model(tmp_path_factory.mktemp("model") / "model.pt")


def hgbench(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "hgbench", *args], env=tool_env(), capture_output=True, text=True, timeout=300
    )


def validate(doc: dict) -> None:
    jsonschema.Draft202012Validator(SCHEMA).validate(doc)
    assert all(len(p["joints"]) == len(doc["joint_names"]) for p in doc["people"])


def test_infer_on_the_mpii_photographs_equals_predict_on_the_same_crops(model_pt, tmp_path):
    people = mpii.people(mpii.load_release(SAMPLES / "release_subset.mat"))
    boxes: dict[str, list] = {}
    for p in people:  # MPII objpos is 1-based; infer's frame is 0-based
        boxes.setdefault(p.image_name, []).append({"center": [float(v) - 1 for v in p.objpos], "scale": float(p.scale)})
    (tmp_path / "boxes.json").write_text(json.dumps(boxes))
    out = tmp_path / "poses"
    proc = hgbench(
        "infer",
        "--checkpoint",
        str(model_pt),
        "--images",
        str(SAMPLES / "images"),
        "--boxes",
        str(tmp_path / "boxes.json"),
        "--out",
        str(out),
        "--device",
        "cpu",
        "--batch-size",
        "8",
    )
    assert proc.returncode == 0, proc.stderr
    assert "5 people in 5 images" in proc.stdout

    # predict on the split prepare cuts from the same annotations (native = 1-based frame)
    split = tmp_path / "samples.h5"
    prepare_sample(
        SAMPLES / "release_subset.mat",
        SAMPLES / "images",
        split,
        input_res=INPUT_RES,
        crop_margin=CROP_MARGIN,
        dataset="smoke",
    )
    preds = predict(
        checkpoint=model_pt,
        data_file=split,
        out=tmp_path / "predictions.h5",
        flip_test=True,
        batch_size=8,
        device="cpu",
    )
    seen: dict[str, int] = {}
    for p, native in zip(people, preds):
        doc = json.loads((out / f"{Path(p.image_name).stem}.json").read_text())
        k = seen.get(p.image_name, 0)
        seen[p.image_name] = k + 1
        joints = np.array(doc["people"][k]["joints"])
        assert np.abs(joints[:, :2] + 1 - native).max() <= 1e-4, p.image_name
    for name in boxes:
        doc = json.loads((out / f"{Path(name).stem}.json").read_text())
        validate(doc)
        assert doc["people"][0]["source"] == "center_scale" and doc["model"]["variant"] == "hg2x1"
        assert doc["frame"].startswith("0-based image pixels") and doc["joint_names"] == list(MPII_JOINTS)
        with Image.open(SAMPLES / "images" / name) as src, Image.open(out / f"{Path(name).stem}.png") as png:
            assert png.size == src.size == (doc["width"], doc["height"])
    assert sorted(f.name for f in out.iterdir()) == sorted(
        f"{Path(n).stem}.{e}" for n in boxes for e in ("json", "png")
    )


def test_infer_on_a_folder_without_boxes_is_one_whole_image_person_each(model_pt, tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    with Image.open(SAMPLES / "images" / "052475643.jpg") as im:
        im.resize((160, 90)).save(photos / "wide.png")
        exif = Image.Exif()
        exif[0x0112] = 6  # stored landscape, shown rotated 90° clockwise: portrait 90 × 160
        im.resize((160, 90)).save(photos / "phone.JPG", exif=exif)
    (photos / "notes.txt").write_text("not an image")  # folders: only .jpg/.jpeg/.png are read
    out = tmp_path / "out"
    proc = hgbench(
        "infer",
        "--checkpoint",
        str(model_pt),
        "--images",
        str(photos),
        "--out",
        str(out),
        "--device",
        "cpu",
        "--no-flip-test",
    )
    assert proc.returncode == 0, proc.stderr
    docs = {f.stem: json.loads(f.read_text()) for f in out.glob("*.json")}
    assert set(docs) == {"wide", "phone"}
    for doc in docs.values():
        validate(doc)
        (person,) = doc["people"]
        assert person["source"] == "whole_image" and doc["model"]["flip_test"] is False
        assert person["box"] == [-0.5, -0.5, doc["width"] - 0.5, doc["height"] - 0.5]
    assert (docs["wide"]["width"], docs["wide"]["height"], docs["wide"]["exif_transposed"]) == (160, 90, False)
    assert (docs["phone"]["width"], docs["phone"]["height"], docs["phone"]["exif_transposed"]) == (90, 160, True)
    with Image.open(out / "phone.png") as png:
        assert png.size == (90, 160)


def test_boxes_file_forms_and_multiple_people(model_pt, tmp_path, capsys):
    image = tmp_path / "two.png"
    Image.new("RGB", (200, 100), (90, 90, 90)).save(image)
    boxes = {"two.png": [[10, 10, 60, 95], {"box": [100, 5, 190, 90]}, {"center": [150, 50], "scale": 0.4}]}
    (tmp_path / "boxes.json").write_text(json.dumps(boxes))
    rc = main(
        [
            "infer",
            "--checkpoint",
            str(model_pt),
            "--images",
            str(image),
            "--boxes",
            str(tmp_path / "boxes.json"),
            "--out",
            str(tmp_path / "out"),
            "--device",
            "cpu",
        ]
    )
    assert rc == 0, capsys.readouterr().err
    doc = json.loads((tmp_path / "out" / "two.json").read_text())
    validate(doc)
    assert [p["source"] for p in doc["people"]] == ["box", "box", "center_scale"]
    # a box's square: BOX_PADDING × its longer side (85 px → 106.25), centred on the box
    assert doc["people"][0]["input_window"] == pytest.approx([35 - 53.125, 52.5 - 53.125, 35 + 53.125, 52.5 + 53.125])
    # centre/scale, MPII layout: c.y += 15·s, side 200·1.25·s
    assert doc["people"][2]["input_window"] == pytest.approx([150 - 50, 56 - 50, 150 + 50, 56 + 50])


# ---------------------------------------------------------------------------------------------
# errors: one line, exit 2, naming the file and the fix, writing nothing


def _error(capsys, *args) -> str:
    assert main(["infer", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith("hgbench infer: error: ")
    return err


def test_unreadable_images_are_refused_and_nothing_is_written(model_pt, tmp_path, capsys):
    good = tmp_path / "in" / "a.jpg"
    good.parent.mkdir()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (96, 128, 3), dtype=np.uint8)).save(good)
    (tmp_path / "in" / "b.jpg").write_bytes(b"this is not a JPEG")
    out = tmp_path / "out"
    err = _error(capsys, "--checkpoint", str(model_pt), "--images", str(tmp_path / "in"), "--out", str(out))
    assert "b.jpg cannot be read" in err and "JPEG or PNG" in err
    # a truncated JPEG passes the header check and fails while decoding, after a.jpg was predicted
    data = good.read_bytes()
    (tmp_path / "in" / "b.jpg").write_bytes(data[: len(data) // 2])
    err = _error(
        capsys, "--checkpoint", str(model_pt), "--images", str(tmp_path / "in"), "--out", str(out), "--batch-size", "1"
    )
    assert "b.jpg cannot be decoded" in err
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["in"]  # no staging left over
    (tmp_path / "in" / "c.gif").write_bytes(b"GIF89a")
    err = _error(capsys, "--checkpoint", str(model_pt), "--images", str(tmp_path / "in" / "c.gif"), "--out", str(out))
    assert "c.gif is not a JPEG or PNG" in err
    err = _error(capsys, "--checkpoint", str(model_pt), "--images", str(good), "--out", str(good.parent))
    assert "choose another --out" in err


def test_bad_boxes_are_refused(model_pt, tmp_path, capsys):
    image = tmp_path / "p.png"
    Image.new("RGB", (100, 80)).save(image)
    cases = {
        "outside": ({"p.png": [150, 10, 190, 70]}, "lies outside the image (the image is 100×80 px"),
        "centre outside": ({"p.png": {"center": [50, 95], "scale": 0.3}}, "center [50.0, 95.0] lies outside"),
        "unknown file": ({"p.png": [0, 0, 50, 50], "q.jpg": [0, 0, 10, 10]}, "has boxes for 'q.jpg', which is not"),
        "empty": ({"p.png": [50, 10, 40, 70]}, "is empty (it needs x2 > x1"),
        "malformed": ({"p.png": [1, 2, 3]}, "expected [x1, y1, x2, y2]"),
    }
    for name, (boxes, message) in cases.items():
        path = tmp_path / "boxes.json"
        path.write_text(json.dumps(boxes))
        err = _error(
            capsys,
            "--checkpoint",
            str(model_pt),
            "--images",
            str(image),
            "--boxes",
            str(path),
            "--out",
            str(tmp_path / "out"),
        )
        assert message in err and "boxes.json" in err, (name, err)
    assert not (tmp_path / "out").exists()


def test_checkpoints_of_another_format_are_refused(model_pt, tmp_path, capsys):
    image = tmp_path / "p.png"
    Image.new("RGB", (100, 80)).save(image)
    last = tmp_path / "last.pt"  # a resumable state, not a model.pt
    save_state({"format": 2, "model": {}, "model_config": {}, "seed": 0}, last)
    onnx = tmp_path / "model.onnx"
    onnx.write_bytes(b"\x08\x07")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"nothing like a checkpoint")
    for path, message in (
        (last, "not a model.pt written by hgbench train"),
        (onnx, "is an ONNX model"),
        (junk, "cannot be read"),
        (tmp_path / "none.pt", "not found"),
    ):
        err = _error(capsys, "--checkpoint", str(path), "--images", str(image), "--out", str(tmp_path / "out"))
        assert message in err and path.name in err, err
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------------------------------------
# the one skeleton drawing function


def test_draw_skeleton_draws_limbs_and_skips_missing_or_low_score_joints():
    limbs = [(0, 1), (1, 2)]
    pts = np.array([[10.0, 10.0], [50.0, 10.0], [np.nan, np.nan]])
    image = draw.draw_skeleton(Image.new("RGB", (64, 32)), pts, limbs, "#ff0000", width=3)
    a = np.asarray(image)
    assert tuple(a[10, 30]) == (255, 0, 0)  # on the limb 0-1
    assert a[25:, :].sum() == 0  # nothing towards the NaN joint
    low = draw.draw_skeleton(
        Image.new("RGB", (64, 32)), pts, limbs, "#ff0000", width=3, scores=np.array([1.0, 0.1, 1.0]), min_score=0.5
    )
    assert tuple(np.asarray(low)[10, 30]) == (0, 0, 0) and tuple(np.asarray(low)[10, 10]) == (255, 0, 0)


def test_the_report_gallery_draws_with_the_same_function(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    from hgbench.report import figures

    calls = []
    real = draw.draw_skeleton
    monkeypatch.setattr(draw, "draw_skeleton", lambda *a, **k: calls.append(k) or real(*a, **k))
    rng = np.random.default_rng(0)
    panel = {
        "image": rng.integers(0, 255, (32, 32, 3), dtype=np.uint8),
        "gt": rng.uniform(2, 30, (16, 2)),
        "pred": rng.uniform(2, 30, (16, 2)),
        "caption": "x",
    }
    assert (
        figures.gallery_figure([{"title": "v", "panels": [panel]}], skeleton_limbs(MPII_JOINTS), tmp_path / "g.png")
        is not None
    )
    assert [c.get("dashed", False) for c in calls] == [True, False]  # ground truth dashed, prediction solid
