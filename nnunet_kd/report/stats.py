"""Paired comparison of a model with the baseline on the same test cases, for `report` and the benchmarks.

Method (the same for every task):
- Unit: the test case. A case in several runs (seeds, or several folds predicting the same test set) is one unit
  holding every run's result, so runs combine as a per-case mean over runs for per-case metrics (Dice) and as pooled
  case-run records for set metrics (balanced accuracy, COCO mAP, FROC). Runs are paired by position: run k of the model
  with run k of the baseline.
- Difference: metric(model) - metric(baseline) on the records both have.
- 95% interval: paired bootstrap over units (`scipy.stats.bootstrap`, BCa, 9999 resamples, seed 0): each resample draws
  units with replacement and computes both models' metric on the same draw. Where BCa is undefined (e.g. every
  difference equal) the percentile interval of the same resamples is given.
- p-value: Wilcoxon signed-rank test of the per-unit differences (per-case metrics); exact McNemar test (two-sided
  binomial test of the discordant pairs) of per-case correctness (classification, each case in one run); paired
  permutation test over units, 9999 random swaps of the two models' results, seed 0 (detection; classification where
  a case is in several runs, whose records are not independent pairs).
- Verdict: "better (CI above 0)", "worse (CI below 0)" or "no significant difference"; with fewer than 10 cases
  no interval and "too few cases" (the p-value is still given).
"""
import warnings
from collections.abc import Callable, Sequence

import numpy as np
from scipy import stats

from nnunet_kd.core.errors import KDError

N_RESAMPLES = 9999
SEED = 0
MIN_CASES = 10  # fewer cases: no interval and no verdict (a bootstrap of a handful of cases is no evidence)
METHOD = (f"paired bootstrap over test cases (BCa, {N_RESAMPLES} resamples, seed {SEED}) for the 95% CI, given from "
          f"{MIN_CASES} cases on; a case in several runs is one unit holding all its runs")


def verdict(ci95) -> str:
    lo, hi = ci95
    if lo is None or hi is None:
        return "too few cases"
    return "better (CI above 0)" if lo > 0 else "worse (CI below 0)" if hi < 0 else "no significant difference"


def _bootstrap_ci(difference: Callable, n_units: int) -> tuple:
    if n_units < MIN_CASES:
        return None, None
    with warnings.catch_warnings():  # BCa warns, and gives NaN, on a degenerate bootstrap distribution
        warnings.simplefilter("ignore")
        res = stats.bootstrap((np.arange(n_units),), difference, vectorized=False, n_resamples=N_RESAMPLES,
                              method="BCa", rng=np.random.default_rng(SEED))
    lo, hi = res.confidence_interval
    if not (np.isfinite(lo) and np.isfinite(hi)):
        lo, hi = np.percentile(res.bootstrap_distribution, [2.5, 97.5])
    return float(lo), float(hi)


class _Units:
    """Records 0..n-1 of the model and n..2n-1 of the baseline (record i and n + i: the same case of the same run),
    grouped into units by case."""

    def __init__(self, units: Sequence):
        keys, inverse = np.unique(np.asarray(units, dtype=str), return_inverse=True)
        self.n = len(inverse)
        self.groups = [np.flatnonzero(inverse == k) for k in range(len(keys))]
        self.first = np.array([g[0] for g in self.groups], dtype=int)
        self.single = all(len(g) == 1 for g in self.groups)

    def records(self, units) -> np.ndarray:
        """Record indices of the units; unit u >= len(groups) is unit u - len(groups) of the baseline."""
        units = np.asarray(units, dtype=int)
        k = len(self.groups)
        if self.single:
            idx = self.first[units % k]
        else:
            idx = np.concatenate([self.groups[u % k] for u in units])
            units = np.repeat(units, [len(self.groups[u % k]) for u in units])
        return idx + self.n * (units >= k)


def _paired(metric: Callable, units: _Units, p_value: Callable, test: str) -> dict:
    """metric(record indices) -> float over the table [model records, baseline records]; n_runs: the most runs a
    case is in (runs on distinct cases, e.g. seeds with their own data, are pooled: 1)."""
    k = len(units.groups)
    if k == 0:
        return None

    def difference(u):
        return metric(units.records(u)) - metric(units.records(np.asarray(u, dtype=int) + k))

    ci = _bootstrap_ci(difference, k)
    p = p_value() if k >= 2 else None
    return {"mean": float(difference(np.arange(k))), "ci95": list(ci), "p": None if p is None else float(p),
            "test": test, "n_cases": k, "n_runs": max(len(g) for g in units.groups), "verdict": verdict(ci)}


def _permutation_p(metric: Callable, units: _Units) -> float:
    """Paired permutation test over units: metric(records) of the model minus the baseline's, under random swaps of
    the two models' results of a unit."""
    k = len(units.groups)

    def statistic(x, y):
        return metric(units.records(x)) - metric(units.records(y))
    return stats.permutation_test((np.arange(k), np.arange(k) + k), statistic, permutation_type="samples",
                                  vectorized=False, n_resamples=N_RESAMPLES, rng=np.random.default_rng(SEED)).pvalue


def _pair_runs(model_runs: Sequence[dict], baseline_runs: Sequence[dict], usable: Callable) -> tuple:
    """(units, model values, baseline values) of the (run, case) records both runs have with usable values."""
    if len(model_runs) != len(baseline_runs):
        raise KDError(f"A paired comparison needs as many runs of the model as of the baseline, got "
                      f"{len(model_runs)} and {len(baseline_runs)}.")
    units, a, b = [], [], []
    for model, base in zip(model_runs, baseline_runs):
        for case in sorted(set(model) & set(base)):
            if usable(model[case]) and usable(base[case]):
                units.append(case)
                a.append(model[case])
                b.append(base[case])
    return units, a, b


def _finite(x) -> bool:
    return x is not None and np.isfinite(x)


def compare_values(model_runs: Sequence[dict], baseline_runs: Sequence[dict]) -> "dict | None":
    """Mean difference of a per-case metric ({case: value} per run; None/NaN, e.g. Dice of a class absent from the
    reference, leave the case out as nnU-Net's mean does), bootstrap CI and Wilcoxon signed-rank p-value."""
    cases, a, b = _pair_runs(model_runs, baseline_runs, _finite)
    units = _Units(cases)
    values = np.asarray(a + b, dtype=float)

    def wilcoxon():
        d = np.array([values[g].mean() - values[g + units.n].mean() for g in units.groups])
        return 1.0 if not np.any(d) else stats.wilcoxon(d).pvalue

    return _paired(lambda idx: values[idx].mean(), units, wilcoxon, "Wilcoxon signed-rank")


def balanced_accuracy(true: np.ndarray, predicted: np.ndarray) -> float:
    """Mean recall over the classes present in true (scikit-learn's balanced_accuracy_score)."""
    classes, inverse = np.unique(true, return_inverse=True)
    hits = np.bincount(inverse, weights=(true == predicted), minlength=len(classes))
    return float(np.mean(hits / np.bincount(inverse, minlength=len(classes))))


def compare_classes(model_runs: Sequence[dict], baseline_runs: Sequence[dict]) -> "dict | None":
    """Difference of balanced accuracy ({case: (true class, predicted class)} per run), bootstrap CI and exact
    McNemar p-value on per-case correctness (a paired permutation test over cases where a case is in several runs)."""
    cases, a, b = _pair_runs(model_runs, baseline_runs, lambda x: x is not None)
    if [x[0] for x in a] != [x[0] for x in b]:
        raise KDError("The model and the baseline disagree on the true class of some test cases; were they scored "
                      "against the same labels?")
    units = _Units(cases)
    true = np.asarray([x[0] for x in a + b], dtype=str)
    predicted = np.asarray([x[1] for x in a + b], dtype=str)
    correct = true == predicted

    def mcnemar():
        n = units.n
        better, worse = int(np.sum(correct[:n] & ~correct[n:])), int(np.sum(~correct[:n] & correct[n:]))
        return 1.0 if better + worse == 0 else stats.binomtest(better, better + worse).pvalue

    def metric(idx):
        return balanced_accuracy(true[idx], predicted[idx])

    if units.single:
        return _paired(metric, units, mcnemar, "exact McNemar")
    return _paired(metric, units, lambda: _permutation_p(metric, units), "paired permutation")


def compare_records(model_runs: Sequence[dict], baseline_runs: Sequence[dict], metric: Callable) -> "dict | None":
    """Difference of a set metric, metric(list of per-case records) -> float (e.g. the FROC score of per-image
    detection matches), bootstrap CI and a paired permutation test over cases."""
    cases, a, b = _pair_runs(model_runs, baseline_runs, lambda x: x is not None)
    units = _Units(cases)
    table = a + b

    def set_metric(idx):
        return metric([table[i] for i in idx])

    return _paired(set_metric, units, lambda: _permutation_p(set_metric, units), "paired permutation")
