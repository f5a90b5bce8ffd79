"""The six LPG gridworlds: specification, exact single-step dynamics, observations."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import lorl_gridworlds as lg

from .conftest import reset, state, step, step_env, tiny_level

# Optim4RL Appendix B, Tables 2-7 (independent transcription for the test).
PAPER = {
    "small_dense_short": (4, 6, [(1, 0, 0.5), (-1, 0.5, 0.5)], 50),
    "small_dense_long": (6, 4, [(1, 0, 0.5), (-1, 0.5, 0.5)], 500),
    "big_sparse_short": (10, 12, [(1, 0, 0.05)] * 2 + [(-1, 0.5, 0.05)] * 2, 50),
    "big_sparse_long": (12, 10, [(1, 0, 0.05)] * 2 + [(-1, 0.5, 0.05)] * 2, 500),
    "big_dense_short": (9, 13, [(1, 0, 0.5)] * 2 + [(-1, 0.5, 0.5)] * 2, 50),
    "big_dense_long": (13, 9, [(1, 0, 0.5)] * 2 + [(-1, 0.5, 0.5)] * 2, 500),
}


@pytest.mark.parametrize("name", list(PAPER))
def test_specification_matches_paper(name):
    h, w, objects, horizon = PAPER[name]
    env, params = lg.make(name)
    assert env.num_actions == 9
    assert env.action_space(params).n == 9
    assert env.observation_space(params).shape == (h, w, len(objects) + 1)
    assert tuple(params.walls.shape) == (h, w) and not bool(params.walls.any())
    np.testing.assert_array_equal(params.rewards, [o[0] for o in objects])
    np.testing.assert_array_equal(params.p_terminate, [o[1] for o in objects])
    np.testing.assert_allclose(params.p_respawn, [o[2] for o in objects])
    assert int(params.max_steps) == horizon
    assert float(params.reward_scale) == 1.0


@pytest.mark.parametrize("name", list(PAPER))
def test_reset_observation(name):
    h, w, objects, _ = PAPER[name]
    env, params = lg.make(name)
    for seed in range(3):
        obs, s = reset(env, jax.random.key(seed), params)
        assert obs.shape == (h, w, len(objects) + 1) and obs.dtype == jnp.float32
        obs = np.asarray(obs)
        assert set(np.unique(obs)) <= {0.0, 1.0}
        # One cell per object channel and one for the agent; all on distinct cells.
        np.testing.assert_array_equal(obs.sum(axis=(0, 1)), np.ones(len(objects) + 1))
        assert obs.sum(axis=-1).max() == 1
        assert int(s.time) == 0 and bool(s.present.all())
        ar, ac = divmod(int(s.agent), w)
        assert obs[ar, ac, -1] == 1
        for i, cell in enumerate(np.asarray(s.objects)):
            assert obs[cell // w, cell % w, i] == 1


# Action -> (d_row, d_col), Optim4RL reference order (independent transcription).
MOVES = {0: (0, 0), 1: (-1, 0), 2: (0, 1), 3: (1, 0), 4: (0, -1),
         5: (1, -1), 6: (1, 1), 7: (-1, 1), 8: (-1, -1)}  # fmt: skip


@pytest.mark.parametrize("start", [(1, 1), (0, 0), (2, 3), (0, 3), (2, 0)])
def test_every_move_and_border_clamping(tiny_env, start):
    level = tiny_level()
    r0, c0 = start
    for action, (dr, dc) in MOVES.items():
        s = state(r0 * 4 + c0, [11 if (r0, c0) != (2, 3) else 0], present=[False])
        _, s2, reward, terminated, truncated = step_env(
            tiny_env, jax.random.key(action), s, action, level
        )
        r, c = min(max(r0 + dr, 0), 2), min(max(c0 + dc, 0), 3)
        assert int(s2.agent) == r * 4 + c, (start, action)
        assert float(reward) == 0.0 and not bool(terminated) and not bool(truncated)
        assert int(s2.time) == 1


def test_collection_reward_and_removal(tiny_env):
    level = tiny_level(rewards=[-1.0], reward_scale=10.0)
    s = state(5, [6])  # agent (1,1), object (1,2): move right (action 2) onto it
    obs, s2, reward, terminated, _ = step_env(tiny_env, jax.random.key(0), s, 2, level)
    assert int(s2.agent) == 6
    assert float(reward) == -10.0
    assert not bool(s2.present[0]) and not bool(terminated)
    assert float(obs[..., 0].sum()) == 0.0  # absent object: its channel is empty
    # Staying on the cell of an absent object gives nothing.
    _, _, reward, _, _ = step_env(tiny_env, jax.random.key(1), s2, 0, level)
    assert float(reward) == 0.0


def test_termination_when_p_terminate_is_one(tiny_env):
    level = tiny_level(p_terminate=[1.0])
    s = state(5, [6])
    _, s2, reward, terminated, truncated = step_env(tiny_env, jax.random.key(0), s, 2, level)
    assert float(reward) == 1.0 and bool(terminated) and not bool(truncated)


def test_horizon_truncates_and_auto_resets(tiny_env):
    level = tiny_level(max_steps=3)
    s = state(0, [11], time=2)
    _, s2, _, terminated, truncated = step_env(tiny_env, jax.random.key(0), s, 0, level)
    assert bool(truncated) and not bool(terminated) and int(s2.time) == 3
    obs, s3, _, terminated, truncated, info = step(tiny_env, jax.random.key(0), s, 0, level)
    assert bool(truncated) and not bool(terminated)
    assert int(s3.time) == 0 and bool(s3.present.all())  # the next episode
    assert bool(info["truncated"]) and float(info["discount"]) == 1.0
    # The returned observation belongs to the new state; the final one to the old.
    np.testing.assert_array_equal(obs, tiny_env.get_obs(s3, level))
    np.testing.assert_array_equal(info["final_observation"], tiny_env.get_obs(s2, level))


def test_terminal_step_resets_and_reports_discount_zero(tiny_env):
    level = tiny_level(p_terminate=[1.0])
    s = state(5, [6], time=4)
    _, s2, reward, terminated, truncated, info = step(tiny_env, jax.random.key(3), s, 2, level)
    assert bool(terminated) and not bool(truncated) and float(reward) == 1.0
    assert int(s2.time) == 0 and float(info["discount"]) == 0.0


def test_lpg_respawns_in_the_step_of_collection(tiny_env):
    """LPG rule: an object collected this step may reappear at once (never on the agent)."""
    level = tiny_level(p_respawn=[1.0])
    for seed in range(20):
        _, s2, reward, _, _ = step_env(tiny_env, jax.random.key(seed), state(5, [6]), 2, level)
        assert float(reward) == 1.0
        assert bool(s2.present[0]) and int(s2.objects[0]) != int(s2.agent)


def test_out_of_range_action_is_stay(tiny_env):
    level = tiny_level()
    for action in (-1, 9, 1000):
        _, s2, *_ = step_env(tiny_env, jax.random.key(0), state(5, [11]), action, level)
        assert int(s2.agent) == 5 and int(s2.time) == 1


def test_reward_scale_from_make():
    env, params = lg.make("small_dense_short", reward_scale=100.0)
    assert float(params.reward_scale) == 100.0
    pos = int(np.argmax(np.asarray(params.rewards) > 0))
    s = state(0, [1 if i == pos else 10 + i for i in range(2)])
    _, _, reward, _, _ = step_env(env, jax.random.key(0), s, 2, params)
    assert float(reward) == 100.0


def _greedy_action(env, params, s):
    """Step towards the nearest present positive object, never onto a negative one."""
    h, w = env.spec.height, env.spec.width
    deltas = jnp.asarray(lg.LPG_ACTIONS)
    ar, ac = s.agent // w, s.agent % w
    orow, ocol = s.objects // w, s.objects % w
    pos = (params.rewards > 0) & s.present
    neg = (params.rewards < 0) & s.present
    dist = jnp.where(pos, jnp.maximum(jnp.abs(orow - ar), jnp.abs(ocol - ac)), 10**6)
    i = jnp.argmin(dist)
    nr = jnp.clip(ar + deltas[:, 0], 0, h - 1)
    nc = jnp.clip(ac + deltas[:, 1], 0, w - 1)
    bad = jnp.any(((nr * w + nc)[:, None] == s.objects[None, :]) & neg[None, :], axis=1)
    d = jnp.maximum(jnp.abs(orow[i] - nr), jnp.abs(ocol[i] - nc)).astype(jnp.float32)
    return jnp.argmin(jnp.where(jnp.any(pos), d, 0.0) + 100.0 * bad.astype(jnp.float32))


@pytest.mark.parametrize("name,paper_a2c", [("small_dense_short", 11.0), ("big_dense_long", 23.0)])
def test_paper_returns_are_reachable_and_random_is_near_zero(name, paper_a2c):
    """Cross-check against Optim4RL's reported A2C returns (about 11 and 23, unscaled):
    a simple greedy policy must reach at least that much (an RL agent cannot beat a
    better policy than exists), and a uniformly random policy must score about 0 (the
    positive and negative objects balance). Wrong horizons, respawn or termination rules
    move these numbers far off."""
    env, params = lg.make(name)

    def episodes(key, greedy):
        _, s = env.reset(key, params)

        def body(carry, k):
            s, ret, total, n = carry
            ka, ks = jax.random.split(k)
            a = _greedy_action(env, params, s) if greedy else jax.random.randint(ka, (), 0, 9)
            _, s, r, te, tr, _ = env.step(ks, s, a, params)
            done = te | tr
            total = total + jnp.where(done, ret + r, 0.0)
            return (s, jnp.where(done, 0.0, ret + r), total, n + done.astype(jnp.int32)), None

        init = (s, jnp.zeros(()), jnp.zeros(()), jnp.zeros((), jnp.int32))
        (_, _, total, n), _ = jax.lax.scan(body, init, jax.random.split(key, 3000))
        return total, n

    keys = jax.random.split(jax.random.key(0), 64)
    for greedy in (True, False):
        total, n = jax.jit(jax.vmap(lambda k, g=greedy: episodes(k, g)))(keys)
        mean = float(np.asarray(total).sum() / np.asarray(n).sum())
        if greedy:
            assert mean >= paper_a2c, mean
        else:
            assert abs(mean) < 0.5, mean
