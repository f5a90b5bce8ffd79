"""`analysis/open-behaviour` (OPEN Appendix F): what a learned optimizer does over a
training run, beside Adam: dormancy per layer, the cosine between each update and the
negative gradient and the negative gradient momentum at OPEN's six timescales, the
update's size relative to the parameters and the weight of the learned noise, all
recorded per PPO update inside the jitted run (bounded memory: a few scalars per update;
the momenta are kept by `lorl_agents.MomentumProbe`)."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from ...runs import ConfigError, RunDir
from .._registry import Experiment, register
from ..open import _common as oc

MOMENTUM_PREFIX = "update_momentum_cosine_"  # lorl_agents.MomentumProbe's metrics
NOISE = "noise_param_ratio"  # lorl_agents.noise_statistics


@dataclasses.dataclass(frozen=True)
class BehaviourConfig:
    """The behaviour analysis.

    **Fields:**

    - `env`: a MinAtar game or `ant`.
    - `optimizers`: `lorl.evaluation` names (default: the game's published OPEN and
      OPEN's tuned Adam).
    - `agent`: PPO settings that differ from OPEN Table 3 (`None`: the paper budget).
    - `n_seeds`, `seed`: training runs (seeds as `open/published`).
    - `max_points`: curves are stored with at most this many points (every k-th update).
    """

    env: str = "breakout"
    optimizers: tuple[str, ...] = ("open:breakout", "adam")
    agent: oc.AgentSettings = dataclasses.field(default_factory=oc.AgentSettings)
    n_seeds: int = 8
    seed: int = 10_000
    max_points: int = 250

    def __post_init__(self):
        if self.n_seeds < 1 or self.max_points < 2:
            raise ValueError("n_seeds must be >= 1 and max_points >= 2")


def _cpu() -> BehaviourConfig:
    # cpu scale (ours): 16 envs x 32 steps x 40 updates (20,480 steps; OPEN 1e7), 2 seeds.
    return BehaviourConfig(
        agent=oc.AgentSettings(
            n_envs=16, n_steps=32, total_timesteps=16 * 32 * 40, n_minibatches=4, n_epochs=2
        ),
        n_seeds=2,
    )


def _validate(cfg: BehaviourConfig) -> None:
    from ...evaluation import agent_config_for, resolve_optimizer

    if cfg.env != "ant" and cfg.env not in oc.MINATAR:
        raise ConfigError(f"env must be ant or a MinAtar game, got {cfg.env!r}")
    if cfg.env == "ant":
        oc.require_brax()
    if not cfg.optimizers:
        raise ConfigError("optimizers: name at least one")
    agent = cfg.agent.config(oc.base_agent(cfg.env))
    spec, _ = agent_config_for(cfg.env, agent)
    for name in cfg.optimizers:
        resolve_optimizer(name, spec, agent)


def _run(cfg: BehaviourConfig, run_dir: RunDir) -> dict[str, Any]:
    from ...analysis import behaviour_curves
    from ...evaluation import agent_config_for, resolve_optimizer
    from ...evaluation._envs import env_spec, make

    _validate(cfg)
    agent = cfg.agent.config(oc.base_agent(cfg.env))
    spec, _ = agent_config_for(cfg.env, agent)
    seeds = list(range(cfg.seed, cfg.seed + cfg.n_seeds))
    runs: dict[str, Any] = {}
    for name in cfg.optimizers:
        opt, _ = resolve_optimizer(name, spec, agent)
        runs[name] = run_dir.stage(
            oc.stage_name("behaviour", cfg.env, name),
            lambda opt=opt: behaviour_curves(
                opt, *make(env_spec(cfg.env)), agent, seeds, cfg.max_points
            ),
        )
    return {"env": cfg.env, "runs": runs, "agent": dataclasses.asdict(agent)}


def _curves(runs: dict[str, Any], key: str, layer: int | None = None) -> dict[str, Any]:
    out = {}
    for name, r in runs.items():
        values = np.asarray(r[key], np.float64)
        if layer is not None:
            values = values[:, :, layer]
        out[name] = (np.asarray(r["steps"], np.float64), values)
    return out


def _report(run_dir: RunDir) -> str:
    from ... import plots

    res = run_dir.load_results()
    runs = res["runs"]
    out = oc.header(run_dir, "What the optimizers do over training", "OPEN Appendix F")
    out += [
        f"PPO on `{res['env']}`, {res['agent']['total_timesteps']:,} steps per run; means "
        "over seeds with standard-error bands. Cosine: between each optimizer update and the "
        "negative (clipped) gradient, averaged over the update's optimizer steps (1: "
        "gradient descent's direction). Ratio: `|update| / |parameters|`. Dormancy: the "
        "fraction of tau = 0 dormant neurons per layer (actor layers, then critic layers). "
        "Noise: the weight `delta` of the learned noise relative to the actor's parameters, "
        "`|delta_actor| / |params_actor|` (optimizers with learned noise only).",
        "",
        "| optimizer | final return (mean) | cosine: first → last | ratio: first → last "
        "| noise: first → last |",
        "|---|---:|---|---|---|",
    ]
    for name, r in runs.items():
        cos = np.mean(np.asarray(r["update_grad_cosine"]), axis=0)
        ratio = np.mean(np.asarray(r["update_param_ratio"]), axis=0)
        final = np.nanmean(np.asarray(r["final_returns"], np.float64))
        noise = "–"
        if NOISE in r:
            n = np.mean(np.asarray(r[NOISE]), axis=0)
            noise = f"{n[0]:.2e} → {n[-1]:.2e}"
        out.append(
            f"| {name} | {final:.2f} | {cos[0]:.3f} → {cos[-1]:.3f} | "
            f"{ratio[0]:.2e} → {ratio[-1]:.2e} | {noise} |"
        )
    out.append("")
    betas = sorted(
        {k.removeprefix(MOMENTUM_PREFIX) for r in runs.values() for k in r
         if k.startswith(MOMENTUM_PREFIX)},
        key=float,
    )  # fmt: skip
    if betas:
        out += [
            "Cosine between the update and the negative momentum "
            "`m <- beta m + (1 - beta) g` at OPEN's input timescales (Figure 11), mean over "
            "the run and seeds (first → last):",
            "",
            "| optimizer | gradient | " + " | ".join(f"beta = {b}" for b in betas) + " |",
            "|---|" + "---|" * (len(betas) + 1),
        ]
        for name, r in runs.items():
            cells = [_mean_first_last(r["update_grad_cosine"])]
            cells += [_mean_first_last(r.get(MOMENTUM_PREFIX + b)) for b in betas]
            out.append(f"| {name} | " + " | ".join(cells) + " |")
        out.append("")
    panels = [("update_grad_cosine", None, "cosine(update, -gradient)"),
              ("update_param_ratio", None, "|update| / |parameters|")]  # fmt: skip
    panels += [(MOMENTUM_PREFIX + b, None, f"cosine(update, -momentum), beta = {b}") for b in betas]
    if any(NOISE in r for r in runs.values()):
        panels.append((NOISE, None, "|noise weight| / |actor parameters|"))
    n_layers = np.asarray(next(iter(runs.values()))["dormancy"]).shape[-1]
    panels += [("dormancy", i, f"dormant fraction, layer {i}") for i in range(n_layers)]
    for key, layer, label in panels:
        path = run_dir.plots_dir / f"{key}{'' if layer is None else f'-{layer}'}.png"
        try:
            have = {n: r for n, r in runs.items() if key in r}
            plots.return_curves(_curves(have, key, layer), path, title=label, ylabel=label)
            out += [f"![{label}](plots/{path.name})", ""]
        except Exception as e:  # a plot must not cost the report
            out += [f"({label}: plot failed: {type(e).__name__}: {e})", ""]
    out += [
        "Not measured here: the learned noise's weight against problem size in Deep Sea "
        "(Figure 14; see `open/deep-sea`).",
        "",
    ]
    return "\n".join(out)


def _mean_first_last(values: Any) -> str:
    """`mean (first → last)` of per-update values `(seeds, points)` (`–` if absent)."""
    if values is None:
        return "–"
    curve = np.mean(np.asarray(values, np.float64), axis=0)
    return f"{np.mean(curve):.3f} ({curve[0]:.3f} → {curve[-1]:.3f})"


BEHAVIOUR = register(
    Experiment(
        name="analysis/open-behaviour",
        summary="dormancy per layer, update-gradient cosine and update size over a PPO run, "
        "published OPEN vs tuned Adam",
        reproduces="OPEN Appendix F (behaviour analyses of the learned optimizer)",
        scales={"cpu": _cpu, "paper": BehaviourConfig},
        run=_run,
        report=_report,
        validate=_validate,
    )
)
