"""Shared pieces of the experiments' Markdown reports: rliable-style tables of final
returns, return-curve and interval plots, and tables of the papers' numbers beside ours."""

import pathlib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ._format import fmt
from .evaluation import EvaluationResult
from .runs import RunDir


def mean_se(final_returns: Sequence[float] | np.ndarray) -> str:
    """`"mean ± standard error"` of final returns (the Optim4RL papers' format)."""
    x = np.asarray(final_returns, dtype=np.float64)
    x = x[np.isfinite(x)]
    if len(x) == 0:
        return "nan"
    se = float(np.std(x, ddof=1) / np.sqrt(len(x))) if len(x) > 1 else 0.0
    return f"{fmt(float(np.mean(x)), 2)} ± {fmt(se, 2)}"


def evaluation_section(
    run_dir: RunDir,
    title: str,
    results: Mapping[str, EvaluationResult],
    *,
    plot_name: str,
    paper: Mapping[str, str] | None = None,
    paper_source: str = "",
    reps: int = 2000,
) -> str:
    """A report section for several optimizers on one environment.

    Writes `plots/<plot_name>_curves.png` (mean return ± standard error over seeds) and
    `plots/<plot_name>_intervals.png` (IQM, mean, median with 95% stratified bootstrap
    CIs, [`lorl.stats.aggregate`][]) and returns Markdown with the table of final returns
    (IQM with CI, mean ± s.e.) and, where given, the paper's number beside ours.

    **Arguments:**

    - `run_dir`: the run folder (plots go to its `plots/`).
    - `title`: the section heading.
    - `results`: label -> [`lorl.evaluation.EvaluationResult`][], all on one environment.
    - `plot_name`: the file-name stem of the plots.
    - `paper`: label -> the paper's number for that optimizer (free text).
    - `paper_source`: where the paper's numbers come from (e.g. `"Optim4RL Table 1"`).
    - `reps`: bootstrap resamples.

    **Returns:**

    The Markdown section.
    """
    from . import plots, stats

    lines = [f"## {title}", ""]
    finite = {
        k: np.asarray(r.final_returns, np.float64)
        for k, r in results.items()
        if np.all(np.isfinite(r.final_returns))
    }
    broken = [k for k in results if k not in finite]
    agg: dict[str, Any] = {}
    if finite:
        metrics = ("iqm", "mean", "median") if all(len(v) > 1 for v in finite.values()) else ()
        if metrics:
            agg = stats.aggregate(finite, metrics=metrics, reps=reps, seed=0)
    any_result = next(iter(results.values()))
    lines.append(
        f"{any_result.agent.upper()} on `{any_result.env}`, {any_result.timesteps:,} environment "
        f"steps per run, {len(any_result.seeds)} seeds "
        f"({any_result.seeds[0]}..{any_result.seeds[-1]}). Final return: "
        + (
            "mean episode return over the last updates (Optim4RL)."
            if any_result.agent == "a2c"
            else "mean over environments of the last episode return (OPEN)."
        )
    )
    lines.append("")
    head = "| optimizer | IQM [95% CI] | mean ± s.e. | seconds |"
    sep = "|---|---|---|---:|"
    if paper:
        head += f" paper ({paper_source}) |"
        sep += "---|"
    lines += [head, sep]
    for k, r in results.items():
        if k in agg and "iqm" in agg[k]:
            iv = agg[k]["iqm"]
            iqm = f"{fmt(iv.point, 2)} [{fmt(iv.low, 2)}, {fmt(iv.high, 2)}]"
        else:
            iqm = "–"
        row = f"| {k} | {iqm} | {mean_se(r.final_returns)} | {r.seconds:.0f} |"
        if paper:
            row += f" {paper.get(k, '–')} |"
        lines.append(row)
    lines.append("")
    if broken:
        lines.append(
            "Runs with non-finite final returns (NaN updates or no finished episode): "
            + ", ".join(broken)
            + "."
        )
        lines.append("")
    curves = {k: (r.steps, r.returns) for k, r in results.items()}
    try:
        curve_png = plots.return_curves(
            curves,
            run_dir.plots_dir / f"{plot_name}_curves.png",
            title=f"{title}: mean ± s.e. over seeds",
            ylabel="episode return",
        )
        lines.append(f"![return curves]({_rel(curve_png, run_dir)})")
    except (ValueError, IndexError) as e:  # a plot must not lose the report (short curves)
        lines.append(f"(return-curve plot not drawn: {e})")
    if agg:
        lines += ["", stats.markdown_table(agg, precision=2).rstrip(), ""]
        try:
            iv_png = plots.interval_estimates(
                agg, run_dir.plots_dir / f"{plot_name}_intervals.png", title=title
            )
            lines.append(f"![interval estimates]({_rel(iv_png, run_dir)})")
        except (ValueError, IndexError) as e:
            lines.append(f"(interval plot not drawn: {e})")
    lines.append("")
    return "\n".join(lines) + "\n"


def _rel(path: pathlib.Path, run_dir: RunDir) -> str:
    try:
        return str(path.relative_to(run_dir.path))
    except ValueError:
        return str(path)


def header(
    run_dir: RunDir, title: str, reproduces: str, notes: str = "", budget: str | None = None
) -> str:
    """The top of a report: title, what it reproduces, the run's scale and overrides.

    `budget`, where given, says which budget ran and replaces the scale's banner (for
    runs whose budget is not set by the scale, such as `lorl evaluate`'s).
    """
    m = run_dir.manifest
    lines = [
        f"# {title}",
        "",
        f"Reproduces: {reproduces}. Experiment `{m['experiment']}`, scale `{m['scale']}`"
        + (f", overrides `{' '.join(m['overrides'])}`" if m.get("overrides") else "")
        + f"; lorl {m.get('versions', {}).get('lorl')}, devices {len(m.get('devices', []))}.",
        "",
    ]
    if budget is not None:
        lines += [budget, ""]
    elif m.get("scale") == "cpu":
        lines += [
            "*cpu scale*: budgets far below the paper's (see `run.json` for the config); "
            "the numbers show the pipeline works, not that the paper's results are matched.",
            "",
        ]
    if notes:
        lines += [notes, ""]
    return "\n".join(lines) + "\n"
