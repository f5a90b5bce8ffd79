"""`study/comparison`: tuned Adam and RMSProp, the published per-environment and multi-task
OPEN, and an Optim4RL meta-trained by lorl on gridworlds, side by side on the four MinAtar
games and Ant at each one's paper budget (the comparative study, `../shared/papers/003_*`),
with rliable aggregates over environments. Every run goes through a result store, so the
runs of `open/published` (and of earlier studies) fill the table and a re-run computes only
what is missing."""

from __future__ import annotations

import dataclasses
import pathlib
from typing import Any, cast

import numpy as np

from ...runs import ConfigError, RunDir
from .._registry import Experiment, register
from ..open import _common as oc

#: Optimizer names of the study: `open` is each environment's own published OPEN,
#: `optim4rl` the saved optimizer of `optim4rl_path` at OPEN's agent learning rate for the
#: environment (0.1 x Adam's, OPEN Appendix C.2).
OPTIMIZERS = ("adam", "rmsprop", "lion", "open", "open:multi", "optim4rl")
ENVS = ("asterix", "breakout", "freeway", "space_invaders", "ant")

#: What the comparative study claims (`../shared/papers/003_*`), beside our measurement.
CLAIMS = (
    "OPEN beats Optim4RL in multi-task settings.",
    "Learned optimizers win on MinAtar but only reach parity on Ant, and fail out of "
    "distribution there (the multi-task OPEN, trained on MinAtar only, on Ant).",
)


@dataclasses.dataclass(frozen=True)
class ComparisonConfig:
    """The comparison study.

    **Fields:**

    - `envs`: environments (MinAtar games and `ant`; Humanoid has no published OPEN and
      no tuned baseline values in OPEN's Appendix C.2, so it is not offered).
    - `optimizers`: from `OPTIMIZERS` (an optimizer without tuned values or weights for an
      environment, e.g. Lion is tuned everywhere but `open:multi` on Ant is out of its
      training distribution, is still run; one with nothing to run there is recorded as
      not run).
    - `optim4rl_path`: a saved learned optimizer (`lorl_optim.save`, or a run folder of
      `optim4rl/from-scratch-*` / `optim4rl/generalisation-brax`) for `optim4rl`; without
      it `optim4rl` is recorded as not run.
    - `agent`: PPO settings that differ from OPEN Table 3 (`None`: each environment's
      paper budget).
    - `n_seeds`, `seed`: evaluation seeds `seed .. seed + n_seeds - 1` (OPEN: 16 from
      10000, as `open/published`, whose runs the store then shares).
    - `seed_group`: seeds per compiled program (`0`: all); each group is stored as soon as
      it finishes, so a killed run loses at most one group.
    - `store`: the result-store folder (`""`: the run folder's own `store/`); point several
      studies and `lorl evaluate --store` at one folder to share runs.
    """

    envs: tuple[str, ...] = ENVS
    optimizers: tuple[str, ...] = ("adam", "rmsprop", "open", "open:multi", "optim4rl")
    optim4rl_path: str | None = None
    agent: oc.AgentSettings = dataclasses.field(default_factory=oc.AgentSettings)
    n_seeds: int = 16  # OPEN Figure 2
    seed: int = 10_000  # as open/published
    seed_group: int = 0
    store: str = ""

    def __post_init__(self):
        if self.n_seeds < 1:
            raise ValueError(f"n_seeds must be >= 1, got {self.n_seeds}")
        if self.seed_group < 0:
            raise ValueError(f"seed_group must be >= 0, got {self.seed_group}")


def _cpu() -> ComparisonConfig:
    # cpu scale (ours): two MinAtar games, 16 envs x 32 steps x 20 updates (10,240 steps;
    # OPEN 1e7), 4 seeds; no Ant (Brax compiles for minutes) and no Optim4RL file.
    return ComparisonConfig(
        envs=("breakout", "asterix"),
        optimizers=("adam", "rmsprop", "open", "open:multi"),
        agent=oc.AgentSettings(
            n_envs=16, n_steps=32, total_timesteps=16 * 32 * 20, n_minibatches=4, n_epochs=2
        ),
        n_seeds=4,
    )


def _validate(cfg: ComparisonConfig) -> None:

    bad_envs = [e for e in cfg.envs if e not in ENVS]
    if bad_envs or not cfg.envs:
        raise ConfigError(f"envs: {bad_envs or 'none given'}; choose from {', '.join(ENVS)}")
    bad = [o for o in cfg.optimizers if o not in OPTIMIZERS]
    if bad or not cfg.optimizers:
        raise ConfigError(f"optimizers: {bad or 'none given'}; choose from {', '.join(OPTIMIZERS)}")
    if "adam" not in cfg.optimizers:
        raise ConfigError("optimizers must include adam: the aggregates are Adam-normalised")
    if cfg.optim4rl_path is not None and not pathlib.Path(cfg.optim4rl_path).exists():
        raise ConfigError(f"optim4rl_path {cfg.optim4rl_path!r} does not exist")
    if "ant" in cfg.envs:
        oc.require_brax()
    for e in cfg.envs:
        cfg.agent.config(oc.base_agent(e))


def _plan(cfg: ComparisonConfig, env: str) -> dict[str, Any]:
    """Optimizer label -> what to evaluate on `env` (a `lorl.evaluation` name or object),
    or a string starting with `"not run: "`."""
    import lorl_optim as lo

    from ..open._published import PUBLISHED_FOR

    tuned = {"adam": lo.baselines.ADAM, "rmsprop": lo.baselines.RMSPROP, "lion": lo.baselines.LION}
    plan: dict[str, Any] = {}
    for name in cfg.optimizers:
        if name in tuned:
            ok = oc.preset_key(env) in tuned[name]
            plan[name] = name if ok else f"not run: no tuned {name} for {env} (OPEN C.2)"
        elif name == "open":
            plan[f"open:{PUBLISHED_FOR[env]}"] = f"open:{PUBLISHED_FOR[env]}"
        elif name == "open:multi":
            plan[name] = name
        elif cfg.optim4rl_path is None:
            plan[name] = "not run: no optim4rl_path given"
        else:
            from ...evaluation import load_optimizer

            opt = load_optimizer(cfg.optim4rl_path)
            lr = lo.baselines.optim4rl_learning_rate(env)  # 0.1 x Adam's, OPEN C.2
            plan[name] = opt.with_learning_rate(lr)  # pyright: ignore[reportAttributeAccessIssue]
    return plan


def _run(cfg: ComparisonConfig, run_dir: RunDir) -> dict[str, Any]:
    from ...evaluation import evaluate_with_store

    _validate(cfg)
    store = cfg.store or str(run_dir.path / "store")
    seeds = list(range(cfg.seed, cfg.seed + cfg.n_seeds))
    group = cfg.seed_group or len(seeds)
    evaluation: dict[str, dict[str, Any]] = {}
    not_run: dict[str, dict[str, str]] = {}
    agents: dict[str, Any] = {}
    for env in cfg.envs:
        agent = cfg.agent.config(oc.base_agent(env))
        agents[env] = dataclasses.asdict(agent)
        for label, opt in _plan(cfg, env).items():
            if isinstance(opt, str) and opt.startswith("not run: "):
                not_run.setdefault(env, {})[label] = opt.removeprefix("not run: ")
                continue

            def compute(opt: Any = opt, env: str = env, agent: Any = agent) -> dict[str, Any]:
                for i in range(0, len(seeds), group):  # each group stored when it finishes
                    evaluate_with_store(store, opt, env, seeds=seeds[i : i + group],
                                        agent=agent, on_nonfinite="record")  # fmt: skip
                return evaluate_with_store(store, opt, env, seeds=seeds, agent=agent).to_dict()

            stage = oc.stage_name("eval", env, label)
            result = run_dir.stage(stage, compute)
            evaluation.setdefault(env, {})[label] = result
    return {"evaluation": evaluation, "not_run": not_run, "agents": agents, "store": store}


def _kind(label: str) -> str:
    """`open:<game>` -> `open` (the per-environment published OPEN), else the label."""
    return "open" if label.startswith("open:") and label != "open:multi" else label


def aggregate_section(run_dir: RunDir, evaluation: dict[str, dict[str, Any]]) -> list[str]:
    """Adam-normalised aggregates over the environments every optimizer ran on: IQM,
    mean, optimality gap (95% stratified bootstrap CIs), probability of improvement over
    Adam, and a performance-profile plot."""
    from ... import plots, stats

    envs = list(evaluation)
    kinds: dict[str, dict[str, np.ndarray]] = {}
    for env in envs:
        for label, r in evaluation[env].items():
            kinds.setdefault(_kind(label), {})[env] = oc.finite_scores(r["final_returns"])
    full = {k: v for k, v in kinds.items() if set(v) == set(envs) and "adam" in kinds}
    if "adam" not in full or len(envs) < 1:
        return [
            "## Aggregate over environments",
            "",
            "Not computed: Adam did not run everywhere.",
            "",
        ]
    n = min(len(x) for v in full.values() for x in v.values())
    adam_mean = np.asarray([np.nanmean(full["adam"][e]) for e in envs])
    raw = {k: np.stack([v[e][:n] for e in envs], axis=1) for k, v in full.items()}
    finite = {k: v for k, v in raw.items() if np.all(np.isfinite(v))}
    norm = cast(dict[str, np.ndarray], stats.normalise(finite, adam_mean))
    aggs = stats.aggregate(norm, metrics=("iqm", "mean", "optimality_gap"), seed=0)
    out = [
        "## Aggregate over environments",
        "",
        f"Scores divided by tuned Adam's mean final return on each environment (measured "
        f"here), over {', '.join(envs)}; the first {n} seeds of each optimizer. Optimizers "
        "that did not run on every environment are left out of the aggregate.",
        "",
        stats.markdown_table(aggs, precision=3).rstrip(),
        "",
        "| optimizer | P(better than Adam) [95% CI] |",
        "|---|---|",
    ]
    for k in finite:
        if k != "adam":
            poi = stats.probability_of_improvement(finite[k], finite["adam"], seed=0)
            out.append(f"| {k} | {poi.point:.3f} [{poi.low:.3f}, {poi.high:.3f}] |")
    out.append("")
    try:
        png = plots.performance_profiles(norm, run_dir.plots_dir / "performance-profiles.png",
                                         title="Adam-normalised performance profiles")  # fmt: skip
        out += [f"![performance profiles](plots/{png.name})", ""]
    except Exception as e:  # a plot must not cost the report
        out += [f"(performance-profile plot failed: {type(e).__name__}: {e})", ""]
    return out


def _report(run_dir: RunDir) -> str:
    res = run_dir.load_results()
    out = oc.header(run_dir, "Comparative study: learned vs hand-designed optimizers",
                    "the comparative study (003), Table/Figure of MinAtar and Ant")  # fmt: skip
    budgets = {e: a["total_timesteps"] for e, a in res["agents"].items()}
    out += [f"Budget per run (environment steps): {budgets}. Result store: `{res['store']}`.", ""]
    out += oc.per_env_block(run_dir, res["evaluation"])
    for env, missing in res.get("not_run", {}).items():
        for label, why in missing.items():
            out.append(f"- not run on {env}: {label} ({why})")
    out.append("")
    out += aggregate_section(run_dir, res["evaluation"])
    out += ["## The study's claims", ""] + [f"- {c}" for c in CLAIMS] + [""]
    return "\n".join(out)


COMPARISON = register(
    Experiment(
        name="study/comparison",
        summary="tuned Adam/RMSProp vs published OPEN (per-env, multi-task) vs a transferred "
        "Optim4RL on MinAtar and Ant, with a shared result store",
        reproduces="the comparative study (003): learned vs hand-designed optimizers",
        scales={"cpu": _cpu, "paper": ComparisonConfig},
        run=_run,
        report=_report,
        validate=_validate,
    )
)
