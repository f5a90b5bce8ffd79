"""rliable-style interval estimate plots: one panel per metric, one bar per algorithm."""

import os
import pathlib
from collections.abc import Mapping, Sequence

from ..runs import ConfigError
from ..stats import METRIC_LABELS, Interval
from ._common import colours, new_figure, output_path


def interval_estimates(
    aggregates: Mapping[str, Mapping[str, Interval]],
    path: str | os.PathLike[str],
    *,
    metrics: Sequence[str] | None = None,
    title: str = "",
) -> pathlib.Path:
    """Plot point estimates with their confidence intervals, as in rliable's figures.

    One panel per metric; in each, one horizontal bar per algorithm spanning the interval
    `[low, high]` with a tick at the point estimate (Agarwal et al. 2021, Fig. 9 style;
    OPEN Fig. 3).

    **Arguments:**

    - `aggregates`: the output of [`lorl.stats.aggregate`][] (algorithm -> metric ->
      [`lorl.stats.Interval`][]).
    - `path`: the image file to write (`.png`, `.pdf`, `.svg`, ...); parent folders are
      created.
    - `metrics`: the panels, in order; default every metric that appears.
    - `title`: the figure title.

    **Returns:**

    The path of the written file.
    """
    if not isinstance(aggregates, Mapping) or not aggregates:
        raise ConfigError("aggregates must be a non-empty mapping (see lorl.stats.aggregate)")
    out = output_path(path)
    known: list[str] = []
    for per_metric in aggregates.values():
        known.extend(m for m in per_metric if m not in known)
    if metrics is None:
        panels = known
    else:
        panels = [metrics] if isinstance(metrics, str) else list(metrics)
        missing = [m for m in panels if m not in known]
        if missing:
            raise ConfigError(f"metrics {missing} are not in the aggregates (they have {known})")
    if not panels:
        raise ConfigError("the aggregates hold no metrics to plot")

    names = list(aggregates)
    palette = colours(len(names))
    figure = new_figure(2.6 * len(panels) + 1.2, 0.45 * len(names) + 1.3)
    axes = figure.subplots(1, len(panels), sharey=True, squeeze=False)[0]
    for ax, metric in zip(axes, panels, strict=True):
        for row, (name, colour) in enumerate(zip(names, palette, strict=True)):
            interval = aggregates[name].get(metric)
            if interval is None:
                continue
            ax.barh(
                row,
                interval.high - interval.low,
                left=interval.low,
                height=0.6,
                color=colour,
                alpha=0.75,
            )
            ax.vlines(interval.point, row - 0.3, row + 0.3, color="black", linewidth=1.5)
        ax.set_title(METRIC_LABELS.get(metric, metric))
        ax.grid(axis="x", alpha=0.3)
        ax.margins(x=0.08)
        ax.set_yticks(range(len(names)), names)
        ax.set_ylim(-0.6, len(names) - 0.4)
        ax.invert_yaxis()
    if title:
        figure.suptitle(title)
    figure.savefig(out, dpi=120)
    return out
