"""The OPEN experiments' reports: IQM with 95% stratified bootstrap CIs (`lorl.stats`),
return curves and interval plots (`lorl.plots`), ES tables."""

from __future__ import annotations

import pathlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from ..._format import fmt as fmt
from ...runs import RunDir
from .._stages import stage_name

# --------------------------------------------------------------------------- reporting


def finite_scores(values: Sequence[Any]) -> np.ndarray:
    """Final returns as float64 (JSON's `"nan"` strings back to NaN)."""
    return np.asarray([float(v) for v in values], np.float64)


def interval_table(
    scores: Mapping[str, np.ndarray],
    *,
    metrics: Sequence[str] = ("iqm", "mean"),
    seed: int = 0,
    precision: int = 3,
) -> tuple[str, dict[str, Any]]:
    """Markdown table and aggregates of `scores` (`name -> (n_runs,)` or `(n_runs,
    n_tasks)`). Algorithms with non-finite scores are listed below the table, not
    averaged away."""
    from ... import stats

    good = {k: v for k, v in scores.items() if np.all(np.isfinite(v)) and len(v) >= 2}
    bad = [k for k in scores if k not in good]
    if not good:
        return "_no finite scores to aggregate_\n", {}
    aggs = stats.aggregate(good, metrics=metrics, seed=seed)
    text = stats.markdown_table(aggs, metrics=metrics, precision=precision)
    if bad:
        text += f"\nNot aggregated (diverged runs or fewer than 2 seeds): {', '.join(bad)}.\n"
    return text, aggs


def curves_plot(
    curves: Mapping[str, Mapping[str, Any]], path: pathlib.Path, title: str
) -> str | None:
    """Return-curve PNG (mean with standard errors) from stored evaluation results;
    the Markdown image line, or `None` if there is nothing to plot."""
    from ... import plots

    data = {}
    for name, r in curves.items():
        returns = np.asarray(r["returns"], np.float64)
        if returns.ndim == 2 and returns.shape[1] > 0:
            data[name] = (np.asarray(r["steps"], np.float64), returns)
    if not data:
        return None
    try:
        plots.return_curves(data, path, title=title)
    except Exception as e:  # a plot must not cost the report (tables are the record)
        return f"(plot {path.name} failed: {type(e).__name__}: {e})"
    return f"![{title}](plots/{path.name})"


def intervals_plot(aggs: Mapping[str, Any], path: pathlib.Path) -> str | None:
    from ... import plots

    if not aggs:
        return None
    try:
        plots.interval_estimates(aggs, path)
    except Exception as e:  # a plot must not cost the report (tables are the record)
        return f"(plot {path.name} failed: {type(e).__name__}: {e})"
    return f"![interval estimates](plots/{path.name})"


def es_table(es: Mapping[str, Mapping[str, Any]]) -> str:
    """Markdown table of the ES runs: generations, selected generation (and the paper's
    "Gen Used", OPEN Table 7), validation score, last population mean."""
    lines = [
        "| optimizer | generations | selected generation | paper: gen used (Table 7) | "
        "validation score | last mean fitness |",
        "|---|--:|--:|--:|--:|--:|",
    ]
    for name, r in es.items():
        hist = r.get("history") or [{}]
        last = hist[-1].get("mean_score", float("nan"))
        paper = r.get("paper_gen_used")
        lines.append(
            f"| {name} | {r['n_generations']} | {r['best_generation']} | "
            f"{'–' if paper is None else paper} | {fmt(r['best_validation_score'])} | "
            f"{fmt(last)} |"
        )
    return "\n".join(lines) + "\n"


def header(run_dir: RunDir, title: str, reproduces: str) -> list[str]:
    """`lorl`'s report header (title, what it reproduces, scale, overrides, budget banner) as
    lines, for reports built as a list of lines."""
    from ..._report import header as report_header

    return [*report_header(run_dir, title, reproduces).rstrip("\n").split("\n"), ""]


def per_env_block(
    run_dir: RunDir,
    evaluation: Mapping[str, Mapping[str, Any]],
    *,
    paper: Mapping[str, str] | None = None,
    plot_prefix: str = "curves",
) -> list[str]:
    """Per environment: IQM/mean table of final returns with 95% CIs, the paper's
    statement beside it, and the return-curve plot."""
    out: list[str] = []
    for env, per_opt in evaluation.items():
        scores = {name: finite_scores(r["final_returns"]) for name, r in per_opt.items()}
        table, _ = interval_table(scores)
        out += [f"### {env}", "", "Final return, IQM and mean with 95% stratified bootstrap CIs:"]
        out += ["", table]
        if paper and env in paper:
            out += [f"Paper: {paper[env]}", ""]
        img = curves_plot(
            per_opt, run_dir.plots_dir / f"{plot_prefix}-{stage_name(env)}.png", f"{env}"
        )
        if img:
            out += [img, ""]
    return out


ProgressFn = Callable[[str], None]
