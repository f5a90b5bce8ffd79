"""Return curves: mean over runs with a standard-error band, one colour per algorithm."""

import os
import pathlib
from collections.abc import Mapping

import numpy as np
from jaxtyping import ArrayLike

from ..runs import ConfigError
from ._common import colours, new_figure, output_path


def curve_statistics(returns: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean, standard error and number of finite runs at each step, ignoring NaNs.

    **Arguments:**

    - `returns`: shape `(n_runs, T)`; NaN marks a missing value (e.g. a run that stopped
      early or an evaluation that was not made).

    **Returns:**

    `(mean, stderr, count)`, each of shape `(T,)`. `mean` is NaN where no run has a value;
    `stderr = std(ddof=1) / sqrt(count)` is 0 where only one run has a value.
    """
    finite = np.isfinite(returns)
    count = finite.sum(axis=0)
    safe = np.where(finite, returns, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(count > 0, safe.sum(axis=0) / np.maximum(count, 1), np.nan)
        sq = np.where(finite, (returns - mean[None, :]) ** 2, 0.0).sum(axis=0)
        std = np.sqrt(sq / np.maximum(count - 1, 1))
        stderr = np.where(count > 1, std / np.sqrt(np.maximum(count, 1)), 0.0)
    stderr = np.where(count > 0, stderr, np.nan)
    return mean, stderr, count


def _check_curve(name: str, steps: ArrayLike, returns: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    try:
        s = np.asarray(steps, dtype=np.float64)
        r = np.asarray(returns, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"curve {name!r}: steps and returns must be numeric ({e})") from e
    if r.ndim == 1:
        r = r[None, :]
    if s.ndim != 1 or r.ndim != 2 or r.shape[1] != s.shape[0]:
        raise ConfigError(
            f"curve {name!r}: expected steps of shape (T,) and returns of shape "
            f"(n_runs, T); got {s.shape} and {np.shape(returns)}"
        )
    if s.shape[0] == 0 or r.shape[0] == 0:
        raise ConfigError(f"curve {name!r} is empty (steps {s.shape}, returns {r.shape})")
    if not np.isfinite(s).all():
        raise ConfigError(f"curve {name!r}: steps must be finite")
    if np.isinf(r).any():
        raise ConfigError(f"curve {name!r}: returns contain infinite values (NaN marks gaps)")
    return s, r


def return_curves(
    curves: Mapping[str, tuple[ArrayLike, ArrayLike]],
    path: str | os.PathLike[str],
    *,
    title: str = "",
    xlabel: str = "environment steps",
    ylabel: str = "return",
) -> pathlib.Path:
    """Plot return curves: the mean over runs with a ± one standard error band.

    NaN entries are gaps: each step's mean and standard error use only the runs with a
    value there, and the line breaks where no run has one. An algorithm whose returns
    are all NaN keeps its legend entry, marked "no finite returns".

    **Arguments:**

    - `curves`: algorithm name -> `(steps, returns)` with `steps` of shape `(T,)` and
      `returns` of shape `(n_runs, T)` (or `(T,)` for one run). Algorithms may use
      different steps and numbers of runs.
    - `path`: the image file to write; the suffix (`.png`, `.pdf`, `.svg`, ...) selects
      the format. Parent folders are created.
    - `title`, `xlabel`, `ylabel`: the labels.

    **Returns:**

    The path of the written file.
    """
    if not isinstance(curves, Mapping) or not curves:
        raise ConfigError("curves must be a non-empty mapping name -> (steps, returns)")
    out = output_path(path)
    checked = {name: _check_curve(name, *curve) for name, curve in curves.items()}

    figure = new_figure(6.4, 4.2)
    ax = figure.add_subplot()
    for colour, (name, (steps, returns)) in zip(
        colours(len(checked)), checked.items(), strict=True
    ):
        mean, stderr, count = curve_statistics(returns)
        label = f"{name} (n={returns.shape[0]})"
        if not (count > 0).any():
            label += ", no finite returns"
        ax.plot(steps, mean, color=colour, label=label, linewidth=1.6)
        ax.fill_between(
            steps,
            mean - stderr,
            mean + stderr,
            where=count > 0,
            color=colour,
            alpha=0.25,
            linewidth=0,
        )
        # A value with no neighbour on either side would be invisible as a line.
        finite = count > 0
        neighbour = np.zeros_like(finite)
        neighbour[1:] |= finite[:-1]
        neighbour[:-1] |= finite[1:]
        alone = finite & ~neighbour
        if alone.any():
            ax.plot(steps[alone], mean[alone], "o", color=colour, markersize=3)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(frameon=False, fontsize="small")
    figure.savefig(out, dpi=120)
    return out
