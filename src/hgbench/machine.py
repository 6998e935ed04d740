"""Which machine a figure was measured on: the CPU's model and SIMD flags, a device's name.

A speed figure means nothing without its machine: the same demo step runs 2.5× slower per core
on a Zen 2 than on a Zen 4, and bf16 is fast only where the CPU has bf16 instructions. So every
benchmark row (``hgbench bench``, ``bench/*.py``), every epoch of ``log.csv`` and the report's
provenance name the machine through these functions, read from ``/proc/cpuinfo`` (what ``lscpu``
shows) rather than ``platform.processor()``, which is empty or ``x86_64`` on Linux.
"""

from __future__ import annotations

import platform
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch is imported only by the callers that pass a device: the report has none
    import torch

CPUINFO = Path("/proc/cpuinfo")

SIMD_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "asimd", "sve", "bf16")
"""The flags that change which kernels run here (x86: AVX2 / AVX-512 / bf16; Arm: NEON, SVE, bf16)."""


def _first_cpu(path: Path | None) -> tuple[dict[str, str], set[str]]:
    """The first processor's fields of ``/proc/cpuinfo`` and the flags of all of them
    (empty where the file cannot be read: not Linux, or a sandbox)."""
    try:
        text = (path or CPUINFO).read_text(errors="replace")
    except OSError:
        return {}, set()
    fields: dict[str, str] = {}
    flags: set[str] = set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key in ("flags", "Features"):
            flags.update(value.split())
        elif key and key not in fields:
            fields[key] = value.strip()
    return fields, flags


def cpu_flags(path: Path | None = None) -> set[str]:
    """Every CPU flag (x86 ``flags``, Arm ``Features``) of ``/proc/cpuinfo``."""
    return _first_cpu(path)[1]


def cpu_model(path: Path | None = None) -> str:
    """The CPU as ``lscpu`` names it, with its family and model numbers where the name alone does
    not tell the generation (a cloud VM's "AMD EPYC" is a Zen 2, 3 or 4: family 23 / 25, model).

    e.g. ``AMD EPYC (family 25, model 17)``, ``Intel(R) Xeon(R) Platinum 8480+ (family 6, model
    143)``; off Linux, ``platform.processor()`` or the machine type."""
    fields, _ = _first_cpu(path)
    name = fields.get("model name") or fields.get("Model") or platform.processor() or platform.machine() or "unknown"
    numbers = [f"{k.split()[-1]} {fields[k]}" for k in ("cpu family", "model") if fields.get(k)]
    return f"{name} ({', '.join(numbers)})" if numbers else name


def simd_flags(path: Path | None = None) -> str:
    """The :data:`SIMD_FLAGS` this CPU has, space-separated (``avx2 avx512f avx512_bf16``)."""
    have = cpu_flags(path)
    return " ".join(f for f in SIMD_FLAGS if f in have)


def device_name(device: torch.device) -> str:
    """The name of ``device``: the GPU's (``NVIDIA H200``) or :func:`cpu_model`."""
    if device.type == "cuda":
        import torch

        return torch.cuda.get_device_name(device)
    return cpu_model()


def device_label(device: torch.device, threads: int, world: int = 1) -> str:
    """What ``log.csv`` records of where an epoch ran, e.g. ``cpu: AMD EPYC (family 25, model
    17), 1 thread`` or ``cuda: 8 × NVIDIA H200`` (``world`` processes, one device each)."""
    if device.type == "cuda":
        return f"cuda: {world} × {device_name(device)}" if world > 1 else f"cuda: {device_name(device)}"
    threads_text = f"{threads} thread" + ("s" if threads != 1 else "")
    procs = f", {world} processes" if world > 1 else ""
    return f"{device.type}: {device_name(device)}, {threads_text}{procs}"
