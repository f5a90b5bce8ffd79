"""Environment adapters: gymnax by name, any gymnax-interface object, a batched wrapper with
observation/reward normalisation and action clipping."""

import math
from typing import Any, NamedTuple

import equinox as eqx
import gymnax
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float, PRNGKeyArray, PyTree

#: gymnax environments the papers use (MinAtar: OPEN, Section 6; DeepSea: OPEN, Section 7.2)
#: plus CartPole for smoke tests. Any other gymnax-registered name also works.
GYMNAX_ENVS = (
    "CartPole-v1",
    "Breakout-MinAtar",
    "Asterix-MinAtar",
    "Freeway-MinAtar",
    "SpaceInvaders-MinAtar",
    "DeepSea-bsuite",
)

#: Brax tasks for the generalisation tests (Optim4RL, Figure 7; ur5e and grasp are no
#: longer in current Brax).
BRAX_ENVS = (
    "ant",
    "humanoid",
    "halfcheetah",
    "hopper",
    "walker2d",
    "inverted_double_pendulum",
    "reacher",
    "pusher",
)


def make_env(name: str, **kwargs: Any) -> tuple[Any, Any]:
    """Build an environment by name, with the gymnax 1.x interface.

    **Arguments:**

    - `name`: a gymnax name (`"CartPole-v1"`, `"Breakout-MinAtar"`, `"Asterix-MinAtar"`,
        `"Freeway-MinAtar"`, `"SpaceInvaders-MinAtar"`, `"DeepSea-bsuite"`, or any other
        gymnax-registered name) or a Brax task (`"ant"`, `"humanoid"`, ..., optionally
        prefixed `"brax/"`; needs the `brax` extra).
    - `kwargs`: passed to `gymnax.make` or to [`lorl_agents.BraxEnv`][].

    **Returns:**

    `(env, env_params)`.

    Gridworlds come from `lorl_gridworlds.make(name)`; their env objects plug in directly.
    """
    brax_name = name.removeprefix("brax/")
    if name in gymnax.registered_envs:
        with jax.numpy_dtype_promotion("standard"), jax.numpy_rank_promotion("allow"):
            return gymnax.make(name, **kwargs)
    if brax_name in BRAX_ENVS or name.startswith("brax/"):
        from ._brax import BraxEnv

        env = BraxEnv(brax_name, **kwargs)
        return env, env.default_params
    raise ValueError(
        f"unknown environment {name!r}. Known: gymnax {list(GYMNAX_ENVS)} (and every other "
        f"gymnax-registered name), Brax {list(BRAX_ENVS)}; gridworlds come from "
        "`lorl_gridworlds.make(name)` and are passed in as env objects."
    )


class RewardScaled(eqx.Module):
    """A gymnax-interface environment whose rewards are multiplied by `scale` (the other
    outputs unchanged).

    Optim4RL's multi-task meta-training scales each task's rewards so that the tasks'
    agent-gradients are of comparable size (the reference code's per-task reward scale).
    """

    env: Any
    scale: float = eqx.field(static=True)

    def __check_init__(self):
        if not self.scale > 0:
            raise ValueError(f"RewardScaled: scale must be > 0, got {self.scale}")

    @property
    def default_params(self) -> Any:
        return self.env.default_params

    def action_space(self, params: Any = None) -> Any:
        return self.env.action_space(params)

    def observation_space(self, params: Any = None) -> Any:
        return self.env.observation_space(params)

    def reset(self, key: PRNGKeyArray, params: Any = None) -> tuple[Any, Any]:
        return self.env.reset(key, params)

    def step(self, key: PRNGKeyArray, state: Any, action: Any, params: Any = None) -> tuple:
        obs, state, reward, terminated, truncated, info = self.env.step(key, state, action, params)
        return obs, state, reward * self.scale, terminated, truncated, info


def scale_rewards(env: Any, scale: float) -> Any:
    """`env` with every reward multiplied by `scale`.

    **Arguments:**

    - `env`: a gymnax-interface environment.
    - `scale`: a positive factor.

    **Returns:**

    `env` itself for `scale == 1`, else [`lorl_agents.RewardScaled`][]`(env, scale)`.
    (The LPG gridworlds also carry a reward scale in their level, the `env_params`:
    `lorl_gridworlds.make(name, reward_scale=...)`.)
    """
    if not scale > 0:
        raise ValueError(f"scale must be > 0, got {scale}")
    return env if scale == 1.0 else RewardScaled(env, float(scale))


class ActionSpec(NamedTuple):
    """What a policy must output for an environment."""

    continuous: bool
    n_outputs: int
    low: float | None
    high: float | None


def action_spec(env: Any, env_params: Any) -> ActionSpec:
    """Read an environment's action space (gymnax `Discrete` or 1-D `Box`, by duck typing).

    **Arguments:**

    - `env`, `env_params`: a gymnax-interface environment and its parameters.

    **Returns:**

    An [`lorl_agents.ActionSpec`][].
    """
    space = env.action_space(env_params)
    if hasattr(space, "n"):
        return ActionSpec(False, int(space.n), None, None)
    shape = getattr(space, "shape", None)
    if shape is not None and hasattr(space, "low") and hasattr(space, "high"):
        if len(shape) != 1:
            raise ValueError(f"continuous action spaces must be 1-D; got shape {tuple(shape)}")
        low = float(np.min(np.asarray(space.low)))
        high = float(np.max(np.asarray(space.high)))
        return ActionSpec(True, int(shape[0]), low, high)
    raise ValueError(
        f"unsupported action space {space!r}: need a discrete space (with `.n`) or a 1-D box "
        "(with `.shape`, `.low`, `.high`)"
    )


def observation_shape(env: Any, env_params: Any) -> tuple[int, ...]:
    """The shape of one observation, checked against what `env.reset` actually returns.

    **Arguments:**

    - `env`, `env_params`: a gymnax-interface environment and its parameters.

    **Returns:**

    The observation shape. Raises `ValueError` if the declared observation space and the
    observations disagree.
    """
    with jax.numpy_dtype_promotion("standard"), jax.numpy_rank_promotion("allow"):
        obs, _ = jax.eval_shape(env.reset, jax.random.key(0), env_params)
    if not hasattr(obs, "shape"):
        raise ValueError(f"observations must be single arrays; env.reset returned {obs!r}")
    declared = getattr(env.observation_space(env_params), "shape", None)
    if declared is not None and math.prod(declared) != math.prod(obs.shape):
        raise ValueError(
            f"observation mismatch: observation_space says shape {tuple(declared)}, "
            f"env.reset returns shape {tuple(obs.shape)}"
        )
    return tuple(obs.shape)


class RunningStats(eqx.Module):
    """Running mean and variance (parallel Welford update over a batch)."""

    mean: Float[Array, "..."]
    var: Float[Array, "..."]
    count: Float[Array, ""]

    @staticmethod
    def create(shape: tuple[int, ...]) -> "RunningStats":
        return RunningStats(
            jnp.zeros(shape, jnp.float32),
            jnp.ones(shape, jnp.float32),
            jnp.asarray(1e-4, jnp.float32),
        )

    def update(self, batch: Float[Array, "n ..."]) -> "RunningStats":
        batch_mean = jnp.mean(batch, axis=0)
        batch_var = jnp.var(batch, axis=0)
        n = jnp.asarray(batch.shape[0], jnp.float32)
        total = self.count + n
        delta = batch_mean - self.mean
        mean = self.mean + delta * (n / total)
        m2 = self.var * self.count + batch_var * n + delta**2 * (self.count * n / total)
        return RunningStats(mean, m2 / total, total)


class VecEnvState(eqx.Module):
    """State of [`lorl_agents.VecEnv`][]."""

    env_state: PyTree
    obs_stats: RunningStats | None
    reward_stats: RunningStats | None
    discounted_return: Float[Array, " n_envs"]


class VecEnv(eqx.Module):
    """`n_envs` copies of a gymnax-interface environment, stepped with `vmap`.

    Adds the usual wrappers, each optional: observation normalisation and reward
    normalisation with running statistics over the environment batch (reward scaled by the
    running standard deviation of the discounted return, as gym's `NormalizeReward`), and
    clipping of continuous actions to the action space. Observations are cast to float32.
    Environment calls run under standard dtype promotion, since third-party environments
    (gymnax) rely on implicit promotion.
    """

    env: Any = eqx.field(static=True)
    n_envs: int = eqx.field(static=True)
    normalize_obs: bool = eqx.field(static=True, default=False)
    normalize_reward: bool = eqx.field(static=True, default=False)
    gamma: float = eqx.field(static=True, default=0.99)
    clip_low: float | None = eqx.field(static=True, default=None)
    clip_high: float | None = eqx.field(static=True, default=None)

    def _normalise(self, stats: RunningStats | None, obs: Array) -> tuple[Array, Any]:
        if stats is None:
            return obs, None
        stats = stats.update(obs)
        normed = (obs - stats.mean[None]) * jax.lax.rsqrt(stats.var[None] + 1e-8)
        return normed, stats

    def reset(
        self, env_params: Any, *, key: PRNGKeyArray
    ) -> tuple[Float[Array, "n_envs ..."], VecEnvState]:
        """Reset every copy.

        **Arguments:**

        - `env_params`: environment parameters (shared by all copies).
        - `key`: PRNG key.

        **Returns:**

        `(observations, state)`.
        """
        keys = jax.random.split(key, self.n_envs)
        with jax.numpy_dtype_promotion("standard"), jax.numpy_rank_promotion("allow"):
            obs, env_state = jax.vmap(self.env.reset, in_axes=(0, None))(keys, env_params)
        obs = obs.astype(jnp.float32)
        obs_stats = RunningStats.create(obs.shape[1:]) if self.normalize_obs else None
        reward_stats = RunningStats.create(()) if self.normalize_reward else None
        obs, obs_stats = self._normalise(obs_stats, obs)
        zeros = jnp.zeros((self.n_envs,), jnp.float32)
        return obs, VecEnvState(env_state, obs_stats, reward_stats, zeros)

    def step(
        self,
        state: VecEnvState,
        action: Array,
        env_params: Any,
        *,
        key: PRNGKeyArray,
    ) -> tuple[
        Float[Array, "n_envs ..."],
        VecEnvState,
        Float[Array, " n_envs"],
        Bool[Array, " n_envs"],
        Bool[Array, " n_envs"],
        Float[Array, " n_envs"],
    ]:
        """Step every copy (with the environments' own auto-reset).

        **Arguments:**

        - `state`: current state.
        - `action`: one action per copy.
        - `env_params`: environment parameters.
        - `key`: PRNG key.

        **Returns:**

        `(observations, state, reward, terminated, truncated, raw_reward)`: `reward` is
        normalised if reward normalisation is on, `raw_reward` never is (for returns).
        The environments' `info` is dropped (gymnax puts a full observation in it).
        """
        if self.clip_low is not None and self.clip_high is not None:
            action = jnp.clip(action, self.clip_low, self.clip_high)
        keys = jax.random.split(key, self.n_envs)
        with jax.numpy_dtype_promotion("standard"), jax.numpy_rank_promotion("allow"):
            obs, env_state, reward, terminated, truncated, _ = jax.vmap(
                self.env.step, in_axes=(0, 0, 0, None)
            )(keys, state.env_state, action, env_params)
        obs = obs.astype(jnp.float32)
        raw_reward = reward.astype(jnp.float32)
        terminated = terminated.astype(jnp.bool_)
        truncated = truncated.astype(jnp.bool_)
        obs, obs_stats = self._normalise(state.obs_stats, obs)
        reward = raw_reward
        reward_stats = state.reward_stats
        # The discounted return is only tracked for reward normalisation (else it stays 0).
        discounted = state.discounted_return
        if reward_stats is not None:
            discounted = discounted * self.gamma + raw_reward
            reward_stats = reward_stats.update(discounted)
            reward = raw_reward * jax.lax.rsqrt(reward_stats.var + 1e-8)
            done = jnp.logical_or(terminated, truncated)
            discounted = jnp.where(done, jnp.zeros_like(discounted), discounted)
        new_state = VecEnvState(env_state, obs_stats, reward_stats, discounted)
        return obs, new_state, reward, terminated, truncated, raw_reward
