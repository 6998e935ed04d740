"""Raw data into ``data/raw/<dataset>/``: the synthetic set is generated, real MPII is checked.

* :func:`fetch_synthetic` generates the embedded dataset into a temporary folder next to the
  target and renames it into place, so an interrupted run never leaves a half-written dataset
  under the final name. A folder whose ``MANIFEST.json`` matches the config (same generator
  version, same values, every listed file present with its sha256) is left untouched.
* :func:`check_manual_mpii` verifies a manually downloaded MPII Human Pose release. Automatic
  download of MPII comes in a later version.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from hgbench.config import SyntheticConfig
from hgbench.data import synthetic

MPII_IMAGES_URL = "https://datasets.d2.mpi-inf.mpg.de/andriluka14cvpr/mpii_human_pose_v1.tar.gz"
MPII_ANNOTATIONS_URL = "https://datasets.d2.mpi-inf.mpg.de/andriluka14cvpr/mpii_human_pose_v1_u12_2.zip"
MPII_LANDING_URL = ("https://www.mpi-inf.mpg.de/departments/computer-vision-and-machine-learning/"
                    "software-and-datasets/mpii-human-pose-dataset/download")
MPII_RELEASE_RELPATH = synthetic.RELEASE_RELPATH


class FetchError(RuntimeError):
    """Raw data is missing or incomplete; the message says what to download and where to put it."""


def fetch_synthetic(out_dir: str | Path, cfg: SyntheticConfig, progress: bool = False) -> bool:
    """Make ``out_dir`` hold the synthetic dataset of ``cfg``. Returns True if it was (re)generated."""
    out_dir = Path(out_dir)
    if out_dir.is_dir() and synthetic.manifest_matches(out_dir, cfg):
        return False
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
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


def check_manual_mpii(raw_dir: str | Path) -> Path:
    """Check a manually downloaded MPII release in ``raw_dir``; return the annotation file path.

    Expected layout (the official archives unpacked into ``raw_dir``)::

        raw_dir/mpii_human_pose_v1_u12_2/mpii_human_pose_v1_u12_1.mat
        raw_dir/images/*.jpg
    """
    raw_dir = Path(raw_dir)
    mat = raw_dir / MPII_RELEASE_RELPATH
    images = raw_dir / "images"
    problems = []
    if not mat.is_file():
        problems.append(f"annotation file {mat} is missing")
    if not images.is_dir():
        problems.append(f"image folder {images} is missing")
    elif next(images.glob("*.jpg"), None) is None:
        problems.append(f"image folder {images} holds no .jpg files")
    if problems:
        raise FetchError(
            "MPII Human Pose is not in place: " + "; ".join(problems) + ".\n"
            "Automatic download of MPII comes in a later version of hgbench; for now download by hand "
            "(licence: research use only, see the MPII page):\n"
            f"  annotations: {MPII_ANNOTATIONS_URL}\n"
            f"     → unzip into {raw_dir}/ so that {mat} exists\n"
            f"  images (12.9 GB): {MPII_IMAGES_URL}\n"
            f"     → untar into {raw_dir}/ so that {images}/<name>.jpg exist\n"
            f"  (landing page: {MPII_LANDING_URL})"
        )
    return mat
