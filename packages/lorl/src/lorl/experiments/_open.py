"""Catalogue module (registers experiments on import): the OPEN experiments (Goldie et al.,
"Can Learned Optimization Make Reinforcement Learning Less Difficult?", NeurIPS 2024).

- `open/single-task`: OPEN by ES on one MinAtar game or Ant (Figure 2; `env` picks it).
- `open/multi-task`: the larger OPEN by ES on the four MinAtar games at once (Figure 3).
- `open/gridworld`: OPEN by ES on the gridworld level distribution, evaluated in and out
  of support, across agent widths and training lengths (Figures 4 and 16).
- `open/feature-ablations`: No Features and OPEN without each feature (Figure 5).
- `open/deep-sea`: separated actor/critic OPEN with and without learned stochasticity in
  Deep Sea (Figure 6, Figure 17).
- `open/published`: the published OPEN weights against tuned baselines (Figures 2-4 with
  the authors' optimizers; no meta-training).
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from .._lazy import lazy_module
from ..runs import ConfigError, RunDir
from . import _open_common as oc
from ._registry import Experiment, register

if TYPE_CHECKING:
    import lorl_agents as la
    import lorl_gridworlds as lg
    import lorl_meta as lm
else:  # loaded on first use: the catalogue of experiments imports no JAX stack
    la = lazy_module("lorl_agents")
    lg = lazy_module("lorl_gridworlds")
    lm = lazy_module("lorl_meta")

MinAtarEnv = Literal["asterix", "breakout", "freeway", "space_invaders"]
SingleEnv = Literal["asterix", "breakout", "freeway", "space_invaders", "ant"]


def _base_agent(env: str) -> la.PPOConfig:
    """OPEN Table 3's column for `env`."""
    if env == "ant":
        return la.PPOConfig.brax_ant()
    if env in oc.MINATAR:
        return la.PPOConfig.minatar()
    return la.PPOConfig.gridworld()


def _make_env(env: str) -> tuple[Any, Any]:
    if env == "ant":
        oc.require_brax()
        return la.make_env("ant")
    names = {
        "asterix": "Asterix-MinAtar",
        "breakout": "Breakout-MinAtar",
        "freeway": "Freeway-MinAtar",
        "space_invaders": "SpaceInvaders-MinAtar",
    }
    return la.make_env(names[env])


def _check_learned(learned: tuple[str, ...], allowed: tuple[str, ...] = oc.LEARNED) -> None:
    if not learned:
        raise ConfigError("learned: name at least one learned optimizer")
    for kind in learned:
        if kind not in allowed:
            raise ConfigError(
                f"learned: unknown or unsupported optimizer {kind!r} here; allowed: "
                f"{', '.join(allowed)}"
            )
    if len(set(learned)) != len(learned):
        raise ConfigError(f"learned: duplicates in {learned}")


def _check_common(es: oc.ESSettings, column: str, evaluation: oc.EvalSettings) -> None:
    oc.check_population(es.population(column))
    if evaluation.n_seeds < 1:
        raise ConfigError(f"evaluation.n_seeds must be >= 1, got {evaluation.n_seeds}")


def _cpu_es(n_generations: int, population_size: int) -> oc.ESSettings:
    """ES settings of a cpu scale. Validation every generation: the generation with and
    the one without validation are two compiled programs, and on a CPU compiling the
    second costs more than validating 2 seeds each generation."""
    return oc.ESSettings(
        n_generations=n_generations,
        population_size=population_size,
        eval_every=1,
        n_validation=2,
    )


# =========================================================================== single task


@dataclasses.dataclass(frozen=True)
class SingleTaskConfig:
    """`open/single-task` (OPEN Figure 2): meta-train learned optimizers by ES on one
    environment, evaluate them and the tuned baselines on fresh seeds.

    **Fields:**

    - `env`: the environment (Figure 2: asterix, breakout, freeway, space_invaders, ant).
    - `learned`: the learned optimizers to meta-train (Figure 2: `open`, `optim4rl`,
      `no_features`; Optim4RL at `0.1 x LR_Adam`, Appendix C.2).
    - `seed`: seed of the ES runs.
    - `es`: ES settings (`None` fields: Table 7's MinAtar or Ant column).
    - `agent`: PPO settings that differ from Table 3 (`None`: Table 3).
    - `evaluation`: seeds (Figure 2: 16) and baselines (Adam, RMSProp, Lion tuned per
      environment, Appendix C.2; VeLO is not available here).
    """

    env: SingleEnv = "breakout"
    learned: tuple[str, ...] = ("open", "optim4rl", "no_features")  # OPEN Figure 2
    seed: int = 0
    es: oc.ESSettings = dataclasses.field(default_factory=oc.ESSettings)
    agent: oc.AgentSettings = dataclasses.field(default_factory=oc.AgentSettings)
    evaluation: oc.EvalSettings = dataclasses.field(default_factory=oc.EvalSettings)


def _minatar_cpu_agent(**overrides: Any) -> oc.AgentSettings:
    # cpu scale: 4 envs x 16 steps x 16 updates = 1,024 steps per run (Table 3: 64 envs
    # x 128 steps, 1e7 steps). ES runs a whole PPO run per member per generation.
    base = oc.AgentSettings(
        n_envs=4, n_steps=16, total_timesteps=1_024, n_minibatches=2, n_epochs=2
    )
    return dataclasses.replace(base, **overrides)


def _single_cpu() -> SingleTaskConfig:
    return SingleTaskConfig(
        learned=("open",),
        es=_cpu_es(5, 4),
        agent=_minatar_cpu_agent(),
        evaluation=oc.EvalSettings(n_seeds=8, baselines=("adam",)),
    )


def _single_column(env: str) -> str:
    return "ant" if env == "ant" else "minatar"


def _single_validate(cfg: SingleTaskConfig) -> None:
    _check_learned(cfg.learned, ("open", "optim4rl", "no_features"))
    if cfg.env == "ant":
        oc.require_brax()
    _check_common(cfg.es, _single_column(cfg.env), cfg.evaluation)
    for kind in cfg.learned:
        cfg.es.resolve(kind, cfg.env, _single_column(cfg.env))
    cfg.agent.config(_base_agent(cfg.env))
    oc.check_baselines(cfg.evaluation.baselines, [cfg.env])


def _single_run(cfg: SingleTaskConfig, run_dir: RunDir) -> dict[str, Any]:
    _single_validate(cfg)
    agent = cfg.agent.config(_base_agent(cfg.env))
    env, params = _make_env(cfg.env)
    task = lm.ESTask(cfg.env, lm.ppo_fitness(la.PPO(agent), env), params)
    column = _single_column(cfg.env)
    es: dict[str, Any] = {}
    for kind in cfg.learned:
        trainer = oc.es_trainer(cfg.es.resolve(kind, cfg.env, column), task)
        es[kind] = oc.es_stage(
            run_dir,
            f"es-{kind}",
            trainer,
            oc.make_learned(kind, env=cfg.env),
            seed=cfg.seed,
            gen_used_paper=oc.TABLE7_GEN_USED.get((kind, cfg.env)),
        )
    seeds = cfg.evaluation.seeds()
    per_opt: dict[str, Any] = {}
    for kind in cfg.learned:
        opt = oc.load_trained(run_dir, f"es-{kind}", oc.make_learned(kind, env=cfg.env))
        per_opt[kind] = oc.evaluate_stage(
            run_dir,
            f"eval-{cfg.env}-{kind}",
            opt,
            cfg.env,
            seeds=seeds,
            agent=agent,
            label=kind,
            seed_group=cfg.evaluation.seed_group,
        )
    for b in cfg.evaluation.baselines:
        per_opt[b] = oc.evaluate_stage(
            run_dir,
            f"eval-{cfg.env}-{b}",
            b,
            cfg.env,
            seeds=seeds,
            agent=agent,
            label=b,
            seed_group=cfg.evaluation.seed_group,
        )
    return {"es": es, "evaluation": {cfg.env: per_opt}, "agent": agent}


#: What OPEN Figure 2 shows, per environment (the figure's numbers are not in the text).
FIG2_PAPER = {
    "asterix": "OPEN significantly outperforms every baseline (Figure 2; Adam's final "
    "return in the reference code: 15.04).",
    "breakout": "OPEN significantly outperforms every baseline (Figure 2; Adam: 50.08).",
    "freeway": "OPEN is comparable to the best baselines, not significantly better "
    "(Figure 2: three of the four MinAtar games are significant wins; Adam: 61.84).",
    "space_invaders": "OPEN significantly outperforms every baseline (Figure 2; Adam: 167.09).",
    "ant": "OPEN beats both other learned optimizers; against Adam the CIs overlap "
    "(Figure 2; Adam: 6517.3). Kan et al.'s re-evaluation finds parity with Adam.",
}


def _single_report(run_dir: RunDir) -> str:
    res = run_dir.load_results()
    out = oc.header(run_dir, "OPEN single-task training", "OPEN Figure 2")
    out += ["## Meta-training (ES)", "", oc.es_table(res["es"]), ""]
    out += ["## Evaluation on fresh seeds", ""]
    out += oc.per_env_block(run_dir, res["evaluation"], paper=FIG2_PAPER)
    return "\n".join(out)


SINGLE_TASK = register(
    Experiment(
        name="open/single-task",
        summary="OPEN (and Optim4RL, No Features) by ES on one MinAtar game or Ant vs tuned "
        "Adam/RMSProp/Lion; env=asterix|breakout|freeway|space_invaders|ant",
        reproduces="OPEN Figure 2",
        scales={"cpu": _single_cpu, "paper": SingleTaskConfig},
        run=_single_run,
        report=_single_report,
        validate=_single_validate,
    )
)


# =========================================================================== multi-task


@dataclasses.dataclass(frozen=True)
class MultiTaskConfig:
    """`open/multi-task` (OPEN Figure 3): the larger learned optimizers (F = 16, H = 32;
    Appendix B.5) meta-trained by ES on the four MinAtar games at once, each member on
    every game, returns divided by Adam's before ranking. `ant` may join the games (the
    comparative study's discrete + continuous multi-task run, `../shared/papers/003_*`):
    every environment keeps its own PPO configuration (OPEN Table 3's column), network and
    action distribution, and the fitness is the mean Adam-normalised return.

    **Fields:**

    - `envs`: the games (Figure 3: all four), optionally with `ant` (needs Brax).
    - `learned`: `open` and/or `no_features` (both larger; Optim4RL's per-game learning
      rates do not fit one multi-task optimizer here, so it is not offered).
    - `normalisers`: `"paper"` divides by Adam's returns of the OPEN reference (asterix
      15.04, breakout 50.08, freeway 61.84, space_invaders 167.09; full budget);
      `"measured"` evaluates tuned Adam first (the evaluation seeds, this run's budget)
      and divides by its mean final return, which is what a shortened budget needs.
    - `seed`, `es`, `agent`, `evaluation`: as in `open/single-task` (`es`: Table 7's
      multi-task column, 300 generations).
    """

    envs: tuple[SingleEnv, ...] = oc.MINATAR
    learned: tuple[str, ...] = ("open", "no_features")
    normalisers: Literal["paper", "measured"] = "paper"
    seed: int = 0
    es: oc.ESSettings = dataclasses.field(default_factory=oc.ESSettings)
    agent: oc.AgentSettings = dataclasses.field(default_factory=oc.AgentSettings)
    evaluation: oc.EvalSettings = dataclasses.field(default_factory=oc.EvalSettings)


def _multi_cpu() -> MultiTaskConfig:
    return MultiTaskConfig(
        learned=("open",),
        normalisers="measured",
        envs=("asterix", "breakout"),
        es=_cpu_es(3, 4),
        agent=_minatar_cpu_agent(),
        evaluation=oc.EvalSettings(n_seeds=8, baselines=("adam",)),
    )


def _multi_validate(cfg: MultiTaskConfig) -> None:
    _check_learned(cfg.learned, ("open", "no_features"))
    if not cfg.envs or len(set(cfg.envs)) != len(cfg.envs):
        raise ConfigError(f"envs must be distinct MinAtar games (and ant), got {cfg.envs}")
    for env in cfg.envs:
        if env not in (*oc.MINATAR, "ant"):
            raise ConfigError(
                f"envs: {env!r} is not a MinAtar game ({', '.join(oc.MINATAR)}) or ant"
            )
    if "ant" in cfg.envs:
        oc.require_brax()
    _check_common(cfg.es, "multi_task", cfg.evaluation)
    for kind in cfg.learned:
        cfg.es.resolve(kind, "multi_task", "multi_task")
    for env in cfg.envs:
        cfg.agent.config(_base_agent(env))
    oc.check_baselines(cfg.evaluation.baselines, list(cfg.envs))
    if cfg.normalisers == "measured" and "adam" not in cfg.evaluation.baselines:
        raise ConfigError(
            'normalisers="measured" divides by tuned Adam\'s return: keep "adam" in '
            "evaluation.baselines"
        )


def _multi_run(cfg: MultiTaskConfig, run_dir: RunDir) -> dict[str, Any]:
    _multi_validate(cfg)
    # every environment its own PPO (OPEN Table 3's column, e.g. Ant's continuous actor)
    agents = {e: cfg.agent.config(_base_agent(e)) for e in cfg.envs}
    envs = {e: _make_env(e) for e in cfg.envs}
    seeds = cfg.evaluation.seeds()
    evaluation: dict[str, Any] = {e: {} for e in cfg.envs}
    # The baselines first: with `normalisers="measured"` Adam's mean final return on the
    # evaluation seeds (at this run's budget) is the ES fitness normaliser.
    for b in cfg.evaluation.baselines:
        for e in cfg.envs:
            evaluation[e][b] = oc.evaluate_stage(
                run_dir,
                f"eval-{e}-{b}",
                b,
                e,
                seeds=seeds,
                agent=agents[e],
                label=b,
                seed_group=cfg.evaluation.seed_group,
            )
    if cfg.normalisers == "paper":
        normalisers = {e: oc.ADAM_NORMALISERS[e] for e in cfg.envs}
    else:
        normalisers = {}
        for e in cfg.envs:
            mean = float(np.nanmean(oc.finite_scores(evaluation[e]["adam"]["final_returns"])))
            # Adam's return can be 0 at a tiny budget: fall back to 1 (plain returns).
            normalisers[e] = mean if np.isfinite(mean) and mean > 1e-6 else 1.0
    tasks = [
        lm.ESTask(e, lm.ppo_fitness(la.PPO(agents[e]), env), params, normaliser=normalisers[e])
        for e, (env, params) in envs.items()
    ]
    es: dict[str, Any] = {}
    for kind in cfg.learned:
        trainer = oc.es_trainer(cfg.es.resolve(kind, "multi_task", "multi_task"), tasks)
        es[kind] = oc.es_stage(
            run_dir,
            f"es-{kind}",
            trainer,
            oc.make_learned(kind, larger=True),
            seed=cfg.seed,
            gen_used_paper=oc.TABLE7_GEN_USED.get((kind, "multi_task")),
        )
    for kind in cfg.learned:
        opt = oc.load_trained(run_dir, f"es-{kind}", oc.make_learned(kind, larger=True))
        for e in cfg.envs:
            evaluation[e][kind] = oc.evaluate_stage(
                run_dir,
                f"eval-{e}-{kind}",
                opt,
                e,
                seeds=seeds,
                agent=agents[e],
                label=kind,
                seed_group=cfg.evaluation.seed_group,
            )
    return {
        "es": es,
        "evaluation": evaluation,
        "es_normalisers": normalisers,
        "paper_normalisers": {e: oc.ADAM_NORMALISERS[e] for e in cfg.envs},
        "agent": agents[cfg.envs[0]],  # the MinAtar games share one (OPEN Table 3)
        "agents": agents,  # per environment (Ant has its own column)
    }


def _normalised_scores(
    evaluation: dict[str, dict[str, Any]], envs: list[str], reference: dict[str, float]
) -> dict[str, np.ndarray]:
    algs = [a for a in next(iter(evaluation.values())) if all(a in evaluation[e] for e in envs)]
    out = {}
    for a in algs:
        cols = [oc.finite_scores(evaluation[e][a]["final_returns"]) / reference[e] for e in envs]
        n = min(len(c) for c in cols)
        out[a] = np.stack([c[:n] for c in cols], axis=1)
    return out


def _multi_report(run_dir: RunDir) -> str:
    res = run_dir.load_results()
    evaluation = res["evaluation"]
    envs = list(evaluation)
    title = "MinAtar" if set(envs) <= set(oc.MINATAR) else ", ".join(envs)
    out = oc.header(run_dir, f"OPEN multi-task training ({title})", "OPEN Figure 3")
    out += ["## Meta-training (ES)", "", oc.es_table(res["es"])]
    out += [f"ES fitness normalisers (Adam's return per game): {res['es_normalisers']}", ""]
    out += ["## Adam-normalised final returns, pooled over games", ""]
    measured = {
        e: float(np.nanmean(oc.finite_scores(evaluation[e]["adam"]["final_returns"])))
        for e in envs
        if "adam" in evaluation[e]
    }
    usable = [e for e in envs if measured.get(e, 0.0) > 0]
    skipped = [e for e in envs if e not in usable]
    if usable:
        scores = _normalised_scores(evaluation, usable, measured)
        table, aggs = oc.interval_table(scores, metrics=("iqm", "mean", "optimality_gap"))
        out += [
            "Normalised by this run's tuned-Adam mean final return per game "
            f"({', '.join(usable)}):",
            "",
            table,
        ]
        img = oc.intervals_plot(aggs, run_dir.plots_dir / "multi-task-intervals.png")
        if img:
            out += [img, ""]
    if skipped:
        out += [
            f"Not pooled (Adam's mean final return <= 0 at this budget): {', '.join(skipped)}.",
            "",
        ]
    out += [
        "Paper (Figure 3): OPEN is the only learned optimizer whose aggregate "
        "Adam-normalised score exceeds Adam's (IQM and mean > 1); it prioritises asterix "
        "and breakout.",
        "",
        "## Per game",
        "",
    ]
    out += oc.per_env_block(run_dir, evaluation)
    return "\n".join(out)


MULTI_TASK = register(
    Experiment(
        name="open/multi-task",
        summary="larger OPEN by ES on the four MinAtar games at once, Adam-normalised fitness",
        reproduces="OPEN Figure 3",
        scales={"cpu": _multi_cpu, "paper": MultiTaskConfig},
        run=_multi_run,
        report=_multi_report,
        validate=_multi_validate,
    )
)


# =========================================================================== gridworld


def grid_eval_envs() -> tuple[str, ...]:
    """Figure 4's evaluation distributions: in distribution (`all`), then out of support."""
    return ("all", "rand_dense", "rand_sparse", "rand_long", *lg.MAZE_NAMES)


@dataclasses.dataclass(frozen=True)
class GridworldConfig:
    """`open/gridworld` (OPEN Figures 4 and 16): OPEN by ES on the gridworld level
    distribution `all` (antithetic task sampling: each antithetic pair on one sampled
    level), then OPEN and tuned Adam on fresh seeds in distribution (`all`) and out of
    support (rand_dense, rand_sparse, rand_long from LPG; standard_maze, sixteen_rooms,
    labyrinth), across agent widths (Figure 4) and training lengths (Figure 16).

    **Fields:**

    - `eval_envs`: evaluation distributions (Figure 4: all seven).
    - `widths`: agent hidden sizes (Appendix C.1: 8, 16, 32, 64, 128; 16 in training).
    - `length_factors`: training lengths as multiples of the meta-training length
      (Figure 16's lengths are not given in the text; 3e7 is in distribution).
    - `seed`, `es` (Table 7's gridworld column, ~350 generations), `agent` (Table 3's
      gridworld column), `evaluation` (Figure 4: 64 seeds; Adam tuned for the
      distribution, Appendix C.2).
    """

    eval_envs: tuple[str, ...] = dataclasses.field(default_factory=grid_eval_envs)
    widths: tuple[int, ...] = (8, 16, 32, 64, 128)  # OPEN Appendix C.1
    length_factors: tuple[float, ...] = (1 / 3, 2 / 3, 1.0, 4 / 3, 5 / 3)  # our choice
    seed: int = 0
    es: oc.ESSettings = dataclasses.field(default_factory=oc.ESSettings)
    agent: oc.AgentSettings = dataclasses.field(default_factory=oc.AgentSettings)
    evaluation: oc.EvalSettings = dataclasses.field(
        default_factory=lambda: oc.EvalSettings(n_seeds=64, baselines=("adam",))
    )


def _grid_cpu() -> GridworldConfig:
    return GridworldConfig(
        eval_envs=("all", "standard_maze"),
        widths=(16, 32),
        length_factors=(1.0,),
        es=_cpu_es(4, 4),
        # 8 envs x 20 steps x 16 updates = 2,560 steps per run (Table 3: 1024 x 20, 3e7).
        agent=oc.AgentSettings(
            n_envs=8, n_steps=20, total_timesteps=2_560, n_minibatches=2, n_epochs=2
        ),
        evaluation=oc.EvalSettings(n_seeds=8, baselines=("adam",)),
    )


def _grid_validate(cfg: GridworldConfig) -> None:
    _check_common(cfg.es, "gridworld", cfg.evaluation)
    cfg.es.resolve("open", "gridworld", "gridworld")
    for e in cfg.eval_envs:
        if e not in lg.DISTRIBUTIONS:
            raise ConfigError(
                f"eval_envs: unknown level distribution {e!r}; known: {', '.join(lg.DISTRIBUTIONS)}"
            )
    if not cfg.widths or any(w < 1 for w in cfg.widths):
        raise ConfigError(f"widths must be positive, got {cfg.widths}")
    if not cfg.length_factors or any(f <= 0 for f in cfg.length_factors):
        raise ConfigError(f"length_factors must be positive, got {cfg.length_factors}")
    base = cfg.agent.config(la.PPOConfig.gridworld())
    for f in cfg.length_factors:
        _scaled(base, f)
    oc.check_baselines(cfg.evaluation.baselines, ["gridworld"])


def _scaled(agent: la.PPOConfig, factor: float) -> la.PPOConfig:
    """`agent` trained `factor` times as long (whole updates, at least one)."""
    n = max(1, round(agent.n_updates * factor))
    return dataclasses.replace(agent, total_timesteps=n * agent.batch_size)


def _grid_run(cfg: GridworldConfig, run_dir: RunDir) -> dict[str, Any]:
    _grid_validate(cfg)
    agent = cfg.agent.config(la.PPOConfig.gridworld())
    env, _ = lg.make("all")
    task = lm.ESTask(
        "all",
        lm.ppo_fitness(la.PPO(agent), env),
        level_sampler=lambda key: lg.sample_level(key, "all"),
    )
    trainer = oc.es_trainer(cfg.es.resolve("open", "gridworld", "gridworld"), task)
    es = {
        "open": oc.es_stage(
            run_dir,
            "es-open",
            trainer,
            oc.make_learned("open"),
            seed=cfg.seed,
            gen_used_paper=oc.TABLE7_GEN_USED[("open", "gridworld")],
        )
    }
    opt = oc.load_trained(run_dir, "es-open", oc.make_learned("open"))
    seeds = cfg.evaluation.seeds()
    optimizers: dict[str, Any] = {"open": opt} | {b: b for b in cfg.evaluation.baselines}
    widths: dict[str, Any] = {}
    lengths: dict[str, Any] = {}

    def every_optimizer(e: str, axis: str, setting: Any, a: la.PPOConfig) -> dict[str, Any]:
        return {
            name: oc.evaluate_stage(
                run_dir,
                oc.stage_name("eval", e, axis, setting, name),
                o,
                e,
                seeds=seeds,
                agent=a,
                label=name,
                seed_group=cfg.evaluation.seed_group,
            )
            for name, o in optimizers.items()
        }

    for e in cfg.eval_envs:
        widths[e], lengths[e] = {}, {}
        for w in cfg.widths:
            widths[e][str(w)] = every_optimizer(e, "w", w, dataclasses.replace(agent, width=w))
        for f in cfg.length_factors:
            a = _scaled(agent, f)
            key = str(a.steps_per_run)
            if a.width in cfg.widths and a.steps_per_run == agent.steps_per_run:
                lengths[e][key] = widths[e][str(a.width)]
                continue
            lengths[e][key] = every_optimizer(e, "T", key, a)
    return {
        "es": es,
        "widths": widths,
        "lengths": lengths,
        "train_width": agent.width,
        "train_timesteps": agent.steps_per_run,
        "agent": agent,
    }


def _ratio_table(block: dict[str, dict[str, Any]], axis: str, marker: str) -> str:
    """Rows: environments x settings; OPEN's IQM normalised by Adam's mean (95% CI)."""
    from .. import stats

    lines = [
        f"| env | {axis} | OPEN IQM / Adam mean [95% CI] | OPEN IQM | Adam IQM |",
        "|---|--:|:-:|:-:|:-:|",
    ]
    for env, per_setting in block.items():
        for setting, per_opt in per_setting.items():
            if "open" not in per_opt or "adam" not in per_opt:
                continue
            o = oc.finite_scores(per_opt["open"]["final_returns"])
            a = oc.finite_scores(per_opt["adam"]["final_returns"])
            cells = []
            for name, x in (("open", o), ("adam", a)):
                if np.all(np.isfinite(x)) and len(x) >= 2:
                    iv = stats.aggregate({name: x}, metrics=("iqm",))[name]["iqm"]
                    cells.append(f"{iv.point:.3f} [{iv.low:.3f}, {iv.high:.3f}]")
                else:
                    cells.append("diverged")
            adam_mean = float(np.mean(a)) if np.all(np.isfinite(a)) else float("nan")
            if adam_mean > 0 and np.all(np.isfinite(o)) and len(o) >= 2:
                normalised = np.asarray(stats.normalise(o, adam_mean))
                iv = stats.aggregate({"o": normalised}, metrics=("iqm",))["o"]["iqm"]
                ratio = f"{iv.point:.3f} [{iv.low:.3f}, {iv.high:.3f}]"
            else:
                ratio = "n/a (Adam's mean <= 0)"
            mark = " (train)" if setting == marker else ""
            lines.append(f"| {env} | {setting}{mark} | {ratio} | {cells[0]} | {cells[1]} |")
    return "\n".join(lines) + "\n"


def _grid_report(run_dir: RunDir) -> str:
    res = run_dir.load_results()
    out = oc.header(run_dir, "OPEN gridworld generalisation", "OPEN Figures 4 and 16")
    out += ["## Meta-training (ES, antithetic task sampling on `all`)", ""]
    out += [oc.es_table(res["es"]), ""]
    out += [
        "## Agent widths (Figure 4)",
        "",
        "OPEN's IQM final return divided by tuned Adam's mean final return, 95% stratified "
        "bootstrap CI over seeds.",
        "",
        _ratio_table(res["widths"], "width", str(res["train_width"])),
        "Paper (Figure 4): OPEN outperforms Adam in every environment (in distribution "
        "and out of support) at every agent width; normalised return > 1 throughout.",
        "",
        "## Training lengths (Figure 16)",
        "",
        _ratio_table(res["lengths"], "timesteps", str(res["train_timesteps"])),
        "Paper (Figure 16): OPEN beats Adam in every grid at the in-distribution length "
        "(3e7); at OOS lengths it generalises better than Adam, except the shortest length "
        "in rand_dense and standard_maze.",
        "",
        "## Return curves at the training width",
        "",
    ]
    at_train = {e: per_w[str(res["train_width"])] for e, per_w in res["widths"].items()
                if str(res["train_width"]) in per_w}  # fmt: skip
    out += oc.per_env_block(run_dir, at_train)
    return "\n".join(out)


GRIDWORLD = register(
    Experiment(
        name="open/gridworld",
        summary="OPEN by ES on the gridworld distribution (antithetic task sampling); "
        "in-distribution and out-of-support evaluation over agent widths and lengths",
        reproduces="OPEN Figures 4 and 16",
        scales={"cpu": _grid_cpu, "paper": GridworldConfig},
        run=_grid_run,
        report=_grid_report,
        validate=_grid_validate,
    )
)


# =========================================================================== ablations

ABLATIONS = (
    "open",
    "no_features",
    "no_training_proportion",
    "no_batch_proportion",
    "no_layer_proportion",
    "no_dormancy",
    "no_stochasticity",
)


@dataclasses.dataclass(frozen=True)
class AblationConfig:
    """`open/feature-ablations` (OPEN Figure 5, Appendix I.1): meta-train OPEN, No
    Features and OPEN without each feature on a shortened Breakout, evaluate each.

    **Fields:**

    - `variants`: the ablations (Figure 5: all seven).
    - `n_optimizers`: optimizers trained per ablation (Appendix I.1: 17), seeds
      `seed, seed + 1, ...`.
    - `seed`, `es` (Appendix I.1: 250 generations, Table 7's MinAtar column), `agent`
      (Appendix I.1: Breakout with T = 2e5), `evaluation` (64 seeds per optimizer; no
      baselines in Figure 5).
    """

    variants: tuple[str, ...] = ABLATIONS
    n_optimizers: int = 17  # OPEN Appendix I.1
    seed: int = 0
    es: oc.ESSettings = dataclasses.field(
        default_factory=lambda: oc.ESSettings(n_generations=250)  # OPEN Appendix I.1
    )
    agent: oc.AgentSettings = dataclasses.field(
        default_factory=lambda: oc.AgentSettings(total_timesteps=200_000)  # Appendix I.1
    )
    evaluation: oc.EvalSettings = dataclasses.field(
        default_factory=lambda: oc.EvalSettings(n_seeds=64, baselines=())  # Appendix I.1
    )


def _abl_cpu() -> AblationConfig:
    return AblationConfig(
        variants=("open", "no_features", "no_dormancy"),
        n_optimizers=1,
        es=_cpu_es(3, 4),
        agent=_minatar_cpu_agent(),
        evaluation=oc.EvalSettings(n_seeds=8, baselines=()),
    )


def _abl_validate(cfg: AblationConfig) -> None:
    _check_learned(cfg.variants, ABLATIONS)
    if cfg.n_optimizers < 1:
        raise ConfigError(f"n_optimizers must be >= 1, got {cfg.n_optimizers}")
    _check_common(cfg.es, "minatar", cfg.evaluation)
    for v in cfg.variants:
        cfg.es.resolve(v, "breakout", "minatar")
    cfg.agent.config(la.PPOConfig.minatar())
    oc.check_baselines(cfg.evaluation.baselines, ["breakout"])


def _abl_run(cfg: AblationConfig, run_dir: RunDir) -> dict[str, Any]:
    _abl_validate(cfg)
    agent = cfg.agent.config(la.PPOConfig.minatar())
    env, params = _make_env("breakout")
    task = lm.ESTask("breakout", lm.ppo_fitness(la.PPO(agent), env), params)
    seeds = cfg.evaluation.seeds()
    es: dict[str, Any] = {}
    evaluation: dict[str, Any] = {}
    for v in cfg.variants:
        trainer = oc.es_trainer(cfg.es.resolve(v, "breakout", "minatar"), task)
        for i in range(cfg.n_optimizers):
            name = f"{v}-{i}"
            es[name] = oc.es_stage(
                run_dir, f"es-{name}", trainer, oc.make_learned(v), seed=cfg.seed + i
            )
            opt = oc.load_trained(run_dir, f"es-{name}", oc.make_learned(v))
            # Returns and dormancy from one compiled program (lorl.evaluation reports no
            # dormancy; the runs are the same PPO runs with the same seeding).
            evaluation[name] = run_dir.stage(
                f"eval-{name}",
                lambda opt=opt: oc.train_seeds(opt, env, params, agent, seeds),
            )
    for b in cfg.evaluation.baselines:
        evaluation[b] = oc.evaluate_stage(
            run_dir,
            f"eval-{b}",
            b,
            "breakout",
            seeds=seeds,
            agent=agent,
            label=b,
            seed_group=cfg.evaluation.seed_group,
        )
    return {
        "es": es,
        "evaluation": evaluation,
        "variants": list(cfg.variants),
        "n_optimizers": cfg.n_optimizers,
        "agent": agent,
    }


def _abl_report(run_dir: RunDir) -> str:
    res = run_dir.load_results()
    n_opt = res["n_optimizers"]
    out = oc.header(run_dir, "OPEN feature ablations (shortened Breakout)", "OPEN Figure 5")
    out += ["## Meta-training (ES)", "", oc.es_table(res["es"]), ""]
    scores: dict[str, np.ndarray] = {}
    for v in res["variants"]:
        per = [
            oc.finite_scores(res["evaluation"][f"{v}-{i}"]["final_returns"]) for i in range(n_opt)
        ]
        if n_opt >= 2:  # Figure 5: IQM over optimizers of each one's mean final return
            scores[v] = np.asarray([np.mean(p) for p in per])
        else:  # one optimizer per ablation: IQM over evaluation seeds
            scores[v] = per[0]
    unit = (
        "trained optimizers (mean final return each)"
        if n_opt >= 2
        else "evaluation seeds of the one trained optimizer"
    )
    table, aggs = oc.interval_table(scores)
    out += [f"## Final return (IQM over {unit}, 95% CIs)", "", table]
    img = oc.intervals_plot(aggs, run_dir.plots_dir / "ablation-intervals.png")
    if img:
        out += [img, ""]
    out += ["## Dormancy (tau = 0, last update, mean over layers and evaluation seeds)", ""]
    out += ["| variant | dormant fraction |", "|---|--:|"]
    for v in res["variants"]:
        d = [res["evaluation"][f"{v}-{i}"].get("dormancy", []) for i in range(n_opt)]
        flat = [float(x) for per in d for x in per]
        out.append(f"| {v} | {oc.fmt(np.mean(flat)) if flat else '–'} |")
    out += [
        "",
        "Paper (Figure 5): every ablation lowers the IQM final return below OPEN's; "
        "removing dormancy has a drastic effect (and the largest increase in dormancy); "
        "removing training or batch proportion, layer proportion or stochasticity each "
        "lowers return; No Features has the highest dormancy.",
        "",
    ]
    return "\n".join(out)


FEATURE_ABLATIONS = register(
    Experiment(
        name="open/feature-ablations",
        summary="OPEN, No Features and OPEN minus each feature, by ES on shortened Breakout",
        reproduces="OPEN Figure 5",
        scales={"cpu": _abl_cpu, "paper": AblationConfig},
        run=_abl_run,
        report=_abl_report,
        validate=_abl_validate,
    )
)


# =========================================================================== Deep Sea


@dataclasses.dataclass(frozen=True)
class DeepSeaConfig:
    """`open/deep-sea` (OPEN Figure 6, Appendix I.2, Figure 17): separated actor/critic
    OPEN with and without learned stochasticity, meta-trained by ES on Deep Sea (bsuite,
    via gymnax) of sizes 4..26 (every member on every size: Deep Sea's size is static
    in gymnax, so sizes are tasks), evaluated on those sizes and larger, out-of-support
    ones.

    **Fields:**

    - `learned`: optimizers (Figure 6: `separated` vs `separated_no_stochasticity`;
      Figure 17 adds the shared `open` and `no_stochasticity`).
    - `train_sizes`: Deep Sea sizes of meta-training (Section 7.2: 4..26).
    - `eval_sizes`: evaluation sizes (beyond 26: out of support; the figure's sizes
      are not given in the text).
    - `seed`; `es` (48 generations, Appendix I.2; Table 7's MinAtar column for the rest:
      the paper gives no Deep Sea column); `agent` (the paper gives no Deep Sea PPO
      settings: Table 3's MinAtar column); `evaluation` (Figure 6: 128 seeds).
    """

    learned: tuple[str, ...] = ("separated", "separated_no_stochasticity")
    train_sizes: tuple[int, ...] = tuple(range(4, 27))  # OPEN Section 7.2
    eval_sizes: tuple[int, ...] = (*range(4, 27, 2), 30, 34, 38, 42)  # our choice
    seed: int = 0
    es: oc.ESSettings = dataclasses.field(
        default_factory=lambda: oc.ESSettings(n_generations=48)  # OPEN Appendix I.2
    )
    agent: oc.AgentSettings = dataclasses.field(default_factory=oc.AgentSettings)
    evaluation: oc.EvalSettings = dataclasses.field(
        default_factory=lambda: oc.EvalSettings(n_seeds=128, baselines=())  # OPEN Figure 6
    )


def _deep_cpu() -> DeepSeaConfig:
    return DeepSeaConfig(
        train_sizes=(4, 6),
        eval_sizes=(4, 10),
        es=_cpu_es(3, 4),
        # 4 envs x 16 steps x 16 updates = 1,024 steps per run.
        agent=oc.AgentSettings(
            n_envs=4, n_steps=16, total_timesteps=1_024, n_minibatches=2, n_epochs=2
        ),
        evaluation=oc.EvalSettings(n_seeds=16, baselines=()),
    )


def _deep_validate(cfg: DeepSeaConfig) -> None:
    _check_learned(
        cfg.learned, ("separated", "separated_no_stochasticity", "open", "no_stochasticity")
    )
    for name, sizes in (("train_sizes", cfg.train_sizes), ("eval_sizes", cfg.eval_sizes)):
        if not sizes or any(s < 1 for s in sizes):
            raise ConfigError(f"{name} must be positive Deep Sea sizes, got {sizes}")
    _check_common(cfg.es, "minatar", cfg.evaluation)
    for kind in cfg.learned:
        cfg.es.resolve(kind, "deep_sea", "minatar")
    cfg.agent.config(la.PPOConfig.minatar())
    if cfg.evaluation.baselines:
        raise ConfigError("Deep Sea has no tuned baselines in the paper; set evaluation.baselines=")


def _deep_env(size: int) -> tuple[Any, Any]:
    return la.make_env("DeepSea-bsuite", size=size)


def _deep_run(cfg: DeepSeaConfig, run_dir: RunDir) -> dict[str, Any]:
    _deep_validate(cfg)
    agent = cfg.agent.config(la.PPOConfig.minatar())
    ppo = la.PPO(agent)
    tasks = []
    for s in cfg.train_sizes:
        env, params = _deep_env(s)
        tasks.append(lm.ESTask(f"size{s}", lm.ppo_fitness(ppo, env), params))
    es: dict[str, Any] = {}
    for kind in cfg.learned:
        trainer = oc.es_trainer(cfg.es.resolve(kind, "deep_sea", "minatar"), tasks)
        es[kind] = oc.es_stage(run_dir, f"es-{kind}", trainer, oc.make_learned(kind), seed=cfg.seed)
    seeds = cfg.evaluation.seeds()
    evaluation: dict[str, Any] = {}
    for s in cfg.eval_sizes:
        evaluation[str(s)] = {}
        for kind in cfg.learned:
            opt = oc.load_trained(run_dir, f"es-{kind}", oc.make_learned(kind))
            evaluation[str(s)][kind] = run_dir.stage(
                f"eval-size{s}-{kind}",
                lambda opt=opt, s=s: oc.train_seeds(opt, *_deep_env(s), agent, seeds),
            )
    return {
        "es": es,
        "evaluation": evaluation,
        "train_sizes": list(cfg.train_sizes),
        "agent": agent,
    }


def _deep_report(run_dir: RunDir) -> str:
    from .. import stats

    res = run_dir.load_results()
    learned = list(res["es"])
    train = set(res["train_sizes"])
    out = oc.header(run_dir, "OPEN in Deep Sea: learned stochasticity", "OPEN Figure 6 (and 17)")
    out += [
        "## Meta-training (ES, every member on every training size)",
        "",
        oc.es_table(res["es"]),
    ]
    out += ["## IQM final return per size (95% stratified bootstrap CIs)", ""]
    cols = " | ".join(learned)
    out += [
        f"| size | {cols} | stochastic - deterministic (IQM) |",
        "|---|" + ":-:|" * (len(learned) + 1),
    ]
    for s, per in res["evaluation"].items():
        cells, points = [], {}
        for k in learned:
            x = oc.finite_scores(per[k]["final_returns"])
            if np.all(np.isfinite(x)) and len(x) >= 2:
                iv = stats.aggregate({k: x}, metrics=("iqm",))[k]["iqm"]
                points[k] = iv.point
                cells.append(f"{iv.point:.3f} [{iv.low:.3f}, {iv.high:.3f}]")
            else:
                cells.append("diverged")
        diff = "–"
        for sto, det in (("separated", "separated_no_stochasticity"), ("open", "no_stochasticity")):
            if sto in points and det in points:
                diff = f"{points[sto] - points[det]:+.3f}"
                break
        oos = "" if int(s) in train else " (OOS)"
        out.append(f"| {s}{oos} | " + " | ".join(cells) + f" | {diff} |")
    out += [
        "",
        "Paper (Figure 6, Figure 17): the separated optimizer with learned stochasticity "
        "improves on the one without at every size, and the gap grows with size; only it "
        "generalises to large, out-of-support sizes (returns lie in [-0.01, 0.99]).",
        "",
        "## Return curves",
        "",
    ]
    for s, per in res["evaluation"].items():
        img = oc.curves_plot(per, run_dir.plots_dir / f"curves-size{s}.png", f"Deep Sea {s}")
        if img:
            out += [img, ""]
    return "\n".join(out)


DEEP_SEA = register(
    Experiment(
        name="open/deep-sea",
        summary="separated actor/critic OPEN with vs without learned stochasticity by ES in "
        "Deep Sea (sizes 4..26, larger out of support)",
        reproduces="OPEN Figure 6 (Appendix I.2, Figure 17)",
        scales={"cpu": _deep_cpu, "paper": DeepSeaConfig},
        run=_deep_run,
        report=_deep_report,
        validate=_deep_validate,
    )
)


# =========================================================================== published

#: Environment -> the published OPEN weights trained there (lorl_optim.load_open names).
PUBLISHED_FOR = {
    "asterix": "asterix",
    "breakout": "breakout",
    "freeway": "freeway",
    "space_invaders": "spaceinvaders",
    "ant": "ant",
    "all": "gridworld",
}


@dataclasses.dataclass(frozen=True)
class PublishedConfig:
    """`open/published`: the OPEN authors' published optimizers (`lorl_optim.load_open`)
    against tuned baselines on the environments they were trained for (the evaluation
    half of Figures 2-4; no meta-training).

    **Fields:**

    - `envs`: environments (`asterix`, `breakout`, `freeway`, `space_invaders`, `ant`,
      and `all`, the gridworld distribution); each gets its own published optimizer.
    - `multi`: also evaluate the published multi-task optimizer on the MinAtar games
      among `envs` (Figure 3).
    - `agent`: PPO settings that differ from Table 3 (`None`: the paper's budget, which
      is what the published optimizers were trained for).
    - `evaluation`: seeds (Figure 2: 16) and baselines (each only where the paper tuned
      it: Adam everywhere, RMSProp and Lion on MinAtar and Ant).
    """

    envs: tuple[str, ...] = ("asterix", "breakout", "freeway", "space_invaders", "ant", "all")
    multi: bool = True
    agent: oc.AgentSettings = dataclasses.field(default_factory=oc.AgentSettings)
    evaluation: oc.EvalSettings = dataclasses.field(default_factory=oc.EvalSettings)


def _pub_cpu() -> PublishedConfig:
    return PublishedConfig(
        envs=("breakout",),
        multi=True,
        # 16 envs x 32 steps x 50 updates = 25,600 steps (0.26% of Table 3's 1e7).
        agent=oc.AgentSettings(
            n_envs=16, n_steps=32, total_timesteps=25_600, n_minibatches=4, n_epochs=4
        ),
        evaluation=oc.EvalSettings(n_seeds=8, baselines=("adam",)),
    )


def _pub_validate(cfg: PublishedConfig) -> None:
    if not cfg.envs:
        raise ConfigError("envs: name at least one environment")
    for e in cfg.envs:
        if e not in PUBLISHED_FOR:
            raise ConfigError(
                f"envs: no published OPEN optimizer for {e!r}; available: "
                f"{', '.join(PUBLISHED_FOR)}"
            )
        if e == "ant":
            oc.require_brax()
        cfg.agent.config(_base_agent(e))
    if cfg.evaluation.n_seeds < 1:
        raise ConfigError(f"evaluation.n_seeds must be >= 1, got {cfg.evaluation.n_seeds}")
    oc.check_baselines(cfg.evaluation.baselines, [])


def _pub_baselines(baselines: tuple[str, ...], env: str) -> list[str]:
    import lorl_optim as lo

    tables = {"adam": lo.baselines.ADAM, "rmsprop": lo.baselines.RMSPROP, "lion": lo.baselines.LION}
    return [b for b in baselines if oc.preset_key(env) in tables[b]]


def _pub_run(cfg: PublishedConfig, run_dir: RunDir) -> dict[str, Any]:
    _pub_validate(cfg)
    seeds = cfg.evaluation.seeds()
    evaluation: dict[str, Any] = {}
    agents: dict[str, Any] = {}
    for e in cfg.envs:
        agent = cfg.agent.config(_base_agent(e))
        agents[e] = agent
        per: dict[str, Any] = {}
        name = f"open:{PUBLISHED_FOR[e]}"
        per[name] = oc.evaluate_stage(
            run_dir,
            oc.stage_name("eval", e, name),
            name,
            e,
            seeds=seeds,
            agent=agent,
            label=name,
            seed_group=cfg.evaluation.seed_group,
        )
        if cfg.multi and e in oc.MINATAR:
            per["open:multi"] = oc.evaluate_stage(
                run_dir, oc.stage_name("eval", e, "open:multi"), "open:multi", e, seeds=seeds,
                agent=agent, label="open:multi", seed_group=cfg.evaluation.seed_group,
            )  # fmt: skip
        for b in _pub_baselines(cfg.evaluation.baselines, e):
            per[b] = oc.evaluate_stage(
                run_dir,
                oc.stage_name("eval", e, b),
                b,
                e,
                seeds=seeds,
                agent=agent,
                label=b,
                seed_group=cfg.evaluation.seed_group,
            )
        evaluation[e] = per
    return {"evaluation": evaluation, "agents": agents}


PUBLISHED_PAPER = {**FIG2_PAPER, "all": "OPEN beats tuned Adam in distribution (Figure 4)."}


def _pub_report(run_dir: RunDir) -> str:
    res = run_dir.load_results()
    out = oc.header(
        run_dir, "Published OPEN optimizers vs tuned baselines", "OPEN Figures 2-4 (evaluation)"
    )
    budgets = {e: a["total_timesteps"] for e, a in res["agents"].items()}
    out += [
        f"Training budget per run (environment steps): {budgets}. The published optimizers "
        "were meta-trained at the paper's budgets (1e7 MinAtar, 5e7 Ant, 3e7 gridworld); "
        "shorter runs are out of their training distribution in length (OPEN conditions "
        "on the training proportion, so it adapts its schedule, but was never tuned for "
        "it).",
        "",
    ]
    out += oc.per_env_block(run_dir, res["evaluation"], paper=PUBLISHED_PAPER)
    return "\n".join(out)


PUBLISHED = register(
    Experiment(
        name="open/published",
        summary="the published OPEN weights (asterix, breakout, freeway, spaceinvaders, ant, "
        "gridworld, multi) vs tuned Adam/RMSProp/Lion on their environments",
        reproduces="OPEN Figures 2-4 (evaluation of the authors' optimizers)",
        scales={"cpu": _pub_cpu, "paper": PublishedConfig},
        run=_pub_run,
        report=_pub_report,
        validate=_pub_validate,
    )
)
