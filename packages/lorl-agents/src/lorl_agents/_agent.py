"""The abstract agent: what A2C and PPO share (a training run as one jitted function of a
key, the checks at its boundary) and what each implements."""

import abc
from typing import Any, ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray

from ._common import (
    EpisodeStats,
    TrainResult,
    as_optimizer,
    check_finite,
    first_nonfinite,
    init_optimizer,
    is_traced,
)
from ._envs import ActionSpec, VecEnv, action_spec, observation_shape


class AbstractAgent(eqx.Module):
    """An RL agent whose whole training run is one jitted function of a key, with every
    update a pure (differentiable) function so meta-learning can drive it.

    Subclasses ([`lorl_agents.A2C`][], [`lorl_agents.PPO`][]) implement the network, the
    environment check, `init`, `step` (a rollout and an update, taking the
    learned-optimizer context they need) and the final-return definition; `train` is
    shared.

    **Class attributes:**

    - `name`: `"a2c"` or `"ppo"`.
    - `curve_metric`: the per-update metric that is the agent's return curve.
    """

    config: eqx.AbstractVar[Any]
    name: ClassVar[str]
    curve_metric: ClassVar[str]

    @abc.abstractmethod
    def make_network(self, env: Any, env_params: Any, *, key: PRNGKeyArray) -> Any:
        """A fresh network for `env`'s observations and actions."""

    def check(self, env: Any, env_params: Any, network: Any) -> None:
        """Raise `ValueError` if `network` does not fit `env`'s observations or actions."""
        obs_shape = observation_shape(env, env_params)
        if network.obs_shape != obs_shape:
            raise ValueError(
                f"observation mismatch: the network expects observations of shape "
                f"{network.obs_shape}, the environment gives {obs_shape}"
            )
        self._check_actions(network, action_spec(env, env_params))

    @abc.abstractmethod
    def _check_actions(self, network: Any, spec: ActionSpec) -> None:
        """Raise `ValueError` if `network`'s outputs do not fit the action space `spec`."""

    @abc.abstractmethod
    def check_env(self, env: Any, env_params: Any) -> None:
        """Raise `ValueError` if this agent cannot train on `env`."""

    def init(
        self, env: Any, env_params: Any, optimizer: Any, network: Any = None, *, key: PRNGKeyArray
    ) -> Any:
        """Initial training state: network, optimizer state, environments, episode
        statistics, update counters and the run's key.

        **Arguments:**

        - `env`, `env_params`: a gymnax-interface environment and its parameters.
        - `optimizer`: optax transformation or learned optimizer.
        - `network`: start from this network instead of a fresh one.
        - `key`: PRNG key.

        **Returns:**

        The agent's state ([`lorl_agents.A2CState`][] or [`lorl_agents.PPOState`][]).
        """
        optimizer = as_optimizer(optimizer)
        net_key, env_key, run_key = jax.random.split(key, 3)
        if network is None:
            network = self.make_network(env, env_params, key=net_key)
        obs, env_state = self._vec_env(env, env_params).reset(env_params, key=env_key)
        opt_state = init_optimizer(optimizer, network)
        stats = EpisodeStats.create(self.config.n_envs)
        return self._initial_state(network, opt_state, env_state, obs, stats, run_key)

    @abc.abstractmethod
    def _vec_env(self, env: Any, env_params: Any) -> VecEnv:
        """The vectorised environment this agent trains in."""

    @abc.abstractmethod
    def _initial_state(
        self,
        network: Any,
        opt_state: Any,
        env_state: Any,
        obs: Array,
        stats: EpisodeStats,
        key: PRNGKeyArray,
    ) -> Any:
        """The agent's state type, holding these and its counters at 0."""

    @abc.abstractmethod
    def step(
        self,
        state: Any,
        env: Any,
        env_params: Any,
        optimizer: Any,
        *,
        training_proportion: Float[ArrayLike, ""] | None = None,
    ) -> tuple[Any, dict[str, Array]]:
        """One update (rollout, then optimizer steps): `(state, metrics)`."""

    @abc.abstractmethod
    def final_return(self, state: Any, metrics: dict[str, Array]) -> Float[Array, ""]:
        """The run's final return from its last state and stacked per-update metrics."""

    @property
    @abc.abstractmethod
    def optimizer_calls_per_update(self) -> int:
        """How many times one update calls the optimizer."""

    @property
    def optimizer_calls(self) -> int:
        """How many times a whole training run calls its optimizer."""
        return self.config.n_updates * self.optimizer_calls_per_update

    def train(
        self,
        env: Any,
        env_params: Any,
        optimizer: Any,
        network: Any = None,
        *,
        key: PRNGKeyArray,
    ) -> TrainResult:
        """A whole training run, one jitted function of `key` (vmap it over keys, or over
        an `eqx.Module` optimizer's meta-parameters).

        **Arguments:**

        - `env`, `env_params`: a gymnax-interface environment and its parameters (from
            [`lorl_agents.make_env`][], `gymnax.make`, `lorl_gridworlds.make`, ...).
        - `optimizer`: optax `GradientTransformation` (plain or `ExtraArgs`) or a learned
            optimizer with optax-style `init` / `update`.
        - `network`: start from this network instead of a fresh one.
        - `key`: PRNG key.

        **Returns:**

        A [`lorl_agents.TrainResult`][] whose `final_return` is the agent's definition
        (`final_return`). When called outside `jit`/`vmap`, raises
        [`lorl_agents.NonFiniteUpdateError`][] (with the first bad update index) if the
        optimizer produced NaN or infinite updates; under `vmap`, call
        [`lorl_agents.check_finite`][] on the result.
        """
        as_optimizer(optimizer)
        if network is not None:
            self.check(env, env_params, network)
        else:
            self.check_env(env, env_params)
        result = _train(self, env, env_params, optimizer, network, key)
        if not is_traced(result.first_nonfinite_update):
            check_finite(result)
        return result


@eqx.filter_jit
def _train(
    agent: AbstractAgent,
    env: Any,
    env_params: Any,
    optimizer: Any,
    network: Any,
    key: PRNGKeyArray,
) -> TrainResult:
    state = agent.init(env, env_params, optimizer, network, key=key)

    def body(state: Any, _: None) -> tuple[Any, dict[str, Array]]:
        return agent.step(state, env, env_params, optimizer)

    state, metrics = jax.lax.scan(body, state, None, length=agent.config.n_updates)
    return TrainResult(
        network=state.network,
        metrics=metrics,
        final_return=jnp.asarray(agent.final_return(state, metrics)),
        first_nonfinite_update=first_nonfinite(metrics["nonfinite"]),
        layer_names=state.network.layer_names(),
    )
