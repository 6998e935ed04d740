import copy
from pathlib import Path

import pytest
import yaml

from hgbench.config import ParamsError, load_params, params_from_dict

ROOT = Path(__file__).resolve().parents[1]
PROFILES = sorted((ROOT / "params").glob("*.yaml"))


def smoke():
    return yaml.safe_load((ROOT / "params" / "smoke.yaml").read_text())


@pytest.mark.parametrize("path", PROFILES, ids=lambda p: p.stem)
def test_every_profile_is_valid_and_named_after_its_file(path):
    params = load_params(path)
    assert params.profile == path.stem
    assert params.experiments


def test_paper_profile_has_the_papers_variants():
    p = load_params(ROOT / "params" / "paper.yaml")
    shape = {n: (v.stacks, v.modules, v.supervision) for n, v in p.variants.items()}
    assert shape["hg8"] == (8, 1, "all")
    assert shape["hg4x2"] == (4, 2, "all") and shape["hg2x4"] == (2, 4, "all")
    assert shape["hg2x4-last"] == (2, 4, "last")  # HG-Stacked
    assert shape["hg1x8"] == (1, 8, "all") and shape["hg1x8-int"] == (1, 8, "inner")
    assert {(e.dataset, e.variant) for e in p.experiments} >= {("mpii", "hg8"), ("flic", "hg8")}


@pytest.mark.parametrize(
    "mutate, key, hint",
    [
        (lambda d: d["train"].update(optimizer="sgd"), "train.optimizer", "'rmsprop', 'adam'"),
        (
            lambda d: d["variants"]["hg1x2"].update(supervision="some"),
            "variants.hg1x2.supervision",
            "'all', 'last', 'inner'",
        ),
        (lambda d: d["evaluate"].update(protocol="pck"), "evaluate.protocol", "'official'"),
        (lambda d: d["train"].update(epochs=0), "train.epochs", "minimum"),
        (lambda d: d["train"].update(lr="fast"), "train.lr", "not of type"),
        (lambda d: d["train"].update(epohcs=3), "train", "allowed keys here"),
        (lambda d: d["experiments"][0].update(variant="hg9"), "experiments.0.variant", "hg1x2, hg2x1"),
        (lambda d: d["datasets"]["smoke"].update(output_res=32), "datasets.smoke.output_res", "input_res / 4"),
        (lambda d: d["variants"]["hg2x1"].update(supervision="inner"), "variants.hg2x1.supervision", "stacks: 1"),
        (lambda d: d["variants"]["hg2x1"].update(depth=5), "variants.hg2x1.depth", "output_res"),
        (lambda d: d.update(device="tpu"), "device", "'auto', 'cpu', 'cuda'"),
        (lambda d: d["datasets"].update(summary=copy.deepcopy(d["datasets"]["smoke"])), "datasets", "summary"),
        (
            lambda d: d["datasets"]["smoke-flic"]["synthetic"].update(layout="coco"),
            "datasets.smoke-flic.synthetic.layout",
            "'mpii', 'flic'",
        ),
        (
            lambda d: d["datasets"]["smoke-flic"]["synthetic"].update(missing_rate=0.1),
            "datasets.smoke-flic.synthetic.missing_rate",
            "missing_rate: 0",
        ),
    ],
)
def test_invalid_values_name_the_key_and_the_allowed_values(mutate, key, hint):
    raw = smoke()
    mutate(raw)
    with pytest.raises(ParamsError) as err:
        params_from_dict(raw, "params/smoke.yaml")
    msg = str(err.value)
    assert f"'{key}'" in msg and hint in msg and "params/smoke.yaml" in msg


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ParamsError, match="not found"):
        load_params(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("profile: [unclosed\n")
    with pytest.raises(ParamsError, match="not valid YAML"):
        load_params(bad)


def test_schema_symlink_points_at_the_package_schema():
    link = ROOT / "workflow" / "schemas" / "params.schema.yaml"
    assert link.resolve() == (ROOT / "src" / "hgbench" / "params.schema.yaml").resolve()
