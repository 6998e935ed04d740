"""No silent slow path: bf16 on a CPU without bf16 instructions (issue 20)."""

import json

import pytest
import torch

from conftest import ROOT, run
from hgbench import machine, precision

CPU = torch.device("cpu")


@pytest.mark.parametrize(
    "flags,arch,native",
    [
        ("fpu sse2 avx2 avx512f avx512_bf16 avx512_vnni", "x86_64", True),  # Zen 4, Sapphire Rapids
        ("fpu sse2 avx2 amx_bf16 amx_tile", "x86_64", True),
        ("fpu sse2 avx2 fma sha_ni", "x86_64", False),  # Zen 2 / Zen 3
        ("fp asimd evtstrm aes bf16 i8mm", "aarch64", True),  # Arm with FEAT_BF16
        ("fp asimd evtstrm aes", "aarch64", False),
    ],
)
def test_native_bf16_is_read_from_the_cpu_flags(tmp_path, monkeypatch, flags, arch, native):
    key = "Features" if arch == "aarch64" else "flags"
    info = tmp_path / "cpuinfo"
    info.write_text(f"processor\t: 0\n{key}\t\t: {flags}\n\nprocessor\t: 1\n{key}\t\t: {flags}\n")
    monkeypatch.setattr(machine, "CPUINFO", info)
    monkeypatch.setattr(precision.platform, "machine", lambda: arch)
    monkeypatch.delenv(precision.CPU_BF16_ENV, raising=False)
    assert precision.cpu_has_native_bf16() is native
    monkeypatch.setenv(precision.CPU_BF16_ENV, "emulated" if native else "native")
    assert precision.cpu_has_native_bf16() is (not native)


def test_training_refuses_emulated_bf16_with_the_fix(monkeypatch):
    monkeypatch.setenv(precision.CPU_BF16_ENV, "emulated")
    with pytest.raises(ValueError, match="train.precision: bf16.*set train.precision: fp32"):
        precision.check_training_precision("bf16", CPU)
    precision.check_training_precision("fp32", CPU)
    monkeypatch.setenv(precision.CPU_BF16_ENV, "native")
    precision.check_training_precision("bf16", CPU)


def test_train_cli_refuses_bf16_in_one_line_and_writes_nothing(tmp_path, monkeypatch):
    profile = tmp_path / "bf16.yaml"
    profile.write_text((ROOT / "params/smoke.yaml").read_text().replace("precision: fp32", "precision: bf16"))
    monkeypatch.setenv(precision.CPU_BF16_ENV, "emulated")
    data = tmp_path / "data"
    data.mkdir()
    out = tmp_path / "run"
    proc = run(
        [
            "hgbench",
            "train",
            "--params",
            str(profile),
            "--dataset",
            "smoke",
            "--variant",
            "hg1x2",
            "--seed",
            "0",
            "--data",
            str(data),
            "--out",
            str(out),
            "--device",
            "cpu",
        ],
        ROOT,
        check=False,
    )
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "train.precision: bf16" in lines[0] and "fp32" in lines[0]
    assert not out.exists() or not any(out.iterdir())


def test_bench_measures_fp32_instead_of_emulated_bf16_and_records_it(tmp_path, monkeypatch):
    monkeypatch.setenv(precision.CPU_BF16_ENV, "emulated")
    proc = run(
        [
            "hgbench",
            "bench",
            "train",
            "--params",
            "params/smoke.yaml",
            "--variant",
            "hg1x2",
            "--batch",
            "2",
            "--steps",
            "1",
            "--warmup",
            "0",
            "--threads",
            "1",
            "--device",
            "cpu",
            "--precision",
            "bf16",
            "--json",
            "--results",
            str(tmp_path / "results"),
        ],
        ROOT,
    )
    record = json.loads(proc.stdout.strip().splitlines()[-1])
    assert record["precision"] == "fp32" and record["precision_requested"] == "bf16"
    assert "measuring fp32 instead" in proc.stderr
    assert [f.name for f in (tmp_path / "results").iterdir()] == ["train_cpu_fp32_b2_t1.csv"]
