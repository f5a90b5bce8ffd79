"""Throughput: environment steps per second, vmapped over environments, scanned over time."""

import dataclasses
import statistics
import time
from typing import Any

import jax
import jax.numpy as jnp
from jaxtyping import PRNGKeyArray


@dataclasses.dataclass(frozen=True)
class Throughput:
    """One throughput measurement.

    **Fields:** `name`; `num_envs` and `num_steps` per run; `compile_s` (first call,
    including compilation); `seconds` (median of the timed runs); `steps_per_second`
    (`num_envs * num_steps / seconds`); `repeats`.
    """

    name: str
    num_envs: int
    num_steps: int
    compile_s: float
    seconds: float
    steps_per_second: float
    repeats: int


def measure_throughput(
    name: str,
    env: Any,
    params: Any,
    *,
    num_envs: int = 1024,
    num_steps: int = 1000,
    repeats: int = 3,
    batched_params: bool = False,
    key: PRNGKeyArray,
) -> Throughput:
    """Steps per second of `env` under `jit(vmap(scan(step)))` with random actions.

    Works for any gymnax-interface environment (ours, gymnax's). Actions are uniform
    over `env.action_space(params)`; every environment auto-resets.

    **Arguments:**

    - `name`: label of the row.
    - `env`, `params`: the environment and its parameters.
    - `num_envs`: parallel environments (vmap).
    - `num_steps`: steps per environment (lax.scan).
    - `repeats`: timed runs after the compiling one (the median is reported).
    - `batched_params`: True if `params` has a leading `num_envs` axis (one level per
      environment, e.g. from `jax.vmap(sample_level)`).
    - `key`: a PRNG key.

    **Returns:** a [`lorl_gridworlds.Throughput`][].
    """
    if num_envs < 1 or num_steps < 1 or repeats < 1:
        raise ValueError("num_envs, num_steps and repeats must be >= 1")
    n_actions = env.action_space(
        jax.tree_util.tree_map(lambda x: x[0], params) if batched_params else params
    ).n
    params_axis = 0 if batched_params else None

    def one_env(key: PRNGKeyArray, p: Any) -> jax.Array:
        key, reset_key = jax.random.split(key)
        obs, state = env.reset(reset_key, p)

        # The observation is carried (an agent needs it to act), so it is computed at
        # every step as in a real training loop rather than removed as dead code.
        def body(carry, k):
            obs, state, total = carry
            k_act, k_step = jax.random.split(k)
            action = jax.random.randint(k_act, (), 0, n_actions)
            obs, state, reward, _, _, _ = env.step(k_step, state, action, p)
            return (obs, state, total + reward), None

        (obs, _, total), _ = jax.lax.scan(
            body, (obs, state, jnp.zeros((), jnp.float32)), jax.random.split(key, num_steps)
        )
        return total + jnp.sum(obs)

    run = jax.jit(jax.vmap(one_env, in_axes=(0, params_axis)))
    keys = jax.random.split(key, repeats + 1)
    t0 = time.perf_counter()
    jax.block_until_ready(run(jax.random.split(keys[0], num_envs), params))
    compile_s = time.perf_counter() - t0
    times = []
    for k in keys[1:]:
        env_keys = jax.random.split(k, num_envs)
        t0 = time.perf_counter()
        jax.block_until_ready(run(env_keys, params))
        times.append(time.perf_counter() - t0)
    seconds = statistics.median(times)
    return Throughput(
        name=name,
        num_envs=num_envs,
        num_steps=num_steps,
        compile_s=compile_s,
        seconds=seconds,
        steps_per_second=num_envs * num_steps / seconds,
        repeats=repeats,
    )


def format_table(rows: list[Throughput], reference: str | None = None) -> str:
    """A plain-text table of measurements, with ratios to the `reference` row."""
    ref = next((r for r in rows if r.name == reference), None)
    header = f"{'environment':<22}{'steps/s':>14}{'vs ' + (reference or '-'):>26}{'compile s':>11}"
    lines = [header, "-" * len(header)]
    for r in rows:
        ratio = f"{r.steps_per_second / ref.steps_per_second:.2f}x" if ref else "-"
        lines.append(f"{r.name:<22}{r.steps_per_second:>14,.0f}{ratio:>26}{r.compile_s:>11.1f}")
    return "\n".join(lines)


REFERENCE = "Breakout-MinAtar"


def benchmark_suite(
    names: tuple[str, ...] | None = None,
    *,
    num_envs: int = 1024,
    num_steps: int = 1000,
    repeats: int = 3,
    reference: bool = True,
    progress: Any = None,
    key: PRNGKeyArray,
) -> list[Throughput]:
    """Throughput of every LPG gridworld and of `all`, with gymnax's Breakout-MinAtar.

    The level distribution `all` runs with one level per environment (a batch of levels
    of different grid sizes, as in OPEN's meta-training). The reference is measured in
    the same process with the same harness, so the ratios are comparable even on a noisy
    machine.

    **Arguments:**

    - `names`: gridworlds to measure (default: the six LPG gridworlds and `all`).
    - `num_envs`, `num_steps`, `repeats`: see [`lorl_gridworlds.measure_throughput`][].
    - `reference`: also measure `Breakout-MinAtar` (needs gymnax; skipped with a note if
      it is not installed).
    - `progress`: optional callable receiving each row as it is measured.
    - `key`: a PRNG key.

    **Returns:** the rows, reference first.
    """
    from ._distributions import sample_level
    from ._registry import LPG_NAMES, make

    names = (*LPG_NAMES, "all") if names is None else names
    rows: list[Throughput] = []
    keys = jax.random.split(key, len(names) + 2)
    if reference:
        try:
            import gymnax
        except ImportError:
            gymnax = None
        if gymnax is not None:
            env, params = gymnax.make(REFERENCE)
            # gymnax relies on implicit dtype promotion: measure it in the standard mode
            # even if the caller runs with strict promotion.
            with jax.numpy_dtype_promotion("standard"):
                row = measure_throughput(
                    REFERENCE,
                    env,
                    params,
                    num_envs=num_envs,
                    num_steps=num_steps,
                    repeats=repeats,
                    key=keys[0],
                )
            rows.append(row)
            if progress is not None:
                progress(rows[-1])
    for name, k in zip(names, keys[2:], strict=False):
        env, params = make(name)
        batched = not hasattr(env, "spec")
        if batched:
            level_keys = jax.random.split(jax.random.fold_in(k, 1), num_envs)
            params = jax.vmap(lambda lk, n=name: sample_level(lk, n))(level_keys)
        rows.append(
            measure_throughput(
                name,
                env,
                params,
                num_envs=num_envs,
                num_steps=num_steps,
                repeats=repeats,
                batched_params=batched,
                key=k,
            )
        )
        if progress is not None:
            progress(rows[-1])
    return rows
