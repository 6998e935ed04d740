"""A pipeline's whole life, through the real `snakemake` and `hgbench` commands on temporary
clones with the shipped files: rerun after a finished run, a params change, a speed knob, a kill,
a second profile, and logs that fill while a job runs. (DVC's side of the same life — `dvc exp`,
`dvc metrics diff`, push/pull — is in tests/test_scale_out.py.)

One finished smoke run is made once (module fixture) and copied for each scenario; a scenario
changes parameters the way a user does, by editing the profile of its own copy.
"""

from __future__ import annotations

import csv
import json
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import h5py
import pytest
import yaml

from conftest import run, tool_env

SMK = ["snakemake", "--cores", "2", "--resources", "gpu=1"]  # targets go right after "snakemake"
SMOKE = ["--configfile", "params/smoke.yaml"]
RUN = "models/smoke/smoke/hg2x1/s0"


def dry_jobs(cwd: Path, *args: str) -> dict[str, list[dict]]:
    """rule → wildcards of the jobs `snakemake -n` would run."""
    proc = run(["snakemake", "-n", *args], cwd)
    text = proc.stdout + proc.stderr
    jobs: dict[str, list[dict]] = {}
    for block in re.split(r"\n(?=\[[^\]]+\]\n)", text):  # one block per job, after its time stamp
        lines = block.strip().splitlines()
        head = next((ln for ln in lines if ln.startswith(("rule ", "localrule "))), None)
        if head is None:
            continue
        rule = head.split()[1].rstrip(":")
        wc = next((ln.split(":", 1)[1].strip() for ln in lines if ln.strip().startswith("wildcards:")), "")
        jobs.setdefault(rule, []).append(dict(kv.split("=", 1) for kv in wc.split(", ") if "=" in kv))
    if "Nothing to be done" in text:
        assert not jobs, text
    return jobs


def edit_profile(cwd: Path, change) -> Path:
    """Apply ``change(raw_dict)`` to params/smoke.yaml of this clone: the user changing a parameter
    of the profile they ran, which is the scenario. (In place, because the profile's path is part
    of every rule's params: a copy elsewhere would rerun everything.)"""
    path = cwd / "params/smoke.yaml"
    raw = yaml.safe_load(path.read_text())
    change(raw)
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


@pytest.fixture
def finished(finished_smoke) -> Path:
    """A clone after one finished `snakemake` run of the smoke profile (never changed here)."""
    return finished_smoke


@pytest.fixture
def clone(finished, tmp_path) -> Path:
    """A copy of the finished run (timestamps and Snakemake's metadata kept)."""
    dst = tmp_path / "p"
    shutil.copytree(finished, dst, symlinks=True)
    return dst


def test_forcerun_train_after_a_finished_run_rewrites_every_output_identically(clone, finished):
    proc = run([*SMK, *SMOKE, "--forcerun", "train"], clone)
    for d in ("hg1x2", "hg2x1"):
        rel = f"models/smoke/smoke/{d}/s0"
        # the same weights and the same log, rewritten from last.pt without a training step
        for name in ("log.csv", "model.pt"):
            assert (clone / rel / name).read_bytes() == (finished / rel / name).read_bytes(), (rel, name)
        log = (clone / f"logs/smoke/train/smoke/{d}/s0.log").read_text()
        assert "holds the finished run" in log and "step 1/" not in log, log
    assert (clone / "reports/smoke/index.html").is_file()
    assert "Nothing to be done" in run(["snakemake", "-n", *SMOKE], clone).stdout, proc.stdout[-2000:]


def test_a_params_change_of_one_variant_retrains_only_that_variant(clone):
    mine = edit_profile(clone, lambda raw: raw["variants"]["hg2x1"].update(supervision="last"))
    jobs = dry_jobs(clone, "--configfile", str(mine))
    assert [(j["dataset"], j["variant"]) for j in jobs["train"]] == [("smoke", "hg2x1")]
    assert "fetch" not in jobs and "prepare" not in jobs


def test_a_recipe_change_retrains_every_run(clone):
    mine = edit_profile(clone, lambda raw: raw["train"].update(lr=1e-3))
    jobs = dry_jobs(clone, "--configfile", str(mine))
    experiments = yaml.safe_load(mine.read_text())["experiments"]
    assert sorted((j["dataset"], j["variant"]) for j in jobs["train"]) == sorted(
        (e["dataset"], e["variant"]) for e in experiments
    )


def test_speed_knobs_retrain_nothing(clone):
    def faster(raw):
        raw["train"].update(threads=2, workers=1, checkpoint_every=5, devices=1, compile=False)

    mine = edit_profile(clone, faster)
    assert dry_jobs(clone, "--configfile", str(mine)) == {}
    # ...and a training run with them (a retry on other resources) resumes from last.pt instead of
    # starting over: here it holds the finished run.
    proc = run(
        [
            "hgbench",
            "train",
            "--params",
            str(mine),
            "--dataset",
            "smoke",
            "--variant",
            "hg2x1",
            "--seed",
            "0",
            "--data",
            "data/processed/smoke/smoke",
            "--out",
            RUN,
        ],
        clone,
    )
    assert "holds the finished run" in proc.stdout, proc.stdout


def test_a_job_killed_after_its_last_checkpoint_is_rerun_to_complete_outputs(clone, finished):
    # What a kill between the last last.pt write and model.pt leaves (Snakemake then removes the
    # job's partial outputs): only last.pt. (The targets are named: with the report up to date,
    # Snakemake would not look for missing intermediate files.)
    for name in ("model.pt", "log.csv"):
        (clone / RUN / name).unlink()
    targets = [f"{RUN}/model.pt", f"{RUN}/log.csv"]
    jobs = dry_jobs(clone, *targets, *SMOKE)
    assert [(j["dataset"], j["variant"]) for j in jobs.get("train", [])] == [("smoke", "hg2x1")], jobs
    run(["snakemake", *targets, *SMK[1:], *SMOKE], clone)
    for name in ("log.csv", "model.pt"):
        assert (clone / RUN / name).read_bytes() == (finished / RUN / name).read_bytes(), name


def test_a_job_killed_at_its_last_step_is_rerun_with_exit_0(clone):
    (clone / RUN / "last.pt").unlink()  # a fresh training, killed (SIGKILL) after its last step
    target = f"{RUN}/model.pt"
    env = tool_env() | {"HGBENCH_TEST_SIGNAL_AT_STEP": "3:SIGKILL"}
    proc = subprocess.run(
        ["snakemake", target, *SMK[1:], "--forcerun", "train", *SMOKE],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode != 0
    run(["snakemake", target, *SMK[1:], *SMOKE], clone)
    rows = list(csv.DictReader((clone / RUN / "log.csv").open()))
    assert [r["epoch"] for r in rows] == ["1"]


def second_profile(cwd: Path) -> Path:
    """tiny.yaml beside the clone: the user's own profile, one run of another size, same dataset name."""
    raw = yaml.safe_load((cwd / "params/smoke.yaml").read_text())
    raw["profile"] = "tiny"
    raw["description"] = "a second profile"
    raw["datasets"] = {"smoke": raw["datasets"]["smoke"]}
    raw["datasets"]["smoke"]["synthetic"].update(n_train=16, n_valid=8)
    raw["experiments"] = [{"dataset": "smoke", "variant": "hg1x2", "seed": 0}]
    path = cwd.parent / "tiny.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def test_two_profiles_one_after_the_other_never_collide(clone, finished):
    tiny = ["--configfile", str(second_profile(clone))]
    # The other profile's finished results do not stand in for this one's.
    jobs = dry_jobs(clone, *tiny)
    assert {"fetch", "prepare", "train", "report"} <= set(jobs)
    run([*SMK, *tiny], clone)

    with (
        h5py.File(clone / "data/processed/tiny/smoke/train.h5") as f,
        h5py.File(clone / "data/processed/smoke/smoke/train.h5") as g,
    ):
        assert len(f["joints_image"]) == 16 and len(g["joints_image"]) == 24
    headline = json.loads((clone / "metrics/tiny/smoke/hg1x2/s0.json").read_text())
    assert 0 <= headline["pckh@0.5"]["Mean"] <= 100 and set(headline) == {
        "pckh@0.5",
        "AUC",
        "ablation",
        "Mean_low",
        "Mean_high",
    }
    # The first profile's outputs are untouched, and both profiles are up to date.
    for rel in ("reports/smoke/index.html", "metrics/smoke/smoke/hg1x2/s0.json", f"{RUN}/model.pt"):
        assert (clone / rel).read_bytes() == (finished / rel).read_bytes(), rel
    assert dry_jobs(clone, *SMOKE) == {}
    assert dry_jobs(clone, *tiny) == {}
    # The landing page links both reports, the one written last first.
    landing = (clone / "reports/index.html").read_text()
    assert landing.index('href="tiny/index.html"') < landing.index('href="smoke/index.html"')
    assert "tiny" in (clone / "reports/tiny/index.html").read_text()


def test_training_progress_reaches_the_log_while_the_job_runs(finished, tmp_path):
    raw = yaml.safe_load((finished / "params/smoke.yaml").read_text())
    raw["train"]["epochs"] = 200  # long enough to be caught running
    profile = tmp_path / "long.yaml"
    profile.write_text(yaml.safe_dump(raw, sort_keys=False))
    log = tmp_path / "train.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
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
                str(finished / "data/processed/smoke/smoke"),
                "--out",
                str(tmp_path / "run"),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=tool_env(),
        )
    try:
        deadline = time.monotonic() + 120
        while "step 1/" not in log.read_text():
            assert proc.poll() is None, f"train ended before a progress line reached the log: {log.read_text()}"
            assert time.monotonic() < deadline, "no progress line in the log after 120 s"
            time.sleep(0.2)
        assert proc.poll() is None  # read while the job is still running
        first = next(line for line in log.read_text().splitlines() if "step 1/" in line)
        assert first.startswith("epoch 1/200") and "img/s" in first
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=120)
