"""rliable performance profiles: the fraction of runs whose (normalised) score exceeds
each threshold, with stratified-bootstrap confidence bands."""

import os
import pathlib
import warnings
from collections.abc import Mapping, Sequence

import numpy as np
from jaxtyping import ArrayLike

from ..runs import ConfigError
from ..stats import check_scores
from ..stats._aggregate import _seeded_global_numpy
from ._common import colours, new_figure, output_path


def performance_profiles(
    scores: Mapping[str, ArrayLike],
    path: str | os.PathLike[str],
    *,
    taus: Sequence[float] | None = None,
    reps: int = 2000,
    seed: int = 0,
    title: str = "",
    xlabel: str = "normalised score tau",
) -> pathlib.Path:
    """Plot performance profiles (Agarwal et al. 2021): for each algorithm, the fraction of
    its `(run, task)` scores above `tau` (averaged over tasks), with 95% stratified
    bootstrap bands (rliable's `create_performance_profile`).

    **Arguments:**

    - `scores`: algorithm -> scores `(n_runs, n_tasks)` (or `(n_runs,)`), normalised so
      that tasks are comparable (e.g. by Adam's mean, `lorl.stats.normalise`).
    - `path`: the image file to write; parent folders are created.
    - `taus`: thresholds (default: 81 points from 0 to the largest score).
    - `reps`, `seed`: bootstrap resamples and their seed.
    - `title`, `xlabel`: labels.

    **Returns:**

    The path of the written file.
    """
    if not isinstance(scores, Mapping) or not scores:
        raise ConfigError("scores must be a non-empty mapping: algorithm -> (runs, tasks)")
    data = {name: check_scores(s, name=f"scores[{name!r}]") for name, s in scores.items()}
    if taus is None:
        top = max(float(np.max(s)) for s in data.values())
        grid = np.linspace(0.0, max(top, 1e-6) * 1.02, 81)
    else:
        grid = np.asarray(taus, np.float64)
    from rliable import library

    # rliable draws from NumPy's global generator: seeded here, restored afterwards
    with _seeded_global_numpy(seed), warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        profiles, bands = library.create_performance_profile(data, grid, reps=reps)
    out = output_path(path)
    figure = new_figure(6.0, 3.8)
    ax = figure.subplots()
    for name, colour in zip(data, colours(len(data)), strict=True):
        ax.plot(grid, profiles[name], color=colour, label=name)
        low, high = np.asarray(bands[name])
        ax.fill_between(grid, low, high, color=colour, alpha=0.2, linewidth=0)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("fraction of runs with score > tau")
    ax.set_ylim(0.0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title)
    figure.savefig(out, dpi=110)
    return out
