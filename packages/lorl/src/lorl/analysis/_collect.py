"""Bounded-memory collection of the gradients an optimizer sees during any training run.

[`lorl.analysis.GradientCollector`][] wraps an optimizer (optax or learned). Every call
of its `update` passes the gradients on unchanged and, before that, records them in its
state:

- **Stage samples** (distributions, Optim4RL Figure 1, Table 11): the run's optimizer
  calls are split into `n_stages` equal parts by time (the paper uses 30 parts, Appendix
  C.2). For each part a fixed-size uniform sample of all gradient elements seen in it is
  kept by *bottom-k (priority) reservoir sampling*: every element gets an independent
  `U(0, 1)` priority and the `per_stage` elements with the smallest priorities are kept.
  This is a uniform sample without replacement of the stage's elements (each of the `N`
  elements is kept with probability `per_stage / N`), so the empirical distribution of
  the kept values is an unbiased estimate of the stage's gradient distribution, whatever
  the order in which elements arrive. Memory: `n_stages x per_stage` floats.
- **Traces** (the identity experiment, Section 4.2): the gradient of `n_traced` fixed
  parameter elements (drawn uniformly without replacement at `init`) at every optimizer
  call, i.e. one time series per element. Memory: `n_calls x n_traced` floats.

Everything is pure JAX, so the collector runs inside the jitted training loop.
"""

import dataclasses
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array, Float, Int, PRNGKeyArray, PyTree

from ._errors import AnalysisError


def flatten_gradients(grads: PyTree) -> Float[Array, " n"]:
    """All array leaves of `grads`, raveled and concatenated (float32), in tree order.

    **Arguments:**

    - `grads`: a gradient pytree (non-array leaves are ignored).

    **Returns:**

    The flat vector of every gradient element.
    """
    leaves = [jnp.ravel(x).astype(jnp.float32) for x in jax.tree.leaves(grads) if eqx.is_array(x)]
    if not leaves:
        raise AnalysisError("the gradient tree has no array leaves")
    return jnp.concatenate(leaves)


def reservoir_merge(
    values: Float[Array, " k"],
    priorities: Float[Array, " k"],
    new_values: Float[Array, " n"],
    *,
    key: PRNGKeyArray,
) -> tuple[Float[Array, " k"], Float[Array, " k"]]:
    """One step of bottom-k reservoir sampling: merge `new_values` into a reservoir.

    Each new element gets an independent `U(0, 1)` priority; the `k` elements (old and new)
    with the smallest priorities are kept. Empty slots have priority `+inf` (and any value),
    so they are filled first.

    **Arguments:**

    - `values`, `priorities`: the reservoir (`k` slots).
    - `new_values`: the elements to offer.
    - `key`: PRNG key for the new priorities.

    **Returns:**

    The new `(values, priorities)`.
    """
    k = values.shape[0]
    u = jax.random.uniform(key, new_values.shape, jnp.float32)
    all_values = jnp.concatenate([values, new_values.astype(values.dtype)])
    all_priorities = jnp.concatenate([priorities, u])
    neg, idx = jax.lax.top_k(-all_priorities, k)
    return all_values[idx], -neg


class CollectorState(eqx.Module):
    """State of a [`lorl.analysis.GradientCollector`][]: the wrapped optimizer's state plus
    the stage reservoirs and the traces."""

    inner: PyTree
    values: Float[Array, "n_stages per_stage"]
    priorities: Float[Array, "n_stages per_stage"]
    seen: Int[Array, " n_stages"]
    traces: Float[Array, "n_calls n_traced"]
    trace_index: Int[Array, " n_traced"]
    call: Int[Array, ""]
    key: PRNGKeyArray


class GradientCollector(eqx.Module):
    """An optimizer wrapper that records the gradients it is given (see the module notes).

    Use it wherever an optimizer goes (A2C, PPO, a supervised loop), then read the samples
    from the final optimizer state with [`lorl.analysis.GradientSample.from_state`][].
    `update` returns exactly what the wrapped optimizer returns; the extra keyword
    arguments of the learned-optimizer context are passed through.
    """

    inner: Any
    n_calls: int = eqx.field(static=True)
    n_stages: int = eqx.field(static=True)
    per_stage: int = eqx.field(static=True)
    n_traced: int = eqx.field(static=True)
    key: PRNGKeyArray

    def __init__(
        self,
        inner: Any,
        n_calls: int,
        *,
        n_stages: int = 30,
        per_stage: int = 10_000,
        n_traced: int = 0,
        key: PRNGKeyArray,
    ):
        """**Arguments:**

        - `inner`: the optimizer: an optax `GradientTransformation(ExtraArgs)` or any
          object with optax-style `init` / `update` (learned optimizers).
        - `n_calls`: how many times `update` will be called in the run (A2C: one per
          update; PPO: `n_updates * n_epochs * n_minibatches`); calls beyond it are not
          recorded.
        - `n_stages`: equal parts of the run by time (Optim4RL Appendix C.2: 30).
        - `per_stage`: elements kept per stage (the memory bound).
        - `n_traced`: parameter elements whose gradient is recorded at every call (0: none).
        - `key`: PRNG key for priorities and traced elements.
        """
        if n_calls < 1 or n_stages < 1 or per_stage < 1 or n_traced < 0:
            raise AnalysisError(
                f"need n_calls, n_stages, per_stage >= 1 and n_traced >= 0; got n_calls="
                f"{n_calls}, n_stages={n_stages}, per_stage={per_stage}, n_traced={n_traced}"
            )
        if n_stages > n_calls:
            raise AnalysisError(
                f"n_stages = {n_stages} is more than the run's {n_calls} optimizer calls"
            )
        if isinstance(inner, optax.GradientTransformation) and not isinstance(
            inner, optax.GradientTransformationExtraArgs
        ):
            inner = optax.with_extra_args_support(inner)
        elif not (
            callable(getattr(inner, "init", None)) and callable(getattr(inner, "update", None))
        ):
            raise AnalysisError(
                f"inner must be an optax GradientTransformation or an object with optax-style "
                f"init/update; got {type(inner).__name__}"
            )
        self.inner = inner
        self.n_calls = n_calls
        self.n_stages = n_stages
        self.per_stage = per_stage
        self.n_traced = n_traced
        self.key = key

    def stage_of(self, call: Int[Array, ""]) -> Int[Array, ""]:
        """The stage (part of the run) optimizer call number `call` belongs to."""
        return jnp.minimum(call * self.n_stages // self.n_calls, self.n_stages - 1)

    def init(self, params: PyTree) -> CollectorState:
        """The wrapped optimizer's state plus empty reservoirs and traces."""
        with jax.numpy_dtype_promotion("standard"):
            inner_state = self.inner.init(params)
        n = int(flatten_gradients(params).shape[0])
        if self.n_traced > n:
            raise AnalysisError(f"n_traced = {self.n_traced} exceeds the {n} parameters")
        trace_key, run_key = jax.random.split(self.key)
        # Uniform without replacement, via a permutation (not `choice(replace=False)`).
        index = jnp.sort(jax.random.permutation(trace_key, n)[: self.n_traced]).astype(jnp.int32)
        shape = (self.n_stages, self.per_stage)
        return CollectorState(
            inner_state,
            jnp.full(shape, jnp.nan, jnp.float32),
            jnp.full(shape, jnp.inf, jnp.float32),
            jnp.zeros((self.n_stages,), jnp.int32),
            jnp.zeros((self.n_calls, self.n_traced), jnp.float32),
            index,
            jnp.asarray(0, jnp.int32),
            run_key,
        )

    def update(
        self, updates: PyTree, state: CollectorState, params: PyTree | None = None, **extra: Any
    ) -> tuple[PyTree, CollectorState]:
        """Record `updates` (the gradients), then call the wrapped optimizer.

        **Arguments:**

        - `updates`: the gradients.
        - `state`: the collector state.
        - `params`, `extra`: passed to the wrapped optimizer.

        **Returns:**

        `(inner_updates, new_state)`.
        """
        flat = jax.lax.stop_gradient(flatten_gradients(updates))
        call = state.call
        active = call < self.n_calls
        stage = self.stage_of(call)
        key, sub = jax.random.split(state.key)
        old_v = state.values[stage]
        old_p = state.priorities[stage]
        new_v, new_p = reservoir_merge(old_v, old_p, flat, key=sub)
        values = state.values.at[stage].set(jnp.where(active, new_v, old_v))
        priorities = state.priorities.at[stage].set(jnp.where(active, new_p, old_p))
        seen = state.seen.at[stage].add(jnp.where(active, flat.shape[0], 0).astype(jnp.int32))
        row = jnp.minimum(call, self.n_calls - 1)
        traces = state.traces.at[row].set(
            jnp.where(active, flat[state.trace_index], state.traces[row])
        )
        with jax.numpy_dtype_promotion("standard"):
            out, inner_state = self.inner.update(updates, state.inner, params, **extra)
        new_state = CollectorState(
            inner_state, values, priorities, seen, traces, state.trace_index, call + 1, key
        )
        return out, new_state


@dataclasses.dataclass(frozen=True)
class GradientSample:
    """The gradients collected in one run, as NumPy arrays (leave JAX behind).

    - `stages`: per stage, the kept values (a list of 1-D arrays, at most `per_stage`).
    - `seen`: per stage, how many gradient elements the stage had in total.
    - `traces`: `(n_calls, n_traced)`: the traced elements' gradients over time.
    - `trace_index`: the traced elements' positions in the flat parameter vector.
    """

    stages: list[np.ndarray]
    seen: np.ndarray
    traces: np.ndarray
    trace_index: np.ndarray

    @staticmethod
    def from_state(state: CollectorState) -> "GradientSample":
        """Read a (final, concrete) [`lorl.analysis.CollectorState`][]."""
        values = np.asarray(state.values)
        priorities = np.asarray(state.priorities)
        stages = [v[np.isfinite(p)] for v, p in zip(values, priorities, strict=True)]
        return GradientSample(
            stages,
            np.asarray(state.seen, np.int64),
            np.asarray(state.traces),
            np.asarray(state.trace_index),
        )

    @property
    def n_stages(self) -> int:
        return len(self.stages)

    def stage(self, index: int) -> np.ndarray:
        """The kept values of stage `index` (negative indices count from the end)."""
        return self.stages[index]

    def whole_run(self) -> tuple[np.ndarray, np.ndarray]:
        """A weighted sample of the whole run's gradient distribution.

        **Returns:**

        `(values, weights)`: the union of the stage samples, each element weighted by
        `seen / kept` of its stage, so stages count in proportion to their size (an
        unbiased estimate of the whole-run distribution; use the weights, e.g. as
        `u_weights` of `scipy.stats.wasserstein_distance`).
        """
        values, weights = [], []
        for v, n in zip(self.stages, self.seen, strict=True):
            if v.size:
                values.append(v)
                weights.append(np.full(v.size, n / v.size))
        if not values:
            raise AnalysisError("no gradients were collected")
        return np.concatenate(values), np.concatenate(weights)

    def to_dict(self) -> dict[str, Any]:
        """JSON-convertible form (lists)."""
        return {
            "stages": [s.tolist() for s in self.stages],
            "seen": self.seen.tolist(),
            "traces": self.traces.tolist(),
            "trace_index": self.trace_index.tolist(),
        }

    @staticmethod
    def from_dict(data: dict[str, Any]) -> "GradientSample":
        """Inverse of [`lorl.analysis.GradientSample.to_dict`][]."""
        traces = np.asarray(data["traces"], np.float32)
        if traces.ndim != 2:
            traces = traces.reshape(len(data["traces"]), -1)
        return GradientSample(
            [np.asarray(s, np.float32) for s in data["stages"]],
            np.asarray(data["seen"], np.int64),
            traces,
            np.asarray(data["trace_index"], np.int64),
        )
