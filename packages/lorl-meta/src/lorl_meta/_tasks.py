"""Tasks for meta-training: an environment, an agent configuration, and the per-task
reward scale and agent learning rate (Optim4RL multi-task training, Section 6.2)."""

import dataclasses
from typing import Any

import equinox as eqx
import jax
from jaxtyping import Array, ArrayLike, Bool, Float, PRNGKeyArray, PyTree

from lorl_agents import A2C
from lorl_optim import AbstractLearnedOptimizer, LearnedOptimizerState


class RewardScaled:
    """A gymnax-interface environment whose rewards are multiplied by `scale`.

    Optim4RL's multi-task meta-training scales each gridworld's rewards so the tasks'
    agent-gradients are of comparable size (the reference code's per-task reward scale;
    `lorl_gridworlds.LPG_SPECS[name].multitask_reward_scale`). Returns reported by the
    trainers are divided by `scale` again (unscaled units).
    """

    def __init__(self, env: Any, scale: float):
        self.env = env
        self.scale = float(scale)

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


class LRScaled(AbstractLearnedOptimizer):
    """A learned optimizer whose updates are multiplied by a constant `factor`.

    Learned optimizers keep their agent learning rate as a static field that cannot be
    replaced without re-initialising the meta-parameters; for the Optim4RL optimizers
    (updates proportional to the learning rate) running the same meta-parameters at agent
    learning rate `lr` is exactly `LRScaled(opt, lr / opt.learning_rate)`. Meta-gradients
    flow into `inner`'s fields.
    """

    inner: AbstractLearnedOptimizer
    factor: float = eqx.field(static=True)

    def init(self, params: PyTree[Float[Array, "..."]]) -> LearnedOptimizerState:
        return self.inner.init(params)

    def update(
        self,
        grads: PyTree[Float[Array, "..."]],
        state: LearnedOptimizerState,
        params: PyTree[Float[Array, "..."]] | None = None,
        *,
        dormancy: PyTree[Float[ArrayLike, "..."]] | None = None,
        training_proportion: Float[ArrayLike, ""] | None = None,
        batch_proportion: Float[ArrayLike, ""] | None = None,
        layer_proportions: PyTree[Float[ArrayLike, "..."]] | None = None,
        actor_mask: PyTree[Bool[ArrayLike, "..."]] | None = None,
        key: PRNGKeyArray | None = None,
    ) -> tuple[PyTree[Float[Array, "..."]], LearnedOptimizerState]:
        updates, state = self.inner.update(
            grads,
            state,
            params,
            dormancy=dormancy,
            training_proportion=training_proportion,
            batch_proportion=batch_proportion,
            layer_proportions=layer_proportions,
            actor_mask=actor_mask,
            key=key,
        )
        return jax.tree.map(lambda u: u * self.factor, updates), state


@dataclasses.dataclass(frozen=True, eq=False)
class MetaTask:
    """One task of meta-gradient training: its own training units, reward scale and agent
    learning rate (Optim4RL, Sections 5.1 and 6.2).

    **Arguments:**

    - `name`: a label (used in metric names).
    - `env`, `env_params`: a gymnax-interface environment with discrete actions (e.g.
      `lorl_gridworlds.make("small_dense_short")`).
    - `agent`: the A2C agent of every unit (its `config.n_envs` environments per unit, its
      `n_steps` rollout length; its `config.n_updates` is not used: the training
      proportion passed to the optimizer is the unit's age over its lifetime, see
      [`lorl_meta.MetaGradientTrainer.training_proportion`][]).
    - `n_units`: the number of training units `n` of this task (Optim4RL Appendix C.3:
      512, one per environment).
    - `reward_scale`: multiplies the rewards during meta-training (1: off).
    - `agent_lr`: the agent learning rate for this task; `None` keeps the optimizer's own
      `learning_rate` (Optim4RL Appendix C.3: 1e-2 small_dense_short, 3e-3
      big_dense_long). Needs an optimizer with a `learning_rate` attribute.
    """

    name: str
    env: Any
    env_params: Any
    agent: A2C
    n_units: int = 512  # Optim4RL Appendix C.3: n = 512 training units
    reward_scale: float = 1.0
    agent_lr: float | None = None

    def __post_init__(self):
        if self.n_units < 1:
            raise ValueError(f"MetaTask {self.name!r}: n_units must be >= 1, got {self.n_units}")
        if not self.reward_scale > 0:
            raise ValueError(
                f"MetaTask {self.name!r}: reward_scale must be > 0, got {self.reward_scale}"
            )
        if self.agent_lr is not None and not self.agent_lr > 0:
            raise ValueError(f"MetaTask {self.name!r}: agent_lr must be > 0, got {self.agent_lr}")
        cfg = self.agent.config
        if cfg.total_timesteps != cfg.n_updates * cfg.n_envs * cfg.n_steps:
            raise ValueError(
                f"MetaTask {self.name!r}: the agent's budget of {cfg.total_timesteps} steps "
                f"does not divide into updates of n_envs * n_steps = "
                f"{cfg.n_envs * cfg.n_steps} steps; use a multiple, e.g. "
                f"{cfg.n_updates * cfg.n_envs * cfg.n_steps}"
            )

    @property
    def train_env(self) -> Any:
        """The environment the units train on (rewards scaled if `reward_scale != 1`)."""
        return self.env if self.reward_scale == 1.0 else RewardScaled(self.env, self.reward_scale)

    def optimizer_for(self, optimizer: Any) -> Any:
        """`optimizer` at this task's agent learning rate (see [`lorl_meta.LRScaled`][])."""
        if self.agent_lr is None:
            return optimizer
        base = getattr(optimizer, "learning_rate", None)
        if not isinstance(base, int | float) or base <= 0:
            raise ValueError(
                f"MetaTask {self.name!r} sets agent_lr, but {type(optimizer).__name__} has "
                "no positive `learning_rate` to rescale (OPEN has none); leave agent_lr None"
            )
        return LRScaled(optimizer, float(self.agent_lr) / float(base))
