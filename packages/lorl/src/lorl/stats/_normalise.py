"""Normalised scores: returns divided by a reference algorithm's return per task."""

from collections.abc import Mapping

import numpy as np
from jaxtyping import ArrayLike, Float

from ._aggregate import check_scores
from ._errors import ScoreError


def normalise(
    scores: Mapping[str, ArrayLike] | ArrayLike,
    reference: ArrayLike,
    *,
    baseline: ArrayLike = 0.0,
) -> dict[str, Float[np.ndarray, "n_runs n_tasks"]] | Float[np.ndarray, "n_runs n_tasks"]:
    """Normalise scores per task: `(score - baseline) / (reference - baseline)`.

    OPEN (Goldie et al. 2024, Sec. 6 and Figs. 3-4) divides each environment's returns by
    the return Adam achieves there ("Adam-normalised"), so that 1 means "as good as
    Adam" and environments can be pooled; that is the default `baseline=0`. Where
    returns can be negative or zero, pass a `baseline` (e.g. a random policy's return)
    below the reference: dividing by a non-positive number would flip the ranking.

    **Arguments:**

    - `scores`: one array of shape `(n_runs, n_tasks)` (or `(n_runs,)`), or a mapping
      algorithm name -> such arrays.
    - `reference`: the reference score per task, shape `(n_tasks,)` or a scalar, e.g.
      `scores["adam"].mean(axis=0)`.
    - `baseline`: the score that maps to 0, shape `(n_tasks,)` or a scalar.

    **Returns:**

    The normalised float64 scores of shape `(n_runs, n_tasks)` (a dict of them if
    `scores` was a mapping).

    **Raises:**

    [`lorl.stats.ScoreError`][] if scores are not finite, the reference does not match
    the number of tasks, or `reference <= baseline` for some task.
    """
    if isinstance(scores, Mapping):
        return {
            name: _normalise_one(check_scores(value, repr(name)), reference, baseline)
            for name, value in scores.items()
        }
    return _normalise_one(check_scores(scores), reference, baseline)


def _per_task(value: ArrayLike, n_tasks: int, what: str) -> np.ndarray:
    array = np.asarray(value, dtype=np.float64)
    if array.ndim == 0:
        array = np.full((n_tasks,), float(array))
    if array.shape != (n_tasks,):
        raise ScoreError(
            f"{what} must be a scalar or have one entry per task ({n_tasks}), "
            f"got shape {array.shape}"
        )
    if not np.isfinite(array).all():
        raise ScoreError(f"{what} has NaN or infinite entries: {array}")
    return array


def _normalise_one(scores: np.ndarray, reference: ArrayLike, baseline: ArrayLike) -> np.ndarray:
    n_tasks = scores.shape[1]
    ref = _per_task(reference, n_tasks, "reference")
    base = _per_task(baseline, n_tasks, "baseline")
    span = ref - base
    bad = np.nonzero(span <= 0)[0]
    if bad.size:
        raise ScoreError(
            f"reference must exceed baseline in every task; tasks {bad.tolist()} have "
            f"reference {ref[bad].tolist()} <= baseline {base[bad].tolist()}. "
            "Dividing by a non-positive span would flip the ranking: pass a lower "
            "baseline (e.g. a random policy's return)."
        )
    return (scores - base[None, :]) / span[None, :]
