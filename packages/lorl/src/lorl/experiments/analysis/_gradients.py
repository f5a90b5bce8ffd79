"""Shared pieces of the Optim4RL gradient analyses: the A2C run whose agent-gradients are
collected (Optim4RL Figure 1's setting), sample storage in the run folder, summaries and
formatting."""

import dataclasses
from typing import Any

import numpy as np

from ..._format import fmt as shared_fmt
from ...runs import RunDir


@dataclasses.dataclass(frozen=True)
class A2CCollect:
    """The A2C run whose agent-gradients are collected (Optim4RL Appendix C.2).

    - `env`: LPG gridworld (`big_dense_long` in the paper).
    - `n_envs`: 512 in the paper (Appendix C.3); fewer at cpu scale (noisier gradients).
    - `total_timesteps`: 3e7 in the paper (Appendix C.2).
    - `learning_rate`: RMSProp's, 3e-3 (Appendix C.2).
    - `n_stages`: 30 parts by time (Appendix C.2).
    - `per_stage`: gradient elements kept per part (ours; the memory bound).
    """

    env: str = "big_dense_long"  # Optim4RL Section 4.1
    n_envs: int = 512  # Optim4RL Appendix C.3
    total_timesteps: int = 30_000_000  # Optim4RL Appendix C.2
    learning_rate: float = 3e-3  # Optim4RL Appendix C.2 (RMSProp)
    n_stages: int = 30  # Optim4RL Appendix C.2
    per_stage: int = 10_000  # ours (bounded memory)


def a2c_agent(c: A2CCollect) -> tuple[Any, Any, Any]:
    import lorl_gridworlds
    from lorl_agents import A2C, A2CConfig

    env, params = lorl_gridworlds.make(c.env)
    big = c.env.startswith("big")
    make = A2CConfig.big_gridworld if big else A2CConfig.small_gridworld
    return A2C(make(n_envs=c.n_envs, total_timesteps=c.total_timesteps)), env, params


def validate_a2c(c: A2CCollect) -> int:
    """Raise ConfigError for an A2C collection that cannot run; return its update count."""
    from lorl_agents import A2CConfig

    from ...runs import ConfigError

    try:
        n_updates = A2CConfig(n_envs=c.n_envs, total_timesteps=c.total_timesteps).n_updates
    except ValueError as e:
        raise ConfigError(f"a2c: {e}") from None
    if not 1 <= c.n_stages <= n_updates or c.per_stage < 1:
        raise ConfigError(
            f"a2c.n_stages must lie in [1, {n_updates}] (the run's updates) and a2c.per_stage "
            f"must be >= 1; got {c.n_stages} and {c.per_stage}"
        )
    return n_updates


def save_sample(run_dir: RunDir, name: str, sample: Any, metrics: dict[str, Any]) -> None:
    folder = run_dir.path / "gradients"
    folder.mkdir(exist_ok=True)
    arrays = {f"stage_{i}": s for i, s in enumerate(sample.stages)}
    np.savez_compressed(
        folder / f"{name}.npz",
        seen=sample.seen,
        traces=sample.traces,
        trace_index=sample.trace_index,
        **arrays,
    )
    run_dir.save_result(name, {k: np.asarray(v) for k, v in metrics.items()})


def load_sample(run_dir: RunDir, name: str) -> Any:
    from ...analysis import GradientSample

    with np.load(run_dir.path / "gradients" / f"{name}.npz") as z:
        n = len(z["seen"])
        return GradientSample(
            [z[f"stage_{i}"] for i in range(n)], z["seen"], z["traces"], z["trace_index"]
        )


def collect_a2c(run_dir: RunDir, name: str, c: A2CCollect, n_traced: int, seed: int) -> Any:
    """Collect (or, on resume, load) the A2C agent-gradients of one run."""
    import jax
    import optax

    from ...analysis import collect_rl_gradients

    if not (run_dir.has_result(name) and (run_dir.path / "gradients" / f"{name}.npz").is_file()):
        agent, env, params = a2c_agent(c)
        sample, metrics = collect_rl_gradients(
            agent,
            env,
            params,
            optax.rmsprop(c.learning_rate),
            n_stages=c.n_stages,
            per_stage=c.per_stage,
            n_traced=n_traced,
            key=jax.random.key(seed),
        )
        save_sample(run_dir, name, sample, metrics)
    return load_sample(run_dir, name)


def collect_digits(
    run_dir: RunDir,
    *,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    n_stages: int,
    per_stage: int,
    n_traced: int,
    seed: int,
) -> Any:
    """Collect (or, on resume, load) the digits CNN's gradients (the supervised reference,
    `lorl.analysis.collect_supervised_gradients`) as the run's `digits` sample."""
    import jax

    from ...analysis import collect_supervised_gradients

    if not (run_dir.has_result("digits") and (run_dir.path / "gradients" / "digits.npz").is_file()):
        sample, metrics = collect_supervised_gradients(
            epochs=epochs,
            batch_size=batch_size,
            learning_rate=learning_rate,
            n_stages=n_stages,
            per_stage=per_stage,
            n_traced=n_traced,
            key=jax.random.key(seed),
        )
        save_sample(run_dir, "digits", sample, metrics)
    return load_sample(run_dir, "digits")


def stage_summary(sample: Any) -> dict[str, Any]:
    from ...analysis import log10_magnitude

    out = []
    for i, v in enumerate(sample.stages):
        nz = v[v != 0]
        q = np.percentile(log10_magnitude(nz), [5, 25, 50, 75, 95]).tolist() if nz.size else None
        out.append({"stage": i, "zero_fraction": float(np.mean(v == 0)), "log10_nonzero_q": q})
    return {"per_stage": out}


def fmt(x: Any, digits: int = 3) -> str:
    """The analyses' cells: `digits` significant digits (their scales vary)."""
    return shared_fmt(x, digits, significant=True)


def rel(run_dir: RunDir, path: Any) -> str:
    return str(path.relative_to(run_dir.path))


# -- analysis/gradient-distributions ------------------------------------------------


def json_dumps(d: Any) -> str:
    import json

    return json.dumps(d, separators=(",", ":"))
