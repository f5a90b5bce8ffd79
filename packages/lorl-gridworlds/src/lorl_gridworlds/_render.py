"""Pictures of gridworld states: an RGB array, and GIF/PNG files of rollouts."""

from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Int, PRNGKeyArray, UInt8

from ._core import EnvState
from ._level import Level

FLOOR = (236, 236, 236)
WALL = (70, 70, 70)
PADDING = (0, 0, 0)
AGENT = (40, 90, 220)
POSITIVE = (30, 160, 60)
NEGATIVE = (210, 50, 50)
GRID_LINE = 0.85  # floor pixels on cell borders are darkened by this factor


def _rgb(color: tuple[int, int, int]) -> Float[Array, "1 3"]:
    return jnp.asarray(color, jnp.float32)[None, :]


def render(
    state: EnvState, params: Level, cell_size: int = 16
) -> UInt8[Array, "pixels_h pixels_w 3"]:
    """An RGB picture of one state (pure JAX: `jit`/`vmap` it to render many).

    Floor is light grey, walls dark grey, canvas padding outside the grid black. Objects
    are green (positive reward) or red (negative), paler for smaller |reward|; the agent
    is a blue square drawn inside its cell, so an object under it stays visible.

    **Arguments:**

    - `state`: the state to draw.
    - `params`: its level.
    - `cell_size`: pixels per cell side (>= 4).

    **Returns:** `uint8[canvas_h * cell_size, canvas_w * cell_size, 3]`.
    """
    if cell_size < 4:
        raise ValueError(f"cell_size must be >= 4, got {cell_size}")
    ch, cw = params.walls.shape
    n = ch * cw
    cells = jnp.arange(n, dtype=jnp.int32)
    rows, cols = cells // cw, cells % cw
    outside = (rows >= params.height) | (cols >= params.width)
    base = jnp.where(
        outside[:, None],
        _rgb(PADDING),
        jnp.where(params.walls.reshape(n)[:, None], _rgb(WALL), _rgb(FLOOR)),
    )
    strength = jnp.clip(jnp.abs(params.rewards), 0.35, 1.0)[:, None]
    hue = jnp.where((params.rewards >= 0)[:, None], _rgb(POSITIVE), _rgb(NEGATIVE))
    obj_color = strength * hue + (1.0 - strength) * _rgb(FLOOR)
    at_cell = (state.objects[:, None] == cells[None, :]) & state.present[:, None]  # (k, n)
    has_obj = jnp.any(at_cell, axis=0)
    which = jnp.argmax(at_cell, axis=0)
    cell_color = jnp.where(has_obj[:, None], obj_color[which], base)
    img = cell_color.reshape(ch, cw, 3)
    img = jnp.repeat(jnp.repeat(img, cell_size, axis=0), cell_size, axis=1)
    py = jnp.arange(ch * cell_size)[:, None]
    px = jnp.arange(cw * cell_size)[None, :]
    border = (py % cell_size == 0) | (px % cell_size == 0)
    img = jnp.where(border[..., None], img * GRID_LINE, img)
    inset = cell_size // 4
    ar, ac = state.agent // cw, state.agent % cw
    in_agent = (
        (py >= ar * cell_size + inset)
        & (py < (ar + 1) * cell_size - inset)
        & (px >= ac * cell_size + inset)
        & (px < (ac + 1) * cell_size - inset)
    )
    img = jnp.where(in_agent[..., None], _rgb(AGENT)[None], img)
    return jnp.clip(jnp.round(img), 0, 255).astype(jnp.uint8)


def rollout_frames(
    env: Any,
    params: Level,
    num_steps: int,
    *,
    policy: Callable[[PRNGKeyArray, Array], Int[Array, ""]] | None = None,
    cell_size: int = 16,
    key: PRNGKeyArray,
) -> UInt8[Array, "steps pixels_h pixels_w 3"]:
    """Frames of one rollout (first frame: the reset state).

    **Arguments:**

    - `env`: a lorl gridworld.
    - `params`: the level.
    - `num_steps`: number of steps after the reset.
    - `policy`: `policy(key, obs) -> action`; uniformly random actions if None.
    - `cell_size`: pixels per cell side.
    - `key`: a PRNG key.

    **Returns:** `uint8[num_steps + 1, H, W, 3]`.
    """
    if num_steps < 0:
        raise ValueError(f"num_steps must be >= 0, got {num_steps}")

    def act(k: PRNGKeyArray, obs: Array) -> Array:
        if policy is None:
            return jax.random.randint(k, (), 0, env.num_actions)
        return policy(k, obs)

    @jax.jit
    def run(key: PRNGKeyArray) -> Array:
        key, reset_key = jax.random.split(key)
        obs, state = env.reset(reset_key, params)

        def body(carry, k):
            obs, state = carry
            k_act, k_step = jax.random.split(k)
            obs, state, *_ = env.step(k_step, state, act(k_act, obs), params)
            return (obs, state), render(state, params, cell_size)

        _, frames = jax.lax.scan(body, (obs, state), jax.random.split(key, num_steps))
        first = render(state, params, cell_size)[None]
        return jnp.concatenate([first, frames], axis=0)

    return run(key)


def save_frames(
    path: str | Path, frames: Any, *, fps: float = 8.0, columns: int | None = None
) -> Path:
    """Write frames as an animated GIF (`.gif`) or one PNG contact sheet (`.png`).

    **Arguments:**

    - `path`: output file; the suffix picks the format.
    - `frames`: `uint8[T, H, W, 3]` (or one frame `uint8[H, W, 3]`).
    - `fps`: GIF frame rate.
    - `columns`: PNG only: frames per row of the sheet (default: all in one row, at most
      10).

    **Returns:** the path written.
    """
    from PIL import Image

    path = Path(path)
    arr = np.asarray(frames)
    if arr.ndim == 3:
        arr = arr[None]
    if arr.ndim != 4 or arr.shape[-1] != 3 or arr.dtype != np.uint8:
        raise ValueError(f"frames must be uint8[T, H, W, 3], got {arr.dtype}{list(arr.shape)}")
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = path.suffix.lower()
    if suffix == ".gif":
        images = [Image.fromarray(f) for f in arr]
        images[0].save(
            path,
            save_all=True,
            append_images=images[1:],
            duration=max(1, round(1000 / fps)),
            loop=0,
        )
    elif suffix == ".png":
        cols = min(len(arr), 10) if columns is None else max(1, columns)
        rows = -(-len(arr) // cols)
        t, h, w, _ = arr.shape
        sheet = np.full((rows * h + (rows - 1) * 4, cols * w + (cols - 1) * 4, 3), 255, np.uint8)
        for i in range(t):
            r, c = divmod(i, cols)
            sheet[r * (h + 4) : r * (h + 4) + h, c * (w + 4) : c * (w + 4) + w] = arr[i]
        Image.fromarray(sheet).save(path)
    else:
        raise ValueError(f"unsupported file type {suffix!r}; use .gif or .png")
    return path
