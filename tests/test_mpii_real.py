"""The Done-when figures of the real MPII conversion: validation people, missing joints, frames,
normalisers (tests/data/mpii, always present) and the 22,246-person training split (bearpaw's
json of all 25,204 records, in ../shared/data/mpii; skipped without it)."""

import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from hgbench.data import mpii, prepare
from realdata import mpii_release_from_json

DATA = Path(__file__).parent / "data" / "mpii"
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "mpii"
JSON = SHARED / "mpii_annotations.json.gz"


@pytest.fixture(scope="module")
def valid_h5():
    with np.load(DATA / "valid_h5.npz") as z:
        return {k: z[k] for k in z.files}


def test_validation_people_through_prepare_geometry(valid_h5):
    people = mpii.people(mpii.load_release(DATA / "detections_annolist.mat"))
    g = prepare.split_geometry(people, input_res=256, crop_margin=1.5)
    part = valid_h5["part"]
    assert len(people) == len(part) == 2958
    assert g["missing"].sum() == 3088
    np.testing.assert_array_equal(g["missing"], (part == 0).all(axis=-1))
    ok = ~g["missing"]
    # crop px (0-based) → native (1-based) through the stored affine: valid.h5 truncated to integers
    a = g["crop_to_image"]
    native = np.einsum("nij,nkj->nki", a[:, :, :2], g["joints"]) + a[:, None, :, 2]
    err = np.abs(native[ok] - part[ok])
    assert err.max() < 1.0
    # exactly: valid.h5 = the native coordinate truncated towards zero (some joints lie at y <= 0)
    np.testing.assert_array_equal(np.trunc(np.round(native[ok], 6)), part[ok])
    np.testing.assert_allclose(g["normalizer"], valid_h5["normalize"], rtol=0, atol=1e-3)
    np.testing.assert_allclose(g["center"], valid_h5["center"], atol=1e-9)
    np.testing.assert_allclose(g["scale"], valid_h5["scale"], rtol=1e-12)


@pytest.mark.skipif(not JSON.is_file(), reason="bearpaw mpii_annotations.json.gz (../shared/data/mpii) not available")
def test_train_split_is_the_22246_json_records(valid_h5):
    records = json.loads(gzip.decompress(JSON.read_bytes()))
    assert len(records) == 25204
    release = mpii.release_from_mat(mpii_release_from_json(records), "json")
    train, valid = mpii.split_people(release, mpii.load_split(mpii.MPII_VALID_SPLIT))
    want = [r for r in records if r["isValidation"] == 0]
    assert len(valid) == 2958 and len(train) == len(want) == 22246
    assert [p.image_name for p in train] == [r["img_paths"] for r in want]
    assert [(p.image_index + 1, p.person_index + 1) for p in train] == [
        (int(r["annolist_index"]), int(r["people_index"])) for r in want
    ]
    joints = np.stack([p.joints for p in train])
    ref = np.array([r["joint_self"] for r in want])[..., :2]
    ok = ~np.isnan(joints[..., 0])
    np.testing.assert_array_equal(joints[ok], ref[ok])
    np.testing.assert_array_equal(np.stack([p.objpos for p in train]), [r["objpos"] for r in want])
    # the validation people are those of valid.h5, in its order
    assert [p.image_index for p in valid] == valid_h5["index"].astype(int).tolist()
