"""`open/published`: the OPEN authors' published optimizers against tuned baselines on the
environments they were trained for (OPEN Figures 2-4, evaluation only).

Catalogue module: registers its experiment on import."""

from __future__ import annotations

import dataclasses
from typing import Any

from ..._paper import OPEN_FIGURE4_IN_DISTRIBUTION
from ...runs import ConfigError, RunDir
from .._registry import Experiment, register
from . import _common as oc

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
        cfg.agent.config(oc.base_agent(e))
    if cfg.evaluation.n_seeds < 1:
        raise ConfigError(f"evaluation.n_seeds must be >= 1, got {cfg.evaluation.n_seeds}")
    oc.check_baselines(cfg.evaluation.baselines, [])


def _pub_baselines(baselines: tuple[str, ...], env: str) -> list[str]:
    tables = oc.baseline_tables()
    return [b for b in baselines if oc.preset_key(env) in tables[b]]


def _pub_run(cfg: PublishedConfig, run_dir: RunDir) -> dict[str, Any]:
    _pub_validate(cfg)
    seeds = cfg.evaluation.seeds()
    evaluation: dict[str, Any] = {}
    agents: dict[str, Any] = {}
    for e in cfg.envs:
        agent = cfg.agent.config(oc.base_agent(e))
        agents[e] = agent
        per: dict[str, Any] = {}
        name = f"open:{PUBLISHED_FOR[e]}"
        per[name] = oc.stored_form(
            oc.evaluate_stage(
                run_dir,
                oc.stage_name("eval", e, name),
                name,
                e,
                seeds=seeds,
                agent=agent,
                label=name,
                seed_group=cfg.evaluation.seed_group,
            )
        )
        if cfg.multi and e in oc.MINATAR:
            multi = oc.evaluate_stage(
                run_dir, oc.stage_name("eval", e, "open:multi"), "open:multi", e, seeds=seeds,
                agent=agent, label="open:multi", seed_group=cfg.evaluation.seed_group,
            )  # fmt: skip
            per["open:multi"] = oc.stored_form(multi)
        for b in _pub_baselines(cfg.evaluation.baselines, e):
            per[b] = oc.stored_form(
                oc.evaluate_stage(
                    run_dir,
                    oc.stage_name("eval", e, b),
                    b,
                    e,
                    seeds=seeds,
                    agent=agent,
                    label=b,
                    seed_group=cfg.evaluation.seed_group,
                )
            )
        evaluation[e] = per
    return {"evaluation": evaluation, "agents": agents}


PUBLISHED_PAPER = {**oc.FIG2_PAPER, "all": OPEN_FIGURE4_IN_DISTRIBUTION}


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
