"""The library API (``from hgbench import load_model, predict_image, ...``): a light import, the
doctests, what predict_image returns, the missing-extra messages, and (slow) a core-only install."""

from __future__ import annotations

import doctest
import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from PIL import Image

from conftest import ROOT, tool_env
from hgbench.cli import main
from hgbench.gallery import SAMPLES
from test_infer import model_pt, write_model  # noqa: F401 (fixture)

HEAVY = ("snakemake", "dvc", "pandas", "seaborn", "matplotlib", "jinja2")

LIGHT_CHECK = textwrap.dedent("""
    import sys
    HEAVY = {heavy!r}

    def loaded():
        return sorted(m for m in HEAVY if m in sys.modules)

    import hgbench
    assert loaded() == [], loaded()
    assert "torch" not in sys.modules, "import hgbench imported torch"
    from hgbench import ModelConfig, StackedHourglass, load_model, predict_image
    model = load_model(sys.argv[1])
    joints = predict_image(model, sys.argv[2], box=[300, 80, 500, 460])
    assert joints.shape == (16, 3), joints.shape
    assert loaded() == [], loaded()
    training = sorted(m for m in sys.modules if m in ("hgbench.train", "hgbench.config", "hgbench.distributed",
                                                      "hgbench.summarize", "hgbench.report"))
    assert training == [], training
    print("light")
""")


def test_import_hgbench_is_light_and_the_api_needs_no_extra(model_pt):  # noqa: F811
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            LIGHT_CHECK.format(heavy=HEAVY),
            str(model_pt),
            str(SAMPLES / "images" / "052475643.jpg"),
        ],
        env=tool_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0 and proc.stdout.strip() == "light", proc.stderr


@pytest.mark.parametrize("module", ["hgbench.inference", "hgbench.infer"])
def test_doctests(module):
    import importlib

    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


def test_predict_image_takes_a_path_a_pil_image_or_an_array(model_pt):  # noqa: F811
    from hgbench import load_model, predict_image, predict_people

    model = load_model(model_pt)
    path = SAMPLES / "images" / "052475643.jpg"
    box = [300.0, 80.0, 500.0, 460.0]
    joints = predict_image(model, path, box=box)
    assert joints.shape == (16, 3) and joints.dtype == np.float64
    with Image.open(path) as im:
        assert np.array_equal(predict_image(model, im, box=box), joints)
        assert np.array_equal(predict_image(model, np.asarray(im), box=tuple(box)), joints)
        both = predict_people(model, im, [box, {"center": [400.0, 270.0], "scale": 1.6}])
    # a batch of two may take other CPU kernels than a batch of one: equal up to float rounding
    assert both.shape == (2, 16, 3) and np.allclose(both[0], joints, rtol=0, atol=1e-5)
    whole = predict_image(model, path)  # no box: the whole image
    assert not np.array_equal(whole, joints)
    with pytest.raises(ValueError, match="lies outside the image"):
        predict_image(model, path, box=[900, 0, 950, 40])
    with pytest.raises(ValueError, match="carries no hgbench ModelInfo"):
        from hgbench import ModelConfig, StackedHourglass

        predict_image(StackedHourglass(ModelConfig(stacks=1, modules=1, features=16, depth=2)), path)


@pytest.mark.parametrize(
    "command, extra, module",
    [
        (["report", "--params", "p.yaml", "--results", "r", "--out", "o.html"], "report", "jinja2"),
        (
            ["summarize", "--params", "p.yaml", "--dataset", "d", "--results", "r", "--models", "m", "--out", "o"],
            "report",
            "pandas",
        ),
        (["sync-timestamps", "--params", "p.yaml"], "pipeline", "dvc"),
    ],
)
def test_a_command_without_its_extra_names_the_extra(command, extra, module, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, module, None)  # as if it were not installed
    assert main(command) == 2
    assert capsys.readouterr().err.strip() == (
        f"hgbench {command[0]} needs the '{extra}' extra: pip install 'hgbench[{extra}]'"
    )


# ---------------------------------------------------------------------------------------------
# slow: `pip install hgbench` (core only) into a fresh venv


@pytest.mark.slow
def test_core_install_in_a_fresh_venv_runs_the_api_without_the_pipeline(tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    py = venv / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}

    def pip(*args):
        proc = subprocess.run(
            [str(py), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=1800,
        )
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    # torch first, pinned, so that pip never resolves it (a plain `torch` pulls the CUDA wheels)
    pip("-c", str(ROOT / "requirements.lock"), "torch==2.13.0")
    # from a copy of the package's files: pip builds in the source tree, which must stay clean
    project = tmp_path / "project"
    shutil.copytree(ROOT / "src", project / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, project / name)
    pip("-c", str(ROOT / "requirements.lock"), str(project))
    model = write_model(tmp_path / "model.pt")
    code = textwrap.dedent("""
        import importlib.util, sys
        from hgbench import load_model, predict_image
        joints = predict_image(load_model(sys.argv[1]), sys.argv[2])
        assert joints.shape == (16, 3)
        # (jinja2 is not in this list: torch itself depends on it)
        missing = [m for m in ("snakemake", "dvc", "pandas", "matplotlib", "seaborn", "onnx")
                   if importlib.util.find_spec(m) is None]
        print(" ".join(missing))
    """)
    proc = subprocess.run(
        [str(py), "-c", code, str(model), str(SAMPLES / "images" / "052475643.jpg")],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["snakemake", "dvc", "pandas", "matplotlib", "seaborn", "onnx"]
    hgbench = venv / "bin" / "hgbench"
    report = subprocess.run(
        [str(hgbench), "report", "--params", "p.yaml", "--results", "r", "--out", "o.html"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert report.returncode == 2
    assert report.stderr.strip() == "hgbench report needs the 'report' extra: pip install 'hgbench[report]'"
    snakemake = subprocess.run(
        [str(hgbench), "sync-timestamps", "--params", "p.yaml"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert snakemake.returncode == 2 and "needs the 'pipeline' extra" in snakemake.stderr
    out = tmp_path / "poses"
    infer = subprocess.run(
        [str(hgbench), "infer", "--checkpoint", str(model), "--images", str(SAMPLES / "images"), "--out", str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )
    assert infer.returncode == 0, infer.stderr
    assert len(list(out.glob("*.json"))) == len(list(out.glob("*.png"))) == 5
    site = next((venv / "lib").glob("python3*/site-packages"))
    size = subprocess.run(["du", "-sh", str(site)], capture_output=True, text=True).stdout.split()[0]
    print(f"core install: site-packages {size}")
