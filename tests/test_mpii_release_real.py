"""The official annotation file's layout (RELEASE) built from the real validation records
(tests/realdata.py): `evaluate --ground-truth RELEASE.mat` selects the standard split exactly as
shipped, and `export-mpii --split valid` round-trips predictions through the submission format."""

import hashlib
import shutil
from pathlib import Path

import numpy as np
import pytest
import scipy.io

from hgbench.cli import main
from hgbench.data import mpii
from hgbench.evaluate import load_ground_truth, load_predictions, shipped_ground_truth
from realdata import MPII_DATA, mpii_release_from_validation_records

REF = Path(__file__).parent / "data" / "reference"
INPUTS = (MPII_DATA / "detections_annolist.mat", MPII_DATA / "valid_h5.npz", Path(__file__).with_name("realdata.py"))


@pytest.fixture(scope="module")
def release_mat(request, tmp_path_factory) -> Path:
    """The RELEASE-layout file of the 2958 real validation people (24985 entries; ~8 s to write,
    so kept in pytest's cache, keyed by the sha256 of its inputs)."""
    key = hashlib.sha256(b"".join(p.read_bytes() for p in INPUTS)).hexdigest()[:16]
    cache = getattr(request.config, "cache", None)
    folder = cache.mkdir("hgbench-release-valid") if cache is not None else tmp_path_factory.mktemp("release")
    path = folder / f"release-{key}.mat"
    if not path.is_file():
        tmp = tmp_path_factory.mktemp("build") / path.name
        mpii_release_from_validation_records(tmp)
        shutil.move(tmp, path)
    return path


def test_release_file_as_ground_truth_is_the_shipped_one(release_mat):
    gt, ref = load_ground_truth(release_mat), shipped_ground_truth()
    assert gt.layout == "release" and gt.joints.shape == (2958, 16, 2)
    for key in ("joints", "missing", "normalizer", "visible", "image_index", "person_index"):
        np.testing.assert_array_equal(getattr(gt, key), getattr(ref, key), err_msg=key)


def test_export_valid_round_trips(release_mat, tmp_path, capsys):
    preds_file = REF / "bearpaw-hg_s8_b1.mat"
    out = tmp_path / "pred_keypoints_mpii.mat"
    assert (
        main(
            [
                "export-mpii",
                "--predictions",
                str(preds_file),
                "--annotations",
                str(release_mat),
                "--split",
                "valid",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    assert "2958 people in 2729 valid images" in capsys.readouterr().out
    preds = load_predictions(preds_file, 2958)
    gt = shipped_ground_truth()

    # Read `pred` back as the official driver sees it (scipy only): one entry per validation image
    # in RELEASE order; the split's person is rect RELEASE_person_index of its image's entry.
    pred = scipy.io.loadmat(out, struct_as_record=False, squeeze_me=True)["pred"]
    images = sorted({i for i, _ in mpii.load_split(mpii.MPII_VALID_SPLIT)})
    assert len(pred) == len(images) == 2729
    entry_of = {i: k for k, i in enumerate(images)}
    back = np.full((2958, 16, 2), np.nan)
    for row, (i, r) in enumerate(zip(gt.image_index, gt.person_index)):
        for p in np.atleast_1d(np.atleast_1d(pred[entry_of[i]].annorect)[r].annopoints.point):
            back[row, int(p.id)] = p.x, p.y
    ok = ~gt.missing
    np.testing.assert_array_equal(back[ok], preds[ok])  # every annotated joint, bit for bit
    np.testing.assert_array_equal(back, preds)  # (all 16 are written)

    # annorect as long as RELEASE's, objpos/scale kept, image names copied, no points elsewhere
    release = mpii.load_release(release_mat)
    people = {(int(i), int(r)) for i, r in zip(gt.image_index, gt.person_index)}
    for entry, i in zip(pred, images):
        assert entry.image.name == release.images[i].name
        rects = np.atleast_1d(entry.annorect)
        assert len(rects) == len(release.images[i].rects)
        for r, rect in enumerate(rects):
            want = release.images[i].rects[r]
            if want.objpos is None:
                assert np.size(rect.objpos) == 0
            else:
                assert (rect.objpos.x, rect.objpos.y, rect.scale) == (want.objpos[0], want.objpos[1], want.scale)
            if (i, r) in people:
                assert [int(p.id) for p in rect.annopoints.point] == list(range(16))
            else:
                assert np.size(rect.annopoints) == 0
