"""Tasks for meta-training: an environment, an agent configuration, and the per-task
reward scale and agent learning rate (Optim4RL multi-task training, Section 6.2)."""

import dataclasses
from typing import Any, Generic, TypeVar

import numpy as np

from lorl_agents import PPO, AbstractAgent, scale_rewards


def task_optimizer(task_name: str, optimizer: Any, agent_lr: float | None) -> Any:
    """`optimizer` at a task's agent learning rate: `optimizer` itself when `agent_lr` is
    `None`, else `optimizer.with_learning_rate(agent_lr)` (same meta-parameters;
    meta-gradients flow into them).

    **Raises:**

    `ValueError` if `agent_lr` is set but the optimizer has no positive `learning_rate`
    (OPEN has none).
    """
    if agent_lr is None:
        return optimizer
    base = getattr(optimizer, "learning_rate", None)
    if (
        not isinstance(base, int | float)
        or base <= 0
        or not hasattr(optimizer, "with_learning_rate")
    ):
        raise ValueError(
            f"task {task_name!r} sets agent_lr, but {type(optimizer).__name__} has no "
            "positive `learning_rate` to replace (OPEN has none); leave agent_lr None"
        )
    return optimizer.with_learning_rate(float(agent_lr))


AgentT = TypeVar("AgentT", bound=AbstractAgent)


@dataclasses.dataclass(frozen=True, eq=False)
class MetaTask(Generic[AgentT]):
    """One task of meta-gradient training: its own training units, reward scale and agent
    learning rate (Optim4RL, Sections 5.1 and 6.2), for any agent: A2C units go to
    [`lorl_meta.MetaGradientTrainer`][], PPO units to
    [`lorl_meta.PPOMetaGradientTrainer`][].

    **Arguments:**

    - `name`: a label (used in metric names).
    - `env`, `env_params`: a gymnax-interface environment (A2C: discrete actions, e.g.
      `lorl_gridworlds.make("small_dense_short")`; PPO: discrete or continuous, e.g.
      `lorl_agents.make_env("ant")`).
    - `agent`: the agent of every unit (a `lorl_agents.A2C` or `lorl_agents.PPO`; its
      `config.n_envs` environments per unit, its `n_steps` rollout length; its
      `config.n_updates` is not used: the training proportion passed to the optimizer is
      the unit's age over its lifetime, see
      [`lorl_meta.MetaGradientTrainer.training_proportion`][]).
    - `n_units`: the number of training units `n` of this task (Optim4RL Appendix C.3:
      512, one per environment, in the gridworlds; [`lorl_meta.PPOMetaTask`][] defaults
      to Ant's 2048).
    - `reward_scale`: multiplies the rewards during meta-training (1: off).
    - `agent_lr`: the agent learning rate for this task; `None` keeps the optimizer's own
      `learning_rate` (Optim4RL Appendix C.3: 1e-2 small_dense_short, 3e-3
      big_dense_long). Needs an optimizer with a `learning_rate` attribute.
    """

    name: str
    env: Any
    env_params: Any
    agent: AgentT
    n_units: int = 512  # Optim4RL Appendix C.3: n = 512 training units
    reward_scale: float = 1.0
    agent_lr: float | None = None

    def __post_init__(self):
        label = f"{type(self).__name__} {self.name!r}"
        if not isinstance(self.agent, AbstractAgent):
            raise TypeError(
                f"{label}: agent must be a lorl_agents agent (A2C or PPO), got "
                f"{type(self.agent).__name__}"
            )
        if (
            not isinstance(self.n_units, int | np.integer)
            or isinstance(self.n_units, bool)
            or self.n_units < 1
        ):
            raise ValueError(f"{label}: n_units must be an integer >= 1, got {self.n_units}")
        if not self.reward_scale > 0:
            raise ValueError(f"{label}: reward_scale must be > 0, got {self.reward_scale}")
        if self.agent_lr is not None and not self.agent_lr > 0:
            raise ValueError(f"{label}: agent_lr must be > 0, got {self.agent_lr}")
        cfg = self.agent.config
        if cfg.total_timesteps != cfg.n_updates * cfg.n_envs * cfg.n_steps:
            raise ValueError(
                f"{label}: the agent's budget of {cfg.total_timesteps} steps "
                f"does not divide into updates of n_envs * n_steps = "
                f"{cfg.n_envs * cfg.n_steps} steps; use a multiple, e.g. "
                f"{cfg.n_updates * cfg.n_envs * cfg.n_steps}"
            )

    @property
    def train_env(self) -> Any:
        """The environment the units train on (`lorl_agents.scale_rewards` by
        `reward_scale`)."""
        return scale_rewards(self.env, self.reward_scale)

    def optimizer_for(self, optimizer: Any) -> Any:
        """`optimizer` at this task's agent learning rate (its `with_learning_rate`)."""
        return task_optimizer(self.name, optimizer, self.agent_lr)


@dataclasses.dataclass(frozen=True, eq=False)
class PPOMetaTask(MetaTask[PPO]):
    """A [`lorl_meta.MetaTask`][] whose agent must be a `lorl_agents.PPO`, with the
    Optim4RL Ant default of `n_units = 2048` (Appendix C.3); for
    [`lorl_meta.PPOMetaGradientTrainer`][]."""

    n_units: int = 2048  # Optim4RL Appendix C.3 (Ant): n = 2048

    def __post_init__(self):
        if not isinstance(self.agent, PPO):
            raise TypeError(
                f"PPOMetaTask {self.name!r}: agent must be a lorl_agents.PPO, got "
                f"{type(self.agent).__name__} (A2C tasks go to lorl_meta.MetaTask)"
            )
        super().__post_init__()
