"""Environment adapters: names, running statistics, normalisation wrappers, Brax."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import lorl_agents as la


def test_make_env_names():
    for name in la.GYMNAX_ENVS:
        env, params = la.make_env(name)
        assert hasattr(env, "step") and params is not None
    with pytest.raises(ValueError, match="unknown environment 'small_dense_short'"):
        la.make_env("small_dense_short")


def test_running_stats_match_full_batch():
    x = jax.random.normal(jax.random.key(0), (10, 3)) * 2.0 + 1.0
    stats = la.RunningStats.create((3,)).update(x[:4]).update(x[4:])
    # The prior (count 1e-4, mean 0, var 1) is negligible.
    np.testing.assert_allclose(stats.mean, np.mean(np.asarray(x), 0), rtol=1e-3)
    np.testing.assert_allclose(stats.var, np.var(np.asarray(x), 0), rtol=1e-3)


def test_vec_env_normalisation_wrappers():
    env, params = la.make_env("CartPole-v1")
    venv = la.VecEnv(env, 16, normalize_obs=True, normalize_reward=True, gamma=0.5)
    obs, state = venv.reset(params, key=jax.random.key(0))
    raw, _ = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(jax.random.key(0), 16), params)
    assert state.obs_stats is not None
    expected = (raw - state.obs_stats.mean[None]) / np.sqrt(state.obs_stats.var[None] + 1e-8)
    np.testing.assert_allclose(obs, expected, rtol=1e-5, atol=1e-5)
    actions = jnp.zeros((16,), jnp.int32)
    obs, state, reward, _term, _trunc, raw_reward = venv.step(
        state, actions, params, key=jax.random.key(1)
    )
    np.testing.assert_allclose(raw_reward, 1.0)  # CartPole pays 1 per step
    assert state.reward_stats is not None
    np.testing.assert_allclose(reward, raw_reward / np.sqrt(state.reward_stats.var + 1e-8))
    # Discounted-return accumulator: r + gamma * previous (0) on the first step.
    np.testing.assert_allclose(state.discounted_return, 1.0)


@pytest.mark.slow  # ~90 s of Brax compilation on the 2-core machine: `nox -s slow`
@pytest.mark.timeout(600)
def test_brax_adapter_truncates_and_auto_resets():
    pytest.importorskip("brax")
    env, params = la.make_env("brax/inverted_double_pendulum", episode_length=3)
    assert isinstance(env, la.BraxEnv)
    spec = la.action_spec(env, params)
    assert spec.continuous and (spec.low, spec.high) == (-1.0, 1.0)
    obs, state = env.reset(jax.random.key(0), params)
    assert obs.shape == env.observation_space(params).shape
    step = jax.jit(env.step)
    action = jnp.zeros(env.action_space(params).shape)
    flags = []
    for i in range(3):
        obs, state, _reward, term, trunc, _ = step(jax.random.key(i), state, action, params)
        flags.append((bool(term), bool(trunc)))
    # Upright pendulum with zero action does not fall in 3 steps: truncated at step 3.
    assert flags == [(False, False), (False, False), (False, True)]
    assert int(state.time) == 0  # auto-reset
    with pytest.raises(ValueError, match="unknown Brax environment"):
        la.BraxEnv("ur5e")
