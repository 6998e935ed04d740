"""Which GPUs a job uses when several jobs share one machine.

``snakemake --resources gpu=4`` only *counts* GPUs: it starts jobs while the sum of their ``gpu``
resources fits in 4, but it never says which GPU a job should use, so every job would pick
``cuda:0``. A job therefore claims concrete GPU indices here, with one ``flock`` per GPU under a
lock directory, and narrows ``CUDA_VISIBLE_DEVICES`` to them before CUDA initialises. A cluster
scheduler (SLURM, Kubernetes) that already set ``CUDA_VISIBLE_DEVICES`` has made the choice,
and it is kept.

    with claim_gpus(2, total=torch.cuda.device_count()) as ids:   # e.g. ids == [1, 3]
        train(...)          # sees the two claimed GPUs as cuda:0 and cuda:1
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

DEFAULT_LOCK_DIR = Path(tempfile.gettempdir()) / "hgbench-gpu-locks"
NVIDIA_PROC = Path("/proc/driver/nvidia/gpus")
"""One folder per NVIDIA GPU (PCI address), written by the kernel driver: a GPU count that does
not initialise CUDA."""


def physical_gpu_count(proc: Path = NVIDIA_PROC) -> int:
    """NVIDIA GPUs of this machine, counted WITHOUT initialising CUDA.

    ``torch.cuda.is_available()``/``device_count()`` initialise the CUDA driver, after which a
    change of ``CUDA_VISIBLE_DEVICES`` is ignored by this process: a job that asked torch first
    and claimed a GPU second would still run on GPU 0. So the claim counts from the driver's
    ``/proc`` folder, else ``nvidia-smi -L``; 0 when neither exists (no NVIDIA driver).
    """
    if proc.is_dir():
        return sum(1 for p in proc.iterdir() if p.is_dir())
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return 0
    try:
        out = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=30, check=False).stdout
    except (OSError, subprocess.TimeoutExpired):
        return 0
    return sum(1 for line in out.splitlines() if line.startswith("GPU "))


class GpuClaimError(RuntimeError):
    """A job asked for more GPUs than the machine has, or none became free in time."""


def _try_lock(path: Path):
    fh = open(path, "a+")
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fh.close()
        return None
    return fh


@contextlib.contextmanager
def claim_gpus(n: int, total: int, lock_dir: str | Path | None = None, wait_s: float = 3600.0, poll_s: float = 2.0):
    """Hold ``n`` of the machine's ``total`` GPUs for the duration of the block.

    Yields the claimed physical indices (0-based, as ``nvidia-smi`` numbers them) and sets
    ``CUDA_VISIBLE_DEVICES`` to them inside the block (restored afterwards). ``n == 0`` claims
    nothing. Locks are released when the block ends or the process dies (``flock`` semantics), so
    a killed job never leaves a GPU marked busy.
    """
    if n <= 0:
        yield []
        return
    preset = os.environ.get("CUDA_VISIBLE_DEVICES")
    if preset is not None:  # the cluster scheduler has already chosen
        chosen = [d for d in preset.split(",") if d.strip()]
        if len(chosen) < n:
            raise GpuClaimError(
                f"the job needs {n} GPU(s) but CUDA_VISIBLE_DEVICES={preset!r} grants "
                f"{len(chosen)}; ask the scheduler for {n} (SLURM: --gpus={n})"
            )
        yield chosen[:n]
        return
    if n > total:
        raise GpuClaimError(
            f"the job needs {n} GPU(s) but this machine has {total}; lower train.devices "
            "or run it where more GPUs are available"
        )
    lock_dir = Path(DEFAULT_LOCK_DIR if lock_dir is None else lock_dir)
    lock_dir.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + wait_s
    held: dict[int, object] = {}
    try:
        while True:
            for i in range(total):
                if len(held) == n:
                    break
                if i not in held and (fh := _try_lock(lock_dir / f"gpu{i}.lock")) is not None:
                    held[i] = fh
            if len(held) == n:
                break
            if time.monotonic() > deadline:
                raise GpuClaimError(
                    f"waited {wait_s:.0f} s for {n} free GPU(s) of {total} (locks in {lock_dir}); "
                    "other jobs hold them — check `snakemake --resources gpu=N` matches the machine"
                )
            time.sleep(poll_s)
        ids = sorted(held)
        os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(map(str, ids))
        try:
            yield ids
        finally:
            os.environ.pop("CUDA_VISIBLE_DEVICES", None)
    finally:
        for fh in held.values():
            fh.close()  # closing the descriptor releases the flock
