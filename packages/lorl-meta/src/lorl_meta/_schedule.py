"""The reset schedule of pipeline training (Optim4RL, Section 5.1)."""

import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Int, Integer


def reset_offsets(n_units: int, reset_interval: int) -> Int[np.ndarray, " n_units"]:
    """The offsets `r_1..r_n` of pipeline training: `n_units` integers evenly spaced over
    `[0, reset_interval - 1]` (Optim4RL, Section 5.1).

    `r_i` is the integer nearest to `i * (m - 1) / (n - 1)` (ties round up), computed in
    exact integer arithmetic, so the first unit gets `0` and the last `m - 1`. With one
    unit the offset is `0`.

    **Arguments:**

    - `n_units`: the number of training units `n` (>= 1).
    - `reset_interval`: the reset interval `m` (>= 1).

    **Returns:**

    An `int32` NumPy vector of length `n_units`, non-decreasing, in `[0, m - 1]`.
    """
    if n_units < 1:
        raise ValueError(f"n_units must be >= 1, got {n_units}")
    if reset_interval < 1:
        raise ValueError(
            f"reset_interval (m) must be an integer >= 1, got {reset_interval}; "
            "m = 1 resets every unit at every meta-iteration"
        )
    if n_units == 1:
        return np.zeros((1,), np.int32)
    i = np.arange(n_units, dtype=np.int64)
    span = reset_interval - 1
    # round(i * span / (n - 1)) = floor((2 i span + (n - 1)) / (2 (n - 1)))
    return ((2 * i * span + (n_units - 1)) // (2 * (n_units - 1))).astype(np.int32)


def reset_mask(
    offsets: Integer[Array | np.ndarray, " n_units"],
    iteration: Integer[Array | np.ndarray, ""] | int,
    reset_interval: int,
) -> Bool[Array, " n_units"]:
    """Which units pipeline training resets at meta-iteration `iteration`:
    unit `i` is reset when `r_i == iteration mod m` (Optim4RL, Section 5.1).

    **Arguments:**

    - `offsets`: the offsets from [`lorl_meta.reset_offsets`][].
    - `iteration`: the meta-iteration `t` (an integer, may be traced).
    - `reset_interval`: the reset interval `m`.

    **Returns:**

    A boolean vector, True for the units to reset.
    """
    offsets = jnp.asarray(offsets, jnp.int32)
    t = jnp.asarray(iteration, jnp.int32)
    return offsets == jnp.mod(t, jnp.asarray(reset_interval, jnp.int32))
