"""Categorical and diagonal-Gaussian policy distributions (log-probability, entropy, sampling)."""

import math

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int, PRNGKeyArray


def categorical_sample(
    logits: Float[Array, "*batch n"], *, key: PRNGKeyArray
) -> Int[Array, "*batch"]:
    """Sample actions from a categorical distribution given by logits."""
    return jax.random.categorical(key, logits, axis=-1)


def categorical_log_prob(
    logits: Float[Array, "*batch n"], actions: Int[Array, "*batch"]
) -> Float[Array, "*batch"]:
    """Log-probability of `actions` under softmax(`logits`)."""
    log_p = jax.nn.log_softmax(logits, axis=-1)
    return jnp.take_along_axis(log_p, actions[..., None].astype(jnp.int32), axis=-1)[..., 0]


def categorical_entropy(logits: Float[Array, "*batch n"]) -> Float[Array, "*batch"]:
    """Entropy of softmax(`logits`)."""
    log_p = jax.nn.log_softmax(logits, axis=-1)
    return -jnp.sum(jnp.exp(log_p) * log_p, axis=-1)


def gaussian_sample(
    mean: Float[Array, "*batch d"], log_std: Float[Array, " d"], *, key: PRNGKeyArray
) -> Float[Array, "*batch d"]:
    """Sample from a diagonal Gaussian with state-independent `log_std`."""
    noise = jax.random.normal(key, mean.shape, mean.dtype)
    return mean + jnp.exp(jnp.broadcast_to(log_std, mean.shape)) * noise


def gaussian_log_prob(
    mean: Float[Array, "*batch d"], log_std: Float[Array, " d"], actions: Float[Array, "*batch d"]
) -> Float[Array, "*batch"]:
    """Log-density of `actions` under a diagonal Gaussian, summed over action dimensions."""
    log_std = jnp.broadcast_to(log_std, mean.shape)
    z = (actions - mean) * jnp.exp(-log_std)
    per_dim = -0.5 * z**2 - log_std - 0.5 * math.log(2.0 * math.pi)
    return jnp.sum(per_dim, axis=-1)


def gaussian_entropy(
    mean: Float[Array, "*batch d"], log_std: Float[Array, " d"]
) -> Float[Array, "*batch"]:
    """Entropy of a diagonal Gaussian, summed over action dimensions."""
    per_dim = log_std + 0.5 * (1.0 + math.log(2.0 * math.pi))
    return jnp.broadcast_to(jnp.sum(per_dim), mean.shape[:-1])
