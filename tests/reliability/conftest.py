"""Shared fixtures and helpers of the reliability suite (docs/reliability.md).

Everything runs on the tiny ``params/smoke.yaml`` profile: a synthetic dataset of 24 + 8 people,
a 2-stack model with 16 features, one CPU thread. Random fault points come from
:func:`fault_rng`, seeded by ``HGBENCH_FAULT_SEED`` (default 8), so a failure can be replayed and
other seeds can be tried: ``HGBENCH_FAULT_SEED=123 pytest tests/reliability``.
"""

from __future__ import annotations

import copy
import dataclasses
import os
import random
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch
import yaml

from conftest import ROOT, tool_env
from hgbench.config import load_params
from hgbench.data.fetch import fetch_synthetic
from hgbench.data.prepare import prepare_dataset
from hgbench.train import train

SMOKE_FILE = ROOT / "params" / "smoke.yaml"
SMOKE = load_params(SMOKE_FILE)
DATASET = SMOKE.datasets["smoke"]
VARIANT = SMOKE.variants["hg2x1"]
FAULT_SEED = int(os.environ.get("HGBENCH_FAULT_SEED", "8"))

# Training faults: 24 people at batch 8 = 3 steps per epoch; 4 epochs = 12 steps. Every source of
# randomness is on (rotation, scale, flip, colour jitter) and the plateau scheduler has state, so
# a resume that lost any of it would not end bit-identical.
TRAIN_OVERRIDES = {
    "epochs": 4,
    "color_jitter": 0.2,
    "lr_schedule": "plateau",
    "plateau_patience": 1,
    "lr": 1e-3,
    "checkpoint_every": 2,
}
RESUME_CFG = dataclasses.replace(SMOKE.train, **TRAIN_OVERRIDES)
TOTAL_STEPS = 12


def fault_rng(name: str) -> random.Random:
    """A reproducible random source for one test's fault points (seed ``HGBENCH_FAULT_SEED``)."""
    return random.Random(f"{FAULT_SEED}:{name}")


# ---------------------------------------------------------------------------------------------
# processes
# ---------------------------------------------------------------------------------------------


def hgbench(*args, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run ``hgbench ARGS`` as the user would (a new process, the venv's entry point)."""
    return subprocess.run(
        ["hgbench", *map(str, args)],
        cwd=ROOT,
        env={**tool_env(), **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


_STARTED: list[subprocess.Popen] = []


def started(proc: subprocess.Popen) -> subprocess.Popen:
    """Register a background process: it is killed at the end of the test if still running
    (a failed assertion must not leave, say, a prepare blocked on a FIFO behind)."""
    _STARTED.append(proc)
    return proc


@pytest.fixture(autouse=True)
def _reap_background_processes():
    yield
    while _STARTED:
        proc = _STARTED.pop()
        if proc.poll() is None:
            proc.kill()  # SIGKILL also ends a process stopped with SIGSTOP
            proc.communicate()


def start_hgbench(*args, env: dict | None = None, cwd: Path = ROOT) -> subprocess.Popen:
    """Start ``hgbench ARGS`` in the background (for kills and concurrent runs)."""
    return started(
        subprocess.Popen(
            ["hgbench", *map(str, args)],
            cwd=cwd,
            env={**tool_env(), **(env or {})},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    )


def forked_main(argv: list, env: dict | None = None, timeout: float = 120) -> int:
    """Run ``hgbench ARGV`` in a forked child of this process; return its exit status, or minus
    the signal that ended it (``-9`` for SIGKILL).

    The child is a real process that a real signal kills, but it skips the ~2.5 s import of torch
    that a new ``hgbench`` process pays, which keeps fault loops fast. (Forking after torch's
    import is what DataLoader workers do.) Its output goes to /dev/null.
    """
    from hgbench.cli import main

    argv = [str(a) for a in argv]
    pid = os.fork()
    if pid == 0:  # the child: never return into pytest
        code = 99
        try:
            os.environ.update(env or {})
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)
            os.dup2(devnull, 2)
            code = main(argv)
        finally:
            os._exit(code)
    deadline = time.monotonic() + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            raise AssertionError(f"hgbench {' '.join(argv)} did not end within {timeout} s")
        time.sleep(0.01)


def wait_for(condition, proc: subprocess.Popen | None = None, timeout: float = 120, what: str = "") -> None:
    """Poll ``condition()`` every 5 ms; fail if ``proc`` ends first or ``timeout`` s pass."""
    deadline = time.monotonic() + timeout
    while not condition():
        if proc is not None and proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(f"the process ended ({proc.returncode}) before {what or condition}:\n{out}\n{err}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or condition}")
        time.sleep(0.005)


def assert_clean_error(returncode: int, stderr: str, stage: str, *needles: str) -> str:
    """The CLI failed the documented way: status 2, ``hgbench <stage>: error: ...`` naming
    every ``needle``, no Python traceback. Returns the error line."""
    assert returncode == 2, (returncode, stderr)
    assert "Traceback" not in stderr, stderr
    line = stderr.strip().splitlines()[-1] if stderr.strip() else ""
    assert line.startswith(f"hgbench {stage}: error: "), stderr
    for needle in needles:
        assert needle in stderr, (needle, stderr)
    return line


# ---------------------------------------------------------------------------------------------
# params
# ---------------------------------------------------------------------------------------------


def smoke_raw_params() -> dict:
    """``params/smoke.yaml`` as a plain dict (a fresh copy)."""
    return copy.deepcopy(yaml.safe_load(SMOKE_FILE.read_text()))


def write_params(path: Path, raw: dict | None = None, **train_overrides) -> Path:
    """Write a params file: ``raw`` (default the smoke profile) with ``train`` keys replaced."""
    raw = copy.deepcopy(raw) if raw is not None else smoke_raw_params()
    raw["train"].update(train_overrides)
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


# ---------------------------------------------------------------------------------------------
# outputs
# ---------------------------------------------------------------------------------------------


def tree_bytes(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` (relative POSIX path → content), hidden files included."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(Path(root).rglob("*")) if p.is_file()}


def weights(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)["model"]


def assert_bit_identical(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def log_rows_without_timing(path: Path) -> list[list[str]]:
    """``log.csv`` rows up to (not including) the timing columns, which differ between runs."""
    rows = path.read_text().splitlines()
    n_same = rows[0].split(",").index("images_per_s")
    return [r.split(",")[:n_same] for r in rows]


# ---------------------------------------------------------------------------------------------
# fixtures
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def smoke_raw(tmp_path_factory) -> Path:
    """The smoke dataset as ``hgbench fetch`` writes it (read-only for tests: copy before changing)."""
    raw = tmp_path_factory.mktemp("rel-raw") / "smoke"
    fetch_synthetic(raw, DATASET.synthetic)
    return raw


@pytest.fixture(scope="session")
def smoke_data(smoke_raw, tmp_path_factory) -> Path:
    """``smoke_raw`` prepared: a folder with train.h5 and valid.h5 (read-only for tests)."""
    out = tmp_path_factory.mktemp("rel-processed") / "smoke"
    prepare_dataset(smoke_raw, out, dataset="smoke", input_res=DATASET.input_res, crop_margin=DATASET.crop_margin)
    return out


def run_train(data: Path, out: Path, cfg=RESUME_CFG) -> Path:
    """Train hg2x1 seed 0 in this process (the uninterrupted reference)."""
    return train(
        dataset=DATASET,
        variant=VARIANT,
        cfg=cfg,
        seed=0,
        train_file=data / "train.h5",
        valid_file=data / "valid.h5",
        out_dir=out,
        device="cpu",
        log=lambda *_: None,
    )


@pytest.fixture(scope="session")
def reference_run(smoke_data, tmp_path_factory) -> Path:
    """The run folder (model.pt, last.pt, log.csv) of an uninterrupted 12-step training."""
    out = tmp_path_factory.mktemp("rel-reference") / "s0"
    run_train(smoke_data, out)
    return out
