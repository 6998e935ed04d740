"""Raw data into ``data/raw/<dataset>/``: the synthetic set is generated, MPII and FLIC are downloaded.

* :func:`fetch_synthetic` generates the embedded dataset into a temporary folder next to the
  target and renames it into place, so an interrupted run never leaves a half-written dataset
  under the final name. A folder whose ``MANIFEST.json`` matches the config (same generator
  version, same values, every listed file present with its sha256) is left untouched.
* :func:`fetch_real` gets MPII Human Pose or FLIC from the official hosts (generic download,
  checksum and extraction code in :mod:`hgbench.data.download`) and writes ``MANIFEST.json``
  last, so the manifest's presence means "complete". Expected tree (docs/data.md)::

      data/raw/mpii/downloads/mpii_human_pose_v1.tar.gz      official archives (or placed by hand)
      data/raw/mpii/downloads/mpii_human_pose_v1_u12_2.zip
      data/raw/mpii/images/*.jpg                             extracted
      data/raw/mpii/mpii_human_pose_v1_u12_2/mpii_human_pose_v1_u12_1.mat
      data/raw/mpii/MANIFEST.json
      data/raw/flic/downloads/FLIC.zip
      data/raw/flic/FLIC/examples.mat, data/raw/flic/FLIC/images/*.jpg
      data/raw/flic/MANIFEST.json

  Three routes, tried in this order: (1) an archive already in ``downloads/`` (placed by hand or
  left by an earlier run) is verified and used; (2) an already extracted tree without archives
  (annotation file and images in place) is accepted as placed by hand, and the manifest records
  that the archives could not be verified; (3) otherwise the archive is downloaded from
  ``$HGBENCH_<DATASET>_URL/<file name>`` (default: the official host). Before its first byte,
  the rest of the archive plus what it unpacks to (``RemoteFile.unpacked_ratio`` × its size) is
  checked against the free disk; a download that cannot fit is refused in one line.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from hgbench.config import SyntheticConfig
from hgbench.data import flic, synthetic
from hgbench.data.download import (
    DEFAULT_LIMITS,
    Checksum,
    ChecksumError,
    DownloadError,
    ExtractLimits,
    NotEnoughDisk,
    UnsafeArchiveError,
    download,
    file_digest,
    safe_extract,
    verify_file,
)
from hgbench.iofiles import atomic_path, free_disk, output_lock, public_mode, remove_stale_temps

MPII_BASE_URL = "https://datasets.d2.mpi-inf.mpg.de/andriluka14cvpr"
MPII_IMAGES_URL = f"{MPII_BASE_URL}/mpii_human_pose_v1.tar.gz"
MPII_ANNOTATIONS_URL = f"{MPII_BASE_URL}/mpii_human_pose_v1_u12_2.zip"
MPII_LANDING_URL = (
    "https://www.mpi-inf.mpg.de/departments/computer-vision-and-machine-learning/"
    "software-and-datasets/mpii-human-pose-dataset/download"
)
MPII_RELEASE_RELPATH = synthetic.RELEASE_RELPATH
FLIC_BASE_URL = "http://vision.grasp.upenn.edu/video"
FLIC_URL = f"{FLIC_BASE_URL}/FLIC.zip"
FLIC_EXAMPLES_RELPATH = flic.EXAMPLES_RELPATH
FLIC_IMAGES_RELPATH = flic.IMAGES_RELPATH
MANIFEST = "MANIFEST.json"
DOWNLOADS = "downloads"
MANIFEST_VERSION = 1


class FetchError(RuntimeError):
    """Raw data is missing or incomplete; the message says what to download and where to put it."""


def fetch_synthetic(out_dir: str | Path, cfg: SyntheticConfig, progress: bool = False) -> bool:
    """Make ``out_dir`` hold the synthetic dataset of ``cfg``. Returns True if it was (re)generated.

    Holds ``out_dir``'s lock (:func:`hgbench.iofiles.output_lock`): a second fetch of the same
    folder fails at once instead of racing this one. Temporary folders of a killed earlier run
    (``.<name>.tmp-*``, ``.<name>.old-*``) are removed first.
    """
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    with output_lock(out_dir, "hgbench fetch"):
        remove_stale_temps(out_dir, (f".{out_dir.name}.tmp-*", f".{out_dir.name}.old-*"))
        if out_dir.is_dir() and synthetic.manifest_matches(out_dir, cfg):
            return False
        _check_replaceable(out_dir)
        _check_free_disk(out_dir, cfg)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
        public_mode(tmp, directory=True)  # mkdtemp makes it 0700; the published folder is shared
        old = None
        try:
            synthetic.generate(tmp, cfg, progress=progress)
            if out_dir.exists() or out_dir.is_symlink():
                old = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.old-", dir=out_dir.parent))
                os.replace(out_dir, old / "data")
            os.replace(tmp, out_dir)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            if old is not None and (old / "data").exists() and not out_dir.exists():
                os.replace(old / "data", out_dir)  # put the previous dataset back
            raise
        finally:
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
        return True


def _check_replaceable(out_dir: Path) -> None:
    """``out_dir`` is replaced whole by a new dataset: only when it is one (its ``MANIFEST.json``),
    empty or absent. Before, a file or a folder of the user's given as ``--out`` was deleted."""
    if not out_dir.exists():  # absent, or a dangling link
        return
    if out_dir.is_dir():
        if (out_dir / synthetic.MANIFEST_FILENAME).is_file() or not any(out_dir.iterdir()):
            return
        what = "a folder that holds no synthetic dataset (no MANIFEST.json)"
    else:
        what = "a file"
    raise FetchError(
        f"{out_dir} is {what}, and fetch replaces its --out whole with the dataset; give another --out, "
        f"or move it away first"
    )


def _check_free_disk(out_dir: Path, cfg: SyntheticConfig) -> None:
    """Refuse, before the first image, a synthetic dataset larger than the free disk (with the estimate)."""
    need = synthetic.disk_bytes(cfg)
    _, free = free_disk(out_dir.parent)
    if need > free:
        n = cfg.n_train + cfg.n_valid
        raise FetchError(
            f"{out_dir}: the synthetic dataset needs about {_bytes(need)} ({n:,} images of "
            f"{cfg.image_size}x{cfg.image_size} px), but {out_dir.parent} has {_bytes(free)} free; free "
            f"space there, or lower synthetic.n_train, n_valid or image_size"
        )


def _bytes(n: int) -> str:
    return f"{n / 1e9:,.1f} GB" if n >= 1e8 else f"{n / 1e6:,.1f} MB"


@dataclass(frozen=True)
class RemoteFile:
    """One official file: where it comes from and what can be checked about it."""

    filename: str  # name under data/raw/<dataset>/downloads/
    url: str  # default address (the dataset's base URL + filename)
    size: int | None  # bytes; None where no exact size is published
    checksums: tuple[Checksum, ...]  # expected digests; () where none is published
    size_note: str  # for people, e.g. "about 12.9 GB"
    provenance: str  # where the size/checksum come from, and how far they are verified
    limits: ExtractLimits = DEFAULT_LIMITS  # what it may unpack to (download.safe_extract refuses more)
    # Bytes the official file unpacks to per byte of it, rounded up. Before the download the disk
    # must hold the file plus this times its size (at most limits.max_bytes). Known contents, not
    # the caps: those are 2x the real sizes and would ask 38 GB of free disk for MPII's 26 GB.
    unpacked_ratio: float = 1.0


@dataclass(frozen=True)
class RealDataset:
    """An official dataset: its files, the tree they unpack to, and the URL override variable."""

    name: str
    files: tuple[RemoteFile, ...]
    annotation: str  # relative path of the annotation file after extraction
    images: str  # relative path of the image folder after extraction
    url_env: str  # environment variable holding a replacement base URL
    landing: str
    licence: str

    def url(self, f: RemoteFile) -> str:
        base = os.environ.get(self.url_env, "").strip()
        return f"{base.rstrip('/')}/{f.filename}" if base else f.url


MPII = RealDataset(
    name="mpii",
    files=(
        RemoteFile(
            "mpii_human_pose_v1_u12_2.zip",
            MPII_ANNOTATIONS_URL,
            None,
            (),
            "about 12.5 MB",
            "no checksum is published for the annotation zip: its sha256 is recorded in MANIFEST.json, not verified",
            # one .mat of about 12 MB
            ExtractLimits(max_bytes=1 * 10**9, max_ratio=50, max_members=100),
            unpacked_ratio=2.0,  # the .mat's own compression is unknown here; 25 MB is cheap
        ),
        RemoteFile(
            "mpii_human_pose_v1.tar.gz",
            MPII_IMAGES_URL,
            None,
            (Checksum("md5", "b6bc9c6869d3f035a5570b2e68ec84c4"),),
            "about 12.9 GB",
            "md5 as published by torchdata's MPII file list (not re-hashed by hgbench's authors); "
            "verified on every fetch",
            # 24,984 JPEGs (~12.9 GB, gzip gains nothing on them)
            ExtractLimits(max_bytes=25 * 10**9, max_ratio=5, max_members=100_000),
            unpacked_ratio=1.05,  # JPEGs, plus 512-byte tar headers and a margin
        ),
    ),
    annotation=MPII_RELEASE_RELPATH,
    images="images",
    url_env="HGBENCH_MPII_URL",
    landing=MPII_LANDING_URL,
    licence="Simplified BSD, research use only, no commercial use (see the MPII page)",
)

FLIC_SHA256_ENV = "HGBENCH_FLIC_SHA256"


def _flic() -> RealDataset:
    # The published size/sha256 are TFDS's, recorded for a Google-Drive mirror of FLIC.zip; whether
    # the upenn file is byte-identical is not known, so a user with a genuine but different copy can
    # accept it explicitly with HGBENCH_FLIC_SHA256=<its sha256> (the manifest records that).
    sha = os.environ.get(FLIC_SHA256_ENV, "").strip().lower()
    size = None if sha else 300_257_553
    sha = sha or "778a4847f068592af40e959381c153838e4f68bb1d798e3824a9d88e5b881955"
    note = (
        "sha256 given by the user in HGBENCH_FLIC_SHA256"
        if os.environ.get(FLIC_SHA256_ENV, "").strip()
        else "size and sha256 recorded by TFDS (tensorflow_datasets url_checksums/flic.txt) for a mirror of "
        "FLIC.zip; identity with the upenn file is unverified. If the official file differs, check it and "
        f"set {FLIC_SHA256_ENV}=<its sha256>"
    )
    return RealDataset(
        name="flic",
        files=(
            RemoteFile(
                "FLIC.zip",
                FLIC_URL,
                size,
                (Checksum("sha256", sha),),
                "300,257,553 bytes (286 MiB)",
                note,
                # 5,003 JPEGs and examples.mat (~0.3 GB)
                ExtractLimits(max_bytes=3 * 10**9, max_ratio=5, max_members=50_000),
                unpacked_ratio=1.1,
            ),
        ),
        annotation=FLIC_EXAMPLES_RELPATH,
        images=FLIC_IMAGES_RELPATH,
        url_env="HGBENCH_FLIC_URL",
        landing="FLIC, Sapp & Taskar, MODEC (CVPR 2013)",
        licence="research use, see the FLIC release",
    )


def real_dataset(source: str) -> RealDataset:
    """The :class:`RealDataset` of a params ``source`` (``mpii`` or ``flic``)."""
    if source == "mpii":
        return MPII
    if source == "flic":
        return _flic()
    raise ValueError(f"no official download for dataset source {source!r} (known: mpii, flic)")


def _manual_route(ds: RealDataset, raw_dir: Path, files: tuple[RemoteFile, ...]) -> str:
    lines = [f"To place the file(s) by hand (licence: {ds.licence}; landing page: {ds.landing}):"]
    for f in files:
        lines.append(f"  {ds.url(f)}\n     -> save as {raw_dir / DOWNLOADS / f.filename}\n        ({_size_and_sum(f)})")
    lines.append(
        f"then rerun the same `hgbench fetch` command: it verifies and unpacks them. An already unpacked "
        f"tree ({raw_dir / ds.annotation} and {raw_dir / ds.images}/) is accepted too. A mirror can be "
        f"used with {ds.url_env}=<base URL> (file names appended)."
    )
    return "\n".join(lines)


def _size_and_sum(f: RemoteFile) -> str:
    size = f"{f.size:,} bytes" if f.size else f.size_note
    sums = ", ".join(str(c) for c in f.checksums) or "no published checksum"
    return f"{size}; {sums}"


def _count_images(folder: Path) -> int:
    if not folder.is_dir():
        return 0
    return sum(1 for e in os.scandir(folder) if e.is_file() and e.name.lower().endswith((".jpg", ".jpeg", ".png")))


def _tree_present(ds: RealDataset, raw_dir: Path) -> bool:
    return (raw_dir / ds.annotation).is_file() and _count_images(raw_dir / ds.images) > 0


def manifest_ok(ds: RealDataset, raw_dir: Path) -> bool:
    """True if ``raw_dir/MANIFEST.json`` describes the tree that is there (annotation sha256, image count)."""
    path = Path(raw_dir) / MANIFEST
    try:
        m = json.loads(path.read_text())
        ann, img = m["annotation"], m["images"]
        return (
            m.get("manifest_version") == MANIFEST_VERSION
            and m.get("dataset") == ds.name
            and ann["path"] == ds.annotation
            and img["path"] == ds.images
            and (Path(raw_dir) / ds.annotation).is_file()
            and file_digest(Path(raw_dir) / ds.annotation) == ann["sha256"]
            and _count_images(Path(raw_dir) / ds.images) == img["count"]
        )
    except (OSError, ValueError, KeyError, TypeError):
        return False


def fetch_real(
    source: str,
    raw_dir: str | Path,
    *,
    retries: int = 5,
    backoff: float = 2.0,
    timeout: float = 60.0,
    progress: bool = True,
    dataset: RealDataset | None = None,
) -> dict:
    """Make ``raw_dir`` hold the official MPII or FLIC files; return the manifest written (or found).

    See the module docstring for the tree and the three routes. ``dataset`` replaces the built-in
    description (tests use it for archives with other checksums). Raises :class:`FetchError`
    (download impossible, wrong checksum, unsafe or wrongly laid out archive) with the fix.
    """
    ds = dataset or real_dataset(source)
    raw_dir = Path(raw_dir)
    raw_dir.parent.mkdir(parents=True, exist_ok=True)
    with output_lock(raw_dir, "hgbench fetch"):
        # Extraction folders of a killed earlier run (each can be as large as the dataset).
        remove_stale_temps(raw_dir / MANIFEST, (".extract-*",))
        return _fetch_real_locked(ds, raw_dir, retries=retries, backoff=backoff, timeout=timeout, progress=progress)


def _fetch_real_locked(
    ds: RealDataset, raw_dir: Path, *, retries: int, backoff: float, timeout: float, progress: bool
) -> dict:
    if manifest_ok(ds, raw_dir):
        return json.loads((raw_dir / MANIFEST).read_text())
    downloads = raw_dir / DOWNLOADS
    archives_absent = not any((downloads / f.filename).exists() for f in ds.files)
    records: dict[str, dict] = {}
    if archives_absent and _tree_present(ds, raw_dir):
        route = "extracted tree placed by hand (archives not present: their checksums could not be verified)"
    else:
        route = "archives downloaded or placed in downloads/, verified, then extracted"
        for f in ds.files:
            path = downloads / f.filename
            fix = (
                f"{path} is not the expected file: delete it and rerun to download it again, or replace it with "
                f"the official file from {ds.url(f)}"
            )
            try:
                if path.exists():
                    how = "placed in downloads/ (by hand or by an earlier run)"
                    digests = verify_file(path, f.size, f.checksums, fix=fix)
                else:
                    how = f"downloaded from {ds.url(f)}"
                    digests = download(
                        ds.url(f),
                        path,
                        size=f.size,
                        checksums=f.checksums,
                        retries=retries,
                        backoff=backoff,
                        timeout=timeout,
                        progress=progress,
                        unpack_ratio=f.unpacked_ratio,
                        unpack_cap=f.limits.max_bytes,
                    )
            except NotEnoughDisk as exc:
                raise FetchError(
                    f"{raw_dir}: downloading {f.filename} needs about {_bytes(exc.need)} ({exc.parts()}), only "
                    f"{_bytes(exc.free)} are free on {exc.folder}; free space there, or give `hgbench fetch` an "
                    f"--out folder on another disk (for the pipeline: make data/raw a link to one)"
                ) from None
            except DownloadError as exc:
                raise FetchError(
                    f"cannot download {f.filename} for {ds.name}: {exc}.\n" + _manual_route(ds, raw_dir, ds.files)
                ) from None
            except ChecksumError as exc:
                raise FetchError(f"{ds.name}: {exc}") from None
            records[f.filename] = {
                "url": ds.url(f),
                "bytes": path.stat().st_size,
                **{a: d for a, d in sorted(digests.items())},
                "expected": [str(c) for c in f.checksums],
                "verified": bool(f.checksums),
                "how": how,
                "provenance": f.provenance,
            }
        for f in ds.files:
            try:
                safe_extract(
                    downloads / f.filename, raw_dir, progress=progress, protected=(DOWNLOADS, MANIFEST), limits=f.limits
                )
            except UnsafeArchiveError as exc:
                raise FetchError(f"{ds.name}: {exc}") from None
    if not (raw_dir / ds.annotation).is_file() or _count_images(raw_dir / ds.images) == 0:
        raise FetchError(
            f"{ds.name}: after unpacking, {raw_dir / ds.annotation} or the images in {raw_dir / ds.images}/ are missing "
            f"(the archives do not have the official layout).\n" + _manual_route(ds, raw_dir, ds.files)
        )
    manifest = {
        "manifest_version": MANIFEST_VERSION,
        "dataset": ds.name,
        "route": route,
        "archives": records,
        "annotation": {"path": ds.annotation, "sha256": file_digest(raw_dir / ds.annotation)},
        "images": {"path": ds.images, "count": _count_images(raw_dir / ds.images)},
    }
    with atomic_path(raw_dir / MANIFEST) as tmp:
        tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest
