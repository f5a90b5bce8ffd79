"""PPO clipping, value clipping and advantage normalisation against hand-computed values."""

import jax
import jax.numpy as jnp
import numpy as np

import lorl_agents as la


def test_clipped_policy_loss_hand_computed():
    eps = 0.2
    # ratios 1.5 (A>0: clipped to 1.2), 0.5 (A>0: unclipped min is 0.5), 1.5 (A<0: min picks
    # 1.5 * A), 0.5 (A<0: clipped to 0.8), 1.1 (inside the range)
    ratios = jnp.array([1.5, 0.5, 1.5, 0.5, 1.1])
    adv = jnp.array([1.0, 2.0, -1.0, -2.0, 3.0])
    old = jnp.zeros(5)
    loss, clip_frac = la.clipped_policy_loss(jnp.log(ratios), old, adv, eps)
    per_sample = [1.2 * 1.0, 0.5 * 2.0, 1.5 * -1.0, 0.8 * -2.0, 1.1 * 3.0]
    np.testing.assert_allclose(loss, -np.mean(per_sample), rtol=1e-6)
    np.testing.assert_allclose(clip_frac, 4 / 5)


def test_clipped_policy_loss_gradient_vanishes_when_clipped():
    eps = 0.2
    adv = jnp.array([1.0, -1.0])

    def f(logp):
        return la.clipped_policy_loss(logp, jnp.zeros(2), adv, eps)[0]

    # ratio 1.5 with A > 0 and ratio 0.5 with A < 0: both clipped, no gradient.
    g = jax.grad(f)(jnp.log(jnp.array([1.5, 0.5])))
    np.testing.assert_allclose(g, [0.0, 0.0])
    # ratio 1.0: gradient is -A * ratio / n
    g = jax.grad(f)(jnp.zeros(2))
    np.testing.assert_allclose(g, [-0.5, 0.5], rtol=1e-6)


def test_clipped_value_loss_hand_computed():
    eps = 0.2
    values = jnp.array([1.0, 0.0, 2.0])
    old = jnp.array([0.5, 0.5, 2.1])
    targets = jnp.array([0.0, 1.0, 2.0])
    loss = la.clipped_value_loss(values, old, targets, eps)
    # sample 0: v=1.0, clipped v=0.7 -> max(1.0, 0.49) = 1.0
    # sample 1: v=0.0, clipped v=0.3 -> max(1.0, 0.49) = 1.0
    # sample 2: v=2.0, clipped v=2.0 -> max(0, 0) = 0
    # sample with clipped larger: check separately below
    np.testing.assert_allclose(loss, 0.5 * np.mean([1.0, 1.0, 0.0]), rtol=1e-6)
    # v moved towards the target past the clip: the clipped (worse) error counts
    loss = la.clipped_value_loss(jnp.array([1.0]), jnp.array([0.0]), jnp.array([1.0]), eps)
    np.testing.assert_allclose(loss, 0.5 * (0.2 - 1.0) ** 2, rtol=1e-6)


def test_advantage_normalisation():
    adv = jnp.array([1.0, 2.0, 3.0, 6.0])
    out = la.normalize_advantages(adv)
    expected = (np.array(adv) - 3.0) / (np.std(np.array(adv)) + 1e-8)
    np.testing.assert_allclose(out, expected, rtol=1e-6)
    np.testing.assert_allclose(jnp.mean(out), 0.0, atol=1e-6)
    np.testing.assert_allclose(jnp.std(out), 1.0, rtol=1e-5)


def test_distributions_against_closed_forms():
    logits = jnp.array([[0.0, jnp.log(3.0)]])
    np.testing.assert_allclose(
        la.categorical_log_prob(logits, jnp.array([1])), [np.log(0.75)], rtol=1e-6
    )
    p = np.array([0.25, 0.75])
    np.testing.assert_allclose(la.categorical_entropy(logits), [-(p * np.log(p)).sum()], rtol=1e-6)
    mean = jnp.array([[0.0, 1.0]])
    log_std = jnp.array([0.0, jnp.log(2.0)])
    x = jnp.array([[1.0, 1.0]])
    expected = -0.5 * 1.0 - 0.5 * np.log(2 * np.pi) + (-np.log(2.0) - 0.5 * np.log(2 * np.pi))
    np.testing.assert_allclose(la.gaussian_log_prob(mean, log_std, x), [expected], rtol=1e-6)
    ent = (0.5 * np.log(2 * np.pi * np.e)) * 2 + np.log(2.0)
    np.testing.assert_allclose(la.gaussian_entropy(mean, log_std), [ent], rtol=1e-6)
