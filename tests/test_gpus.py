"""GPU claiming for jobs that share a machine (no GPU needed: claims are file locks)."""

import os
import subprocess
import sys
import textwrap

import pytest

from hgbench.gpus import GpuClaimError, claim_gpus


@pytest.fixture(autouse=True)
def no_preset(monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)


def test_two_jobs_get_disjoint_gpus_and_release_them(tmp_path):
    with claim_gpus(2, total=4, lock_dir=tmp_path) as first:
        assert os.environ.pop("CUDA_VISIBLE_DEVICES") == ",".join(map(str, first))  # another job: no env
        with claim_gpus(2, total=4, lock_dir=tmp_path) as second:
            assert set(first).isdisjoint(second) and len(second) == 2
        assert all(isinstance(i, int) for i in first + second)
        with pytest.raises(GpuClaimError, match="free GPU"):
            with claim_gpus(3, total=4, lock_dir=tmp_path, wait_s=0, poll_s=0):
                pass
    assert "CUDA_VISIBLE_DEVICES" not in os.environ
    with claim_gpus(4, total=4, lock_dir=tmp_path) as all_four:
        assert all_four == [0, 1, 2, 3]


def test_a_killed_job_does_not_keep_its_gpu(tmp_path):
    # A process that claims GPU 0 and is killed: its flock dies with it.
    code = textwrap.dedent(f"""
        import os, signal
        from hgbench.gpus import claim_gpus
        with claim_gpus(1, total=1, lock_dir={str(tmp_path)!r}):
            print("held", flush=True)
            os.kill(os.getpid(), signal.SIGKILL)
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == -9 and "held" in proc.stdout
    with claim_gpus(1, total=1, lock_dir=tmp_path, wait_s=0) as ids:
        assert ids == [0]


def test_scheduler_choice_is_kept(tmp_path, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "5,7")
    with claim_gpus(2, total=8, lock_dir=tmp_path) as ids:
        assert ids == ["5", "7"] and os.environ["CUDA_VISIBLE_DEVICES"] == "5,7"
    with pytest.raises(GpuClaimError, match="--gpus=3"):
        with claim_gpus(3, total=8, lock_dir=tmp_path):
            pass


def test_impossible_requests_fail_at_once(tmp_path):
    with pytest.raises(GpuClaimError, match="this machine has 2"):
        with claim_gpus(4, total=2, lock_dir=tmp_path):
            pass
    with claim_gpus(0, total=0, lock_dir=tmp_path) as ids:
        assert ids == [] and "CUDA_VISIBLE_DEVICES" not in os.environ


def test_gpus_are_counted_from_the_driver_folder_without_cuda(tmp_path):
    from hgbench.gpus import physical_gpu_count

    for pci in ("0000:17:00.0", "0000:65:00.0", "0000:ca:00.0"):
        (tmp_path / pci).mkdir()
    assert physical_gpu_count(tmp_path) == 3


def test_device_auto_claims_a_gpu_before_cuda_initialises(tmp_path, monkeypatch):
    """Issue 19: the claim must narrow CUDA_VISIBLE_DEVICES before anything asks torch about CUDA,
    or every parallel job on a multi-GPU machine would land on GPU 0."""
    import torch

    from hgbench import cli, gpus

    def cuda_touched(*_args, **_kw):
        raise AssertionError("torch.cuda was asked before the GPU claim")

    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", cuda_touched)
    monkeypatch.setattr(torch.cuda, "device_count", cuda_touched)
    monkeypatch.setattr(gpus, "physical_gpu_count", lambda: 4)
    monkeypatch.setattr(gpus, "DEFAULT_LOCK_DIR", tmp_path)
    import os

    other_job = gpus._try_lock(tmp_path / "gpu0.lock")  # another job holds GPU 0
    with cli._gpu_claim("auto", 2) as ids:
        assert ids == [1, 2] and os.environ["CUDA_VISIBLE_DEVICES"] == "1,2"
    other_job.close()
    with cli._gpu_claim("cpu", 1) as none:
        assert none == []
    monkeypatch.setattr(gpus, "physical_gpu_count", lambda: 0)
    with cli._gpu_claim("auto", 1) as none:  # no NVIDIA driver: CPU, nothing claimed
        assert none == []
