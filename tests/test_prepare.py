"""prepare: person records + images → processed HDF5 (schema, geometry, failure modes)."""

import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
from PIL import Image

from hgbench.config import DatasetConfig, SyntheticConfig
from hgbench.data import mpii, prepare, schema, synthetic
from hgbench.joints import MPII_FLIP, MPII_JOINTS

MPII_DATA = Path(__file__).parent / "data" / "mpii"
CFG = SyntheticConfig(
    seed=3,
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
RES, MARGIN = 64, 1.25
C = DatasetConfig(name="x", source="synthetic", input_res=RES, output_res=16, crop_margin=MARGIN).crop_size


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    root = tmp_path_factory.mktemp("prep")
    raw, out = root / "raw", root / "processed"
    synthetic.generate(raw, CFG)
    counts = prepare.prepare_dataset(raw, out, dataset="synthetic", input_res=RES, crop_margin=MARGIN)
    return raw, out, counts


def person(name, joints, objpos, scale, headbox=((1.0, 1.0), (11.0, 11.0))):
    j = np.full((16, 2), np.nan)
    j[: len(joints)] = joints
    return mpii.PersonRecord(
        image_name=name,
        image_index=0,
        person_index=0,
        joints=j,
        visible=~np.isnan(j[:, 0]),
        headbox=np.array(headbox, float),
        objpos=np.array(objpos, float),
        scale=float(scale),
        is_train=True,
    )


def test_counts_shapes_dtypes_attrs(prepared):
    raw, out, counts = prepared
    assert C == 80 and counts == {"train": 6, "valid": 3, "train_images": 6, "valid_images": 3, "crop_size": C}
    assert sorted(p.name for p in out.iterdir()) == ["train.h5", "valid.h5"]  # no .tmp left behind
    for split, n in (("train", 6), ("valid", 3)):
        with schema.open_split(out / f"{split}.h5") as f:
            assert len(f) == n and f.crop_size == C and f.input_res == RES
            a = f.read()
            attrs = f.attrs
            assert f.image(0).shape == (C, C, 3) and f.image(0).dtype == np.uint8
            assert f.images([2, 0]).shape == (2, C, C, 3)
        assert a["joints"].shape == (n, 16, 2) and a["joints"].dtype == np.float32
        assert a["joints_image"].dtype == np.float64 and a["crop_to_image"].shape == (n, 2, 3)
        assert a["visible"].dtype == bool and a["missing"].dtype == bool
        assert a["image_index"].dtype == np.int64 and a["image_name"].dtype.kind == "U"
        np.testing.assert_array_equal(a["missing"], np.isnan(a["joints_image"][..., 0]))
        np.testing.assert_array_equal(np.isnan(a["joints"][..., 0]), a["missing"])
        assert not (a["visible"] & a["missing"]).any()
        assert attrs["schema_version"] == 1 and attrs["dataset"] == "synthetic" and attrs["split"] == split
        assert attrs["joint_names"] == list(MPII_JOINTS) and attrs["flip_permutation"] == list(MPII_FLIP)
        assert attrs["input_res"] == RES and attrs["crop_size"] == C and attrs["crop_margin"] == MARGIN
        assert attrs["frame_offset"] == 1 and "0.6" in attrs["normalizer_definition"]
        assert set(attrs["source_checksums"]) == {synthetic.RELEASE_RELPATH, "valid_split.csv", "MANIFEST.json"}
        assert attrs["code_version"]
    v = schema.read_split_arrays(out / "valid.h5", ["image_index", "person_index", "image_name"])
    assert v["image_index"].tolist() == [6, 7, 8] and v["person_index"].tolist() == [0, 0, 0]
    assert v["image_name"].tolist() == ["000000006.jpg", "000000007.jpg", "000000008.jpg"]


def test_geometry_matches_records(prepared):
    raw, out, _ = prepared
    recs = mpii.people(mpii.load_release(raw / synthetic.RELEASE_RELPATH))
    a = schema.read_split_arrays(out / "train.h5")
    for i, r in enumerate(recs[:6]):
        np.testing.assert_array_equal(a["joints_image"][i], r.joints)
        # hourglass adjustment applied exactly once
        np.testing.assert_allclose(a["center"][i], r.objpos + [0, 15 * r.scale])
        assert a["scale"][i] == pytest.approx(1.25 * r.scale)
        assert a["normalizer"][i] == pytest.approx(0.6 * np.linalg.norm(r.headbox[1] - r.headbox[0]))
        np.testing.assert_array_equal(a["headbox"][i], r.headbox)
        A = a["crop_to_image"][i]
        # box of side 200·scale native px ↔ input_res crop px; crop centre ↔ centre
        assert A[0, 0] == pytest.approx(200 * a["scale"][i] / RES) and A[0, 1] == 0 and A[1, 0] == 0
        np.testing.assert_allclose(A[:, :2] @ [(C - 1) / 2, (C - 1) / 2] + A[:, 2], a["center"][i])


def test_round_trip_crop_to_image(prepared):
    _, out, _ = prepared
    a = schema.read_split_arrays(out / "valid.h5")
    A = a["crop_to_image"]
    back = np.einsum("nij,nkj->nki", A[:, :, :2], a["joints"].astype(np.float64)) + A[:, None, :, 2]
    ok = ~a["missing"]
    # joints are stored as float32 (crop px ≤ C): the round trip is exact up to float32 rounding
    np.testing.assert_allclose(back[ok], a["joints_image"][ok], rtol=0, atol=1e-4)
    # in float64 the two maps are exact inverses
    for n in range(len(A)):
        crop = prepare.image_to_crop(a["joints_image"][n], A[n])
        np.testing.assert_allclose(
            prepare.crop_to_image_points(crop, A[n])[ok[n]], a["joints_image"][n][ok[n]], rtol=0, atol=1e-6
        )
        np.testing.assert_allclose(crop[ok[n]], a["joints"][n][ok[n]], rtol=0, atol=1e-4)


@pytest.mark.parametrize("scale,objx", [(0.256, 100.5), (0.128, 100.25), (0.2, 97.3)])
def test_dot_lands_on_predicted_crop_pixel(tmp_path, scale, objx):
    # scale 0.256: 1 crop px = 1 image px; 0.128: 2× zoom; 0.2: non-integer zoom
    img = np.zeros((150, 200, 3), np.uint8)
    x0, y0 = 87, 61  # 0-based pixel → native (88, 62)
    img[y0, x0] = 255
    Image.fromarray(img).save(tmp_path / "dot.png")
    prepare.prepare_split(
        [person("dot.png", [[x0 + 1, y0 + 1]], (objx, 60.0), scale)],
        tmp_path,
        tmp_path / "o.h5",
        dataset="t",
        split="valid",
        input_res=RES,
        crop_margin=MARGIN,
        source_checksums={},
    )
    with schema.open_split(tmp_path / "o.h5") as f:
        crop = f.image(0)[..., 0].astype(float)
        jx, jy = f.read(["joints"])["joints"][0, 0]
    iy, ix = np.unravel_index(crop.argmax(), crop.shape)
    assert (ix, iy) == (round(float(jx)), round(float(jy)))
    if scale in (0.256, 0.128):  # predicted position on the pixel grid in x: exact
        assert jx == round(float(jx))
    # bilinear turns the dot into a tent max(0, 1 - |u - p| / zoom) centred on the prediction p;
    # its sampled centroid follows from p alone
    zoom = RES / (200 * 1.25 * scale)
    u = np.arange(C, dtype=float)
    for axis, p in ((0, float(jx)), (1, float(jy))):
        tent = np.clip(1 - np.abs(u - p) / zoom, 0, None)
        profile = crop.sum(axis=0) if axis == 0 else crop.sum(axis=1)  # x: sum over rows
        assert (profile * u).sum() / profile.sum() == pytest.approx((tent * u).sum() / tent.sum(), abs=0.01)


def test_blob_centroid_when_downscaling(tmp_path):
    # large person (box 4× the crop resolution): Image.reduce pre-filter + affine; the centroid of a
    # smooth blob must still land where crop_to_image predicts
    h, w = 700, 900
    ys, xs = np.mgrid[:h, :w]
    cx0, cy0 = 431.3, 287.8  # 0-based
    blob = 255 * np.exp(-((xs - cx0) ** 2 + (ys - cy0) ** 2) / (2 * 6.0**2))
    Image.fromarray(np.repeat(blob[..., None], 3, axis=2).astype(np.uint8)).save(tmp_path / "b.png")
    rec = person("b.png", [[cx0 + 1, cy0 + 1]], (420.0, 260.0), 1.05)
    prepare.prepare_split(
        [rec],
        tmp_path,
        tmp_path / "o.h5",
        dataset="t",
        split="valid",
        input_res=RES,
        crop_margin=MARGIN,
        source_checksums={},
    )
    with schema.open_split(tmp_path / "o.h5") as f:
        crop = f.image(0)[..., 0].astype(float)
        jx, jy = f.read(["joints"])["joints"][0, 0]
    crop[crop < 3] = 0
    gy, gx = np.mgrid[: crop.shape[0], : crop.shape[1]]
    assert (crop * gx).sum() / crop.sum() == pytest.approx(jx, abs=0.1)
    assert (crop * gy).sum() / crop.sum() == pytest.approx(jy, abs=0.1)


def test_zero_fill_outside_the_image(tmp_path):
    Image.new("RGB", (40, 40), (200, 200, 200)).save(tmp_path / "w.png")
    rec = person("w.png", [[5.0, 5.0]], (5.0, 5.0), 0.256)  # box centred near the top-left corner
    prepare.prepare_split(
        [rec],
        tmp_path,
        tmp_path / "o.h5",
        dataset="t",
        split="valid",
        input_res=RES,
        crop_margin=MARGIN,
        source_checksums={},
    )
    with schema.open_split(tmp_path / "o.h5") as f:
        crop = f.image(0)
        A = f.read(["crop_to_image"])["crop_to_image"][0]
    native = A[:, :2] @ np.array([[0, C - 1], [0, C - 1]]) + A[:, 2:]  # crop corners → native
    assert native[0, 0] < 0 and native[0, 1] > 40  # the crop spans beyond the image on both sides
    assert (crop[0, 0] == 0).all() and (crop[-1, -1] == 0).all()
    assert (crop[C // 2 + 5, C // 2 + 5] == 200).all()


def test_workers_give_identical_files(prepared, tmp_path):
    raw, out, _ = prepared
    prepare.prepare_dataset(raw, tmp_path, dataset="synthetic", input_res=RES, crop_margin=MARGIN, workers=2)
    for split in ("train", "valid"):
        with h5py.File(out / f"{split}.h5") as a, h5py.File(tmp_path / f"{split}.h5") as b:
            for k in schema.DATASETS:
                np.testing.assert_array_equal(a[k][...], b[k][...])


def test_truncated_or_incomplete_file_is_a_clear_error(prepared, tmp_path):
    _, out, _ = prepared
    bad = tmp_path / "valid.h5"
    data = (out / "valid.h5").read_bytes()
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(schema.DataFileError, match=r"valid\.h5.*(truncated|corrupt).*hgbench prepare"):
        schema.open_split(bad)
    with pytest.raises(schema.DataFileError, match="valid.h5"):
        schema.read_split_arrays(bad)
    shutil.copyfile(out / "valid.h5", bad)
    with h5py.File(bad, "a") as f:
        del f["normalizer"]
    with pytest.raises(schema.DataFileError, match="normalizer.*missing"):
        schema.open_split(bad)
    shutil.copyfile(out / "valid.h5", bad)
    with h5py.File(bad, "a") as f:
        del f.attrs["source_checksums"]
    with pytest.raises(schema.DataFileError, match="source_checksums"):
        schema.open_split(bad)
    shutil.copyfile(out / "valid.h5", bad)
    with h5py.File(bad, "a") as f:
        del f["scale"]
        f["scale"] = np.zeros(2)
    with pytest.raises(schema.DataFileError, match=r"'scale' has shape \(2,\)"):
        schema.open_split(bad)
    with pytest.raises(schema.DataFileError, match="not found"):
        schema.open_split(tmp_path / "absent.h5")


def test_missing_or_corrupt_image_names_the_file(prepared, tmp_path):
    raw, _, _ = prepared
    broken = tmp_path / "raw"
    shutil.copytree(raw, broken)
    out = tmp_path / "out"
    (broken / "images" / "000000004.jpg").unlink()
    with pytest.raises(prepare.PrepareError, match="000000004.jpg.*not found"):
        prepare.prepare_dataset(broken, out, dataset="synthetic", input_res=RES, crop_margin=MARGIN)
    (broken / "images" / "000000004.jpg").write_bytes((raw / "images" / "000000004.jpg").read_bytes()[:300])
    with pytest.raises(prepare.PrepareError, match="000000004.jpg.*cannot be decoded"):
        prepare.prepare_dataset(broken, out, dataset="synthetic", input_res=RES, crop_margin=MARGIN, workers=2)
    assert not out.exists() or list(out.iterdir()) == []  # neither a .tmp nor a half-written file


def test_split_and_train_selection(tmp_path, prepared):
    raw, _, _ = prepared
    own = tmp_path / "raw"
    shutil.copytree(raw, own)
    (own / "valid_split.csv").unlink()
    with pytest.raises(prepare.PrepareError, match="split"):
        prepare.prepare_dataset(own, tmp_path / "o", dataset="s", input_res=RES, crop_margin=MARGIN)
    csv = tmp_path / "split.csv"
    csv.write_text("image_index,person_index\n2,0\n5,0\n")
    counts = prepare.prepare_dataset(own, tmp_path / "o", dataset="s", input_res=RES, crop_margin=MARGIN, split_csv=csv)
    assert counts["valid"] == 2 and counts["train"] == 7
    t = schema.read_split_arrays(tmp_path / "o" / "train.h5", ["image_index"])["image_index"]
    assert t.tolist() == [0, 1, 3, 4, 6, 7, 8]
    assert "split.csv" in schema.read_split_attrs(tmp_path / "o" / "valid.h5")["source_checksums"]


def test_real_mpii_images_prepare(tmp_path):
    recs = mpii.people(mpii.load_release(MPII_DATA / "release_subset.mat"))
    with np.load(MPII_DATA / "valid_h5.npz") as z:
        ref = {k: z[k][:5] for k in ("center", "scale", "normalize")}
    out = tmp_path / "valid.h5"
    prepare.prepare_split(
        recs,
        MPII_DATA / "images",
        out,
        dataset="mpii",
        split="valid",
        input_res=RES,
        crop_margin=MARGIN,
        source_checksums={"x": "y"},
        workers=2,
    )
    with schema.open_split(out) as f:
        a = f.read()
        crops = f.images(range(5))
    np.testing.assert_allclose(a["center"], ref["center"], atol=1e-9)  # = pose-hg-train's adjusted values
    np.testing.assert_allclose(a["scale"], ref["scale"], rtol=1e-12)
    np.testing.assert_allclose(a["normalizer"], ref["normalize"], atol=1e-6)
    assert crops.shape == (5, C, C, 3) and crops.reshape(5, -1).mean(axis=1).min() > 20
    ok = ~a["missing"]
    inside = (a["joints"][ok] > -0.5) & (a["joints"][ok] < C - 0.5)
    assert inside.all(axis=-1).mean() > 0.95  # the person is in the crop


def test_prepare_sample_from_the_five_real_images(tmp_path):
    # the report's gallery input: the 5 real MPII images, from the RELEASE-layout file or the HRNet json
    n = prepare.prepare_sample(
        MPII_DATA / "release_subset.mat", MPII_DATA / "images", tmp_path / "a.h5", input_res=RES, crop_margin=MARGIN
    )
    m = prepare.prepare_sample(
        MPII_DATA / "test_mpii.json", MPII_DATA / "images", tmp_path / "b.h5", input_res=RES, crop_margin=MARGIN
    )
    assert n == m == 5
    a, b = schema.read_split_arrays(tmp_path / "a.h5"), schema.read_split_arrays(tmp_path / "b.h5")
    np.testing.assert_array_equal(a["image_name"], b["image_name"])
    np.testing.assert_array_equal(a["missing"], b["missing"])
    ok = ~a["missing"]
    np.testing.assert_allclose(a["joints_image"][ok], b["joints_image"][ok], atol=1e-3)  # json rounds to 4 decimals
    np.testing.assert_allclose(a["center"], b["center"], atol=1e-9)
    assert np.isfinite(a["normalizer"]).all() and np.isnan(b["normalizer"]).all()  # the json has no head boxes
    with schema.open_split(tmp_path / "a.h5") as fa, schema.open_split(tmp_path / "b.h5") as fb:
        np.testing.assert_array_equal(fa.images(range(5)), fb.images(range(5)))  # same boxes, same crops
