"""Item 2 (costs checked before work) — a download is checked against the free disk before its
first byte: the rest of the archive (the server's ``Content-Length``, less what a resumed
``.part`` holds) plus what it unpacks to (``RemoteFile.unpacked_ratio`` × its size, at most its
extraction cap), with the estimate in the one-line refusal.

Before: ``hgbench fetch`` of MPII started the 12.9 GB download on any disk; a full disk would end
it with ``OSError: [Errno 28] No space left on device``, a partial ``.part`` left behind.
The server is the loopback one of tests/test_fetch.py; free space is a patched ``shutil.disk_usage``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from hgbench.cli import main
from hgbench.data import download, fetch
from hgbench.data.download import Checksum, NotEnoughDisk
from http_server import FileServer
from realdata import write_flic_zip

from .conftest import ROOT, assert_clean_error

FAST = dict(retries=1, backoff=0.01, timeout=5, progress=False)
SIZE = 300_000


def free_disk(n_bytes: int):
    """A ``shutil.disk_usage`` that reports ``n_bytes`` free everywhere; records the folders asked."""
    real = shutil.disk_usage
    asked: list[Path] = []

    def disk_usage(path):
        asked.append(Path(path))
        usage = real(path)
        return type(usage)(usage.total, usage.total - n_bytes, n_bytes)

    disk_usage.asked = asked
    return disk_usage


@pytest.fixture
def blob(tmp_path) -> Path:
    folder = tmp_path / "srv"
    folder.mkdir()
    path = folder / "blob.tar.gz"
    path.write_bytes(np.random.default_rng(1).bytes(SIZE))
    return path


def sha(path: Path) -> Checksum:
    return Checksum("sha256", hashlib.sha256(path.read_bytes()).hexdigest())


# ---------------------------------------------------------------------------------------------
# the download helper
# ---------------------------------------------------------------------------------------------


def test_a_download_larger_than_the_free_disk_is_refused_before_its_first_byte(blob, tmp_path, monkeypatch):
    fake = free_disk(SIZE - 1)
    monkeypatch.setattr(shutil, "disk_usage", fake)
    dest = tmp_path / "raw" / "downloads" / "blob.tar.gz"
    with FileServer(blob.parent) as srv:
        with pytest.raises(NotEnoughDisk) as err:
            download.download(srv.url("blob.tar.gz"), dest, checksums=(sha(blob),), **FAST)
    assert str(err.value) == (
        f"{dest}: downloading {srv.url('blob.tar.gz')} needs about 0.3 MB (archive 0.3 MB + unpacked 0.0 MB), "
        f"only 0.3 MB are free on {tmp_path}; free space there or download to another disk"
    )
    assert (err.value.archive, err.value.unpacked, err.value.free) == (SIZE, 0, SIZE - 1)
    assert srv.requests == [("blob.tar.gz", None, 200)]  # one request: a full disk is not retried
    assert fake.asked == [tmp_path]  # the nearest folder that exists: downloads/ is not made
    assert sorted(p.name for p in tmp_path.iterdir()) == ["srv"]


def test_what_the_archive_unpacks_to_must_fit_too(blob, tmp_path, monkeypatch):
    monkeypatch.setattr(shutil, "disk_usage", free_disk(int(1.9 * SIZE)))
    dest = tmp_path / "out" / "blob.tar.gz"
    with FileServer(blob.parent) as srv:
        with pytest.raises(NotEnoughDisk, match=r"needs about 0\.6 MB \(archive 0\.3 MB \+ unpacked 0\.3 MB\)"):
            download.download(srv.url("blob.tar.gz"), dest, unpack_ratio=1.0, **FAST)
        # the extraction cap bounds the estimate
        download.download(srv.url("blob.tar.gz"), dest, unpack_ratio=1.0, unpack_cap=SIZE // 2, **FAST)
    assert dest.read_bytes() == blob.read_bytes()


def test_a_resumed_download_needs_only_its_remaining_bytes(blob, tmp_path, monkeypatch):
    dest = tmp_path / "blob.tar.gz"
    part = tmp_path / "blob.tar.gz.part"
    part.write_bytes(blob.read_bytes()[:200_000])
    with FileServer(blob.parent) as srv:
        monkeypatch.setattr(shutil, "disk_usage", free_disk(99_999))
        with pytest.raises(NotEnoughDisk) as err:
            download.download(srv.url("blob.tar.gz"), dest, size=SIZE, **FAST)
        assert "(archive 0.1 MB, 0.2 MB already in blob.tar.gz.part + unpacked 0.0 MB)" in str(err.value)
        assert part.stat().st_size == 200_000  # the .part is kept, untouched, for the next try
        monkeypatch.setattr(shutil, "disk_usage", free_disk(100_000))
        download.download(srv.url("blob.tar.gz"), dest, size=SIZE, checksums=(sha(blob),), **FAST)
    assert dest.read_bytes() == blob.read_bytes() and srv.requests[-1] == ("blob.tar.gz", "bytes=200000-", 206)


def test_a_part_file_rewritten_from_zero_gives_its_bytes_back(blob, tmp_path, monkeypatch):
    dest = tmp_path / "blob.tar.gz"
    (tmp_path / "blob.tar.gz.part").write_bytes(blob.read_bytes()[:200_000])
    monkeypatch.setattr(shutil, "disk_usage", free_disk(100_000))  # + the .part's 200 kB = the file
    with FileServer(blob.parent, ranges=False) as srv:  # ignores Range: the whole file again
        download.download(srv.url("blob.tar.gz"), dest, checksums=(sha(blob),), **FAST)
    assert dest.read_bytes() == blob.read_bytes()


# ---------------------------------------------------------------------------------------------
# fetch: the dataset's archives, through the library and the CLI
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def flic_zip(tmp_path_factory) -> Path:
    return write_flic_zip(tmp_path_factory.mktemp("flic-srv") / "FLIC.zip")


def flic_spec(zipped: Path) -> fetch.RealDataset:
    spec = fetch.real_dataset("flic")
    f = dataclasses.replace(spec.files[0], size=None, checksums=(sha(zipped),))
    return dataclasses.replace(spec, files=(f,))


def test_fetch_refuses_a_download_that_cannot_fit_in_one_line(flic_zip, tmp_path, monkeypatch):
    n = flic_zip.stat().st_size
    unpacked = -(-11 * n // 10)  # FLIC: unpacked_ratio 1.1
    monkeypatch.setattr(shutil, "disk_usage", free_disk(n + unpacked - 1))
    raw = tmp_path / "raw" / "flic"
    with FileServer(flic_zip.parent) as srv:
        monkeypatch.setenv("HGBENCH_FLIC_URL", srv.base)
        with pytest.raises(fetch.FetchError) as err:
            fetch.fetch_real("flic", raw, dataset=flic_spec(flic_zip), **FAST)
        assert str(err.value) == (
            f"{raw}: downloading FLIC.zip needs about {(n + unpacked) / 1e6:,.1f} MB (archive {n / 1e6:,.1f} MB "
            f"+ unpacked {unpacked / 1e6:,.1f} MB), only {(n + unpacked - 1) / 1e6:,.1f} MB are free on "
            f"{tmp_path / 'raw'}; free space there, or give `hgbench fetch` an --out folder on another disk "
            f"(for the pipeline: make data/raw a link to one)"
        )
        assert os.listdir(tmp_path / "raw") == []  # no raw folder, no downloads/, no .part, no lock
        monkeypatch.setattr(shutil, "disk_usage", free_disk(n + unpacked))  # just enough: fetched
        m = fetch.fetch_real("flic", raw, dataset=flic_spec(flic_zip), **FAST)
    assert m["archives"]["FLIC.zip"]["verified"] and (raw / "FLIC" / "examples.mat").is_file()


def test_the_official_archives_are_estimated_from_their_known_contents():
    ann, images = fetch.MPII.files
    flic = fetch.real_dataset("flic").files[0]
    assert (ann.unpacked_ratio, images.unpacked_ratio, flic.unpacked_ratio) == (2.0, 1.05, 1.1)
    # MPII's images: 12.9 GB + 13.5 GB unpacked, about half of what the extraction cap (25 GB) would ask
    need = 12.9e9 * (1 + images.unpacked_ratio)
    assert need < 12.9e9 + images.limits.max_bytes and 25e9 < need < 27e9


def test_the_disk_check_through_the_cli_is_one_line_and_writes_nothing(flic_zip, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(shutil, "disk_usage", free_disk(1_000))  # the test FLIC.zip: 23 kB
    monkeypatch.setenv("HGBENCH_FLIC_SHA256", hashlib.sha256(flic_zip.read_bytes()).hexdigest())
    out = tmp_path / "data" / "flic"
    with FileServer(flic_zip.parent) as srv:
        monkeypatch.setenv("HGBENCH_FLIC_URL", srv.base)
        status = main(
            ["fetch", "--params", str(ROOT / "params" / "paper.yaml"), "--dataset", "flic", "--out", str(out)]
        )
    line = assert_clean_error(
        status, capsys.readouterr().err, "fetch", f"{out}: downloading FLIC.zip needs about", "only 0.0 MB are free on"
    )
    assert line.endswith(
        "give `hgbench fetch` an --out folder on another disk (for the pipeline: make data/raw a link to one)"
    )
    assert os.listdir(tmp_path / "data") == []


def test_mpii_through_the_cli_keeps_the_annotations_and_refuses_the_images_before_their_first_byte(
    tmp_path, monkeypatch, capsys
):
    # Archives are checked one at a time as each is about to be downloaded (the images' size is
    # known only from the server): the 12.5 MB annotation zip fits and is kept for the rerun.
    srv_dir = tmp_path / "srv"
    srv_dir.mkdir()
    (srv_dir / "mpii_human_pose_v1_u12_2.zip").write_bytes(b"a" * 1000)
    (srv_dir / "mpii_human_pose_v1.tar.gz").write_bytes(b"i" * 400_000)
    monkeypatch.setattr(shutil, "disk_usage", free_disk(500_000))  # 1,000 + 2,000; not 400,000 + 420,000
    out = tmp_path / "raw" / "mpii"
    with FileServer(srv_dir) as srv:
        monkeypatch.setenv("HGBENCH_MPII_URL", srv.base)
        status = main(
            ["fetch", "--params", str(ROOT / "params" / "paper.yaml"), "--dataset", "mpii", "--out", str(out)]
        )
    assert_clean_error(
        status,
        capsys.readouterr().err,
        "fetch",
        f"{out}: downloading mpii_human_pose_v1.tar.gz needs about 0.8 MB (archive 0.4 MB + unpacked 0.4 MB), "
        f"only 0.5 MB are free on {out / 'downloads'}",
    )
    assert sorted(p.name for p in (out / "downloads").iterdir()) == ["mpii_human_pose_v1_u12_2.zip"]
