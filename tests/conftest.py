import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
# The shipped files a user's clone has (scenario tests run on these, never on edited copies).
PROJECT_FILES = ["workflow", "config", ".snakemake-workflow-catalog.yml", "dvc.yaml", ".dvc/config", ".dvcignore",
                 ".gitignore", "params", "src/hgbench/params.schema.yaml"]


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
        raise AssertionError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
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
