"""Which machine a figure was measured on (issue 20: every speed figure names its CPU)."""

import torch

from hgbench import machine

# /proc/cpuinfo excerpts in the kernel's format (two processors each; only the fields read here).
ZEN2 = (
    "processor\t: {n}\nvendor_id\t: AuthenticAMD\ncpu family\t: 23\nmodel\t\t: 49\n"
    "model name\t: AMD EPYC 7B12\nflags\t\t: fpu sse2 avx avx2 fma sha_ni\n\n"
)
ZEN4_VM = (
    "processor\t: {n}\nvendor_id\t: AuthenticAMD\ncpu family\t: 25\nmodel\t\t: 17\n"
    "model name\t: AMD EPYC\nflags\t\t: fpu sse2 avx2 avx512f avx512_bf16 avx512_vnni\n\n"
)
ARM = "processor\t: {n}\nBogoMIPS\t: 243.75\nFeatures\t: fp asimd evtstrm aes bf16 sve\nCPU part\t: 0xd40\n\n"


def write(tmp_path, template):
    path = tmp_path / "cpuinfo"
    path.write_text(template.format(n=0) + template.format(n=1))
    return path


def test_the_cpu_is_named_with_family_and_model_numbers(tmp_path):
    # A cloud VM's "AMD EPYC" alone does not tell a Zen 2 from a Zen 4; the numbers do.
    assert machine.cpu_model(write(tmp_path, ZEN2)) == "AMD EPYC 7B12 (family 23, model 49)"
    assert machine.cpu_model(write(tmp_path, ZEN4_VM)) == "AMD EPYC (family 25, model 17)"


def test_the_simd_flags_that_choose_kernels(tmp_path):
    assert machine.simd_flags(write(tmp_path, ZEN2)) == "avx2"
    assert machine.simd_flags(write(tmp_path, ZEN4_VM)) == "avx2 avx512f avx512_bf16"
    assert machine.simd_flags(write(tmp_path, ARM)) == "asimd sve bf16"
    assert "avx512_vnni" in machine.cpu_flags(write(tmp_path, ZEN4_VM))


def test_without_a_model_name_or_a_readable_file_the_platform_names_it(tmp_path, monkeypatch):
    monkeypatch.setattr(machine.platform, "processor", lambda: "")
    monkeypatch.setattr(machine.platform, "machine", lambda: "aarch64")
    assert machine.cpu_model(write(tmp_path, ARM)) == "aarch64"
    assert machine.cpu_model(tmp_path / "absent") == "aarch64" and machine.cpu_flags(tmp_path / "absent") == set()


def test_device_label_of_a_log_row(tmp_path, monkeypatch):
    monkeypatch.setattr(machine, "CPUINFO", write(tmp_path, ZEN2))
    cpu = torch.device("cpu")
    assert machine.device_label(cpu, 1) == "cpu: AMD EPYC 7B12 (family 23, model 49), 1 thread"
    assert machine.device_label(cpu, 2, world=2) == "cpu: AMD EPYC 7B12 (family 23, model 49), 2 threads, 2 processes"
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "NVIDIA H200")
    assert machine.device_label(torch.device("cuda", 0), 1) == "cuda: NVIDIA H200"
    assert machine.device_label(torch.device("cuda", 0), 1, world=8) == "cuda: 8 × NVIDIA H200"
