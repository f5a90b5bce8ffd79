"""A2C as in the Optim4RL paper (Lan et al. 2024, Appendix C), fully jitted, with the
update step exposed as a pure, differentiable function."""

from typing import Any, ClassVar, Literal

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Bool, Float, Int, PRNGKeyArray, PyTree

from ._agent import AbstractAgent
from ._common import (
    EpisodeStats,
    as_optimizer,
    episode_metrics,
    optimizer_step,
)
from ._config import A2CConfig
from ._distributions import categorical_entropy, categorical_log_prob, categorical_sample
from ._dormancy import dormant_fraction
from ._envs import ActionSpec, VecEnv, VecEnvState, action_spec, observation_shape
from ._networks import A2CNetwork
from ._returns import lambda_returns


class Trajectory(eqx.Module):
    """A rollout: `n_steps` transitions of every environment, time axis first."""

    obs: Float[Array, "time n_envs ..."]
    actions: Int[Array, "time n_envs"]
    rewards: Float[Array, "time n_envs"]
    dones: Bool[Array, "time n_envs"]
    last_obs: Float[Array, "n_envs ..."]


class A2CState(eqx.Module):
    """Everything an A2C run carries from one update to the next."""

    network: A2CNetwork
    opt_state: PyTree
    env_state: VecEnvState
    obs: Float[Array, "n_envs ..."]
    episodes: EpisodeStats
    update: Int[Array, ""]
    key: PRNGKeyArray


class A2C(AbstractAgent):
    """Advantage actor-critic (Mnih et al. 2016) as trained in the Optim4RL paper.

    Each update: a rollout of `n_steps` in `n_envs` environments, lambda-returns from the
    network's own (stop-gradient) values, one gradient of

    `vf_coef * mean(delta^2) + mean(-log pi(a) * sg(delta)) - ent_coef * mean(H(pi))`,
    `delta = G_lambda - V`,

    element-wise gradient clipping, and one optimizer step. [`lorl_agents.A2C.update`][]
    is a pure function of the network, optimizer state, trajectory and optimizer, so
    meta-gradients flow through it (into an `eqx.Module` optimizer's fields).
    """

    config: A2CConfig = eqx.field(static=True)
    name: ClassVar[str] = "a2c"
    curve_metric: ClassVar[str] = "episode_return"

    @property
    def optimizer_calls_per_update(self) -> int:
        """One optimizer call per update."""
        return 1

    def check_env(self, env: Any, env_params: Any) -> None:
        """Raise `ValueError` unless `env` has discrete actions (A2C here is for the
        gridworlds) and observations of a known shape."""
        spec = action_spec(env, env_params)
        if spec.continuous:
            raise ValueError("A2C here supports discrete action spaces only (gridworlds)")
        observation_shape(env, env_params)

    def final_return(self, state: A2CState, metrics: dict[str, Array]) -> Float[Array, ""]:
        """The Optim4RL definition: the mean of the per-update average episode return over
        the last `final_return_window` updates (updates without a finished episode are
        skipped)."""
        window = min(self.config.final_return_window, self.config.n_updates)
        return jnp.nanmean(metrics["episode_return"][-window:])

    def _venv(self, env: Any) -> VecEnv:
        return VecEnv(env, self.config.n_envs, gamma=self.config.gamma)

    def make_network(self, env: Any, env_params: Any, *, key: PRNGKeyArray) -> A2CNetwork:
        """A freshly initialised shared-torso network for `env` (discrete actions only).

        **Arguments:**

        - `env`, `env_params`: the environment.
        - `key`: PRNG key.

        **Returns:**

        An [`lorl_agents.A2CNetwork`][].
        """
        spec = action_spec(env, env_params)
        if spec.continuous:
            raise ValueError("A2C here supports discrete action spaces only (gridworlds)")
        return A2CNetwork(
            observation_shape(env, env_params),
            spec.n_outputs,
            torso=self.config.torso,
            hidden=self.config.hidden,
            conv_features=self.config.conv_features,
            key=key,
        )

    def _check_actions(self, network: A2CNetwork, spec: ActionSpec) -> None:
        if spec.continuous or network.policy_head.out_features != spec.n_outputs:
            raise ValueError(
                f"action mismatch: the network has {network.policy_head.out_features} "
                f"discrete actions, the environment's action space is "
                f"{'continuous' if spec.continuous else 'discrete'} with {spec.n_outputs}"
            )

    def _vec_env(self, env: Any, env_params: Any) -> VecEnv:
        return self._venv(env)

    def _initial_state(
        self,
        network: Any,
        opt_state: Any,
        env_state: Any,
        obs: Array,
        stats: EpisodeStats,
        key: PRNGKeyArray,
    ) -> A2CState:
        return A2CState(network, opt_state, env_state, obs, stats, jnp.asarray(0, jnp.int32), key)

    def rollout(
        self, state: A2CState, env: Any, env_params: Any
    ) -> tuple[A2CState, Trajectory, dict[str, Array]]:
        """Collect `n_steps` transitions in every environment with the current policy.

        **Arguments:**

        - `state`: the training state (its key is advanced).
        - `env`, `env_params`: the environment.

        **Returns:**

        `(state, trajectory, episode_metrics)`.
        """
        venv = self._venv(env)
        network = state.network

        def one_step(carry, _):
            env_state, obs, episodes, key = carry
            key, act_key, env_key = jax.random.split(key, 3)
            logits, _, _ = jax.vmap(network)(obs)
            action = categorical_sample(logits, key=act_key)
            next_obs, env_state, reward, term, trunc, raw = venv.step(
                env_state, action, env_params, key=env_key
            )
            done = jnp.logical_or(term, trunc)
            episodes, f_ret, f_len, f_n = episodes.record(raw, done)
            return (env_state, next_obs, episodes, key), (
                (obs, action, reward, done),
                (f_ret, f_len, f_n),
            )

        key, rollout_key = jax.random.split(state.key)
        (env_state, obs, episodes, _), (traj, finished) = jax.lax.scan(
            one_step,
            (state.env_state, state.obs, state.episodes, rollout_key),
            None,
            length=self.config.n_steps,
        )
        t_obs, t_action, t_reward, t_done = traj
        trajectory = Trajectory(t_obs, t_action, t_reward, t_done, obs)
        new_state = A2CState(network, state.opt_state, env_state, obs, episodes, state.update, key)
        return new_state, trajectory, episode_metrics(*finished, episodes)

    def loss(
        self,
        network: A2CNetwork,
        trajectory: Trajectory,
        part: Literal["full", "actor"] = "full",
    ) -> tuple[Float[Array, ""], dict[str, Any]]:
        """The A2C loss of the Optim4RL paper on a trajectory.

        **Arguments:**

        - `network`: the actor-critic.
        - `trajectory`: a rollout.
        - `part`: `"full"` (the inner loss) or `"actor"`: the policy-gradient term minus
            the entropy bonus, without the critic term (the Optim4RL paper's outer loss for
            meta-learning, Appendix C).

        **Returns:**

        `(loss, aux)`; `aux` holds the loss terms and the per-layer `activations` of the
        forward pass.
        """
        cfg = self.config
        time, n_envs = trajectory.rewards.shape
        obs = trajectory.obs.reshape((time * n_envs, *trajectory.obs.shape[2:]))
        logits, values, activations = jax.vmap(network)(obs)
        _, last_values, _ = jax.vmap(network)(trajectory.last_obs)
        values = values.reshape(time, n_envs)
        targets = lambda_returns(
            trajectory.rewards,
            jax.lax.stop_gradient(values),
            trajectory.dones,
            jax.lax.stop_gradient(last_values),
            cfg.gamma,
            cfg.lam,
        )
        delta = targets - values
        log_probs = categorical_log_prob(logits, trajectory.actions.reshape(-1))
        actor_loss = jnp.mean(-log_probs * jax.lax.stop_gradient(delta.reshape(-1)))
        critic_loss = jnp.mean(delta**2)
        entropy = jnp.mean(categorical_entropy(logits))
        actor_part = actor_loss - cfg.ent_coef * entropy
        total = actor_part + cfg.vf_coef * critic_loss if part == "full" else actor_part
        aux = {
            "actor_loss": actor_loss,
            "value_loss": critic_loss,
            "entropy": entropy,
            "total_loss": actor_part + cfg.vf_coef * critic_loss,
            "activations": activations,
        }
        return total, aux

    def update(
        self,
        network: A2CNetwork,
        opt_state: PyTree,
        trajectory: Trajectory,
        optimizer: Any,
        update_index: Int[Array, ""],
        *,
        training_proportion: Float[ArrayLike, ""] | None = None,
        key: PRNGKeyArray,
    ) -> tuple[A2CNetwork, PyTree, dict[str, Array]]:
        """One A2C update: gradient of the full loss, element-wise clipping, one optimizer
        step with the learned-optimizer context. Pure and differentiable (w.r.t. the
        optimizer's array fields, the network, ...).

        **Arguments:**

        - `network`: the actor-critic.
        - `opt_state`: the optimizer state.
        - `trajectory`: a rollout from `network`.
        - `optimizer`: optax transformation or learned optimizer.
        - `update_index`: index of this update (for the default training proportion
            `update_index / (n_updates - 1)`; batch proportion is 0 since A2C makes one
            pass over each batch).
        - `training_proportion`: the training proportion passed to a learned optimizer
            (OPEN's "how far through training" input), overriding the default
            `update_index / (n_updates - 1)`, which is only right for one run of
            `config.n_updates` updates. Meta-training with pipeline training passes each
            unit's age over its lifetime (`lorl_meta.MetaGradientTrainer`).
        - `key`: PRNG key, passed to the optimizer.

        **Returns:**

        `(network, opt_state, metrics)`.
        """
        cfg = self.config
        optimizer = as_optimizer(optimizer)
        (_, aux), grads = eqx.filter_value_and_grad(self.loss, has_aux=True)(network, trajectory)
        if cfg.max_grad_value is not None:
            c = cfg.max_grad_value
            grads = jax.tree.map(lambda g: jnp.clip(g, -c, c), grads)
        activations = aux.pop("activations")
        if training_proportion is None:
            train_prop = update_index.astype(jnp.float32) / max(cfg.n_updates - 1, 1)
        else:
            train_prop = jnp.asarray(training_proportion, jnp.float32)
        network, opt_state, finite = optimizer_step(
            optimizer,
            network,
            opt_state,
            grads,
            activations,
            eqx.filter(network.layer_proportions(), eqx.is_array),
            eqx.filter(network.actor_mask(), eqx.is_array),
            train_prop,
            jnp.asarray(0.0, jnp.float32),
            key=key,
        )
        aux["nonfinite"] = jnp.logical_not(finite)
        aux["dormancy"] = jnp.stack([dormant_fraction(a, cfg.dormancy_tau) for a in activations])
        return network, opt_state, aux

    def step(
        self,
        state: A2CState,
        env: Any,
        env_params: Any,
        optimizer: Any,
        *,
        training_proportion: Float[ArrayLike, ""] | None = None,
    ) -> tuple[A2CState, dict[str, Array]]:
        """Rollout then update. Pure and differentiable (meta-gradient training calls it
        for every inner update).

        **Arguments:**

        - `state`: the training state.
        - `env`, `env_params`: the environment.
        - `optimizer`: the optimizer (the same one as at `init`).
        - `training_proportion`: passed to [`lorl_agents.A2C.update`][] (default: this
            run's `update / (n_updates - 1)`; pipeline training passes each unit's age).

        **Returns:**

        `(state, metrics)`: the update's metrics and the rollout's episode statistics.
        """
        state, trajectory, ep_metrics = self.rollout(state, env, env_params)
        key, opt_key = jax.random.split(state.key)
        network, opt_state, metrics = self.update(
            state.network,
            state.opt_state,
            trajectory,
            optimizer,
            state.update,
            training_proportion=training_proportion,
            key=opt_key,
        )
        metrics.update(ep_metrics)
        new_state = A2CState(
            network, opt_state, state.env_state, state.obs, state.episodes, state.update + 1, key
        )
        return new_state, metrics
