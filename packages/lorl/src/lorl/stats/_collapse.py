"""Policy collapse: a run whose return falls far from its best and stays there."""

import numpy as np
from jaxtyping import ArrayLike, Bool

from ._errors import ScoreError


def collapsed(
    returns: ArrayLike, *, drop: float = 0.5, window: int = 5
) -> Bool[np.ndarray, " n_runs"]:
    """Which runs collapsed: their return fell by more than `drop` of what they had gained
    and did not recover by the end.

    With `start` the first finite return, `peak` the running maximum and `final` the mean
    of the last `window` finite returns, a run collapsed when it gained (`peak > start`)
    and `final < peak - drop * (peak - start)`: it lost more than the fraction `drop` of
    its gain. Measured against the gain, the rule does not depend on the sign or scale of
    the returns (Ant's start below zero, MinAtar's at zero). NaN entries (updates without
    a finished episode) are skipped.

    **Arguments:**

    - `returns`: return curves `(n_runs, T)` (or `(T,)` for one run).
    - `drop`: the fraction of the gain that must be lost, in `(0, 1]`.
    - `window`: the last `window` returns average into `final`.

    **Returns:**

    One boolean per run (a run with fewer than `window + 1` finite returns: False).

    **Raises:**

    [`lorl.stats.ScoreError`][] for a `drop` outside `(0, 1]`, `window < 1`, or curves
    that are not 1-D or 2-D.
    """
    if not 0 < drop <= 1:
        raise ScoreError(f"drop must lie in (0, 1], got {drop}")
    if window < 1:
        raise ScoreError(f"window must be >= 1, got {window}")
    curves = np.asarray(returns, np.float64)
    if curves.ndim == 1:
        curves = curves[None]
    if curves.ndim != 2:
        raise ScoreError(f"returns must be (n_runs, T) or (T,), got shape {curves.shape}")
    out = np.zeros(curves.shape[0], bool)
    for i, curve in enumerate(curves):
        x = curve[np.isfinite(curve)]
        if len(x) < window + 1:
            continue
        start, peak, final = x[0], np.max(x), np.mean(x[-window:])
        out[i] = peak > start and final < peak - drop * (peak - start)
    return out
