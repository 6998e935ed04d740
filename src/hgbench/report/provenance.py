"""Where the report's numbers came from: code version, data/checkpoint hashes, params, software,
hardware, date, and the commands that reproduce them.

Everything is read from the project directory at report time and returned as plain data; a piece
that cannot be read (no git, no dvc.lock yet) is ``None`` and shows as unknown, never an error.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path

import yaml

from ..machine import cpu_model, simd_flags

PACKAGES = (
    "hgbench",
    "torch",
    "numpy",
    "scipy",
    "h5py",
    "pandas",
    "matplotlib",
    "seaborn",
    "jinja2",
    "snakemake",
    "dvc",
)


def _git(args: list[str], cwd: Path) -> str | None:
    try:
        proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return None
    # rstrip only: porcelain lines start with a status column that may be a space
    return proc.stdout.rstrip() if proc.returncode == 0 else None


def git_state(root: Path) -> dict:
    """``{"commit": sha | None, "dirty": bool | None, "changed": [paths]}`` of the repository at ``root``."""
    commit = _git(["rev-parse", "HEAD"], root)
    status = _git(["status", "--porcelain", "--untracked-files=no"], root) if commit else None
    changed = [line[3:] for line in status.splitlines()] if status else []
    return {"commit": commit, "dirty": None if status is None else bool(changed), "changed": changed}


def dvc_lock_outputs(root: Path) -> list[dict]:
    """Every output recorded in ``dvc.lock``: ``{"stage", "path", "md5", "size", "nfiles"}``.

    ``md5`` is DVC's content hash (a directory hash ends in ``.dir``). Empty when there is no lock
    file (the pipeline ran through Snakemake only).
    """
    lock = root / "dvc.lock"
    try:
        data = yaml.safe_load(lock.read_text()) or {}
    except (OSError, yaml.YAMLError):
        return []
    rows = []
    for stage, body in sorted((data.get("stages") or {}).items()):
        for out in body.get("outs") or []:
            rows.append(
                {
                    "stage": stage,
                    "path": out.get("path"),
                    "md5": out.get("md5"),
                    "size": out.get("size"),
                    "nfiles": out.get("nfiles"),
                }
            )
    return rows


def package_versions() -> dict[str, str | None]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def _memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 2**20, 1)
    except (OSError, ValueError, IndexError):
        pass
    return None


def hardware() -> dict:
    """The machine that built the report (training may have run elsewhere: see the model cards)."""
    gpus = []
    try:
        import torch

        if torch.cuda.is_available():
            gpus = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    except Exception:  # a broken CUDA install must not stop the report
        gpus = []
    return {
        "cpu": cpu_model(),
        "cpu_flags": simd_flags(),
        "cores": os.cpu_count(),
        "memory_gib": _memory_gib(),
        "gpus": gpus,
        "os": platform.platform(),
        "python": platform.python_version(),
    }


def reproduce_commands(params_file: str, commit: str | None) -> list[str]:
    """Shell commands that rebuild this report from a clean clone."""
    checkout = f"git checkout {commit}" if commit else "git checkout <commit>"
    return [
        "git clone <this repository> hgbench && cd hgbench",
        checkout,
        "make install && . .venv/bin/activate",
        f"snakemake --cores 4 --resources gpu=1 --configfile {params_file}",
        f"# or, through DVC: cp {params_file} params.yaml && dvc repro",
        "# or fetch the recorded outputs instead of recomputing: dvc pull && "
        f"hgbench sync-timestamps --params {params_file}",
    ]


def collect(root: Path, params_file: str, resolved_params: dict) -> dict:
    """All provenance of one report, as plain data for the template."""
    git = git_state(root)
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "git": git,
        "dvc_outputs": dvc_lock_outputs(root),
        "params_file": params_file,
        "params_yaml": yaml.safe_dump(resolved_params, sort_keys=False, allow_unicode=True),
        "packages": package_versions(),
        "hardware": hardware(),
        "commands": reproduce_commands(params_file, git["commit"]),
    }
