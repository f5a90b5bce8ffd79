"""`analysis/open-behaviour` (OPEN Appendix F): what a learned optimizer does over a
training run, beside Adam: dormancy per layer, the cosine between each update and the
negative gradient, the update's size relative to the parameters and the weight of the
learned noise, all recorded per PPO update inside the jitted run (bounded memory: a few
scalars per update)."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from ...runs import ConfigError, RunDir
from .._registry import Experiment, register
from ..open import _common as oc

METRICS = ("update_grad_cosine", "update_param_ratio")
#: The learned noise's weight relative to the actor's parameters (OPEN Appendix F.4).
NOISE = "noise_param_ratio"


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


def _train(
    optimizer: Any, env_name: str, agent: Any, seeds: list[int], max_points: int
) -> dict[str, Any]:
    import jax
    import jax.numpy as jnp

    import lorl_agents as la

    from ...evaluation._envs import env_spec, make

    env, params = make(env_spec(env_name))
    ppo = la.PPO(dataclasses.replace(agent, update_statistics=True))

    def one(seed: Any) -> dict[str, Any]:
        r = ppo.train(env, params, optimizer, key=jax.random.key(seed))
        out = {m: r.metrics[m] for m in METRICS}
        if NOISE in r.metrics:  # optimizers with learned noise (OPEN)
            out[NOISE] = r.metrics[NOISE]
        out["dormancy"] = r.metrics["dormancy"]  # (updates, layers)
        out["return"] = r.metrics["last_return"]
        out["final"] = r.final_return
        return out

    with jax.numpy_dtype_promotion("standard"):
        out = jax.jit(jax.vmap(one))(jnp.asarray(seeds, jnp.uint32))
    n = agent.n_updates
    keep = np.unique(np.r_[np.arange(0, n, max(1, n // max_points)), n - 1])
    record = {k: np.asarray(v)[:, keep].tolist() for k, v in out.items() if k != "final"}
    record["final_returns"] = np.asarray(out["final"]).tolist()
    record["steps"] = ((keep + 1) * agent.batch_size).tolist()
    return record


def _run(cfg: BehaviourConfig, run_dir: RunDir) -> dict[str, Any]:
    from ...evaluation import agent_config_for, resolve_optimizer

    _validate(cfg)
    agent = cfg.agent.config(oc.base_agent(cfg.env))
    spec, _ = agent_config_for(cfg.env, agent)
    seeds = list(range(cfg.seed, cfg.seed + cfg.n_seeds))
    runs: dict[str, Any] = {}
    for name in cfg.optimizers:
        opt, _ = resolve_optimizer(name, spec, agent)
        runs[name] = run_dir.stage(
            oc.stage_name("behaviour", cfg.env, name),
            lambda opt=opt: _train(opt, cfg.env, agent, seeds, cfg.max_points),
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
    panels = [("update_grad_cosine", None, "cosine(update, -gradient)"),
              ("update_param_ratio", None, "|update| / |parameters|")]  # fmt: skip
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
        "Not yet measured: the learned noise's weight against problem size in Deep Sea "
        "(Figure 14); the alignment with OPEN's momentum features.",
        "",
    ]
    return "\n".join(out)


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
