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
