"""Brax environments behind the gymnax 1.x interface (needs the `brax` extra)."""

import contextlib
from typing import Any, cast

import equinox as eqx
import jax
import jax.numpy as jnp
from gymnax.environments import spaces
from jaxtyping import Array, Bool, Float, Int, PRNGKeyArray


@contextlib.contextmanager
def _lenient():
    """Brax relies on implicit dtype and rank promotion."""
    with jax.numpy_dtype_promotion("standard"), jax.numpy_rank_promotion("allow"):
        yield


class BraxParams(eqx.Module):
    """Parameters of [`lorl_agents.BraxEnv`][]."""

    max_steps_in_episode: int = eqx.field(static=True, default=1000)


class BraxEnvState(eqx.Module):
    """A Brax state plus the step count of the current episode."""

    brax_state: Any
    time: Int[Array, ""]


class BraxEnv:
    """A Brax task with the gymnax 1.x interface: episode limit (truncation), auto-reset
    and clipping of actions to `[-1, 1]` (Brax's action range). Observation and reward
    normalisation need statistics over the environment batch, so they live in
    [`lorl_agents.VecEnv`][] (`PPOConfig.normalize_obs` / `normalize_reward`).

    **Arguments:**

    - `name`: a Brax task name (`"ant"`, `"humanoid"`, `"halfcheetah"`, `"hopper"`,
        `"walker2d"`, `"inverted_double_pendulum"`, `"reacher"`, `"pusher"`, ...).
    - `backend`: Brax physics backend; `"mjx"` is the fastest on CPU here.
    - `episode_length`: the episode limit (OPEN / Brax default: 1000).
    - `kwargs`: passed to the Brax environment.
    """

    def __init__(self, name: str, backend: str = "mjx", episode_length: int = 1000, **kwargs: Any):
        try:
            # Optional extra (`lorl-agents[brax]`): absent from the lint environment.
            import brax.envs  # pyright: ignore[reportMissingImports]
        except ImportError as e:  # pragma: no cover - depends on the installation
            raise ImportError(
                "Brax environments need the optional extra: pip install 'lorl-agents[brax]'"
            ) from e
        known = sorted(brax.envs._envs)
        if name not in known:
            raise ValueError(f"unknown Brax environment {name!r}; known: {known}")
        if episode_length < 1:
            raise ValueError(f"episode_length must be >= 1, got {episode_length}")
        self.name = name
        self.episode_length = episode_length
        with _lenient():
            self._env = brax.envs.get_environment(name, backend=backend, **kwargs)
            obs_size = self._env.observation_size
        if not isinstance(obs_size, int):
            raise ValueError(
                f"Brax environment {name!r} has structured observations {obs_size!r}; only "
                "flat vector observations are supported"
            )
        self._obs_size = obs_size
        with _lenient():
            self._action_size = int(self._env.action_size)

    @property
    def default_params(self) -> BraxParams:
        return BraxParams(self.episode_length)

    def action_space(self, params: BraxParams | None = None) -> spaces.Box:
        return spaces.Box(-1.0, 1.0, (self._action_size,), jnp.float32)

    def observation_space(self, params: BraxParams | None = None) -> spaces.Box:
        return spaces.Box(-jnp.inf, jnp.inf, (self._obs_size,), jnp.float32)

    def reset(
        self, key: PRNGKeyArray, params: BraxParams | None = None
    ) -> tuple[Float[Array, " obs_dim"], BraxEnvState]:
        """Start an episode.

        **Arguments:**

        - `key`: PRNG key.
        - `params`: unused (episode limit lives in `step`).

        **Returns:**

        `(obs, state)`.
        """
        with _lenient():
            brax_state = self._env.reset(key)
        return cast(Array, brax_state.obs), BraxEnvState(brax_state, jnp.asarray(0, jnp.int32))

    def step(
        self,
        key: PRNGKeyArray,
        state: BraxEnvState,
        action: Float[Array, " action_dim"],
        params: BraxParams | None = None,
    ) -> tuple[
        Float[Array, " obs_dim"],
        BraxEnvState,
        Float[Array, ""],
        Bool[Array, ""],
        Bool[Array, ""],
        dict[str, Any],
    ]:
        """One step with auto-reset.

        **Arguments:**

        - `key`: PRNG key (for the reset).
        - `state`: current state.
        - `action`: continuous action (clipped to `[-1, 1]`).
        - `params`: episode limit.

        **Returns:**

        `(obs, state, reward, terminated, truncated, info)` in the gymnax 1.x convention:
        after an episode ends, `obs` and `state` are a fresh episode's.
        """
        params = self.default_params if params is None else params
        action = jnp.clip(action, -1.0, 1.0)
        with _lenient():
            next_state = self._env.step(state.brax_state, action)
        time = state.time + 1
        terminated = next_state.done > 0.5
        truncated = jnp.logical_and(time >= params.max_steps_in_episode, ~terminated)
        done = jnp.logical_or(terminated, truncated)
        reset_obs, reset_state = self.reset(key, params)
        stepped = BraxEnvState(next_state, time)
        new_state = jax.tree.map(lambda r, s: jnp.where(done, r, s), reset_state, stepped)
        obs = jnp.where(done, reset_obs, cast(Array, next_state.obs))
        reward = next_state.reward.astype(jnp.float32)
        return obs, new_state, reward, terminated, truncated, {}
