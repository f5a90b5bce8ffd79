"""Throughput: environment steps per second, vmapped over environments, scanned over time."""

import contextlib
import dataclasses
import statistics
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jaxtyping import PRNGKeyArray

REFERENCE = "Breakout-MinAtar"


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


def _runner(
    env: Any, params: Any, num_envs: int, num_steps: int, batched_params: bool
) -> Callable[[PRNGKeyArray], jax.Array]:
    """`key -> total`: `num_envs` environments, `num_steps` random steps each, jitted."""
    if num_envs < 1 or num_steps < 1:
        raise ValueError(f"num_envs and num_steps must be >= 1, got {num_envs}, {num_steps}")
    one_params = jax.tree_util.tree_map(lambda x: x[0], params) if batched_params else params
    n_actions = env.action_space(one_params).n

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

    run = jax.jit(jax.vmap(one_env, in_axes=(0, 0 if batched_params else None)))
    return lambda key: run(jax.random.split(key, num_envs), params)


def _timed(fn: Callable[[PRNGKeyArray], jax.Array], key: PRNGKeyArray) -> float:
    t0 = time.perf_counter()
    jax.block_until_ready(fn(key))
    return time.perf_counter() - t0


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
    over `env.action_space(params)`; every environment auto-resets; the observation is
    carried through the scan so it is really computed.

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
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    run = _runner(env, params, num_envs, num_steps, batched_params)
    keys = jax.random.split(key, repeats + 1)
    compile_s = _timed(run, keys[0])
    seconds = statistics.median(_timed(run, k) for k in keys[1:])
    return Throughput(name, num_envs, num_steps, compile_s, seconds,
                      num_envs * num_steps / seconds, repeats)  # fmt: skip


def format_table(rows: list[Throughput], reference: str | None = None) -> str:
    """A plain-text table of measurements, with ratios to the `reference` row."""
    ref = next((r for r in rows if r.name == reference), None)
    header = f"{'environment':<22}{'steps/s':>14}{'vs ' + (reference or '-'):>26}{'compile s':>11}"
    lines = [header, "-" * len(header)]
    for r in rows:
        ratio = f"{r.steps_per_second / ref.steps_per_second:.2f}x" if ref else "-"
        lines.append(f"{r.name:<22}{r.steps_per_second:>14,.0f}{ratio:>26}{r.compile_s:>11.1f}")
    return "\n".join(lines)


def benchmark_suite(
    names: tuple[str, ...] | None = None,
    *,
    num_envs: int = 1024,
    num_steps: int = 1000,
    repeats: int = 3,
    reference: bool = True,
    progress: Callable[[str], None] | None = None,
    key: PRNGKeyArray,
) -> list[Throughput]:
    """Throughput of every LPG gridworld and of `all`, with gymnax's Breakout-MinAtar.

    The level distribution `all` runs with one level per environment (a batch of levels
    of different grid sizes, as in OPEN's meta-training). Everything is compiled first;
    then the timed runs go round-robin over the environments (repeat 1 of each, repeat 2
    of each, ...), so a change of load on a shared machine affects every row alike and
    the ratios to the reference, measured in the same run, stay comparable.

    **Arguments:**

    - `names`: gridworlds to measure (default: the six LPG gridworlds and `all`).
    - `num_envs`, `num_steps`, `repeats`: see [`lorl_gridworlds.measure_throughput`][].
    - `reference`: also measure `Breakout-MinAtar` (needs gymnax; skipped if it is not
      installed).
    - `progress`: optional callable receiving a line of text per finished step.
    - `key`: a PRNG key.

    **Returns:** the rows, reference first.
    """
    from ._distributions import sample_level
    from ._registry import LPG_NAMES, make

    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    names = (*LPG_NAMES, "all") if names is None else names
    say = progress if progress is not None else (lambda _: None)
    entries: list[tuple[str, Callable[[PRNGKeyArray], jax.Array], bool]] = []
    if reference:
        try:
            import gymnax
        except ImportError:
            gymnax = None
        if gymnax is not None:
            env, params = gymnax.make(REFERENCE)
            entries.append((REFERENCE, _runner(env, params, num_envs, num_steps, False), True))
    for i, name in enumerate(names):
        env, params = make(name)
        batched = not hasattr(env, "spec")
        if batched:  # a level distribution: one level per environment
            level_keys = jax.random.split(jax.random.fold_in(key, 10_000 + i), num_envs)
            params = jax.vmap(lambda lk, n=name: sample_level(lk, n))(level_keys)
        entries.append((name, _runner(env, params, num_envs, num_steps, batched), False))

    def promotion(is_gymnax: bool) -> contextlib.AbstractContextManager[Any]:
        # gymnax relies on implicit dtype promotion: run it in the standard mode even if
        # the caller uses strict promotion.
        return jax.numpy_dtype_promotion("standard") if is_gymnax else contextlib.nullcontext()

    compile_s: dict[str, float] = {}
    for i, (name, run, is_gymnax) in enumerate(entries):
        with promotion(is_gymnax):
            compile_s[name] = _timed(run, jax.random.fold_in(key, i))
        say(f"compiled {name} ({compile_s[name]:.1f} s)")
    times: dict[str, list[float]] = {name: [] for name, _, _ in entries}
    for r in range(repeats):
        for i, (name, run, is_gymnax) in enumerate(entries):
            with promotion(is_gymnax):
                times[name].append(_timed(run, jax.random.fold_in(key, 1000 * (r + 1) + i)))
        say(f"timed round {r + 1}/{repeats}")
    rows = []
    for name, _, _ in entries:
        seconds = statistics.median(times[name])
        rows.append(Throughput(name, num_envs, num_steps, compile_s[name], seconds,
                               num_envs * num_steps / seconds, repeats))  # fmt: skip
    return rows
