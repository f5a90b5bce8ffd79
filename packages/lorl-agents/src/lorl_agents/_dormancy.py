"""Neuron dormancy (Sokar et al. 2023), as used by OPEN (Goldie et al. 2024, eq. 6)."""

import jax.numpy as jnp
from jaxtyping import Array, Float

#: The OPEN reference adds this to every neuron's mean activation before normalising
#: (spec `optimizers.md`, section 2), so that a layer of all-dead neurons does not divide
#: by zero.
DORMANCY_EPS = 1e-11


def neuron_scores(
    activations: Float[Array, "*batch features"], eps: float = DORMANCY_EPS
) -> Float[Array, " features"]:
    """Dormancy score of every neuron of one layer.

    `a_i = mean over the batch (and any spatial axes) of |h_i|`, then
    `s_i = (a_i + eps) / mean_k(a_k + eps)`. A neuron is tau-dormant when `s_i <= tau`.

    **Arguments:**

    - `activations`: the layer's outputs for a batch of inputs, neurons (or conv channels)
        on the last axis: post-activation for hidden layers, raw outputs for output layers.
    - `eps`: added to each `a_i` (the OPEN reference uses `1e-11`).

    **Returns:**

    One score per neuron; the scores average to one.
    """
    a = jnp.mean(jnp.abs(activations).reshape(-1, activations.shape[-1]), axis=0) + eps
    return a / jnp.mean(a)


def dormant_fraction(
    activations: Float[Array, "*batch features"], tau: float = 0.0
) -> Float[Array, ""]:
    """Fraction of tau-dormant neurons of one layer (Sokar et al. 2023, Definition 3.1).

    Neuron `i` is tau-dormant when `a_i <= tau * mean_k(a_k)` with `a_i` the mean absolute
    activation over the batch. Computed without the `eps` of
    [`lorl_agents.neuron_scores`][], so with `tau = 0` exactly the neurons that never fire
    on the batch count; a layer whose neurons are all silent is entirely dormant.

    **Arguments:**

    - `activations`: the layer's outputs for a batch, neurons on the last axis.
    - `tau`: dormancy threshold.

    **Returns:**

    A scalar in `[0, 1]`.
    """
    a = jnp.mean(jnp.abs(activations).reshape(-1, activations.shape[-1]), axis=0)
    dormant = a <= tau * jnp.mean(a)
    return jnp.mean(dormant.astype(activations.dtype))
