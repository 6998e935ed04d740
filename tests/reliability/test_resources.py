"""Item 6 — resource limits: the peak memory of ``hgbench prepare`` does not grow with the dataset.

prepare streams: one image is decoded and cropped at a time and each crop goes straight into its
HDF5 chunk. Only the per-person labels (~1 KB a person) are held for the whole split. The test
prepares two synthetic datasets, N and 4·N people, with large crops (512² px, 768 KiB each), and
measures each run's peak resident set size (``ru_maxrss`` of a fresh process). Holding the crops
in memory would add (4N − N) × 768 KiB ≈ 72 MiB at N = 32; streaming adds almost nothing.
"""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import ROOT, tool_env
from hgbench.config import load_params
from hgbench.data.fetch import fetch_synthetic

from .conftest import smoke_raw_params, write_params

N_SMALL, N_LARGE = 32, 128
INPUT_RES, CROP_MARGIN = 256, 2.0
CROP_BYTES = (2 * round(INPUT_RES * CROP_MARGIN / 2)) ** 2 * 3

# A fresh interpreter runs `hgbench prepare` as a child and reports the child's peak RSS (KiB on
# Linux): the pytest process's own memory never enters the measurement.
MEASURE = """
import json, resource, subprocess, sys
proc = subprocess.run(sys.argv[1:], capture_output=True, text=True)
print(json.dumps({"status": proc.returncode, "stderr": proc.stderr[-2000:],
                  "peak_kib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}))
"""


def peak_rss_of_prepare(tmp_path, n_train: int) -> int:
    """Peak RSS (bytes) of ``hgbench prepare`` on a synthetic set of ``n_train`` + 8 people."""
    raw = smoke_raw_params()
    raw["datasets"]["smoke"].update(input_res=INPUT_RES, output_res=INPUT_RES // 4, crop_margin=CROP_MARGIN)
    raw["datasets"]["smoke"]["synthetic"]["n_train"] = n_train
    params = write_params(tmp_path / f"params-{n_train}.yaml", raw)
    data = tmp_path / f"raw-{n_train}"
    fetch_synthetic(data, load_params(params).datasets["smoke"].synthetic)
    cmd = [
        sys.executable,
        "-c",
        MEASURE,
        "hgbench",
        "prepare",
        "--params",
        str(params),
        "--dataset",
        "smoke",
        "--raw",
        str(data),
        "--out",
        str(tmp_path / f"processed-{n_train}"),
    ]
    result = json.loads(
        subprocess.run(cmd, cwd=ROOT, env=tool_env(), capture_output=True, text=True, timeout=600, check=True).stdout
    )
    assert result["status"] == 0, result["stderr"]
    return result["peak_kib"] * 1024


def test_prepare_peak_memory_does_not_grow_with_the_dataset(tmp_path):
    small = peak_rss_of_prepare(tmp_path, N_SMALL)
    large = peak_rss_of_prepare(tmp_path, N_LARGE)
    held_if_not_streamed = (N_LARGE - N_SMALL) * CROP_BYTES
    growth = large - small
    print(
        f"prepare peak RSS: {small / 2**20:.1f} MiB at {N_SMALL + 8} people, {large / 2**20:.1f} MiB at "
        f"{N_LARGE + 8} people (growth {growth / 2**20:+.1f} MiB; keeping the crops would add "
        f"{held_if_not_streamed / 2**20:.0f} MiB)"
    )
    # Labels and bookkeeping may grow a little; a tenth of the added crops' bytes is the bar.
    assert growth < 0.1 * held_if_not_streamed, (small, large)
