"""`lorl_gridworlds.optim4rl_reference_view`: an LPG gridworld presented as the Optim4RL
reference code presents it (a diagnostic used by tools/bench_agents_quality.py)."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import lorl_gridworlds as lg


@pytest.fixture(scope="module")
def emulated():
    env, params = lg.make("big_dense_long")
    return env, lg.optim4rl_reference_view(env), params


def test_observation_is_the_reference_layout(emulated):
    env, ref, params = emulated
    key = jax.random.key(3)
    obs, state = ref.reset(key, params)
    ours, _ = env.reset(key, params)
    h, w, c = ours.shape
    assert obs.shape == ref.observation_space(params).shape == (c, h + 2, w + 2)
    obs = np.asarray(obs)
    # The wall border is all zeros; inside it, channel-first planes equal ours.
    assert obs[:, 0].sum() == obs[:, -1].sum() == obs[:, :, 0].sum() == obs[:, :, -1].sum() == 0
    np.testing.assert_array_equal(np.transpose(obs[:, 1:-1, 1:-1], (1, 2, 0)), np.asarray(ours))


@pytest.mark.parametrize(
    ("cell", "action", "ours", "reference"),
    [
        # (row, col) on the 13 x 9 grid; LPG actions: 2 (0,+1), 7 (-1,+1), 5 (+1,-1), 6 (+1,+1)
        ((0, 4), 7, (0, 5), (0, 4)),  # diagonal along the top edge: we slide, it stays
        ((12, 0), 5, (12, 0), (12, 0)),  # into the corner: both stay
        ((12, 3), 6, (12, 4), (12, 3)),  # diagonal along the bottom edge
        ((0, 4), 2, (0, 5), (0, 5)),  # straight along the edge: both move
        ((5, 5), 7, (4, 6), (4, 6)),  # interior diagonal: both move
    ],
)
def test_moves_follow_the_reference(emulated, cell, action, ours, reference):
    env, ref, params = emulated
    _, state = env.reset(jax.random.key(0), params)
    width = params.walls.shape[1]
    state = eqx.tree_at(lambda s: s.agent, state, jnp.int32(cell[0] * width + cell[1]))
    key = jax.random.key(1)
    _, s_ours, *_ = env.step_env(key, state, action, params)
    _, s_ref, *_ = ref.step_env(key, state, action, params)
    assert divmod(int(s_ours.agent), width) == ours
    assert divmod(int(s_ref.agent), width) == reference


def test_rejects_other_gridworlds():
    env, _ = lg.make("rand_all")
    with pytest.raises(ValueError, match="LPG gridworlds only"):
        lg.optim4rl_reference_view(env)
