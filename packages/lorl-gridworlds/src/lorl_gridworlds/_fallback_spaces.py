"""Minimal gymnax-compatible spaces, used when gymnax is not installed."""

from typing import Any

import jax
import jax.numpy as jnp


class Discrete:
    """The integers `0, ..., n - 1` (gymnax-compatible)."""

    def __init__(self, num_categories: int, *, dtype: Any = jnp.int32):
        if num_categories < 0:
            raise ValueError(f"num_categories must be >= 0, got {num_categories}")
        self.n = num_categories
        self.shape: tuple[int, ...] = ()
        self.dtype = jnp.dtype(dtype)

    def __repr__(self) -> str:
        return f"Discrete({self.n})"

    def sample(self, key: jax.Array) -> jax.Array:
        return jax.random.randint(key, self.shape, 0, self.n, dtype=self.dtype)

    def contains(self, x: jax.Array) -> jax.Array:
        x = jnp.asarray(x)
        return jnp.logical_and(x >= 0, x < self.n)


class Box:
    """A box `[low, high]^shape` (gymnax-compatible)."""

    def __init__(self, low: Any, high: Any, shape: tuple[int, ...], dtype: Any = jnp.float32):
        self.low = low
        self.high = high
        self.shape = tuple(shape)
        self.dtype = jnp.dtype(dtype)

    def __repr__(self) -> str:
        return f"Box({self.low}, {self.high}, {self.shape}, {self.dtype})"

    def sample(self, key: jax.Array) -> jax.Array:
        return jax.random.uniform(key, self.shape, minval=self.low, maxval=self.high).astype(
            self.dtype
        )

    def contains(self, x: jax.Array) -> jax.Array:
        x = jnp.asarray(x)
        return jnp.logical_and(jnp.all(x >= self.low), jnp.all(x <= self.high))
