"""What an optimizer's update does, relative to the gradient and the parameters (the
behaviour analyses of OPEN's Appendix F): cheap scalars computed inside a jitted run."""

from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PyTree

from ._common import as_optimizer

#: OPEN Appendix F.2 (Figure 11): the momentum timescales, those of OPEN's inputs.
MOMENTUM_BETAS = (0.1, 0.5, 0.9, 0.99, 0.999, 0.9999)


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
    if delta is None:  # a wrapper (`MomentumProbe`) around an optimizer without noise
        return {}
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


class MomentumProbeState(eqx.Module):
    """The wrapped optimizer's state and one gradient momentum per timescale."""

    inner: Any
    momenta: tuple[PyTree[Array], ...]


class MomentumProbe(eqx.Module):
    """Wrap any optimizer to measure how its updates align with gradient momenta (OPEN
    Appendix F.2, Figure 11), without changing what it does.

    The probe keeps `m_beta <- beta * m_beta + (1 - beta) * g` for every `beta` of
    `betas` (zero-initialised, the momenta OPEN takes as inputs) beside the wrapped
    optimizer's own state, and passes gradients, parameters and keywords to the wrapped
    optimizer unchanged, so its updates are the wrapped optimizer's (up to float rounding:
    the larger compiled program may fuse differently, ~1e-7 relative). PPO with
    `update_statistics=True` then records `update_momentum_cosine_<beta>` =
    cos(update, -m_beta) per update ([`lorl_agents.MomentumProbe.momentum_cosines`][]).

    **Fields:**

    - `optimizer`: an optax transformation or learned optimizer.
    - `betas`: momentum timescales, each in `[0, 1)`.
    """

    optimizer: Any
    betas: tuple[float, ...] = eqx.field(static=True, default=MOMENTUM_BETAS)

    def __check_init__(self):
        if not self.betas or not all(0.0 <= b < 1.0 for b in self.betas):
            raise ValueError(f"betas must be non-empty, each in [0, 1); got {self.betas}")

    def init(self, params: PyTree[Array]) -> MomentumProbeState:
        zeros = jax.tree.map(jnp.zeros_like, params)
        return MomentumProbeState(
            as_optimizer(self.optimizer).init(params), (zeros,) * len(self.betas)
        )

    def update(
        self,
        updates: PyTree[Array],
        state: MomentumProbeState,
        params: PyTree[Array] | None = None,
        **extra: Any,
    ) -> tuple[PyTree[Array], MomentumProbeState]:
        momenta = tuple(
            jax.tree.map(lambda m, g, b=b: b * m + (1.0 - b) * g, m, updates)
            for b, m in zip(self.betas, state.momenta, strict=True)
        )
        out, inner = as_optimizer(self.optimizer).update(updates, state.inner, params, **extra)
        return out, MomentumProbeState(inner, momenta)

    def momentum_cosines(
        self, state: MomentumProbeState, updates: PyTree[Array]
    ) -> dict[str, Float[Array, ""]]:
        """`update_momentum_cosine_<beta>`: the cosine between `updates` and the negative
        momentum at each timescale of `state` (the state after the step, whose momenta
        include the step's gradient; 0 where a norm is 0)."""
        u = _flat(updates)
        nu = jnp.linalg.norm(u)
        out = {}
        for b, m in zip(self.betas, state.momenta, strict=True):
            v = _flat(m)
            nv = jnp.linalg.norm(v)
            cos = -jnp.dot(u, v) / jnp.maximum(nu * nv, 1e-30)
            out[f"update_momentum_cosine_{b:g}"] = jnp.where((nu > 0) & (nv > 0), cos, 0.0)
        return out

    def noise_weights(
        self, grads: PyTree[Array], state: MomentumProbeState, params: PyTree[Array], **context
    ) -> PyTree[Array] | None:
        """The wrapped optimizer's `noise_weights` (`None` if it has none)."""
        weights = getattr(self.optimizer, "noise_weights", None)
        return None if weights is None else weights(grads, state.inner, params, **context)

    @property
    def use_stochasticity(self) -> bool:
        return getattr(self.optimizer, "use_stochasticity", True)


def momentum_statistics(
    optimizer: Any, opt_state: Any, updates: PyTree[Array]
) -> dict[str, Float[Array, ""]]:
    """`optimizer.momentum_cosines(opt_state, updates)` for a
    [`lorl_agents.MomentumProbe`][] (the state after the step), `{}` for any other
    optimizer."""
    cosines = getattr(optimizer, "momentum_cosines", None)
    return {} if cosines is None else cosines(opt_state, updates)
