"""`open/multi-task`: the larger OPEN meta-trained by ES on the four MinAtar games at once,
with Adam-normalised fitness (OPEN Figure 3).

Catalogue module: registers its experiment on import."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from ..._lazy import lazy_module
from ...runs import ConfigError, RunDir
from .._registry import Experiment, register
from . import _common as oc

if TYPE_CHECKING:
    import lorl_agents as la
    import lorl_meta as lm
else:  # loaded on first use: the catalogue of experiments imports no JAX stack
    la = lazy_module("lorl_agents")
    lm = lazy_module("lorl_meta")


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

    envs: tuple[oc.SingleEnv, ...] = oc.MINATAR
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
        es=oc.cpu_es(3, 4),
        agent=oc.minatar_cpu_agent(),
        evaluation=oc.EvalSettings(n_seeds=8, baselines=("adam",)),
    )


def _multi_validate(cfg: MultiTaskConfig) -> None:
    oc.check_learned(cfg.learned, ("open", "no_features"))
    if not cfg.envs or len(set(cfg.envs)) != len(cfg.envs):
        raise ConfigError(f"envs must be distinct MinAtar games (and ant), got {cfg.envs}")
    for env in cfg.envs:
        if env not in (*oc.MINATAR, "ant"):
            raise ConfigError(
                f"envs: {env!r} is not a MinAtar game ({', '.join(oc.MINATAR)}) or ant"
            )
    if "ant" in cfg.envs:
        oc.require_brax()
    oc.check_common(cfg.es, "multi_task", cfg.evaluation)
    for kind in cfg.learned:
        cfg.es.resolve(kind, "multi_task", "multi_task")
    for env in cfg.envs:
        cfg.agent.config(oc.base_agent(env))
    oc.check_baselines(cfg.evaluation.baselines, list(cfg.envs))
    if cfg.normalisers == "measured" and "adam" not in cfg.evaluation.baselines:
        raise ConfigError(
            'normalisers="measured" divides by tuned Adam\'s return: keep "adam" in '
            "evaluation.baselines"
        )


def _multi_run(cfg: MultiTaskConfig, run_dir: RunDir) -> dict[str, Any]:
    _multi_validate(cfg)
    # every environment its own PPO (OPEN Table 3's column, e.g. Ant's continuous actor)
    agents = {e: cfg.agent.config(oc.base_agent(e)) for e in cfg.envs}
    envs = {e: oc.make_env(e) for e in cfg.envs}
    seeds = cfg.evaluation.seeds()
    evaluation: dict[str, Any] = {e: {} for e in cfg.envs}
    # The baselines first: with `normalisers="measured"` Adam's mean final return on the
    # evaluation seeds (at this run's budget) is the ES fitness normaliser.
    for b in cfg.evaluation.baselines:
        for e in cfg.envs:
            evaluation[e][b] = oc.stored_form(
                oc.evaluate_stage(
                    run_dir,
                    f"eval-{e}-{b}",
                    b,
                    e,
                    seeds=seeds,
                    agent=agents[e],
                    label=b,
                    seed_group=cfg.evaluation.seed_group,
                )
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
            evaluation[e][kind] = oc.stored_form(
                oc.evaluate_stage(
                    run_dir,
                    f"eval-{e}-{kind}",
                    opt,
                    e,
                    seeds=seeds,
                    agent=agents[e],
                    label=kind,
                    seed_group=cfg.evaluation.seed_group,
                )
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
