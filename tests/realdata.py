"""Builders of official-layout annotation files from the real reference records (test helper).

* :func:`flic_examples` — FLIC ``examples.mat`` layout (``examples`` 1×N struct) from the rows of
  pose-hg-train's FLIC files: ``coords`` 2×29 (person-centric labels in the 11 annotated slots,
  NaN elsewhere), ``filepath``, ``imgdims`` [480 720 3], ``istrain``/``istest``. The real
  ``torsobox`` is not in those files: it is set to ``[cx-40, 150, cx+40, 300]`` so that its
  x-middle is pose-hg-train's crop centre ``cx``.
* :func:`mpii_release_from_json` — MPII ``RELEASE`` layout (annolist → annorect → annopoints.point)
  from bearpaw's ``mpii_annotations.json`` records: each record becomes annorect
  ``people_index`` of annolist entry ``annolist_index`` (1-based in the json); a joint at (0, 0)
  is not annotated (no point); other rects of an image stay empty (no annopoints).
* :func:`mpii_release_from_validation_records` — MPII ``RELEASE`` layout from the real annotation
  records of the 2958 validation people (Tompson's ``detections.mat``), at their RELEASE indices.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import scipy.io

from hgbench.data import flic

FLIC_FIELDS = (
    "poselet_hit_idx",
    "moviename",
    "coords",
    "filepath",
    "imgdims",
    "currframe",
    "torsobox",
    "istrain",
    "istest",
    "isbad",
    "isunchecked",
)


def read_flic_h5(folder: Path) -> dict[str, np.ndarray]:
    """Train and test rows of pose-hg-train's FLIC files, in ``examples`` order (by ``index``)."""
    cols: dict[str, list] = {
        k: [] for k in ("index", "imgname", "center", "part_obs", "part_pc", "normalize", "istrain")
    }
    for split, is_train in (("train", True), ("valid", False)):
        with h5py.File(folder / f"{split}.h5") as f, h5py.File(folder / f"{split}_personcentric.h5") as g:
            cols["index"].append(f["index"][...])
            cols["imgname"].append(f["imgname"][...].astype(str))
            cols["center"].append(f["center"][...].astype(float))
            cols["part_obs"].append(f["part"][...])
            cols["part_pc"].append(g["part"][...])
            cols["normalize"].append(f["normalize"][...])
            cols["istrain"].append(np.full(len(f["index"]), is_train))
    out = {k: np.concatenate(v) for k, v in cols.items()}
    order = np.argsort(out["index"], kind="stable")
    return {k: v[order] for k, v in out.items()}


def flic_examples(rows: dict[str, np.ndarray]) -> np.ndarray:
    """A (1, N) struct array in the ``examples.mat`` layout from :func:`read_flic_h5`-style rows."""
    n = len(rows["index"])
    ex = np.empty((1, n), dtype=[(f, object) for f in FLIC_FIELDS])
    for k in range(n):
        coords = np.full((2, len(flic.SLOTS)), np.nan)
        coords[:, list(flic.ANNOTATED_SLOTS)] = rows["part_pc"][k].T
        cx = float(rows["center"][k, 0])
        ex[0, k]["poselet_hit_idx"] = np.zeros((1, 0))
        ex[0, k]["moviename"] = rows["imgname"][k].rsplit("-", 1)[0]
        ex[0, k]["coords"] = coords
        ex[0, k]["filepath"] = rows["imgname"][k]
        ex[0, k]["imgdims"] = np.array([[480.0, 720.0, 3.0]])
        ex[0, k]["currframe"] = float(k)
        ex[0, k]["torsobox"] = np.array([[cx - 40.0, 150.0, cx + 40.0, 300.0]])
        ex[0, k]["istrain"] = np.uint8(rows["istrain"][k])
        ex[0, k]["istest"] = np.uint8(not rows["istrain"][k])
        ex[0, k]["isbad"] = np.uint8(0)
        ex[0, k]["isunchecked"] = np.uint8(0)
    return ex


def _obj(items: list) -> np.ndarray:
    arr = np.empty(len(items), dtype=object)
    for k, x in enumerate(items):
        arr[k] = x
    return arr


def mpii_release_from_json(records: list[dict]) -> dict:
    """A ``{"RELEASE": ...}`` dict (as ``loadmat`` returns with dicts for structs) from json records."""
    n_images = int(max(r["annolist_index"] for r in records))
    rects: dict[int, dict[int, dict]] = {}
    names: dict[int, str] = {}
    for r in records:
        i, p = int(r["annolist_index"]) - 1, int(r["people_index"]) - 1
        pts = [
            {"id": float(j), "x": float(x), "y": float(y), "is_visible": float(v)}
            for j, (x, y, v) in enumerate(r["joint_self"])
            if not (x == 0 and y == 0)
        ]
        rects.setdefault(i, {})[p] = {
            "annopoints": {"point": _obj(pts)},
            "scale": float(r["scale_provided"]),
            "objpos": {"x": float(r["objpos"][0]), "y": float(r["objpos"][1])},
        }
        names[i] = r["img_paths"]
    annolist = []
    for i in range(n_images):
        people = rects.get(i, {})
        row = [people.get(p, {}) for p in range(max(people) + 1)] if people else []
        annolist.append({"image": {"name": names.get(i, f"unlisted{i}.jpg")}, "annorect": _obj(row)})
    img_train = np.array([1 if i in rects else 0 for i in range(n_images)])
    return {"RELEASE": {"annolist": _obj(annolist), "img_train": img_train}}


def write_flic_zip(path: Path, padding: bytes = b"") -> Path:
    """``FLIC.zip`` in the official layout: ``FLIC/examples.mat`` (the shipped real subset) and a
    small JPEG per image it names; ``padding`` adds ``FLIC/padding.bin`` (to make the file big)."""
    import io
    import zipfile

    from PIL import Image

    from hgbench.data import flic

    examples = Path(__file__).resolve().parent / "data" / "flic" / "examples_subset.mat"
    with zipfile.ZipFile(path, "w") as zf:
        zf.write(examples, "FLIC/examples.mat")
        for name in sorted({e.image_name for e in flic.load_examples(examples)}):
            buf = io.BytesIO()
            Image.new("RGB", (72, 48), (100, 110, 120)).save(buf, "JPEG")
            zf.writestr(f"FLIC/images/{name}", buf.getvalue())
        if padding:
            zf.writestr("FLIC/padding.bin", padding)
    return path


MPII_DATA = Path(__file__).resolve().parent / "data" / "mpii"
RECT_FIELDS = ("x1", "y1", "x2", "y2", "annopoints", "scale", "objpos")


def mpii_release_from_validation_records(
    path: Path, annolist: Path = MPII_DATA / "detections_annolist.mat", names: Path = MPII_DATA / "valid_h5.npz"
) -> Path:
    """A file in the official ``RELEASE`` layout built from the real records of the 2958 validation people.

    ``annolist`` is Tompson's ``detections.mat`` (or its copy here): one real annorect per validation
    person, placed at ``annolist(RELEASE_img_index).annorect(RELEASE_person_index)`` of a RELEASE with
    ``max(RELEASE_img_index)`` entries, struct contents copied as scipy reads them (``squeeze_me=False``),
    so the real quirks stay. Image names come from pose-hg-train's valid.h5 ``imgname`` (``names``);
    the other rects of those images (not validation people) and the images without validation people
    (``unlisted-<i>.jpg``) are empty. ``img_train`` = 1 everywhere (validation images are training
    images in MPII); ``single_person`` lists each image's validation rects (1-based).
    """
    det = scipy.io.loadmat(annolist, squeeze_me=False, struct_as_record=True)
    img = det["RELEASE_img_index"].reshape(-1).astype(int) - 1
    rect = det["RELEASE_person_index"].reshape(-1).astype(int) - 1
    with np.load(names) as z:
        imgname = z["imgname"].astype(str)
    n_images = int(img.max()) + 1
    by_image: dict[int, dict[int, int]] = {}
    for k, (i, r) in enumerate(zip(img, rect)):
        by_image.setdefault(int(i), {})[int(r)] = k
    empty = np.zeros((0, 0))
    entries = np.empty((1, n_images), dtype=[(f, object) for f in ("image", "annorect", "frame_sec", "vidx")])
    single = np.empty((n_images, 1), dtype=object)
    for i in range(n_images):
        people = by_image.get(i, {})
        rects = np.empty((1, max(people) + 1 if people else 0), dtype=[(f, object) for f in RECT_FIELDS])
        for r in range(rects.shape[1]):
            src = det["annolist"][0, people[r]]["annorect"][0, 0] if r in people else None
            for f in RECT_FIELDS:
                rects[0, r][f] = src[f] if src is not None else empty
        name = imgname[next(iter(people.values()))] if people else f"unlisted-{i}.jpg"
        entries[0, i]["image"] = {"name": str(name)}
        entries[0, i]["annorect"] = rects if people else empty
        entries[0, i]["frame_sec"] = empty
        entries[0, i]["vidx"] = empty
        single[i, 0] = np.array([[r + 1.0 for r in sorted(people)]]) if people else empty
    release = {
        "annolist": entries,
        "img_train": np.ones((1, n_images)),
        "version": "12",
        "single_person": single,
        "video_list": np.empty((1, 0), dtype=object),
    }
    scipy.io.savemat(path, {"RELEASE": release}, do_compression=True, oned_as="row")
    return path
