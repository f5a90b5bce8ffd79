"""A directional finite-difference check of meta-gradients, shared by the tests."""

import jax
import jax.numpy as jnp
import numpy as np


def check_directional_derivative(f, grad, arrays, *, seed: int, rtol: float, floor: float):
    """Compare `<grad, d>` with the central difference `(f(a + h d) - f(a - h d)) / 2h`
    (h = 1e-5) along a random float64 direction `d` drawn from `seed`.

    **Arguments:**

    - `f`: the scalar function of the pytree `arrays` (float64 leaves).
    - `grad`: its gradient at `arrays` (same tree).
    - `arrays`: the point.
    - `seed`: seed of the direction.
    - `rtol`: relative tolerance of the comparison.
    - `floor`: the analytic derivative must exceed this in magnitude (so the check cannot
      pass on a gradient that is zero).
    """
    leaves, treedef = jax.tree.flatten(arrays)
    keys = jax.random.split(jax.random.key(seed), len(leaves))
    direction = jax.tree.unflatten(
        treedef,
        [jax.random.normal(k, x.shape, jnp.float64) for k, x in zip(keys, leaves, strict=True)],
    )
    analytic = sum(
        float(jnp.vdot(a, b))
        for a, b in zip(jax.tree.leaves(grad), jax.tree.leaves(direction), strict=True)
    )
    h = 1e-5
    plus = jax.tree.map(lambda a, d: a + h * d, arrays, direction)
    minus = jax.tree.map(lambda a, d: a - h * d, arrays, direction)
    numeric = (float(f(plus)) - float(f(minus))) / (2 * h)
    assert abs(analytic) > floor
    np.testing.assert_allclose(analytic, numeric, rtol=rtol)
