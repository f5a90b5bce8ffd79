"""Helpers that compute OPEN's context inputs the way the reference implementation does."""

import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float, Int


def open_proportions(
    step: Int[ArrayLike, ""], *, n_minibatches: int, n_epochs: int, n_updates: int
) -> tuple[Float[Array, ""], Float[Array, ""]]:
    """OPEN's training and batch proportions for optimizer step `step` (counted from 0).

    Reference formulas (spec section 2; the pretrained weights were trained with these,
    not with the paper text's `/ N_batch` and `/ L`):

    - training proportion `(t // (L * N_mb)) / (N_updates - 1)`,
    - batch proportion `((t // N_mb) % L) / (L - 1)`,

    where `L` is the number of PPO epochs, `N_mb` the number of minibatches and
    `N_updates` the number of PPO updates (batches collected). A denominator of zero
    (`N_updates = 1` or `L = 1`) gives 0.

    **Arguments:**

    - `step`: integer optimizer step `t`.
    - `n_minibatches`, `n_epochs`, `n_updates`: `N_mb`, `L`, `N_updates`.

    **Returns:**

    `(training_proportion, batch_proportion)` as float32 scalars.
    """
    for name, value in (
        ("n_minibatches", n_minibatches),
        ("n_epochs", n_epochs),
        ("n_updates", n_updates),
    ):
        if value < 1:
            raise ValueError(f"`{name}` must be a positive integer, got {value}.")
    t = jnp.asarray(step)
    if not jnp.issubdtype(t.dtype, jnp.integer):
        raise ValueError(f"`step` must be an integer, got dtype {t.dtype}.")
    update_index = (t // (n_epochs * n_minibatches)).astype(jnp.float32)
    epoch_index = ((t // n_minibatches) % n_epochs).astype(jnp.float32)
    tp = update_index / (n_updates - 1) if n_updates > 1 else jnp.zeros((), jnp.float32)
    bp = epoch_index / (n_epochs - 1) if n_epochs > 1 else jnp.zeros((), jnp.float32)
    return tp, bp
