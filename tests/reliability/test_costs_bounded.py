"""Item 2 (bounds and costs) — every numeric params key has an upper bound a real run can meet,
and what a profile would cost (model parameters, disk of a synthetic dataset) is estimated and
checked before any work, with the estimate in the message.

Before: ``train.threads: 1000000`` passed validation and segfaulted (exit 139, nothing printed);
a seed of 10**30 failed later with "Overflow when unpacking long long"; a 7,030 M-parameter
variant and ``n_train: 10**12`` were accepted (the second filled the disk with no progress).
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import os
import runpy
import shutil
from pathlib import Path

import pytest
import torch
import yaml
from hypothesis import given, seed, settings
from hypothesis import strategies as st

from hgbench.cli import main
from hgbench.config import MAX_PARAMETERS, ParamsError, parameter_estimate, params_from_dict, schema
from hgbench.data import synthetic
from hgbench.data.fetch import FetchError, fetch_synthetic
from hgbench.model import ModelConfig, StackedHourglass, count_parameters

from .conftest import DATASET, FAULT_SEED, ROOT, assert_clean_error, smoke_raw_params

SCHEMA = schema()
WORKFLOW = runpy.run_path(str(ROOT / "workflow" / "rules" / "profile.smk"))
WORKFLOW_SCHEMA = str(ROOT / "workflow" / "schemas" / "params.schema.yaml")


# ---------------------------------------------------------------------------------------------
# every number has an upper bound
# ---------------------------------------------------------------------------------------------


def numeric_leaves(sub: dict, path: str = "") -> list[tuple[str, dict]]:
    """``(dotted key, schema)`` of every integer/number of the schema (``*`` for a name or list index)."""
    while "$ref" in sub:
        sub = SCHEMA["$defs"][sub["$ref"].rsplit("/", 1)[1]]
    out = []
    if sub.get("type") in ("integer", "number"):
        out.append((path, sub))
    for key, child in sub.get("properties", {}).items():
        out += numeric_leaves(child, f"{path}.{key}".lstrip("."))
    if isinstance(sub.get("additionalProperties"), dict):
        out += numeric_leaves(sub["additionalProperties"], f"{path}.*".lstrip("."))
    if isinstance(sub.get("items"), dict):
        out += numeric_leaves(sub["items"], f"{path}.*")
    return out


NUMERIC = numeric_leaves(SCHEMA)


def test_every_numeric_key_of_the_schema_has_an_upper_bound():
    keys = {k for k, _ in NUMERIC}
    assert {
        "train.threads",
        "experiments.*.seed",
        "datasets.*.synthetic.n_train",
        "train.lr_drop_epochs.*",
        "datasets.*.synthetic.person_height.*",
        "resources.images_per_s",
        "train.devices",
    } <= keys
    unbounded = [k for k, sub in NUMERIC if "maximum" not in sub and "exclusiveMaximum" not in sub]
    assert not unbounded, f"numeric keys without an upper bound: {unbounded}"

    # a list of numbers is bounded in length too
    def arrays(sub, path=""):
        while "$ref" in sub:
            sub = SCHEMA["$defs"][sub["$ref"].rsplit("/", 1)[1]]
        if sub.get("type") == "array" and sub.get("items", {}).get("type") in ("integer", "number"):
            yield path, sub
        for key, child in sub.get("properties", {}).items():
            yield from arrays(child, f"{path}.{key}".lstrip("."))
        if isinstance(sub.get("additionalProperties"), dict):
            yield from arrays(sub["additionalProperties"], f"{path}.*".lstrip("."))

    assert [k for k, sub in arrays(SCHEMA) if "maxItems" not in sub] == []


def test_seeds_fit_32_bits_and_shipped_profiles_fit_every_bound():
    seeds = [sub for k, sub in NUMERIC if k.endswith("seed")]
    assert len(seeds) == 3 and all(s["maximum"] == 2**32 - 1 for s in seeds)
    for path in sorted((ROOT / "params").glob("*.yaml")) + [ROOT / "config" / "config.yaml"]:
        params_from_dict(yaml.safe_load(path.read_text()), path.name)  # (test_config.py loads them too)


PAST_A_BOUND = {  # the examples: key -> value
    "train.threads": 1_000_000,
    "experiments.0.seed": 10**30,
    "datasets.smoke.synthetic.seed": 2**32,
    "datasets.smoke.synthetic.n_train": 10**12,
    "train.epochs": 10**9,
    "train.batch_size": 10**6,
    "train.workers": 10**4,
    "train.devices": 10**4,
    "train.checkpoint_every": 10**18,
    "predict.batch_size": 10**6,
}


def _edit(raw: dict, key: str, value) -> dict:
    node = raw
    *parents, leaf = key.split(".")
    for p in parents:
        node = node[int(p)] if isinstance(node, list) else node[p]
    node[int(leaf) if isinstance(node, list) else leaf] = value
    return raw


@pytest.mark.parametrize("key", sorted(PAST_A_BOUND))
def test_a_value_past_its_bound_is_refused_naming_the_key(key):
    raw = _edit(smoke_raw_params(), key, PAST_A_BOUND[key])
    with pytest.raises(ParamsError, match=f"invalid params key '{key}': .* is greater than the maximum of"):
        params_from_dict(raw, "bad.yaml")
    with pytest.raises(WORKFLOW["ProfileError"], match=f"invalid params key '{key}'"):  # the same in Snakemake
        WORKFLOW["check_profile"](raw, "bad.yaml", WORKFLOW_SCHEMA)


def test_a_past_bound_value_through_the_cli_is_refused_before_any_work(tmp_path, capsys):
    params = tmp_path / "bad.yaml"
    params.write_text(yaml.safe_dump(_edit(smoke_raw_params(), "datasets.smoke.synthetic.n_train", 10**12)))
    out = tmp_path / "raw"
    status = main(["fetch", "--params", str(params), "--dataset", "smoke", "--out", str(out)])
    assert_clean_error(status, capsys.readouterr().err, "fetch", "'datasets.smoke.synthetic.n_train'", "maximum")
    assert not out.exists() and list(tmp_path.iterdir()) == [params]


# ---------------------------------------------------------------------------------------------
# parameters: estimated without building the model, bounded at validation
# ---------------------------------------------------------------------------------------------


def built_parameters(stacks, modules, features, depth, joints, inner) -> int:
    with torch.device("meta"):  # no memory, no compute
        net = StackedHourglass(
            ModelConfig(
                stacks=stacks, modules=modules, features=features, depth=depth, joints=joints, inner_heads=inner
            )
        )
    return count_parameters(net)


@seed(FAULT_SEED)  # reproducible; HGBENCH_FAULT_SEED explores other examples
@settings(max_examples=25, deadline=None, database=None)
@given(
    stacks=st.integers(1, 3),
    modules=st.integers(1, 3),
    features=st.integers(4, 24).map(lambda k: 2 * k),
    depth=st.integers(1, 4),
    joints=st.sampled_from([11, 16]),
    inner=st.booleans(),
)
def test_the_parameter_estimate_is_the_built_model_s_count(stacks, modules, features, depth, joints, inner):
    n = built_parameters(stacks, modules, features, depth, joints, inner)
    assert parameter_estimate(stacks, modules, features, depth, joints, inner) == n
    assert WORKFLOW["parameter_estimate"](stacks, modules, features, depth, joints, inner) == n


def test_the_parameter_estimate_of_the_paper_s_model():
    assert parameter_estimate(8, 1, 256, 4) == built_parameters(8, 1, 256, 4, 16, False) == 25_434_112
    assert WORKFLOW["MAX_PARAMETERS"] == MAX_PARAMETERS


def test_a_variant_past_the_parameter_bound_is_refused_with_its_estimate(tmp_path, capsys):
    raw = smoke_raw_params()
    raw["variants"]["huge"] = {"stacks": 16, "modules": 16, "features": 1024, "depth": 2, "supervision": "all"}
    expected = (
        "bad.yaml: invalid params key 'variants.huge': variant 'huge' has ~7,030 M parameters; the bound is "
        "1,000 M (weights, gradients and optimizer state alone would take 112 GB); use fewer stacks, modules "
        "or features"
    )
    with pytest.raises(ParamsError) as err:
        params_from_dict(raw, "bad.yaml")
    assert str(err.value) == expected
    with pytest.raises(WORKFLOW["ProfileError"]) as err:
        WORKFLOW["check_profile"](raw, "bad.yaml", WORKFLOW_SCHEMA)
    assert str(err.value) == expected
    # just under the bound is accepted (the schema allows bigger; the bound is the estimate's)
    raw["variants"]["huge"].update(stacks=2)
    assert parameter_estimate(2, 16, 1024, 2) < MAX_PARAMETERS
    params_from_dict(raw, "ok.yaml")


# ---------------------------------------------------------------------------------------------
# disk: a synthetic dataset is checked against the free disk before its first image
# ---------------------------------------------------------------------------------------------


def tree_size(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def test_the_disk_estimate_bounds_what_fetch_writes(smoke_raw):
    written = tree_size(smoke_raw)
    estimate = synthetic.disk_bytes(DATASET.synthetic)
    assert written <= estimate <= 10 * written, (written, estimate)


def _free(n_bytes: int):
    real = shutil.disk_usage

    def disk_usage(path):
        usage = real(path)
        return type(usage)(usage.total, usage.total - n_bytes, n_bytes)

    return disk_usage


def test_a_synthetic_dataset_larger_than_the_free_disk_is_refused_before_any_image(tmp_path, monkeypatch):
    need = synthetic.disk_bytes(DATASET.synthetic)
    monkeypatch.setattr(shutil, "disk_usage", _free(need // 2))
    out = tmp_path / "raw" / "smoke"
    with pytest.raises(FetchError) as err:
        fetch_synthetic(out, DATASET.synthetic)
    msg = str(err.value)
    assert msg == (
        f"{out}: the synthetic dataset needs about {need / 1e6:,.1f} MB (32 images of 96x96 px), but "
        f"{out.parent} has {need // 2 / 1e6:,.1f} MB free; free space there, or lower synthetic.n_train, "
        f"n_valid or image_size"
    )
    assert os.listdir(out.parent) == []  # no dataset, no temporary folder, no lock file


def test_the_disk_check_through_the_cli_is_one_line_and_writes_nothing(tmp_path, monkeypatch, capsys):
    # (the smoke set: without the check, the test writes its 32 images and fails, it never fills a disk)
    monkeypatch.setattr(shutil, "disk_usage", _free(100_000))
    out = tmp_path / "raw"
    with contextlib.redirect_stdout(io.StringIO()):
        status = main(
            ["fetch", "--params", str(ROOT / "params" / "smoke.yaml"), "--dataset", "smoke", "--out", str(out)]
        )
    line = assert_clean_error(
        status,
        capsys.readouterr().err,
        "fetch",
        f"{out}: the synthetic dataset needs about 0.7 MB (32 images of 96x96 px), but {tmp_path} has 0.1 MB free",
    )
    assert line.endswith("free space there, or lower synthetic.n_train, n_valid or image_size")
    assert os.listdir(tmp_path) == []


def test_the_disk_estimate_of_the_largest_synthetic_set_the_schema_allows():
    cfg = dataclasses.replace(DATASET.synthetic, n_train=1_000_000, n_valid=1_000_000, image_size=2048)
    assert synthetic.disk_bytes(cfg) == 2_000_000 * (1.5 * 2048**2 + 8192)  # 12.6 TB: refused on most machines


# ---------------------------------------------------------------------------------------------
# disk: a processed split is checked against the free disk before it is written
# ---------------------------------------------------------------------------------------------


def test_the_split_disk_estimate_bounds_what_prepare_writes(smoke_data):
    from hgbench.data.prepare import split_disk_bytes
    from hgbench.data.schema import open_split

    for name in ("train.h5", "valid.h5"):
        with open_split(smoke_data / name) as split:
            n, c = len(split), split.crop_size
        written = (smoke_data / name).stat().st_size
        estimate = split_disk_bytes(n, c)
        assert written <= estimate <= 2 * written + 2**20, (name, written, estimate)


def test_a_split_larger_than_the_free_disk_is_refused_before_anything_is_written(smoke_raw, tmp_path, monkeypatch):
    from hgbench.data.prepare import PrepareError, prepare_dataset, split_disk_bytes

    monkeypatch.setattr(shutil, "disk_usage", _free(100_000))
    out = tmp_path / "processed"
    with pytest.raises(PrepareError) as err:
        prepare_dataset(smoke_raw, out, dataset="smoke", input_res=DATASET.input_res, crop_margin=DATASET.crop_margin)
    msg = str(err.value)
    need = split_disk_bytes(24, 80)
    assert msg == (
        f"{out / 'train.h5'}: the train split needs about {need / 1e9:,.2f} GB (24 crops of 80x80 px), but "
        f"{tmp_path} has 0.00 GB free; free space there, or lower input_res or crop_margin"
    )
    assert not out.exists() or not any(p.name.endswith(".h5") or ".tmp" in p.name for p in out.iterdir())


# ---------------------------------------------------------------------------------------------
# lists of runs and free text have a length bound too
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "edit, key",
    [
        (lambda r: r.__setitem__("experiments", r["experiments"] * 501), "experiments"),
        (lambda r: r.__setitem__("submissions", [r["experiments"][0]] * 101), "submissions"),
        (lambda r: r.__setitem__("description", "x" * 10_001), "description"),
        (lambda r: r["variants"]["hg2x1"].__setitem__("label", "x" * 201), "variants.hg2x1.label"),
        (lambda r: r["variants"].__setitem__("v" * 65, dict(r["variants"]["hg2x1"])), "variants"),
    ],
    ids=["experiments", "submissions", "description", "label", "variant name"],
)
def test_lists_of_runs_and_free_text_past_their_bound_are_refused(edit, key):
    raw = smoke_raw_params()
    edit(raw)
    with pytest.raises(
        ParamsError, match=rf"'{key}': \d+ (items|characters|entries), more than the maximum of \d+$"
    ) as err:
        params_from_dict(raw, "long.yaml")
    assert len(str(err.value)) < 200  # the value itself is not repeated (an 82 KB line before)
