"""Rebuild the real-MPII test files in this folder from the reference copies (see README.md).

    python tests/data/mpii/make_subset.py /work/shared/data/mpii

Reads detections.mat, valid.h5, test_mpii.json and images/ from the given folder. Needs numpy,
scipy and h5py. The .mat files are re-saved with zlib compression (contents unchanged: the
struct arrays are copied as scipy reads them with squeeze_me=False, struct_as_record=True, so
the quirks of the original — empty or string is_visible, uint8/uint16 fields — survive).
"""

import json
import shutil
import sys
from pathlib import Path

import h5py
import numpy as np
import scipy.io

N_RELEASE = 5  # the first five validation people; their images are the five in images/


def main(src: Path, dst: Path) -> None:
    det = scipy.io.loadmat(src / "detections.mat", squeeze_me=False, struct_as_record=True)
    scipy.io.savemat(
        dst / "detections_annolist.mat",
        {k: det[k] for k in ("annolist", "RELEASE_img_index", "RELEASE_person_index")},
        do_compression=True,
        oned_as="row",
    )
    with h5py.File(src / "valid.h5", "r") as f:
        arrays = {k: f[k][...] for k in ("part", "visible", "index", "person", "normalize", "center", "scale")}
        arrays["imgname"] = f["imgname"][...].astype(str)
    np.savez_compressed(dst / "valid_h5.npz", **arrays)

    # A RELEASE-layout file with the first N_RELEASE people, one annolist entry (image) each.
    names = arrays["imgname"][:N_RELEASE]
    annolist = np.empty((1, N_RELEASE), dtype=[(f, object) for f in ("image", "annorect", "frame_sec", "vidx")])
    for i in range(N_RELEASE):
        annolist[0, i]["image"] = {"name": str(names[i])}
        annolist[0, i]["annorect"] = det["annolist"][0, i]["annorect"]
        annolist[0, i]["frame_sec"] = np.zeros((0, 0))
        annolist[0, i]["vidx"] = np.zeros((0, 0))
    single = np.empty((N_RELEASE, 1), dtype=object)
    for i in range(N_RELEASE):
        single[i, 0] = np.array([[1.0]])
    act = np.empty((N_RELEASE, 1), dtype=[(f, object) for f in ("act_name", "cat_name", "act_id")])
    for i in range(N_RELEASE):
        act[i, 0]["act_name"], act[i, 0]["cat_name"], act[i, 0]["act_id"] = "", "", -1.0
    release = {
        "annolist": annolist,
        "img_train": np.ones((1, N_RELEASE)),
        "version": "12",
        "single_person": single,
        "act": act,
        "video_list": np.empty((1, 0), dtype=object),
    }
    scipy.io.savemat(dst / "release_subset.mat", {"RELEASE": release}, do_compression=True, oned_as="row")

    (dst / "images").mkdir(exist_ok=True)
    for name in names:
        shutil.copyfile(src / "images" / str(name), dst / "images" / str(name))
    shutil.copyfile(src / "test_mpii.json", dst / "test_mpii.json")
    json.loads((dst / "test_mpii.json").read_text())


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(__file__).resolve().parent)
