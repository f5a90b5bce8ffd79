"""The gymnax 1.x interface: gymnax's own wrappers drive our environments, and one loop
runs gymnax environments and ours unchanged; jit/vmap without re-tracing; determinism."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import lorl_gridworlds as lg

gymnax = pytest.importorskip("gymnax")
from gymnax.environments import spaces  # noqa: E402
from gymnax.wrappers.purerl import FlattenObservationWrapper, LogWrapper  # noqa: E402


def generic_rollout(env, params, key, n_steps=60):
    """Code written for gymnax environments (random policy, auto-reset)."""
    key, k0 = jax.random.split(key)
    obs, st = env.reset(k0, params)

    def body(carry, k):
        obs, st = carry
        ka, ks = jax.random.split(k)
        action = env.action_space(params).sample(ka)
        obs, st, reward, terminated, truncated, info = env.step(ks, st, action, params)
        return (obs, st), (reward, terminated | truncated)

    _, (rewards, dones) = jax.lax.scan(body, (obs, st), jax.random.split(key, n_steps))
    return obs, rewards, dones


def test_spaces_are_gymnax_spaces():
    env, params = lg.make("big_dense_long")
    assert isinstance(env.action_space(params), spaces.Discrete)
    assert isinstance(env.observation_space(params), spaces.Box)
    a = env.action_space(params).sample(jax.random.key(0))
    assert bool(env.action_space(params).contains(a))


def test_same_code_runs_gymnax_and_ours():
    with jax.numpy_dtype_promotion("standard"):  # gymnax's own code promotes implicitly
        g_env, g_params = gymnax.make("CartPole-v1")
        _, g_rewards, _ = jax.jit(lambda k: generic_rollout(g_env, g_params, k))(jax.random.key(0))
    env, params = lg.make("small_dense_short")
    obs, rewards, dones = jax.jit(lambda k: generic_rollout(env, params, k))(jax.random.key(0))
    assert g_rewards.shape == rewards.shape == (60,)
    assert obs.shape == env.observation_space(params).shape
    assert bool(dones[49])  # the horizon (50 steps) ends the first episode at the latest


def test_gymnax_wrappers_drive_our_environments():
    env, params = lg.make("small_dense_short")
    wrapped = LogWrapper(FlattenObservationWrapper(env))
    assert wrapped.observation_space(params).shape == (4 * 6 * 3,)
    with jax.numpy_dtype_promotion("standard"):  # LogWrapper computes `1 - done`
        obs, st = wrapped.reset(jax.random.key(0), params)
        assert obs.shape == (72,)

        def body(st, k):
            ka, ks = jax.random.split(k)
            a = jax.random.randint(ka, (), 0, 9)
            obs, st, reward, terminated, truncated, info = wrapped.step(ks, st, a, params)
            return st, (reward, info["returned_episode"], info["returned_episode_returns"])

        _, (rewards, returned, returns) = jax.lax.scan(
            body, st, jax.random.split(jax.random.key(1), 200)
        )
    returned = np.asarray(returned)
    # Horizon 50: at least 4 episodes end within 200 steps, and the logged episode returns
    # equal the sums of the rewards of those episodes.
    ends = np.flatnonzero(returned)
    assert len(ends) >= 4
    rewards = np.asarray(rewards)
    starts = np.concatenate([[0], ends[:-1] + 1])
    for s, e in zip(starts, ends, strict=True):
        assert np.asarray(returns)[e] == pytest.approx(rewards[s : e + 1].sum())


def test_jit_vmap_over_keys_and_levels_without_retracing():
    env, _ = lg.make("all")

    @eqx.filter_jit
    @eqx.debug.assert_max_traces(max_traces=1)
    def run(keys, levels):
        def one(key, level):
            obs, st = env.reset(key, level)
            obs, st, reward, *_ = env.step(key, st, jnp.asarray(1), level)
            return obs, reward

        return jax.vmap(one)(keys, levels)

    for seed in range(3):
        keys = jax.random.split(jax.random.key(seed), 8)
        levels = jax.vmap(lambda k: lg.sample_level(k, "all"))(
            jax.random.split(jax.random.key(100 + seed), 8)
        )
        obs, _ = run(keys, levels)  # new keys and new levels (of other sizes): no re-trace
        assert obs.shape == (8, 601)
    assert len(set(np.asarray(levels.height).tolist())) > 1  # grids of different sizes


def test_level_values_never_retrace():
    env, params = lg.make("small_dense_short")

    @eqx.filter_jit
    @eqx.debug.assert_max_traces(max_traces=1)
    def one_step(key, level):
        obs, st = env.reset(key, level)
        return env.step(key, st, jnp.asarray(2), level)[2]

    for scale in (1.0, 10.0, 100.0):
        level = lg.lpg_level("small_dense_short", reward_scale=scale)
        one_step(jax.random.key(0), level)


def test_same_key_same_trajectory_different_key_different():
    env, params = lg.make("big_sparse_long")
    run = jax.jit(lambda k: generic_rollout(env, params, k, n_steps=100))
    a = run(jax.random.key(7))
    b = run(jax.random.key(7))
    c = run(jax.random.key(8))
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a[0], c[0])


def test_default_params_is_used_when_params_is_none():
    env, params = lg.make("small_dense_long")
    obs_a, st_a = env.reset(jax.random.key(0))
    obs_b, st_b = env.reset(jax.random.key(0), params)
    np.testing.assert_array_equal(obs_a, obs_b)
    out = env.step(jax.random.key(1), st_a, 3)
    np.testing.assert_array_equal(out[0], env.step(jax.random.key(1), st_b, 3, params)[0])
