"""`open/single-task`: OPEN (and Optim4RL, No Features) meta-trained by ES on one MinAtar
game or Ant, against tuned baselines (OPEN Figure 2).

Catalogue module: registers its experiment on import."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from ..._lazy import lazy_module
from ...runs import RunDir
from .._registry import Experiment, register
from . import _common as oc

if TYPE_CHECKING:
    import lorl_agents as la
    import lorl_meta as lm
else:  # loaded on first use: the catalogue of experiments imports no JAX stack
    la = lazy_module("lorl_agents")
    lm = lazy_module("lorl_meta")


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

    env: oc.SingleEnv = "breakout"
    learned: tuple[str, ...] = ("open", "optim4rl", "no_features")  # OPEN Figure 2
    seed: int = 0
    es: oc.ESSettings = dataclasses.field(default_factory=oc.ESSettings)
    agent: oc.AgentSettings = dataclasses.field(default_factory=oc.AgentSettings)
    evaluation: oc.EvalSettings = dataclasses.field(default_factory=oc.EvalSettings)


def _single_cpu() -> SingleTaskConfig:
    return SingleTaskConfig(
        learned=("open",),
        es=oc.cpu_es(5, 4),
        agent=oc.minatar_cpu_agent(),
        evaluation=oc.EvalSettings(n_seeds=8, baselines=("adam",)),
    )


def _single_column(env: str) -> str:
    return "ant" if env == "ant" else "minatar"


def _single_validate(cfg: SingleTaskConfig) -> None:
    oc.check_learned(cfg.learned, ("open", "optim4rl", "no_features"))
    if cfg.env == "ant":
        oc.require_brax()
    oc.check_common(cfg.es, _single_column(cfg.env), cfg.evaluation)
    for kind in cfg.learned:
        cfg.es.resolve(kind, cfg.env, _single_column(cfg.env))
    cfg.agent.config(oc.base_agent(cfg.env))
    oc.check_baselines(cfg.evaluation.baselines, [cfg.env])


def _single_run(cfg: SingleTaskConfig, run_dir: RunDir) -> dict[str, Any]:
    _single_validate(cfg)
    agent = cfg.agent.config(oc.base_agent(cfg.env))
    env, params = oc.make_env(cfg.env)
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
        per_opt[kind] = oc.stored_form(
            oc.evaluate_stage(
                run_dir,
                f"eval-{cfg.env}-{kind}",
                opt,
                cfg.env,
                seeds=seeds,
                agent=agent,
                label=kind,
                seed_group=cfg.evaluation.seed_group,
            )
        )
    for b in cfg.evaluation.baselines:
        per_opt[b] = oc.stored_form(
            oc.evaluate_stage(
                run_dir,
                f"eval-{cfg.env}-{b}",
                b,
                cfg.env,
                seeds=seeds,
                agent=agent,
                label=b,
                seed_group=cfg.evaluation.seed_group,
            )
        )
    return {"es": es, "evaluation": {cfg.env: per_opt}, "agent": agent}


def _single_report(run_dir: RunDir) -> str:
    res = run_dir.load_results()
    out = oc.header(run_dir, "OPEN single-task training", "OPEN Figure 2")
    out += ["## Meta-training (ES)", "", oc.es_table(res["es"]), ""]
    out += ["## Evaluation on fresh seeds", ""]
    out += oc.per_env_block(run_dir, res["evaluation"], paper=oc.FIG2_PAPER)
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
