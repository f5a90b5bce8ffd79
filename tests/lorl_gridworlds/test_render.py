"""Rendering to RGB arrays and saving rollouts as GIF/PNG."""

import jax
import numpy as np
import pytest
from PIL import Image

import lorl_gridworlds as lg

from .conftest import state


def test_render_colours_known_cells():
    env, params = lg.make("small_dense_short")  # object 0: +1 (green), object 1: -1 (red)
    s = state(0, [7, 23])
    img = np.asarray(env.render(s, params, cell_size=8))
    assert img.shape == (4 * 8, 6 * 8, 3) and img.dtype == np.uint8
    centre = lambda cell: img[(cell // 6) * 8 + 4, (cell % 6) * 8 + 4]
    np.testing.assert_array_equal(centre(0), [40, 90, 220])  # agent: blue
    assert centre(7)[1] > centre(7)[0]  # positive object: green
    assert centre(23)[0] > centre(23)[1]  # negative object: red
    np.testing.assert_array_equal(centre(12), [236, 236, 236])  # floor


def test_render_walls_and_padding():
    env, params = lg.make("all")
    _, s = env.reset(jax.random.key(0), params)
    img = np.asarray(lg.render(s, params, 4))
    h, w = int(params.height), int(params.width)
    walls = np.asarray(params.walls)
    for r in range(10):
        for c in range(10):
            px = img[r * 4 + 2, c * 4 + 2]
            if r >= h or c >= w:
                np.testing.assert_array_equal(px, [0, 0, 0])  # padding: black
            elif walls[r, c]:
                np.testing.assert_array_equal(px, [70, 70, 70])  # wall: dark grey


def test_rollout_frames_and_files(tmp_path):
    env, params = lg.make("big_dense_short")
    frames = lg.rollout_frames(env, params, 5, cell_size=4, key=jax.random.key(0))
    assert frames.shape == (6, 9 * 4, 13 * 4, 3)
    gif = lg.save_frames(tmp_path / "roll.gif", frames, fps=10.0)
    with Image.open(gif) as im:
        assert im.size == (13 * 4, 9 * 4)
        # Pillow merges identical consecutive frames (adding up their durations), so the
        # total duration, not the frame count, must match: 6 frames at 10 fps (GIF stores
        # centiseconds).
        total = 0
        for i in range(im.n_frames):
            im.seek(i)
            total += im.info["duration"]
        assert total == 6 * 100
    png = lg.save_frames(tmp_path / "roll.png", frames, columns=3)
    with Image.open(png) as im:
        assert im.size == (3 * 52 + 2 * 4, 2 * 36 + 4)
    with pytest.raises(ValueError, match="use .gif or .png"):
        lg.save_frames(tmp_path / "roll.bmp", frames)
    with pytest.raises(ValueError, match="uint8"):
        lg.save_frames(tmp_path / "x.png", np.zeros((2, 4, 4), np.float32))
