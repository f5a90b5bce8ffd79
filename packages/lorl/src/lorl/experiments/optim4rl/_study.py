"""The protocol the Optim4RL learning studies share (`tools/study_meta_optim4rl.py`, the
pipeline study, and `tools/study_meta_optim4rl_es.py`, the ES and hand-built controls):
the task, Adam tuned on the paper's grid, jitted evaluators over seeds and the printed
tables. Its results are in docs/meta/studies.md; the tools are thin command lines over
this module and `lorl.analysis` (probe, relative change).
"""

import json
import pathlib
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

import lorl_agents as la
import lorl_optim as lo

ENV = "small_dense_short"
ADAM_GRID = lo.baselines.OPTIM4RL_A2C_LR_GRID  # Optim4RL Appendix C.3
AGENT_LR = 1e-2  # Optim4RL Appendix C.3, small_dense_short
PARTS = ("gru1", "mlp1", "gru2", "mlp2")  # Optim4RL's four networks (Appendix A)
# The paper version (Algorithm 1) and the later revision of the reference code; both have
# the four parts gru1, mlp1, gru2, mlp2 (the revision's read-outs are single layers).
OPTIMIZERS = {"paper": lo.Optim4RL, "revised": lo.Optim4RLRevised}


def make_optimizer(
    version: str, agent_lr: float, backend: str = "xla", *, key: jax.Array
) -> lo.AbstractGradientOnlyOptimizer:
    """A freshly initialised Optim4RL of `version` (`"paper"` computed with `backend`;
    `"revised"`, the later reference revision, has XLA only)."""
    if version not in OPTIMIZERS:
        raise ValueError(f"version must be one of {sorted(OPTIMIZERS)}, got {version!r}")
    if version == "paper":
        return lo.Optim4RL(agent_lr, backend=backend, key=key)
    return lo.Optim4RLRevised(agent_lr, key=key)


def pipeline_name(name: str) -> bool:
    """Whether a result name belongs to the pipeline-trained run (not the ablation)."""
    return "no_pipeline" not in name


def make_evaluator(agent, env, params, static):
    """A jitted `(meta_params, seeds) -> (final returns, return curves)` for a learned
    optimizer with non-array part `static` (one compilation for every checkpoint)."""

    @jax.jit
    def run(meta_params, seeds):
        opt = eqx.combine(meta_params, static)
        keys = jax.vmap(jax.random.key)(seeds)
        result = jax.vmap(lambda k: agent.train(env, params, opt, key=k))(keys)
        return result.final_return, result.metrics["episode_return"]

    def evaluate(optimizer, seeds):
        final, curve = run(eqx.filter(optimizer, eqx.is_array), jnp.asarray(seeds, jnp.uint32))
        return np.asarray(final), np.asarray(curve)

    return evaluate


def a2c_returns(agent, env, params, optimizer, seeds):
    """Final returns and return curves of A2C with an optax optimizer on `seeds`."""
    keys = jax.vmap(jax.random.key)(jnp.asarray(seeds, jnp.uint32))
    result = jax.vmap(lambda k: agent.train(env, params, optimizer, key=k))(keys)
    la.check_finite(result)
    return np.asarray(result.final_return), np.asarray(result.metrics["episode_return"])


def cached_tuning(
    tuning_file: pathlib.Path, tuning_key: list[Any], grid: Any, score: Any
) -> dict[float, float]:
    """`{lr: score(lr)}` for every `lr` of `grid`, cached in `tuning_file` under
    `tuning_key` (a JSON-able description of the settings): a rerun with the same key reads
    the scores back and computes only the missing ones.

    **Arguments:**

    - `tuning_file`: the cache (JSON; its folder is created).
    - `tuning_key`: what the scores depend on (grid, seeds, budget, ...).
    - `grid`: learning rates.
    - `score`: `lr -> float`.

    **Returns:**

    The scores by learning rate.
    """
    tuning: dict[float, float] = {}
    if tuning_file.exists() and json.loads(tuning_file.read_text())["key"] == tuning_key:
        tuning = {float(k): v for k, v in json.loads(tuning_file.read_text())["tuning"].items()}
        print(f"adam tuning from {tuning_file}: {tuning}", flush=True)
    for lr in grid:
        if lr in tuning:
            continue
        tuning[lr] = float(score(lr))
        print(f"adam lr {lr:g}: {tuning[lr]:.3f}", flush=True)
    tuning_file.parent.mkdir(parents=True, exist_ok=True)
    tuning_file.write_text(json.dumps({"key": tuning_key, "tuning": tuning}))
    return tuning


def tune_adam(agent, env, params, tune_seeds: list[int], run_dir: pathlib.Path) -> dict:
    """Mean final return of A2C with Adam at every learning rate of `ADAM_GRID` on
    `tune_seeds`, cached in `run_dir / "adam_tuning.json"` keyed by the grid, the number
    of seeds, the budget and the number of environments."""
    cfg = agent.config
    return cached_tuning(
        run_dir / "adam_tuning.json",
        [list(ADAM_GRID), len(tune_seeds), cfg.steps_per_run, cfg.n_envs],
        ADAM_GRID,
        lambda lr: np.mean(a2c_returns(agent, env, params, optax.adam(lr), tune_seeds)[0]),
    )


def print_results(report: dict, names: list[str], n_seeds: int, adam_mean: float) -> None:
    """Print the evaluation table (mean final return +- s.e. and the ratio to Adam) of
    `names` in `report`, as Markdown."""
    print(f"\n| optimizer | mean final return (+- s.e.), {n_seeds} seeds | / Adam |")
    print("|---|---|---|")
    for name in names:
        r = report[name]
        print(f"| {name} | {r['mean']:.3f} +- {r['stderr']:.3f} | {r['mean'] / adam_mean:.2f} |")


def print_probes(report: dict) -> None:
    """Print the step-size probe (progress/size per signal-to-noise ratio) of every
    optimizer in `report["step_probe"]`."""
    for name, probe in report["step_probe"].items():
        cells = ", ".join(f"{k}: {v['progress']:.2f}/{v['size']:.2f}" for k, v in probe.items())
        print(f"probe {name} (progress/size): {cells}")


def plot_curves(ax, curves: dict, n_seeds: int) -> None:
    """Draw the evaluation's learning curves (`curves`: name -> mean average episode
    return per A2C update over `n_seeds` fresh seeds) on the matplotlib axes `ax`."""
    for name, curve in curves.items():
        ax.plot(curve, label=name)
    ax.set_xlabel("A2C update")
    ax.set_ylabel("average episode return")
    ax.set_title(f"{ENV}: A2C, mean over {n_seeds} fresh seeds")
    ax.legend(fontsize=7)
