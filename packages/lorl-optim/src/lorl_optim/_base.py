"""The abstract learned-optimizer interface, its state, and the optax adapter."""

import abc
import dataclasses
from collections.abc import Mapping
from typing import Any, cast

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
from jaxtyping import Array, ArrayLike, Bool, Float, Int, PRNGKeyArray, PyTree

from ._layout import ParamLayout

# The context names `update` accepts; `as_optax` forwards optax extra args with these names
# and ignores every other extra arg (optax chains pass all extra args to every member).
CONTEXT_NAMES = (
    "context",
    "dormancy",
    "training_proportion",
    "batch_proportion",
    "layer_proportions",
    "actor_mask",
    "key",
)


class LearnedOptimizerState(eqx.Module):
    """Per-parameter state of a learned optimizer, stored flat and features-major.

    `slots[i, j]` is state quantity `i` of agent parameter `j`, where parameters are
    numbered by concatenating the raveled leaves of the parameter tree (in `jax.tree`
    order). What the rows mean depends on the optimizer (see its docstring); the number of
    rows is the number of floats stored per agent parameter.

    `layout` (static) records the tree structure and leaf shapes captured by `init`;
    `update` checks the gradients against it. `count` is the number of steps taken, kept
    only by an optimizer whose learning rate is a schedule (`None` otherwise).
    """

    slots: Float[Array, "slots n_params"]
    layout: ParamLayout = eqx.field(static=True)
    count: Int[Array, ""] | None = None


class OptimizerContext(eqx.Module):
    """What a learned optimizer may condition on besides the gradients, parameters and key
    (OPEN, Section 5: the inputs beyond the gradient): one structure passed from
    [`lorl_optim.AbstractLearnedOptimizer.update`][] to each optimizer's `step`. Each
    optimizer reads what it needs (a missing required field raises `ValueError` there).

    **Fields** (all optional):

    - `dormancy`: pytree like the parameters; each leaf broadcastable to its parameter
      leaf, holding each weight's downstream neuron's score: `(out,)` for a flax kernel
      `(in, out)`, `(out, 1)` for an Equinox weight `(out, in)`, `(out,)` for a bias
      (lorl's own agents pass the full parameter shape).
    - `training_proportion`, `batch_proportion`: scalars in `[0, 1]`.
    - `layer_proportions`: pytree like the parameters, a scalar (or broadcastable array)
      per leaf.
    - `actor_mask`: pytree like the parameters, a bool per leaf (True for actor leaves).
    """

    dormancy: PyTree[Float[ArrayLike, "..."]] | None = None
    training_proportion: Float[ArrayLike, ""] | None = None
    batch_proportion: Float[ArrayLike, ""] | None = None
    layer_proportions: PyTree[Float[ArrayLike, "..."]] | None = None
    actor_mask: PyTree[Bool[ArrayLike, "..."]] | None = None


class AbstractLearnedOptimizer(eqx.Module):
    """A learned optimizer: its fields are the meta-parameters.

    Subclasses implement `init` and `step`; `update`, the optax-style entry point, gathers
    the context keyword arguments into an [`lorl_optim.OptimizerContext`][] and calls
    `step`. Sign convention (optax): the returned updates are to be *added* to the
    parameters (`optax.apply_updates`).

    Context keyword arguments of `update` (each optimizer uses what it needs and ignores
    the rest; a missing required one raises `ValueError`): `dormancy`,
    `training_proportion`, `batch_proportion`, `layer_proportions`, `actor_mask` (see
    [`lorl_optim.OptimizerContext`][]), or the structure itself as `context`; and `key`, a
    PRNG key (for optimizers with stochastic updates).
    """

    @abc.abstractmethod
    def init(self, params: PyTree[Float[Array, "..."]]) -> LearnedOptimizerState:
        """Per-parameter state for `params`.

        **Arguments:**

        - `params`: the agent parameters (a pytree of float arrays, one dtype).

        **Returns:**

        A `LearnedOptimizerState` with zero slots and the static parameter layout.
        """

    def update(
        self,
        grads: PyTree[Float[Array, "..."]],
        state: LearnedOptimizerState,
        params: PyTree[Float[Array, "..."]] | None = None,
        *,
        context: OptimizerContext | None = None,
        dormancy: PyTree[Float[ArrayLike, "..."]] | None = None,
        training_proportion: Float[ArrayLike, ""] | None = None,
        batch_proportion: Float[ArrayLike, ""] | None = None,
        layer_proportions: PyTree[Float[ArrayLike, "..."]] | None = None,
        actor_mask: PyTree[Bool[ArrayLike, "..."]] | None = None,
        key: PRNGKeyArray | None = None,
    ) -> tuple[PyTree[Float[Array, "..."]], LearnedOptimizerState]:
        """One optimizer step (optax's signature, with the context as keyword arguments).

        **Arguments:**

        - `grads`: gradients, same tree as the `params` given to `init`.
        - `state`: the optimizer state.
        - `params`: current parameters (needed by optimizers that condition on them).
        - `context`: an [`lorl_optim.OptimizerContext`][]; or give its fields as the
          keywords `dormancy`, `training_proportion`, `batch_proportion`,
          `layer_proportions`, `actor_mask` (not both for the same field).
        - `key`: a PRNG key (for optimizers with stochastic updates).

        **Returns:**

        `(updates, new_state)`, where `updates` are to be added to the parameters.

        **Raises:**

        `ValueError` if a field is given both in `context` and as a keyword.
        """
        loose = {
            "dormancy": dormancy,
            "training_proportion": training_proportion,
            "batch_proportion": batch_proportion,
            "layer_proportions": layer_proportions,
            "actor_mask": actor_mask,
        }
        context = gather_context(context, loose, f"{type(self).__name__}.update")
        return self.step(grads, state, params, context, key=key)

    def step(
        self,
        grads: PyTree[Float[Array, "..."]],
        state: LearnedOptimizerState,
        params: PyTree[Float[Array, "..."]] | None,
        context: OptimizerContext,
        *,
        key: PRNGKeyArray | None = None,
    ) -> tuple[PyTree[Float[Array, "..."]], LearnedOptimizerState]:
        """One optimizer step with the context as one structure: what a subclass
        implements (a subclass may override `update` instead).

        **Arguments:**

        - `grads`, `state`, `params`: as for `update`.
        - `context`: the [`lorl_optim.OptimizerContext`][].
        - `key`: a PRNG key or None.

        **Returns:**

        `(updates, new_state)`.
        """
        raise NotImplementedError(
            f"{type(self).__name__} implements neither step(grads, state, params, context, "
            "*, key) nor update"
        )

    def config(self) -> dict[str, Any]:
        """The constructor's keyword arguments (all but `key`) that rebuild this optimizer's
        configuration; `lorl_optim.save` stores them beside the meta-parameters.

        **Returns:**

        A dict of JSON-compatible values (numbers, strings, booleans, tuples).

        **Raises:**

        `NotImplementedError` in a subclass that does not describe itself (it can still
        train; it cannot be saved with `lorl_optim.save`).
        """
        raise NotImplementedError(
            f"{type(self).__name__} does not implement config(), so lorl_optim.save cannot "
            "describe it; return its constructor's keyword arguments (all but key) there"
        )

    def as_optax(self) -> optax.GradientTransformationExtraArgs:
        """This optimizer as an `optax.GradientTransformationExtraArgs`.

        Context arrives as optax extra args with the names of `update`'s keyword
        arguments (`opt.update(grads, state, params, dormancy=..., key=...)`); other extra
        args are ignored. The transformation closes over `self`, so use it for training
        with fixed meta-parameters; for meta-gradients or populations call `init`/`update`
        on the module directly.

        **Returns:**

        An `optax.GradientTransformationExtraArgs`.
        """

        def init_fn(params: Any) -> LearnedOptimizerState:
            return self.init(params)

        def update_fn(
            updates: Any, state: LearnedOptimizerState, params: Any = None, **extra_args: Any
        ) -> tuple[Any, LearnedOptimizerState]:
            context = {k: v for k, v in extra_args.items() if k in CONTEXT_NAMES}
            return self.update(updates, state, params, **context)

        return optax.GradientTransformationExtraArgs(init_fn, update_fn)  # pyright: ignore[reportArgumentType]


def gather_context(
    context: OptimizerContext | None, loose: Mapping[str, Any], owner: str
) -> OptimizerContext:
    """One [`lorl_optim.OptimizerContext`][] from `context` and the context fields given
    as keywords (`loose`, `None` where not given).

    **Raises:**

    `ValueError` for an unknown keyword, or a field given both ways.
    """
    names = [f.name for f in dataclasses.fields(OptimizerContext)]
    unknown = sorted(set(loose) - set(names))
    if unknown:
        raise ValueError(f"{owner}: unknown context {unknown}; known: {', '.join(names)}")
    if context is None:
        return OptimizerContext(**loose)
    both = [k for k, v in loose.items() if v is not None and getattr(context, k) is not None]
    if both:
        raise ValueError(f"{owner}: {both} given both in `context` and as keywords; give each once")
    if any(v is not None for v in loose.values()):
        fields = {k: getattr(context, k) for k in names}
        fields.update({k: v for k, v in loose.items() if v is not None})
        return OptimizerContext(**fields)
    return context


def check_learning_rate(learning_rate: Any, owner: str) -> float | optax.Schedule:
    """`learning_rate` as an optimizer stores it: a positive Python float, or an optax
    schedule (a callable of the step count, as optax's own optimizers accept).

    **Raises:**

    `ValueError` for anything else (a non-positive number, a string, an array).
    """
    if callable(learning_rate):
        return cast(optax.Schedule, learning_rate)
    if isinstance(learning_rate, bool) or not isinstance(learning_rate, int | float):
        raise ValueError(
            f"{owner}: learning_rate must be a positive float or an optax schedule (a "
            f"callable of the step count), got {learning_rate!r}."
        )
    if not learning_rate > 0:
        raise ValueError(
            f"{owner}: learning_rate must be a positive float (or an optax schedule), got "
            f"{learning_rate!r}."
        )
    return float(learning_rate)


def require(value: Any, name: str, owner: str, expected: str) -> Any:
    """`value`, or a `ValueError` naming the missing context and its expected form."""
    if value is None:
        raise ValueError(f"{owner}.update needs `{name}`: {expected}.")
    return value


def check_state(state: Any, owner: str, n_slots: int) -> LearnedOptimizerState:
    if not isinstance(state, LearnedOptimizerState):
        raise ValueError(
            f"{owner}.update expected a LearnedOptimizerState (from {owner}.init), "
            f"got {type(state).__name__}."
        )
    if state.slots.shape[0] != n_slots:
        raise ValueError(
            f"{owner}.update expected a state with {n_slots} slots per parameter, got "
            f"{state.slots.shape[0]}; was it created by a different optimizer?"
        )
    return state


def scalar_context(value: Any, name: str, owner: str, dtype: Any) -> Float[Array, ""]:
    value = jnp.asarray(require(value, name, owner, "a scalar in [0, 1]"))
    if value.shape != ():
        raise ValueError(f"{owner}.update: `{name}` must be a scalar, got shape {value.shape}.")
    return value.astype(dtype)


def has_nonfinite(tree: PyTree[ArrayLike]) -> Bool[Array, ""]:
    """Whether any leaf of `tree` contains NaN or infinity.

    NaN or inf in gradients or meta-parameters propagates into the updates of every
    learned optimizer here (OPEN's zero-meaning spreads one NaN to every parameter).
    Check gradients, updates or meta-parameters with this function, e.g. inside a jitted
    training step, and react outside the step.

    **Arguments:**

    - `tree`: any pytree of arrays (non-float leaves are never non-finite).

    **Returns:**

    A boolean scalar array.
    """
    flags = [
        jnp.any(~jnp.isfinite(leaf))
        for leaf in jax.tree.leaves(tree)
        if jnp.issubdtype(jnp.result_type(leaf), jnp.inexact)
    ]
    if not flags:
        return jnp.asarray(False)
    return jnp.any(jnp.stack(flags))
