"""Collect the published-OPEN evaluations at the paper's budget into `docs/` and write
their results page.

Reads `lorl run open/published` run folders, finished or still running (every stored
seed group counts), merges their seeds into one JSON per (environment, optimizer) in the
format `lorl evaluate` writes (`lorl.evaluation.EvaluationResult.to_dict`: optimizer, env,
seeds, final_returns, steps, returns, timesteps, ...), and writes the page from those
JSON files alone, so it can be regenerated on any machine from what is committed:

    python tools/published_open_results.py --run /work/runs/open-published-minatar
    python tools/published_open_results.py            # page only, from docs/ data

Return curves are stored every `--curve-stride` updates (the last update always kept);
final returns are exact. Statistics: IQM and mean with 95% stratified bootstrap CIs and
the probability of improvement over tuned Adam (`lorl.stats`, rliable).
"""

import argparse
import json
import pathlib
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from lorl import plots, stats
from lorl._paper import OPEN_FIGURE2, OPEN_FIGURE4_IN_DISTRIBUTION
from lorl.evaluation import EvaluationResult
from lorl.experiments.open._common import base_agent
from lorl.experiments.open._published import PUBLISHED_FOR, PublishedConfig
from lorl.runs import RunDir, to_jsonable

ROOT = pathlib.Path(__file__).resolve().parents[1]
DATA = ROOT / "docs" / "data" / "lorl" / "published-open"
PAGE = ROOT / "docs" / "lorl" / "published-open.md"
IMG = ROOT / "docs" / "lorl" / "img"
GROUP = re.compile(r"^(?P<stage>eval-.+)-seeds-(?P<first>\d+)-(?P<last>\d+)$")
PAPER = {
    **OPEN_FIGURE2,
    "all": OPEN_FIGURE4_IN_DISTRIBUTION,
}
MULTI_PAPER = "Figure 3: the multi-task OPEN beats Adam in aggregate over the four games."
ORDER = ("open", "open:multi", "adam", "rmsprop", "lion")


def _file(env: str, optimizer: str) -> pathlib.Path:
    return DATA / f"{env}__{optimizer.replace(':', '_')}.json"


def _records(run: RunDir) -> dict[tuple[str, str], dict[int, dict[str, Any]]]:
    """(env, optimizer) -> seed -> that seed's stored final return, curve, divergence."""
    cfg = run.config_dict
    seeds = list(
        range(cfg["evaluation"]["seed"], cfg["evaluation"]["seed"] + cfg["evaluation"]["n_seeds"])
    )
    names: dict[str, tuple[str, str]] = {}
    for env in cfg["envs"]:
        opts = [f"open:{PUBLISHED_FOR[env]}", "open:multi", *cfg["evaluation"]["baselines"]]
        for opt in opts:
            stage = "eval-" + "-".join([env, opt]).replace(":", "_")
            names[stage] = (env, opt)
    out: dict[tuple[str, str], dict[int, dict[str, Any]]] = {}
    for path in sorted((run.path / "results").glob("eval-*.json")):
        m = GROUP.match(path.stem)
        stage, group = (
            (m["stage"], list(range(int(m["first"]), int(m["last"]) + 1)))
            if m
            else (path.stem, seeds)
        )
        if stage not in names:
            continue
        rec = json.loads(path.read_text())
        per = out.setdefault(names[stage], {})
        for i, seed in enumerate(group):
            per[seed] = {
                "final_return": rec["final_returns"][i],
                "returns": rec["returns"][i],
                "steps": rec["steps"],
                "first_nonfinite_update": rec["first_nonfinite_update"][i],
            }
    return out


def _agent(run: RunDir, env: str) -> dict[str, Any]:
    import dataclasses

    from lorl.runs import config_from_dict

    cfg = config_from_dict(PublishedConfig, run.config_dict)
    return dataclasses.asdict(cfg.agent.config(base_agent(env)))


def collect(run_dirs: Sequence[pathlib.Path], stride: int) -> list[pathlib.Path]:
    """Merge the runs' stored seeds into the JSON files under `DATA` (seeds already there
    are kept; a seed found again must agree). Returns the files written."""
    written = []
    for run_path in run_dirs:
        run = RunDir.open(run_path)
        for (env, opt), per_seed in _records(run).items():
            path = _file(env, opt)
            old = json.loads(path.read_text()) if path.is_file() else None
            agent = _agent(run, env)
            merged: dict[int, dict[str, Any]] = {}
            if old is not None:
                if old["agent_config"] != to_jsonable(agent):
                    raise SystemExit(f"{path}: stored with another agent config; not merging")
                for i, seed in enumerate(old["seeds"]):
                    merged[seed] = {
                        "final_return": old["final_returns"][i],
                        "first_nonfinite_update": old["first_nonfinite_update"][i],
                        "curve": old["returns"][i],
                    }
            steps_full = np.asarray(next(iter(per_seed.values()))["steps"])
            keep = np.unique(np.r_[np.arange(0, len(steps_full), stride), len(steps_full) - 1])
            for seed, rec in per_seed.items():
                new = {
                    "final_return": rec["final_return"],
                    "first_nonfinite_update": rec["first_nonfinite_update"],
                    "curve": np.asarray(rec["returns"], object)[keep].tolist(),
                }
                if seed in merged and merged[seed]["final_return"] != new["final_return"]:
                    raise SystemExit(f"{path}: seed {seed} stored with another final return")
                merged[seed] = new
            seeds = sorted(merged)
            result = {
                "env": env,
                "optimizer": opt,
                "agent": "ppo",
                "seeds": seeds,
                "final_returns": [merged[s]["final_return"] for s in seeds],
                "steps": steps_full[keep].tolist(),
                "returns": [merged[s]["curve"] for s in seeds],
                "first_nonfinite_update": [merged[s]["first_nonfinite_update"] for s in seeds],
                "timesteps": int(agent["total_timesteps"]),
                "seconds": float("nan"),
                "agent_config": agent,
                "tuning": None,
                "curve_stride": stride,
                "command": f"lorl run open/published --scale paper envs={env} "
                "evaluation.seed_group=2 evaluation.baselines=adam "
                f"(seeds {seeds[0]}..{seeds[-1]})",
            }
            EvaluationResult.from_dict(to_jsonable(result))  # the format `lorl evaluate` reads
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(to_jsonable(result), indent=None))
            written.append(path)
    return written


def _load() -> dict[str, dict[str, EvaluationResult]]:
    out: dict[str, dict[str, EvaluationResult]] = {}
    for path in sorted(DATA.glob("*.json")):
        r = EvaluationResult.from_dict(json.loads(path.read_text()))
        out.setdefault(r.env, {})[r.optimizer] = r
    return out


def _sort_key(opt: str) -> int:
    kind = "open" if opt.startswith("open:") and opt != "open:multi" else opt
    return ORDER.index(kind) if kind in ORDER else len(ORDER)


def _fmt(iv: stats.Interval) -> str:
    return f"{iv.point:.2f} [{iv.low:.2f}, {iv.high:.2f}]"


def _env_section(env: str, per_opt: Mapping[str, EvaluationResult], min_seeds: int) -> list[str]:
    opts = sorted(per_opt, key=_sort_key)
    finite = {o: per_opt[o].final_returns[np.isfinite(per_opt[o].final_returns)] for o in opts}
    agg = stats.aggregate(
        {o: finite[o] for o in opts if len(finite[o]) > 1}, metrics=("iqm", "mean"), seed=0
    )
    any_r = per_opt[opts[0]]
    lines = [
        f"### {env}",
        "",
        f"PPO with OPEN's settings (Table 3): {any_r.timesteps:,} environment steps per run, "
        f"{any_r.agent_config['n_envs']} environments x {any_r.agent_config['n_steps']} steps.",
        "",
        "| optimizer | seeds | IQM [95% CI] | mean [95% CI] | P(better than Adam) [95% CI] |",
        "|---|---:|---|---|---|",
    ]
    for o in opts:
        n = len(per_opt[o].seeds)
        status = "" if n >= min_seeds else " (running)"
        iqm = _fmt(agg[o]["iqm"]) if o in agg else "–"
        mean = _fmt(agg[o]["mean"]) if o in agg else "–"
        poi = "–"
        if o != "adam" and "adam" in finite and len(finite[o]) > 1 and len(finite["adam"]) > 1:
            poi = _fmt(stats.probability_of_improvement(finite[o], finite["adam"], seed=0))
        lines.append(f"| {o}{status} | {n} | {iqm} | {mean} | {poi} |")
    lines += ["", f"Paper: {PAPER.get(env, '–')}", ""]
    curves = {o: (per_opt[o].steps, per_opt[o].returns) for o in opts}
    png = plots.return_curves(
        curves,
        IMG / f"published-open-{env}.png",
        title=f"{env}: mean ± s.e. over seeds",
        ylabel="return",
    )
    lines += [f"![{env} return curves](img/{png.name})", ""]
    return lines


def _multi_section(results: Mapping[str, Mapping[str, EvaluationResult]]) -> list[str]:
    games = [
        g
        for g in ("asterix", "breakout", "freeway", "space_invaders")
        if g in results and {"open:multi", "adam"} <= set(results[g])
    ]
    if len(games) < 2:
        return []
    n = min(min(len(results[g][o].seeds) for o in ("open:multi", "adam")) for g in games)
    adam_mean = np.array([np.nanmean(results[g]["adam"].final_returns) for g in games])
    scores = {
        o: np.stack([results[g][o].final_returns[:n] for g in games], axis=1)
        for o in ("open:multi", "adam")
    }
    norm = stats.normalise(scores, adam_mean)
    agg = stats.aggregate(norm, metrics=("iqm", "mean", "optimality_gap"), seed=0)
    poi = stats.probability_of_improvement(scores["open:multi"], scores["adam"], seed=0)
    lines = [
        "### Multi-task OPEN in aggregate (Figure 3)",
        "",
        f"Over {', '.join(games)}: returns divided by tuned Adam's mean return on each game "
        f"(measured here), the first {n} seeds of each.",
        "",
        "| optimizer | IQM [95% CI] | mean [95% CI] | optimality gap [95% CI] |",
        "|---|---|---|---|",
    ]
    for o in ("open:multi", "adam"):
        row = [_fmt(agg[o][m]) for m in ("iqm", "mean", "optimality_gap")]
        lines.append(f"| {o} | {' | '.join(row)} |")
    lines += [
        "",
        f"P(open:multi better than Adam), averaged over games: {_fmt(poi)}.",
        "",
        f"Paper: {MULTI_PAPER}",
        "",
    ]
    return lines


def write_page(min_seeds: int) -> None:
    results = _load()
    head = (
        PAGE.read_text().split("<!-- results -->")[0]
        if PAGE.is_file()
        else "# Published OPEN at the paper's budget\n\n"
    )
    lines = [head.rstrip(), "", "<!-- results -->", "", "## Results", ""]
    if not results:
        lines += ["No evaluation has finished yet.", ""]
    for env in ("asterix", "breakout", "freeway", "space_invaders", "all", "ant"):
        if env in results:
            lines += _env_section(env, results[env], min_seeds)
    lines += _multi_section(results)
    lines.append(
        "Generated by `python tools/published_open_results.py` from "
        "`docs/data/lorl/published-open/*.json` (one file per environment and optimizer, "
        "the format `lorl evaluate` writes; curves every few updates, final returns exact)."
    )
    PAGE.write_text("\n".join(lines) + "\n")


def main() -> None:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument(
        "--run", action="append", default=[], type=pathlib.Path, help="run folder (repeatable)"
    )
    p.add_argument("--curve-stride", type=int, default=4)
    p.add_argument("--min-seeds", type=int, default=8, help="fewer seeds are marked running")
    p.add_argument(
        "--out",
        type=pathlib.Path,
        default=None,
        help="write data/, img/ and the page here instead of docs/",
    )
    p.add_argument(
        "--store",
        type=pathlib.Path,
        default=None,
        help="also add every collected run to this result store (lorl evaluate --store, "
        "study/comparison store=...), under the optimizer's name",
    )
    args = p.parse_args()
    if args.out is not None:
        global DATA, PAGE, IMG
        DATA, PAGE, IMG = args.out / "data", args.out / "published-open.md", args.out / "img"
    for path in collect(args.run, args.curve_stride):
        print(path)
    write_page(args.min_seeds)
    if args.store is not None:
        from lorl.evaluation import ResultStore

        store = ResultStore(args.store)
        for env_results in _load().values():
            for name, result in env_results.items():
                store.add(f"name:{name}", result)
        print(f"{len(store)} runs in the store {args.store}")
    print(PAGE)


if __name__ == "__main__":
    main()
