"""Level distributions of OPEN (Appendix D, Tables 8-10) and the three mazes.

`sample_level(key, name)` is a pure function of the key: `jax.vmap` it over keys to draw
a batch of levels (OPEN's antithetic task sampling draws one level per population pair).
"""

import functools
import importlib.resources
from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import PRNGKeyArray

from ._core import sample_free_cell
from ._level import Level

MAZE_NAMES: tuple[str, ...] = ("standard_maze", "sixteen_rooms", "labyrinth")
DISTRIBUTIONS: tuple[str, ...] = ("all", "rand_dense", "rand_sparse", "rand_long", *MAZE_NAMES)

# Canvas each distribution uses by default: the largest grid it can produce.
DEFAULT_CANVAS: dict[str, int] = {
    "all": 10,  # OPEN Table 8: grid size U{4..10} (printed as the half-open [4, 11])
    "rand_dense": 11,  # OPEN Table 9
    "rand_sparse": 13,  # OPEN Table 9 (the reference code uses 7: variant="reference")
    "rand_long": 11,  # OPEN Table 9
    "standard_maze": 13,  # OPEN Table 10 / Figure 8
    "sixteen_rooms": 13,
    "labyrinth": 13,
}
DEFAULT_NUM_SLOTS = 5  # OPEN Table 8: at most 5 objects ([1, 6) printed half-open)
N_WALLS_ALL = 15  # OPEN Table 8


@functools.cache
def maze_layouts() -> dict[str, np.ndarray]:
    """The three 13x13 maze layouts (MiniMax designs, Apache-2.0) as `bool` wall masks."""
    text = (
        importlib.resources.files("lorl_gridworlds").joinpath("data/mazes.txt").read_text("utf-8")
    )
    layouts: dict[str, list[str]] = {}
    current = None
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("[") and line.endswith("]"):
            current = line[1:-1]
            layouts[current] = []
        elif current is not None and line and set(line) <= {"#", "."}:
            # A maze row ('#' wall, '.' free); rows may start with '#', so comments are
            # recognised as lines with other characters (e.g. "# Origin: ...").
            layouts[current].append(line)
    return {
        name: np.array([[c == "#" for c in row] for row in rows]) for name, rows in layouts.items()
    }


def _log_uniform(key: PRNGKeyArray, shape: tuple[int, ...], low: float, high: float) -> jax.Array:
    return jnp.exp(jax.random.uniform(key, shape, minval=np.log(low), maxval=np.log(high)))


def _pad_walls(
    grid_walls: jax.Array, size_h: jax.Array, size_w: jax.Array, canvas: int
) -> jax.Array:
    rows = jnp.arange(canvas)[:, None]
    cols = jnp.arange(canvas)[None, :]
    return grid_walls | (rows >= size_h) | (cols >= size_w)


def _fixed(
    canvas: int,
    num_slots: int,
    size: int,
    rewards: tuple[float, ...],
    p_terminate: tuple[float, ...],
    p_respawn: tuple[float, ...],
    types: tuple[int, ...],
    max_steps: int,
) -> Level:
    n = len(rewards)
    pad = num_slots - n

    def f32(x: tuple[float, ...]) -> jax.Array:
        return jnp.asarray(list(x) + [0.0] * pad, jnp.float32)

    size_arr = jnp.asarray(size, jnp.int32)
    return Level(
        height=size_arr,
        width=size_arr,
        walls=_pad_walls(jnp.zeros((canvas, canvas), bool), size_arr, size_arr, canvas),
        exists=jnp.arange(num_slots) < n,
        types=jnp.asarray(list(types) + [0] * pad, jnp.int32),
        rewards=f32(rewards),
        p_terminate=f32(p_terminate),
        p_respawn=f32(p_respawn),
        static_positions=jnp.asarray(False),
        object_cells=jnp.zeros((num_slots,), jnp.int32),
        start_cell=jnp.asarray(0, jnp.int32),
        max_steps=jnp.asarray(max_steps, jnp.int32),
        reward_scale=jnp.asarray(1.0, jnp.float32),
    )


def _sample_all(key: PRNGKeyArray, canvas: int, num_slots: int) -> Level:
    """OPEN Table 8 ('all' in the GROOVE code base)."""
    keys = jax.random.split(key, 8)
    size = jax.random.randint(keys[0], (), 4, 11, dtype=jnp.int32)  # U{4..10}
    n_objects = jax.random.randint(keys[1], (), 1, min(num_slots, 5) + 1, dtype=jnp.int32)
    # Type 0 is always rewarding (U(0, 1)); the others are U(-1, 1) (reference code).
    rewards = jax.random.uniform(keys[2], (num_slots,), minval=-1.0, maxval=1.0)
    rewards = rewards.at[0].set(jax.random.uniform(keys[3], ()))
    p_terminate = _log_uniform(keys[4], (num_slots,), 0.01, 1.0)
    p_respawn = _log_uniform(keys[5], (num_slots,), 0.001, 0.1)
    max_steps = jnp.round(_log_uniform(keys[6], (), 20.0, 750.0)).astype(jnp.int32)
    # 15 walls on distinct random cells of the grid, but never so many that the agent and
    # the objects would not fit (a 4x4 grid with 5 objects keeps 6 free cells).
    n_walls = jnp.minimum(N_WALLS_ALL, size * size - n_objects - 1)
    rows = jnp.arange(canvas)[:, None]
    cols = jnp.arange(canvas)[None, :]
    inside = ((rows < size) & (cols < size)).reshape(-1)
    noise = jnp.where(inside, jax.random.uniform(keys[7], (canvas * canvas,)), 2.0)
    rank = jnp.argsort(jnp.argsort(noise))
    wall_cells = (rank < n_walls) & inside
    exists = jnp.arange(num_slots) < n_objects
    zeros = jnp.zeros((num_slots,), jnp.float32)
    return Level(
        height=size,
        width=size,
        walls=(wall_cells | ~inside).reshape(canvas, canvas),
        exists=exists,
        types=jnp.arange(num_slots, dtype=jnp.int32),
        rewards=jnp.where(exists, rewards, zeros),
        p_terminate=jnp.where(exists, p_terminate, zeros),
        p_respawn=jnp.where(exists, p_respawn, zeros),
        static_positions=jnp.asarray(False),
        object_cells=jnp.zeros((num_slots,), jnp.int32),
        start_cell=jnp.asarray(0, jnp.int32),
        max_steps=max_steps,
        reward_scale=jnp.asarray(1.0, jnp.float32),
    )


def _sample_maze(key: PRNGKeyArray, name: str, canvas: int, num_slots: int) -> Level:
    """OPEN Table 10: fixed maze walls, 3 objects with sampled rules, static positions."""
    layout = maze_layouts()[name]
    h, w = layout.shape
    grid = np.ones((canvas, canvas), dtype=bool)
    grid[:h, :w] = layout
    walls = jnp.asarray(grid)
    n_objects = 3
    keys = jax.random.split(key, 5)
    rewards = jax.random.uniform(keys[0], (n_objects,))
    p_terminate = _log_uniform(keys[1], (n_objects,), 0.01, 1.0)
    p_respawn = _log_uniform(keys[2], (n_objects,), 0.001, 0.1)
    max_steps = jax.random.randint(keys[3], (), 25, 51, dtype=jnp.int32)  # U{25..50}
    # Start and object cells: distinct free cells drawn once per level, then fixed.
    u = jax.random.uniform(keys[4], (n_objects + 1,))
    free = ~walls.reshape(-1)
    cells = []
    for i in range(n_objects + 1):
        cell = sample_free_cell(u[i], free)
        free = free & (jnp.arange(canvas * canvas) != cell)
        cells.append(cell)
    pad = num_slots - n_objects

    def padded(x: jax.Array, fill: float | int) -> jax.Array:
        return jnp.concatenate([x, jnp.full((pad,), fill, x.dtype)])

    return Level(
        height=jnp.asarray(h, jnp.int32),
        width=jnp.asarray(w, jnp.int32),
        walls=walls,
        exists=jnp.arange(num_slots) < n_objects,
        types=jnp.arange(num_slots, dtype=jnp.int32),
        rewards=padded(rewards, 0.0),
        p_terminate=padded(p_terminate, 0.0),
        p_respawn=padded(p_respawn, 0.0),
        static_positions=jnp.asarray(True),
        object_cells=padded(jnp.stack(cells[1:]), 0),
        start_cell=cells[0],
        max_steps=max_steps,
        reward_scale=jnp.asarray(1.0, jnp.float32),
    )


def sample_level(
    key: PRNGKeyArray,
    name: str,
    *,
    canvas: int | None = None,
    num_slots: int = DEFAULT_NUM_SLOTS,
    variant: Literal["paper", "reference"] = "paper",
) -> Level:
    """Draw one level of a named distribution (pure; `vmap` it over keys).

    **Arguments:**

    - `key`: a PRNG key. Levels of `rand_dense`, `rand_sparse` and `rand_long` have fixed
      rules (only positions are random, at each reset), so the key does not change them.
    - `name`: one of `all` (OPEN's training distribution), `rand_dense`, `rand_sparse`,
      `rand_long`, `standard_maze`, `sixteen_rooms`, `labyrinth`.
    - `canvas`: canvas side (default: the distribution's largest grid, see
      `DEFAULT_CANVAS`); use one canvas for levels you want to batch together.
    - `num_slots`: object slots (default 5, the most any distribution uses).
    - `variant`: where the OPEN paper and its reference code disagree (`rand_sparse`: grid
      13 and no respawn in the paper; grid 7 and respawn probability 1 in the code),
      `"paper"` (default) or `"reference"`.

    **Returns:** a [`lorl_gridworlds.Level`][] on a `canvas x canvas` canvas.
    """
    if name == "rand_all":
        name = "all"
    if name not in DISTRIBUTIONS:
        raise ValueError(f"unknown level distribution {name!r}; valid: {', '.join(DISTRIBUTIONS)}")
    if variant not in ("paper", "reference"):
        raise ValueError(f"variant must be 'paper' or 'reference', got {variant!r}")
    sizes = {"all": 10, "rand_dense": 11, "rand_long": 11, "rand_sparse": 13}
    sizes.update(dict.fromkeys(MAZE_NAMES, 13))
    if name == "rand_sparse" and variant == "reference":
        sizes["rand_sparse"] = 7
    canvas = DEFAULT_CANVAS[name] if canvas is None else canvas
    if name == "rand_sparse" and variant == "reference" and canvas == DEFAULT_CANVAS[name]:
        canvas = 7
    if canvas < sizes[name]:
        raise ValueError(
            f"distribution {name!r} has grids up to {sizes[name]}x{sizes[name]}, larger than "
            f"the {canvas}x{canvas} canvas; use canvas >= {sizes[name]}"
        )
    needed = {"all": 5, "rand_dense": 4, "rand_sparse": 2, "rand_long": 4}.get(name, 3)
    if num_slots < needed:
        raise ValueError(f"distribution {name!r} needs num_slots >= {needed}, got {num_slots}")
    if name == "all":
        return _sample_all(key, canvas, num_slots)
    if name in MAZE_NAMES:
        return _sample_maze(key, name, canvas, num_slots)
    if name == "rand_dense":  # OPEN Table 9
        return _fixed(
            canvas, num_slots, 11,
            rewards=(1.0, 1.0, -1.0, -1.0),
            p_terminate=(0.0, 0.0, 0.5, 0.0),
            p_respawn=(0.05, 0.05, 0.1, 0.5),
            types=(0, 0, 1, 2),
            max_steps=500,
        )  # fmt: skip
    if name == "rand_long":  # OPEN Table 9
        return _fixed(
            canvas, num_slots, 11,
            rewards=(1.0, 1.0, -1.0, -1.0),
            p_terminate=(0.0, 0.0, 0.5, 0.5),
            p_respawn=(0.01, 0.01, 1.0, 1.0),
            types=(0, 0, 1, 1),
            max_steps=1000,
        )  # fmt: skip
    # rand_sparse, OPEN Table 9 (paper) or the reference code's values.
    respawn = (1.0, 1.0) if variant == "reference" else (0.0, 0.0)
    return _fixed(
        canvas, num_slots, sizes["rand_sparse"],
        rewards=(-1.0, 1.0),
        p_terminate=(1.0, 1.0),
        p_respawn=respawn,
        types=(0, 1),
        max_steps=50,
    )  # fmt: skip
