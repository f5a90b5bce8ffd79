"""`make(name) -> (env, params)`, gymnax-style."""

import difflib

from ._distributions import DEFAULT_CANVAS, DEFAULT_NUM_SLOTS, DISTRIBUTIONS
from ._env import AbstractGridworld, LevelGridworld, LPGGridworld
from ._level import Level
from ._lpg import LPG_SPECS

LPG_NAMES: tuple[str, ...] = tuple(LPG_SPECS)
ALIASES: dict[str, str] = {"rand_all": "all"}


def registered_names() -> tuple[str, ...]:
    """Every name `make` accepts (aliases excluded)."""
    return LPG_NAMES + DISTRIBUTIONS


def make(
    name: str,
    *,
    reward_scale: float = 1.0,
    canvas: int | None = None,
    obs_mode: str = "flat",
) -> tuple[AbstractGridworld, Level]:
    """Build a gridworld by name.

    **Arguments:**

    - `name`: an LPG gridworld (`small_dense_short`, `small_dense_long`,
      `big_sparse_short`, `big_sparse_long`, `big_dense_short`, `big_dense_long`) or a
      level distribution (`all`, `rand_dense`, `rand_sparse`, `rand_long`,
      `standard_maze`, `sixteen_rooms`, `labyrinth`).
    - `reward_scale`: LPG gridworlds only; multiplies every reward.
    - `canvas`: level distributions only; canvas side (default: the distribution's).
    - `obs_mode`: level distributions only; `"flat"` (default) or `"spatial"`.

    **Returns:** `(env, params)`: the environment and its default level. For a level
    distribution the default level is one draw (key 0); draw others with
    [`lorl_gridworlds.sample_level`][].
    """
    name = ALIASES.get(name, name)
    if name in LPG_SPECS:
        if canvas is not None or obs_mode != "flat":
            raise ValueError(
                f"{name!r} is an LPG gridworld: its canvas is its grid and its observation is "
                "channels-last (height, width, objects + 1); `canvas` and `obs_mode` apply "
                "to level distributions only"
            )
        env: AbstractGridworld = LPGGridworld(LPG_SPECS[name], reward_scale=float(reward_scale))
        return env, env.default_params
    if name in DISTRIBUTIONS:
        if reward_scale != 1.0:
            raise ValueError(
                "reward_scale applies to LPG gridworlds; for a level, replace its "
                "`reward_scale` field (eqx.tree_at)"
            )
        env = LevelGridworld(
            distribution=name,
            canvas=DEFAULT_CANVAS[name] if canvas is None else canvas,
            num_slots=DEFAULT_NUM_SLOTS,
            obs_mode=obs_mode,
        )
        return env, env.default_params
    close = difflib.get_close_matches(name, registered_names(), n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise ValueError(
        f"unknown gridworld {name!r}.{hint} Valid names: {', '.join(registered_names())}"
    )
