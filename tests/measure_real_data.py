"""Print the Done-when figures of issue 3 from the reference copies in ../shared/data (not a test).

.venv/bin/python tests/measure_real_data.py
"""

import gzip
import json
import sys
import tempfile
from pathlib import Path

import h5py
import numpy as np
import scipy.io

from hgbench.data import flic, mpii, prepare

sys.path.insert(0, str(Path(__file__).resolve().parent))
from realdata import flic_examples, mpii_release_from_json, read_flic_h5  # noqa: E402

S = Path(__file__).resolve().parents[2] / "shared" / "data"
people = mpii.people(mpii.load_release(S / "mpii/detections.mat"))
g = prepare.split_geometry(people, input_res=256, crop_margin=1.5)
with h5py.File(S / "mpii/valid.h5") as f:
    part, norm, idx, per = f["part"][...], f["normalize"][...], f["index"][...], f["person"][...]
ok = ~g["missing"]
a = g["crop_to_image"]
native = np.einsum("nij,nkj->nki", a[:, :, :2], g["joints"]) + a[:, None, :, 2]
print("MPII valid people:", len(people), "(valid.h5:", len(part), ")")
print(
    "missing joints:",
    int(g["missing"].sum()),
    "same mask as valid.h5 (0,0):",
    bool((g["missing"] == (part == 0).all(-1)).all()),
)
print(
    "joints: max |native - valid.h5 part| =",
    float(np.abs(native[ok] - part[ok]).max()),
    "; trunc equal:",
    int((np.trunc(np.round(native[ok], 6)) == part[ok]).all(-1).sum()),
    "of",
    int(ok.sum()),
)
print("normaliser max |diff| vs normalize:", float(np.abs(g["normalizer"] - norm).max()))
m = scipy.io.loadmat(S / "mpii/detections.mat", squeeze_me=True)
print(
    "RELEASE_img_index-1 == valid.h5 index, RELEASE_person_index-1 == person:",
    bool(
        (m["RELEASE_img_index"].astype(int) - 1 == idx.astype(int)).all()
        and (m["RELEASE_person_index"].astype(int) - 1 == per.astype(int)).all()
    ),
)
recs = json.loads(gzip.decompress((S / "mpii/mpii_annotations.json.gz").read_bytes()))
rel = mpii.release_from_mat(mpii_release_from_json(recs), "json")
train, valid = mpii.split_people(rel, mpii.load_split(mpii.MPII_VALID_SPLIT))
want = [r for r in recs if r["isValidation"] == 0]
print(
    "json records:",
    len(recs),
    "-> train",
    len(train),
    "valid",
    len(valid),
    "; train == json isValidation=0 records in order:",
    [(p.image_index + 1, p.person_index + 1) for p in train]
    == [(int(r["annolist_index"]), int(r["people_index"])) for r in want],
)
rows = read_flic_h5(S / "flic")
with tempfile.TemporaryDirectory() as d:
    scipy.io.savemat(f"{d}/examples.mat", {"examples": flic_examples(rows)}, oned_as="row")
    ex = flic.load_examples(f"{d}/examples.mat")
for split, sel in (("train", rows["istrain"]), ("test", ~rows["istrain"])):
    o, p = flic.people(ex, split), flic.people(ex, split, "person")
    J = np.stack([r.joints for r in o])
    P = np.stack([r.joints for r in p])
    d = (J != P).any(axis=(1, 2))
    print(
        f"FLIC {split}: {len(o)} people; obs == hourglass {('train' if split == 'train' else 'valid')}.h5: {bool((J == rows['part_obs'][sel]).all())}; "
        f"person == *_personcentric.h5: {bool((P == rows['part_pc'][sel]).all())}; labels differ: {int(d.sum())} people in "
        f"{len({r.image_name for r, x in zip(o, d) if x})} images; normaliser max err {float(np.abs(np.array([r.normalizer for r in o]) - rows['normalize'][sel]).max())}"
    )
