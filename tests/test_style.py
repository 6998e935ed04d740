"""ruff keeps the Python style and lint uniform (pyproject.toml [tool.ruff]: pycodestyle, pyflakes,
import order, bugbear, pyupgrade, and no function over complexity 20). Run here so that `make test`,
and therefore CI, fails on a style or lint error; `make lint` runs the same commands."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT

RUFF = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
TARGETS = ["src", "tests", "bench"]


@pytest.mark.skipif(RUFF is None, reason="ruff is not installed (the test extra brings it)")
@pytest.mark.parametrize("command", [["check"], ["format", "--check"]], ids=["lint", "format"])
def test_ruff(command):
    proc = subprocess.run([RUFF, *command, *TARGETS], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
