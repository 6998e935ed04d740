"""Whether bf16 runs natively on a device, so that ``precision: bf16`` is never a silent slow path.

On CPUs without bf16 instructions (x86 without AVX512-BF16 or AMX-BF16, e.g. AMD Zen 2/3 and
older Intel; Arm without the BF16 extension) PyTorch computes bf16 convolutions and matrix
products in a scalar fallback: a 2048² product took minutes on a Zen 3 where fp32 takes a tenth
of a second (bench/results/README.md). Training refuses bf16 there with the fix (precision
decides the weights, so it is not changed behind the user's back); ``hgbench bench`` measures
fp32 instead and records that it did.
"""

from __future__ import annotations

import os
import platform

import torch

from .machine import cpu_flags

CPU_BF16_ENV = "HGBENCH_CPU_BF16"
"""``native`` or ``emulated`` overrides the CPU flag check (tests, and CPUs whose flags lie)."""

_X86_FLAGS = ("avx512_bf16", "amx_bf16")
_ARM_FEATURES = ("bf16",)


def cpu_has_native_bf16() -> bool:
    """True when this CPU has bf16 arithmetic instructions (read from /proc/cpuinfo)."""
    forced = os.environ.get(CPU_BF16_ENV)
    if forced in ("native", "emulated"):
        return forced == "native"
    words = cpu_flags()
    machine = platform.machine().lower()
    wanted = _ARM_FEATURES if machine in ("aarch64", "arm64") else _X86_FLAGS
    return any(w in words for w in wanted)


def native_bf16(device: torch.device) -> bool:
    """True when bf16 runs at hardware speed on ``device`` (CUDA: the GPU supports it)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        return cpu_has_native_bf16()
    return True  # other backends: trust the user


def slow_bf16_message(device: torch.device) -> str:
    return (
        f"this {device.type.upper()} has no native bf16 (no {' / '.join(_X86_FLAGS)} CPU flag), so PyTorch "
        "would run bf16 in a scalar fallback, many times slower than fp32"
    )


def check_training_precision(precision: str, device: torch.device) -> None:
    """Refuse ``precision: bf16`` where bf16 is emulated: a ValueError naming the key and the fix."""
    if precision == "bf16" and not native_bf16(device):
        raise ValueError(
            f"train.precision: bf16: {slow_bf16_message(device)}; set train.precision: fp32 in the "
            f"profile, or train on a GPU or a CPU with native bf16 (set {CPU_BF16_ENV}=native to "
            f"run the slow path anyway)"
        )


def bench_precision(precision: str, device: torch.device, log=print) -> str:
    """The precision ``hgbench bench`` runs: fp32 instead of an emulated bf16, said in one line."""
    if precision == "bf16" and not native_bf16(device):
        log(f"hgbench bench: {slow_bf16_message(device)}; measuring fp32 instead (the record says fp32)")
        return "fp32"
    return precision


def autocast(device: torch.device, precision: str):
    """bf16 autocast for ``precision == "bf16"`` (convolutions run in bf16, the loss in fp32); a
    no-op context for ``fp32``."""
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=precision == "bf16")
