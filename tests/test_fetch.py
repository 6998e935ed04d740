"""fetch for MPII and FLIC against a loopback HTTP server: download, resume, retries, checksums,
manual placement, unreachable host, hostile archives. Archives use the official layouts, built from
the real test records (tests/data/mpii, tests/data/flic)."""

import dataclasses
import hashlib
import io
import json
import socket
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest

from hgbench.cli import main
from hgbench.data import download, fetch, prepare, schema
from hgbench.data.download import Checksum
from http_server import FileServer
from realdata import write_flic_zip

MPII_DATA = Path(__file__).parent / "data" / "mpii"
PAPER = Path(__file__).resolve().parents[1] / "params" / "paper.yaml"
FAST = dict(retries=2, backoff=0.01, timeout=5, progress=False)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def archives(tmp_path_factory) -> Path:
    """The three official archives, in their real layouts, small."""
    root = tmp_path_factory.mktemp("archives")
    with tarfile.open(root / "mpii_human_pose_v1.tar.gz", "w:gz") as tar:
        tar.add(MPII_DATA / "images", arcname="images")
    with zipfile.ZipFile(root / "mpii_human_pose_v1_u12_2.zip", "w") as zf:
        zf.write(MPII_DATA / "release_subset.mat", "mpii_human_pose_v1_u12_2/mpii_human_pose_v1_u12_1.mat")
    write_flic_zip(root / "FLIC.zip")
    return root


def mpii_spec(archives: Path, **overrides) -> fetch.RealDataset:
    """fetch.MPII with the test archives' checksums (the real MD5 belongs to the 12.9 GB file)."""
    ann, img = fetch.MPII.files
    files = (
        dataclasses.replace(ann, checksums=()),
        dataclasses.replace(
            img, checksums=(Checksum("md5", hashlib.md5((archives / img.filename).read_bytes()).hexdigest()),)
        ),
    )
    return dataclasses.replace(fetch.MPII, files=files, **overrides)


def flic_spec(archives: Path) -> fetch.RealDataset:
    spec = fetch.real_dataset("flic")
    f = spec.files[0]
    zipped = archives / "FLIC.zip"
    return dataclasses.replace(
        spec,
        files=(dataclasses.replace(f, size=zipped.stat().st_size, checksums=(Checksum("sha256", sha256(zipped)),)),),
    )


def closed_port_url() -> str:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return f"http://127.0.0.1:{port}"


# ---------------------------------------------------------------------------------------------
# the download helper
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def payload(tmp_path) -> Path:
    folder = tmp_path / "srv"
    folder.mkdir()
    (folder / "blob.bin").write_bytes(np.random.default_rng(0).bytes(300_000))
    return folder / "blob.bin"


def test_resume_after_a_cut_connection(payload, tmp_path):
    with FileServer(payload.parent) as srv:
        srv.cut["blob.bin"] = [100_000, 50_000]
        download.download(
            srv.url("blob.bin"),
            tmp_path / "out.bin",
            size=300_000,
            checksums=(Checksum("sha256", sha256(payload)),),
            **FAST,
        )
    assert (tmp_path / "out.bin").read_bytes() == payload.read_bytes()
    assert not (tmp_path / "out.bin.part").exists()
    assert srv.requests == [
        ("blob.bin", None, 200),
        ("blob.bin", "bytes=100000-", 206),
        ("blob.bin", "bytes=150000-", 206),
    ]


def test_resume_a_part_file_left_by_an_earlier_run(payload, tmp_path):
    (tmp_path / "out.bin.part").write_bytes(payload.read_bytes()[:123_456])
    with FileServer(payload.parent) as srv:
        download.download(
            srv.url("blob.bin"), tmp_path / "out.bin", checksums=(Checksum("sha256", sha256(payload)),), **FAST
        )
    assert srv.requests == [("blob.bin", "bytes=123456-", 206)]
    assert (tmp_path / "out.bin").read_bytes() == payload.read_bytes()


def test_server_without_range_support_restarts_from_zero(payload, tmp_path):
    (tmp_path / "out.bin.part").write_bytes(b"x" * 1000)  # not even the right bytes: must be discarded
    with FileServer(payload.parent, ranges=False) as srv:
        download.download(
            srv.url("blob.bin"), tmp_path / "out.bin", checksums=(Checksum("sha256", sha256(payload)),), **FAST
        )
    assert [r[2] for r in srv.requests] == [200]
    assert (tmp_path / "out.bin").read_bytes() == payload.read_bytes()


def test_retries_after_503_then_gives_up(payload, tmp_path):
    with FileServer(payload.parent) as srv:
        srv.fail["blob.bin"] = [503, 503]
        download.download(srv.url("blob.bin"), tmp_path / "a.bin", **FAST)
        assert [r[2] for r in srv.requests] == [503, 503, 200]
        srv.fail["blob.bin"] = [503] * 5
        with pytest.raises(download.DownloadError, match=r"giving up after 3 failed attempts \(last: HTTP 503"):
            download.download(srv.url("blob.bin"), tmp_path / "b.bin", **FAST)
        with pytest.raises(download.DownloadError, match="HTTP 404"):  # not retried
            download.download(srv.url("absent.bin"), tmp_path / "c.bin", **FAST)
    assert not (tmp_path / "b.bin").exists()


def test_wrong_checksum_names_file_expected_actual_and_fix(payload, tmp_path):
    actual = sha256(payload)
    with FileServer(payload.parent) as srv:
        with pytest.raises(download.ChecksumError) as err:
            download.download(
                srv.url("blob.bin"), tmp_path / "out.bin", checksums=(Checksum("sha256", "0" * 64),), **FAST
            )
        msg = str(err.value)
        assert "out.bin" in msg and "0" * 64 in msg and actual in msg and "delete" in msg
        assert not (tmp_path / "out.bin").exists() and not (tmp_path / "out.bin.part").exists()
        with pytest.raises(download.ChecksumError, match="offers 300,000 bytes, expected 12 bytes"):
            download.download(srv.url("blob.bin"), tmp_path / "out.bin", size=12, **FAST)


def test_plain_progress_lines_when_not_a_terminal(payload, tmp_path, capsys):
    with FileServer(payload.parent) as srv:
        download.download(srv.url("blob.bin"), tmp_path / "out.bin", retries=0, backoff=0, timeout=5, progress=True)
    err = capsys.readouterr().err
    assert "downloading out.bin:" in err and "(100 %)" in err and "\r" not in err


# ---------------------------------------------------------------------------------------------
# fetch: MPII and FLIC end to end
# ---------------------------------------------------------------------------------------------


def test_fetch_mpii_download_verify_extract_prepare(archives, tmp_path, monkeypatch):
    raw = tmp_path / "raw"
    with FileServer(archives) as srv:
        monkeypatch.setenv("HGBENCH_MPII_URL", srv.base + "/")
        srv.cut["mpii_human_pose_v1.tar.gz"] = [50_000]
        m = fetch.fetch_real("mpii", raw, dataset=mpii_spec(archives), **FAST)
        n_requests = len(srv.requests)
        again = fetch.fetch_real("mpii", raw, dataset=mpii_spec(archives), **FAST)
    assert n_requests == 3 and len(srv.requests) == 3  # the cut resumed once; the second fetch did nothing
    assert again == m == json.loads((raw / "MANIFEST.json").read_text())
    assert sorted(p.name for p in raw.iterdir()) == ["MANIFEST.json", "downloads", "images", "mpii_human_pose_v1_u12_2"]
    img = m["archives"]["mpii_human_pose_v1.tar.gz"]
    assert img["verified"] and img["md5"] == mpii_spec(archives).files[1].checksums[0].hexdigest
    assert img["url"] == srv.url("mpii_human_pose_v1.tar.gz")
    assert not m["archives"]["mpii_human_pose_v1_u12_2.zip"]["verified"]  # no published checksum
    assert m["images"]["count"] == 5 and m["annotation"]["sha256"] == sha256(MPII_DATA / "release_subset.mat")
    split = tmp_path / "split.csv"
    split.write_text("image_index,person_index\n0,0\n3,0\n")
    counts = prepare.prepare_dataset(
        raw, tmp_path / "out", dataset="mpii", input_res=64, crop_margin=1.25, split_csv=split
    )
    assert counts["valid"] == 2 and counts["train"] == 3
    assert "MANIFEST.json" in schema.read_split_attrs(tmp_path / "out" / "valid.h5")["source_checksums"]


def test_fetch_flic_through_the_cli(archives, tmp_path, monkeypatch, capsys):
    zipped = archives / "FLIC.zip"
    with FileServer(archives) as srv:
        monkeypatch.setenv("HGBENCH_FLIC_URL", srv.base)
        # the CLI expects the real FLIC.zip: the checksum is refused and the message says so
        assert main(["fetch", "--params", str(PAPER), "--dataset", "flic", "--out", str(tmp_path / "a")]) == 2
        err = capsys.readouterr().err
        assert "FLIC.zip" in err and "expected 300,257,553 bytes" in err
        monkeypatch.setenv("HGBENCH_FLIC_SHA256", sha256(zipped))  # a user accepting their own copy
        assert main(["fetch", "--params", str(PAPER), "--dataset", "flic", "--out", str(tmp_path / "b")]) == 0
    m = json.loads((tmp_path / "b" / "MANIFEST.json").read_text())
    assert (
        m["archives"]["FLIC.zip"]["sha256"] == sha256(zipped)
        and "HGBENCH_FLIC_SHA256" in m["archives"]["FLIC.zip"]["provenance"]
    )
    assert (tmp_path / "b" / "FLIC" / "examples.mat").is_file() and m["images"]["count"] == 22  # 24 people in 22 frames


def test_manual_placement_is_verified_and_used(archives, tmp_path, monkeypatch):
    monkeypatch.setenv("HGBENCH_FLIC_URL", closed_port_url())  # nothing may be downloaded
    raw = tmp_path / "raw"
    (raw / "downloads").mkdir(parents=True)
    (raw / "downloads" / "FLIC.zip").write_bytes((archives / "FLIC.zip").read_bytes())
    m = fetch.fetch_real("flic", raw, dataset=flic_spec(archives), **FAST)
    assert "placed in downloads/" in m["archives"]["FLIC.zip"]["how"] and m["archives"]["FLIC.zip"]["verified"]
    # a wrong file placed by hand: named, with the fix, and nothing extracted over the good tree
    bad = tmp_path / "bad"
    (bad / "downloads").mkdir(parents=True)
    (bad / "downloads" / "FLIC.zip").write_bytes(b"not the zip")
    with pytest.raises(fetch.FetchError) as err:
        fetch.fetch_real("flic", bad, dataset=flic_spec(archives), **FAST)
    msg = str(err.value)
    assert str(bad / "downloads" / "FLIC.zip") in msg and "size 11 bytes" in msg and "delete it" in msg
    assert not (bad / "FLIC").exists() and not (bad / "MANIFEST.json").exists()


def test_already_extracted_tree_is_accepted(tmp_path, monkeypatch):
    monkeypatch.setenv("HGBENCH_MPII_URL", closed_port_url())
    mat = tmp_path / fetch.MPII_RELEASE_RELPATH
    mat.parent.mkdir(parents=True)
    mat.write_bytes((MPII_DATA / "release_subset.mat").read_bytes())
    (tmp_path / "images").mkdir()
    for p in (MPII_DATA / "images").iterdir():
        (tmp_path / "images" / p.name).write_bytes(p.read_bytes())
    m = fetch.fetch_real("mpii", tmp_path, **FAST)
    assert "placed by hand" in m["route"] and m["archives"] == {} and m["images"]["count"] == 5


def test_unreachable_host_explains_the_manual_route(tmp_path, monkeypatch, capsys):
    url = closed_port_url()
    monkeypatch.setenv("HGBENCH_MPII_URL", url)
    with pytest.raises(fetch.FetchError) as err:
        fetch.fetch_real("mpii", tmp_path / "raw", **FAST)
    msg = str(err.value)
    assert f"{url}/mpii_human_pose_v1_u12_2.zip" in msg and "giving up" in msg
    assert str(tmp_path / "raw" / "downloads" / "mpii_human_pose_v1_u12_2.zip") in msg
    assert "about 12.5 MB" in msg and "no published checksum" in msg and "place the file" in msg
    monkeypatch.setenv("HGBENCH_FLIC_URL", url)
    assert (
        main(
            [
                "fetch",
                "--params",
                str(PAPER),
                "--dataset",
                "flic",
                "--out",
                str(tmp_path / "f"),
                "--retries",
                "1",
                "--backoff",
                "0.01",
            ]
        )
        == 2
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1  # the manual route is in the one line, after " … "
    assert err[0].startswith("hgbench fetch: error: cannot download FLIC.zip") and "300,257,553 bytes" in err[0]


# ---------------------------------------------------------------------------------------------
# hostile archives
# ---------------------------------------------------------------------------------------------


def _tar(path: Path, members: list[tarfile.TarInfo], data: bytes = b"x") -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for m in members:
            tar.addfile(m, io.BytesIO(data) if m.isfile() else None)
    return path


def _info(name, kind=tarfile.REGTYPE, link="", size=1):
    m = tarfile.TarInfo(name)
    m.type, m.linkname, m.size = kind, link, size if kind == tarfile.REGTYPE else 0
    return m


@pytest.mark.parametrize(
    "members,match",
    [
        ([_info("images/ok.jpg"), _info("../evil.txt")], "contains '..'"),
        ([_info("images/ok.jpg"), _info("/tmp/hgbench-evil.txt")], "absolute path"),
        ([_info("images/link", tarfile.SYMTYPE, "../../outside")], "points outside"),
        ([_info("images/link", tarfile.SYMTYPE, "/etc/passwd")], "points outside"),
        ([_info("images/hard", tarfile.LNKTYPE, "../outside")], "hard link"),
        ([_info("images/hard", tarfile.LNKTYPE, "/etc/passwd")], "hard link"),
        ([_info("images/fifo", tarfile.FIFOTYPE)], "device file or FIFO"),
        ([_info("downloads/x")], "would replace"),
    ],
)
def test_hostile_tar_is_refused_and_leaves_nothing(tmp_path, members, match):
    dest = tmp_path / "dest"
    (dest / "images").mkdir(parents=True)
    (dest / "images" / "keep.jpg").write_bytes(b"old")
    archive = _tar(tmp_path / "evil.tar.gz", members)
    with pytest.raises(download.UnsafeArchiveError, match=match):
        download.safe_extract(archive, dest, progress=False, protected=("downloads",))
    assert sorted(p.name for p in dest.iterdir()) == ["images"]  # no temp folder, nothing replaced
    assert [p.name for p in (dest / "images").iterdir()] == ["keep.jpg"]
    assert not (tmp_path / "evil.txt").exists() and not (tmp_path / "outside").exists()


def test_links_inside_the_archive_are_fine(tmp_path):
    archive = _tar(
        tmp_path / "ok.tar.gz",
        [_info("a/f.txt"), _info("a/l", tarfile.SYMTYPE, "f.txt"), _info("a/h", tarfile.LNKTYPE, "a/f.txt")],
    )
    assert download.safe_extract(archive, tmp_path / "d", progress=False) == ["a"]
    assert (tmp_path / "d" / "a" / "l").read_bytes() == b"x" and (tmp_path / "d" / "a" / "h").read_bytes() == b"x"


@pytest.mark.parametrize(
    "name,symlink,match",
    [
        ("../evil.txt", False, "contains '..'"),
        ("/abs.txt", False, "absolute path"),
        ("FLIC/link", True, "symbolic link"),
    ],
)
def test_hostile_zip_is_refused(tmp_path, name, symlink, match):
    path = tmp_path / "evil.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("FLIC/examples.mat", b"x")
        info = zipfile.ZipInfo(name)
        if symlink:
            info.external_attr = 0o120777 << 16
        zf.writestr(info, b"../../etc/passwd")
    with pytest.raises(download.UnsafeArchiveError, match=match):
        download.safe_extract(path, tmp_path / "dest", progress=False)
    assert list((tmp_path / "dest").iterdir()) == []


def test_not_an_archive(tmp_path):
    (tmp_path / "x.zip").write_bytes(b"garbage")
    with pytest.raises(download.UnsafeArchiveError, match="neither a tar nor a zip"):
        download.safe_extract(tmp_path / "x.zip", tmp_path / "d", progress=False)
