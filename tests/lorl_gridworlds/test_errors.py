"""Bad input is rejected at the public boundary with a message saying what is allowed."""

import jax
import numpy as np
import pytest

import lorl_gridworlds as lg


def test_unknown_name_lists_valid_names_and_suggests():
    with pytest.raises(ValueError, match="small_dense_short") as info:
        lg.make("small_dense_shrot")
    assert "Did you mean 'small_dense_short'" in str(info.value)
    assert "labyrinth" in str(info.value)
    with pytest.raises(ValueError, match="valid: all, rand_dense"):
        lg.sample_level(jax.random.key(0), "no_such_level")
    with pytest.raises(ValueError, match="valid names"):
        lg.lpg_level("nope")


def test_objects_that_cannot_fit_are_rejected():
    walls = np.ones((2, 2), bool)
    walls[0, 0] = False
    walls[0, 1] = False
    with pytest.raises(ValueError, match="need 3 free cells but the level has only 2"):
        lg.make_level(
            height=2, width=2, walls=walls, rewards=[1.0, -1.0], p_terminate=0.0,
            p_respawn=0.0, max_steps=5,
        )  # fmt: skip


def test_grid_larger_than_canvas_is_rejected():
    with pytest.raises(ValueError, match="does not fit in the 4x4 canvas"):
        lg.make_level(
            height=5, width=3, rewards=[1.0], p_terminate=0.0, p_respawn=0.0, max_steps=5,
            canvas=(4, 4),
        )  # fmt: skip
    with pytest.raises(ValueError, match="use canvas >= 13"):
        lg.sample_level(jax.random.key(0), "labyrinth", canvas=10)


@pytest.mark.parametrize(
    "field,value,match",
    [
        ("p_terminate", 1.5, "p_terminate must be probabilities in \\[0, 1\\]"),
        ("p_respawn", -0.1, "p_respawn must be probabilities"),
        ("p_respawn", float("nan"), "p_respawn must be probabilities"),
        ("rewards", float("inf"), "rewards must be finite"),
        ("max_steps", 0, "max_steps must be >= 1"),
    ],
)
def test_out_of_range_values_are_rejected(field, value, match):
    kwargs = dict(height=3, width=3, rewards=[1.0], p_terminate=0.5, p_respawn=0.5, max_steps=5)
    kwargs[field] = [value] if field == "rewards" else value
    with pytest.raises(ValueError, match=match):
        lg.make_level(**kwargs)


def test_static_cells_in_walls_or_coinciding_are_rejected():
    walls = np.zeros((3, 3), bool)
    walls[1, 1] = True
    common = dict(height=3, width=3, walls=walls, rewards=[1.0], p_terminate=0.0,
                  p_respawn=0.0, max_steps=5)  # fmt: skip
    with pytest.raises(ValueError, match="is a wall"):
        lg.make_level(**common, object_cells=[4], start_cell=0)
    with pytest.raises(ValueError, match="distinct"):
        lg.make_level(**common, object_cells=[0], start_cell=0)
    with pytest.raises(ValueError, match="give both"):
        lg.make_level(**common, object_cells=[0])


def test_level_for_another_canvas_is_rejected_by_the_environment():
    env, _ = lg.make("all")  # 10x10 canvas
    maze = lg.sample_level(jax.random.key(0), "standard_maze")  # 13x13
    with pytest.raises(ValueError, match="expects levels on a 10x10 canvas"):
        env.reset(jax.random.key(0), maze)
    env13, _ = lg.make("all", canvas=13)
    obs, _ = env13.reset(jax.random.key(0), maze)  # same canvas: fine
    assert obs.shape == (6 * 169 + 1,)


def test_batched_level_without_vmap_is_rejected():
    env, _ = lg.make("all")
    levels = jax.vmap(lambda k: lg.sample_level(k, "all"))(jax.random.split(jax.random.key(0), 2))
    with pytest.raises(ValueError, match="vmap over the batch"):
        env.reset(jax.random.key(0), levels)


def test_bad_make_arguments():
    with pytest.raises(ValueError, match="apply to level distributions only"):
        lg.make("small_dense_short", canvas=12)
    with pytest.raises(ValueError, match="reward_scale applies to LPG"):
        lg.make("all", reward_scale=10.0)
    with pytest.raises(ValueError, match="obs_mode must be"):
        lg.make("all", obs_mode="pixels")
    # Without the test suite's runtime type checker this is our ValueError; with it, the
    # annotation (Literal["paper", "reference"]) already rejects the value.
    with pytest.raises((ValueError, TypeError), match="variant|Literal"):
        lg.sample_level(jax.random.key(0), "rand_sparse", variant="other")  # type: ignore[arg-type]
