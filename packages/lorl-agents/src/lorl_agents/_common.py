"""Pieces shared by A2C and PPO: episode bookkeeping, optimizer calls, gradient clipping,
non-finite detection and the training result."""

from typing import Any, TypeVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.core import Tracer
from jaxtyping import Array, Bool, Float, Int, PRNGKeyArray, PyTree

from ._networks import AbstractActorCritic

_Net = TypeVar("_Net", bound=AbstractActorCritic)


class EpisodeStats(eqx.Module):
    """Per-environment running and last-completed episode returns and lengths."""

    current_return: Float[Array, " n_envs"]
    current_length: Int[Array, " n_envs"]
    last_return: Float[Array, " n_envs"]
    last_length: Int[Array, " n_envs"]

    @staticmethod
    def create(n_envs: int) -> "EpisodeStats":
        zf = jnp.zeros((n_envs,), jnp.float32)
        zi = jnp.zeros((n_envs,), jnp.int32)
        return EpisodeStats(zf, zi, zf, zi)

    def record(
        self, raw_reward: Float[Array, " n_envs"], done: Bool[Array, " n_envs"]
    ) -> tuple["EpisodeStats", Float[Array, ""], Float[Array, ""], Float[Array, ""]]:
        """Add one step; returns the new stats and (sum of returns, sum of lengths, count)
        of the episodes that ended on this step."""
        ret = self.current_return + raw_reward
        length = self.current_length + 1
        done_f = done.astype(jnp.float32)
        finished_return = jnp.sum(ret * done_f)
        finished_length = jnp.sum(length.astype(jnp.float32) * done_f)
        stats = EpisodeStats(
            jnp.where(done, jnp.zeros_like(ret), ret),
            jnp.where(done, jnp.zeros_like(length), length),
            jnp.where(done, ret, self.last_return),
            jnp.where(done, length, self.last_length),
        )
        return stats, finished_return, finished_length, jnp.sum(done_f)


def episode_metrics(
    finished_return: Float[Array, " time"],
    finished_length: Float[Array, " time"],
    finished: Float[Array, " time"],
    episodes: EpisodeStats,
) -> dict[str, Array]:
    """Per-update episode metrics from a rollout's per-step sums."""
    n = jnp.sum(finished)
    safe_n = jnp.maximum(n, 1.0)
    nan = jnp.asarray(jnp.nan, jnp.float32)
    return {
        # Optim4RL: average return of the episodes that finished during this update.
        "episode_return": jnp.where(n > 0, jnp.sum(finished_return) / safe_n, nan),
        "episode_length": jnp.where(n > 0, jnp.sum(finished_length) / safe_n, nan),
        "episodes_finished": n,
        # OPEN (PureJaxRL): mean over environments of each one's last completed episode.
        "last_return": jnp.mean(episodes.last_return),
    }


def init_optimizer(optimizer: Any, network: AbstractActorCritic) -> PyTree:
    """`optimizer.init` on the network's parameters (under standard dtype promotion)."""
    with jax.numpy_dtype_promotion("standard"):
        return optimizer.init(eqx.filter(network, eqx.is_inexact_array))


def as_optimizer(optimizer: Any) -> Any:
    """Accept optax transformations (plain ones are wrapped to ignore the extra keyword
    arguments) and any object with optax-style `init` / `update` (learned optimizers)."""
    if isinstance(optimizer, optax.GradientTransformationExtraArgs):
        return optimizer
    if isinstance(optimizer, optax.GradientTransformation):
        return optax.with_extra_args_support(optimizer)
    if callable(getattr(optimizer, "init", None)) and callable(getattr(optimizer, "update", None)):
        return optimizer
    raise TypeError(
        f"optimizer must be an optax GradientTransformation(ExtraArgs) or an object with "
        f"optax-style init(params) and update(updates, state, params, **extra); got "
        f"{type(optimizer).__name__}"
    )


def clip_by_group_norm(
    grads: PyTree[Array], actor_mask: PyTree[Array], max_norm: float, separate: bool
) -> tuple[PyTree[Array], Float[Array, ""]]:
    """Global-norm gradient clipping, over actor and critic parameters separately if
    `separate` (the OPEN reference clips the two networks' gradients separately).

    **Arguments:**

    - `grads`: gradients.
    - `actor_mask`: one boolean per leaf of `grads` (True: actor).
    - `max_norm`: the norm to clip to.
    - `separate`: clip actor and critic leaves as two groups.

    **Returns:**

    `(clipped_grads, norm)` with `norm` the unclipped global norm of all gradients.
    """
    leaves, treedef = jax.tree.flatten(grads)
    masks = jax.tree.leaves(actor_mask)
    sq = [jnp.sum(g**2) for g in leaves]
    total = jnp.sqrt(sum(sq, jnp.asarray(0.0, jnp.float32)))
    if separate:
        zero = jnp.asarray(0.0, jnp.float32)
        actor = jnp.sqrt(sum((jnp.where(m, s, zero) for s, m in zip(sq, masks, strict=True)), zero))
        critic = jnp.sqrt(
            sum((jnp.where(m, zero, s) for s, m in zip(sq, masks, strict=True)), zero)
        )
        scale_a = jnp.minimum(1.0, max_norm / jnp.maximum(actor, 1e-12))
        scale_c = jnp.minimum(1.0, max_norm / jnp.maximum(critic, 1e-12))
        clipped = [g * jnp.where(m, scale_a, scale_c) for g, m in zip(leaves, masks, strict=True)]
    else:
        scale = jnp.minimum(1.0, max_norm / jnp.maximum(total, 1e-12))
        clipped = [g * scale for g in leaves]
    return jax.tree.unflatten(treedef, clipped), total


def all_finite(tree: PyTree[Array]) -> Bool[Array, ""]:
    """True iff every element of every array leaf is finite."""
    leaves = [jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree) if eqx.is_array(x)]
    return jnp.all(jnp.stack(leaves)) if leaves else jnp.asarray(True)


def optimizer_context(
    network: AbstractActorCritic,
    activations: tuple[Array, ...],
    layer_proportions: PyTree[Array],
    actor_mask: PyTree[Array],
    training_proportion: Float[Array, ""],
    batch_proportion: Float[Array, ""],
) -> dict[str, Any]:
    """The learned-optimizer context of one optimizer call, as the keywords of the optax
    extra-args protocol (`dormancy` from `activations`, gradient stopped)."""
    dormancy = eqx.filter(network.dormancy(jax.lax.stop_gradient(activations)), eqx.is_array)
    return {
        "dormancy": dormancy,
        "training_proportion": training_proportion,
        "batch_proportion": batch_proportion,
        "layer_proportions": layer_proportions,
        "actor_mask": actor_mask,
    }


def optimizer_step(
    optimizer: Any,
    network: _Net,
    opt_state: Any,
    grads: PyTree[Array],
    activations: tuple[Array, ...],
    layer_proportions: PyTree[Array],
    actor_mask: PyTree[Array],
    training_proportion: Float[Array, ""],
    batch_proportion: Float[Array, ""],
    *,
    key: PRNGKeyArray,
) -> tuple[_Net, Any, Bool[Array, ""]]:
    """One optimizer call with the learned-optimizer context, then apply the updates.

    Calls `optimizer.update(grads, opt_state, params, dormancy=..., training_proportion=...,
    batch_proportion=..., layer_proportions=..., actor_mask=..., key=...)` with
    `params = eqx.filter(network, eqx.is_inexact_array)`; every context tree has the
    structure of `params`.

    **Arguments:**

    - `optimizer`: an optax `GradientTransformationExtraArgs` or learned optimizer.
    - `network`: the current network.
    - `opt_state`: the optimizer state.
    - `grads`: the (clipped) gradients, structured like `params`.
    - `activations`: per-layer activations of the forward pass that produced `grads`;
        dormancy is computed from them (gradient stopped).
    - `layer_proportions`, `actor_mask`: the network's context trees, filtered to arrays.
    - `training_proportion`, `batch_proportion`: scalars in `[0, 1]`.
    - `key`: PRNG key for the optimizer.

    **Returns:**

    `(network, opt_state, finite)`: `finite` is false if any update or new parameter is
    NaN or infinite.
    """
    params = eqx.filter(network, eqx.is_inexact_array)
    context = optimizer_context(
        network, activations, layer_proportions, actor_mask, training_proportion, batch_proportion
    )
    # optax itself relies on implicit dtype promotion (e.g. `b1 ** count` in Adam's bias
    # correction), so optimizer calls run under standard promotion.
    with jax.numpy_dtype_promotion("standard"):
        updates, opt_state = optimizer.update(grads, opt_state, params, **context, key=key)
    network = eqx.apply_updates(network, updates)
    finite = jnp.logical_and(all_finite(updates), all_finite(network))
    return network, opt_state, finite


class NonFiniteUpdateError(RuntimeError):
    """Raised when an optimizer produced NaN or infinite updates during training."""


class TrainResult(eqx.Module):
    """What a training run returns (leading axes added by `vmap` are kept everywhere).

    - `network`: the final network.
    - `metrics`: one entry per update for every metric (see the docs for the list).
    - `final_return`: the final return as the paper of the algorithm defines it.
    - `first_nonfinite_update`: index of the first update whose optimizer step produced a
      non-finite update or parameter, `-1` if none.
    - `layer_names`: names of the entries of the `dormancy` metric's last axis.
    """

    network: AbstractActorCritic
    metrics: dict[str, Array]
    final_return: Float[Array, "..."]
    first_nonfinite_update: Int[Array, "..."]
    layer_names: tuple[str, ...] = eqx.field(static=True)


def first_nonfinite(nonfinite: Bool[Array, "... n_updates"]) -> Int[Array, "..."]:
    """Index of the first True along the last axis, -1 if none."""
    idx = jnp.argmax(nonfinite, axis=-1).astype(jnp.int32)
    return jnp.where(jnp.any(nonfinite, axis=-1), idx, jnp.full_like(idx, -1))


def check_finite(result: TrainResult) -> TrainResult:
    """Raise [`lorl_agents.NonFiniteUpdateError`][] if any run of `result` had a non-finite
    optimizer update; otherwise return `result` unchanged.

    `train` calls this itself when it runs outside `jit`/`vmap`; call it yourself on the
    (concrete) output of a vmapped or jitted `train`.

    **Arguments:**

    - `result`: a (possibly batched) [`lorl_agents.TrainResult`][].

    **Returns:**

    `result`.
    """
    first = np.asarray(result.first_nonfinite_update)
    if np.any(first >= 0):
        bad = np.argwhere(first >= 0)
        n_updates = result.metrics["nonfinite"].shape[-1]
        where = ", ".join(
            f"run {tuple(int(i) for i in b)}: update {int(first[tuple(b)])}"
            if b.size
            else f"update {int(first[tuple(b)])}"
            for b in bad[:5]
        )
        raise NonFiniteUpdateError(
            f"the optimizer produced non-finite (NaN/inf) updates or parameters; first bad "
            f"update of {n_updates}: {where}. Everything after that update is meaningless."
        )
    return result


def is_traced(tree: PyTree) -> bool:
    """Whether any leaf is a JAX tracer (we are inside jit/vmap/grad)."""
    return any(isinstance(x, Tracer) for x in jax.tree.leaves(tree))
