"""The OPEN experiments' stages: ES meta-training ([`lorl_meta.ESTrainer`][], checkpointed
in the run folder so a killed run resumes where it stopped) and evaluation on fresh
seeds through `lorl.evaluation`, in seed groups."""

from __future__ import annotations

import pathlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ..._lazy import lazy_module
from ...runs import RunDir
from .._stages import eval_record

if TYPE_CHECKING:
    import jax

    import lorl_agents as la
    import lorl_meta as lm
    import lorl_optim as lo
else:  # loaded on first use: the catalogue of experiments imports no JAX stack
    la = lazy_module("lorl_agents")
    lm = lazy_module("lorl_meta")
    lo = lazy_module("lorl_optim")


# --------------------------------------------------------------------------- ES stage


def es_trainer(config: lm.ESConfig, tasks: Any) -> lm.ESTrainer:
    """An [`lorl_meta.ESTrainer`][] whose population is sharded over all devices
    (`lorl.sharding.local_mesh`) when there is more than one; on one device, no mesh (the
    unsharded program)."""
    import jax

    if jax.device_count() > 1:
        from ...sharding import local_mesh

        return lm.ESTrainer(config, tasks, mesh=local_mesh())
    return lm.ESTrainer(config, tasks)


def es_stage(
    run_dir: RunDir,
    stage: str,
    trainer: lm.ESTrainer,
    optimizer: Any,
    *,
    seed: int,
    gen_used_paper: int | None = None,
) -> dict[str, Any]:
    """Meta-train `optimizer` with `trainer` as stage `stage` of `run_dir`.

    Checkpoints go to `run_dir.checkpoint_dir(stage)` (a killed run resumes from the last
    one), metrics to `run_dir.metrics_dir(stage)`, the selected meta-parameters to
    `optimizers/<stage>.eqx`. Returns the stage's stored summary.
    """

    def compute() -> dict[str, Any]:
        result = trainer.train(
            optimizer,
            seed=seed,
            checkpoint_dir=run_dir.checkpoint_dir(stage),
            log_dir=run_dir.metrics_dir(stage),
            progress=True,
        )
        path = optimizer_path(run_dir, stage)
        lo.save_meta_parameters(path, result.optimizer)
        return {
            "meta_parameters": str(path.relative_to(run_dir.path)),
            "n_generations": trainer.config.n_generations,
            "best_generation": result.best_generation,
            "best_validation_score": result.best_score,
            "paper_gen_used": gen_used_paper,
            "history": result.history,
        }

    return run_dir.stage(stage, compute)


def optimizer_path(run_dir: RunDir, stage: str) -> pathlib.Path:
    folder = run_dir.path / "optimizers"
    folder.mkdir(exist_ok=True)
    return folder / f"{stage}.eqx"


def load_trained(run_dir: RunDir, stage: str, like: Any) -> Any:
    """The meta-parameters stage `stage` selected, loaded into `like`'s structure."""
    return lo.load_meta_parameters(optimizer_path(run_dir, stage), like)


# --------------------------------------------------------------------------- evaluation


def train_seeds(
    optimizer: Any, env: Any, env_params: Any, agent: la.PPOConfig, seeds: Sequence[int]
) -> dict[str, Any]:
    """PPO with `optimizer` on `env`, one run per seed in one compiled program, for the
    evaluations `lorl.evaluation.evaluate` does not cover (Deep Sea of a chosen size) or
    that need more than returns (the dormancy of Figure 5). Run `i` uses
    `jax.random.key(seeds[i])`, as `evaluate` does.

    Returns the stored form of `eval_record` plus `"dormancy"`: the mean over layers
    of the tau = 0 dormant fraction at the last update, per seed.
    """
    import jax
    import jax.numpy as jnp

    ppo = la.PPO(agent)

    def one(seed: jax.Array) -> dict[str, jax.Array]:
        r = ppo.train(env, env_params, optimizer, key=jax.random.key(seed))
        return {
            "final": r.final_return,
            "curve": r.metrics["last_return"],
            "bad": r.first_nonfinite_update,
            "dormancy": jnp.mean(r.metrics["dormancy"][-1]),
        }

    with jax.numpy_dtype_promotion("standard"):
        out = jax.jit(jax.vmap(one))(jnp.asarray(list(seeds), jnp.uint32))
    steps = np.arange(1, agent.n_updates + 1) * agent.batch_size
    record = eval_record(out["final"], steps, out["curve"], out["bad"])
    record["dormancy"] = np.asarray(out["dormancy"], np.float64)
    return record
