"""GAE and lambda-returns against hand-computed values."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import lorl_agents as la


def _case():
    rewards = jnp.array([1.0, 2.0, 3.0])
    values = jnp.array([0.5, 1.0, 1.5])
    dones = jnp.array([False, True, False])
    last_value = jnp.asarray(2.0)
    return rewards, values, dones, last_value


def test_gae_hand_computed():
    rewards, values, dones, last_value = _case()
    gamma, lam = 0.9, 0.8
    adv, targets = la.gae(rewards, values, dones, last_value, gamma, lam)
    # By hand: deltas
    d2 = 3.0 + 0.9 * 2.0 - 1.5  # 3.3
    d1 = 2.0 + 0.0 - 1.0  # 1.0 (episode ended at t=1: no bootstrap)
    d0 = 1.0 + 0.9 * 1.0 - 0.5  # 1.4
    a2 = d2
    a1 = d1  # trace cut by the done at t=1
    a0 = d0 + 0.9 * 0.8 * a1  # 2.12
    np.testing.assert_allclose(adv, [a0, a1, a2], rtol=1e-6)
    np.testing.assert_allclose(targets, [a0 + 0.5, a1 + 1.0, a2 + 1.5], rtol=1e-6)


def test_lambda_returns_hand_computed():
    rewards, values, dones, last_value = _case()
    gamma, lam = 0.9, 0.8
    g = la.lambda_returns(rewards, values, dones, last_value, gamma, lam)
    g2 = 3.0 + 0.9 * ((1 - 0.8) * 2.0 + 0.8 * 2.0)  # bootstrap G_T = V_T = 2
    g1 = 2.0  # terminal
    g0 = 1.0 + 0.9 * ((1 - 0.8) * 1.0 + 0.8 * g1)
    np.testing.assert_allclose(g, [g0, g1, g2], rtol=1e-6)


@pytest.mark.parametrize("lam", [0.0, 0.5, 0.95, 1.0])
def test_gae_targets_equal_lambda_returns(lam):
    k1, k2, k3, k4 = jax.random.split(jax.random.key(0), 4)
    shape = (16, 5)
    rewards = jax.random.normal(k1, shape)
    values = jax.random.normal(k2, shape)
    dones = jax.random.bernoulli(k3, 0.2, shape)
    last = jax.random.normal(k4, shape[1:])
    _, targets = la.gae(rewards, values, dones, last, 0.99, lam)
    returns = la.lambda_returns(rewards, values, dones, last, 0.99, lam)
    np.testing.assert_allclose(targets, returns, rtol=1e-5, atol=1e-5)


def test_lambda_one_is_monte_carlo_and_zero_is_td():
    rewards = jnp.array([1.0, 0.0, 2.0, 1.0])
    values = jnp.array([3.0, -1.0, 4.0, 0.5])
    dones = jnp.array([False, False, True, False])
    last = jnp.asarray(10.0)
    mc = la.lambda_returns(rewards, values, dones, last, 0.5, 1.0)
    np.testing.assert_allclose(mc, [1.0 + 0.5 * 0.0 + 0.25 * 2.0, 0.0 + 0.5 * 2.0, 2.0, 1.0 + 5.0])
    td = la.lambda_returns(rewards, values, dones, last, 0.5, 0.0)
    np.testing.assert_allclose(td, [1.0 - 0.5, 0.0 + 2.0, 2.0, 1.0 + 5.0])
