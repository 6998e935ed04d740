"""Bootstrap CIs, paired bootstrap and seed summaries (hgbench.stats)."""

import numpy as np
import pytest

from hgbench.metrics import statistic_for
from hgbench.stats import bootstrap_ci, paired_bootstrap, paired_bootstrap_seeds, resample_weights, seed_summary

MEAN = statistic_for("official", "Mean")


def fake(n=500, p=0.8, seed=0):
    rng = np.random.default_rng(seed)
    scored = rng.random((n, 16)) < 0.9
    scored[:, 6:8] = False
    return rng.random((n, 16)) < p, scored


def test_weights_are_a_multinomial_draw():
    w = resample_weights(50, 200, seed=3)
    assert w.shape == (200, 50) and (w.sum(axis=1) == 50).all() and w.min() >= 0
    np.testing.assert_array_equal(w, resample_weights(50, 200, seed=3))  # seeded
    assert abs(w.mean() - 1.0) < 1e-12


def test_ci_brackets_value_and_matches_a_naive_loop():
    correct, scored = fake()
    ci = bootstrap_ci(correct, scored, MEAN, n_boot=400, seed=1)
    assert ci["low"] < ci["value"] < ci["high"]
    # Same replicates by explicit resampling of people (slow reference).
    w = resample_weights(len(correct), 400, seed=1)
    reps = []
    for row in w:
        idx = np.repeat(np.arange(len(correct)), row.astype(int))
        reps.append(100 * (correct & scored)[idx].sum() / scored[idx].sum())
    assert (ci["low"], ci["high"]) == pytest.approx(tuple(np.quantile(reps, [0.025, 0.975])))
    # Width of a proportion's CI: ≈ 2·1.96·sqrt(p(1−p)/n_joints), n_joints ≈ 500·14·0.9.
    expected = 2 * 1.96 * np.sqrt(0.8 * 0.2 / scored.sum()) * 100
    assert ci["high"] - ci["low"] == pytest.approx(expected, rel=0.25)


def test_paired_bootstrap_identical_and_different():
    correct, scored = fake()
    same = paired_bootstrap(correct, scored, correct, scored, MEAN, n_boot=300)
    assert same["diff"] == 0 and same["low"] == 0 and same["high"] == 0 and same["p"] == 1.0
    better = correct | (np.random.default_rng(5).random(correct.shape) < 0.2)
    res = paired_bootstrap(better, scored, correct, scored, MEAN, n_boot=300)
    assert 0 < res["low"] <= res["diff"] <= res["high"] and res["p"] < 0.01
    # Pairing shrinks the CI compared with treating the runs as independent.
    a = bootstrap_ci(better, scored, MEAN, n_boot=300, seed=7)
    b = bootstrap_ci(correct, scored, MEAN, n_boot=300, seed=8)
    assert res["high"] - res["low"] < np.hypot(a["high"] - a["low"], b["high"] - b["low"])
    with pytest.raises(ValueError, match="same people"):
        paired_bootstrap(correct[:10], scored[:10], correct, scored, MEAN)


def test_seed_summary():
    assert seed_summary([87.0, 88.0, 89.0]) == {"mean": 88.0, "std": 1.0, "n": 3}
    one = seed_summary([87.0, float("nan")])
    assert one["mean"] == 87.0 and np.isnan(one["std"]) and one["n"] == 1
    assert seed_summary([])["n"] == 0


def test_pooled_seeds_one_seed_equals_the_people_bootstrap_and_more_seeds_add_seed_noise():
    correct, scored = fake(n=400)
    rng = np.random.default_rng(11)
    better = correct | (rng.random(correct.shape) < 0.15)
    one = paired_bootstrap_seeds([(better, scored)], [(correct, scored)], MEAN, n_boot=500, seed=3)
    ref = paired_bootstrap(better, scored, correct, scored, MEAN, n_boot=500, seed=3)
    assert one["diff"] == pytest.approx(ref["diff"]) and one["n_seeds"] == 1
    assert (one["low"], one["high"]) == pytest.approx((ref["low"], ref["high"]))
    assert np.isnan(one["seed_std"]) and one["seeds_agree"] == 1

    # Three seeds whose gaps disagree in sign: the pooled CI must cover zero although every
    # per-seed people-only CI excludes it (seed noise dominates).
    worse = correct & (rng.random(correct.shape) < 0.95)
    runs_a = [(better, scored), (worse, scored), (better, scored)]
    runs_b = [(correct, scored)] * 3
    pooled = paired_bootstrap_seeds(runs_a, runs_b, MEAN, n_boot=800, seed=4)
    per_seed = [paired_bootstrap(a, s, correct, scored, MEAN, n_boot=300) for a, s in runs_a]
    assert all(r["low"] > 0 or r["high"] < 0 for r in per_seed)
    assert pooled["per_seed"] == pytest.approx([r["diff"] for r in per_seed])
    assert pooled["diff"] == pytest.approx(np.mean(pooled["per_seed"]))
    assert pooled["low"] < 0 < pooled["high"] and pooled["seeds_agree"] == 2
    assert pooled["seed_std"] == pytest.approx(np.std(pooled["per_seed"], ddof=1))

    # Three seeds that agree: the pooled CI excludes zero and is no narrower than one seed's.
    agree = paired_bootstrap_seeds([(better, scored)] * 3, [(correct, scored)] * 3, MEAN, n_boot=500)
    assert agree["low"] > 0 and agree["seeds_agree"] == 3 and agree["seed_std"] == 0
    with pytest.raises(ValueError, match="same non-zero number of seeds"):
        paired_bootstrap_seeds([(better, scored)], [], MEAN)
    with pytest.raises(ValueError, match="same people"):
        paired_bootstrap_seeds([(better[:10], scored[:10])], [(correct, scored)], MEAN)
