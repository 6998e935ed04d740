"""The command-line contract of the workflow: Snakemake and DVC describe the same pipeline."""

import re
import shlex
from pathlib import Path

import pytest
import yaml

from conftest import ROOT, run

PROFILES = sorted(p.stem for p in (ROOT / "params").glob("*.yaml"))


def snakemake_jobs(cwd: Path, profile: str) -> list[dict]:
    """Jobs of a forced dry run: rule, outputs and normalised shell command."""
    out = run(["snakemake", "-n", "-p", "--forceall", "--configfile", f"params/{profile}.yaml"], cwd).stdout
    jobs = []
    for block in re.split(r"\n(?=rule \S+:\n)", out):
        m = re.match(r"rule (\S+):\n", block)
        if not m or m.group(1) == "all":
            continue
        outputs = re.search(r"^\s+output: (.*)$", block, re.M).group(1).split(", ")
        cmd = re.search(r"^Shell command: (.*)$", block, re.M).group(1)
        jobs.append({"stage": m.group(1), "outs": outputs, "cmd": normalise(cmd, profile)})
    return jobs


def dvc_stages(cwd: Path, profile: str) -> list[dict]:
    from dvc.repo import Repo

    with Repo(str(cwd)) as repo:
        return [
            {"stage": s.name.split("@")[0], "outs": [str(o.def_path) for o in s.outs],
             "persist": [str(o.def_path) for o in s.outs if o.persist], "cmd": normalise(s.cmd, profile)}
            for s in repo.index.stages
        ]


def normalise(cmd: str, profile: str) -> str:
    words = shlex.split(cmd)
    if ">" in words:  # Snakemake's log redirection
        words = words[: words.index(">")]
    words = ["params.yaml" if w == f"params/{profile}.yaml" else w for w in words]
    if "--workers" in words:
        words[words.index("--workers") + 1] = "N"
    return " ".join(words)


@pytest.mark.parametrize("profile", PROFILES)
def test_snakemake_and_dvc_describe_the_same_stages_and_outputs(project, profile):
    cwd = project(profile)
    smk, dvc = snakemake_jobs(cwd, profile), dvc_stages(cwd, profile)
    assert sorted((j["stage"], j["cmd"]) for j in smk) == sorted((s["stage"], s["cmd"]) for s in dvc)
    for stage in dvc:
        job = next(j for j in smk if j["cmd"] == stage["cmd"])
        for out in stage["outs"]:
            # A DVC output is a Snakemake output or a directory holding them; the resumable
            # checkpoint is DVC-only (persist), because Snakemake would delete it before a rerun.
            covered = any(o == out or o.startswith(out + "/") for o in job["outs"])
            assert covered or out in stage["persist"], (stage["stage"], out, job["outs"])
        for out in job["outs"]:
            assert any(out == o or out.startswith(o + "/") for o in stage["outs"]), (job["stage"], out)


@pytest.mark.parametrize("profile", PROFILES)
def test_dry_run_every_profile(profile):
    proc = run(["snakemake", "-n", "--configfile", f"params/{profile}.yaml"], ROOT)
    assert "report" in proc.stdout


def test_lint_is_clean():
    proc = run(["snakemake", "--lint"], ROOT)
    assert "Lints for" not in proc.stdout + proc.stderr


def test_profile_fully_replaces_the_default(project):
    cwd = project("smoke")
    jobs = snakemake_jobs(cwd, "paper")
    assert not any("synthetic" in j["cmd"] for j in jobs)  # nothing of the demo profile leaks in


def test_invalid_profile_fails_before_any_job_naming_the_key(tmp_path):
    raw = yaml.safe_load((ROOT / "params" / "smoke.yaml").read_text())
    raw["train"]["optimizer"] = "sgd"
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(raw))
    proc = run(["snakemake", "-n", "--configfile", str(bad)], ROOT, check=False)
    assert proc.returncode != 0
    text = proc.stdout + proc.stderr
    assert "optimizer" in text and "rmsprop" in text
    assert "Job stats" not in text


def test_config_overrides_are_refused_with_a_fix():
    proc = run(["snakemake", "-n", "--config", "profile=other"], ROOT, check=False)
    assert proc.returncode != 0
    assert "--configfile" in proc.stdout + proc.stderr


def test_params_yaml_is_a_copy_of_the_demo_profile():
    # DVC reads params.yaml (also from git commits, so it must be a real file, not a symlink);
    # Snakemake's default is params/demo.yaml. The two must never drift apart.
    params = ROOT / "params.yaml"
    assert not params.is_symlink(), "params.yaml must be a file: cp params/demo.yaml params.yaml"
    assert params.read_bytes() == (ROOT / "params/demo.yaml").read_bytes(), "cp params/demo.yaml params.yaml"


def test_training_depends_on_exactly_the_keys_that_change_the_weights():
    """dvc.yaml lists the train keys one by one (DVC cannot leave keys of a section out): they must
    be hgbench's result keys, so a speed knob retrains nothing and a recipe key always does."""
    from hgbench.config import SPEED_KEYS, result_keys

    stage = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]["train"]
    listed = [p.split(".", 1)[1] for p in stage["params"] if p.startswith("train.")]
    assert sorted(listed) == sorted(result_keys())
    assert not set(listed) & set(SPEED_KEYS)
    # every shipped profile spells out each of them (DVC refuses a listed key a profile lacks)
    for path in (ROOT / "params").glob("*.yaml"):
        train = yaml.safe_load(path.read_text())["train"]
        assert set(result_keys()) <= set(train), (path.name, set(result_keys()) - set(train))
