"""Fitness shaping for ES: centred ranks and the pairwise fitness of antithetic task
sampling, both with non-finite fitness ranked last."""

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float


def centered_ranks(score: Float[Array, " pop"]) -> Float[Array, " pop"]:
    """Centred-rank shaping (OPEN Section 5.2; Salimans et al. 2017): ranks of `score`
    (higher score, higher rank; ties share their average rank) mapped linearly to
    `[-0.5, 0.5]`. NaN and infinite scores rank below every finite one.

    **Arguments:**

    - `score`: one score per member, higher is better.

    **Returns:**

    The utilities, higher is better.
    """
    n = score.shape[0]
    if n < 2:
        raise ValueError(f"centred ranks need at least two members, got {n}")
    rankable = jnp.where(jnp.isfinite(score), score, -jnp.inf)
    ranks = jax.scipy.stats.rankdata(rankable) - 1.0
    return (ranks / (n - 1) - 0.5).astype(score.dtype)


def pairwise_fitness(score: Float[Array, " pop"]) -> Float[Array, " pop"]:
    """Antithetic task sampling (OPEN Section 5.2, after Jackson et al.): members `i` and
    `i + P/2` (an antithetic pair, evaluated on the same level and seed) are compared; the
    better gets `+0.5`, the worse `-0.5`, a tie `0` each. A non-finite score loses against
    a finite one; two non-finite scores tie.

    **Arguments:**

    - `score`: one score per member (even count, evosax's antithetic order), higher is
      better.

    **Returns:**

    The utilities, higher is better.
    """
    n = score.shape[0]
    if n % 2 != 0:
        raise ValueError(f"pairwise fitness needs an even population, got {n}")
    half = n // 2
    rankable = jnp.where(jnp.isfinite(score), score, -jnp.inf)
    plus, minus = rankable[:half], rankable[half:]
    both_bad = jnp.isneginf(plus) & jnp.isneginf(minus)
    sign = jnp.where(both_bad, 0.0, jnp.sign(plus - minus)).astype(score.dtype)
    return jnp.concatenate([0.5 * sign, -0.5 * sign])
