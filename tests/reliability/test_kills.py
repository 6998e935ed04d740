"""Item 1 — kills: `train`, `prepare` and `fetch` killed with SIGKILL mid-way and rerun end with the
same bytes (weights bit-identical on CPU) as an uninterrupted run, and no stage ever has a partial
file under its final name (it writes a temporary name, then renames).

SIGKILL is the fault of record: it runs no handler and no ``finally`` block, exactly like the OOM
killer, a node failure or a scheduler's hard kill.
"""

from __future__ import annotations

import ast
import os
import shutil
import signal
import threading
import time
from pathlib import Path

import pytest
import torch

from conftest import ROOT
from hgbench.checkpoint import load_checkpoint
from hgbench.config import load_params
from hgbench.data import fetch
from hgbench.data.schema import read_split_arrays
from hgbench.iofiles import lock_file
from hgbench.train import TEST_SIGNAL_ENV
from http_server import FileServer, _Handler
from realdata import write_flic_zip

from .conftest import (
    SMOKE_FILE,
    TOTAL_STEPS,
    TRAIN_OVERRIDES,
    assert_bit_identical,
    fault_rng,
    forked_main,
    hgbench,
    log_rows_without_timing,
    smoke_raw_params,
    start_hgbench,
    tree_bytes,
    wait_for,
    weights,
    write_params,
)

KILL_POINTS = 5
"""SIGKILLs injected into one training run (issue 8 asks for at least 5)."""


def train_args(params: Path, data: Path, out: Path) -> tuple:
    return (
        "train",
        "--params",
        params,
        "--dataset",
        "smoke",
        "--variant",
        "hg2x1",
        "--seed",
        0,
        "--data",
        data,
        "--out",
        out,
    )


def last_saved_before(step: int, every: int = TRAIN_OVERRIDES["checkpoint_every"], per_epoch: int = 3) -> int:
    """Iteration of the newest ``last.pt`` when the process dies right after step ``step``.

    ``last.pt`` is written after every ``every``-th step and at every epoch end, but the kill
    hook fires before the write of step ``step`` itself.
    """
    return max([i for i in range(1, step) if i % every == 0 or i % per_epoch == 0], default=0)


# ---------------------------------------------------------------------------------------------
# train
# ---------------------------------------------------------------------------------------------


def test_train_sigkilled_at_random_steps_then_resumed_is_bit_identical(smoke_data, reference_run, tmp_path):
    steps = sorted(fault_rng("train-sigkill").sample(range(1, TOTAL_STEPS), KILL_POINTS))
    params = write_params(tmp_path / "params.yaml", **TRAIN_OVERRIDES)
    out = tmp_path / "run"
    config = torch.load(reference_run / "last.pt", weights_only=True)["model_config"]
    for step in steps:
        status = forked_main(train_args(params, smoke_data, out), env={TEST_SIGNAL_ENV: f"{step}:SIGKILL"})
        assert status == -signal.SIGKILL, (step, status)
        # Nothing partial under a final name: model.pt not yet, last.pt complete (its digest checks)
        # and at the step expected, log.csv a whole file, no temporary left (the kill was between writes).
        assert not (out / "model.pt").exists()
        saved = last_saved_before(step)
        if saved:
            state = load_checkpoint(out / "last.pt", seed=0, model_config=config)
            assert state["iteration"] == saved, (step, state["iteration"])
        else:
            assert not (out / "last.pt").exists()
        assert {p.name for p in out.iterdir()} <= {"last.pt", "log.csv"}
        if (out / "log.csv").exists():
            assert len(log_rows_without_timing(out / "log.csv")) == 1 + saved // 3  # header + finished epochs
    proc = hgbench(*train_args(params, smoke_data, out))  # the last rerun is a new `hgbench train` process
    assert proc.returncode == 0, proc.stderr
    assert "resuming" in proc.stdout
    assert_bit_identical(weights(out / "model.pt"), weights(reference_run / "model.pt"))
    assert log_rows_without_timing(out / "log.csv") == log_rows_without_timing(reference_run / "log.csv")
    assert sorted(p.name for p in out.iterdir()) == ["last.pt", "log.csv", "model.pt"]
    assert not lock_file(out).exists()  # the killed runs' lock file is gone once a run finishes


@pytest.mark.slow
def test_train_sigkilled_at_random_times_even_while_writing_last_pt(smoke_data, reference_run, tmp_path):
    """Kills at random points of a step (not only between steps), with last.pt written after every
    step, so that some kills land while it is being written.

    Each run is killed a random time (0–30 ms) after its k-th write of last.pt, k random: the
    writes are watched (a rename gives last.pt a new inode), so no absolute timing is assumed.
    """
    params = write_params(tmp_path / "params.yaml", **{**TRAIN_OVERRIDES, "checkpoint_every": 1})
    out = tmp_path / "run"
    last = out / "last.pt"
    rng = fault_rng("train-random-time")

    def inode():
        try:
            return last.stat().st_ino
        except FileNotFoundError:
            return None

    kills = 0
    while kills < 6:
        done = torch.load(last, weights_only=True)["iteration"] if last.exists() else 0
        if TOTAL_STEPS - done < 3:
            break
        target = rng.randint(1, min(3, TOTAL_STEPS - done - 2))  # leave steps after the kill; ≥ 3 kills in all
        proc = start_hgbench(*train_args(params, smoke_data, out))
        seen, writes = inode(), 0
        while writes < target and proc.poll() is None:
            now = inode()
            if now != seen:
                seen, writes = now, writes + 1
            time.sleep(0.002)
        time.sleep(rng.uniform(0.0, 0.03))
        if proc.poll() is not None:
            break  # the run ended first (it cannot be killed any more); the rerun below checks it
        proc.kill()
        proc.wait()
        kills += 1
        for p in out.iterdir():  # only complete files under final names; temporaries may remain
            assert p.name in ("last.pt", "log.csv") or p.name.endswith(".tmp"), p.name
        torch.load(last, weights_only=True)  # complete
    proc = hgbench(*train_args(params, smoke_data, out))
    assert proc.returncode == 0, proc.stderr
    assert kills >= 3, kills
    assert_bit_identical(weights(out / "model.pt"), weights(reference_run / "model.pt"))
    assert sorted(p.name for p in out.iterdir()) == ["last.pt", "log.csv", "model.pt"]  # stale temporaries removed


# ---------------------------------------------------------------------------------------------
# prepare
# ---------------------------------------------------------------------------------------------


def hold_at_image(raw: Path, name: str) -> bytes:
    """Replace ``raw/images/name`` by a FIFO: prepare blocks when it opens it (no writer ever
    comes), i.e. mid-way through the split, deterministically. Returns the image's bytes."""
    path = raw / "images" / name
    data = path.read_bytes()
    path.unlink()
    os.mkfifo(path)
    return data


def test_prepare_sigkilled_midway_then_rerun_gives_identical_files(smoke_raw, smoke_data, tmp_path):
    raw = tmp_path / "raw"
    shutil.copytree(smoke_raw, raw)
    names = read_split_arrays(smoke_data / "train.h5", ["image_name"])["image_name"]
    victim = names[len(names) // 2]  # the middle person of train.h5
    image = hold_at_image(raw, victim)
    out = tmp_path / "processed"
    proc = start_hgbench("prepare", "--params", SMOKE_FILE, "--dataset", "smoke", "--raw", raw, "--out", out)
    tmp = out / "train.h5.tmp"
    wait_for(lambda: tmp.is_file() and tmp.stat().st_size > 0, proc, what="prepare writing train.h5.tmp")
    proc.kill()
    proc.wait()
    assert sorted(p.name for p in out.iterdir()) == ["train.h5.tmp"]  # the partial file is not under a final name
    (raw / "images" / victim).unlink()
    (raw / "images" / victim).write_bytes(image)
    rerun = hgbench("prepare", "--params", SMOKE_FILE, "--dataset", "smoke", "--raw", raw, "--out", out)
    assert rerun.returncode == 0, rerun.stderr
    assert sorted(p.name for p in out.iterdir()) == ["train.h5", "valid.h5"]  # the killed run's .tmp is gone
    for split in ("train.h5", "valid.h5"):
        assert (out / split).read_bytes() == (smoke_data / split).read_bytes(), split
    assert not lock_file(out).exists()


# ---------------------------------------------------------------------------------------------
# fetch
# ---------------------------------------------------------------------------------------------


def test_fetch_synthetic_sigkilled_midway_then_rerun_gives_identical_tree(tmp_path):
    raw_params = smoke_raw_params()
    raw_params["datasets"]["smoke"]["synthetic"]["n_train"] = 120  # long enough to be caught mid-way
    params = write_params(tmp_path / "params.yaml", raw_params)
    out = tmp_path / "data" / "raw" / "smoke"
    args = ("fetch", "--params", params, "--dataset", "smoke", "--out", out)
    proc = start_hgbench(*args)

    def generating() -> bool:
        return any(len(list(d.glob("images/*.jpg"))) >= 10 for d in out.parent.glob(".smoke.tmp-*"))

    wait_for(generating, proc, what="fetch generating images")
    proc.kill()
    proc.wait()
    assert not out.exists()  # the half-generated dataset never had the final name
    assert list(out.parent.glob(".smoke.tmp-*"))  # it was left under a temporary one
    rerun = hgbench(*args)
    assert rerun.returncode == 0, rerun.stderr
    assert sorted(p.name for p in out.parent.iterdir()) == ["smoke"]  # stale temporaries and lock removed
    reference = tmp_path / "reference"
    fetch.fetch_synthetic(reference, load_params(params).datasets["smoke"].synthetic)
    assert tree_bytes(out) == tree_bytes(reference)


class _StallingHandler(_Handler):
    """tests/http_server.py's handler, plus ``srv.stall[name] = n``: the next request for ``name``
    gets the full Content-Length but only ``n`` bytes, then the connection hangs until
    ``srv.release`` is set (a download that is still in progress when the client is killed)."""

    def do_GET(self) -> None:
        srv = self.server.owner
        name = self.path.lstrip("/")
        with srv.lock:
            stall_at = srv.stall.pop(name, None)
        if stall_at is None:
            return super().do_GET()
        data = (srv.root / name).read_bytes()
        srv.requests.append((name, self.headers.get("Range"), "stalled"))
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data[:stall_at])
        self.wfile.flush()
        srv.release.wait(60)
        self.close_connection = True


def stalling_server(root: Path) -> FileServer:
    srv = FileServer(root)
    srv.stall, srv.release = {}, threading.Event()
    srv._httpd.RequestHandlerClass = _StallingHandler
    return srv


@pytest.fixture(scope="module")
def flic_archive(tmp_path_factory) -> Path:
    """A FLIC.zip in the official layout (the real test records) with 2.5 MiB of padding, so that
    a download can be caught with more than one 1 MiB block on disk."""
    root = tmp_path_factory.mktemp("flic-archive")
    return write_flic_zip(root / "FLIC.zip", padding=fault_rng("flic-padding").randbytes(5 << 19))


def test_fetch_download_sigkilled_midway_then_rerun_resumes_to_identical_tree(flic_archive, tmp_path, monkeypatch):
    import hashlib

    sha = hashlib.sha256(flic_archive.read_bytes()).hexdigest()
    out = tmp_path / "raw" / "flic"
    args = ("fetch", "--params", ROOT / "params" / "paper.yaml", "--dataset", "flic", "--out", out, "--backoff", "0.01")
    with stalling_server(flic_archive.parent) as srv:
        env = {"HGBENCH_FLIC_URL": srv.base, "HGBENCH_FLIC_SHA256": sha}  # a user accepting their own copy
        srv.stall["FLIC.zip"] = 3 << 19  # 1.5 MiB, then the connection hangs
        proc = start_hgbench(*args, env=env)
        part = out / "downloads" / "FLIC.zip.part"
        wait_for(lambda: part.is_file() and part.stat().st_size >= 1 << 20, proc, what="1 MiB downloaded")
        proc.kill()
        proc.wait()
        srv.release.set()
        # Killed mid-download: only the .part; no archive, no extracted tree, no manifest.
        assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*")) == ["downloads", "downloads/FLIC.zip.part"]
        # What a kill during extraction leaves (simulated: an extraction cannot be paused from
        # outside the way a download can): the rerun must remove it, not ship it.
        (out / ".extract-FLIC.zip-x1" / "FLIC").mkdir(parents=True)
        (out / ".extract-FLIC.zip-x1" / "FLIC" / "junk.jpg").write_bytes(b"partial")
        rerun = hgbench(*args, env=env)
        assert rerun.returncode == 0, rerun.stderr
        assert ("FLIC.zip", "bytes=1048576-", 206) in srv.requests  # resumed after the 1 MiB on disk, not restarted
        reference = tmp_path / "reference" / "flic"
        monkeypatch.setenv("HGBENCH_FLIC_URL", srv.base)
        monkeypatch.setenv("HGBENCH_FLIC_SHA256", sha)
        fetch.fetch_real("flic", reference, progress=False)
    assert tree_bytes(out) == tree_bytes(reference)
    assert not lock_file(out).exists()


# ---------------------------------------------------------------------------------------------
# every writer: a temporary name, then a rename
# ---------------------------------------------------------------------------------------------

SRC = ROOT / "src" / "hgbench"
TEMPORARY_NAMES = {"tmp", "part"}
"""Names the code gives paths that are not final: ``atomic_path``'s ``tmp`` and the download's ``part``."""
ALLOWED = {
    ("data/synthetic.py", "generate"): "writes inside the temporary folder that fetch_synthetic renames",
    ("data/synthetic.py", "write"): "generate's helper: the same temporary folder",
    ("infer.py", "flush"): "writes into a mkdtemp staging folder; _publish renames each file into place",
    ("infer.py", "run_infer"): "holds flush (the same staging folder)",
    ("checkpoint.py", "save_state"): "torch.save into memory (a stable archive name), then tmp.write_bytes",
    ("iofiles.py", "output_lock"): "a lock file, not an output",
    ("iofiles.py", "_open_lock"): "output_lock's lock file, not an output",
    ("gpus.py", "_try_lock"): "a lock file, not an output",
    ("export.py", "_stdout_silenced"): "opens /dev/null to silence the ONNX exporter's C++ output, no file",
}


def _write_target(call: ast.Call) -> ast.expr | None:
    """The path a call writes to, for the write calls the package uses (None: not a write)."""
    f = call.func
    name = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""
    args = call.args
    mode = args[1] if len(args) > 1 else next((k.value for k in call.keywords if k.arg == "mode"), None)
    writes = isinstance(mode, ast.Constant) and isinstance(mode.value, str) and set(mode.value) & set("wax+")
    if name == "File" and args and writes:  # h5py.File(path, "w")
        return args[0]
    if name == "open" and args and writes:  # open(path, "w")
        return args[0]
    if name == "save" and len(args) > 1 and isinstance(f, ast.Attribute) and ast.unparse(f.value) == "torch":
        return args[1]  # torch.save(obj, path)
    if name in ("to_csv", "savefig") and args:  # frame.to_csv(path), fig.savefig(path)
        return args[0]
    if name in ("write_text", "write_bytes") and isinstance(f, ast.Attribute):  # path.write_text(...)
        return f.value
    return None


def test_every_writer_writes_a_temporary_name_then_renames():
    """Static: each write call of the package targets ``tmp`` (from ``atomic_path``) or ``part``.

    A writer that opened its final path directly (``h5py.File(out, "w")``) would leave a partial
    file under the final name when killed, which a later stage (or Snakemake's/DVC's
    up-to-date check) would trust.
    """
    offenders, seen = [], 0
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC).as_posix()
        tree = ast.parse(path.read_text())
        for fn in [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]:
            for call in [n for n in ast.walk(fn) if isinstance(n, ast.Call)]:
                target = _write_target(call)
                if target is None:
                    continue
                seen += 1
                if isinstance(target, ast.Name) and target.id in TEMPORARY_NAMES:
                    continue
                if (rel, fn.name) in ALLOWED:
                    continue
                offenders.append(f"{rel}:{call.lineno} in {fn.name}(): writes {ast.unparse(target)}")
    assert seen >= 12, "the scan found too few write calls; has the code moved?"
    assert not offenders, "\n".join(offenders)
