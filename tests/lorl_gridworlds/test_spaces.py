"""The fallback spaces used when gymnax is not installed behave like gymnax's."""

import jax
import jax.numpy as jnp
import numpy as np

from lorl_gridworlds import _fallback_spaces as fb


def test_fallback_discrete():
    d = fb.Discrete(9)
    assert d.n == 9 and d.shape == () and d.dtype == jnp.int32
    samples = jax.vmap(d.sample)(jax.random.split(jax.random.key(0), 2000))
    assert set(np.unique(samples).tolist()) == set(range(9))
    assert bool(d.contains(jnp.asarray(8))) and not bool(d.contains(jnp.asarray(9)))
    assert not bool(d.contains(jnp.asarray(-1)))


def test_fallback_box():
    b = fb.Box(0.0, 1.0, (3, 2))
    x = b.sample(jax.random.key(0))
    assert x.shape == (3, 2) and x.dtype == jnp.float32 and bool(b.contains(x))
    assert not bool(b.contains(jnp.full((3, 2), 2.0)))
