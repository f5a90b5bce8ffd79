"""Helpers that compute OPEN's context inputs the way the reference implementation does,
from lorl's agents or from any parameter tree (flax, Haiku, Equinox), and the pieces a
PureJaxRL-style loop needs to pass them."""

from collections.abc import Mapping, Sequence
from typing import Any, Literal, NamedTuple

import jax
import jax.numpy as jnp
import optax
from jaxtyping import Array, ArrayLike, Float, Int, PyTree


def open_proportions(
    step: Int[ArrayLike, ""], *, n_minibatches: int, n_epochs: int, n_updates: int
) -> tuple[Float[Array, ""], Float[Array, ""]]:
    """OPEN's training and batch proportions for optimizer step `step` (counted from 0).

    Reference formulas (spec section 2; the pretrained weights were trained with these,
    not with the paper text's `/ N_batch` and `/ L`):

    - training proportion `(t // (L * N_mb)) / (N_updates - 1)`,
    - batch proportion `((t // N_mb) % L) / (L - 1)`,

    where `L` is the number of PPO epochs, `N_mb` the number of minibatches and
    `N_updates` the number of PPO updates (batches collected). A denominator of zero
    (`N_updates = 1` or `L = 1`) gives 0.

    **Arguments:**

    - `step`: integer optimizer step `t`.
    - `n_minibatches`, `n_epochs`, `n_updates`: `N_mb`, `L`, `N_updates`.

    **Returns:**

    `(training_proportion, batch_proportion)` as float32 scalars.
    """
    for name, value in (
        ("n_minibatches", n_minibatches),
        ("n_epochs", n_epochs),
        ("n_updates", n_updates),
    ):
        if value < 1:
            raise ValueError(f"`{name}` must be a positive integer, got {value}.")
    t = jnp.asarray(step)
    if not jnp.issubdtype(t.dtype, jnp.integer):
        raise ValueError(f"`step` must be an integer, got dtype {t.dtype}.")
    update_index = (t // (n_epochs * n_minibatches)).astype(jnp.float32)
    epoch_index = ((t // n_minibatches) % n_epochs).astype(jnp.float32)
    tp = update_index / (n_updates - 1) if n_updates > 1 else jnp.zeros((), jnp.float32)
    bp = epoch_index / (n_epochs - 1) if n_epochs > 1 else jnp.zeros((), jnp.float32)
    return tp, bp


#: Added to each neuron's mean absolute activation before normalising (the OPEN
#: reference's value; lorl_agents uses the same).
DORMANCY_EPS = 1e-11


def neuron_scores(
    activations: Float[ArrayLike, "*batch features"], eps: float = DORMANCY_EPS
) -> Float[Array, " features"]:
    """OPEN's dormancy score of every neuron of one layer: `a_i = mean |h_i|` over the
    batch (and any spatial axes), then `s_i = (a_i + eps) / mean_k(a_k + eps)`.

    **Arguments:**

    - `activations`: the layer's outputs for a batch, neurons on the last axis
      (post-activation for hidden layers, raw outputs for output layers).
    - `eps`: see `DORMANCY_EPS`.

    **Returns:**

    One score per neuron (they average to one).
    """
    h = jnp.asarray(activations)
    a = jnp.mean(jnp.abs(h).reshape(-1, h.shape[-1]), axis=0) + eps
    return a / jnp.mean(a)


def _key_name(entry: Any) -> str:
    for attr in ("key", "name", "idx"):
        if hasattr(entry, attr):
            return str(getattr(entry, attr))
    return str(entry)


def open_context(
    params: PyTree[Array],
    activations: Mapping[str, Float[ArrayLike, "..."]],
    *,
    networks: Mapping[str, Sequence[str]],
    actor: str = "actor",
    kernel_layout: Literal["in_out", "out_in"] = "in_out",
    eps: float = DORMANCY_EPS,
) -> dict[str, PyTree[Array]]:
    """OPEN's per-parameter context from any parameter tree (flax, Haiku, Equinox, plain
    dicts) and the activations of a forward pass: the `layer_proportions`, `dormancy` and
    `actor_mask` keyword arguments of `OPEN.update` (or extra args of `as_optax()`).

    Every parameter leaf must lie under exactly one named layer (a key of its path, e.g.
    flax's `"Dense_0"`); each network lists its layers in order from input to output.

    - layer proportion of layer `i` of a network with `n` layers: `i / (n - 1)`;
    - actor mask: True for the leaves of the network named `actor`;
    - dormancy: the layer's `neuron_scores` of its activations, shaped to broadcast to the
      leaf: `(out,)` for an `"in_out"` kernel (flax, Haiku: `(..., in, out)`) and for
      biases, `(out, 1, ...)` for an `"out_in"` weight (Equinox: `(out, in, ...)`).

    **Arguments:**

    - `params`: the parameter tree.
    - `activations`: layer name -> that layer's outputs for the batch the gradients came
      from (neurons on the last axis; post-activation for hidden layers, raw outputs for
      output layers), e.g. from flax `sow` or `capture_intermediates` plus the activation
      function.
    - `networks`: network name -> its layer names in order, e.g.
      `{"actor": ["Dense_0", "Dense_1", "Dense_2"], "critic": ["Dense_3", ...]}`.
    - `actor`: the name of the actor network in `networks`.
    - `kernel_layout`: `"in_out"` or `"out_in"` (see above).
    - `eps`: see `neuron_scores`.

    **Returns:**

    `{"layer_proportions": tree, "dormancy": tree, "actor_mask": tree}`, each like
    `params`; pass them as `**context`.

    **Raises:**

    `ValueError` naming leaves that lie under no (or two) named layers, layers without
    activations, a missing actor network, or shapes that do not fit.
    """
    if actor not in networks:
        raise ValueError(f"actor network {actor!r} is not among the networks {list(networks)}")
    if kernel_layout not in ("in_out", "out_in"):
        raise ValueError(f"kernel_layout must be 'in_out' or 'out_in', got {kernel_layout!r}")
    where: dict[str, tuple[str, int, int]] = {}
    for net, layers in networks.items():
        for i, layer in enumerate(layers):
            if layer in where:
                raise ValueError(f"layer {layer!r} is listed twice")
            where[layer] = (net, i, len(layers))
    missing = [layer for layer in where if layer not in activations]
    if missing:
        raise ValueError(f"no activations for layers {missing}")
    scores = {layer: neuron_scores(activations[layer], eps) for layer in where}
    flat, treedef = jax.tree_util.tree_flatten_with_path(params)
    props, dorm, mask = [], [], []
    for path, leaf in flat:
        names = [n for n in (_key_name(e) for e in path) if n in where]
        label = "/".join(_key_name(e) for e in path)
        if len(names) != 1:
            problem = "no named layer" if not names else f"several named layers {names}"
            raise ValueError(f"parameter {label!r} lies under {problem}; name its layer")
        net, i, n = where[names[0]]
        s = scores[names[0]]
        shape = jnp.shape(leaf)
        out = int(s.shape[0])
        if len(shape) == 1 or kernel_layout == "in_out":
            if not shape or shape[-1] != out:
                raise ValueError(
                    f"parameter {label!r} of shape {shape}: its last axis should be the "
                    f"{out} neurons of layer {names[0]!r}"
                )
            d = s
        else:
            if shape[0] != out:
                raise ValueError(
                    f"parameter {label!r} of shape {shape}: its first axis should be the "
                    f"{out} neurons of layer {names[0]!r} (kernel_layout='out_in')"
                )
            d = s.reshape((out,) + (1,) * (len(shape) - 1))
        props.append(jnp.asarray(i / (n - 1) if n > 1 else 0.0, jnp.float32))
        dorm.append(d)
        mask.append(jnp.asarray(net == actor))
    return {
        "layer_proportions": jax.tree.unflatten(treedef, props),
        "dormancy": jax.tree.unflatten(treedef, dorm),
        "actor_mask": jax.tree.unflatten(treedef, mask),
    }


class OPENProportionsState(NamedTuple):
    """State of `with_open_proportions`: the inner optimizer's state and the optimizer
    steps taken so far."""

    inner: Any
    steps: Int[Array, ""]


def with_open_proportions(
    optimizer: Any, *, n_updates: int, n_epochs: int, n_minibatches: int
) -> optax.GradientTransformationExtraArgs:
    """`optimizer` with OPEN's training and batch proportions counted for you: the state
    counts optimizer steps and each `update` passes `open_proportions(count, ...)` as the
    `training_proportion` and `batch_proportion` extra args (unless given explicitly).

    **Arguments:**

    - `optimizer`: a learned optimizer (its `as_optax()` is used) or an optax
      transformation (e.g. a chain ending in OPEN).
    - `n_updates`, `n_epochs`, `n_minibatches`: the PPO run's updates (batches
      collected), epochs per update and minibatches per epoch (see `open_proportions`).

    **Returns:**

    An `optax.GradientTransformationExtraArgs`.
    """
    inner = optimizer.as_optax() if hasattr(optimizer, "as_optax") else optimizer
    if not isinstance(inner, optax.GradientTransformation):
        raise TypeError(
            f"expected a learned optimizer or an optax transformation, got {optimizer!r}"
        )
    open_proportions(0, n_minibatches=n_minibatches, n_epochs=n_epochs, n_updates=n_updates)
    inner = optax.with_extra_args_support(inner)

    def init_fn(params: Any) -> OPENProportionsState:
        return OPENProportionsState(inner.init(params), jnp.zeros((), jnp.int32))

    def update_fn(
        updates: Any, state: OPENProportionsState, params: Any = None, **extra: Any
    ) -> tuple[Any, OPENProportionsState]:
        tp, bp = open_proportions(
            state.steps, n_minibatches=n_minibatches, n_epochs=n_epochs, n_updates=n_updates
        )
        extra.setdefault("training_proportion", tp)
        extra.setdefault("batch_proportion", bp)
        updates, new_inner = inner.update(updates, state.inner, params, **extra)
        return updates, OPENProportionsState(new_inner, state.steps + 1)

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)  # pyright: ignore[reportArgumentType]


def apply_gradients(train_state: Any, grads: PyTree[Array], **context: Any) -> Any:
    """flax's `TrainState.apply_gradients` with optax extra args (flax's own cannot pass
    them, so OPEN's context would never reach it).

    Works with any object with `params`, `opt_state`, `tx`, `step` and `replace(...)`
    (flax's `TrainState` and its subclasses), without importing flax.

    **Arguments:**

    - `train_state`: the train state.
    - `grads`: gradients like `train_state.params`.
    - `context`: extra args for `tx.update` (e.g. `**open_context(...)`, `key=...`).

    **Returns:**

    The new train state (`step + 1`, updated `params` and `opt_state`).
    """
    updates, opt_state = train_state.tx.update(
        grads, train_state.opt_state, train_state.params, **context
    )
    params = optax.apply_updates(train_state.params, updates)
    return train_state.replace(step=train_state.step + 1, params=params, opt_state=opt_state)
