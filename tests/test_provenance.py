"""Report provenance: git state, dvc.lock hashes, versions; unknown pieces are None, not errors."""

import subprocess

from hgbench.report import provenance

LOCK = """schema: '2.0'
stages:
  train@run0:
    cmd: hgbench train ...
    outs:
    - path: models/smoke/hg1x2/s0/model.pt
      hash: md5
      md5: 0123456789abcdef0123456789abcdef
      size: 1234
  report:
    cmd: hgbench report ...
    outs:
    - path: reports/figures
      hash: md5
      md5: fedcba9876543210fedcba9876543210.dir
      size: 99
      nfiles: 5
"""


def git(args, cwd):
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=cwd, check=True, capture_output=True
    )


def test_git_state_and_dirty_flag(tmp_path):
    assert provenance.git_state(tmp_path) == {"commit": None, "dirty": None, "changed": []}
    git(["init", "-q"], tmp_path)
    (tmp_path / "a.txt").write_text("1")
    git(["add", "a.txt"], tmp_path)
    git(["commit", "-qm", "x"], tmp_path)
    state = provenance.git_state(tmp_path)
    assert len(state["commit"]) == 40 and state["dirty"] is False
    (tmp_path / "a.txt").write_text("2")
    assert provenance.git_state(tmp_path)["dirty"] is True
    assert provenance.git_state(tmp_path)["changed"] == ["a.txt"]


def test_dvc_lock_outputs(tmp_path):
    assert provenance.dvc_lock_outputs(tmp_path) == []
    (tmp_path / "dvc.lock").write_text(LOCK)
    rows = provenance.dvc_lock_outputs(tmp_path)
    assert [r["stage"] for r in rows] == ["report", "train@run0"]
    assert rows[0]["md5"].endswith(".dir") and rows[0]["nfiles"] == 5
    assert rows[1]["path"] == "models/smoke/hg1x2/s0/model.pt" and rows[1]["size"] == 1234
    (tmp_path / "dvc.lock").write_text("stages: [unclosed")
    assert provenance.dvc_lock_outputs(tmp_path) == []


def test_collect_names_versions_hardware_and_commands(tmp_path):
    info = provenance.collect(tmp_path, "params/demo.yaml", {"profile": "demo", "train": {"epochs": 3}})
    assert info["packages"]["torch"] and info["packages"]["snakemake"]
    assert info["hardware"]["cores"] >= 1 and info["hardware"]["cpu"]
    assert "profile: demo" in info["params_yaml"]
    assert any("--configfile params/demo.yaml" in c for c in info["commands"])
    assert "git checkout <commit>" in info["commands"]  # no git here: the placeholder, not a crash
