"""The shipped MPII validation ground truth (src/hgbench/data/mpii_valid_gt.h5): equal to the
annotation records it is built from, 13 joints away from Tompson's pos_gt_src, and the default of
`hgbench evaluate` under the official protocol."""

import json
from pathlib import Path

import h5py
import numpy as np
import pytest
import scipy.io

from hgbench.cli import main
from hgbench.data import mpii, mpii_gt
from hgbench.evaluate import evaluate_files, load_ground_truth, shipped_ground_truth
from hgbench.joints import MPII_JOINTS

DATA = Path(__file__).parent / "data" / "mpii"
REF = Path(__file__).parent / "data" / "reference"
GT_VALID = REF / "detections_our_format.mat"
SHARED_DETECTIONS = Path(__file__).resolve().parents[2] / "shared" / "data" / "mpii" / "detections.mat"
DETECTIONS_SHA256 = "cfb56b4374db1675ac55955459a7399ccb5305dd3c6f4635c97f5df7f4ef4d13"  # shared/data/SOURCES.md

# The 13 annotated joints where pos_gt_src (gt_valid.mat / detections_our_format.mat) is not the
# annotation list: (row, joint, annotation list x, y); pos_gt_src has x = 0 and/or y = 0 there.
THIRTEEN = [
    (682, "rank", 286.0, 219.0),
    (786, "lank", 495.0, 445.0),
    (1081, "head", 687.4132, 75.9751),
    (1897, "relb", 309.0, 4.0),
    (2636, "head", 768.6289, 22.5739),
    (2739, "rank", 571.0, 586.0),
    (2763, "rank", 281.0, 94.0),
    (2763, "rkne", 281.0, 94.0),
    (2763, "lkne", 281.0, 94.0),
    (2763, "lank", 281.0, 94.0),
    (2775, "head", 273.9995, 161.5883),
    (2897, "head", 214.0095, 253.1514),
    (2921, "head", 498.502, 268.6561),
]


@pytest.fixture(scope="module")
def shipped():
    return mpii_gt.load_valid_gt()


def _records(path: Path) -> dict:
    """Straight from the annotation records (scipy only): joints, visible, head box, objpos, scale."""
    m = scipy.io.loadmat(path, struct_as_record=False, squeeze_me=True)
    n = len(m["annolist"])
    out = {
        "joints": np.full((n, 16, 2), np.nan),
        "visible": np.zeros((n, 16), bool),
        "headbox": np.zeros((n, 2, 2)),
        "objpos": np.zeros((n, 2)),
        "scale": np.zeros(n),
    }
    for k, entry in enumerate(m["annolist"]):
        r = entry.annorect
        out["headbox"][k] = [[float(r.x1), float(r.y1)], [float(r.x2), float(r.y2)]]
        out["objpos"][k] = float(r.objpos.x), float(r.objpos.y)
        out["scale"][k] = float(r.scale)
        for p in np.atleast_1d(r.annopoints.point):
            vis = np.asarray(p.is_visible).reshape(-1)
            out["joints"][k, int(p.id)] = float(p.x), float(p.y)
            out["visible"][k, int(p.id)] = True if vis.size == 0 else bool(int(vis[0]))  # empty: visible
    out["image_index"] = m["RELEASE_img_index"].astype(np.int64) - 1
    out["person_index"] = m["RELEASE_person_index"].astype(np.int64) - 1
    return out


@pytest.mark.parametrize("source", [DATA / "detections_annolist.mat", SHARED_DETECTIONS], ids=["tests-copy", "shared"])
def test_shipped_ground_truth_equals_the_annotation_records(shipped, source):
    if not source.is_file():
        pytest.skip(f"{source} not available")
    want = _records(source)
    assert shipped["joints"].shape == (2958, 16, 2)
    for key in ("joints", "visible", "headbox", "objpos", "scale", "image_index", "person_index"):
        np.testing.assert_array_equal(shipped[key], want[key], err_msg=key)
    np.testing.assert_array_equal(shipped["missing"], np.isnan(want["joints"][..., 0]))
    assert shipped["missing"].sum() == 3088 and not (shipped["visible"] & shipped["missing"]).any()
    # the split's order, row for row
    assert list(zip(shipped["image_index"].tolist(), shipped["person_index"].tolist())) == mpii.load_split(
        mpii.MPII_VALID_SPLIT
    )


def test_provenance_and_rebuild(tmp_path):
    with h5py.File(mpii_gt.VALID_GT) as f:
        assert f.attrs["hgbench_ground_truth"].decode() == mpii_gt.KIND
        source = json.loads(f.attrs["source"])
        assert source == {"file": "detections.mat", "sha256": DETECTIONS_SHA256}
        assert "make_valid_gt.py" in f.attrs["built_by"].decode()
    if SHARED_DETECTIONS.is_file():  # the build script reproduces the shipped file byte for byte
        import importlib.util

        spec = importlib.util.spec_from_file_location("make_valid_gt", DATA / "make_valid_gt.py")
        script = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(script)
        out = script.main(SHARED_DETECTIONS, tmp_path / "gt.h5")
        assert out.read_bytes() == mpii_gt.VALID_GT.read_bytes()


def test_differs_from_pos_gt_src_in_exactly_the_13_joints(shipped):
    m = scipy.io.loadmat(GT_VALID)
    pos = m["pos_gt_src"].transpose(2, 0, 1)
    np.testing.assert_array_equal(m["jnt_missing"].T.astype(bool), shipped["missing"])
    ok = ~shipped["missing"]
    diff = np.abs(pos - shipped["joints"]).max(axis=-1)
    far = ok & (diff > 0.01)
    assert [(int(r), MPII_JOINTS[j]) for r, j in np.argwhere(far)] == [(r, j) for r, j, _, _ in THIRTEEN]
    for r, j, x, y in THIRTEEN:
        k = MPII_JOINTS.index(j)
        assert shipped["joints"][r, k].tolist() == [x, y]
        assert 0.0 in np.round(pos[r, k], 3)  # gt_valid.mat zeroes x and/or y there
    assert diff[ok & ~far].max() < 1e-4  # elsewhere only float noise, which the shipped file has not
    box = m["headboxes_src"].transpose(2, 0, 1)
    assert np.abs(box - shipped["headbox"]).max() < 1e-4


def test_evaluate_names_the_13_joints_of_gt_valid(tmp_path):
    out = evaluate_files(GT_VALID, REF / "bearpaw-hg_s2_b1.mat", n_boot=0)
    diff = out["ground_truth_differences"]
    assert diff["n"] == 13 and diff["used"].startswith("hgbench:mpii_valid_gt")
    assert [(d["row"], d["joint"], *d["official"]) for d in diff["joints"]] == THIRTEEN
    assert all(0.0 in np.round(d["given"], 3) for d in diff["joints"])
    # the other protocols keep using the file as given (their codebases do): no note
    for protocol in ("bearpaw", "hrnet", "mmpose"):
        assert "ground_truth_differences" not in evaluate_files(
            GT_VALID, REF / "bearpaw-hg_s2_b1.mat", protocol=protocol, n_boot=0
        )
    # a gt_valid-layout file that is not the standard split is scored as given
    m = scipy.io.loadmat(GT_VALID)
    other = tmp_path / "other.mat"
    scipy.io.savemat(other, {k: m[k][..., :100] for k in ("pos_gt_src", "jnt_missing", "headboxes_src")})
    preds = tmp_path / "p.mat"
    scipy.io.savemat(preds, {"preds": scipy.io.loadmat(REF / "bearpaw-hg_s2_b1.mat")["preds"][:100]})
    out = evaluate_files(other, preds, n_boot=0)
    assert out["ground_truth_layout"] == "gt_valid" and "ground_truth_differences" not in out


def test_cli_evaluate_without_ground_truth(tmp_path, capsys):
    out = tmp_path / "m.json"
    assert main(["evaluate", "--predictions", str(REF / "bearpaw-hg_s2_b1.mat"), "--out", str(out)]) == 0
    m = json.loads(out.read_text())
    assert m["protocol"] == "official" and m["ground_truth"] == "hgbench:mpii_valid_gt" and m["n_people"] == 2958
    # row 646 lhip is at exactly 0.5 head sizes (sqrt(1665) / (0.6 sqrt(18500))): a hit under <=
    assert m["per_person"]["correct"][646][MPII_JOINTS.index("lhip")] == "1"
    assert round(m["pckh@0.5"]["Hip"], 2) == 86.26 and round(m["pckh@0.5"]["Ankle"], 2) == 77.47
    assert "pckh@0.5 (official): Head 96.7" in capsys.readouterr().out
    # through gt_valid.mat: the same numbers, and a note naming the differences
    out2 = tmp_path / "m2.json"
    assert (
        main(
            [
                "evaluate",
                "--ground-truth",
                str(GT_VALID),
                "--predictions",
                str(REF / "bearpaw-hg_s2_b1.mat"),
                "--out",
                str(out2),
            ]
        )
        == 0
    )
    assert json.loads(out2.read_text())["pckh@0.5"] == m["pckh@0.5"]
    assert "differs from it in 13 joints (row 682 rank" in capsys.readouterr().err


def test_cli_evaluate_without_ground_truth_errors(tmp_path, capsys):
    short = tmp_path / "short.h5"
    with h5py.File(short, "w") as f:
        f["preds"] = np.zeros((100, 16, 2))
    out = tmp_path / "m.json"
    assert main(["evaluate", "--predictions", str(short), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "short.h5: 'preds' has 100 rows" in err and "standard MPII validation split" in err
    assert "--ground-truth" in err and len(err.strip().splitlines()) == 1
    assert (
        main(["evaluate", "--predictions", str(REF / "bearpaw-hg_s2_b1.mat"), "--protocol", "hrnet", "--out", str(out)])
        == 2
    )
    assert "protocol 'hrnet' scores against the ground-truth file its codebase reads" in capsys.readouterr().err
    assert not out.exists()


def test_annotation_list_file_as_ground_truth():
    # Tompson's detections.mat (a bare annolist with RELEASE indices) reads as the same ground truth.
    a, b = load_ground_truth(DATA / "detections_annolist.mat"), shipped_ground_truth()
    assert a.layout == b.layout == "annolist"
    for key in ("joints", "missing", "normalizer", "visible", "image_index", "person_index"):
        np.testing.assert_array_equal(getattr(a, key), getattr(b, key))


def test_damaged_shipped_file_is_named(tmp_path, monkeypatch):
    bad = tmp_path / "mpii_valid_gt.h5"
    bad.write_bytes(mpii_gt.VALID_GT.read_bytes()[:5000])
    monkeypatch.setattr(mpii_gt, "VALID_GT", bad)
    with pytest.raises(ValueError, match=r"mpii_valid_gt\.h5: cannot read the ground truth.*reinstall hgbench"):
        mpii_gt.load_valid_gt(bad)
