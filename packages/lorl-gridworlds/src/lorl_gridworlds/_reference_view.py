"""An LPG gridworld as the Optim4RL reference code presents it to its A2C agent: a
diagnostic, to measure how much the reference's presentation changes an agent's returns
(docs/meta/studies.md). Not a faithful environment: lorl's own layout is the spec's."""

import dataclasses
from typing import Any

import jax.numpy as jnp

from ._env import AbstractGridworld, LPGGridworld


def optim4rl_reference_view(env: AbstractGridworld) -> LPGGridworld:
    """`env` with the two departures of the Optim4RL reference code (sail-sg/optim4rl,
    `envs/gridworld.py` and `components/network.py`) from `lorl_gridworlds`:

    - Observations: the reference renders `(objects + 1, H + 2, W + 2)` channels-first,
      the two extra rows and columns being its map's wall border (always zero), and feeds
      that to a channels-last Flax `Conv`, which then reads the object axis as the image
      height, the rows as the width and the columns as input channels. This view returns
      the same array, so a channels-last CNN torso reads it the same way.
    - Moves: the reference refuses a move whose target is a wall of its walled map, so a
      diagonal move along an edge does not happen; lorl clamps each coordinate to the
      open grid, so the agent slides along the edge. Here a move whose target leaves the
      grid in either coordinate becomes "stay".

    Not emulated: the reference lets an object respawn on an occupied cell.

    **Arguments:**

    - `env`: one of the six LPG gridworlds (`lorl_gridworlds.make("small_dense_short")`).

    **Returns:**

    An environment of a subclass of `type(env)` with the same fields.

    **Raises:**

    `ValueError` if `env` is not an LPG gridworld.
    """
    if not isinstance(env, LPGGridworld):
        raise ValueError(
            "optim4rl_reference_view applies to the six LPG gridworlds only, got "
            f"{type(env).__name__}"
        )
    base = type(env)
    h, w = env.spec.height, env.spec.width
    c = len(env.spec.objects) + 1

    class Optim4RLReferenceView(base):
        def observation_shape(self, params: Any = None) -> tuple[int, int, int]:
            return (c, h + 2, w + 2)

        def get_obs(self, state: Any, params: Any) -> Any:
            planes = base.get_obs(self, state, params)  # (h, w, c)
            padded = jnp.pad(planes, ((1, 1), (1, 1), (0, 0)))
            return jnp.transpose(padded, (2, 0, 1))

        def _transition(self, u: Any, state: Any, action: Any, params: Any) -> Any:
            table = jnp.asarray(self.actions, dtype=jnp.int32)
            action = jnp.asarray(action, dtype=jnp.int32)
            valid = (action >= 0) & (action < len(self.actions))
            delta = table[jnp.where(valid, action, self.noop_action)]
            row = state.agent // w + delta[0]
            col = state.agent % w + delta[1]
            off = (row < 0) | (row >= h) | (col < 0) | (col >= w)
            action = jnp.where(valid & off, self.noop_action, action)
            return base._transition(self, u, state, action, params)

    return Optim4RLReferenceView(**{f.name: getattr(env, f.name) for f in dataclasses.fields(env)})
