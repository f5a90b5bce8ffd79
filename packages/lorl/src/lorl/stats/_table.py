"""Markdown tables of aggregate metrics."""

from collections.abc import Mapping, Sequence

from ..runs import ConfigError
from ._aggregate import METRIC_LABELS
from ._interval import Interval


def markdown_table(
    aggregates: Mapping[str, Mapping[str, Interval]],
    *,
    metrics: Sequence[str] | None = None,
    precision: int = 3,
) -> str:
    """A Markdown table with one row per algorithm and `point [low, high]` cells.

    **Arguments:**

    - `aggregates`: the output of [`lorl.stats.aggregate`][] (algorithm -> metric ->
      [`lorl.stats.Interval`][]).
    - `metrics`: the columns, in order; by default every metric that appears, in order
      of first appearance. An algorithm without a metric gets an empty cell (`–`).
    - `precision`: digits after the decimal point.

    **Returns:**

    The table as a string (header, separator, one line per algorithm; ending in a newline).
    """
    if isinstance(precision, bool) or not isinstance(precision, int) or precision < 0:
        raise ConfigError(f"precision must be a non-negative integer, got {precision!r}")
    if metrics is None:
        columns: list[str] = []
        for per_metric in aggregates.values():
            columns.extend(m for m in per_metric if m not in columns)
    else:
        columns = [metrics] if isinstance(metrics, str) else list(metrics)
        known = {m for per_metric in aggregates.values() for m in per_metric}
        missing = [m for m in columns if m not in known]
        if missing:
            raise ConfigError(
                f"metrics {missing} are not in the aggregates (they have {sorted(known)})"
            )

    def cell(interval: Interval | None) -> str:
        if interval is None:
            return "–"
        p = precision
        return f"{interval.point:.{p}f} [{interval.low:.{p}f}, {interval.high:.{p}f}]"

    header = ["algorithm", *(METRIC_LABELS.get(m, m) for m in columns)]
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "|".join(["---"] + [":-:"] * len(columns)) + "|",
    ]
    for name, per_metric in aggregates.items():
        row = [_escape(str(name)), *(cell(per_metric.get(m)) for m in columns)]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


def _escape(text: str) -> str:
    return text.replace("|", r"\|")
