"""Uncertainty of PCK numbers (numpy only, vectorised, seeded).

The unit of resampling is the **person** (one row of the split): the joints of one person are not
independent, so resampling joints would understate the spread. Every function takes per-person,
per-joint correctness ``correct`` and ``scored`` (both (N, J) bool, as stored in
``metrics.json["per_person"]``) and a ``statistic`` that turns per-joint hit and scored counts
(..., J) into a value (...,) — e.g. the protocol's Mean via
:func:`hgbench.metrics.table_from_counts` — so a bootstrap replicate is the published number
computed on a resampled set of people.

A replicate's counts are ``W @ correct`` and ``W @ scored`` with ``W`` (B, N) the multinomial
resampling weights (how often each person is drawn), so B = 1000 replicates of 2958 people cost
two small matrix products.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

Statistic = Callable[[np.ndarray, np.ndarray], np.ndarray]
"""(hits (..., J), counts (..., J)) → values (...,)."""


def resample_weights(n: int, n_boot: int, seed: int) -> np.ndarray:
    """(n_boot, n) float64: how often each of n people is drawn in each bootstrap replicate."""
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, n, size=(n_boot, n))
    # One bincount over (replicate, person) pairs: a multinomial draw, ~20x faster than
    # rng.multinomial for n in the thousands.
    flat = (draws + n * np.arange(n_boot)[:, None]).ravel()
    return np.bincount(flat, minlength=n_boot * n).reshape(n_boot, n).astype(np.float64)


def _counts(correct: np.ndarray, scored: np.ndarray, weights: np.ndarray):
    correct = np.asarray(correct, dtype=bool)
    scored = np.asarray(scored, dtype=bool)
    if correct.shape != scored.shape or correct.ndim != 2:
        raise ValueError(f"correct {correct.shape} and scored {scored.shape} must both be (N, J)")
    hits = weights @ (correct & scored).astype(np.float64)  # (B, J)
    counts = weights @ scored.astype(np.float64)
    return hits, counts


def bootstrap_ci(correct, scored, statistic: Statistic, n_boot: int = 1000, seed: int = 0, level: float = 0.95) -> dict:
    """Percentile bootstrap CI over people of ``statistic``.

    correct, scored: (N, J) bool. Returns {"value", "low", "high", "level", "n_boot", "seed"}
    (value = the statistic on the full set; low/high the (1 ± level)/2 percentiles of the
    replicates, NaN replicates ignored), in the statistic's unit (% for PCK).
    """
    correct = np.asarray(correct, dtype=bool)
    scored = np.asarray(scored, dtype=bool)
    value = float(statistic((correct & scored).sum(0), scored.sum(0)))
    weights = resample_weights(correct.shape[0], n_boot, seed)
    reps = np.asarray(statistic(*_counts(correct, scored, weights)), dtype=np.float64)
    alpha = (1.0 - level) / 2.0
    low, high = np.nanquantile(reps, [alpha, 1.0 - alpha]) if np.isfinite(reps).any() else (np.nan, np.nan)
    return {
        "value": value,
        "low": float(low),
        "high": float(high),
        "level": level,
        "n_boot": int(n_boot),
        "seed": int(seed),
    }


def paired_bootstrap(
    correct_a,
    scored_a,
    correct_b,
    scored_b,
    statistic: Statistic,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> dict:
    """Bootstrap of the difference ``statistic(A) − statistic(B)`` on the same people.

    Both variants are resampled with the same weights (the same people in every replicate), so
    the person-to-person variation that both share cancels out; that is what makes a 0.3-point
    difference between two models on 2958 people detectable.
    correct_*, scored_*: (N, J) bool with the same N (same split, same row order).
    Returns {"diff", "low", "high", "p", "level", "n_boot", "seed"}; ``p`` is the two-sided
    bootstrap p-value 2·min(P(diff* ≤ 0), P(diff* ≥ 0)), capped at 1.
    """
    ca, sa = np.asarray(correct_a, dtype=bool), np.asarray(scored_a, dtype=bool)
    cb, sb = np.asarray(correct_b, dtype=bool), np.asarray(scored_b, dtype=bool)
    if ca.shape[0] != cb.shape[0]:
        raise ValueError(f"paired bootstrap needs the same people: {ca.shape[0]} vs {cb.shape[0]} rows")
    diff = float(statistic((ca & sa).sum(0), sa.sum(0)) - statistic((cb & sb).sum(0), sb.sum(0)))
    weights = resample_weights(ca.shape[0], n_boot, seed)
    reps = np.asarray(statistic(*_counts(ca, sa, weights)), dtype=np.float64) - np.asarray(
        statistic(*_counts(cb, sb, weights)), dtype=np.float64
    )
    reps = reps[np.isfinite(reps)]
    if reps.size == 0:
        return {
            "diff": diff,
            "low": np.nan,
            "high": np.nan,
            "p": np.nan,
            "level": level,
            "n_boot": int(n_boot),
            "seed": int(seed),
        }
    alpha = (1.0 - level) / 2.0
    low, high = np.quantile(reps, [alpha, 1.0 - alpha])
    p = min(1.0, 2.0 * min(np.mean(reps <= 0), np.mean(reps >= 0)))
    return {
        "diff": diff,
        "low": float(low),
        "high": float(high),
        "p": float(p),
        "level": level,
        "n_boot": int(n_boot),
        "seed": int(seed),
    }


def seed_summary(values) -> dict:
    """Mean ± sample standard deviation (ddof = 1) across seeds; NaN values are skipped.

    Returns {"mean", "std", "n"}; std is NaN with fewer than two values.
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    v = v[np.isfinite(v)]
    if v.size == 0:
        return {"mean": float("nan"), "std": float("nan"), "n": 0}
    std = float(v.std(ddof=1)) if v.size > 1 else float("nan")
    return {"mean": float(v.mean()), "std": std, "n": int(v.size)}


def paired_bootstrap_seeds(
    runs_a, runs_b, statistic: Statistic, n_boot: int = 2000, seed: int = 0, level: float = 0.95
) -> dict:
    """Difference A − B pooled over training seeds, with a two-level paired bootstrap.

    runs_a, runs_b: sequences of k ``(correct, scored)`` pairs, each (N, J) bool; element s of both
    comes from the same seed and all runs are scored on the same N people. The pooled difference
    is the mean over seeds of the per-seed differences. Each replicate draws k seeds with
    replacement (training noise: another seed gives another model) and one resampling of people
    shared by every drawn seed and both variants (test-set noise: the same people for A and B, so
    what the variants share cancels). A CI that excludes zero therefore means the gap is larger
    than both what another set of people and what another handful of seeds would move it by.

    With few seeds the seed level is coarse (k = 3 seeds give 10 distinct draws) and its spread
    is underestimated by a factor (k − 1)/k in variance; ``seed_std`` (the sample std of the
    per-seed differences) and ``seeds_agree`` (seeds whose difference has the pooled sign) are
    returned so that a reader can judge that part directly. With k = 1 this is
    :func:`paired_bootstrap`'s people-only interval.

    Returns {"diff", "low", "high", "p", "per_seed" (list of k differences), "seed_std",
    "seeds_agree", "n_seeds", "level", "n_boot", "seed"} in the statistic's unit.
    """
    if len(runs_a) != len(runs_b) or not runs_a:
        raise ValueError(f"need the same non-zero number of seeds for both variants: {len(runs_a)} vs {len(runs_b)}")
    k = len(runs_a)
    hits_a, counts_a, hits_b, counts_b = [], [], [], []
    n = None
    for (ca, sa), (cb, sb) in zip(runs_a, runs_b):
        ca, sa = np.asarray(ca, dtype=bool), np.asarray(sa, dtype=bool)
        cb, sb = np.asarray(cb, dtype=bool), np.asarray(sb, dtype=bool)
        n = ca.shape[0] if n is None else n
        if ca.shape[0] != n or cb.shape[0] != n:
            raise ValueError(
                f"paired bootstrap needs the same people in every run: {ca.shape[0]}, {cb.shape[0]} vs {n} rows"
            )
        hits_a.append((ca & sa).astype(np.float64))
        counts_a.append(sa.astype(np.float64))
        hits_b.append((cb & sb).astype(np.float64))
        counts_b.append(sb.astype(np.float64))
    per_seed = np.array(
        [
            float(statistic(ha.sum(0), sa.sum(0)) - statistic(hb.sum(0), sb.sum(0)))
            for ha, sa, hb, sb in zip(hits_a, counts_a, hits_b, counts_b)
        ]
    )
    diff = float(per_seed.mean())

    weights = resample_weights(n, n_boot, seed)  # (B, N), one people draw per replicate
    # (k, B): every seed's difference under every people draw (two small matrix products each)
    by_seed = np.stack(
        [
            np.asarray(statistic(weights @ ha, weights @ sa), dtype=np.float64)
            - np.asarray(statistic(weights @ hb, weights @ sb), dtype=np.float64)
            for ha, sa, hb, sb in zip(hits_a, counts_a, hits_b, counts_b)
        ]
    )
    picks = np.random.default_rng([seed, 1]).integers(0, k, size=(n_boot, k))  # seeds drawn per replicate
    reps = by_seed[picks, np.arange(n_boot)[:, None]].mean(axis=1)
    reps = reps[np.isfinite(reps)]
    agree = int(np.sum(np.sign(per_seed) == np.sign(diff))) if diff != 0 else 0
    out = {
        "diff": diff,
        "per_seed": per_seed.tolist(),
        "seed_std": float(per_seed.std(ddof=1)) if k > 1 else float("nan"),
        "seeds_agree": agree,
        "n_seeds": k,
        "level": level,
        "n_boot": int(n_boot),
        "seed": int(seed),
    }
    if reps.size == 0:
        return {**out, "low": np.nan, "high": np.nan, "p": np.nan}
    alpha = (1.0 - level) / 2.0
    low, high = np.quantile(reps, [alpha, 1.0 - alpha])
    p = min(1.0, 2.0 * min(np.mean(reps <= 0), np.mean(reps >= 0)))
    return {**out, "low": float(low), "high": float(high), "p": float(p)}
