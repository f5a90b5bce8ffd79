"""Stochastic dynamics: termination, respawn and placement probabilities (fixed seeds).

Each test draws many independent transitions from one hand-built state and compares
frequencies with the specified probabilities (binomial: 4.5 standard deviations; cell
distributions: a chi-square statistic against a generous normal bound).
"""

import equinox as eqx
import jax
import numpy as np

import lorl_gridworlds as lg

from .conftest import state, tiny_level

N = 20_000


@eqx.filter_jit
def many_steps(env, key, s, action, level):
    keys = jax.random.split(key, N)
    return jax.vmap(lambda k: env.step_env(k, s, action, level))(keys)


@eqx.filter_jit
def many_resets(env, key, level):
    return jax.vmap(lambda k: env.reset_env(k, level))(jax.random.split(key, N))


def assert_binomial(successes, p, n=N):
    sd = np.sqrt(p * (1 - p) / n)
    assert abs(successes / n - p) < 4.5 * sd, (successes / n, p)


def assert_uniform(cells, allowed):
    """`cells` uniform over the `allowed` cell indices (and never elsewhere)."""
    counts = np.bincount(cells, minlength=max(allowed) + 1)
    outside = np.setdiff1d(np.arange(len(counts)), allowed)
    hits = outside[counts[outside] > 0]
    assert counts[outside].sum() == 0, f"cells outside the allowed set: {hits}"
    observed = counts[allowed]
    expected = len(cells) / len(allowed)
    chi2 = ((observed - expected) ** 2 / expected).sum()
    df = len(allowed) - 1
    assert chi2 < df + 5 * np.sqrt(2 * df), (chi2, df)


def test_termination_probability(tiny_env):
    level = tiny_level(p_terminate=[0.3], p_respawn=[0.0])
    _, s2, reward, terminated, _ = many_steps(tiny_env, jax.random.key(0), state(5, [6]), 2, level)
    assert np.all(np.asarray(reward) == 1.0)
    assert_binomial(int(np.sum(terminated)), 0.3)


def test_respawn_probability(tiny_env):
    level = tiny_level(p_respawn=[0.05])
    _, s2, _, _, _ = many_steps(tiny_env, jax.random.key(1), state(5, [0], [False]), 0, level)
    assert_binomial(int(np.sum(s2.present[:, 0])), 0.05)


def test_respawn_position_is_uniform_over_unoccupied_cells():
    # 3x4 grid, three objects; objects 1 and 2 present at cells 0 and 11, the agent on 5.
    level = lg.make_level(
        height=3, width=4, rewards=[1.0, 1.0, 1.0], p_terminate=0.0, p_respawn=[1.0, 0.0, 0.0],
        max_steps=10,
    )  # fmt: skip
    env = lg.LPGGridworld(lg.LPGSpec("t3", 3, 4, ((1.0, 0.0, 1.0),) * 3, 10, 1.0))
    s = state(5, [0, 0, 11], [False, True, True])
    _, s2, _, _, _ = many_steps(env, jax.random.key(2), s, 0, level)
    assert np.all(np.asarray(s2.present[:, 0]))
    allowed = [c for c in range(12) if c not in (0, 5, 11)]
    assert_uniform(np.asarray(s2.objects[:, 0]), allowed)


def test_reset_placement_is_uniform_and_distinct():
    env, level = lg.make("big_dense_long")
    _, s = many_resets(env, jax.random.key(3), level)
    assert_uniform(np.asarray(s.agent), list(range(13 * 9)))
    assert_uniform(np.asarray(s.objects[:, 2]), list(range(13 * 9)))
    cells = np.concatenate([np.asarray(s.agent)[:, None], np.asarray(s.objects)], axis=1)
    assert all(len(set(row)) == 5 for row in cells[:2000])


def test_reset_in_a_walled_level_is_uniform_over_free_cells():
    level = lg.sample_level(jax.random.key(4), "all")
    env = lg.LevelGridworld(distribution="all")
    _, s = many_resets(env, jax.random.key(5), level)
    free = np.flatnonzero(~np.asarray(level.walls).reshape(-1))
    assert_uniform(np.asarray(s.agent), list(free))
