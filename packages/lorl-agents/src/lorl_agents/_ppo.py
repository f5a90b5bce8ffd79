"""PPO as in the OPEN paper (Goldie et al. 2024, Appendix C.1), fully jitted."""

from typing import Any, ClassVar, Literal

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float, Int, PRNGKeyArray, PyTree

from ._agent import AbstractAgent
from ._common import (
    EpisodeStats,
    all_finite,
    as_optimizer,
    clip_by_group_norm,
    episode_metrics,
    optimizer_context,
    optimizer_step,
)
from ._config import PPOConfig
from ._distributions import (
    categorical_entropy,
    categorical_log_prob,
    categorical_sample,
    gaussian_entropy,
    gaussian_log_prob,
    gaussian_sample,
)
from ._dormancy import dormant_fraction
from ._envs import ActionSpec, VecEnv, VecEnvState, action_spec, observation_shape
from ._networks import PPONetwork
from ._returns import gae
from ._update_stats import momentum_statistics, noise_statistics, update_statistics


def normalize_advantages(advantages: Float[Array, " batch"]) -> Float[Array, " batch"]:
    """Zero-mean, unit-standard-deviation advantages over a minibatch:
    `(A - mean(A)) / (std(A) + 1e-8)`.

    **Arguments:**

    - `advantages`: the minibatch's advantages.

    **Returns:**

    The normalised advantages.
    """
    return (advantages - jnp.mean(advantages)) / (jnp.std(advantages) + 1e-8)


def clipped_policy_loss(
    log_prob: Float[Array, " batch"],
    old_log_prob: Float[Array, " batch"],
    advantages: Float[Array, " batch"],
    clip_eps: float,
) -> tuple[Float[Array, ""], Float[Array, ""]]:
    """PPO's clipped surrogate objective (Schulman et al. 2017, eq. 7), as a loss.

    `-mean(min(r * A, clip(r, 1 - eps, 1 + eps) * A))` with `r = exp(log_prob - old)`.

    **Arguments:**

    - `log_prob`: log-probabilities of the taken actions under the current policy.
    - `old_log_prob`: the same under the rollout policy.
    - `advantages`: (normalised) advantages.
    - `clip_eps`: the clip range `eps`.

    **Returns:**

    `(loss, clip_fraction)`: the fraction of samples whose ratio was clipped.
    """
    ratio = jnp.exp(log_prob - old_log_prob)
    unclipped = ratio * advantages
    clipped = jnp.clip(ratio, 1.0 - clip_eps, 1.0 + clip_eps) * advantages
    clip_fraction = jnp.mean((jnp.abs(ratio - 1.0) > clip_eps).astype(jnp.float32))
    return -jnp.mean(jnp.minimum(unclipped, clipped)), clip_fraction


def clipped_value_loss(
    values: Float[Array, " batch"],
    old_values: Float[Array, " batch"],
    targets: Float[Array, " batch"],
    clip_eps: float,
) -> Float[Array, ""]:
    """Clipped value loss (PPO2 / PureJaxRL):
    `0.5 * mean(max((v - G)^2, (v_old + clip(v - v_old, -eps, eps) - G)^2))`.

    **Arguments:**

    - `values`: current value predictions.
    - `old_values`: the rollout's value predictions.
    - `targets`: value targets (GAE lambda-returns).
    - `clip_eps`: the clip range.

    **Returns:**

    The loss (a scalar).
    """
    clipped = old_values + jnp.clip(values - old_values, -clip_eps, clip_eps)
    return 0.5 * jnp.mean(jnp.maximum((values - targets) ** 2, (clipped - targets) ** 2))


class PPOBatch(eqx.Module):
    """Transitions for a PPO loss (flat batch axis first)."""

    obs: Float[Array, "batch ..."]
    actions: Array
    log_probs: Float[Array, " batch"]
    values: Float[Array, " batch"]
    advantages: Float[Array, " batch"]
    targets: Float[Array, " batch"]


def ppo_loss(
    network: PPONetwork, batch: PPOBatch, config: PPOConfig
) -> tuple[Float[Array, ""], dict[str, Any]]:
    """The PPO loss on one minibatch: clipped policy loss with per-minibatch advantage
    normalisation, `vf_coef` times the clipped value loss, minus `ent_coef` times the
    entropy.

    **Arguments:**

    - `network`: the actor-critic.
    - `batch`: the minibatch.
    - `config`: for `clip_eps`, `vf_coef`, `ent_coef`.

    **Returns:**

    `(loss, aux)`; `aux` holds the loss terms, `approx_kl`, `clip_fraction` and the
    per-layer `activations` of this forward pass (for dormancy).
    """
    out, values, activations = jax.vmap(network)(batch.obs)
    if network.continuous:
        assert network.log_std is not None
        log_probs = gaussian_log_prob(out, network.log_std, batch.actions)
        entropy = jnp.mean(gaussian_entropy(out, network.log_std))
    else:
        log_probs = categorical_log_prob(out, batch.actions)
        entropy = jnp.mean(categorical_entropy(out))
    advantages = normalize_advantages(batch.advantages)
    actor_loss, clip_fraction = clipped_policy_loss(
        log_probs, batch.log_probs, advantages, config.clip_eps
    )
    value_loss = clipped_value_loss(values, batch.values, batch.targets, config.clip_eps)
    total = actor_loss + config.vf_coef * value_loss - config.ent_coef * entropy
    log_ratio = log_probs - batch.log_probs
    approx_kl = jnp.mean(jnp.exp(log_ratio) - 1.0 - log_ratio)
    aux = {
        "actor_loss": actor_loss,
        "value_loss": value_loss,
        "entropy": entropy,
        "total_loss": total,
        "approx_kl": approx_kl,
        "clip_fraction": clip_fraction,
        "activations": activations,
    }
    return total, aux


class PPOState(eqx.Module):
    """Everything a PPO run carries from one update to the next."""

    network: PPONetwork
    opt_state: PyTree
    env_state: VecEnvState
    obs: Float[Array, "n_envs ..."]
    episodes: EpisodeStats
    opt_step: Int[Array, ""]
    update: Int[Array, ""]
    key: PRNGKeyArray


class PPO(AbstractAgent):
    """Proximal policy optimisation (Schulman et al. 2017) as the OPEN paper runs it.

    PureJaxRL-style: rollouts, GAE, epochs of shuffled minibatches and the optimizer all
    live inside one jitted function of a key. Separate actor and critic, clipped value
    loss, per-minibatch advantage normalisation, global-norm gradient clipping (actor and
    critic separately) before the optimizer. The optimizer is any optax
    `GradientTransformation` or learned optimizer; it receives the learned-optimizer context
    as extra keyword arguments (see [`lorl_agents.optimizer_step`][]).

    Episodes that end by truncation (time limit) are treated as terminal, as in the OPEN
    reference.
    """

    config: PPOConfig = eqx.field(static=True)
    name: ClassVar[str] = "ppo"
    curve_metric: ClassVar[str] = "last_return"

    @property
    def optimizer_calls_per_update(self) -> int:
        """`n_epochs * n_minibatches` optimizer calls per update."""
        return self.config.n_epochs * self.config.n_minibatches

    def check_env(self, env: Any, env_params: Any) -> None:
        """Raise `ValueError` unless `env`'s observations and actions are supported."""
        observation_shape(env, env_params)
        action_spec(env, env_params)

    def final_return(self, state: PPOState, metrics: dict[str, Array]) -> Float[Array, ""]:
        """The OPEN definition: the mean over environments of each environment's last
        completed episode return at the end of training."""
        return jnp.mean(state.episodes.last_return)

    def _venv(self, env: Any, env_params: Any) -> VecEnv:
        spec = action_spec(env, env_params)
        clip = spec.continuous and self.config.clip_actions
        return VecEnv(
            env,
            self.config.n_envs,
            normalize_obs=self.config.normalize_obs,
            normalize_reward=self.config.normalize_reward,
            gamma=self.config.gamma,
            clip_low=spec.low if clip else None,
            clip_high=spec.high if clip else None,
        )

    def make_network(self, env: Any, env_params: Any, *, key: PRNGKeyArray) -> PPONetwork:
        """A freshly initialised actor-critic for `env`.

        **Arguments:**

        - `env`, `env_params`: the environment (its spaces decide the network's shape).
        - `key`: PRNG key.

        **Returns:**

        A [`lorl_agents.PPONetwork`][].
        """
        spec = action_spec(env, env_params)
        return PPONetwork(
            observation_shape(env, env_params),
            spec.n_outputs,
            continuous=spec.continuous,
            width=self.config.width,
            n_hidden=self.config.n_hidden,
            critic_width=self.config.critic_width,
            critic_hidden=self.config.critic_hidden,
            activation=self.config.activation,
            key=key,
        )

    def _check_actions(self, network: PPONetwork, spec: ActionSpec) -> None:
        n_out = network.actor[-1].out_features
        if network.continuous != spec.continuous or n_out != spec.n_outputs:
            kind = "continuous" if spec.continuous else "discrete"
            raise ValueError(
                f"action mismatch: the environment has a {kind} action space with "
                f"{spec.n_outputs} {'dimensions' if spec.continuous else 'actions'}, the "
                f"network is {'continuous' if network.continuous else 'discrete'} with "
                f"{n_out} outputs"
            )

    def _vec_env(self, env: Any, env_params: Any) -> VecEnv:
        return self._venv(env, env_params)

    def _initial_state(
        self,
        network: Any,
        opt_state: Any,
        env_state: Any,
        obs: Array,
        stats: EpisodeStats,
        key: PRNGKeyArray,
    ) -> PPOState:
        zero = jnp.asarray(0, jnp.int32)
        return PPOState(network, opt_state, env_state, obs, stats, zero, zero, key)

    def rollout(
        self, state: PPOState, env: Any, env_params: Any
    ) -> tuple[PPOState, PPOBatch, dict[str, Array], PRNGKeyArray]:
        """Collect `n_steps` transitions in every environment with the current policy and
        compute GAE advantages and value targets. Pure.

        The batch's log-probabilities, values, advantages and targets are constants of the
        PPO loss: they are returned under `stop_gradient` (the identity on values), so a
        loss on this batch differentiated w.r.t. anything upstream of `state.network`
        (e.g. a learned optimizer's meta-parameters) sees only the current policy's terms.

        **Arguments:**

        - `state`: the training state (its key is advanced).
        - `env`, `env_params`: the environment.

        **Returns:**

        `(state, batch, episode_metrics, update_key)`: the state after the rollout (new
        environment state, observations, episode statistics, key), the flat batch of
        `n_envs * n_steps` transitions, the episode metrics of this rollout, and the key
        of the following [`lorl_agents.PPO.update`][] (`step` passes it on).
        """
        cfg = self.config
        venv = self._venv(env, env_params)
        # The behaviour policy is a constant of the loss (no pathwise gradient through
        # sampled actions into the environment's dynamics).
        network = jax.lax.stop_gradient(state.network)

        def rollout_step(carry, _):
            env_state, obs, episodes, key = carry
            key, act_key, env_key = jax.random.split(key, 3)
            out, value, _ = jax.vmap(network)(obs)
            if network.continuous:
                assert network.log_std is not None
                action = gaussian_sample(out, network.log_std, key=act_key)
                log_prob = gaussian_log_prob(out, network.log_std, action)
            else:
                action = categorical_sample(out, key=act_key)
                log_prob = categorical_log_prob(out, action)
            next_obs, env_state, reward, term, trunc, raw = venv.step(
                env_state, action, env_params, key=env_key
            )
            done = jnp.logical_or(term, trunc)
            episodes, f_ret, f_len, f_n = episodes.record(raw, done)
            transition = (obs, action, log_prob, value, reward, done)
            return (env_state, next_obs, episodes, key), (transition, (f_ret, f_len, f_n))

        key, rollout_key, update_key = jax.random.split(state.key, 3)
        (env_state, obs, episodes, _), (traj, finished) = jax.lax.scan(
            rollout_step,
            (state.env_state, state.obs, state.episodes, rollout_key),
            None,
            length=cfg.n_steps,
        )
        t_obs, t_action, t_logp, t_value, t_reward, t_done = traj
        _, last_value, _ = jax.vmap(network)(obs)
        advantages, targets = gae(t_reward, t_value, t_done, last_value, cfg.gamma, cfg.gae_lambda)

        def flat(x):
            return x.reshape((cfg.batch_size, *x.shape[2:]))

        data = PPOBatch(
            flat(t_obs), flat(t_action), flat(t_logp), flat(t_value),
            flat(advantages), flat(targets),
        )  # fmt: skip
        data = jax.lax.stop_gradient(data)
        new_state = PPOState(
            state.network,
            state.opt_state,
            env_state,
            obs,
            episodes,
            state.opt_step,
            state.update,
            key,
        )
        return new_state, data, episode_metrics(*finished, episodes), update_key

    def update(
        self,
        network: PPONetwork,
        opt_state: PyTree,
        opt_step: Int[Array, ""],
        batch: PPOBatch,
        optimizer: Any,
        *,
        training_proportion: Float[ArrayLike, ""] | None = None,
        key: PRNGKeyArray,
    ) -> tuple[PPONetwork, PyTree, Int[Array, ""], dict[str, Array]]:
        """One PPO update on a rollout batch: `n_epochs` passes over `n_minibatches`
        shuffled minibatches, each a gradient of [`lorl_agents.ppo_loss`][], global-norm
        clipping and one optimizer step with the learned-optimizer context. Pure and
        differentiable w.r.t. the optimizer's array fields (meta-gradients flow through
        every optimizer step and its state).

        The agent-gradients enter the optimizer as `stop_gradient` inputs (Optim4RL
        Section 2.2, spec agents_and_meta.md section 3): a meta-gradient does not
        differentiate through the agent-gradient itself (no second-order terms of the
        PPO loss). On values this is the identity, so `train` is unchanged.

        **Arguments:**

        - `network`: the actor-critic that collected `batch`.
        - `opt_state`: the optimizer state.
        - `opt_step`: optimizer steps taken so far (`PPOState.opt_step`; sets the batch
            proportion and the default training proportion).
        - `batch`: the rollout from [`lorl_agents.PPO.rollout`][].
        - `optimizer`: optax transformation or learned optimizer.
        - `training_proportion`: the training proportion passed to a learned optimizer,
            overriding the default `(opt_step // (n_epochs * n_minibatches)) /
            (n_updates - 1)` (OPEN reference), which is only right for one run of
            `config.n_updates` updates. Meta-training with pipeline training passes each
            unit's age over its lifetime (`lorl_meta.PPOMetaGradientTrainer`).
        - `key`: PRNG key (minibatch shuffling and the optimizer's keys).

        **Returns:**

        `(network, opt_state, opt_step, metrics)`; `metrics` holds the loss terms
        averaged over minibatches, `grad_norm`, `nonfinite` (any optimizer step produced
        NaN/inf) and `dormancy` (per layer, last minibatch); with
        `config.update_statistics`, also `update_grad_cosine` and `update_param_ratio`
        averaged over the update's optimizer steps (`lorl_agents.update_statistics`),
        for an optimizer with learned noise (`noise_weights`, e.g. OPEN)
        `noise_param_ratio` (`lorl_agents.noise_statistics`), and for a
        [`lorl_agents.MomentumProbe`][] `update_momentum_cosine_<beta>`.
        """
        cfg = self.config
        data = batch
        optimizer = as_optimizer(optimizer)
        layer_props = eqx.filter(network.layer_proportions(), eqx.is_array)
        actor_mask = eqx.filter(network.actor_mask(), eqx.is_array)
        n_updates = cfg.n_updates
        steps_per_update = cfg.n_epochs * cfg.n_minibatches
        fixed_prop = (
            None if training_proportion is None else jnp.asarray(training_proportion, jnp.float32)
        )

        def minibatch_step(carry, xs):
            indices, last = xs
            network, opt_state, opt_step, key = carry
            # Gathered here, one minibatch at a time, rather than a shuffled copy of the
            # whole batch per epoch: the same values in the same order, less memory traffic.
            batch = jax.tree.map(lambda x: x[indices], data)
            key, opt_key = jax.random.split(key)
            (_, aux), grads = eqx.filter_value_and_grad(ppo_loss, has_aux=True)(network, batch, cfg)
            grads = jax.lax.stop_gradient(grads)
            grads, grad_norm = clip_by_group_norm(
                grads, actor_mask, cfg.max_grad_norm, cfg.clip_actor_critic_separately
            )
            # OPEN reference formulas (spec optimizers.md, section 2).
            if fixed_prop is None:
                train_prop = (opt_step // steps_per_update).astype(jnp.float32) / max(
                    n_updates - 1, 1
                )
            else:
                train_prop = fixed_prop
            batch_prop = ((opt_step // cfg.n_minibatches) % cfg.n_epochs).astype(jnp.float32) / max(
                cfg.n_epochs - 1, 1
            )
            activations = aux.pop("activations")
            before = eqx.filter(network, eqx.is_inexact_array)
            if cfg.update_statistics:  # the learned noise's weight, with the state before
                context = optimizer_context(
                    network, activations, layer_props, actor_mask, train_prop, batch_prop
                )
                aux.update(
                    noise_statistics(optimizer, grads, opt_state, before, actor_mask, context)
                )
            network, opt_state, _ = optimizer_step(
                optimizer, network, opt_state, grads, activations, layer_props, actor_mask,
                train_prop, batch_prop, key=opt_key,
            )  # fmt: skip
            if cfg.update_statistics:  # OPEN Appendix F's behaviour analyses
                after = eqx.filter(network, eqx.is_inexact_array)
                updates = jax.tree.map(jnp.subtract, after, before)
                aux.update(update_statistics(grads, updates, before))
                aux.update(momentum_statistics(optimizer, opt_state, updates))
            aux["grad_norm"] = grad_norm
            # The metric is the update's last minibatch's; `last` is a constant of the scan
            # (not batched under vmap), so the other minibatches skip it.
            dormancy = jax.lax.cond(
                last,
                lambda acts: jnp.stack([dormant_fraction(a, cfg.dormancy_tau) for a in acts]),
                lambda acts: jnp.zeros((len(acts),), jnp.float32),
                activations,
            )
            return (network, opt_state, opt_step + 1, key), (aux, dormancy)

        def epoch(carry, last_epoch):
            network, opt_state, opt_step, key = carry
            key, perm_key = jax.random.split(key)
            perm = jax.random.permutation(perm_key, cfg.batch_size)
            minibatches = perm.reshape((cfg.n_minibatches, cfg.minibatch_size))
            last_minibatch = jnp.arange(cfg.n_minibatches) == cfg.n_minibatches - 1
            last = jnp.logical_and(last_epoch, last_minibatch)
            carry, out = jax.lax.scan(
                minibatch_step, (network, opt_state, opt_step, key), (minibatches, last)
            )
            return carry, out

        (network, opt_state, opt_step, _), (aux, dormancy) = jax.lax.scan(
            epoch, (network, opt_state, opt_step, key), jnp.arange(cfg.n_epochs) == cfg.n_epochs - 1
        )
        metrics = {k: jnp.mean(v) for k, v in aux.items()}
        # Checked once per update rather than after every optimizer step: updates are
        # applied as `params + update`, and a parameter that became NaN or infinite stays
        # so (nan + x = nan, inf + finite = inf, inf - inf = nan), so the final network is
        # non-finite exactly when some step's update or parameters were.
        metrics["nonfinite"] = jnp.logical_not(all_finite(network))
        metrics["dormancy"] = dormancy[-1, -1]  # last minibatch forward pass of the update
        return network, opt_state, opt_step, metrics

    def loss(
        self,
        network: PPONetwork,
        batch: PPOBatch,
        part: Literal["full", "actor"] = "full",
    ) -> tuple[Float[Array, ""], dict[str, Any]]:
        """The PPO loss of `network` on a whole rollout batch (one minibatch of all
        `n_envs * n_steps` transitions), e.g. the outer loss of meta-gradient training.

        **Arguments:**

        - `network`: the actor-critic.
        - `batch`: a rollout batch (from [`lorl_agents.PPO.rollout`][]).
        - `part`: `"full"`, the standard PPO loss ([`lorl_agents.ppo_loss`][]; the
            Optim4RL paper's inner and outer loss for PPO, Appendix C), or `"actor"`: the
            clipped surrogate minus `ent_coef` times the entropy, without the value term.

        **Returns:**

        `(loss, aux)` as [`lorl_agents.ppo_loss`][].
        """
        if part not in ("full", "actor"):
            raise ValueError(f"part must be 'full' or 'actor', got {part!r}")
        total, aux = ppo_loss(network, batch, self.config)
        if part == "actor":
            total = aux["actor_loss"] - self.config.ent_coef * aux["entropy"]
        return total, aux

    def step(
        self,
        state: PPOState,
        env: Any,
        env_params: Any,
        optimizer: Any,
        *,
        training_proportion: Float[ArrayLike, ""] | None = None,
    ) -> tuple[PPOState, dict[str, Array]]:
        """One PPO update: a rollout of `n_steps` in every environment, GAE, then
        `n_epochs` passes over `n_minibatches` shuffled minibatches
        ([`lorl_agents.PPO.rollout`][] then [`lorl_agents.PPO.update`][]). Pure; jit it
        yourself or use [`lorl_agents.PPO.train`][].

        **Arguments:**

        - `state`: the training state.
        - `env`, `env_params`: the environment.
        - `optimizer`: the optimizer (the same one as at `init`).
        - `training_proportion`: passed to [`lorl_agents.PPO.update`][] (default: from the
            optimizer step count and `n_updates`; pipeline training passes each unit's
            age).

        **Returns:**

        `(state, metrics)` with scalar metrics for this update and the rollout's episode
        statistics.
        """
        state, data, ep_metrics, update_key = self.rollout(state, env, env_params)
        network, opt_state, opt_step, metrics = self.update(
            state.network,
            state.opt_state,
            state.opt_step,
            data,
            optimizer,
            training_proportion=training_proportion,
            key=update_key,
        )
        metrics.update(ep_metrics)
        new_state = PPOState(
            network,
            opt_state,
            state.env_state,
            state.obs,
            state.episodes,
            opt_step,
            state.update + 1,
            state.key,
        )
        return new_state, metrics
