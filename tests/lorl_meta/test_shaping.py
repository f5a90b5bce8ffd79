"""Fitness shaping: centred ranks and the pairwise fitness of antithetic task sampling."""

import jax.numpy as jnp
import numpy as np
import pytest

import lorl_meta as lm


def test_centered_ranks_match_an_independent_computation():
    rng = np.random.default_rng(0)
    score = rng.normal(size=9).astype(np.float32)
    expected = np.argsort(np.argsort(score)) / 8 - 0.5
    np.testing.assert_allclose(np.asarray(lm.centered_ranks(jnp.asarray(score))), expected)


def test_centered_ranks_put_nonfinite_last():
    score = jnp.asarray([3.0, jnp.nan, -5.0, jnp.inf, 1.0], jnp.float32)
    u = np.asarray(lm.centered_ranks(score))
    assert u.min() >= -0.5 and u.max() <= 0.5
    # The finite ones keep their order above both non-finite ones.
    assert u[0] > u[4] > u[2] > max(u[1], u[3])
    assert u[1] == u[3]  # two failures tie


def test_pairwise_fitness_sign():
    # Pairs (0, 3), (1, 4), (2, 5).
    score = jnp.asarray([2.0, -1.0, 4.0, 1.0, 0.0, 4.0], jnp.float32)
    u = np.asarray(lm.pairwise_fitness(score))
    np.testing.assert_array_equal(u, [0.5, -0.5, 0.0, -0.5, 0.5, 0.0])


def test_pairwise_fitness_nonfinite_loses():
    score = jnp.asarray([jnp.nan, 1.0, jnp.nan, -100.0, jnp.inf, jnp.nan], jnp.float32)
    u = np.asarray(lm.pairwise_fitness(score))
    # (nan vs -100): nan loses; (1 vs inf): inf loses; (nan vs nan): tie.
    np.testing.assert_array_equal(u, [-0.5, 0.5, 0.0, 0.5, -0.5, 0.0])


def test_pairwise_fitness_needs_pairs():
    with pytest.raises(ValueError, match="even"):
        lm.pairwise_fitness(jnp.zeros((5,), jnp.float32))
