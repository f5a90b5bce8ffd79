"""lorl.stats: metrics against hand-computed values and an independent NumPy stratified
bootstrap, CI coverage on a known distribution, normalisation, tables and errors."""

import math

import numpy as np
import pytest

from lorl import stats
from lorl.runs import ConfigError

# ---------------------------------------------------------------- point estimates by hand

# 4 runs x 2 tasks holding 1..8: IQM drops 2 scores at each end -> mean(3, 4, 5, 6) = 4.5;
# task means 4 and 5 -> mean 4.5, median 4.5; optimality gap at gamma=5:
# 5 - mean(1, 2, 3, 4, 5, 5, 5, 5) = 5 - 30/8 = 1.25.
GRID = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0], [7.0, 8.0]])
# 2 runs x 3 tasks with task means 1, 2, 10: mean 13/3, median 2; IQM over the 6 sorted
# values (0, 2, 2, 2, 4, 16): scipy's trim_mean cuts int(0.25 * 6) = 1 from each end
# -> mean(2, 2, 2, 4) = 2.5.
SKEW = np.array([[0.0, 2.0, 4.0], [2.0, 2.0, 16.0]])


@pytest.fixture(scope="module")
def grid_aggregate():
    return stats.aggregate({"grid": GRID, "skew": SKEW}, reps=200, gamma=5.0)


def test_point_estimates_by_hand(grid_aggregate):
    grid, skew = grid_aggregate["grid"], grid_aggregate["skew"]
    assert grid["iqm"].point == pytest.approx(4.5)
    assert grid["mean"].point == pytest.approx(4.5)
    assert grid["median"].point == pytest.approx(4.5)
    assert grid["optimality_gap"].point == pytest.approx(1.25)
    assert skew["mean"].point == pytest.approx(13 / 3)
    assert skew["median"].point == pytest.approx(2.0)
    assert skew["iqm"].point == pytest.approx(2.5)
    # gamma=5: 5 - mean(0, 2, 4, 2, 2, 5) = 5 - 15/6
    assert skew["optimality_gap"].point == pytest.approx(2.5)


def test_result_structure_and_order(grid_aggregate):
    assert list(grid_aggregate) == ["grid", "skew"]
    assert list(grid_aggregate["grid"]) == list(stats.METRICS)
    for per_metric in grid_aggregate.values():
        for interval in per_metric.values():
            assert isinstance(interval, stats.Interval)
            assert interval.low <= interval.point <= interval.high


def _numpy_metrics(x: np.ndarray, gamma: float) -> np.ndarray:
    """Independent implementation of the four metrics (no scipy, no rliable)."""
    flat = np.sort(x.ravel())
    cut = math.floor(0.25 * flat.size)
    iqm = flat[cut : flat.size - cut].mean()
    task_means = x.mean(axis=0)
    return np.array(
        [iqm, task_means.mean(), np.median(task_means), gamma - np.minimum(x, gamma).mean()]
    )


def _numpy_stratified_bootstrap(x: np.ndarray, reps: int, gamma: float, seed: int):
    """Resample runs with replacement independently within each task (column)."""
    rng = np.random.default_rng(seed)
    n_runs, n_tasks = x.shape
    values = np.empty((reps, 4))
    for r in range(reps):
        idx = rng.integers(0, n_runs, size=(n_runs, n_tasks))
        values[r] = _numpy_metrics(np.take_along_axis(x, idx, axis=0), gamma)
    return np.percentile(values, [2.5, 97.5], axis=0)


@pytest.fixture(scope="module")
def sample():
    rng = np.random.default_rng(42)
    # 12 runs x 4 tasks with task-dependent scale and location, skewed.
    return rng.gamma(2.0, size=(12, 4)) * np.array([1.0, 2.0, 0.5, 3.0]) + np.arange(4.0)


def test_point_estimates_match_numpy(sample):
    result = stats.aggregate({"a": sample}, reps=10, gamma=3.0)["a"]
    expected = _numpy_metrics(sample, 3.0)
    got = np.array([result[m].point for m in stats.METRICS])
    np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_intervals_match_independent_bootstrap(sample):
    reps = 4000
    result = stats.aggregate({"a": sample}, reps=reps, gamma=3.0, seed=1)["a"]
    low, high = _numpy_stratified_bootstrap(sample, reps, 3.0, seed=7)
    for i, metric in enumerate(stats.METRICS):
        width = high[i] - low[i]
        assert width > 0
        # Two independent Monte Carlo estimates of the same percentiles: agree to a
        # small fraction of the interval width (observed < 5%).
        assert abs(result[metric].low - low[i]) < 0.1 * width, metric
        assert abs(result[metric].high - high[i]) < 0.1 * width, metric


def test_stratified_not_pooled():
    # Task 0 is constant 0, task 1 is constant 10 (no within-task variance): a bootstrap
    # stratified by task keeps every task's mean, so the CI collapses to the point;
    # resampling the pooled scores would not.
    x = np.stack([np.zeros(8), np.full(8, 10.0)], axis=1)
    result = stats.aggregate({"a": x}, reps=300)["a"]
    for metric in ("mean", "median", "iqm"):
        assert result[metric].low == pytest.approx(result[metric].point)
        assert result[metric].high == pytest.approx(result[metric].point)


# ------------------------------------------------------------------------ coverage


def test_ci_coverage_exponential():
    """95% CIs of the IQM and mean contain the true values in ~95% of repeated samples.

    Exponential(1) scores: mean 1; IQM = 2 * int_{q25}^{q75} x e^{-x} dx
    = 2 * [0.75 * (1 + ln(4/3)) - 0.25 * (1 + ln 4)] = 0.73838.
    """
    true_iqm = 2 * (0.75 * (1 + math.log(4 / 3)) - 0.25 * (1 + math.log(4)))
    rng = np.random.default_rng(2021)
    trials, hits_iqm, hits_mean = 60, 0, 0
    for trial in range(trials):
        x = rng.exponential(size=(20, 5))
        result = stats.aggregate({"a": x}, metrics=("iqm", "mean"), reps=300, seed=trial)["a"]
        hits_iqm += result["iqm"].contains(true_iqm)
        hits_mean += result["mean"].contains(1.0)
    # Binomial(60, 0.95): mean 57, sd 1.7. Percentile bootstraps under-cover slightly in
    # small samples; 80% CIs would give ~48 and 50% CIs ~30.
    assert 52 <= hits_iqm <= 60, hits_iqm
    assert 52 <= hits_mean <= 60, hits_mean


def test_confidence_level_changes_width(sample):
    wide = stats.aggregate({"a": sample}, metrics=("mean",), reps=1000, confidence=0.95)
    narrow = stats.aggregate({"a": sample}, metrics=("mean",), reps=1000, confidence=0.5)
    w95 = wide["a"]["mean"].high - wide["a"]["mean"].low
    w50 = narrow["a"]["mean"].high - narrow["a"]["mean"].low
    # For a near-normal bootstrap distribution, the 50% / 95% width ratio is
    # 0.674 / 1.960 = 0.34.
    assert 0.25 < w50 / w95 < 0.45


# ------------------------------------------------------------------------ determinism


def test_deterministic_given_seed_and_independent_of_other_algorithms(sample):
    a = stats.aggregate({"a": sample}, metrics=("iqm",), reps=300, seed=3)
    b = stats.aggregate({"z": sample + 1, "a": sample}, metrics=("iqm",), reps=300, seed=3)
    c = stats.aggregate({"a": sample}, metrics=("iqm",), reps=300, seed=4)
    assert a["a"] == b["a"]
    assert a["a"] != c["a"]


def test_global_numpy_state_is_restored(sample):
    np.random.seed(123)  # noqa: NPY002
    expected = np.random.random_sample(3)  # noqa: NPY002
    np.random.seed(123)  # noqa: NPY002
    stats.aggregate({"a": sample}, metrics=("mean",), reps=50)
    np.testing.assert_array_equal(np.random.random_sample(3), expected)  # noqa: NPY002


def test_one_dimensional_scores_are_one_task():
    x = np.array([3.0, 1.0, 2.0, 5.0])
    one = stats.aggregate({"a": x}, reps=100)
    two = stats.aggregate({"a": x[:, None]}, reps=100)
    assert one == two
    assert one["a"]["mean"].point == pytest.approx(2.75)


# ------------------------------------------------------------------------ errors


def test_nan_scores_are_an_error():
    x = np.ones((5, 3))
    x[2, 1] = np.nan
    with pytest.raises(stats.ScoreError, match=r"'ppo'.*1 of 15.*NaN.*\(run 2, task 1\)"):
        stats.aggregate({"ppo": x})


def test_infinite_scores_are_an_error():
    with pytest.raises(stats.ScoreError, match="infinite"):
        stats.aggregate({"a": np.array([1.0, np.inf])})


def test_bad_shapes_and_options():
    with pytest.raises(stats.ScoreError, match="shape"):
        stats.aggregate({"a": np.ones((2, 2, 2))})
    with pytest.raises(stats.ScoreError, match="no runs"):
        stats.aggregate({"a": np.ones((0, 3))})
    with pytest.raises(stats.ScoreError, match="non-empty"):
        stats.aggregate({})
    with pytest.raises(ConfigError, match="Did you mean 'median'"):
        stats.aggregate({"a": np.ones(3)}, metrics=("medain",))
    with pytest.raises(ConfigError, match="twice"):
        stats.aggregate({"a": np.ones(3)}, metrics=("iqm", "iqm"))
    with pytest.raises(ConfigError, match="confidence"):
        stats.aggregate({"a": np.ones(3)}, confidence=95.0)
    with pytest.raises(ConfigError, match="reps"):
        stats.aggregate({"a": np.ones(3)}, reps=0)


# ------------------------------------------------------------------------ normalise


def test_normalise_by_reference_per_task():
    scores = np.array([[2.0, 30.0], [4.0, 10.0]])
    reference = np.array([2.0, 20.0])
    np.testing.assert_allclose(stats.normalise(scores, reference), [[1.0, 1.5], [2.0, 0.5]])


def test_normalise_mapping_with_baseline():
    scores = {"adam": np.array([[0.0, -10.0]]), "open": np.array([[5.0, 0.0]])}
    out = stats.normalise(scores, reference=np.array([10.0, 10.0]), baseline=-10.0)
    assert isinstance(out, dict)
    np.testing.assert_allclose(out["adam"], [[0.5, 0.0]])
    np.testing.assert_allclose(out["open"], [[0.75, 0.5]])


def test_normalise_adam_mean_is_one():
    rng = np.random.default_rng(0)
    adam = rng.uniform(1, 2, size=(16, 4))
    out = stats.normalise({"adam": adam}, adam.mean(axis=0))
    assert isinstance(out, dict)
    np.testing.assert_allclose(out["adam"].mean(axis=0), np.ones(4))


def test_normalise_errors():
    with pytest.raises(stats.ScoreError, match=r"tasks \[1\]"):
        stats.normalise(np.ones((2, 2)), np.array([1.0, 0.0]))
    with pytest.raises(stats.ScoreError, match="one entry per task"):
        stats.normalise(np.ones((2, 3)), np.array([1.0, 2.0]))
    with pytest.raises(stats.ScoreError, match="NaN"):
        stats.normalise(np.array([1.0, np.nan]), 1.0)


# ------------------------------------------------------------------------ improvement


def _numpy_poi(x: np.ndarray, y: np.ndarray) -> float:
    per_task = [
        np.mean((x[:, None, t] > y[None, :, t]) + 0.5 * (x[:, None, t] == y[None, :, t]))
        for t in range(x.shape[1])
    ]
    return float(np.mean(per_task))


def test_probability_of_improvement():
    assert stats.probability_of_improvement(
        np.array([1.0, 2.0, 3.0]), np.zeros(3), reps=50
    ).point == pytest.approx(1.0)
    assert stats.probability_of_improvement(
        np.array([1.0, 3.0]), np.array([2.0, 2.0, 2.0]), reps=50
    ).point == pytest.approx(0.5)
    rng = np.random.default_rng(5)
    x = rng.normal(0.5, 1, size=(10, 3))
    y = np.round(rng.normal(0, 1, size=(7, 3)), 1)
    result = stats.probability_of_improvement(x, y, reps=300)
    assert result.point == pytest.approx(_numpy_poi(x, y))
    assert result.low < result.point < result.high
    with pytest.raises(stats.ScoreError, match="same tasks"):
        stats.probability_of_improvement(np.ones((3, 2)), np.ones((3, 3)))


# ------------------------------------------------------------------------ tables


def test_markdown_table():
    aggregates = {
        "adam": {"iqm": stats.Interval(1.0, 0.9, 1.1), "mean": stats.Interval(1.0, 0.8, 1.25)},
        "open|v2": {"iqm": stats.Interval(1.5, 1.23456, 1.75)},
    }
    assert stats.markdown_table(aggregates, precision=2) == (
        "| algorithm | IQM | Mean |\n"
        "|---|:-:|:-:|\n"
        "| adam | 1.00 [0.90, 1.10] | 1.00 [0.80, 1.25] |\n"
        "| open\\|v2 | 1.50 [1.23, 1.75] | – |\n"
    )
    assert stats.markdown_table(aggregates, metrics=["mean"], precision=1).splitlines()[2] == (
        "| adam | 1.0 [0.8, 1.2] |"
    )
    with pytest.raises(ConfigError, match="median"):
        stats.markdown_table(aggregates, metrics=["median"])


def test_interval():
    interval = stats.Interval(1.5, 1.0, 2.0)
    assert interval.point == 1.5 and isinstance(interval.low, float)
    assert interval.contains(1.0) and not interval.contains(2.5)
    assert interval.to_dict() == {"point": 1.5, "low": 1.0, "high": 2.0}
    with pytest.raises(TypeError):
        stats.Interval("1", 0.0, 2.0)  # pyright: ignore[reportArgumentType]


def test_collapse_detection():
    from lorl import stats

    t = np.arange(20, dtype=np.float64)
    rises = -10 + t  # -10 -> 9, never falls
    falls = np.concatenate([-10 + 2 * t[:10], np.full(10, -4.0)])  # peak 8, gain 18, ends at -4
    dips_and_recovers = np.concatenate([t[:10], np.full(5, 1.0), np.full(5, 9.0)])
    mild = np.concatenate([t[:10], np.full(10, 6.0)])  # peak 9, gain 9, keeps 6: lost 1/3
    curves = np.stack([rises, falls, dips_and_recovers, mild])
    assert stats.collapsed(curves).tolist() == [False, True, False, False]
    assert stats.collapsed(curves, drop=0.3).tolist() == [False, True, False, True]
    with_nan = falls.copy()
    with_nan[::3] = np.nan  # updates without a finished episode are skipped
    assert stats.collapsed(with_nan).tolist() == [True]
    assert stats.collapsed(np.zeros((2, 3))).tolist() == [False, False]  # too short
    with pytest.raises(stats.ScoreError, match="drop"):
        stats.collapsed(curves, drop=0.0)
