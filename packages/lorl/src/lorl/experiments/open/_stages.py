"""The OPEN experiments' stages: ES meta-training ([`lorl_meta.ESTrainer`][], checkpointed
in the run folder so a killed run resumes where it stopped) and evaluation on fresh
seeds through `lorl.evaluation`, in seed groups."""

from __future__ import annotations

import pathlib
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ..._lazy import lazy_module
from ...runs import RunDir

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


def evaluate_stage(
    run_dir: RunDir,
    stage: str,
    optimizer: Any,
    env: str,
    *,
    seeds: Sequence[int],
    agent: la.PPOConfig,
    label: str,
    seed_group: int = 0,
) -> dict[str, Any]:
    """Train fresh PPO agents with `optimizer` on `env` for every seed (through
    `lorl.evaluation.evaluate`; on a level distribution one level is drawn per seed), as
    a stage of `run_dir`.

    With `seed_group = k > 0` the seeds run `k` at a time, each group stored as a stage
    of its own (`<stage>-seeds-<first>-<last>`) before the whole is stored as `stage`: a
    killed run resumed repeats only the group it was in.

    Returns `{"final_returns": [n_seeds], "steps": [T], "returns": [n_seeds][T],
    "first_nonfinite_update": [n_seeds]}`; a run whose optimizer produced NaN/inf
    updates has final return NaN (reported, never averaged).
    """
    seeds = list(seeds)

    def one(group: list[int]) -> dict[str, Any]:
        from ...evaluation import evaluate

        result = evaluate(
            optimizer, env, seeds=group, agent=agent, label=label, on_nonfinite="record"
        )
        return eval_record(
            result.final_returns, result.steps, result.returns, result.first_nonfinite_update
        )

    def compute() -> dict[str, Any]:
        if seed_group < 1 or seed_group >= len(seeds):
            return one(seeds)
        parts = []
        for i in range(0, len(seeds), seed_group):
            group = seeds[i : i + seed_group]
            name = f"{stage}-seeds-{group[0]}-{group[-1]}"
            parts.append(run_dir.stage(name, lambda g=group: one(g)))
        return concat_records(parts)

    return run_dir.stage(stage, compute)


def _stored_array(x: Any, dtype: Any) -> np.ndarray:
    """An array from its stored (JSON) form, where NaN and infinities are strings."""
    a = np.asarray(x, dtype=object)
    for text, value in (("nan", np.nan), ("inf", np.inf), ("-inf", -np.inf)):
        a = np.where(a == text, value, a)
    return a.astype(dtype)


def concat_records(parts: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """One evaluation record from the records of seed groups (in order), as
    [`eval_record`][] stores them; every part must have the same update steps."""
    steps = [np.asarray(p["steps"], np.int64) for p in parts]
    if any(not np.array_equal(s, steps[0]) for s in steps[1:]):
        raise ValueError("seed groups of one evaluation ran different numbers of updates")

    def cat(key: str, dtype: Any) -> np.ndarray:
        return np.concatenate([_stored_array(p[key], dtype) for p in parts], axis=0)

    return {
        "final_returns": cat("final_returns", np.float64),
        "steps": steps[0],
        "returns": cat("returns", np.float64),
        "first_nonfinite_update": cat("first_nonfinite_update", np.int64),
    }


def eval_record(final: Any, steps: Any, returns: Any, first_nonfinite: Any) -> dict[str, Any]:
    """The stored form of an evaluation (diverged runs get final return NaN)."""
    first = np.asarray(first_nonfinite, np.int64)
    final = np.where(first >= 0, np.nan, np.asarray(final, np.float64))
    return {
        "final_returns": final,
        "steps": np.asarray(steps, np.int64),
        "returns": np.asarray(returns, np.float64),
        "first_nonfinite_update": first,
    }


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
