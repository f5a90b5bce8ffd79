"""PRNG key handling: trainers keep raw `uint32[2]` keys so checkpoints are plain arrays."""

import jax
import jax.numpy as jnp
from jaxtyping import Array, PRNGKeyArray


def raw_key(key: PRNGKeyArray) -> Array:
    """`key` as raw key data (`uint32[2]` for the default threefry implementation)."""
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        return jax.random.key_data(key)
    return jnp.asarray(key)
