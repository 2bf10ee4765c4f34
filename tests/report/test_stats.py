"""Paired statistics on hand-made per-case results whose differences, intervals and p-values are known."""
import math

import numpy as np
import pytest

from nnunet_kd.core.errors import KDError
from nnunet_kd.report.stats import balanced_accuracy, compare_classes, compare_records, compare_values, verdict


def test_all_cases_better_by_distinct_amounts():
    base = {f"c{i}": 0.5 for i in range(1, 11)}
    model = {f"c{i}": 0.5 + 0.01 * i for i in range(1, 11)}
    r = compare_values([model], [base])
    assert r["mean"] == pytest.approx(0.055)
    # all 10 signed ranks positive: exact two-sided Wilcoxon p = 2 / 2^10
    assert r["p"] == pytest.approx(2 / 2 ** 10)
    lo, hi = r["ci95"]
    assert 0.01 < lo < 0.055 < hi < 0.10
    assert (r["n_cases"], r["n_runs"], r["test"]) == (10, 1, "Wilcoxon signed-rank")
    assert r["verdict"] == "better (CI above 0)"
    nine = compare_values([model], [{c: v for c, v in base.items() if c != "c10"}])
    assert nine["ci95"] == [None, None] and nine["verdict"] == "too few cases"
    assert nine["p"] == pytest.approx(2 / 2 ** 9)


def test_symmetric_differences_have_a_ci_around_0():
    base = {f"c{i}": 0.6 for i in range(12)}
    model = {f"c{i}": 0.6 + (0.01 * (i // 2 + 1)) * (1 if i % 2 else -1) for i in range(12)}
    r = compare_values([model], [base])
    assert r["mean"] == pytest.approx(0.0, abs=1e-12)
    assert r["ci95"][0] < 0 < r["ci95"][1]
    assert r["p"] == pytest.approx(1.0)
    assert r["verdict"] == "no significant difference"


def test_interval_matches_the_normal_approximation_on_many_cases():
    rng = np.random.default_rng(5)
    d = rng.normal(-0.02, 0.05, 400)
    r = compare_values([{f"c{i}": 0.7 + x for i, x in enumerate(d)}], [{f"c{i}": 0.7 for i in range(400)}])
    half = 1.96 * d.std(ddof=1) / math.sqrt(len(d))
    assert r["mean"] == pytest.approx(d.mean())
    assert r["ci95"] == pytest.approx([d.mean() - half, d.mean() + half], abs=0.15 * half)
    assert r["verdict"] == "worse (CI below 0)"


def test_equal_differences_give_a_point_interval():
    base = {f"c{i}": 0.05 * i for i in range(10)}
    r = compare_values([{c: v + 0.1 for c, v in base.items()}], [base])
    assert r["ci95"] == pytest.approx([0.1, 0.1])
    assert r["verdict"] == "better (CI above 0)"


def test_nan_and_unpaired_cases_are_left_out():
    r = compare_values([{"a": 0.9, "b": float("nan"), "c": 0.5, "d": 0.4}],
                       [{"a": 0.8, "b": 0.7, "c": None, "e": 0.1}])
    assert r["n_cases"] == 1 and r["mean"] == pytest.approx(0.1)
    assert r["ci95"] == [None, None] and r["p"] is None and r["verdict"] == "too few cases"
    assert compare_values([{"a": float("nan")}], [{"a": 0.5}]) is None


def test_runs_on_the_same_cases_are_averaged_per_case():
    base = {f"c{i}": 0.5 for i in range(10)}
    run1 = {c: v + 0.1 for c, v in base.items()}
    run2 = {c: v - 0.04 for c, v in base.items()}
    r = compare_values([run1, run2], [base, base])
    assert (r["n_cases"], r["n_runs"]) == (10, 2)
    assert r["mean"] == pytest.approx(0.03)
    assert r["ci95"] == pytest.approx([0.03, 0.03])  # each case: mean of +0.1 and -0.04


def test_runs_on_distinct_cases_are_pooled():
    runs = [({f"s{s}/c{i}": 0.6 + 0.01 * i for i in range(5)}, {f"s{s}/c{i}": 0.6 for i in range(5)})
            for s in range(3)]
    r = compare_values([m for m, _ in runs], [b for _, b in runs])
    assert (r["n_cases"], r["n_runs"]) == (15, 1)  # each case in one run
    assert r["mean"] == pytest.approx(0.02)


def test_run_counts_must_match():
    with pytest.raises(KDError, match="as many runs"):
        compare_values([{"a": 1.0}, {"a": 1.0}], [{"a": 0.0}])


def test_verdict_words():
    assert verdict([0.01, 0.2]) == "better (CI above 0)"
    assert verdict([-0.2, -0.01]) == "worse (CI below 0)"
    assert verdict([-0.01, 0.2]) == "no significant difference"
    assert verdict([None, None]) == "too few cases"


def test_classification_mcnemar_and_balanced_accuracy():
    # 30 cases of classes a (20) and b (10); the baseline misses 8 a-cases, the model misses 1 b-case; 9 discordant
    true = ["a"] * 20 + ["b"] * 10
    base = {f"c{i}": (t, "b" if i < 8 else t) for i, t in enumerate(true)}
    model = {f"c{i}": (t, "a" if i == 29 else t) for i, t in enumerate(true)}
    r = compare_classes([model], [base])
    # balanced accuracy: model (1 + 0.9) / 2 = 0.95, baseline (12/20 + 1) / 2 = 0.8
    assert r["mean"] == pytest.approx(0.15)
    # exact McNemar: 8 of 9 discordant pairs favour the model: p = 2 * P(X >= 8), X ~ Bin(9, 1/2)
    assert r["p"] == pytest.approx(2 * (9 + 1) / 2 ** 9)
    assert r["test"] == "exact McNemar" and r["ci95"][0] < 0.15 < r["ci95"][1]
    assert compare_classes([base], [base])["p"] == 1.0
    with pytest.raises(KDError, match="true class"):
        compare_classes([{"c0": ("b", "b")}], [{"c0": ("a", "a")}])


def test_classification_repeated_runs_use_a_permutation_test_over_cases():
    # the same 30 cases in two trainings (runs) of each model: McNemar over the 60 records would count each case's
    # discordance twice (p = 2 P(X >= 16), X ~ Bin(18, 1/2)); the unit is the case, so the test permutes cases
    true = ["a"] * 20 + ["b"] * 10
    base = {f"c{i}": (t, "b" if i < 8 else t) for i, t in enumerate(true)}
    model = {f"c{i}": (t, "a" if i == 29 else t) for i, t in enumerate(true)}
    r = compare_classes([model, model], [base, base])
    assert r["test"] == "paired permutation" and r["n_cases"] == 30 and r["n_runs"] == 2
    assert r["mean"] == pytest.approx(0.15)
    doubled_mcnemar = 2 * (math.comb(18, 16) + math.comb(18, 17) + 1) / 2 ** 18
    assert r["p"] > 10 * doubled_mcnemar
    # swapping a discordant a-case moves the difference by 2 x 0.025, the b-case by 2 x 0.05: of the 2^9 swaps of the
    # 9 discordant cases, 2 x (1 x 2 + 8 + 28) reach |difference| >= 0.15 (all 8 a-cases, 7 or 6 with the b-case)
    assert r["p"] == pytest.approx(76 / 2 ** 9, abs=0.01)


def test_balanced_accuracy_is_scikit_learns():
    from sklearn.metrics import balanced_accuracy_score
    rng = np.random.default_rng(0)
    true, pred = rng.integers(0, 4, 50).astype(str), rng.integers(0, 4, 50).astype(str)
    assert balanced_accuracy(true, pred) == pytest.approx(balanced_accuracy_score(true, pred))


def test_set_metric_with_permutation_test():
    # the metric of a set of records is their mean: the model is right on every case where the baseline is wrong
    base = {f"c{i}": float(i % 2) for i in range(16)}
    model = {f"c{i}": 1.0 for i in range(16)}
    r = compare_records([model], [base], lambda records: float(np.mean(records)))
    assert r["mean"] == pytest.approx(0.5)
    assert r["test"] == "paired permutation" and r["verdict"] == "better (CI above 0)"
    # 8 cases differ, all in the model's favour: of 2^8 sign patterns only the observed one reaches +0.5 and its
    # mirror -0.5; the random permutation p estimates 2 / 2^8
    assert r["p"] == pytest.approx(2 / 2 ** 8, abs=0.004)
    same = compare_records([base], [base], lambda records: float(np.mean(records)))
    assert same["mean"] == 0.0 and same["p"] == pytest.approx(1.0) and same["verdict"] == "no significant difference"
