"""MPII RELEASE parser on real annotations (tests/data/mpii, see its README) and on the quirks."""

import json
from pathlib import Path

import numpy as np
import pytest
import scipy.io

from hgbench.data import mpii

DATA = Path(__file__).parent / "data" / "mpii"
SHARED_DETECTIONS = Path("/work/shared/data/mpii/detections.mat")


@pytest.fixture(scope="module")
def valid_h5():
    with np.load(DATA / "valid_h5.npz") as z:
        return {k: z[k] for k in z.files}


@pytest.fixture(scope="module")
def det_people():
    return mpii.people(mpii.load_release(DATA / "detections_annolist.mat"))


def test_real_validation_ground_truth_matches_valid_h5(det_people, valid_h5):
    assert len(det_people) == 2958
    joints = np.stack([p.joints for p in det_people])
    visible = np.stack([p.visible for p in det_people])
    part, vis = valid_h5["part"], valid_h5["visible"]
    missing = np.isnan(joints[..., 0])
    # valid.h5 writes a missing joint as (0, 0): the 3088 missing joints match exactly
    assert missing.sum() == 3088
    np.testing.assert_array_equal(missing, (part == 0).all(axis=-1))
    np.testing.assert_array_equal(np.isnan(joints[..., 1]), missing)
    # valid.h5 part is the integer-truncated MPII coordinate (the .mat has sub-pixel neck/head)
    np.testing.assert_array_equal(np.trunc(joints[~missing]), part[~missing])
    # is_visible (empty → 1, '1'/'0' strings, numbers) equals valid.h5 visible; never on a missing joint
    np.testing.assert_array_equal(visible, vis > 0)
    assert not visible[missing].any()
    assert (~visible & ~missing).sum() == 10243  # occluded but annotated (REFERENCE §3.2)


def test_real_headbox_objpos_scale(det_people, valid_h5):
    headbox = np.stack([p.headbox for p in det_people])
    objpos = np.stack([p.objpos for p in det_people])
    scale = np.array([p.scale for p in det_people])
    np.testing.assert_allclose(
        0.6 * np.linalg.norm(headbox[:, 1] - headbox[:, 0], axis=1), valid_h5["normalize"], rtol=0, atol=1e-6
    )
    # valid.h5 stores the hourglass-adjusted centre and scale
    np.testing.assert_allclose(objpos + np.stack([0 * scale, 15 * scale], axis=1), valid_h5["center"], atol=1e-9)
    np.testing.assert_allclose(1.25 * scale, valid_h5["scale"], rtol=1e-12)


def test_real_release_indices_match_split(valid_h5):
    m = scipy.io.loadmat(DATA / "detections_annolist.mat", squeeze_me=True)
    np.testing.assert_array_equal(m["RELEASE_img_index"].astype(int) - 1, valid_h5["index"].astype(int))
    np.testing.assert_array_equal(m["RELEASE_person_index"].astype(int) - 1, valid_h5["person"].astype(int))


@pytest.mark.parametrize("squeeze_me,struct_as_record", [(False, True), (True, True), (False, False)])
def test_any_loadmat_options_give_the_same_records(det_people, squeeze_me, struct_as_record):
    mat = scipy.io.loadmat(DATA / "detections_annolist.mat", squeeze_me=squeeze_me, struct_as_record=struct_as_record)
    other = mpii.people(mpii.release_from_mat(mat, "x"))
    assert len(other) == len(det_people)
    for a, b in zip(det_people[::7], other[::7]):
        np.testing.assert_array_equal(a.joints, b.joints)
        np.testing.assert_array_equal(a.visible, b.visible)
        np.testing.assert_array_equal(a.headbox, b.headbox)
        np.testing.assert_array_equal(a.objpos, b.objpos)
        assert a.scale == b.scale


@pytest.mark.skipif(not SHARED_DETECTIONS.is_file(), reason="original reference copy not available here")
def test_compressed_copy_equals_the_original(det_people):
    orig = mpii.people(mpii.load_release(SHARED_DETECTIONS))
    for a, b in zip(orig, det_people):
        np.testing.assert_array_equal(a.joints, b.joints)
        np.testing.assert_array_equal(a.visible, b.visible)


def test_release_layout_subset_against_hrnet_json():
    rel = mpii.load_release(DATA / "release_subset.mat")
    recs = mpii.people(rel)
    ref = json.loads((DATA / "test_mpii.json").read_text())
    assert [r.image_name for r in recs] == [x["image"] for x in ref]
    assert all(r.is_train for r in recs) and rel.single_person == ((0,),) * 5
    for r, x in zip(recs, ref):
        np.testing.assert_allclose(r.objpos, x["center"])
        assert r.scale == pytest.approx(x["scale"], abs=1e-6)
        present = np.array(x["joints_vis"]) > 0
        np.testing.assert_array_equal(~r.missing, present)
        np.testing.assert_allclose(r.joints[present], np.array(x["joints"])[present], atol=1e-4)


def test_records_are_immutable(det_people):
    p = det_people[0]
    with pytest.raises(AttributeError):  # frozen dataclass
        p.scale = 2.0
    with pytest.raises(ValueError):
        p.joints[0, 0] = 1.0


# ----------------------------------------------------------------------------------------------
# quirks, on small hand-built files
# ----------------------------------------------------------------------------------------------


def _struct(rows, fields):
    arr = np.empty((1, len(rows)), dtype=[(f, object) for f in fields])
    for k, row in enumerate(rows):
        for f in fields:
            arr[0, k][f] = row.get(f, np.zeros((0, 0)))
    return arr


PT = ["x", "y", "id", "is_visible"]
RECT = ["x1", "y1", "x2", "y2", "annopoints", "scale", "objpos"]


def _quirky_release(tmp_path: Path) -> Path:
    one_point = _struct([{"x": 10.0, "y": 20.0, "id": 9.0, "is_visible": "1"}], PT)  # a single point
    pts = _struct(
        [
            {"x": 5.0, "y": 6.0, "id": 0.0, "is_visible": np.zeros((0, 0))},  # empty → visible
            {"x": 7.0, "y": 8.0, "id": 6.0, "is_visible": "0"},
            {"x": 9.0, "y": 10.0, "id": 7.0, "is_visible": np.uint8(1)},
        ],
        PT,
    )
    img0 = _struct(
        [
            {
                "x1": 1.0,
                "y1": 2.0,
                "x2": 11.0,
                "y2": 22.0,
                "annopoints": {"point": pts},
                "scale": 1.5,
                "objpos": {"x": 30.0, "y": 40.0},
            },
            {"scale": 2.0, "objpos": {"x": 50.0, "y": 60.0}},  # no annopoints: skipped
            {"annopoints": {"point": one_point}, "scale": 1.0, "objpos": {"x": 3.0, "y": 4.0}},  # no head box
        ],
        RECT,
    )
    img1 = _struct([{"annopoints": {"point": one_point}, "objpos": np.zeros((0, 0))}], RECT)  # no objpos/scale
    annolist = _struct(
        [
            {"image": {"name": "a.jpg"}, "annorect": img0},
            {"image": {"name": "b.jpg"}, "annorect": img1},
            {"image": {"name": "c.jpg"}},  # annorect = []
            {
                "image": {"name": "d.jpg"},
                "annorect": _struct(
                    [{"annopoints": {"point": one_point}, "scale": 1.0, "objpos": {"x": 3.0, "y": 4.0}}], RECT
                ),
            },
        ],
        ["image", "annorect"],
    )
    single = np.empty((4, 1), dtype=object)
    single[0, 0], single[1, 0], single[2, 0], single[3, 0] = np.array([[1.0, 3.0]]), np.zeros((0, 0)), 1.0, 1.0
    path = tmp_path / "quirks.mat"
    scipy.io.savemat(
        path, {"RELEASE": {"annolist": annolist, "img_train": np.array([[1, 1, 1, 0]]), "single_person": single}}
    )
    return path


def test_quirks(tmp_path):
    rel = mpii.load_release(_quirky_release(tmp_path))
    assert [im.name for im in rel.images] == ["a.jpg", "b.jpg", "c.jpg", "d.jpg"]
    assert rel.images[2].rects == ()
    assert rel.single_person[0] == (0, 2) and rel.single_person[1] == ()
    recs = mpii.people(rel)
    assert [(r.image_index, r.person_index) for r in recs] == [(0, 0), (0, 2), (3, 0)]
    a, c, d = recs
    assert a.joints[0].tolist() == [5.0, 6.0] and a.visible[0]
    assert a.joints[6].tolist() == [7.0, 8.0] and not a.visible[6]
    assert a.visible[7] and a.missing.sum() == 13
    np.testing.assert_array_equal(a.headbox, [[1, 2], [11, 22]])
    assert a.scale == 1.5 and a.objpos.tolist() == [30.0, 40.0]
    assert c.joints[9].tolist() == [10.0, 20.0] and c.visible[9] and np.isnan(c.headbox).all()
    assert a.is_train and not d.is_train
    assert [(r.image_index, r.person_index) for r in mpii.people(rel, train_only=True)] == [(0, 0), (0, 2)]
    assert [(r.image_index, r.person_index) for r in mpii.people(rel, single_person_only=True)] == [
        (0, 0),
        (0, 2),
        (3, 0),
    ]
    assert [r.person_index for r in mpii.people(rel, [(0, 2), (0, 0)])] == [2, 0]
    with pytest.raises(mpii.MPIIFormatError, match="no joint annotations"):
        mpii.people(rel, [(0, 1)])
    with pytest.raises(mpii.MPIIFormatError, match="does not exist"):
        mpii.people(rel, [(9, 0)])


def test_not_a_release(tmp_path):
    scipy.io.savemat(tmp_path / "x.mat", {"foo": 1.0})
    with pytest.raises(mpii.MPIIFormatError, match="no RELEASE"):
        mpii.load_release(tmp_path / "x.mat")
    (tmp_path / "y.mat").write_bytes(b"not a mat file at all")
    with pytest.raises(mpii.MPIIFormatError, match="y.mat"):
        mpii.load_release(tmp_path / "y.mat")
    with pytest.raises(FileNotFoundError):
        mpii.load_release(tmp_path / "absent.mat")


def test_shipped_validation_split(valid_h5):
    split = mpii.load_split(mpii.MPII_VALID_SPLIT)
    assert len(split) == 2958 and len({i for i, _ in split}) == 2729
    assert split == list(zip(valid_h5["index"].astype(int).tolist(), valid_h5["person"].astype(int).tolist()))
    lines = mpii.MPII_VALID_SPLIT.read_text().splitlines()
    assert lines[0] == "image_index,person_index" and lines[1] == "6,0" and len(lines) == 2959


def test_load_split_errors(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("index,person\n1,0\n")
    with pytest.raises(mpii.MPIIFormatError, match="first line"):
        mpii.load_split(bad)
    bad.write_text("image_index,person_index\n1,0\n2,x\n")
    with pytest.raises(mpii.MPIIFormatError, match=r"bad.csv:3"):
        mpii.load_split(bad)
    bad.write_text("image_index,person_index\n1,0\n1,0\n")
    with pytest.raises(mpii.MPIIFormatError, match="twice"):
        mpii.load_split(bad)
    bad.write_text("image_index,person_index\n1,0\n\n3.0,2\n")
    assert mpii.load_split(bad) == [(1, 0), (3, 2)]
