"""OPEN's parameterised gridworld: level distributions, mazes, walls, observations."""

import equinox as eqx
import jax
import numpy as np
import pytest

import lorl_gridworlds as lg

from .conftest import reset, state, step_env

N_LEVELS = 256


@eqx.filter_jit
def sample_many(key, name, canvas=None):
    return jax.vmap(lambda k: lg.sample_level(k, name, canvas=canvas))(
        jax.random.split(key, N_LEVELS)
    )


@pytest.fixture(scope="module")
def all_levels():
    return sample_many(jax.random.key(0), "all")


def test_all_distribution_ranges(all_levels):
    """OPEN Table 8 (grid U{4..10}, 1-5 objects, 15 walls, log-uniform rules)."""
    lv = jax.tree_util.tree_map(np.asarray, all_levels)
    lg.validate_level(all_levels)  # batch check: objects fit, padding is wall, ...
    assert lv.walls.shape == (N_LEVELS, 10, 10)
    np.testing.assert_array_equal(lv.height, lv.width)
    assert set(np.unique(lv.height)) == set(range(4, 11))
    n_objects = lv.exists.sum(-1)
    assert set(np.unique(n_objects)) == {1, 2, 3, 4, 5}
    # Walls inside the grid: 15, unless objects + agent would not fit.
    rows = np.arange(10)[None, :, None]
    cols = np.arange(10)[None, None, :]
    inside = (rows < lv.height[:, None, None]) & (cols < lv.width[:, None, None])
    walls_inside = (lv.walls & inside).sum((1, 2))
    expected = np.minimum(15, lv.height * lv.width - n_objects - 1)
    np.testing.assert_array_equal(walls_inside, expected)
    ex = lv.exists
    assert np.all((lv.p_terminate[ex] >= 0.01) & (lv.p_terminate[ex] <= 1.0))
    assert np.all((lv.p_respawn[ex] >= 0.001) & (lv.p_respawn[ex] <= 0.1))
    assert np.all((lv.rewards[ex] >= -1) & (lv.rewards[ex] <= 1))
    assert np.all(lv.rewards[:, 0] >= 0)  # type 0 is rewarding
    assert lv.rewards[ex].min() < -0.5 and lv.rewards[ex].max() > 0.5
    assert np.all((lv.max_steps >= 20) & (lv.max_steps <= 750))
    # log-uniform: about half of the horizons lie below the geometric mean sqrt(20 * 750).
    frac = np.mean(lv.max_steps < np.sqrt(20 * 750))
    assert 0.4 < frac < 0.6
    assert not np.any(lv.p_terminate[~ex]) and not np.any(lv.rewards[~ex])


def test_fixed_distributions_match_paper_table_9():
    lv = lg.sample_level(jax.random.key(0), "rand_dense")
    assert lv.walls.shape == (11, 11) and int(lv.height) == 11 and int(lv.max_steps) == 500
    np.testing.assert_allclose(lv.rewards[:4], [1, 1, -1, -1])
    np.testing.assert_allclose(lv.p_terminate[:4], [0, 0, 0.5, 0])
    np.testing.assert_allclose(lv.p_respawn[:4], [0.05, 0.05, 0.1, 0.5])
    lv = lg.sample_level(jax.random.key(0), "rand_long")
    assert int(lv.max_steps) == 1000 and int(lv.height) == 11
    np.testing.assert_allclose(lv.p_terminate[:4], [0, 0, 0.5, 0.5])
    np.testing.assert_allclose(lv.p_respawn[:4], [0.01, 0.01, 1.0, 1.0])
    lv = lg.sample_level(jax.random.key(0), "rand_sparse")
    assert int(lv.height) == 13 and int(lv.max_steps) == 50 and int(lv.exists.sum()) == 2
    np.testing.assert_allclose(lv.rewards[:2], [-1, 1])
    np.testing.assert_allclose(lv.p_terminate[:2], [1, 1])
    np.testing.assert_allclose(lv.p_respawn[:2], [0, 0])
    ref = lg.sample_level(jax.random.key(0), "rand_sparse", variant="reference")
    assert int(ref.height) == 7 and ref.walls.shape == (7, 7)
    np.testing.assert_allclose(ref.p_respawn[:2], [1, 1])


@pytest.mark.parametrize("name", lg.MAZE_NAMES)
def test_mazes_match_the_shipped_layouts(name):
    text = (
        __import__("pathlib").Path(__file__).parents[2] / "packages/lorl-gridworlds/src"
        "/lorl_gridworlds/data/mazes.txt"
    ).read_text()
    block = text.split(f"[{name}]")[1].strip().split("\n\n")[0].splitlines()
    expected = np.array([[ch == "#" for ch in row.strip()] for row in block[:13]])
    assert expected.shape == (13, 13)
    levels = sample_many(jax.random.key(1), name)
    lv = jax.tree_util.tree_map(np.asarray, levels)
    np.testing.assert_array_equal(lv.walls[0], expected)
    assert np.all(lv.static_positions) and np.all(lv.exists.sum(-1) == 3)
    assert np.all((lv.max_steps >= 25) & (lv.max_steps <= 50))
    assert np.all((lv.rewards[:, :3] >= 0) & (lv.rewards[:, :3] <= 1))
    flat = lv.walls.reshape(N_LEVELS, -1)
    cells = np.concatenate([lv.start_cell[:, None], lv.object_cells[:, :3]], axis=1)
    assert not np.any(np.take_along_axis(flat, cells, axis=1)), "fixed cell inside a wall"
    assert all(len(set(c)) == 4 for c in cells)
    lg.validate_level(levels)


def test_maze_positions_are_static():
    env, level = lg.make("standard_maze")
    for seed in range(3):
        _, s = reset(env, jax.random.key(seed), level)
        assert int(s.agent) == int(level.start_cell)
        np.testing.assert_array_equal(s.objects[:3], level.object_cells[:3])


def test_walls_block_moves():
    # 3x3 grid, wall in the centre; agent at (0, 1) moving down (action 1) is blocked.
    walls = np.zeros((3, 3), bool)
    walls[1, 1] = True
    level = lg.make_level(
        height=3, width=3, walls=walls, rewards=[1.0], p_terminate=[0.0], p_respawn=[0.0],
        max_steps=10, canvas=(5, 5), num_slots=5,
    )  # fmt: skip
    env = lg.LevelGridworld(distribution="all", canvas=5)
    s = state(1, [12, 0, 0, 0, 0], present=[False] * 5)
    moves = {0: (0, 1), 1: (0, 1), 2: (0, 0), 3: (0, 2), 4: (0, 1)}  # up/down/left/right/no-op
    for action, (r, c) in moves.items():
        _, s2, *_ = step_env(env, jax.random.key(0), s, action, level)
        assert int(s2.agent) == r * 5 + c, action
    # The padding outside the 3x3 grid is wall too: from (0, 2) moving right stays.
    _, s2, *_ = step_env(env, jax.random.key(0), state(2, [12, 0, 0, 0, 0], [False] * 5), 3, level)
    assert int(s2.agent) == 2


def test_collection_wins_over_respawn():
    """OPEN rule: an object collected this step does not reappear in the same step."""
    level = lg.make_level(
        height=3, width=3, rewards=[0.5], p_terminate=[0.0], p_respawn=[1.0], max_steps=10,
        canvas=(5, 5), num_slots=5,
    )  # fmt: skip
    env = lg.LevelGridworld(distribution="all", canvas=5)
    s = state(0, [1, 0, 0, 0, 0], present=[True, False, False, False, False])
    _, s2, reward, *_ = step_env(env, jax.random.key(0), s, 3, level)  # right, onto it
    assert float(reward) == 0.5 and not bool(s2.present[0])
    _, s3, *_ = step_env(env, jax.random.key(1), s2, 4, level)  # next step: respawns
    assert bool(s3.present[0]) and int(s3.objects[0]) != int(s3.agent)
    assert int(s3.objects[0]) // 5 < 3 and int(s3.objects[0]) % 5 < 3  # inside the grid


def test_flat_observation_layout():
    env, level = lg.make("rand_dense")  # types [0, 0, 1, 2] on an 11x11 canvas
    n = 121
    s = state(13, [0, 5, 7, 120, 0], present=[True, True, True, False, False], time=250)
    obs = np.asarray(env.get_obs(s, level))
    assert obs.shape == (6 * n + 1,) == env.observation_space(level).shape
    assert obs[13] == 1 and obs[:n].sum() == 1  # agent one-hot
    t0, t1, t2 = obs[n : 2 * n], obs[2 * n : 3 * n], obs[3 * n : 4 * n]
    assert t0[0] == 1 and t0[5] == 1 and t0.sum() == 2  # both type-0 objects
    assert t1[7] == 1 and t1.sum() == 1
    assert t2.sum() == 0  # the type-2 object is absent
    assert obs[4 * n : 6 * n].sum() == 0
    assert obs[-1] == pytest.approx(0.25)  # time * 0.001


def test_spatial_observation_layout():
    env, level = lg.make("rand_dense", obs_mode="spatial")
    s = state(13, [0, 5, 7, 120, 0], present=[True, True, True, False, False])
    obs = np.asarray(env.get_obs(s, level))
    assert obs.shape == (11, 11, 7) == env.observation_space(level).shape
    assert obs[1, 2, 0] == 1 and obs[..., 0].sum() == 1  # agent at cell 13 = (1, 2)
    np.testing.assert_array_equal(obs[..., 1], np.asarray(level.walls))
    assert obs[0, 0, 2] == 1 and obs[0, 5, 2] == 1 and obs[0, 7, 3] == 1


@pytest.mark.parametrize("name", ["all", "standard_maze"])
def test_objects_and_agent_never_in_walls(name):
    """Random rollouts over many levels: agent and present objects always on free cells."""
    env, _ = lg.make(name)
    levels = sample_many(jax.random.key(2), name)

    @jax.jit
    def rollout(keys, levels):
        def one(key, level):
            obs, s = env.reset(key, level)

            def body(s, k):
                ka, ks = jax.random.split(k)
                a = jax.random.randint(ka, (), 0, 5)
                _, s, *_ = env.step(ks, s, a, level)
                return s, s

            _, traj = jax.lax.scan(body, s, jax.random.split(key, 100))
            return traj

        return jax.vmap(one)(keys, levels)

    traj = rollout(jax.random.split(jax.random.key(3), N_LEVELS), levels)
    flat_walls = np.asarray(levels.walls).reshape(N_LEVELS, 1, -1)
    agent = np.asarray(traj.agent)
    assert not np.any(np.take_along_axis(flat_walls[:, 0], agent, axis=1))
    objects = np.asarray(traj.objects)  # (levels, time, k)
    present = np.asarray(traj.present)
    on_wall = np.take_along_axis(
        np.broadcast_to(flat_walls[..., None, :], (*objects.shape, flat_walls.shape[-1])),
        objects[..., None],
        -1,
    )[..., 0]
    assert not np.any(on_wall & present)
    # Distinct cells: no two present objects share a cell, none under the agent.
    for lvl in range(0, N_LEVELS, 17):
        for t in range(0, 100, 7):
            cells = objects[lvl, t][present[lvl, t]]
            assert len(set(cells)) == len(cells)
            if name == "all":
                assert agent[lvl, t] not in set(cells)
