"""The command-line contract of the workflow: Snakemake and DVC describe the same pipeline."""

import json
import os
import re
import runpy
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import BIN, ROOT, run, tool_env

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
            {
                "stage": s.name.split("@")[0],
                "outs": [str(o.def_path) for o in s.outs],
                "persist": [str(o.def_path) for o in s.outs if o.persist],
                "cmd": normalise(s.cmd, profile),
            }
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
    # `snakemake` from the repository root finds workflow/Snakefile and so loads the default
    # workflow profile beside it (printshellcmds, show-failed-logs, rerun-incomplete).
    assert "Using workflow specific profile workflow/profiles/default" in proc.stderr
    assert "Shell command: hgbench report" in proc.stdout  # its printshellcmds (no -p given)


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


# ---------------------------------------------------------------------------------------------
# A Snakemake-native workflow: parsed without hgbench, deployable as a module, with a report
# ---------------------------------------------------------------------------------------------

PROFILE_SMK = runpy.run_path(str(ROOT / "workflow" / "rules" / "profile.smk"))
"""workflow/rules/profile.smk on its own: how the workflow reads a profile without hgbench."""


def test_the_workflow_sees_every_profile_as_hgbench_does():
    """The rules' `params:` JSON (a rerun trigger) is built from profile_view(); it must be what
    it was when built from hgbench's Params, and the speed knobs it leaves out hgbench's."""
    from hgbench.config import SPEED_KEYS, as_dict, params_from_dict

    assert PROFILE_SMK["SPEED_KEYS"] == SPEED_KEYS
    for path in sorted((ROOT / "params").glob("*.yaml")):
        raw = yaml.safe_load(path.read_text())
        assert PROFILE_SMK["profile_view"](raw) == as_dict(params_from_dict(raw, path.name)), path.name


def test_the_workflow_parses_without_importing_hgbench_or_torch():
    """A Snakemake without hgbench (per-rule conda environments, a host workflow) can parse it:
    every `import hgbench`/`import torch` fails in this process, and `device: auto` (demo) still
    resolves."""
    code = (
        "import sys; sys.modules['hgbench'] = sys.modules['torch'] = None; "
        "from snakemake.cli import main; sys.argv[0] = 'snakemake'; main()"
    )
    proc = run([sys.executable, "-c", code, "-n", "--forceall", "--configfile", "params/demo.yaml"], ROOT)
    assert "hgbench train --params params/demo.yaml" in proc.stdout


def train_gpus(text: str) -> set[str]:
    """The `gpu` resource of every train job of a dry run."""
    blocks = re.split(r"\n(?=\[[^\]]+\]\n)", text)
    return {re.search(r"\bgpu=(\d+)", b).group(1) for b in blocks if re.search(r"^(local)?rule train:", b, re.M)}


@pytest.mark.parametrize("visible,gpus", [(None, {"1"}), ("", {"0"})])
def test_device_auto_asks_nvidia_smi_not_torch(tmp_path, visible, gpus):
    """`device: auto` claims the gpu resource when `nvidia-smi -L` lists a GPU, unless
    CUDA_VISIBLE_DEVICES hides every GPU (as torch.cuda.is_available() would see it)."""
    fake = tmp_path / "nvidia-smi"
    fake.write_text("#!/bin/sh\necho 'GPU 0: NVIDIA H200 (UUID: GPU-00000000-0000-0000-0000-000000000000)'\n")
    fake.chmod(0o755)
    env = tool_env()
    env["PATH"] = f"{tmp_path}{os.pathsep}{env['PATH']}"
    env.pop("CUDA_VISIBLE_DEVICES", None)
    if visible is not None:
        env["CUDA_VISIBLE_DEVICES"] = visible
    proc = subprocess.run(
        ["snakemake", "-n", "--forceall", "--configfile", "params/demo.yaml"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert train_gpus(proc.stdout) == gpus


def test_snakefmt_check_is_clean():
    snakefmt = BIN / "snakefmt"
    if not snakefmt.exists():
        pytest.skip("pip install snakefmt (the 'test' extra has it)")
    proc = run([str(snakefmt), "--check", "workflow/"], ROOT, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_catalog_files_describe_the_standardized_usage():
    usage = yaml.safe_load((ROOT / ".snakemake-workflow-catalog.yml").read_text())["usage"]
    assert usage["software-stack-deployment"]["conda"] is True and usage["report"] is True
    assert "--resources gpu=" in usage["mandatory-flags"]["flags"]
    # config/README.md documents every key of the schema (a key added there must be added here)
    readme = (ROOT / "config" / "README.md").read_text()
    schema = yaml.safe_load((ROOT / "workflow" / "schemas" / "params.schema.yaml").read_text())
    for key, sub in schema["properties"].items():
        assert f"`{key}" in readme, key
        for leaf in sub.get("properties", {}):
            assert f"`{leaf}" in readme, f"{key}.{leaf}"
    for leaf in schema["$defs"]["train"]["properties"]:
        assert f"`{leaf}`" in readme, f"train.{leaf}"
    # the config the catalog's deployment copies is the default profile (config/config.yaml)
    assert (ROOT / "config" / "config.yaml").read_bytes() == (ROOT / "params" / "demo.yaml").read_bytes(), (
        "cp params/demo.yaml config/config.yaml"
    )


def report_categories(page: str) -> dict:
    """The categories of a `snakemake --report` page: {category: {subcategory: [paths]}}."""
    return json.loads(re.search(r"var categories = (\{.*?\});\n", page).group(1))


def test_snakemake_report_holds_the_figures_tables_and_runs(finished_smoke, tmp_path):
    cwd = tmp_path / "p"
    shutil.copytree(finished_smoke, cwd, symlinks=True)
    run(["snakemake", "--report", "report.html", "--configfile", "params/smoke.yaml"], cwd)
    page = (cwd / "report.html").read_text()
    categories = report_categories(page)
    raw = yaml.safe_load((cwd / "params/smoke.yaml").read_text())
    figures = sorted(p.name for p in (cwd / "reports/smoke/figures").glob("*.png"))
    assert len(figures) >= 2 * len(raw["datasets"])
    for dataset in raw["datasets"]:
        # every figure hgbench drew for the dataset (smoke, smoke-flic: no name is another's
        # prefix), under the dataset's category (FIGURES in common.smk must know each one)
        drawn = [f"reports/smoke/figures/{f}" for f in figures if f.startswith(f"{dataset}_")]
        assert sorted(categories[dataset]["Figures"]) == drawn
        assert f"results/smoke/summary/{dataset}/per_joint.csv" in categories[dataset]["Tables"]
        runs = [e for e in raw["experiments"] if e["dataset"] == dataset]
        for e in runs:
            stem = f"{dataset}/{e['variant']}/s{e['seed']}"
            assert {
                f"metrics/smoke/{stem}.json",
                f"results/smoke/{stem}/pck_curve.csv",
                f"models/smoke/{stem}/log.csv",
            } <= set(categories[dataset]["Runs"])
            assert f'"labels": {{"variant": "{e["variant"]}", "seed": "{e["seed"]}", "file": "PCK curve"}}' in page
    assert sum(len(v) for v in categories.pop("hgbench report").values()) == 1  # the hgbench page itself
    assert sorted(categories) == sorted(raw["datasets"])
    assert "data:image/png" in page and "Mean PCK(h) against the normalised distance threshold" in page


HOST_SNAKEFILE = """configfile: "config/config.yaml"

module hg:
    snakefile: "{clone}/workflow/Snakefile"
    config: config

use rule * from hg as hg_*
"""
"""What a user writes (README "Use hgbench as a module")."""


def test_a_host_workflow_imports_it_as_a_module_and_reports_in_its_own_directory(finished_smoke, tmp_path):
    """The catalog's standardized usage: a project of its own (outside the clone) with a profile as
    config/config.yaml imports workflow/Snakefile as a module; outputs land in that project."""
    host = tmp_path / "host"
    (host / "config").mkdir(parents=True)
    shutil.copy2(finished_smoke / "params" / "smoke.yaml", host / "config" / "config.yaml")
    (host / "Snakefile").write_text(HOST_SNAKEFILE.format(clone=finished_smoke))
    # The whole DAG, every command reading the host's config file and writing below the host.
    dry = run(["snakemake", "-n", "-p", "--forceall"], host).stdout
    assert "hgbench fetch --params config/config.yaml --dataset smoke --out data/raw/smoke/smoke" in dry
    assert set(re.findall(r"^(?:local)?rule (\S+):", dry, re.M)) == {
        "hg_fetch",
        "hg_prepare",
        "hg_prepare_samples",
        "hg_train",
        "hg_predict",
        "hg_evaluate",
        "hg_summarize",
        "hg_report",
        "hg_all",
    }
    assert str(finished_smoke) not in "".join(re.findall(r"^\s+output: .*$", dry, re.M))
    # A real run: the finished results copied over (times kept), so only the report is built.
    for folder in ("data", "models", "results", "metrics", "logs", "benchmarks"):
        shutil.copytree(finished_smoke / folder, host / folder)
    before = sorted(p.relative_to(finished_smoke) for p in (finished_smoke / "reports").rglob("*"))
    done = run(["snakemake", "--cores", "2", "--resources", "gpu=1"], host)
    assert re.findall(r"^localrule (\S+):", done.stdout + done.stderr, re.M) == ["hg_report", "hg_all"]
    log = (host / "logs/smoke/report.log").read_text()
    assert (host / "reports/smoke/index.html").is_file() and (host / "reports/index.html").is_file(), log
    assert sorted(p.relative_to(finished_smoke) for p in (finished_smoke / "reports").rglob("*")) == before
    # ... and its Snakemake report, built there, holds the figures.
    run(["snakemake", "--report", "report.html"], host)
    categories = report_categories((host / "report.html").read_text())
    assert {f.name for f in (host / "reports/smoke/figures").glob("*.png")} == {
        Path(f).name for c in categories.values() for f in c.get("Figures", [])
    }


def test_the_paper_profile_writes_the_mpii_test_submission_of_hg8_only():
    out = run(["snakemake", "-n", "--configfile", "params/paper.yaml"], ROOT).stdout
    assert out.count("rule export_mpii:") == 1 and out.count("rule predict_test:") == 1
    assert "results/paper/mpii/hg8/s0/pred_keypoints_mpii.mat" in out
    assert "pred_keypoints_mpii" not in run(["snakemake", "-n", "--configfile", "params/smoke.yaml"], ROOT).stdout


@pytest.mark.parametrize(
    "submission,key",
    [
        ({"dataset": "mpii", "variant": "hg8", "seed": 5}, "submissions.0"),  # not an experiment
        ({"dataset": "flic", "variant": "hg8", "seed": 0}, "submissions.0.dataset"),  # no FLIC test server
    ],
)
def test_a_submission_must_be_an_mpii_experiment_of_the_profile(tmp_path, submission, key):
    from hgbench.config import ParamsError, load_params

    raw = yaml.safe_load((ROOT / "params/paper.yaml").read_text())
    raw["submissions"] = [submission]
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ParamsError, match=f"'{key}'"):
        load_params(path)
    proc = run(["snakemake", "-n", "--configfile", str(path)], ROOT, check=False)
    assert proc.returncode != 0 and f"'{key}'" in proc.stdout + proc.stderr
