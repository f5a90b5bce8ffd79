"""Aggregate metrics with stratified bootstrap confidence intervals (rliable's method).

Agarwal et al. (2021), "Deep Reinforcement Learning at the Edge of the Statistical
Precipice": report the interquartile mean (IQM), mean, median and optimality gap of the
scores of all runs and tasks, each with a percentile confidence interval from a bootstrap
that resamples runs *within* each task (stratified by task). rliable is imported lazily:
it takes seconds to import and most users of `lorl` never call these functions.
"""

import contextlib
import difflib
import warnings
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence

import numpy as np
from jaxtyping import ArrayLike, Float

from ..runs import ConfigError
from ._errors import ScoreError
from ._interval import Interval

METRICS: tuple[str, ...] = ("iqm", "mean", "median", "optimality_gap")
"""The metric names [`lorl.stats.aggregate`][] knows, in the order of rliable's plots."""

METRIC_LABELS: dict[str, str] = {
    "iqm": "IQM",
    "mean": "Mean",
    "median": "Median",
    "optimality_gap": "Optimality gap",
}
"""Display names of the metrics (table headers, plot titles)."""


def check_scores(scores: ArrayLike, name: str = "scores") -> Float[np.ndarray, "n_runs n_tasks"]:
    """Validate one algorithm's scores and return them as a float64 `(n_runs, n_tasks)` array.

    **Arguments:**

    - `scores`: an array of shape `(n_runs, n_tasks)`, or `(n_runs,)` for one task.
    - `name`: what to call the array in error messages (e.g. the algorithm's name).

    **Returns:**

    A float64 NumPy array of shape `(n_runs, n_tasks)`.

    **Raises:**

    [`lorl.stats.ScoreError`][] if the array has the wrong rank, no runs, or any NaN or
    infinite entry (with the positions of the first few, so the runs can be found).
    """
    try:
        array = np.asarray(scores, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise ScoreError(
            f"{name}: scores must be numbers, got {type(scores).__name__} ({e})"
        ) from e
    if array.ndim == 1:
        array = array[:, None]
    if array.ndim != 2:
        raise ScoreError(
            f"{name}: scores must have shape (n_runs, n_tasks) or (n_runs,), "
            f"got shape {array.shape}"
        )
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise ScoreError(f"{name}: scores have no runs or no tasks (shape {array.shape})")
    bad = ~np.isfinite(array)
    if bad.any():
        runs, tasks = np.nonzero(bad)
        where = ", ".join(f"(run {r}, task {t})" for r, t in zip(runs[:5], tasks[:5], strict=True))
        more = f" and {bad.sum() - 5} more" if bad.sum() > 5 else ""
        kind = "NaN" if np.isnan(array).any() else "infinite"
        raise ScoreError(
            f"{name}: {int(bad.sum())} of {array.size} scores are {kind} or otherwise not "
            f"finite, at {where}{more}. Diverged or failed runs must be reported, not "
            "averaged away: fix or rerun them, or drop them explicitly (and say so)."
        )
    return array


def _check_metrics(metrics: Sequence[str]) -> tuple[str, ...]:
    if isinstance(metrics, str):
        metrics = (metrics,)
    metrics = tuple(metrics)
    if not metrics:
        raise ConfigError(f"metrics is empty; choose from {', '.join(METRICS)}")
    for metric in metrics:
        if metric not in METRICS:
            close = difflib.get_close_matches(metric, METRICS, n=1, cutoff=0.4)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ConfigError(f"unknown metric {metric!r}; choose from {', '.join(METRICS)}.{hint}")
    if len(set(metrics)) != len(metrics):
        raise ConfigError(f"metrics {metrics} name a metric twice")
    return metrics


def _metric_fn(metrics: tuple[str, ...], gamma: float) -> Callable[[np.ndarray], np.ndarray]:
    from rliable import metrics as rly

    def one(name: str, x: np.ndarray) -> float:
        if name == "iqm":
            return float(rly.aggregate_iqm(x))
        if name == "mean":
            return float(rly.aggregate_mean(x))
        if name == "median":
            return float(rly.aggregate_median(x))
        return float(rly.aggregate_optimality_gap(x, gamma))  # pyright: ignore[reportArgumentType]

    def fn(x: np.ndarray) -> np.ndarray:
        return np.array([one(name, x) for name in metrics])

    return fn


@contextlib.contextmanager
def _seeded_global_numpy(seed: int) -> Iterator[None]:
    """rliable's StratifiedBootstrap draws its indices from NumPy's *global* generator
    (`np.random.choice`), not from the `random_state` it is given; seed it for the
    duration of the call and restore the caller's state afterwards."""
    state = np.random.get_state()  # noqa: NPY002
    np.random.seed(seed)  # noqa: NPY002
    try:
        yield
    finally:
        np.random.set_state(state)  # noqa: NPY002


def _algorithm_seed(seed: int, name: str) -> int:
    # One stream per algorithm, derived from its name: an algorithm's interval does not
    # change when other algorithms are added to or removed from the comparison.
    sequence = np.random.SeedSequence([seed, zlib.crc32(name.encode())])
    return int(sequence.generate_state(1)[0])


def _check_options(reps: int, confidence: float, seed: int) -> None:
    if isinstance(reps, bool) or not isinstance(reps, int) or reps < 1:
        raise ConfigError(f"reps must be a positive integer, got {reps!r}")
    if not 0.0 < confidence < 1.0:
        raise ConfigError(f"confidence must be in (0, 1), e.g. 0.95; got {confidence!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"seed must be a non-negative integer, got {seed!r}")


def aggregate(
    scores: Mapping[str, ArrayLike],
    *,
    metrics: Sequence[str] = METRICS,
    reps: int = 2000,
    confidence: float = 0.95,
    gamma: float = 1.0,
    seed: int = 0,
) -> dict[str, dict[str, Interval]]:
    """Aggregate metrics of each algorithm's scores with stratified bootstrap CIs.

    The method of Agarwal et al. (2021) through rliable's
    `library.get_interval_estimates`: point estimates on the observed scores, and
    percentile confidence intervals from `reps` bootstrap resamples that draw runs with
    replacement *within each task* (stratified bootstrap over runs; the set of tasks is
    fixed).

    Metrics (all over the `(n_runs, n_tasks)` score matrix):

    - `"iqm"`: interquartile mean, the mean of the middle 50% of all `n_runs * n_tasks`
      scores (25% trimmed from each end);
    - `"mean"`: the mean over tasks of each task's mean score;
    - `"median"`: the median over tasks of each task's mean score;
    - `"optimality_gap"`: `gamma - mean(min(score, gamma))`, how far the scores fall
      short of `gamma` (smaller is better; `gamma=1` for Adam-normalised scores means
      "as good as Adam").

    **Arguments:**

    - `scores`: algorithm name -> scores of shape `(n_runs, n_tasks)` (or `(n_runs,)`
      for one task). Algorithms may have different numbers of runs.
    - `metrics`: which of `"iqm"`, `"mean"`, `"median"`, `"optimality_gap"` to compute.
    - `reps`: bootstrap resamples (rliable's paper uses 50,000 for final figures; 2,000
      gives CI bounds stable to about 1% of their width's scale for typical data).
    - `confidence`: coverage of the intervals (0.95 for 95% CIs, as both papers report).
    - `gamma`: the threshold of the optimality gap.
    - `seed`: seeds the bootstrap; the same seed gives the same intervals. Each algorithm
      gets its own stream derived from `seed` and its name, so adding an algorithm does
      not change the others' intervals.

    **Returns:**

    `{algorithm: {metric: Interval(point, low, high)}}` in the order of `scores` and
    `metrics`.

    **Raises:**

    [`lorl.stats.ScoreError`][] for NaN or infinite scores (they must be reported, not
    averaged silently) or badly shaped arrays; `lorl.runs.ConfigError` for unknown
    metrics or invalid options.

    !!! note
        rliable draws the bootstrap indices from NumPy's global random generator; this
        function seeds it for the duration of the call and restores it afterwards (so it
        is not safe to call from several threads at once).
    """
    metrics = _check_metrics(metrics)
    _check_options(reps, confidence, seed)
    if not isinstance(scores, Mapping) or not scores:
        raise ScoreError("scores must be a non-empty mapping of algorithm name -> scores")
    checked = {name: check_scores(value, name=repr(name)) for name, value in scores.items()}

    from rliable import library

    fn = _metric_fn(metrics, float(gamma))
    result: dict[str, dict[str, Interval]] = {}
    for name, array in checked.items():
        with _seeded_global_numpy(_algorithm_seed(seed, name)), warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # arch's random_state notice
            points, intervals = library.get_interval_estimates(
                {name: array},
                fn,
                method="percentile",
                reps=reps,
                confidence_interval_size=confidence,
            )
        point, interval = np.asarray(points[name]), np.asarray(intervals[name])
        result[name] = {
            metric: Interval(float(point[i]), float(interval[0, i]), float(interval[1, i]))
            for i, metric in enumerate(metrics)
        }
    return result


def probability_of_improvement(
    scores_x: ArrayLike,
    scores_y: ArrayLike,
    *,
    reps: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> Interval:
    """Probability that a run of algorithm X beats a run of algorithm Y, with a CI.

    `P(X > Y)` per task is the Mann-Whitney U statistic divided by `n_x * n_y` (ties count
    one half), averaged over tasks (Agarwal et al. 2021, rliable's
    `metrics.probability_of_improvement`). The interval resamples the runs of X and of Y
    independently within each task.

    **Arguments:**

    - `scores_x`, `scores_y`: shapes `(n_runs_x, n_tasks)` and `(n_runs_y, n_tasks)` (or
      1-D for one task); the same tasks in the same order.
    - `reps`, `confidence`, `seed`: as in [`lorl.stats.aggregate`][].

    **Returns:**

    An [`lorl.stats.Interval`][]; 0.5 means no difference, above 0.5 favours X.
    """
    _check_options(reps, confidence, seed)
    x = check_scores(scores_x, name="scores_x")
    y = check_scores(scores_y, name="scores_y")
    if x.shape[1] != y.shape[1]:
        raise ScoreError(
            f"scores_x has {x.shape[1]} tasks but scores_y has {y.shape[1]}; "
            "both must cover the same tasks in the same order"
        )
    from rliable import library, metrics as rly

    def fn(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.array([rly.probability_of_improvement(a, b)])

    with _seeded_global_numpy(_algorithm_seed(seed, "poi")), warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        points, intervals = library.get_interval_estimates(
            {"poi": [x, y]},
            fn,
            method="percentile",
            reps=reps,
            confidence_interval_size=confidence,
        )
    point, interval = np.asarray(points["poi"]), np.asarray(intervals["poi"])
    return Interval(float(point[0]), float(interval[0, 0]), float(interval[1, 0]))
