"""Item 3 — bad params: property-based tests (hypothesis) over the params schema.

Every invalid value is rejected before any work starts, with a message that names the key, and
the command line ends with one ``hgbench <stage>: error: ...`` line (status 2), never a traceback.

The Snakemake route (``snakemake --configfile bad.yaml``) refuses the same profiles with the same
message, before any job: the workflow's own check (``workflow/rules/profile.smk``, which cannot
import hgbench) is run here on every generated profile and compared with hgbench's, word for word.

The invalid values are derived from the schema itself (``src/hgbench/params.schema.yaml``): for
every key of the smoke profile and every optional key of the schema, values of the wrong type,
out of range, not a multiple, not in the enum, not matching the pattern, NaN and infinities;
plus removed required keys, unknown keys and badly named datasets/variants. A key added to the
schema is covered without touching this file.
"""

from __future__ import annotations

import contextlib
import io
import math
import re
import runpy

import pytest
import yaml
from hypothesis import HealthCheck, assume, given, seed, settings
from hypothesis import strategies as st

from conftest import run
from hgbench.cli import main
from hgbench.config import ParamsError, load_params, params_from_dict, schema

from .conftest import FAULT_SEED, ROOT, assert_clean_error, hgbench, smoke_raw_params
from .test_yaml_loader import laughs

SCHEMA = schema()
SETTINGS = dict(
    deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
N_VALUES, N_STRUCTURE, N_CLI = 300, 100, 60
"""Hypothesis examples: invalid values (library), structural mutations, invalid values (CLI)."""


def resolve(sub: dict) -> dict:
    while "$ref" in sub:
        sub = SCHEMA["$defs"][sub["$ref"].rsplit("/", 1)[1]]
    return sub


def leaves(raw: dict, sub: dict, path: tuple = ()) -> list[tuple[tuple, dict]]:
    """``(key path, schema)`` of every scalar/array key of ``raw`` and every optional key the
    schema allows there (objects are descended)."""
    sub = resolve(sub)
    out = []
    if sub.get("type") == "object" or "properties" in sub or "additionalProperties" in sub:
        props = sub.get("properties", {})
        keys = list(raw) + [k for k in props if k not in raw] if isinstance(raw, dict) else list(props)
        for key in keys:
            child = props.get(key) or (
                sub["additionalProperties"] if isinstance(sub.get("additionalProperties"), dict) else None
            )
            if child is None:
                continue
            value = raw.get(key, {}) if isinstance(raw, dict) else {}
            child_r = resolve(child)
            if child_r.get("type") == "object" or "properties" in child_r or "additionalProperties" in child_r:
                out += leaves(value if isinstance(value, dict) else {}, child_r, path + (key,))
                continue
            out.append((path + (key,), child_r))
            items = resolve(child_r.get("items", {}))
            if child_r.get("type") == "array" and items.get("type") == "object":  # experiments
                for i, item in enumerate(value if isinstance(value, list) else []):
                    out += leaves(item, items, path + (key, i))
    return out


LEAVES = leaves(smoke_raw_params(), SCHEMA)

TEXT = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)
FINITE = dict(allow_nan=False, allow_infinity=False)


def invalid_values(sub: dict) -> st.SearchStrategy:
    """Values that ``sub`` (a leaf schema) rejects."""
    kind = sub.get("type")
    options = []
    if "enum" in sub:
        options += [TEXT.filter(lambda v: v not in sub["enum"]), st.integers(), st.none()]
    if kind == "integer":
        options += [
            TEXT,
            st.booleans(),
            st.none(),
            st.lists(st.integers(), max_size=2),
            st.floats(**FINITE).filter(lambda v: v != int(v)),
        ]
        if "minimum" in sub:
            options.append(st.integers(max_value=sub["minimum"] - 1))
        if "maximum" in sub:
            options.append(st.integers(min_value=sub["maximum"] + 1))
        if "multipleOf" in sub:
            lo, hi, m = sub.get("minimum", 0), sub.get("maximum", 4096), sub["multipleOf"]
            options.append(st.integers(min_value=lo, max_value=hi).filter(lambda v: v % m))
    if kind == "number":
        options += [TEXT, st.booleans(), st.none(), st.sampled_from([math.nan, math.inf, -math.inf])]
        if "minimum" in sub:  # (the filter drops -0.0, which equals a minimum of 0)
            options.append(st.floats(max_value=sub["minimum"], **FINITE).filter(lambda v: v < sub["minimum"]))
        if "exclusiveMinimum" in sub:
            options.append(st.floats(max_value=sub["exclusiveMinimum"], **FINITE))
        if "maximum" in sub:
            options.append(st.floats(min_value=sub["maximum"], **FINITE).filter(lambda v: v > sub["maximum"]))
    if kind == "boolean":
        options += [st.integers(), TEXT, st.none()]
    if kind == "string":
        options += [st.integers(), st.none(), st.lists(TEXT, max_size=2)]
        if "pattern" in sub:
            options.append(TEXT.filter(lambda v: not re.search(sub["pattern"], v)))
    if kind == "array":
        item = resolve(sub.get("items", {}))
        options += [TEXT, st.integers(), st.none()]
        if item and item.get("type") != "object":
            options.append(st.lists(invalid_values(item), min_size=1, max_size=3))
        if "minItems" in sub and sub["minItems"] > 0:
            options.append(st.lists(st.just(1.0), max_size=sub["minItems"] - 1))
        if "maxItems" in sub:
            options.append(st.lists(st.just(1.0), min_size=sub["maxItems"] + 1, max_size=sub["maxItems"] + 2))
    assert options, f"no invalid values known for schema {sub}"
    return st.one_of(options)


@st.composite
def bad_value(draw):
    """``(raw params with one invalid value, dotted key)``."""
    path, sub = draw(st.sampled_from(LEAVES))
    raw = smoke_raw_params()
    node = raw
    for p in path[:-1]:
        node = node[p] if isinstance(p, int) else node.setdefault(p, {})  # optional sections (report) too
    node[path[-1]] = draw(invalid_values(sub))
    return raw, ".".join(map(str, path))


def assert_rejected_naming(raw: dict, key: str) -> str:
    with pytest.raises(ParamsError) as err:
        params_from_dict(raw, "bad.yaml")
    msg = str(err.value)
    assert msg.startswith("bad.yaml: invalid params key "), msg
    assert f"invalid params key '{key}" in msg, (key, msg)
    return msg


@seed(FAULT_SEED)  # reproducible; HGBENCH_FAULT_SEED explores other examples
@settings(max_examples=N_VALUES, **SETTINGS)
@given(bad_value())
def test_every_invalid_value_is_rejected_naming_its_key(case):
    raw, key = case
    assert_rejected_naming(raw, key)


OBJECT_PATHS = [
    (),
    ("datasets", "smoke"),
    ("datasets", "smoke", "synthetic"),
    ("variants", "hg1x2"),
    ("experiments", 0),
    ("train",),
    ("predict",),
    ("evaluate",),
]


@st.composite
def bad_structure(draw):
    """``(raw params, key expected in the message, word expected in the message)``."""
    raw = smoke_raw_params()
    path = draw(st.sampled_from(OBJECT_PATHS))
    node = raw
    for p in path:
        node = node[p]
    where = ".".join(map(str, path)) or "<top level>"
    action = draw(st.sampled_from(["remove", "add", "rename"]))
    if action == "remove":
        sub = SCHEMA
        for p in path:
            sub = resolve(
                sub["properties"][p]
                if p in sub.get("properties", {})
                else sub["additionalProperties"]
                if isinstance(p, str)
                else sub["items"]
            )
        required = sub.get("required", [])
        assume(required)
        key = draw(st.sampled_from(required))
        del node[key]
        return raw, where, key
    if action == "add":
        key = draw(TEXT.filter(lambda k: k not in node and k))
        node[key] = draw(st.one_of(st.integers(), TEXT))
        return raw, where, key
    table = draw(st.sampled_from(["datasets", "variants"]))
    old = "smoke" if table == "datasets" else "hg1x2"
    new = draw(TEXT.filter(lambda k: not re.fullmatch(r"[a-z0-9][a-z0-9_.-]*", k)))
    raw[table][new] = raw[table].pop(old)
    return raw, table, new


@seed(FAULT_SEED)  # reproducible; HGBENCH_FAULT_SEED explores other examples
@settings(max_examples=N_STRUCTURE, **SETTINGS)
@given(bad_structure())
def test_missing_unknown_and_badly_named_keys_are_rejected_naming_them(case):
    raw, where, word = case
    msg = assert_rejected_naming(raw, where)
    assert repr(word)[1:-1] in msg or word in msg, (word, msg)


@seed(FAULT_SEED)  # reproducible; HGBENCH_FAULT_SEED explores other examples
@settings(max_examples=40, **SETTINGS)
@given(input_res=st.integers(1, 64).map(lambda k: 16 * k), output_res=st.integers(4, 512))
def test_cross_references_output_res_is_a_quarter_of_input_res(input_res, output_res):
    assume(output_res * 4 != input_res)
    raw = smoke_raw_params()
    raw["datasets"]["smoke"].update(input_res=input_res, output_res=output_res)
    assert_rejected_naming(raw, "datasets.smoke.output_res")


@seed(FAULT_SEED)  # reproducible; HGBENCH_FAULT_SEED explores other examples
@settings(max_examples=40, **SETTINGS)
@given(name=st.from_regex(r"[a-z0-9][a-z0-9_.-]{0,10}", fullmatch=True), field=st.sampled_from(["dataset", "variant"]))
def test_cross_references_experiments_name_defined_datasets_and_variants(name, field):
    raw = smoke_raw_params()
    assume(name not in raw[f"{field}s"])
    raw["experiments"][1][field] = name
    msg = assert_rejected_naming(raw, f"experiments.1.{field}")
    assert "allowed values" in msg


# ---------------------------------------------------------------------------------------------
# through the command line: before any work, one line, no traceback
# ---------------------------------------------------------------------------------------------

STAGES = {
    "fetch": lambda p, o: ["fetch", "--params", p, "--dataset", "smoke", "--out", o],
    "prepare": lambda p, o: ["prepare", "--params", p, "--dataset", "smoke", "--raw", o + "-raw", "--out", o],
    "train": lambda p, o: [
        "train",
        "--params",
        p,
        "--dataset",
        "smoke",
        "--variant",
        "hg1x2",
        "--seed",
        "0",
        "--data",
        o + "-data",
        "--out",
        o,
    ],
}


@seed(FAULT_SEED)  # reproducible; HGBENCH_FAULT_SEED explores other examples
@settings(max_examples=N_CLI, **SETTINGS)
@given(case=bad_value(), stage=st.sampled_from(sorted(STAGES)))
def test_cli_refuses_invalid_params_before_any_work(case, stage, tmp_path):
    raw, key = case
    params = tmp_path / "bad.yaml"
    params.write_text(yaml.safe_dump(raw, allow_unicode=True))
    out = tmp_path / "out"
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        status = main(STAGES[stage](str(params), str(out)))
    assert_clean_error(status, err.getvalue(), stage, f"{params}: invalid params key '{key}")
    assert not out.exists()  # nothing was started


@pytest.mark.parametrize(
    "stage,key,value", [("fetch", "train.lr", ".nan"), ("prepare", "datasets.smoke.input_res", "100")]
)
def test_a_new_process_prints_one_line_and_no_traceback(tmp_path, stage, key, value):
    text = (ROOT / "params" / "smoke.yaml").read_text()
    leaf = key.rsplit(".", 1)[1]
    params = tmp_path / "bad.yaml"
    params.write_text(re.sub(rf"(\n\s+{leaf}:) [^\n]+", rf"\1 {value}", text, count=1))
    out = tmp_path / "out"
    proc = hgbench(*STAGES[stage](str(params), str(out)))
    line = assert_clean_error(proc.returncode, proc.stderr, stage, f"invalid params key '{key}'")
    assert proc.stderr.strip() == line and not out.exists()


def test_an_unexpected_error_is_one_line_not_a_traceback(monkeypatch, capsys):
    """The last net: an exception no stage expects (a bug) still ends in one line, status 1, with
    the way to get the traceback; ``HGBENCH_DEBUG=1`` shows it."""
    import hgbench.cli as cli

    def broken(args):
        raise KeyError("boom")

    monkeypatch.setattr(cli, "cmd_describe", broken)
    assert main(["describe", "--params", str(ROOT / "params" / "smoke.yaml")]) == 1
    err = capsys.readouterr().err
    assert err.strip() == (
        "hgbench describe: error: unexpected KeyError: 'boom' (this is a bug in hgbench; "
        "rerun with HGBENCH_DEBUG=1 to see the traceback and report it)"
    )
    monkeypatch.setenv("HGBENCH_DEBUG", "1")
    with pytest.raises(KeyError):
        main(["describe", "--params", str(ROOT / "params" / "smoke.yaml")])


@pytest.mark.parametrize(
    "text,needle",
    [
        ("train:\n  lr: 0.1\n  lr: 0.2\n", "invalid params key 'train.lr': given twice (lines 2 and 3); keep one"),
        ("profile: [unclosed\n", "not valid YAML"),  # (a pasted second value is not silently used)
        ("", "invalid params key '<top level>'"),  # empty file
        ("- a list\n- not a mapping\n", "invalid params key '<top level>'"),
        ("just a string\n", "invalid params key '<top level>'"),
    ],
)
def test_broken_params_files_name_the_file(tmp_path, text, needle):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ParamsError, match=re.escape(needle)) as err:
        load_params(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_binary_or_missing_params_file_names_the_file(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff\xfe")
    with pytest.raises(ParamsError, match="bad.yaml"):
        load_params(path)
    with pytest.raises(ParamsError, match="not found"):
        load_params(tmp_path / "absent.yaml")


def test_every_schema_leaf_is_covered():
    """The generator knows invalid values for every kind of key the schema has (and finds them)."""
    keys = {".".join(map(str, p)) for p, _ in LEAVES}
    assert {
        "train.lr",
        "train.lr_schedule",
        "train.devices",
        "datasets.smoke.synthetic.person_height",
        "variants.hg1x2.supervision",
        "experiments.0.seed",
        "evaluate.protocol",
        "profile",
    } <= keys
    for _, sub in LEAVES:
        invalid_values(sub)
    assert len(LEAVES) >= 50


# ---------------------------------------------------------------------------------------------
# through snakemake: the workflow checks a profile as hgbench does, before any job
# ---------------------------------------------------------------------------------------------

WORKFLOW = runpy.run_path(str(ROOT / "workflow" / "rules" / "profile.smk"))
WORKFLOW_SCHEMA = str(ROOT / "workflow" / "schemas" / "params.schema.yaml")


def workflow_refusal(raw) -> str:
    """The message the workflow's own profile check (no hgbench) refuses ``raw`` with."""
    with pytest.raises(WORKFLOW["ProfileError"]) as err:
        WORKFLOW["check_profile"](raw, "bad.yaml", WORKFLOW_SCHEMA)
    return str(err.value)


def hgbench_refusal(raw) -> str:
    with pytest.raises(ParamsError) as err:
        params_from_dict(raw, "bad.yaml")
    return str(err.value)


@seed(FAULT_SEED)  # reproducible; HGBENCH_FAULT_SEED explores other examples
@settings(max_examples=N_STRUCTURE, **SETTINGS)
@given(case=st.one_of(bad_value(), bad_structure()))
def test_the_workflow_refuses_every_invalid_profile_with_hgbench_s_message(case):
    assert workflow_refusal(case[0]) == hgbench_refusal(case[0])


def _set(path: str, value):
    def edit(raw):
        node = raw
        *parents, leaf = path.split(".")
        for p in parents:
            node = node[int(p)] if isinstance(node, list) else node[p]
        node[leaf] = value

    return edit


CROSS_REFERENCES = {  # edits of the smoke profile that only hgbench's cross-checks refuse
    "output_res does not divide": _set("datasets.smoke.output_res", 12),
    "output_res is not a quarter": _set("datasets.smoke.output_res", 8),
    "undefined dataset": _set("experiments.1.dataset", "mpii"),
    "undefined variant": _set("experiments.1.variant", "hg8"),
    "duplicate run": _set("experiments.1.variant", "hg1x2"),
    "synthetic section of a real set": _set("datasets.smoke.source", "mpii"),
    "labels outside the FLIC layout": _set("datasets.smoke.labels", "person"),
    "person_height min > max": _set("datasets.smoke.synthetic.person_height", [90, 50]),
    "missing joints in the FLIC layout": _set("datasets.smoke-flic.synthetic.missing_rate", 0.1),
    "inner supervision of stacks": _set("variants.hg2x1.supervision", "inner"),
    "inner supervision too shallow": _set("variants.hg1x2.supervision", "inner"),
    "depth does not divide output_res": _set("variants.hg1x2.depth", 5),
    "variant past the parameter bound": _set(
        "variants.hg2x1", {"stacks": 16, "modules": 16, "features": 1024, "depth": 2, "supervision": "all"}
    ),
}


@pytest.mark.parametrize("case", sorted(CROSS_REFERENCES))
def test_the_workflow_cross_checks_a_profile_as_hgbench_does(case):
    raw = smoke_raw_params()
    CROSS_REFERENCES[case](raw)
    assert workflow_refusal(raw) == hgbench_refusal(raw)


def test_the_workflow_accepts_every_shipped_profile():
    for path in sorted((ROOT / "params").glob("*.yaml")):
        assert WORKFLOW["read_profile"](str(path), WORKFLOW_SCHEMA) == yaml.safe_load(path.read_text())


SMOKE_TEXT = (ROOT / "params" / "smoke.yaml").read_text()
LR_LINE = SMOKE_TEXT.splitlines().index("  lr: 2.5e-4") + 1  # 1-based line of the smoke profile's lr
SNAKEMAKE_CASES = {  # name: (profile text, the message's key and detail)
    "duplicate key": (
        SMOKE_TEXT.replace("  lr: 2.5e-4\n", "  lr: 2.5e-4\n  lr: 1.0e-3\n"),
        f"invalid params key 'train.lr': given twice (lines {LR_LINE} and {LR_LINE + 1})",
    ),
    "NaN": (SMOKE_TEXT.replace("  lr: 2.5e-4\n", "  lr: .nan\n"), "invalid params key 'train.lr': nan is not"),
    "infinity": (SMOKE_TEXT.replace("  sigma: 1.0\n", "  sigma: .inf\n"), "invalid params key 'train.sigma'"),
    "unknown key": (
        SMOKE_TEXT + "bogus: 1\n",
        "invalid params key '<top level>': Additional properties are not allowed ('bogus' was unexpected)",
    ),
    "unknown nested key": (
        SMOKE_TEXT.replace("  lr: 2.5e-4\n", "  lr: 2.5e-4\n  warmup: 3\n"),
        "invalid params key 'train': Additional properties are not allowed ('warmup'",
    ),
    "billion laughs": (
        SMOKE_TEXT + laughs(),
        f"not valid params YAML at line {SMOKE_TEXT.count(chr(10)) + 1}: "
        f"anchors and aliases (&lol0, *lol0) are refused",
    ),
}


def sentinel_project(project):
    """A clone of the smoke profile with a finished-looking fetch output that a started job would
    delete first (Snakemake removes a job's outputs before it runs)."""
    cwd = project("smoke")
    manifest = cwd / "data/raw/smoke/smoke/MANIFEST.json"
    manifest.parent.mkdir(parents=True)
    manifest.write_text("{}\n")
    return cwd, manifest


@pytest.mark.parametrize("case", sorted(SNAKEMAKE_CASES))
def test_snakemake_refuses_an_invalid_profile_before_any_job_in_one_message(project, case):
    cwd, manifest = sentinel_project(project)
    text, needle = SNAKEMAKE_CASES[case]
    bad = cwd.parent / "bad.yaml"  # the user's own profile, beside the clone (the shipped files stay as they are)
    bad.write_text(text)
    proc = run(["snakemake", "--cores", "1", "--configfile", str(bad)], cwd, check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    lines = [line for line in out.splitlines() if line.strip() and "Using workflow specific profile" not in line]
    # Snakemake's frame: "WorkflowError in file <common.smk>, line N:", the message, "File ..., line N"
    assert len(lines) <= 3 and "Traceback" not in out, out
    message = next(line for line in lines if line.startswith(f"{bad}: "))
    assert needle in message, message
    with pytest.raises(ParamsError) as err:  # hgbench says the same, word for word
        load_params(bad)
    assert message == str(err.value)
    assert "Job stats" not in out and "rule fetch" not in out
    assert manifest.read_text() == "{}\n" and not (cwd / "logs").exists()  # nothing started, nothing deleted


BAD_CONFIGFILES = {"missing": None, "binary": b"\x89PNG\r\n\x1a\n\x00\xff\xfe", "directory": "dir"}


def bad_configfile_run(project, kind):
    cwd, manifest = sentinel_project(project)
    path = cwd.parent / "bad.yaml"  # beside the clone, as in the test above
    if isinstance(BAD_CONFIGFILES[kind], bytes):
        path.write_bytes(BAD_CONFIGFILES[kind])
    elif BAD_CONFIGFILES[kind] == "dir":
        path.mkdir()
    proc = run(["snakemake", "--cores", "1", "--configfile", str(path)], cwd, check=False)
    return proc, manifest, cwd


@pytest.mark.parametrize("kind", sorted(BAD_CONFIGFILES))
def test_a_missing_binary_or_directory_configfile_starts_no_job(project, kind):
    proc, manifest, cwd = bad_configfile_run(project, kind)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "Job stats" not in out and "rule fetch" not in out
    assert manifest.read_text() == "{}\n" and not (cwd / "logs").exists()


@pytest.mark.xfail(
    strict=True,
    reason=(
        "Snakemake 9 loads every --configfile itself (ConfigSettings; snakemake/common/configfile.py opens "
        "the file outside its try, so no WorkflowError) before it reads any Snakefile: no workflow code can "
        "shorten this traceback. When Snakemake reports it in one line, this passes: drop the xfail."
    ),
)
@pytest.mark.parametrize("kind", sorted(BAD_CONFIGFILES))
def test_a_missing_binary_or_directory_configfile_is_one_message_naming_it(project, kind):
    proc, _, _ = bad_configfile_run(project, kind)
    out = proc.stdout + proc.stderr
    assert "Traceback" not in out and "bad.yaml" in out, out
