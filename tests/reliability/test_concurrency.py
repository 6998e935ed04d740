"""Item 5 — concurrency: two runs in one working directory fail fast on a lock and corrupt nothing;
two training jobs never write the same checkpoint.

Two layers: Snakemake and DVC lock the working directory (a second ``snakemake``/``dvc repro``
refuses to start), and every ``hgbench`` stage that writes a shared output holds that output's
lock (:func:`hgbench.iofiles.output_lock`), which also covers two hand-started commands and two
Snakemake runs with different targets. A running first process is frozen with SIGSTOP (it keeps
its locks) while the second one starts, so that the overlap is certain, not a race.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys

import pytest

from conftest import tool_env
from hgbench.cli import main
from hgbench.config import load_params
from hgbench.data import synthetic
from hgbench.data.schema import read_split_arrays
from hgbench.iofiles import OutputLockedError, lock_file, output_lock

from .conftest import (
    SMOKE_FILE,
    TRAIN_OVERRIDES,
    assert_bit_identical,
    assert_clean_error,
    hgbench,
    smoke_raw_params,
    start_hgbench,
    started,
    wait_for,
    weights,
    write_params,
)
from .test_kills import hold_at_image, train_args


@contextlib.contextmanager
def frozen(proc: subprocess.Popen):
    """SIGSTOP ``proc`` for the block (it keeps its locks), then SIGCONT; kill it if the block fails."""
    os.kill(proc.pid, signal.SIGSTOP)
    try:
        yield proc
    except BaseException:
        os.kill(proc.pid, signal.SIGKILL)
        raise
    finally:
        os.kill(proc.pid, signal.SIGCONT)


def test_output_lock_refuses_a_second_holder_and_dies_with_its_holder(tmp_path):
    out = tmp_path / "models" / "s0"
    with output_lock(out, "hgbench train"):
        with pytest.raises(OutputLockedError, match=rf"{out} is being written by hgbench train \(pid {os.getpid()}\)"):
            with output_lock(out, "hgbench train"):
                pass
    assert not lock_file(out).exists()
    # A holder killed with SIGKILL cannot clean up, but the kernel drops its lock with it.
    code = (
        f"import sys, time; sys.path.insert(0, {str(tool_env()['PYTHONPATH'].split(os.pathsep)[0])!r})\n"
        f"from hgbench.iofiles import output_lock\n"
        f"with output_lock({str(out)!r}, 'holder'):\n    print('locked', flush=True); time.sleep(60)\n"
    )
    holder = started(subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True))
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(OutputLockedError, match=rf"holder \(pid {holder.pid}\)"):
            with output_lock(out, "second"):
                pass
    finally:
        holder.kill()
        holder.wait()
    assert lock_file(out).exists()  # left behind by the kill ...
    with output_lock(out, "third"):  # ... and no obstacle
        pass
    assert not lock_file(out).exists()


def test_two_training_jobs_never_write_the_same_checkpoint(smoke_data, reference_run, tmp_path, capsys):
    params = write_params(tmp_path / "params.yaml", **TRAIN_OVERRIDES)
    out = tmp_path / "run"
    first = start_hgbench(*train_args(params, smoke_data, out))
    wait_for(
        lambda: lock_file(out).exists() and "pid" in lock_file(out).read_text(), first, what="the first job's lock"
    )
    with frozen(first):
        status = main([str(a) for a in train_args(params, smoke_data, out)])  # the second job, same --out
        assert_clean_error(
            status,
            capsys.readouterr().err,
            "train",
            str(out),
            f"hgbench train (pid {first.pid})",
            "wait for that run to finish or stop it",
        )
    stdout, stderr = first.communicate(timeout=300)
    assert first.returncode == 0, stderr
    assert "resuming" not in stdout  # the first job ran undisturbed from the start
    assert_bit_identical(weights(out / "model.pt"), weights(reference_run / "model.pt"))
    assert sorted(p.name for p in out.iterdir()) == ["last.pt", "log.csv", "model.pt"]


def test_two_prepares_of_one_folder_fail_fast_and_corrupt_nothing(smoke_raw, smoke_data, tmp_path):
    raw = tmp_path / "raw"
    shutil.copytree(smoke_raw, raw)
    names = read_split_arrays(smoke_data / "train.h5", ["image_name"])["image_name"]
    image = hold_at_image(raw, names[len(names) // 2])  # the first prepare stops mid-way, holding its lock
    out = tmp_path / "processed"
    args = ("prepare", "--params", SMOKE_FILE, "--dataset", "smoke", "--raw", raw, "--out", out)
    first = start_hgbench(*args)
    tmp = out / "train.h5.tmp"
    try:
        wait_for(lambda: tmp.is_file() and tmp.stat().st_size > 0, first, what="the first prepare writing")
        inode = os.stat(tmp).st_ino
        second = hgbench(*args, timeout=60)  # (without the lock it would block on the same FIFO)
        assert_clean_error(second.returncode, second.stderr, "prepare", str(out), f"hgbench prepare (pid {first.pid})")
        # Without the lock the second run would have deleted the first one's temporary and
        # written its own under the same name (a new inode), and the first would publish that.
        assert os.stat(tmp).st_ino == inode
        assert sorted(p.name for p in out.iterdir()) == ["train.h5.tmp"]
    finally:
        first.kill()
        first.communicate()
    (raw / "images" / names[len(names) // 2]).unlink()
    (raw / "images" / names[len(names) // 2]).write_bytes(image)
    assert hgbench(*args).returncode == 0
    for split in ("train.h5", "valid.h5"):
        assert (out / split).read_bytes() == (smoke_data / split).read_bytes()


def test_two_fetches_of_one_folder_fail_fast_and_corrupt_nothing(tmp_path, capsys):
    raw_params = smoke_raw_params()
    raw_params["datasets"]["smoke"]["synthetic"]["n_train"] = 60
    params = write_params(tmp_path / "params.yaml", raw_params)
    out = tmp_path / "raw" / "smoke"
    args = ["fetch", "--params", str(params), "--dataset", "smoke", "--out", str(out)]
    first = start_hgbench(*args)
    wait_for(
        lambda: lock_file(out).exists() and "pid" in lock_file(out).read_text(), first, what="the first fetch's lock"
    )
    with frozen(first):
        status = main(args)
        assert_clean_error(status, capsys.readouterr().err, "fetch", str(out), f"hgbench fetch (pid {first.pid})")
    _, stderr = first.communicate(timeout=300)
    assert first.returncode == 0, stderr
    assert synthetic.manifest_matches(
        out, load_params(params).datasets["smoke"].synthetic
    )  # every file present with its recorded sha256
    assert sorted(p.name for p in out.parent.iterdir()) == ["smoke"]


def test_two_snakemake_runs_in_one_working_directory(project, smoke_data):
    cwd = project("smoke")
    target = ["snakemake", "data/processed/smoke/smoke/train.h5", "--cores", "1", "--configfile", "params/smoke.yaml"]
    first = started(
        subprocess.Popen(target, cwd=cwd, env=tool_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    )
    locks = cwd / ".snakemake" / "locks"
    wait_for(lambda: locks.is_dir() and any(locks.iterdir()), first, what="Snakemake's lock")
    with frozen(first):
        second = subprocess.run(target, cwd=cwd, env=tool_env(), capture_output=True, text=True, timeout=300)
        assert second.returncode != 0
        assert "Directory cannot be locked" in second.stdout + second.stderr
    out, _ = first.communicate(timeout=300)
    assert first.returncode == 0, out
    for split in ("train.h5", "valid.h5"):  # the first run's outputs are complete and exactly right
        assert (cwd / "data/processed/smoke/smoke" / split).read_bytes() == (smoke_data / split).read_bytes()


@pytest.mark.slow
def test_two_dvc_repro_in_one_working_directory(project, smoke_data):
    cwd = project("smoke")
    subprocess.run(["git", "add", "-A"], cwd=cwd, env=tool_env(), check=True, capture_output=True)
    first = started(
        subprocess.Popen(
            ["dvc", "repro", "prepare@smoke"],
            cwd=cwd,
            env=tool_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
    )
    raw_lock = lock_file(cwd / "data" / "raw" / "smoke" / "smoke")  # held by the fetch stage DVC runs
    wait_for(
        lambda: raw_lock.exists() or (cwd / "data" / "raw" / "smoke" / "smoke").exists(),
        first,
        what="DVC's first stage",
    )
    with frozen(first):
        second = subprocess.run(
            ["dvc", "repro", "prepare@smoke"], cwd=cwd, env=tool_env(), capture_output=True, text=True, timeout=300
        )
        assert second.returncode != 0
        assert "lock" in (second.stdout + second.stderr).lower()
    out, _ = first.communicate(timeout=300)
    assert first.returncode == 0, out
    for split in ("train.h5", "valid.h5"):
        assert (cwd / "data/processed/smoke/smoke" / split).read_bytes() == (smoke_data / split).read_bytes()
