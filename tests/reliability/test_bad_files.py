"""Item 2 — bad files: truncated or corrupt archives, HDF5 files and checkpoints are detected,
with an error that names the file and the fix; a wrong checksum names expected and actual.

Each fuzz test damages a real file at random places (seeded by ``HGBENCH_FAULT_SEED``): cut at a
random length, or one random bit flipped. The outcome must be either the clear error or exactly
the original content (a flip in bytes that carry no data, e.g. zip padding); a silently different
result is the failure these tests exist for.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import shutil
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest

from hgbench.checkpoint import CheckpointError, content_digest, load_checkpoint, read_model_file
from hgbench.cli import main
from hgbench.data import download, fetch
from hgbench.data.schema import DataFileError, open_split
from hgbench.evaluate import evaluate_files
from hgbench.predict import predict

from .conftest import ROOT, SMOKE_FILE, assert_clean_error, fault_rng

N_CUTS, N_FLIPS = 12, 40
"""Damaged copies per file: truncations and single-bit flips."""


def damaged_copies(data: bytes, name: str, cuts: int = N_CUTS, flips: int = N_FLIPS, targets: tuple[bytes, ...] = ()):
    """``(kind, bytes)`` for ``cuts`` truncations (incl. empty), ``flips`` one-bit flips at random
    places, and one flip inside each occurrence of each of ``targets`` (stored strings: labels a
    random flip rarely hits, and whose silent change would go unnoticed)."""
    rng = fault_rng(name)
    yield "cut", b""
    for n in sorted(rng.sample(range(1, len(data)), cuts - 1)):
        yield "cut", data[:n]
    for _ in range(flips):
        b = bytearray(data)
        b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
        yield "flip", bytes(b)
    for target in targets:
        start = data.find(target)
        assert start >= 0, f"{target!r} is not stored in {name}"
        while start >= 0:
            b = bytearray(data)
            b[start + len(target) // 2] ^= 0x01
            yield "string flip", bytes(b)
            start = data.find(target, start + 1)


def tally(outcomes: list[str]) -> dict[str, int]:
    return {k: outcomes.count(k) for k in sorted(set(outcomes))}


# ---------------------------------------------------------------------------------------------
# archives
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def archives(tmp_path_factory) -> tuple[Path, dict[str, bytes]]:
    """A .tar.gz and a .zip of incompressible "images" (JPEG-like: gzip stores them, so a flipped
    byte does not break the deflate stream) and the tree they hold."""
    root = tmp_path_factory.mktemp("archives")
    rng = fault_rng("archive-content")
    tree = {f"images/{i:03d}.jpg": rng.randbytes(6000) for i in range(6)}
    with tarfile.open(root / "a.tar.gz", "w:gz") as tar:
        for name, data in tree.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    with zipfile.ZipFile(root / "a.zip", "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in tree.items():
            zf.writestr(name, data)
    return root, tree


@pytest.mark.parametrize("name", ["a.tar.gz", "a.zip"])
def test_truncated_or_corrupt_archive_is_refused_and_nothing_is_extracted(archives, name, tmp_path):
    root, tree = archives
    outcomes = []
    for i, (kind, data) in enumerate(damaged_copies((root / name).read_bytes(), name)):
        archive = tmp_path / f"{i}-{name}"
        archive.write_bytes(data)
        dest = tmp_path / f"dest{i}"
        (dest / "images").mkdir(parents=True)
        (dest / "images" / "keep.jpg").write_bytes(b"old")
        try:
            download.safe_extract(archive, dest, progress=False)
        except download.UnsafeArchiveError as exc:
            msg = str(exc)
            assert str(archive) in msg and "Delete it and run the fetch again" in msg, msg
            # nothing extracted, nothing replaced, no temporary folder left
            assert sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*")) == ["images", "images/keep.jpg"]
            outcomes.append(f"{kind}: refused")
            continue
        got = {p.relative_to(dest).as_posix(): p.read_bytes() for p in dest.rglob("*.jpg")}
        outcomes.append(f"{kind}: identical" if got == tree else f"{kind}: SILENTLY DIFFERENT")
    counts = tally(outcomes)
    print(f"damaged copies: {counts}")  # the counts in docs/reliability.md (pytest -s)
    assert not any("SILENTLY" in k for k in counts), counts
    assert counts.get("cut: refused") == N_CUTS, counts


def test_truncated_archive_without_a_published_checksum_is_refused_by_fetch(tmp_path, monkeypatch):
    """MPII's annotation zip has no published checksum: only the archive's own CRCs can tell."""
    monkeypatch.setenv("HGBENCH_MPII_URL", "http://127.0.0.1:9")  # nothing may be downloaded
    spec = dataclasses.replace(fetch.MPII, files=(fetch.MPII.files[0],))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.write(ROOT / "tests" / "data" / "mpii" / "release_subset.mat", fetch.MPII_RELEASE_RELPATH)
    raw = tmp_path / "raw"
    (raw / "downloads").mkdir(parents=True)
    zipped = raw / "downloads" / "mpii_human_pose_v1_u12_2.zip"
    zipped.write_bytes(buf.getvalue()[: len(buf.getvalue()) * 2 // 3])
    with pytest.raises(fetch.FetchError) as err:
        fetch.fetch_real("mpii", raw, dataset=spec, retries=0, backoff=0, progress=False)
    msg = str(err.value)
    assert str(zipped) in msg and "truncated" in msg and "Delete it and run the fetch again" in msg
    assert sorted(p.name for p in raw.iterdir()) == ["downloads"]  # no manifest, nothing extracted


def test_wrong_checksum_names_the_file_expected_and_actual_through_the_cli(tmp_path, monkeypatch, capsys):
    raw = tmp_path / "raw"
    (raw / "downloads").mkdir(parents=True)
    placed = raw / "downloads" / "FLIC.zip"
    placed.write_bytes(b"PK\x05\x06" + bytes(18))  # an empty zip: a wrong file placed by hand
    actual = hashlib.sha256(placed.read_bytes()).hexdigest()
    expected = "ab" * 32
    monkeypatch.setenv("HGBENCH_FLIC_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("HGBENCH_FLIC_SHA256", expected)
    status = main(["fetch", "--params", str(ROOT / "params" / "paper.yaml"), "--dataset", "flic", "--out", str(raw)])
    assert_clean_error(
        status,
        capsys.readouterr().err,
        "fetch",
        str(placed),
        f"sha256 is {actual}",
        f"expected {expected}",
        "delete it",
    )
    assert sorted(p.name for p in raw.iterdir()) == ["downloads"]


# ---------------------------------------------------------------------------------------------
# HDF5: split files and predictions
# ---------------------------------------------------------------------------------------------


def read_whole_split(path: Path) -> dict:
    with open_split(path) as f:
        out = f.read()
        out["images"] = f.images(range(len(f)))
        out["attrs"] = f.attrs
    return out


def same_split(a: dict, b: dict) -> bool:
    return a["attrs"] == b["attrs"] and all(
        np.array_equal(a[k], b[k], equal_nan=a[k].dtype.kind == "f") for k in a if k != "attrs"
    )


@pytest.mark.parametrize("split", ["train.h5", "valid.h5"])
def test_truncated_or_corrupt_split_file_is_detected(smoke_data, split, tmp_path):
    original = read_whole_split(smoke_data / split)
    outcomes = []
    targets = (b"smoke", b"rank", b"000000001.jpg" if split == "train.h5" else b"000000025.jpg")
    for i, (kind, data) in enumerate(damaged_copies((smoke_data / split).read_bytes(), split, targets=targets)):
        path = tmp_path / f"{i}-{split}"
        path.write_bytes(data)
        try:
            got = read_whole_split(path)
        except DataFileError as exc:
            assert str(path) in str(exc) and "rerun `hgbench prepare" in str(exc), str(exc)
            outcomes.append(f"{kind}: detected")
            continue
        outcomes.append(f"{kind}: identical" if same_split(got, original) else f"{kind}: SILENTLY DIFFERENT")
    counts = tally(outcomes)
    print(f"damaged copies: {counts}")  # the counts in docs/reliability.md (pytest -s)
    assert not any("SILENTLY" in k for k in counts), counts
    assert counts.get("cut: detected") == N_CUTS, counts


@pytest.fixture(scope="module")
def predictions(smoke_data, reference_run, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("rel-predictions") / "predictions.h5"
    predict(
        checkpoint=reference_run / "model.pt",
        data_file=smoke_data / "valid.h5",
        out=out,
        flip_test=True,
        batch_size=8,
        device="cpu",
        threads=1,
        run={"dataset": "smoke", "variant": "hg2x1", "seed": 0},
    )
    return out


def test_truncated_or_corrupt_predictions_file_is_detected(smoke_data, predictions, tmp_path):
    def score(path):
        m = evaluate_files(smoke_data / "valid.h5", path, n_boot=0)
        return {k: v for k, v in m.items() if k != "predictions"}

    original = score(predictions)
    outcomes = []
    for i, (kind, data) in enumerate(
        damaged_copies(predictions.read_bytes(), "predictions.h5", targets=(b"smoke", b"hg2x1", b"native"))
    ):
        path = tmp_path / f"{i}-predictions.h5"
        path.write_bytes(data)
        try:
            got = score(path)
        except ValueError as exc:  # the CLI prints it as `hgbench evaluate: error: ...`
            assert str(path) in str(exc) and "rerun the stage that wrote it" in str(exc), str(exc)
            outcomes.append(f"{kind}: detected")
            continue
        diff = sorted(k for k in original if got.get(k) != original[k])
        outcomes.append(f"{kind}: identical" if not diff else f"{kind}: SILENTLY DIFFERENT {diff}")
    counts = tally(outcomes)
    print(f"damaged copies: {counts}")  # the counts in docs/reliability.md (pytest -s)
    assert not any("SILENTLY" in k for k in counts), counts


def truncate(src: Path, dst: Path) -> Path:
    dst.parent.mkdir(parents=True, exist_ok=True)
    data = src.read_bytes()
    dst.write_bytes(data[: len(data) // 2])
    return dst


def test_truncated_hdf5_through_the_cli_names_the_file_and_the_fix(
    smoke_data, reference_run, predictions, tmp_path, capsys
):
    data = tmp_path / "data"
    shutil.copytree(smoke_data, data)
    truncate(smoke_data / "train.h5", data / "train.h5")
    status = main(
        [
            "train",
            "--params",
            str(SMOKE_FILE),
            "--dataset",
            "smoke",
            "--variant",
            "hg2x1",
            "--seed",
            "0",
            "--data",
            str(data),
            "--out",
            str(tmp_path / "run"),
        ]
    )
    assert_clean_error(
        status,
        capsys.readouterr().err,
        "train",
        str(data / "train.h5"),
        "truncated or corrupt",
        f"delete {data / 'train.h5'} and rerun `hgbench prepare",
    )
    assert not (tmp_path / "run" / "last.pt").exists()

    valid = truncate(smoke_data / "valid.h5", tmp_path / "v" / "valid.h5")
    status = main(
        [
            "predict",
            "--params",
            str(SMOKE_FILE),
            "--checkpoint",
            str(reference_run / "model.pt"),
            "--data",
            str(valid),
            "--out",
            str(tmp_path / "p.h5"),
        ]
    )
    assert_clean_error(status, capsys.readouterr().err, "predict", str(valid), "rerun `hgbench prepare")
    status = main(
        ["evaluate", "--ground-truth", str(valid), "--predictions", str(predictions), "--out", str(tmp_path / "m.json")]
    )
    assert_clean_error(status, capsys.readouterr().err, "evaluate", str(valid), "truncated or corrupt", "delete it")
    preds = truncate(predictions, tmp_path / "p" / "predictions.h5")
    status = main(
        [
            "evaluate",
            "--ground-truth",
            str(smoke_data / "valid.h5"),
            "--predictions",
            str(preds),
            "--out",
            str(tmp_path / "m.json"),
        ]
    )
    assert_clean_error(status, capsys.readouterr().err, "evaluate", str(preds), "hgbench predict")
    assert not (tmp_path / "p.h5").exists() and not (tmp_path / "m.json").exists()


# ---------------------------------------------------------------------------------------------
# checkpoints
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["last.pt", "model.pt"])
def test_truncated_or_corrupt_checkpoint_is_detected(reference_run, name, tmp_path):
    import torch

    original = torch.load(reference_run / name, weights_only=True)
    outcomes = []
    for i, (kind, data) in enumerate(damaged_copies((reference_run / name).read_bytes(), name)):
        path = tmp_path / f"{i}-{name}"
        path.write_bytes(data)
        try:
            if name == "last.pt":
                state = load_checkpoint(path, seed=0, model_config=original["model_config"])
            else:
                state = read_model_file(path)
        except CheckpointError as exc:
            fix = "delete it to start the run over" if name == "last.pt" else "delete it and rerun `hgbench train`"
            assert str(path) in str(exc) and fix in str(exc), str(exc)
            outcomes.append(f"{kind}: detected")
            continue
        same = content_digest(state) == content_digest(original)
        outcomes.append(f"{kind}: identical" if same else f"{kind}: SILENTLY DIFFERENT")
    counts = tally(outcomes)
    print(f"damaged copies: {counts}")  # the counts in docs/reliability.md (pytest -s)
    assert not any("SILENTLY" in k for k in counts), counts
    assert counts.get("cut: detected") == N_CUTS, counts


def test_damaged_checkpoints_through_the_cli_name_the_file_and_the_fix(smoke_data, reference_run, tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    truncate(reference_run / "last.pt", run / "last.pt")
    status = main(
        [
            "train",
            "--params",
            str(SMOKE_FILE),
            "--dataset",
            "smoke",
            "--variant",
            "hg2x1",
            "--seed",
            "0",
            "--data",
            str(smoke_data),
            "--out",
            str(run),
        ]
    )
    assert_clean_error(
        status,
        capsys.readouterr().err,
        "train",
        str(run / "last.pt"),
        "cannot be read",
        "delete it to start the run over",
    )
    (run / "last.pt").write_bytes(b"")  # a zero-length file (a disk that filled up)
    status = main(
        [
            "train",
            "--params",
            str(SMOKE_FILE),
            "--dataset",
            "smoke",
            "--variant",
            "hg2x1",
            "--seed",
            "0",
            "--data",
            str(smoke_data),
            "--out",
            str(run),
        ]
    )
    assert_clean_error(status, capsys.readouterr().err, "train", str(run / "last.pt"), "delete it")
    assert sorted(p.name for p in run.iterdir()) == ["last.pt"]  # nothing written over it, no model.pt

    model = tmp_path / "m" / "model.pt"
    model.parent.mkdir()
    data = bytearray((reference_run / "model.pt").read_bytes())
    for pos in fault_rng("model-cli").sample(range(len(data) // 4, len(data) * 3 // 4), 64):
        data[pos] ^= 0x10
    model.write_bytes(bytes(data))
    status = main(
        [
            "predict",
            "--params",
            str(SMOKE_FILE),
            "--checkpoint",
            str(model),
            "--data",
            str(smoke_data / "valid.h5"),
            "--out",
            str(tmp_path / "p.h5"),
        ]
    )
    assert_clean_error(status, capsys.readouterr().err, "predict", str(model), "delete it and rerun `hgbench train`")
    assert not (tmp_path / "p.h5").exists()
