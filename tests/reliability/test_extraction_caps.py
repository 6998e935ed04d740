"""Item 4 (archives) — extraction is capped per dataset (total bytes, compression ratio, members),
links are checked against the tree as really extracted (chains of links resolved), and every
refusal is one line: ``refusing to extract <archive>: <why>; <fix>``.

Before: no size or ratio limit at all, and a symlink-chain escape was caught only by tarfile's
``data`` filter, whose error surfaced as "the archive is truncated or corrupt". The archives here
are small and built in ``tmp_path``; an escape through a broken check lands in ``tmp_path`` too.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import os
import tarfile
import zipfile
from pathlib import Path

import pytest

from hgbench.cli import main
from hgbench.data import download, fetch
from hgbench.data.download import DEFAULT_LIMITS, ExtractLimits, UnsafeArchiveError, safe_extract

from .conftest import ROOT, assert_clean_error


def tar_gz(path: Path, members: list[tuple]) -> Path:
    """``members``: ``("file", name, bytes)``, ``("dir", name)``, ``("symlink"|"hardlink", name, target)``."""
    with tarfile.open(path, "w:gz") as tar:
        for kind, name, *rest in members:
            info = tarfile.TarInfo(name)
            if kind == "file":
                info.size = len(rest[0])
                tar.addfile(info, io.BytesIO(rest[0]))
                continue
            info.type = {"dir": tarfile.DIRTYPE, "symlink": tarfile.SYMTYPE, "hardlink": tarfile.LNKTYPE}[kind]
            info.linkname = rest[0] if rest else ""
            tar.addfile(info)
    return path


def zipped(path: Path, files: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return path


def target(tmp_path: Path) -> Path:
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "keep.txt").write_text("old")
    return dest


def refusal(archive: Path, dest: Path, **kwargs) -> str:
    """The one-line refusal of ``archive``; ``dest`` must be exactly as it was."""
    with pytest.raises(UnsafeArchiveError) as err:
        safe_extract(archive, dest, progress=False, **kwargs)
    msg = str(err.value)
    assert msg.startswith(f"refusing to extract {archive}: ") and "\n" not in msg, msg
    assert sorted(os.listdir(dest)) == ["keep.txt"] and (dest / "keep.txt").read_text() == "old"
    return msg


def outside_entries(tmp_path: Path, before: set) -> set:
    return {p for p in tmp_path.rglob("*")} - before


ZEROS = b"\0" * (20 << 20)  # 20 MiB of zeros: deflate/gzip make ~20 KB of them (ratio ~1000)


# ---------------------------------------------------------------------------------------------
# caps: bytes, ratio, members
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["tar.gz", "zip"])
def test_a_compression_bomb_is_refused_by_ratio_before_it_is_written(tmp_path, fmt):
    archive = tmp_path / f"bomb.{fmt}"
    if fmt == "zip":
        zipped(archive, {"images/a.jpg": b"x", "images/bomb.jpg": ZEROS})
    else:
        tar_gz(archive, [("file", "images/a.jpg", b"x"), ("file", "images/bomb.jpg", ZEROS)])
    ratio = len(ZEROS) / archive.stat().st_size
    assert ratio > DEFAULT_LIMITS.max_ratio
    msg = refusal(archive, target(tmp_path))
    assert (
        f"its members add up to more than {DEFAULT_LIMITS.max_ratio:g} times its own "
        f"{archive.stat().st_size:,} bytes (at 'images/bomb.jpg'): a compression bomb"
    ) in msg


@pytest.mark.parametrize("fmt", ["tar.gz", "zip"])
def test_an_archive_past_its_byte_cap_is_refused(tmp_path, fmt):
    files = {f"images/{i}.jpg": os.urandom(600) for i in range(3)}  # incompressible: ratio ~1
    archive = tmp_path / f"big.{fmt}"
    if fmt == "zip":
        zipped(archive, files)
    else:
        tar_gz(archive, [("file", n, d) for n, d in files.items()])
    limits = ExtractLimits(max_bytes=1000, max_ratio=5, max_members=100)
    msg = refusal(archive, target(tmp_path), limits=limits)
    assert "its members add up to more than 1,000 bytes (at 'images/1.jpg'), the limit for this archive" in msg
    assert safe_extract(archive, tmp_path / "ok", progress=False, limits=dataclasses.replace(limits, max_bytes=1800))


def test_an_archive_with_too_many_members_is_refused(tmp_path):
    archive = tar_gz(tmp_path / "many.tar.gz", [("file", f"images/{i}.jpg", b"") for i in range(11)])
    msg = refusal(archive, target(tmp_path), limits=ExtractLimits(max_bytes=10**6, max_ratio=5, max_members=10))
    assert "it holds more than 10 members, the limit for this archive" in msg


def test_every_real_dataset_has_caps_its_official_archive_meets():
    """Generous for the real files (MPII images 12.9 GB of JPEGs, FLIC.zip 300 MB), far below a bomb."""
    known = {
        "mpii_human_pose_v1.tar.gz": (12.9e9, 25_000),
        "mpii_human_pose_v1_u12_2.zip": (12.5e6, 1),
        "FLIC.zip": (300_257_553, 5_003),
    }
    for spec in (fetch.MPII, fetch.real_dataset("flic")):
        for f in spec.files:
            size, members = known[f.filename]
            assert f.limits is not DEFAULT_LIMITS, f.filename
            assert f.limits.max_bytes >= 1.5 * size and f.limits.max_ratio >= 2, f
            assert f.limits.max_members >= 2 * members, f


def test_a_bomb_through_fetch_is_refused_with_the_dataset_s_caps(tmp_path, monkeypatch, capsys):
    raw = tmp_path / "raw"
    (raw / "downloads").mkdir(parents=True)
    archive = zipped(raw / "downloads" / "FLIC.zip", {"FLIC/examples.mat": b"x", "FLIC/images/a.jpg": ZEROS[: 4 << 20]})
    monkeypatch.setenv("HGBENCH_FLIC_URL", "http://127.0.0.1:9")  # nothing may be downloaded
    monkeypatch.setenv("HGBENCH_FLIC_SHA256", hashlib.sha256(archive.read_bytes()).hexdigest())  # "verified"
    status = main(["fetch", "--params", str(ROOT / "params" / "paper.yaml"), "--dataset", "flic", "--out", str(raw)])
    line = assert_clean_error(
        status,
        capsys.readouterr().err,
        "fetch",
        f"flic: refusing to extract {archive}: its members add up to more than 5 times",
    )
    assert line.endswith("a compression bomb; the archive is not the official file: delete it and fetch again")
    assert sorted(p.name for p in raw.iterdir()) == ["downloads"]


# ---------------------------------------------------------------------------------------------
# links, checked against the tree as extracted
# ---------------------------------------------------------------------------------------------

CHAINS = {  # name: (members, the refusal's words). Each passes a check of its names alone.
    # a/b -> .. is the root, so a/b/../.. is two levels above it
    "symlink through a symlink": (
        [("dir", "a"), ("symlink", "a/b", ".."), ("symlink", "x", "a/b/../..")],
        "symlink 'x' -> 'a/b/../..' leads outside the archive through other links in it",
    ),
    # x is made first, when a/b does not exist yet (inside then); a/b -> .. turns it outward
    "symlink turned outward by a later link": (
        [("symlink", "x", "a/b/../.."), ("dir", "a"), ("symlink", "a/b", "..")],
        "symlink 'x' -> 'a/b/../..' leads outside the archive through other links in it",
    ),
    "hard link through a symlink": (
        [("dir", "a"), ("symlink", "a/b", ".."), ("hardlink", "h", "a/b/../../secret.txt")],
        "hard link 'h' -> 'a/b/../../secret.txt' leads outside the archive through other links in it",
    ),
    "file written through a link turned outward": (
        [("symlink", "x", "a/b/../.."), ("dir", "a"), ("symlink", "a/b", ".."), ("file", "x/evil.txt", b"x")],
        "member 'x/evil.txt' would be written through a link that leads outside the archive",
    ),
}


@pytest.mark.parametrize("case", sorted(CHAINS))
def test_link_chains_that_lead_out_are_refused_as_unsafe_not_corrupt(tmp_path, case):
    members, words = CHAINS[case]
    (tmp_path / "secret.txt").write_text("secret")
    archive = tar_gz(tmp_path / "chain.tar.gz", members)
    dest = target(tmp_path)
    before = set(tmp_path.rglob("*"))
    msg = refusal(archive, dest)
    assert words in msg and "corrupt" not in msg, msg
    assert outside_entries(tmp_path, before) == set()
    assert (tmp_path / "secret.txt").read_text() == "secret" and os.stat(tmp_path / "secret.txt").st_nlink == 1


def test_links_that_stay_inside_through_chains_are_extracted(tmp_path):
    archive = tar_gz(
        tmp_path / "ok.tar.gz",
        [
            ("dir", "a/b"),
            ("file", "a/b/f.txt", b"x"),
            ("symlink", "a/up", ".."),
            ("symlink", "l", "a/up/a/b/f.txt"),
            ("hardlink", "h", "a/up/a/b/f.txt"),
        ],
    )
    dest = tmp_path / "d"
    assert safe_extract(archive, dest, progress=False) == ["a", "h", "l"]
    assert (dest / "l").read_bytes() == b"x" and (dest / "h").read_bytes() == b"x"


# ---------------------------------------------------------------------------------------------
# every refusal: one line, "refusing to extract <archive>: <why>"
# ---------------------------------------------------------------------------------------------

HOSTILE = {
    "dotdot": [("file", "../evil.txt", b"x")],
    "absolute": [("file", "/tmp/hgbench-evil.txt", b"x")],
    "symlink out": [("symlink", "images/l", "../../outside")],
    "absolute symlink": [("symlink", "images/l", "/etc")],
    "hard link out": [("hardlink", "images/h", "../outside")],
    "hard link to nothing": [("hardlink", "images/h", "missing.jpg")],
    "file over a folder": [("dir", "images"), ("file", "images/a", b"x"), ("file", "images/a/b", b"x")],
    "the root itself": [("file", ".", b"x")],
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_every_refusal_is_one_line_naming_the_archive_and_why(tmp_path, case):
    archive = tar_gz(tmp_path / "evil.tar.gz", HOSTILE[case])
    msg = refusal(archive, target(tmp_path))
    assert msg.endswith("; the archive is not the official file: delete it and fetch again"), msg


def test_a_damaged_archive_is_refused_in_the_same_words(tmp_path):
    good = tar_gz(tmp_path / "good.tar.gz", [("file", "images/a.jpg", os.urandom(5000))])
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(good.read_bytes()[:3000])
    msg = refusal(cut, target(tmp_path))
    assert "truncated or corrupt" in msg and "Delete it and run the fetch again" in msg
    (tmp_path / "x.zip").write_bytes(b"garbage")
    assert "neither a tar nor a zip" in refusal(tmp_path / "x.zip", tmp_path / "dest")


def test_tarfile_s_own_filter_is_reported_as_a_refusal(tmp_path, monkeypatch):
    """The ``data`` filter stays behind our checks; what it refuses is a refusal too, not "corrupt"."""
    monkeypatch.setattr(download, "_check_tar_member", lambda *a: None)  # only the filter is left
    archive = tar_gz(tmp_path / "evil.tar.gz", [("symlink", "images/l", "../../outside")])
    msg = refusal(archive, target(tmp_path))
    assert "outside the destination" in msg and "corrupt" not in msg, msg
