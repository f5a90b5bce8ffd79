"""The environments, with the gymnax 1.x interface.

`reset(key, params) -> (obs, state)` and
`step(key, state, action, params) -> (obs, state, reward, terminated, truncated, info)`
with auto-reset, `default_params`, `action_space(params)`, `observation_space(params)`,
`num_actions`, `name`: code written for gymnax environments runs on these unchanged.

Environments hold no arrays (only static configuration), so they are hashable and can be
closed over or passed as static arguments (gymnax's wrappers jit with `self` static).
"""

import abc
from typing import Any, ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, Int, PRNGKeyArray, UInt8

from . import _core
from ._core import EnvState
from ._level import Level
from ._spaces import Box, Discrete

# (d_row, d_col) of the 9 LPG actions, Optim4RL Appendix B / reference code order:
# 0 stay, 1 up, 2 right, 3 down, 4 left, 5 down-left, 6 down-right, 7 up-right, 8 up-left.
LPG_ACTIONS: tuple[tuple[int, int], ...] = (
    (0, 0),
    (-1, 0),
    (0, 1),
    (1, 0),
    (0, -1),
    (1, -1),
    (1, 1),
    (-1, 1),
    (-1, -1),
)
# The 5 actions of OPEN's gridworlds (OPEN Appendix D; reference code): up, down, left,
# right, no-op.
LEVEL_ACTIONS: tuple[tuple[int, int], ...] = ((-1, 0), (1, 0), (0, -1), (0, 1), (0, 0))


class AbstractGridworld(eqx.Module):
    """A gridworld whose task is a [`lorl_gridworlds.Level`][] (the `EnvParams`).

    Subclasses choose the action set, the respawn rule and the observation.

    **Actions out of range.** Under `jit` no exception can be raised for a traced action,
    so an action outside `[0, num_actions)` is executed as the "stay" action: the agent
    does not move, but time advances and objects may respawn. Validate actions in your own
    code (`env.action_space(params).contains(a)`) if you need to catch them.
    """

    actions: ClassVar[tuple[tuple[int, int], ...]]
    noop_action: ClassVar[int]
    respawn_same_step: ClassVar[bool]

    @property
    @abc.abstractmethod
    def default_params(self) -> Level:
        """The default level of this environment."""

    @abc.abstractmethod
    def get_obs(self, state: EnvState, params: Level) -> Float[Array, "..."]:
        """The observation of `state`."""

    @abc.abstractmethod
    def observation_shape(self, params: Level | None = None) -> tuple[int, ...]:
        """Shape of one observation."""

    @abc.abstractmethod
    def check_params(self, params: Level) -> None:
        """Raise `ValueError` if `params` does not fit this environment's static sizes."""

    @property
    def num_actions(self) -> int:
        """Number of discrete actions."""
        return len(self.actions)

    def action_space(self, params: Level | None = None) -> Discrete:
        """`Discrete(num_actions)`."""
        del params
        return Discrete(self.num_actions)

    def observation_space(self, params: Level | None = None) -> Box:
        """`Box(0, 1, observation_shape, float32)`; observations are binary (plus time)."""
        return Box(0.0, 1.0, self.observation_shape(params), jnp.float32)

    def reset_env(self, key: PRNGKeyArray, params: Level) -> tuple[Float[Array, "..."], EnvState]:
        """Reset without the `params=None` default (gymnax's `reset_env`)."""
        u = jax.random.uniform(key, (params.exists.shape[-1] + 1,))
        state = _core.reset_state(u, params)
        return self.get_obs(state, params), state

    def step_env(
        self, key: PRNGKeyArray, state: EnvState, action: Int[Array, ""] | int, params: Level
    ) -> tuple[Float[Array, "..."], EnvState, Float[Array, ""], Bool[Array, ""], Bool[Array, ""]]:
        """One transition without auto-reset.

        **Returns:** `(obs, state, reward, terminated, truncated)`.
        """
        u = jax.random.uniform(key, (3, params.exists.shape[-1]))
        state, reward, terminated, truncated = self._transition(u, state, action, params)
        return self.get_obs(state, params), state, reward, terminated, truncated

    def _transition(
        self, u: Float[Array, "3 k"], state: EnvState, action: Int[Array, ""] | int, params: Level
    ) -> tuple[EnvState, Float[Array, ""], Bool[Array, ""], Bool[Array, ""]]:
        return _core.transition(
            u,
            state,
            jnp.asarray(action),
            params,
            self.actions,
            self.noop_action,
            self.respawn_same_step,
        )

    @eqx.filter_jit
    def reset(
        self, key: PRNGKeyArray, params: Level | None = None
    ) -> tuple[Float[Array, "..."], EnvState]:
        """Start an episode.

        **Arguments:**

        - `key`: a PRNG key (placement of the agent and the objects).
        - `params`: the level; `default_params` if None.

        **Returns:** `(obs, state)`.
        """
        params = self.default_params if params is None else params
        self.check_params(params)
        return self.reset_env(key, params)

    @eqx.filter_jit
    def step(
        self,
        key: PRNGKeyArray,
        state: EnvState,
        action: Int[Array, ""] | int,
        params: Level | None = None,
    ) -> tuple[
        Float[Array, "..."],
        EnvState,
        Float[Array, ""],
        Bool[Array, ""],
        Bool[Array, ""],
        dict[str, Any],
    ]:
        """Take one step, resetting automatically when the episode ends.

        **Arguments:**

        - `key`: a PRNG key.
        - `state`: the current state.
        - `action`: an integer in `[0, num_actions)` (out-of-range: "stay", see class doc).
        - `params`: the level; `default_params` if None.

        **Returns:** `(obs, state, reward, terminated, truncated, info)`. When the episode
        ended (`terminated | truncated`), `obs` and `state` already belong to the next
        episode; `info["final_observation"]` holds the last observation of the finished
        episode, `info["terminated"]` / `info["truncated"]` repeat the flags and
        `info["discount"]` is `1 - terminated`.
        """
        params = self.default_params if params is None else params
        self.check_params(params)
        # One draw serves the transition and the automatic reset (cheaper than splitting).
        k = params.exists.shape[-1]
        u = jax.random.uniform(key, (4 * k + 1,))
        state_step, reward, terminated, truncated = self._transition(
            u[: 3 * k].reshape(3, k), state, action, params
        )
        state_reset = _core.reset_state(u[3 * k :], params)
        done = terminated | truncated
        new_state = jax.tree_util.tree_map(
            lambda r, s: jnp.where(done, r, s), state_reset, state_step
        )
        # One observation per step; the finished episode's last observation is only
        # computed if the caller uses it (XLA removes it otherwise).
        obs = self.get_obs(new_state, params)
        info = {
            "terminated": terminated,
            "truncated": truncated,
            "discount": 1.0 - terminated.astype(jnp.float32),
            "final_observation": self.get_obs(state_step, params),
        }
        return obs, new_state, reward, terminated, truncated, info

    def is_terminal(self, state: EnvState, params: Level) -> Bool[Array, ""]:
        """Whether the horizon is reached (termination by collection is only known in
        `step`, where it is drawn)."""
        return state.time >= params.max_steps

    def render(
        self, state: EnvState, params: Level | None = None, *, cell_size: int = 16
    ) -> UInt8[Array, "pixels_h pixels_w 3"]:
        """An RGB picture of `state` (see [`lorl_gridworlds.render`][])."""
        from ._render import render

        return render(state, self.default_params if params is None else params, cell_size)


def _check_canvas(params: Level, canvas: tuple[int, int], slots: int, what: str) -> None:
    if params.walls.shape[-2:] != canvas or params.exists.shape[-1] != slots:
        raise ValueError(
            f"{what} expects levels on a {canvas[0]}x{canvas[1]} canvas with {slots} object "
            f"slots, got a {params.walls.shape[-2]}x{params.walls.shape[-1]} canvas with "
            f"{params.exists.shape[-1]} slots; build the level for this environment "
            f"(e.g. with the same `canvas`)"
        )
    if params.walls.ndim != 2:
        raise ValueError(
            f"{what} steps one level at a time, got a batch of levels with shape "
            f"{params.walls.shape[:-2]}; vmap over the batch"
        )


class LPGGridworld(AbstractGridworld):
    """One of the six gridworlds of Optim4RL (Appendix B, after Oh et al. 2020).

    Open `height x width` rectangle, `n` objects each `[reward, p_terminate, p_respawn]`,
    9 actions (stay and the 8 neighbours; moves are clamped at the border), horizon 50 or
    500. Observation: `float32[height, width, n + 1]` in {0, 1}, channels-last: channel `i`
    marks object `i` (all zeros while absent), the last channel marks the agent.

    Step order (reference code; the paper agrees where it says anything): move; each
    present object on the agent's cell is collected (reward, and the episode terminates
    with its `p_terminate`); every absent object, including one collected this step,
    reappears with its `p_respawn` on a uniformly random cell that holds neither the agent
    nor another object (the reference allows overlap with the agent; we do not); then
    `time += 1` and the episode is truncated at the horizon.

    **Fields:** `spec`, the [`lorl_gridworlds.LPGSpec`][], and `reward_scale`.
    """

    spec: Any = eqx.field(static=True)
    reward_scale: float = eqx.field(static=True, default=1.0)

    actions: ClassVar[tuple[tuple[int, int], ...]] = LPG_ACTIONS
    noop_action: ClassVar[int] = 0
    respawn_same_step: ClassVar[bool] = True

    @property
    def name(self) -> str:
        """The gridworld's name, e.g. `"small_dense_short"`."""
        return self.spec.name

    @property
    def default_params(self) -> Level:
        """The gridworld's level (fixed: every episode differs only in positions)."""
        from ._lpg import lpg_level

        return lpg_level(self.spec, reward_scale=self.reward_scale)

    def observation_shape(self, params: Level | None = None) -> tuple[int, ...]:
        return (self.spec.height, self.spec.width, len(self.spec.objects) + 1)

    def check_params(self, params: Level) -> None:
        _check_canvas(
            params, (self.spec.height, self.spec.width), len(self.spec.objects), self.name
        )

    def get_obs(self, state: EnvState, params: Level) -> Float[Array, "height width channels"]:
        h, w = self.spec.height, self.spec.width
        c = len(self.spec.objects) + 1
        # A scatter of c ones (absent objects go out of bounds and are dropped) is about
        # twice as fast under vmap on CPU as comparing every cell with every object.
        where = jnp.concatenate([jnp.where(state.present, state.objects, h * w), state.agent[None]])
        planes = jnp.zeros((h * w, c), jnp.float32)
        planes = planes.at[where, jnp.arange(c)].set(1.0, mode="drop")
        return planes.reshape(h, w, c)


class LevelGridworld(AbstractGridworld):
    """The parameterised gridworld of OPEN (Appendix D; GROOVE-style levels).

    The task is the level passed as `params` (draw one with
    [`lorl_gridworlds.sample_level`][]). Walls block moves; 5 actions (up, down, left,
    right, no-op); collecting an object gives its reward and ends the episode with its
    `p_terminate`; an absent object reappears with its `p_respawn` per step on a random
    free cell (or its fixed cell in mazes), but never in the step it was collected (the
    collection wins).

    Observations (`obs_mode`):

    - `"flat"` (the reference encoding): `float32[(1 + n_types) * canvas^2 + 1]`, the
      one-hot agent cell, one occupancy map per object type, and `time * 0.001`.
    - `"spatial"`: `float32[canvas, canvas, 2 + n_types]` channels-last: agent, walls
      (including the padding outside the grid), one map per object type.

    Every level of a batch shares one canvas, so observations of levels of different grid
    sizes have one shape and batch together.

    **Fields:** `distribution` (name used for `default_params`), `canvas`, `num_slots`
    (maximum objects per level), `num_types`, `obs_mode`.
    """

    distribution: str = eqx.field(static=True, default="all")
    canvas: int = eqx.field(static=True, default=10)
    num_slots: int = eqx.field(static=True, default=5)
    num_types: int = eqx.field(static=True, default=5)
    obs_mode: str = eqx.field(static=True, default="flat")

    actions: ClassVar[tuple[tuple[int, int], ...]] = LEVEL_ACTIONS
    noop_action: ClassVar[int] = 4
    respawn_same_step: ClassVar[bool] = False

    def __check_init__(self):
        if self.obs_mode not in ("flat", "spatial"):
            raise ValueError(f"obs_mode must be 'flat' or 'spatial', got {self.obs_mode!r}")
        if self.canvas < 2 or self.num_slots < 1 or self.num_types < 1:
            raise ValueError(
                f"need canvas >= 2, num_slots >= 1, num_types >= 1; got {self.canvas}, "
                f"{self.num_slots}, {self.num_types}"
            )

    @property
    def name(self) -> str:
        """The level distribution's name, e.g. `"all"`."""
        return self.distribution

    @property
    def default_params(self) -> Level:
        """One level of `distribution`, drawn with `jax.random.key(0)`."""
        from ._distributions import sample_level

        return sample_level(
            jax.random.key(0), self.distribution, canvas=self.canvas, num_slots=self.num_slots
        )

    def observation_shape(self, params: Level | None = None) -> tuple[int, ...]:
        n = self.canvas * self.canvas
        if self.obs_mode == "flat":
            return ((1 + self.num_types) * n + 1,)
        return (self.canvas, self.canvas, 2 + self.num_types)

    def check_params(self, params: Level) -> None:
        _check_canvas(params, (self.canvas, self.canvas), self.num_slots, self.name)

    def get_obs(self, state: EnvState, params: Level) -> Float[Array, "..."]:
        n = self.canvas * self.canvas
        # Channel 0: agent; channel 1 + t: objects of type t (a scatter of k + 1 ones;
        # absent objects go out of bounds and are dropped).
        where = jnp.concatenate([state.agent[None], jnp.where(state.present, state.objects, n)])
        channel = jnp.concatenate([jnp.zeros((1,), jnp.int32), 1 + params.types])
        planes = jnp.zeros((1 + self.num_types, n), jnp.float32)
        planes = planes.at[channel, where].set(1.0, mode="drop")
        if self.obs_mode == "flat":
            time = (state.time.astype(jnp.float32) * 0.001)[None]
            return jnp.concatenate([planes.reshape(-1), time])
        walls = params.walls.reshape(1, n).astype(jnp.float32)
        planes = jnp.concatenate([planes[:1], walls, planes[1:]], axis=0)
        return planes.T.reshape(self.canvas, self.canvas, 2 + self.num_types)
