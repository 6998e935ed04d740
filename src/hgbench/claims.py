"""The paper's claims as data: ``paired_pooled.csv`` → ``claims.csv`` (written by ``hgbench summarize``).

Each row of ``paired_pooled.csv`` (variants A − B pooled over their common seeds, two-level paired
bootstrap, :mod:`hgbench.summarize`) becomes one row of the claims table. When the two variants
test one of the paper's claims (:func:`claim_for`) the row is oriented so that ``first`` is the
variant the paper expects to score higher, and ``diff``, ``ci_low``/``ci_high`` and ``per_seed``
are ``first − second`` (positive supports the paper); the verdict comes from the 95 % CI alone
(:func:`verdict`). A pair the paper says nothing about keeps paired_pooled's order (``first`` =
A) and gets a verdict that names which one is higher. The report (``hgbench report``) only
renders this table.

``claims.csv`` columns (one row per pair of variants × quantity):

==============  =================================================================================
``dataset``     the dataset
``claim``       the claim tested, in words, or :data:`NO_CLAIM`
``is_claim``    True when the pair tests a claim of the paper
``first``       for a claim: the variant expected to score higher; else paired_pooled's ``variant_a``
``second``      the other variant
``protocol``    PCK protocol of both runs (``official``, ``flic``, …)
``metric``      headline metric the quantity is taken at (``pckh@0.5``, ``pck@0.2``)
``quantity``    ``Mean`` or ``ablation`` (the paper's §4.2 metric)
``seeds``       the seeds both variants were run with, space-separated; ``n_seeds`` their number
``diff``        first − second, percentage points (mean of the per-seed differences)
``ci_low/high`` two-level paired-bootstrap 95 % CI of ``diff``; ``p``: two-sided p (not oriented)
``per_seed``    first − second of each seed, space-separated (4 decimals), in ``seeds`` order
``seed_std``    std of the per-seed differences; ``seeds_agree``: seeds agreeing in sign with ``diff``
``verdict``     claims: ``holds``, ``reversed``, ``not resolved at this sample size`` or
                ``not computed``; other pairs: ``first higher``, ``second higher``, or the same
                last two
``paper_diff``  the paper's difference (Fig. 9, MPII validation) for the pair, where it has one
==============  =================================================================================

Rows are sorted: claims first, then by claim, first, second, metric and quantity. Imports only
the profile (:mod:`hgbench.config`), the paper's rows (:mod:`hgbench.kinds`) and pandas, never the report.
"""

from __future__ import annotations

import math

import pandas as pd

from hgbench.config import Params, VariantConfig
from hgbench.kinds import MPII

PAPER_STACKS = MPII.paper_stacks
"""The paper's published stack ablation (Newell et al., ECCV 2016, Fig. 9: equal capacity,
intermediate supervision, MPII validation), kept with its kind (:data:`hgbench.kinds.MPII`)."""

NO_CLAIM = "no claim in the paper (not equal capacity, or more than one difference)"
HOLDS, REVERSED, UNRESOLVED, NOT_COMPUTED = "holds", "reversed", "not resolved at this sample size", "not computed"
FIRST_HIGHER, SECOND_HIGHER = "first higher", "second higher"

COLUMNS = [
    "dataset",
    "claim",
    "is_claim",
    "first",
    "second",
    "protocol",
    "metric",
    "quantity",
    "seeds",
    "n_seeds",
    "diff",
    "ci_low",
    "ci_high",
    "p",
    "per_seed",
    "seed_std",
    "seeds_agree",
    "verdict",
    "paper_diff",
]
POOLED_INPUT = (
    "variant_a",
    "variant_b",
    "seeds",
    "n_seeds",
    "metric",
    "quantity",
    "diff",
    "ci_low",
    "ci_high",
    "p",
    "per_seed",
    "seed_std",
    "seeds_agree",
)
"""The ``paired_pooled.csv`` columns a claims row is made from."""


def claim_for(a: VariantConfig, b: VariantConfig) -> tuple[str, str] | None:
    """``(claim, variant expected to score higher)`` when variants ``a`` and ``b`` test one of the
    paper's claims; None for a pair the paper says nothing about.

    Equal capacity = same features, depth and stacks × modules (the paper's 2×4 / 4×2 / 8×1 and
    HG 1×8 vs HG-Stacked 2×4). Intermediate supervision = the same network trained with a loss on
    every output (``all``; HG-Int: ``inner``) vs the final output only (``last``) or no inner heads.
    """
    same_body = a.features == b.features and a.depth == b.depth
    if same_body and a.stacks * a.modules == b.stacks * b.modules and a.stacks != b.stacks:
        more, fewer = (a, b) if a.stacks > b.stacks else (b, a)
        # Only stacking may differ: a single hourglass has one output (all = last), but two
        # stacked networks supervised differently confound stacking with supervision.
        same_loss = fewer.supervision == more.supervision or (fewer.stacks == 1 and fewer.supervision != "inner")
        if not same_loss:
            return None
        if more.supervision == "last":  # the paper's HG-Stacked vs HG: no intermediate loss at all
            return (
                f"stacking helps at equal capacity even without intermediate supervision: "
                f"{more.stacks}×{more.modules} (last stack only) beats {fewer.stacks}×{fewer.modules} "
                f"(HG-Stacked vs HG, Fig. 8)",
                more.name,
            )
        return (
            f"stacking helps at equal capacity: {more.stacks}×{more.modules} beats "
            f"{fewer.stacks}×{fewer.modules} (§4.2, Figs. 8–9)",
            more.name,
        )
    if same_body and (a.stacks, a.modules) == (b.stacks, b.modules) and a.supervision != b.supervision:
        if a.stacks > 1 and {a.supervision, b.supervision} == {"all", "last"}:
            better = a if a.supervision == "all" else b
            return (
                "intermediate supervision helps stacked hourglasses (HG-Stacked-Int vs HG-Stacked, Fig. 8)",
                better.name,
            )
        if a.stacks == 1 and "inner" in (a.supervision, b.supervision):
            better = a if a.supervision == "inner" else b
            return "intermediate supervision helps a single hourglass (HG-Int vs HG, Fig. 8)", better.name
    return None


def verdict(low: float | None, high: float | None) -> str:
    """Words for a difference oriented as (expected higher − other), from its 95 % CI: the claim
    holds when the whole interval is above zero, is reversed when it is below, else unresolved."""
    if _missing(low) or _missing(high):
        return NOT_COMPUTED
    if low > 0:
        return HOLDS
    if high < 0:
        return REVERSED
    return UNRESOLVED


def paper_difference(better: VariantConfig, other: VariantConfig, quantity: str) -> float | None:
    """The paper's Fig. 9 difference for a pair of its equal-capacity stack variants, if it has one."""
    final = {(r["stacks"], r["modules"]): r["final"] for r in PAPER_STACKS}
    if quantity != "ablation" or better.supervision != "all" or other.supervision != "all":
        return None
    a, b = final.get((better.stacks, better.modules)), final.get((other.stacks, other.modules))
    return None if a is None or b is None else round(a - b, 1)


def _missing(x) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))


def _number(x) -> float:
    """A table cell as float (NaN for an empty or non-numeric cell)."""
    try:
        value = float(x)
    except (TypeError, ValueError):
        return math.nan
    return value


def _per_seed(text) -> list[float]:
    """The space-separated per-seed differences of a paired_pooled.csv row ([] if unreadable)."""
    try:
        return [float(x) for x in str(text).split()]
    except ValueError:
        return []


def _negate(x: float) -> float:
    return -x if not math.isnan(x) else x


def claim_row(pooled: dict, params: Params, dataset: str) -> dict:
    """One claims row from one paired_pooled row (a dict with :data:`POOLED_INPUT`)."""
    first, second = str(pooled["variant_a"]), str(pooled["variant_b"])
    diff, low, high = (_number(pooled[k]) for k in ("diff", "ci_low", "ci_high"))
    per_seed = _per_seed(pooled["per_seed"])
    claim = claim_for(params.variants[first], params.variants[second])
    if claim is not None and claim[1] == second:  # orient as (expected higher − other)
        first, second = second, first
        diff, low, high = _negate(diff), _negate(high), _negate(low)
        per_seed = [-d for d in per_seed]
    words = verdict(low, high)
    if claim is None:
        words = {HOLDS: FIRST_HIGHER, REVERSED: SECOND_HIGHER}.get(words, words)
    quantity = str(pooled["quantity"])
    paper = paper_difference(params.variants[first], params.variants[second], quantity) if claim else None
    return {
        "dataset": dataset,
        "claim": claim[0] if claim else NO_CLAIM,
        "is_claim": claim is not None,
        "first": first,
        "second": second,
        "protocol": str(pooled.get("protocol", "")),
        "metric": str(pooled["metric"]),
        "quantity": quantity,
        "seeds": str(pooled["seeds"]),
        "n_seeds": int(pooled["n_seeds"]),
        "diff": diff,
        "ci_low": low,
        "ci_high": high,
        "p": _number(pooled["p"]),
        "per_seed": " ".join(f"{d:.4f}" for d in per_seed),
        "seed_std": _number(pooled["seed_std"]),
        "seeds_agree": _number(pooled["seeds_agree"]),
        "verdict": words,
        "paper_diff": math.nan if paper is None else paper,
    }


def claims_table(pooled: pd.DataFrame, params: Params, dataset: str) -> pd.DataFrame:
    """The claims table of ``dataset`` from its ``paired_pooled`` table (see the module docstring).

    Rows naming a variant that is not one of the dataset's experiments are left out.
    """
    variants = {e.variant for e in params.experiments_for(dataset)}
    rows = [
        claim_row(r, params, dataset)
        for r in pooled.to_dict("records")
        if str(r["variant_a"]) in variants and str(r["variant_b"]) in variants
    ]
    rows.sort(key=lambda r: (not r["is_claim"], r["claim"], r["first"], r["second"], r["metric"], r["quantity"]))
    return pd.DataFrame(rows, columns=COLUMNS)
