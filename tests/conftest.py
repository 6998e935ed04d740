import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
# The shipped files a user's clone has (scenario tests run on these, never on edited copies).
PROJECT_FILES = [
    "workflow",
    "config",
    ".snakemake-workflow-catalog.yml",
    "dvc.yaml",
    ".dvc/config",
    ".dvcignore",
    ".gitignore",
    "params",
    "src/hgbench/params.schema.yaml",
]


def tool_env() -> dict:
    """Environment for subprocesses: the venv's snakemake/dvc/hgbench first on PATH."""
    env = dict(os.environ)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = f"{ROOT / 'src'}{os.pathsep}{env.get('PYTHONPATH', '')}".rstrip(os.pathsep)
    env["DVC_NO_ANALYTICS"] = "1"
    return env


def run(cmd: list[str], cwd: Path, check: bool = True, timeout: int = 600) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, cwd=cwd, env=tool_env(), capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(
            f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
        )
    return proc


def make_project(dest: Path, profile: str) -> Path:
    """A fresh git repository with the workflow files and params.yaml = a copy of params/<profile>.yaml."""
    for rel in PROJECT_FILES:
        src, dst = ROOT / rel, dest / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, dst, symlinks=True)
        else:
            shutil.copy2(src, dst)
    shutil.copy2(ROOT / "params" / f"{profile}.yaml", dest / "params.yaml")
    run(["git", "init", "-q"], dest)
    return dest


@pytest.fixture
def project(tmp_path):
    """Factory: ``project("smoke")`` → path of a temporary project for that profile."""
    return lambda profile: make_project(tmp_path / "project", profile)


@pytest.fixture(scope="session")
def finished_smoke(tmp_path_factory) -> Path:
    """A clone after one finished ``snakemake`` run of the smoke profile (made once per session;
    tests that change it work on a copy, see tests/test_lifecycle.py)."""
    cwd = make_project(tmp_path_factory.mktemp("finished") / "p", "smoke")
    run(["snakemake", "--cores", "2", "--resources", "gpu=1", "--configfile", "params/smoke.yaml"], cwd)
    return cwd


def write_split(
    path: Path,
    *,
    images,
    joints_image,
    missing,
    normalizer,
    crop_to_image,
    image_name=None,
    dataset: str = "synth",
    split: str = "valid",
    input_res: int | None = None,
) -> Path:
    """A small but complete processed split file (every dataset and attribute of
    ``hgbench.data.schema``) from the arrays a test cares about; the rest are filled plainly:
    crop-px joints from ``crop_to_image``, visible = not missing, head boxes around the joints."""
    import h5py
    import numpy as np

    from hgbench.data.schema import ATTRIBUTES, FRAME_OFFSET, MPII_LAYOUT, SCHEMA_VERSION, fixed_utf8, set_str_attr

    images = np.asarray(images, np.uint8)
    n, c = images.shape[:2]
    joints_image = np.where(np.asarray(missing)[..., None], np.nan, np.asarray(joints_image, np.float64))
    a = np.asarray(crop_to_image, np.float64)
    inv = np.linalg.inv(np.concatenate([a, np.tile([[[0.0, 0.0, 1.0]]], (n, 1, 1))], axis=1))[:, :2]
    joints = np.einsum("nij,nkj->nki", inv[:, :, :2], joints_image) + inv[:, None, :, 2]
    names = image_name if image_name is not None else [f"{i:09d}.jpg" for i in range(n)]
    data = {
        "images": images,
        "joints": joints.astype(np.float32),
        "joints_image": joints_image,
        "visible": ~np.asarray(missing, bool),
        "missing": np.asarray(missing, bool),
        "crop_to_image": a,
        "normalizer": np.asarray(normalizer, np.float64),
        "headbox": np.tile([[[0.0, 0.0], [10.0, 10.0]]], (n, 1, 1)),
        "center": a[:, :, 2] + a[:, :, 0] * (c - 1) / 2,
        "scale": np.ones(n),
        "image_name": fixed_utf8(names),
        "image_index": np.arange(n, dtype=np.int64),
        "person_index": np.zeros(n, np.int64),
    }
    with h5py.File(path, "w", libver="v110") as f:
        for key, value in data.items():
            f.create_dataset(key, data=value)
        attrs = {
            "schema_version": SCHEMA_VERSION,
            "dataset": dataset,
            "split": split,
            "joint_names": list(MPII_LAYOUT.joint_names),
            "flip_permutation": list(MPII_LAYOUT.flip_permutation),
            "input_res": input_res or c,
            "crop_size": c,
            "crop_margin": 1.0,
            "frame_offset": FRAME_OFFSET,
            "normalizer_definition": MPII_LAYOUT.normalizer_definition,
            "source_checksums": "{}",
            "code_version": "test",
        }
        assert set(attrs) == set(ATTRIBUTES)
        for key, value in attrs.items():
            if isinstance(value, str) or (isinstance(value, list) and isinstance(value[0], str)):
                set_str_attr(f, key, value)
            else:
                f.attrs[key] = value
    return Path(path)
