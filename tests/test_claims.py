"""claims: paired_pooled rows → claims.csv (the decision), and the report only rendering it."""

from __future__ import annotations

import ast
import importlib.util
import math
from pathlib import Path

import pandas as pd
import pytest

from hgbench import claims
from hgbench.claims import claim_for, claims_table, verdict
from hgbench.report import build

_spec = importlib.util.spec_from_file_location("_fake_runs_claims", Path(__file__).with_name("test_summarize.py"))
fake = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fake)

VARIANTS = {
    "hg1x2": {"stacks": 1, "modules": 2, "features": 32, "depth": 2, "supervision": "all"},
    "hg2x1": {"stacks": 2, "modules": 1, "features": 32, "depth": 2, "supervision": "all"},
    "hg2x1-last": {"stacks": 2, "modules": 1, "features": 32, "depth": 2, "supervision": "last"},
    "small": {"stacks": 1, "modules": 1, "features": 16, "depth": 2, "supervision": "all"},
    "hg2x4": {"stacks": 2, "modules": 4, "features": 32, "depth": 2, "supervision": "all"},
    "hg4x2": {"stacks": 4, "modules": 2, "features": 32, "depth": 2, "supervision": "all", "label": "HG 4×2"},
    "gone": {"stacks": 1, "modules": 1, "features": 8, "depth": 2, "supervision": "all"},
}
RUN = ("hg1x2", "hg2x1", "hg2x1-last", "small", "hg2x4", "hg4x2")  # "gone" is no experiment of synth


def params():
    return fake.make_params(
        {
            **fake.PROFILE,
            "variants": VARIANTS,
            "experiments": [{"dataset": "synth", "variant": v, "seed": s} for v in RUN for s in (0, 1, 2)],
        }
    )


COMMON = {
    "dataset": "synth",
    "protocol": "official",
    "metric": "pckh@0.5",
    "n_seeds": 3,
    "seeds": "0 1 2",
    "n_boot": 2000,
    "n_people": 40,
}
POOLED = pd.DataFrame(
    [
        # A = one hourglass, B = stacked: A − B = −2 [−3, −1] supports stacking → +2 [1, 3], holds
        {
            **COMMON,
            "variant_a": "hg1x2",
            "variant_b": "hg2x1",
            "quantity": "Mean",
            "diff": -2.0,
            "ci_low": -3.0,
            "ci_high": -1.0,
            "p": 0.001,
            "per_seed": "-1.5000 -2.5000 -2.0000",
            "seed_std": 0.5,
            "seeds_agree": 3,
        },
        # int. sup. − last only = −1.5 [−2.5, −0.5]: the claim is reversed (already in the claim's order)
        {
            **COMMON,
            "variant_a": "hg2x1",
            "variant_b": "hg2x1-last",
            "quantity": "ablation",
            "diff": -1.5,
            "ci_low": -2.5,
            "ci_high": -0.5,
            "p": 0.01,
            "per_seed": "-1.0000 -2.0000 -1.5000",
            "seed_std": 0.5,
            "seeds_agree": 3,
        },
        # no claim (other capacity): A − B kept, CI across 0
        {
            **COMMON,
            "variant_a": "small",
            "variant_b": "hg2x1",
            "quantity": "Mean",
            "diff": 0.4,
            "ci_low": -0.6,
            "ci_high": 1.4,
            "p": 0.4,
            "per_seed": "1.0000 -0.2000 0.4000",
            "seed_std": 0.6,
            "seeds_agree": 2,
        },
        # no claim, CI below 0: the second one is higher
        {
            **COMMON,
            "variant_a": "small",
            "variant_b": "hg1x2",
            "quantity": "Mean",
            "diff": -3.0,
            "ci_low": -4.0,
            "ci_high": -2.0,
            "p": 0.0,
            "per_seed": "-3.0000 -3.0000 -3.0000",
            "seed_std": 0.0,
            "seeds_agree": 3,
        },
        # Fig. 9 pair (2×4 vs 4×2, both intermediate supervision): the paper's difference 87.8 − 87.4
        {
            **COMMON,
            "variant_a": "hg2x4",
            "variant_b": "hg4x2",
            "quantity": "ablation",
            "diff": -0.3,
            "ci_low": math.nan,
            "ci_high": math.nan,
            "p": math.nan,
            "per_seed": "-0.3000",
            "seed_std": math.nan,
            "seeds_agree": 1,
            "n_seeds": 1,
            "seeds": "0",
        },
        {
            **COMMON,
            "variant_a": "gone",
            "variant_b": "hg2x1",
            "quantity": "Mean",
            "diff": 1,
            "ci_low": 0.5,
            "ci_high": 2,
            "p": 0.1,
            "per_seed": "1 1 1",
            "seed_std": 0,
            "seeds_agree": 3,
        },  # not run on synth: dropped
    ]
)


def test_verdict_from_the_confidence_interval():
    assert verdict(0.2, 3.0) == "holds"
    assert verdict(-3.0, -0.1) == "reversed"
    assert verdict(-0.5, 2.0) == "not resolved at this sample size"
    assert verdict(0.0, 1.0) == "not resolved at this sample size"  # touching zero is not resolved
    assert verdict(None, 1.0) == "not computed"
    assert verdict(math.nan, 1.0) == "not computed"


def test_claims_are_recognised():
    v = params().variants
    assert claim_for(v["hg1x2"], v["hg2x1"])[1] == "hg2x1"  # more stacks at equal capacity
    assert claim_for(v["hg2x1-last"], v["hg2x1"])[1] == "hg2x1"  # intermediate supervision
    assert claim_for(v["small"], v["hg1x2"]) is None  # other capacity: no claim
    assert "without intermediate supervision" in claim_for(v["hg1x2"], v["hg2x1-last"])[0]
    assert "without" not in claim_for(v["hg1x2"], v["hg2x1"])[0]
    four_last = fake.make_params(
        {
            **fake.PROFILE,
            "variants": {
                "hg4x1": {"stacks": 4, "modules": 1, "features": 32, "depth": 2, "supervision": "all"},
                "hg2x2-last": {"stacks": 2, "modules": 2, "features": 32, "depth": 2, "supervision": "last"},
            },
            "experiments": [{"dataset": "synth", "variant": "hg4x1", "seed": 0}],
        }
    ).variants
    assert claim_for(four_last["hg4x1"], four_last["hg2x2-last"]) is None  # stacks and loss both differ


def test_claims_table_orients_decides_and_sorts():
    table = claims_table(POOLED, params(), "synth")
    assert list(table.columns) == claims.COLUMNS
    assert len(table) == 5 and "gone" not in set(table["first"]) | set(table["second"])
    assert list(table["is_claim"]) == [True, True, True, False, False]  # claims first
    rows = {(r["first"], r["second"]): r for r in table.to_dict("records")}

    stack = rows["hg2x1", "hg1x2"]  # flipped: the stacked variant is expected higher
    assert stack["claim"].startswith("stacking helps at equal capacity: 2×1 beats 1×2")
    assert (stack["diff"], stack["ci_low"], stack["ci_high"]) == (2.0, 1.0, 3.0)
    assert stack["per_seed"] == "1.5000 2.5000 2.0000" and stack["verdict"] == "holds"
    assert stack["p"] == 0.001 and stack["seeds_agree"] == 3 and stack["n_seeds"] == 3
    assert math.isnan(stack["paper_diff"])  # Fig. 9 has no 1×2 / 2×1 row

    sup = rows["hg2x1", "hg2x1-last"]  # already oriented
    assert sup["claim"].startswith("intermediate supervision helps stacked hourglasses")
    assert (sup["diff"], sup["ci_low"], sup["ci_high"], sup["verdict"]) == (-1.5, -2.5, -0.5, "reversed")
    assert sup["per_seed"] == "-1.0000 -2.0000 -1.5000" and sup["quantity"] == "ablation"

    fig9 = rows["hg4x2", "hg2x4"]
    assert fig9["diff"] == 0.3 and fig9["per_seed"] == "0.3000" and fig9["paper_diff"] == pytest.approx(0.4)
    assert fig9["verdict"] == "not computed"  # no CI (one seed, NaN interval)

    assert rows["small", "hg2x1"]["claim"] == claims.NO_CLAIM
    assert (
        rows["small", "hg2x1"]["diff"] == 0.4
        and rows["small", "hg2x1"]["verdict"] == "not resolved at this sample size"
    )
    assert rows["small", "hg1x2"]["verdict"] == "second higher" and rows["small", "hg1x2"]["diff"] == -3.0
    assert all(math.isnan(r["paper_diff"]) for r in table.to_dict("records") if not r["is_claim"])


def test_claims_table_of_an_empty_pooled_table_has_the_columns():
    empty = pd.DataFrame(columns=list(claims.POOLED_INPUT))
    table = claims_table(empty, params(), "synth")
    assert table.empty and list(table.columns) == claims.COLUMNS


def test_report_renders_claims_csv_with_the_old_rows(tmp_path):
    """The page's rows from claims.csv (through the file) are what the report computed itself before."""
    p = params()
    claims_table(POOLED, p, "synth").to_csv(tmp_path / "claims.csv", index=False)
    names = build._display_names(p, list(RUN))
    rows = build._claim_rows(pd.read_csv(tmp_path / "claims.csv"), names)
    assert [r["is_claim"] for r in rows] == [True, True, True, False, False]
    by_pair = {(r["higher"], r["other"]): r for r in rows}
    stack = by_pair["hg2x1", "hg1x2"]
    assert (stack["diff"], stack["low"], stack["high"]) == (2.0, 1.0, 3.0)
    assert stack["verdict"] == "holds" and stack["per_seed"] == "+1.5, +2.5, +2.0"
    assert stack["agree"] == "3 of 3" and stack["quantity"] == "Mean (PCKh@0.5)" and stack["paper"] is None
    sup = by_pair["hg2x1", "hg2x1-last"]
    assert sup["diff"] == -1.5 and sup["verdict"] == "reversed" and sup["quantity"] == "ablation metric (PCKh@0.5)"
    fig9 = by_pair["HG 4×2", "hg2x4"]  # display labels
    assert fig9["paper"] == pytest.approx(0.4) and fig9["low"] is None and fig9["agree"] == "1 of 1"
    assert by_pair["small", "hg2x1"]["verdict"] == "not resolved at this sample size"
    assert (
        by_pair["small", "hg2x1"]["agree"] == "2 of 3" and by_pair["small", "hg2x1"]["per_seed"] == "+1.0, -0.2, +0.4"
    )
    assert by_pair["small", "hg1x2"]["verdict"] == "hg1x2 higher"  # "second higher", with its label
    # the page's order: claims first, then by claim text, labels and quantity
    assert [(r["higher"], r["other"]) for r in rows] == [
        ("hg2x1", "hg2x1-last"),
        ("hg2x1", "hg1x2"),
        ("HG 4×2", "hg2x4"),
        ("small", "hg1x2"),
        ("small", "hg2x1"),
    ]


def test_the_report_decides_nothing_and_refuses_a_verdict_its_ci_contradicts(tmp_path):
    """The verdict on the page is claims.csv's, checked with hgbench.claims' own rule (issue 16:
    stages verify what they read); the report holds no rule of its own."""
    table = claims_table(POOLED, params(), "synth")
    table.to_csv(tmp_path / "claims.csv", index=False)
    names = {v: v for v in RUN}
    rows = build._claim_rows(pd.read_csv(tmp_path / "claims.csv"), names)
    assert len(rows) == len(table)  # every row's verdict follows from its CI
    table.loc[0, "verdict"] = "holds"
    table.loc[0, "ci_low"], table.loc[0, "ci_high"] = -9.0, -8.0
    table.to_csv(tmp_path / "claims.csv", index=False)
    with pytest.raises(ValueError, match=r"the verdict 'holds' .* does not follow from its 95 % CI \[-9.0, -8.0\]"):
        build._claim_rows(pd.read_csv(tmp_path / "claims.csv"), names, tmp_path / "claims.csv")
    assert not hasattr(build, "verdict") and not hasattr(build, "claim_for")


def test_claims_imports_no_report_and_the_report_no_stats():
    tree = ast.parse(Path(claims.__file__).read_text())
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)} | {
        a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names
    }
    assert not any("report" in m for m in imported), imported
    assert imported <= {"__future__", "math", "pandas", "hgbench.config", "hgbench.kinds"}, imported
    report_src = Path(build.__file__).read_text()
    assert "paired_pooled" not in report_src and "ci_low > 0" not in report_src
