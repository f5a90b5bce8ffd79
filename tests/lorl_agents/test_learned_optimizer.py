"""PPO with a real learned optimizer from lorl-optim (skipped where it is not installed:
lorl-agents itself never imports it)."""

import equinox as eqx
import jax
import numpy as np
import pytest

import lorl_agents as la


def test_ppo_with_open_and_a_population_of_meta_parameters():
    lorl_optim = pytest.importorskip("lorl_optim")
    env, params = la.make_env("CartPole-v1")
    config = la.PPOConfig.cartpole(
        n_envs=4, n_steps=8, total_timesteps=2 * 32, n_minibatches=2, n_epochs=2
    )
    agent = la.PPO(config)
    opt = lorl_optim.load_open("breakout")
    meta, static = eqx.partition(opt, eqx.is_inexact_array)
    leaves, treedef = jax.tree.flatten(meta)

    def member(scale):
        return eqx.combine(jax.tree.unflatten(treedef, [x * scale for x in leaves]), static)

    scales = jax.numpy.array([1.0, 0.0])
    results = jax.vmap(lambda s: agent.train(env, params, member(s), key=jax.random.key(0)))(scales)
    la.check_finite(results)
    w = results.network.actor[0].weight
    # Different meta-parameters give different agents from the same seed.
    assert not np.allclose(w[0], w[1])
    assert results.metrics["dormancy"].shape == (2, config.n_updates, 6)
