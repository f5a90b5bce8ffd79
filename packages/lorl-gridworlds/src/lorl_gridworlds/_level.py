"""A level: everything that describes one gridworld task, as arrays (the `EnvParams`).

Every gridworld in this package -- the six LPG gridworlds of Optim4RL and the
parameterised levels of OPEN -- is one `Level` on a fixed canvas. Because every field is
an array of a fixed shape (the canvas and the number of object slots are the only static
sizes), levels of different grid sizes, object counts and rules batch together: `vmap`
over a stacked `Level` works, and changing a level's values never re-traces.
"""

from typing import Any

import equinox as eqx
import jax
import jax.core
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float, Int


def _is_concrete(x: Any) -> bool:
    return not isinstance(x, jax.core.Tracer)


class Level(eqx.Module):
    """One gridworld task (the environment parameters of the gymnax interface).

    Cells are addressed by their flat index `row * canvas_width + col` on the canvas.
    The playable grid is the top-left `height x width` rectangle; every canvas cell
    outside it is a wall, so one canvas holds grids of any size up to its own.

    Object slots: a level has `k` object slots (a static size of the environment);
    `exists[i]` says whether slot `i` holds an object in this level.

    Build levels with [`lorl_gridworlds.lpg_level`][], [`lorl_gridworlds.sample_level`][]
    or [`lorl_gridworlds.make_level`][]; the constructor checks concrete values (a level
    built inside `jit`/`vmap` is not checked: the samplers only produce valid levels).

    **Fields:**

    - `height`, `width`: size of the playable grid (`int32` scalars).
    - `walls`: `bool[canvas_h, canvas_w]`, True for a wall (including the padding).
    - `exists`: `bool[k]`, which object slots are used.
    - `types`: `int32[k]`, object type of each slot (one observation channel per type in
      the OPEN gridworld).
    - `rewards`, `p_terminate`, `p_respawn`: `float32[k]`, per object: reward on
      collection (before `reward_scale`), probability that collecting it ends the episode,
      per-step probability that it reappears while absent.
    - `static_positions`: `bool` scalar; if True the agent always starts on `start_cell`
      and each object always (re)appears on its `object_cells` entry (mazes); otherwise
      positions are uniform over free cells at every reset and respawn.
    - `object_cells`: `int32[k]`, fixed object cells (used when `static_positions`).
    - `start_cell`: `int32` scalar, fixed start cell (used when `static_positions`).
    - `max_steps`: `int32` scalar, the horizon (episode is truncated at this many steps).
    - `reward_scale`: `float32` scalar multiplying every reward (Optim4RL's per-task
      reward scaling for multi-task meta-training; 1 by default).
    """

    height: Int[Array, "*batch"]
    width: Int[Array, "*batch"]
    walls: Bool[Array, "*batch canvas_h canvas_w"]
    exists: Bool[Array, "*batch k"]
    types: Int[Array, "*batch k"]
    rewards: Float[Array, "*batch k"]
    p_terminate: Float[Array, "*batch k"]
    p_respawn: Float[Array, "*batch k"]
    static_positions: Bool[Array, "*batch"]
    object_cells: Int[Array, "*batch k"]
    start_cell: Int[Array, "*batch"]
    max_steps: Int[Array, "*batch"]
    reward_scale: Float[Array, "*batch"]
    # Derived from `walls` by the constructor (not arguments): the canvas cell of the j-th
    # free cell (`free_cells`), the free-cell index of every canvas cell (`free_rank`;
    # walls get the number of free cells), and the number of free cells (`num_free`).
    # They make drawing a random free cell O(objects^2) instead of O(cells) per draw.
    free_cells: Int[Array, "*batch cells"]
    free_rank: Int[Array, "*batch cells"]
    num_free: Int[Array, "*batch"]

    def __init__(
        self,
        *,
        height: Int[Array, "*batch"],
        width: Int[Array, "*batch"],
        walls: Bool[Array, "*batch canvas_h canvas_w"],
        exists: Bool[Array, "*batch k"],
        types: Int[Array, "*batch k"],
        rewards: Float[Array, "*batch k"],
        p_terminate: Float[Array, "*batch k"],
        p_respawn: Float[Array, "*batch k"],
        static_positions: Bool[Array, "*batch"],
        object_cells: Int[Array, "*batch k"],
        start_cell: Int[Array, "*batch"],
        max_steps: Int[Array, "*batch"],
        reward_scale: Float[Array, "*batch"],
    ):
        self.height = height
        self.width = width
        self.walls = walls
        self.exists = exists
        self.types = types
        self.rewards = rewards
        self.p_terminate = p_terminate
        self.p_respawn = p_respawn
        self.static_positions = static_positions
        self.object_cells = object_cells
        self.start_cell = start_cell
        self.max_steps = max_steps
        self.reward_scale = reward_scale
        free = ~walls.reshape(*walls.shape[:-2], -1)
        n = free.shape[-1]
        rank = jnp.cumsum(free, axis=-1, dtype=jnp.int32) - 1
        self.num_free = jnp.sum(free, axis=-1, dtype=jnp.int32)
        self.free_rank = jnp.where(free, rank, self.num_free[..., None])
        # free_cells[j] = the cell whose rank is j (scatter via a comparison; levels are
        # built rarely, so O(cells^2) here is fine and works under vmap).
        cells = jnp.arange(n, dtype=jnp.int32)
        cells_b = cells.reshape((1,) * self.free_rank.ndim + (n,))
        match = (self.free_rank[..., :, None] == cells_b) & free[..., :, None]
        self.free_cells = jnp.where(
            jnp.any(match, axis=-2), jnp.argmax(match, axis=-2).astype(jnp.int32), n - 1
        )

    def __check_init__(self):
        leaves = jax.tree_util.tree_leaves(self)
        if all(_is_concrete(x) for x in leaves):
            validate_level(self)

    @property
    def canvas_shape(self) -> tuple[int, int]:
        """`(canvas_h, canvas_w)`, the static shape every level of a batch shares."""
        return (int(self.walls.shape[-2]), int(self.walls.shape[-1]))

    @property
    def num_slots(self) -> int:
        """Number of object slots `k`."""
        return int(self.exists.shape[-1])


def validate_level(level: Level) -> None:
    """Check a level with concrete values; raise `ValueError` saying what is wrong.

    Works on a single level and on a batch of levels (leading axes).

    **Arguments:**

    - `level`: the level to check.

    **Raises:** `ValueError` if the grid is larger than the canvas or smaller than 1x1,
    a probability is outside [0, 1] or not finite, a reward is not finite, the horizon is
    < 1, the objects (plus the agent) cannot fit in the free cells, a fixed cell is a wall
    or outside the grid, or two fixed cells coincide.
    """
    walls = np.asarray(level.walls, dtype=bool)
    ch, cw = walls.shape[-2:]
    h = np.asarray(level.height)
    w = np.asarray(level.width)
    if np.any(h < 1) or np.any(w < 1):
        raise ValueError(f"grid size must be at least 1x1, got height={h}, width={w}")
    if np.any(h > ch) or np.any(w > cw):
        raise ValueError(
            f"grid of size {h.max()}x{w.max()} does not fit in the {ch}x{cw} canvas; "
            f"use a canvas at least as large as the largest grid"
        )
    k = level.exists.shape[-1]
    for name in ("types", "rewards", "p_terminate", "p_respawn", "object_cells"):
        if getattr(level, name).shape[-1] != k:
            raise ValueError(
                f"Level.{name} has {getattr(level, name).shape[-1]} entries but there are "
                f"{k} object slots (Level.exists)"
            )
    for name in ("p_terminate", "p_respawn"):
        p = np.asarray(getattr(level, name), dtype=np.float64)
        if not np.all(np.isfinite(p)) or np.any(p < 0) or np.any(p > 1):
            raise ValueError(f"{name} must be probabilities in [0, 1], got {p}")
    rewards = np.asarray(level.rewards, dtype=np.float64)
    if not np.all(np.isfinite(rewards)):
        raise ValueError(f"rewards must be finite, got {rewards}")
    scale = np.asarray(level.reward_scale, dtype=np.float64)
    if not np.all(np.isfinite(scale)):
        raise ValueError(f"reward_scale must be finite, got {scale}")
    if np.any(np.asarray(level.max_steps) < 1):
        raise ValueError(f"max_steps must be >= 1, got {np.asarray(level.max_steps)}")
    if np.any(np.asarray(level.types) < 0):
        raise ValueError(f"object types must be >= 0, got {np.asarray(level.types)}")
    # Cells outside the grid must be walls, so that the agent cannot leave the grid.
    rows = np.arange(ch)[:, None]
    cols = np.arange(cw)[None, :]
    outside = (rows >= h[..., None, None]) | (cols >= w[..., None, None])
    if np.any(outside & ~walls):
        raise ValueError("every canvas cell outside the height x width grid must be a wall")
    n_free = np.sum(~walls, axis=(-2, -1))
    n_objects = np.sum(np.asarray(level.exists, dtype=bool), axis=-1)
    if np.any(n_objects + 1 > n_free):
        raise ValueError(
            f"{n_objects.max()} objects and the agent need {n_objects.max() + 1} free cells "
            f"but the level has only {n_free.min()} (grid {h}x{w}, "
            f"{np.sum(walls, axis=(-2, -1))} wall cells including padding)"
        )
    static = np.asarray(level.static_positions, dtype=bool)
    if np.any(static):
        flat_walls = walls.reshape(*walls.shape[:-2], ch * cw)
        cells = np.concatenate(
            [np.asarray(level.start_cell)[..., None], np.asarray(level.object_cells)], axis=-1
        )
        used = np.concatenate(
            [np.ones_like(n_objects, dtype=bool)[..., None], np.asarray(level.exists)], axis=-1
        )
        used = used & static[..., None]
        if np.any(used & ((cells < 0) | (cells >= ch * cw))):
            raise ValueError(f"fixed cells must lie in [0, {ch * cw}), got {cells}")
        on_wall = np.take_along_axis(flat_walls, np.clip(cells, 0, ch * cw - 1), axis=-1)
        if np.any(used & on_wall):
            raise ValueError(f"a fixed start or object cell is a wall: {cells}")
        for idx in np.ndindex(*used.shape[:-1]):
            c = cells[idx][used[idx]]
            if len(np.unique(c)) != len(c):
                raise ValueError(f"fixed start and object cells must be distinct, got {c}")


def make_level(
    *,
    height: int,
    width: int,
    rewards: Any,
    p_terminate: Any,
    p_respawn: Any,
    max_steps: int,
    types: Any = None,
    walls: Any = None,
    canvas: tuple[int, int] | None = None,
    num_slots: int | None = None,
    object_cells: Any = None,
    start_cell: int | None = None,
    reward_scale: float = 1.0,
) -> Level:
    """Build one level from Python values, checking them.

    **Arguments:**

    - `height`, `width`: size of the playable grid.
    - `rewards`, `p_terminate`, `p_respawn`: one value per object.
    - `max_steps`: the horizon.
    - `types`: object type per object (default: `0, 1, 2, ...`).
    - `walls`: optional `bool[height, width]` wall mask of the grid (True = wall).
    - `canvas`: `(canvas_h, canvas_w)`, default `(height, width)`; cells outside the grid
      are walls.
    - `num_slots`: number of object slots (default: the number of objects); extra slots
      are unused, so levels with different object counts can share one environment.
    - `object_cells`, `start_cell`: fixed flat cell indices (on the canvas) for the
      objects and the agent's start; give both to make positions static (mazes).
    - `reward_scale`: multiplies every reward.

    **Returns:** a validated [`lorl_gridworlds.Level`][].
    """
    rewards = np.atleast_1d(np.asarray(rewards, dtype=np.float32))
    n = rewards.shape[0]
    p_terminate = np.broadcast_to(np.asarray(p_terminate, dtype=np.float32), (n,))
    p_respawn = np.broadcast_to(np.asarray(p_respawn, dtype=np.float32), (n,))
    types = np.arange(n, dtype=np.int32) if types is None else np.asarray(types, np.int32)
    if types.shape != (n,):
        raise ValueError(f"types must have one entry per object ({n}), got {types.shape}")
    ch, cw = (height, width) if canvas is None else canvas
    k = n if num_slots is None else num_slots
    if k < n:
        raise ValueError(f"num_slots={k} is smaller than the number of objects ({n})")
    full_walls = np.ones((ch, cw), dtype=bool)
    if height <= ch and width <= cw:
        grid = np.zeros((height, width), bool) if walls is None else np.asarray(walls, bool)
        if grid.shape != (height, width):
            raise ValueError(f"walls must have shape ({height}, {width}), got {grid.shape}")
        full_walls[:height, :width] = grid
    static = object_cells is not None or start_cell is not None
    if static and (object_cells is None or start_cell is None):
        raise ValueError("give both object_cells and start_cell for static positions, or neither")

    def pad(x: np.ndarray, fill: Any) -> np.ndarray:
        return np.concatenate([x, np.full((k - n,), fill, dtype=x.dtype)])

    cells = np.zeros(n, np.int32) if object_cells is None else np.asarray(object_cells, np.int32)
    if cells.shape != (n,):
        raise ValueError(f"object_cells must have one entry per object ({n}), got {cells.shape}")
    return Level(
        height=jnp.asarray(height, jnp.int32),
        width=jnp.asarray(width, jnp.int32),
        walls=jnp.asarray(full_walls),
        exists=jnp.asarray(pad(np.ones(n, bool), False)),
        types=jnp.asarray(pad(types, 0)),
        rewards=jnp.asarray(pad(rewards, 0.0)),
        p_terminate=jnp.asarray(pad(np.array(p_terminate), 0.0)),
        p_respawn=jnp.asarray(pad(np.array(p_respawn), 0.0)),
        static_positions=jnp.asarray(static),
        object_cells=jnp.asarray(pad(cells, 0)),
        start_cell=jnp.asarray(0 if start_cell is None else start_cell, jnp.int32),
        max_steps=jnp.asarray(max_steps, jnp.int32),
        reward_scale=jnp.asarray(reward_scale, jnp.float32),
    )
