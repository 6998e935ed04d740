"""Item 4 (YAML) — the params loader refuses anchors and aliases at the first one, so a
"billion laughs" profile costs microseconds, not minutes; and the workflow's copy of the loader
(``workflow/rules/profile.smk``, which cannot import hgbench) refuses every broken file with
hgbench's message, word for word.

Without the refusal, a 1.4 KB profile of nested aliases kept ``hgbench`` validating for over 30 s
(every alias is the same list again: PyYAML builds it once, the schema visits it billions of
times). The loads run in a forked child killed after a deadline, so a loader that lets the
expansion through fails the test instead of hanging it.
"""

from __future__ import annotations

import os
import re
import runpy
import select
import signal
import subprocess
import time

import pytest

from conftest import tool_env
from hgbench.config import ParamsError, load_params, read_yaml

from .conftest import ROOT, SMOKE_FILE, assert_clean_error, hgbench

WORKFLOW = runpy.run_path(str(ROOT / "workflow" / "rules" / "profile.smk"))
WORKFLOW_SCHEMA = str(ROOT / "workflow" / "schemas" / "params.schema.yaml")
DEADLINE_S = 5.0
"""A refusal takes well under 10 ms; the 2-core test machine gets a wide margin."""


def laughs(levels: int = 9, width: int = 9, key: str = "lol") -> str:
    """``levels`` nested aliases of ``width`` each: ``width ** levels`` values once expanded
    (9 ** 9 = 387 M from 0.5 KB)."""
    lines = [f"{key}0: &{key}0 [" + ", ".join(['"lol"'] * width) + "]"]
    lines += [f"{key}{i}: &{key}{i} [" + ", ".join([f"*{key}{i - 1}"] * width) + "]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


SMOKE_TEXT = SMOKE_FILE.read_text()
SMOKE_LINES = SMOKE_TEXT.count("\n")
LR = "  lr: 2.5e-4\n"
LR_LINE = SMOKE_TEXT.splitlines().index(LR.rstrip("\n")) + 1
ALIASED = {  # name: (profile text, line of the first anchor or alias, its name)
    "billion laughs at the end": (SMOKE_TEXT + laughs(), SMOKE_LINES + 1, "lol0"),
    # inside a key the schema walks item by item (lr_drop_epochs): the case that kept validation busy
    "billion laughs inside train": (
        laughs(key="x") + SMOKE_TEXT.replace("  lr_drop_epochs: []\n", "  lr_drop_epochs: *x8\n"),
        1,
        "x0",
    ),
    "one alias of a scalar": (SMOKE_TEXT.replace(LR, "  lr: &rate 2.5e-4\n") + "x: *rate\n", LR_LINE, "rate"),
    "an anchor without alias": (SMOKE_TEXT.replace(LR, "  lr: &rate 2.5e-4\n"), LR_LINE, "rate"),
    "an alias without anchor": (SMOKE_TEXT.replace(LR, "  lr: *rate\n"), LR_LINE, "rate"),
    "a merge key": (
        SMOKE_TEXT.replace("train:\n", "train: &recipe\n", 1) + "again:\n  <<: *recipe\n",
        SMOKE_TEXT.splitlines().index("train:") + 1,
        "recipe",
    ),
}


def message_within(fn, seconds: float = DEADLINE_S) -> str:
    """``"<exception type>: <message>"`` of ``fn()`` (or ``"accepted"``), computed in a forked child
    that is SIGKILLed after ``seconds``: a load that expands aliases fails here instead of hanging."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never return into pytest
        try:
            os.close(r)
            try:
                fn()
                out = "accepted"
            except Exception as exc:  # noqa: BLE001 - the message is the result
                out = f"{type(exc).__name__}: {exc}"
            os.write(w, out.encode())
        finally:
            os._exit(0)
    os.close(w)
    started = time.monotonic()
    try:
        ready, _, _ = select.select([r], [], [], seconds)
        if not ready:
            os.kill(pid, signal.SIGKILL)
            raise AssertionError(f"still busy after {seconds} s (the aliases were expanded)")
        chunks = []
        while chunk := os.read(r, 1 << 16):
            chunks.append(chunk)
        assert time.monotonic() - started < seconds
        return b"".join(chunks).decode()
    finally:
        os.close(r)
        os.waitpid(pid, 0)


@pytest.mark.parametrize("case", sorted(ALIASED))
def test_anchors_and_aliases_are_refused_at_once_in_one_line(tmp_path, case):
    text, line, name = ALIASED[case]
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    expected = (
        f"{path}: not valid params YAML at line {line}: anchors and aliases (&{name}, *{name}) are refused "
        f"(a few nested aliases expand to billions of values); write the value out instead of *{name} "
        f"and drop &{name}"
    )
    assert message_within(lambda: load_params(path)) == f"ParamsError: {expected}"
    # the workflow's copy, reading the same file (Snakemake's --configfile route)
    assert message_within(lambda: WORKFLOW["read_profile"](str(path), WORKFLOW_SCHEMA)) == f"ProfileError: {expected}"


def test_a_billion_laughs_profile_through_the_cli_is_one_line_and_fast(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(ALIASED["billion laughs inside train"][0])
    out = tmp_path / "out"
    started = time.monotonic()
    proc = hgbench("fetch", "--params", path, "--dataset", "smoke", "--out", out, timeout=60)
    line = assert_clean_error(proc.returncode, proc.stderr, "fetch", str(path), "write the value out instead of *")
    assert proc.stderr.strip() == line and not out.exists()
    assert time.monotonic() - started < 30  # (a new process: torch's import is most of it)


HOST_SNAKEFILE = """configfile: "config/config.yaml"

module hg:
    snakefile: "{workflow}"
    config: config

use rule * from hg as hg_*
"""
"""A host workflow importing this one as a module (README "Use hgbench as a module")."""


def test_an_aliased_host_config_is_refused_before_the_module_route_compares_it(tmp_path):
    """The module route (``common.smk``'s ``host_configfile``) compared each host config file with
    the config Snakemake passed before ``read_profile`` ran: 9 levels of 9 aliases took 13 s, each
    further level 9 times more. Here 10 levels (3.5 G values once expanded) must be refused at the
    first anchor, in one message naming the file, before any job; a plain host still dry-runs."""
    host = tmp_path / "host"
    (host / "config").mkdir(parents=True)
    (host / "Snakefile").write_text(HOST_SNAKEFILE.format(workflow=ROOT / "workflow" / "Snakefile"))

    def dry_run() -> tuple[int, str, float]:
        started = time.monotonic()
        proc = subprocess.run(["snakemake", "-n"], cwd=host, env=tool_env(), capture_output=True, text=True, timeout=90)
        return proc.returncode, proc.stdout + proc.stderr, time.monotonic() - started

    (host / "config" / "config.yaml").write_text(SMOKE_TEXT)
    code, out, plain_s = dry_run()
    assert code == 0 and "rule hg_fetch:" in out, out
    (host / "config" / "config.yaml").write_text(SMOKE_TEXT + laughs(levels=10))
    code, out, aliased_s = dry_run()
    expected = (
        f"config/config.yaml: not valid params YAML at line {SMOKE_LINES + 1}: anchors and aliases (&lol0, "
        f"*lol0) are refused (a few nested aliases expand to billions of values); write the value out "
        f"instead of *lol0 and drop &lol0"
    )
    assert code == 1 and expected in out.splitlines(), out
    assert "Traceback" not in out and "rule hg_" not in out, out
    # Snakemake's start-up is most of both runs; an expansion would take minutes.
    assert aliased_s < plain_s + 10, (aliased_s, plain_s)


BROKEN = {  # name: text every loader refuses; the workflow's message must be hgbench's
    "duplicate key": SMOKE_TEXT.replace(LR, LR + "  lr: 1.0e-3\n"),
    "duplicate nested in a list": SMOKE_TEXT.replace(
        "- {dataset: smoke, variant: hg1x2, seed: 0}", "- {dataset: smoke, variant: hg1x2, seed: 0, seed: 1}"
    ),
    "alias": ALIASED["one alias of a scalar"][0],
    "billion laughs": ALIASED["billion laughs at the end"][0],
    "unclosed flow list": "profile: [unclosed\n",
    "bad indentation": "train:\n  lr: 1\n lr: 2\n",
    "tab indentation": "train:\n\tlr: 1\n",
    "control character": "profile: smoke\x00\n",
    "two documents": "profile: a\n---\nprofile: b\n",
    "python tag": "profile: !!python/object/apply:os.system ['true']\n",
    "unknown tag": "profile: !secret x\n",
    "integer of 5000 digits": "seed: " + "9" * 5000 + "\n",
    "nested 3000 deep": "x: " + "[" * 3000 + "]" * 3000 + "\n",
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_the_workflow_refuses_every_broken_file_with_hgbench_s_message(tmp_path, case):
    path = tmp_path / "bad.yaml"
    path.write_text(BROKEN[case])
    with pytest.raises(ParamsError) as ours:
        load_params(path)
    with pytest.raises(WORKFLOW["ProfileError"]) as theirs:
        WORKFLOW["read_profile"](str(path), WORKFLOW_SCHEMA)
    assert str(theirs.value) == str(ours.value)
    msg = str(ours.value)
    assert msg.startswith(f"{path}: ") and "\n" not in msg and "<unicode string>" not in msg, msg
    assert re.search(r"\blines? \d", msg) or case in ("integer of 5000 digits", "nested 3000 deep"), msg


@pytest.mark.parametrize("text", ["", "x\n", "a: 1\n", "a: [1, 2.5, .nan, null, true]\n", SMOKE_TEXT])
def test_both_loaders_read_plain_yaml_alike(text):
    assert WORKFLOW["read_yaml"](text, "p.yaml") == read_yaml(text, "p.yaml")


def test_the_duplicate_key_message_names_the_key_and_both_lines(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(BROKEN["duplicate key"])
    with pytest.raises(ParamsError) as err:
        load_params(path)
    assert str(err.value) == (
        f"{path}: invalid params key 'train.lr': given twice (lines {LR_LINE} and {LR_LINE + 1}); keep one"
    )
