"""What an optimizer's update does, relative to the gradient and the parameters (the
behaviour analyses of OPEN's Appendix F): cheap scalars computed inside a jitted run."""

from typing import Any

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PyTree


def _flat(tree: PyTree[Array]) -> Float[Array, " n"]:
    leaves = [jnp.ravel(x).astype(jnp.float32) for x in jax.tree.leaves(tree)]
    return jnp.concatenate(leaves) if leaves else jnp.zeros((0,), jnp.float32)


def update_statistics(
    grads: PyTree[Array], updates: PyTree[Array], params: PyTree[Array]
) -> dict[str, Float[Array, ""]]:
    """Alignment and size of one optimizer update.

    - `update_grad_cosine`: the cosine similarity between the update and the negative
      gradient, over all parameters (1: a step straight down the gradient, as SGD takes;
      0: orthogonal, e.g. mostly noise);
    - `update_param_ratio`: `|update| / |params|` (global Euclidean norms; how far one
      step moves the parameters relative to their size).

    **Arguments:**

    - `grads`, `updates`, `params`: trees of the same structure (the updates are what is
      added to the parameters).

    **Returns:**

    The two scalars (0 where a norm is 0).
    """
    g, u, p = _flat(grads), _flat(updates), _flat(params)
    tiny = jnp.asarray(1e-30, jnp.float32)
    nu, ng, np_ = jnp.linalg.norm(u), jnp.linalg.norm(g), jnp.linalg.norm(p)
    cosine = jnp.where((nu > 0) & (ng > 0), -jnp.dot(u, g) / jnp.maximum(nu * ng, tiny), 0.0)
    ratio = jnp.where(np_ > 0, nu / jnp.maximum(np_, tiny), 0.0)
    return {"update_grad_cosine": cosine, "update_param_ratio": ratio}


def noise_statistics(
    optimizer: Any,
    grads: PyTree[Array],
    opt_state: Any,
    params: PyTree[Array],
    actor_mask: PyTree[Array],
    context: dict[str, Any],
) -> dict[str, Float[Array, ""]]:
    """The weight of an optimizer's learned noise relative to the actor's parameters, for
    optimizers that have one (`noise_weights(grads, state, params, **context)`, e.g.
    `lorl_optim.OPEN`; OPEN Appendix F.4): `noise_param_ratio = |delta_actor| /
    |params_actor|` (global Euclidean norms over the actor's parameters, as
    `update_param_ratio`; the paper's per-element mean of `|delta_i / p_i|` is undefined
    at zero-initialised biases). `{}` for optimizers without learned noise.

    **Arguments:**

    - `optimizer`: the optimizer (its state `opt_state` is the one before the step).
    - `grads`, `params`: trees of the same structure.
    - `actor_mask`: a bool per leaf (True for the actor's).
    - `context`: the optimizer's context keywords for this step.

    **Returns:**

    `{"noise_param_ratio": scalar}` or `{}`.
    """
    weights = getattr(optimizer, "noise_weights", None)
    if weights is None or not getattr(optimizer, "use_stochasticity", True):
        return {}
    delta = weights(grads, opt_state, params, **context)
    masks = jax.tree.leaves(actor_mask)

    def actor(tree: PyTree[Array]) -> Float[Array, " n"]:
        leaves = jax.tree.leaves(tree)
        return jnp.concatenate(
            [
                jnp.ravel(x).astype(jnp.float32) * jnp.asarray(m, jnp.float32)
                for x, m in zip(leaves, masks, strict=True)
            ]
        )

    d, p = actor(delta), actor(params)
    n_p = jnp.linalg.norm(p)
    ratio = jnp.where(n_p > 0, jnp.linalg.norm(d) / jnp.maximum(n_p, 1e-30), 0.0)
    return {"noise_param_ratio": ratio}
