"""Scale-out contracts: what the SLURM profile asks a cluster for, and DVC remotes/experiments
working together with Snakemake (docs/scale-out.md).

No cluster is needed: the SLURM executor plugin runs for real against fake ``sbatch``/``sacct``
commands (tests/fake_slurm/) that record what would have been submitted.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
import runpy
import subprocess
from pathlib import Path

import pytest
import yaml

from conftest import ROOT, make_project, run, tool_env

pytest.importorskip(
    "snakemake_executor_plugin_slurm", reason="pip install snakemake-executor-plugin-slurm (make install)"
)

FAKE_SLURM = Path(__file__).parent / "fake_slurm"
SLURM = ["--profile", "workflow/profiles/slurm"]
# The workflow's estimates of what a job asks for (runtime, mem_mb), derived from the profile.
ESTIMATES = runpy.run_path(str(ROOT / "workflow" / "rules" / "profile.smk"))


def train_request(profile: dict, dataset: str, variant: str) -> tuple[str, str]:
    """(runtime minutes, mem_mb) a first attempt of a GPU training job asks for."""
    return (
        str(ESTIMATES["train_runtime"](profile, dataset, 1)),
        str(ESTIMATES["train_mem_mb"](profile, dataset, variant, True, 1)),
    )


def dry_run_jobs(text: str) -> list[dict]:
    """Parse ``snakemake -n`` output into one dict per job: rule, threads, resources."""
    jobs = []
    for block in re.split(r"\n(?=\[[^\]]+\]\n)", text):
        rule = re.search(r"^(?:local)?rule (\S+):", block, re.M)
        if not rule:
            continue
        job = {"rule": rule.group(1), "threads": 1, "resources": {}}
        if m := re.search(r"^\s+threads: (\d+)", block, re.M):
            job["threads"] = int(m.group(1))
        if m := re.search(r"^\s+resources: (.*)$", block, re.M):
            for item in m.group(1).split(", "):
                key, _, value = item.partition("=")
                job["resources"][key] = value
        if m := re.search(r"^\s+wildcards: (.*)$", block, re.M):
            job["wildcards"] = dict(item.split("=", 1) for item in m.group(1).split(", "))
        jobs.append(job)
    return jobs


def test_slurm_dry_run_of_the_paper_profile_requests_gpus_only_for_gpu_rules(project):
    cwd = project("paper")
    paper = yaml.safe_load((cwd / "params/paper.yaml").read_text())
    proc = run(["snakemake", "-n", *SLURM, "--configfile", "params/paper.yaml"], cwd)
    jobs = dry_run_jobs(proc.stdout + proc.stderr)
    by_rule: dict[str, list[dict]] = {}
    for job in jobs:
        by_rule.setdefault(job["rule"], []).append(job)

    assert len(by_rule["train"]) == len(paper["experiments"])
    assert len(by_rule["fetch"]) == len(paper["datasets"]) == 2
    devices = paper["train"].get("devices", 1)
    for job in by_rule["train"]:
        res = job["resources"]
        assert res["gpu"] == str(devices), res
        # runtime/mem_mb come from the rule (derived from the profile), not from the SLURM profile
        runtime, mem_mb = train_request(paper, job["wildcards"]["dataset"], job["wildcards"]["variant"])
        assert res["slurm_partition"] == "gpu" and res["runtime"] == runtime and res["mem_mb"] == mem_mb
        if job["wildcards"]["dataset"] == "mpii":  # 200 epochs of 22,246 people: the paper's ~3 days, + margin
            assert 3 * 24 * 60 <= int(runtime) <= 5 * 24 * 60, runtime
        assert "--signal=TERM@300" in res["slurm_extra"]  # checkpoint before the wall time
        assert "tasks" not in res and "tasks_per_gpu" not in res  # one launcher per job
        # (threads are not shown in a dry run; the sbatch test checks --cpus-per-task)
    for job in by_rule["predict"]:
        assert job["resources"]["gpu"] == "1" and job["resources"]["slurm_partition"] == "gpu"
    for rule in ("fetch", "prepare", "evaluate", "summarize"):
        for job in by_rule[rule]:
            assert job["resources"].get("gpu", "0") == "0", (rule, job)
            assert job["resources"]["slurm_partition"] == "cpu"
            assert int(job["resources"]["runtime"]) > 0 and int(job["resources"]["mem_mb"]) > 0


def submit_train_job(cwd: Path, profile: str, fake_dir: Path) -> str:
    """Run the SLURM executor on one training job against fake SLURM commands; return the sbatch line."""
    for rel in (
        "data/raw/paper/mpii/MANIFEST.json",
        "data/processed/paper/mpii/train.h5",
        "data/processed/paper/mpii/valid.h5",
    ):
        path = cwd / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
    stamp = os.stat(cwd / "data/raw/paper/mpii/MANIFEST.json").st_mtime + 10
    for rel in ("data/processed/paper/mpii/train.h5", "data/processed/paper/mpii/valid.h5"):
        os.utime(cwd / rel, (stamp, stamp))  # prepared after fetch: only train is due
    fake_dir.mkdir()
    env = tool_env()
    env["PATH"] = f"{FAKE_SLURM}{os.pathsep}{env['PATH']}"
    env["FAKE_SLURM_DIR"] = str(fake_dir)
    cmd = [
        "snakemake",
        "models/paper/mpii/hg8/s0/model.pt",
        *SLURM,
        "--configfile",
        profile,
        "--retries",
        "0",
        "--slurm-init-seconds-before-status-checks",
        "1",
        "--default-resources",
        "slurm_partition=cpu",
        "runtime=60",
        "mem_mb=4000",
        "slurm_account=pose",
    ]
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    submitted = sorted(fake_dir.glob("sbatch.*.args"))
    assert len(submitted) == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
    return submitted[0].read_text()


def test_slurm_submission_is_one_task_with_all_gpus(project, tmp_path):
    cwd = project("paper")
    call = submit_train_job(cwd, "params/paper.yaml", tmp_path / "fake")
    assert call.startswith("--parsable")
    runtime, mem_mb = train_request(yaml.safe_load((cwd / "params/paper.yaml").read_text()), "mpii", "hg8")
    for flag in (
        "-p gpu",
        f"-t {runtime}",
        f"--mem {mem_mb}",
        "--cpus-per-task=8",
        "--gpus=1",
        "--requeue",
        "--signal=TERM@300",
        "-A pose",
    ):
        assert flag in call, (flag, call)
    # The pitfall: --ntasks-per-gpu (from a `tasks` resource) would start one launcher per GPU.
    assert "--ntasks" not in call
    assert (
        call.count("--executor slurm-jobstep") == 1 and "--target-jobs 'train:dataset=mpii,variant=hg8,seed=0'" in call
    )


def sha256_tree(root: Path, dirs=("data", "models", "results", "reports", "metrics")) -> dict[str, str]:
    """Hashes of the pipeline's files (the landing page reports/index.html is no pipeline output)."""
    out = {}
    for d in dirs:
        for path in sorted((root / d).rglob("*")):
            if path.is_file() and path.name != ".snakemake_timestamp" and path != root / "reports/index.html":
                out[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


@pytest.fixture(scope="module")
def shared_run(tmp_path_factory):
    """The smoke profile run with dvc repro, pushed to a local remote, and pulled into a fresh clone."""
    base = tmp_path_factory.mktemp("dvc")
    origin = make_project(base / "origin", "smoke")
    run(["git", "add", "-A"], origin)
    run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "workflow"], origin)
    run(["dvc", "repro", "--quiet"], origin)
    run(["dvc", "remote", "add", "-d", "store", str(base / "remote")], origin)
    run(["dvc", "push", "--quiet"], origin)
    run(["git", "add", "-A"], origin)
    run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "results"], origin)
    clone = base / "clone"
    run(["git", "clone", "-q", str(origin), str(clone)], base)
    run(["dvc", "pull", "--quiet"], clone)
    return origin, clone


def test_dvc_pull_into_a_fresh_clone_restores_identical_outputs(shared_run):
    origin, clone = shared_run
    before = sha256_tree(origin)
    assert any(k.endswith("model.pt") for k in before) and "reports/smoke/index.html" in before
    assert any(k.startswith("reports/smoke/figures/") for k in before)
    assert sha256_tree(clone) == before
    assert "up to date" in run(["dvc", "status"], clone).stdout


def test_snakemake_reruns_nothing_after_pull_once_timestamps_are_synced(shared_run):
    origin, clone = shared_run
    # A checkout writes files in no fixed order; make the raw data the newest, as a pull may.
    (clone / "data/raw/smoke/smoke/MANIFEST.json").touch()
    dry = run(["snakemake", "-n", "--configfile", "params/smoke.yaml"], clone)
    assert "rule train:" in dry.stdout, "the timestamp pitfall should make Snakemake want to retrain"
    hashes = sha256_tree(clone)

    # The profile Snakemake runs with (its path is part of each rule's params).
    proc = run(["hgbench", "sync-timestamps", "--params", "params/smoke.yaml"], clone)
    assert "aligned" in proc.stdout
    dry = run(["snakemake", "-n", "--configfile", "params/smoke.yaml"], clone)
    assert "Nothing to be done" in dry.stdout + dry.stderr
    assert sha256_tree(clone) == hashes  # touched, not rewritten
    assert "up to date" in run(["dvc", "status"], clone).stdout  # .snakemake_timestamp is dvcignored


def test_sync_timestamps_refuses_when_dvc_reports_stale_stages(shared_run, tmp_path):
    origin, clone = shared_run
    params = clone / "params.yaml"
    original = params.read_text()
    model = clone / "models/smoke/smoke/hg2x1/s0/model.pt"
    mtime = model.stat().st_mtime_ns
    try:
        params.write_text(original.replace("lr: 2.5e-4", "lr: 1.0e-3"))
        proc = run(["hgbench", "sync-timestamps", "--params", "params.yaml"], clone, check=False)
        assert proc.returncode == 2
        assert "train@run0" in proc.stderr and "dvc pull" in proc.stderr
        assert model.stat().st_mtime_ns == mtime
    finally:
        params.write_text(original)


def test_dvc_exp_run_changes_an_ablation_knob_and_lists_it(shared_run):
    origin, _ = shared_run
    run(
        ["dvc", "exp", "run", "--quiet", "-n", "hg2x1-last", "-S", "params.yaml:variants.hg2x1.supervision=last"],
        origin,
    )
    shown = run(["dvc", "exp", "show", "--csv"], origin).stdout
    table = list(csv.DictReader(io.StringIO(shown)))
    rows = {r["Experiment"] or r["rev"]: r for r in table}
    assert "hg2x1-last" in rows and "last" in rows["hg2x1-last"].values(), shown[-2000:]
    # Numbers (not DVC's "!" for an unreadable metric) for the baseline and the experiment.
    mean = "metrics/smoke/smoke/hg2x1/s0.json:pckh@0.5.Mean"
    assert mean in table[0], list(table[0])
    baseline = next(r for r in table if r["rev"] in ("workspace", "main", "master") and r[mean] not in ("", "!"))
    for row in (baseline, rows["hg2x1-last"]):
        assert 0.0 <= float(row[mean]) <= 100.0, row
    # About a dozen headline leaves per run, not the whole metrics.json.
    per_run = [c for c in table[0] if c.startswith("metrics/smoke/smoke/hg2x1/s0.json:")]
    assert 8 <= len(per_run) <= 16, per_run
    # The experiment retrained only the changed variant; the other model is the cached one.
    assert "models/smoke/smoke/hg1x2/s0/model.pt" not in run(["dvc", "status"], origin).stdout
    # The workspace holds the experiment: `dvc metrics diff` against HEAD lists the changed run only.
    diff = json.loads(run(["dvc", "metrics", "diff", "--json"], origin).stdout)
    changed = {path for path, values in diff.items() if values}
    assert changed == {"metrics/smoke/smoke/hg2x1/s0.json"}, diff
    plots = json.loads(run(["dvc", "plots", "show", "--json"], origin).stdout)
    assert not plots.get("errors"), plots.get("errors")
    names = set(plots["data"])
    assert any(n.endswith("hg2x1/s0/log.csv") for n in names) and any(n.endswith("pck_curve.csv") for n in names)


def test_a_speed_knob_leaves_every_dvc_stage_up_to_date(shared_run):
    _, clone = shared_run
    params = clone / "params.yaml"
    original = params.read_text()
    try:
        params.write_text(original.replace("threads: 1", "threads: 2").replace("workers: 0", "workers: 1"))
        assert "up to date" in run(["dvc", "status"], clone).stdout
        params.write_text(original.replace("lr: 2.5e-4", "lr: 1.0e-3"))
        assert "train@" in run(["dvc", "status"], clone).stdout
    finally:
        params.write_text(original)


def test_a_second_profile_after_dvc_repro_runs_its_own_jobs(shared_run):
    _, clone = shared_run
    raw = yaml.safe_load((clone / "params/smoke.yaml").read_text())
    raw["profile"] = "other"
    other = clone / "params" / "other.yaml"
    other.write_text(yaml.safe_dump(raw, sort_keys=False))
    try:
        dry = run(["snakemake", "-n", "--configfile", "params/other.yaml"], clone)
        assert "Nothing to be done" not in dry.stdout + dry.stderr
        assert "rule train:" in dry.stdout and "models/other/" in dry.stdout
    finally:
        other.unlink()


def test_dvc_repro_force_of_a_finished_training_changes_no_hash(shared_run):
    _, clone = shared_run
    lock = (clone / "dvc.lock").read_text()
    run(["dvc", "repro", "--force", "--single-item", "train@run1"], clone)
    assert (clone / "dvc.lock").read_text() == lock  # model.pt and log.csv rewritten byte for byte
    assert "up to date" in run(["dvc", "status"], clone).stdout
