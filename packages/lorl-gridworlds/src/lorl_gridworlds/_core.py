"""Dynamics shared by every gridworld: placement, movement, collection, respawn.

Positions are flat cell indices on the canvas. Random cells are drawn with one uniform
number per draw and a cumulative sum over the free-cell mask (the k-th free cell), which
is exact, O(cells), and avoids `jax.random.choice(replace=False)` (about 60x slower under
`vmap` on this machine, see the architecture notes).
"""

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, Int

from ._level import Level


class EnvState(eqx.Module):
    """State of one gridworld episode.

    **Fields:**

    - `agent`: the agent's cell (flat index on the canvas).
    - `objects`: `int32[k]`, each object's cell (meaningless while absent).
    - `present`: `bool[k]`, whether each object is on the grid.
    - `time`: steps taken in this episode.
    """

    agent: Int[Array, "*batch"]
    objects: Int[Array, "*batch k"]
    present: Bool[Array, "*batch k"]
    time: Int[Array, "*batch"]


# Marks an empty entry of an occupied-cell list: larger than any free-cell rank.
_EMPTY = 2**30


def sample_free_cell(u: Float[Array, ""], free: Bool[Array, " cells"]) -> Int[Array, ""]:
    """The `floor(u * n_free)`-th True entry of `free` (uniform over them for `u ~ U[0,1)`).

    O(cells) with a cumulative sum; used where a mask is built once (level sampling). The
    environment step uses [`sample_unoccupied`][] instead.
    """
    n_free = jnp.sum(free, dtype=jnp.int32)
    k = jnp.minimum(jnp.floor(u * n_free.astype(u.dtype)).astype(jnp.int32), n_free - 1)
    return jnp.argmax(jnp.cumsum(free, dtype=jnp.int32) > k).astype(jnp.int32)


def sample_unoccupied(
    u: Float[Array, ""], occupied: Int[Array, " m"], level: Level
) -> Int[Array, ""]:
    """A uniformly random free cell of `level` that is not in `occupied`.

    **Arguments:**

    - `u`: a `U[0, 1)` number.
    - `occupied`: free-cell ranks (see `Level.free_rank`) that are taken, distinct, with
      unused entries set to a huge value.
    - `level`: the level.

    The answer is the k-th (0-based) free cell not in `occupied`, `k = floor(u * n)` with
    `n` the number of such cells. In free-cell rank space it is the least fixed point of
    `c = k + #{o in occupied : o <= c}`, reached from `c = k` in at most `m` steps, so a
    draw costs O(m^2) for m occupied cells, independent of the grid size.
    """
    n_taken = jnp.sum(occupied < _EMPTY, dtype=jnp.int32)
    n_avail = level.num_free - n_taken
    k = jnp.minimum(jnp.floor(u * n_avail.astype(u.dtype)).astype(jnp.int32), n_avail - 1)
    c = k
    for _ in range(occupied.shape[0]):
        c = k + jnp.sum(occupied <= c, dtype=jnp.int32)
    return level.free_cells[c]


def reset_state(u: Float[Array, " k_plus_1"], level: Level) -> EnvState:
    """Place the agent and every object on distinct free cells (or their fixed cells).

    `u` holds `k + 1` independent `U[0, 1)` numbers (agent first, then each object slot).
    """
    k = level.exists.shape[0]
    taken = jnp.full((k + 1,), _EMPTY, jnp.int32)
    agent = jnp.where(
        level.static_positions, level.start_cell, sample_unoccupied(u[0], taken, level)
    )
    taken = taken.at[0].set(level.free_rank[agent])
    cells = []
    for i in range(k):
        cell = jnp.where(
            level.static_positions,
            level.object_cells[i],
            sample_unoccupied(u[i + 1], taken, level),
        )
        taken = taken.at[i + 1].set(jnp.where(level.exists[i], level.free_rank[cell], _EMPTY))
        cells.append(cell)
    objects = jnp.stack(cells) if k > 0 else jnp.zeros((0,), jnp.int32)
    return EnvState(
        agent=agent.astype(jnp.int32),
        objects=objects.astype(jnp.int32),
        present=level.exists,
        time=jnp.zeros((), jnp.int32),
    )


def transition(
    u: Float[Array, "3 k"],
    state: EnvState,
    action: Int[Array, ""],
    level: Level,
    deltas: tuple[tuple[int, int], ...],
    noop: int,
    respawn_same_step: bool,
) -> tuple[EnvState, Float[Array, ""], Bool[Array, ""], Bool[Array, ""]]:
    """One step: move, collect, terminate, respawn, advance time.

    **Arguments:**

    - `u`: independent `U[0, 1)` numbers: row 0 decides termination, row 1 respawn, row 2
      respawn positions, one column per object slot.
    - `state`: the current state.
    - `action`: index into `deltas`; an out-of-range action acts as `noop`.
    - `level`: the level.
    - `deltas`: `(d_row, d_col)` of each action (static).
    - `noop`: the index of the "stay" action (static).
    - `respawn_same_step`: whether an object collected in this step may reappear in the
      same step (LPG: yes; OPEN gridworlds: no, "the collection wins").

    **Returns:** `(state, reward, terminated, truncated)`; `truncated` is True when the
    horizon is reached in an episode that did not terminate.
    """
    ch, cw = level.walls.shape
    n = ch * cw
    k = level.exists.shape[0]
    flat_walls = level.walls.reshape(n)
    n_actions = len(deltas)
    table = jnp.asarray(deltas, dtype=jnp.int32)
    action = jnp.asarray(action, dtype=jnp.int32)
    valid = (action >= 0) & (action < n_actions)
    delta = table[jnp.where(valid, action, noop)]
    row = state.agent // cw + delta[0]
    col = state.agent % cw + delta[1]
    # Each coordinate is clamped at the canvas border (LPG: "moves are clamped", so a
    # diagonal move along an edge slides); a wall cell (padding included) blocks the move.
    target = jnp.clip(row, 0, ch - 1) * cw + jnp.clip(col, 0, cw - 1)
    blocked = flat_walls[target]
    agent = jnp.where(blocked, state.agent, target)

    collected = state.present & (state.objects == agent)
    reward = jnp.sum(jnp.where(collected, level.rewards, 0.0)) * level.reward_scale
    terminated = jnp.any(collected & (u[0] < level.p_terminate))
    present = state.present & ~collected

    respawn = level.exists & ~present & (u[1] < level.p_respawn)
    if not respawn_same_step:
        respawn = respawn & ~collected
    # Cells taken while objects respawn one after another: the agent, the objects still
    # present, and the ones respawned earlier in this step (in free-cell rank space).
    taken = jnp.concatenate(
        [
            level.free_rank[agent][None],
            jnp.where(present, level.free_rank[state.objects], _EMPTY),
        ]
    )
    objects = []
    new_present = []
    for i in range(k):
        cell = jnp.where(
            level.static_positions,
            level.object_cells[i],
            sample_unoccupied(u[2, i], taken, level),
        )
        cell = jnp.where(respawn[i], cell, state.objects[i])
        taken = taken.at[i + 1].set(jnp.where(respawn[i], level.free_rank[cell], taken[i + 1]))
        objects.append(cell)
        new_present.append(present[i] | respawn[i])
    time = state.time + 1
    truncated = (time >= level.max_steps) & ~terminated
    new_state = EnvState(
        agent=agent,
        objects=jnp.stack(objects).astype(jnp.int32) if k > 0 else state.objects,
        present=jnp.stack(new_present) if k > 0 else state.present,
        time=time,
    )
    return new_state, reward.astype(jnp.float32), terminated, truncated
