"""Issue 16 — warnings from libraries reach the terminal in the one-line style of the errors
(``hgbench <stage>: warning: <first line>``: no ANSI codes, no source line, no path into the
library, each distinct line once), or not at all where they carry nothing a user can act on
(``hgbench.cli.SILENCED_WARNINGS``); ``HGBENCH_DEBUG=1`` shows Python's full warning.

Before: torch's DataLoader warning came twice (two source lines) with the path of torch's
``dataloader.py`` and the line of code that raised it; Pillow's palette-PNG advice and
matplotlib's missing-glyph warning (16 lines for two glyphs of a variant label) the same way.
"""

from __future__ import annotations

import logging
import os
import warnings

import yaml
from PIL import Image

from hgbench import cli

from .conftest import SMOKE_FILE, hgbench, smoke_raw_params

ANSI_WARNING = "\x1b[1;33mcolour\x1b[0m in \x1b]0;a title\x07the message\nand advice on a second line"


def _warns_twice(args) -> int:
    """A stage that warns as libraries do: ANSI codes, a second line, raised from two places."""
    for _ in range(2):
        warnings.warn(ANSI_WARNING, UserWarning, stacklevel=1)
    warnings.warn(ANSI_WARNING, UserWarning, stacklevel=2)
    logging.getLogger("hgbench.summarize").warning("results/x/metrics.json: missing; run x recorded as missing")
    return 0


def test_a_warning_is_one_line_without_ansi_codes_and_shown_once(monkeypatch, capsys):
    monkeypatch.setattr(cli, "cmd_describe", _warns_twice)
    assert cli.main(["describe", "--params", str(SMOKE_FILE)]) == 0
    assert capsys.readouterr().err.splitlines() == [
        "hgbench describe: warning: colour in the message",
        "hgbench describe: warning: results/x/metrics.json: missing; run x recorded as missing",
    ]


def test_a_real_library_warning_inside_a_command_is_one_line(smoke_data, tmp_path, capsys):
    """torch's DataLoader, asked for more worker processes than the machine has cores."""
    raw = smoke_raw_params()
    raw["train"]["workers"] = min(128, (os.cpu_count() or 1) + 1)
    params = tmp_path / "p.yaml"
    params.write_text(yaml.safe_dump(raw, sort_keys=False))
    args = ["--params", params, "--dataset", "smoke", "--variant", "hg2x1", "--seed", 0]
    assert cli.main(["train", *map(str, args), "--data", str(smoke_data), "--out", str(tmp_path / "run")]) == 0
    lines = [line for line in capsys.readouterr().err.splitlines() if "warning" in line.lower()]
    assert len(lines) == 1, lines  # torch raises it from two lines of its code
    assert lines[0].startswith(f"hgbench train: warning: This DataLoader will create {raw['train']['workers']} worker")
    assert "dataloader.py" not in lines[0] and "\x1b" not in lines[0]


def test_a_silenced_warning_is_not_shown_unless_debugging(reference_run, tmp_path):
    """Pillow's advice on a palette PNG with transparency ("should be converted to RGBA"): infer
    converts every image to RGB itself."""
    images = tmp_path / "in"
    images.mkdir()
    Image.new("RGB", (40, 60), (200, 30, 30)).convert("P").save(images / "palette.png", transparency=b"\x00" * 10)
    with warnings.catch_warnings(record=True) as raised, Image.open(images / "palette.png") as im:
        warnings.simplefilter("always")  # the warning is raised: it is only not shown
        im.convert("RGB")
    assert "Palette images with Transparency" in str(raised[0].message)
    # New processes: inside pytest, a warning nobody filters is recorded, not printed.
    argv = ["infer", "--checkpoint", reference_run / "model.pt", "--images", images, "--device", "cpu"]
    quiet = hgbench(*argv, "--out", tmp_path / "out")
    assert quiet.returncode == 0 and quiet.stderr == "", quiet.stderr
    debug = hgbench(*argv, "--out", tmp_path / "debug", env={cli.DEBUG_ENV: "1"})
    assert debug.returncode == 0, debug.stderr
    assert "UserWarning: Palette images with Transparency expressed in bytes" in debug.stderr
    assert "PIL" in debug.stderr  # Python's full warning: where it was raised
