"""Make Snakemake trust outputs that DVC restored (``dvc pull`` / ``dvc checkout``).

Snakemake decides what to rerun from file modification times; DVC restores files with the time
of the checkout, in no particular order. After a ``dvc pull`` into a fresh clone a checkpoint can
be older than the data it was trained on, and ``snakemake`` would retrain every model although
every hash matches. DVC, which compares content hashes, is the judge of "up to date" here:

1. ``dvc status --json`` must report nothing changed (otherwise we stop and name the stages:
   touching would hide real staleness);
2. ``snakemake --touch`` then walks the DAG in order and gives every output a time after its
   inputs, without running anything.

    hgbench sync-timestamps --params params/demo.yaml   # after dvc pull; the profile snakemake runs
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path


class StaleOutputsError(RuntimeError):
    """DVC reports stages whose outputs do not match their inputs; timestamps were not touched."""


def _run(cmd: list[str], cwd: Path) -> subprocess.CompletedProcess:
    if shutil.which(cmd[0]) is None:
        raise FileNotFoundError(f"{cmd[0]} is not on PATH; install the project (make install) and activate .venv")
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)


def dvc_changed_stages(cwd: Path) -> list[str]:
    """Names of DVC stages (e.g. ``train@run0``) whose deps, params or outs changed."""
    proc = _run(["dvc", "status", "--json"], cwd)
    if proc.returncode != 0:
        raise RuntimeError(f"dvc status failed in {cwd}: {proc.stderr.strip() or proc.stdout.strip()}")
    # dvc may print warnings before the JSON object; the object is the last line.
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    status = json.loads(lines[-1]) if lines else {}
    return sorted(status)


def sync_timestamps(params_file: str | Path, cwd: str | Path = ".") -> int:
    """Touch Snakemake's outputs in DAG order once DVC confirms they are all up to date.

    Returns the number of Snakemake jobs whose outputs were touched (0 when none needed it). Raises
    :class:`StaleOutputsError` naming the stages when DVC says the workspace is not in sync.
    """
    cwd = Path(cwd)
    changed = dvc_changed_stages(cwd)
    if changed:
        raise StaleOutputsError(
            "DVC reports changed stages: "
            + ", ".join(changed)
            + "; run `dvc pull` (or `dvc repro`) first — timestamps were left untouched"
        )
    proc = _run(["snakemake", "--touch", "--cores", "1", "--configfile", str(params_file)], cwd)
    if proc.returncode != 0:
        raise RuntimeError(f"snakemake --touch failed: {(proc.stderr or proc.stdout).strip()[-2000:]}")
    done = re.findall(r"(\d+) of \d+ steps", proc.stdout + proc.stderr)
    return int(done[-1]) if done else 0
