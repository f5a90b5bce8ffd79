"""`open/gridworld`: OPEN by ES on the gridworld level distribution, evaluated in and out of
support, across agent widths and training lengths (OPEN Figures 4 and 16).

Catalogue module: registers its experiment on import."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import numpy as np

from ..._lazy import lazy_module
from ...runs import ConfigError, RunDir
from .._registry import Experiment, register
from . import _common as oc

if TYPE_CHECKING:
    import lorl_agents as la
    import lorl_gridworlds as lg
    import lorl_meta as lm
else:  # loaded on first use: the catalogue of experiments imports no JAX stack
    la = lazy_module("lorl_agents")
    lg = lazy_module("lorl_gridworlds")
    lm = lazy_module("lorl_meta")


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
        es=oc.cpu_es(4, 4),
        # 8 envs x 20 steps x 16 updates = 2,560 steps per run (Table 3: 1024 x 20, 3e7).
        agent=oc.AgentSettings(
            n_envs=8, n_steps=20, total_timesteps=2_560, n_minibatches=2, n_epochs=2
        ),
        evaluation=oc.EvalSettings(n_seeds=8, baselines=("adam",)),
    )


def _grid_validate(cfg: GridworldConfig) -> None:
    oc.check_common(cfg.es, "gridworld", cfg.evaluation)
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
            name: oc.stored_form(
                oc.evaluate_stage(
                    run_dir,
                    oc.stage_name("eval", e, axis, setting, name),
                    o,
                    e,
                    seeds=seeds,
                    agent=a,
                    label=name,
                    seed_group=cfg.evaluation.seed_group,
                )
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
    from ... import stats

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
