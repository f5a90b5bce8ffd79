"""The six LPG gridworlds of Optim4RL (Appendix B, Tables 2-7; after Oh et al. 2020)."""

import dataclasses

from ._level import Level, make_level


@dataclasses.dataclass(frozen=True)
class LPGSpec:
    """Static description of an LPG gridworld.

    **Fields:**

    - `name`: e.g. `"small_dense_short"`.
    - `height`, `width`: grid size.
    - `objects`: one `(reward, p_terminate, p_respawn)` per object (unit rewards).
    - `horizon`: episode length limit.
    - `multitask_reward_scale`: the reward scale the Optim4RL reference code uses for
      this task in multi-task meta-training (its tables print the scaled rewards);
      reported returns are always unscaled.
    """

    name: str
    height: int
    width: int
    objects: tuple[tuple[float, float, float], ...]
    horizon: int
    multitask_reward_scale: float


_DENSE_SMALL = ((1.0, 0.0, 0.5), (-1.0, 0.5, 0.5))  # Optim4RL Tables 2-3
_SPARSE_BIG = ((1.0, 0.0, 0.05),) * 2 + ((-1.0, 0.5, 0.05),) * 2  # Tables 4-5
_DENSE_BIG = ((1.0, 0.0, 0.5),) * 2 + ((-1.0, 0.5, 0.5),) * 2  # Tables 6-7

# Sizes, objects and horizons: Optim4RL Appendix B (Tables 2-7). Reward scales: the
# reference code's multi-task configuration (see ../shared/specs/gridworlds.md).
LPG_SPECS: dict[str, LPGSpec] = {
    s.name: s
    for s in (
        LPGSpec("small_dense_short", 4, 6, _DENSE_SMALL, 50, 1e2),
        LPGSpec("small_dense_long", 6, 4, _DENSE_SMALL, 500, 1e3),
        LPGSpec("big_sparse_short", 10, 12, _SPARSE_BIG, 50, 1e2),
        LPGSpec("big_sparse_long", 12, 10, _SPARSE_BIG, 500, 10.0),
        LPGSpec("big_dense_short", 9, 13, _DENSE_BIG, 50, 10.0),
        LPGSpec("big_dense_long", 13, 9, _DENSE_BIG, 500, 1.0),
    )
}


def lpg_level(spec: LPGSpec | str, *, reward_scale: float = 1.0) -> Level:
    """The level of an LPG gridworld.

    **Arguments:**

    - `spec`: an [`lorl_gridworlds.LPGSpec`][] or its name.
    - `reward_scale`: multiplies every reward (default 1: the unscaled units in which
      both papers report returns).

    **Returns:** the [`lorl_gridworlds.Level`][] (canvas = grid, no walls, one object per
    slot).
    """
    if isinstance(spec, str):
        if spec not in LPG_SPECS:
            raise ValueError(f"unknown LPG gridworld {spec!r}; valid names: {', '.join(LPG_SPECS)}")
        spec = LPG_SPECS[spec]
    rewards, p_term, p_respawn = zip(*spec.objects, strict=True)
    return make_level(
        height=spec.height,
        width=spec.width,
        rewards=rewards,
        p_terminate=p_term,
        p_respawn=p_respawn,
        max_steps=spec.horizon,
        reward_scale=reward_scale,
    )
