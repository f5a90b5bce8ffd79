"""Hyperparameters of A2C (Optim4RL paper) and PPO (OPEN paper), with their sources."""

import dataclasses
from typing import Literal


@dataclasses.dataclass(frozen=True)
class PPOConfig:
    """PPO hyperparameters. Every field changes the compiled program (it is static).

    Defaults are the OPEN paper's MinAtar column (Goldie et al. 2024, Appendix C.1,
    Table 3); the named constructors give the other columns.

    **Arguments:**

    - `n_envs`: parallel environments (Table 3: `N_envs`).
    - `n_steps`: rollout length per update (`N_steps`).
    - `total_timesteps`: environment steps of the whole run (`T`).
    - `n_minibatches`, `n_epochs`: minibatches per epoch and epochs per update.
    - `gamma`, `gae_lambda`: discount and GAE lambda.
    - `clip_eps`: PPO ratio clip, also used for the value clip.
    - `vf_coef`, `ent_coef`: value-loss and entropy coefficients (`c_1`, `c_2`).
    - `max_grad_norm`: global-norm gradient clip applied before the optimizer.
    - `clip_actor_critic_separately`: clip actor and critic gradient norms separately
        (the OPEN reference does; spec `optimizers.md` section 2).
    - `width`, `n_hidden`, `activation`: actor and critic MLPs (`activation`: `"relu"`,
        `"tanh"`, or `"swish"`, Brax's PPO default).
    - `critic_width`, `critic_hidden`: the critic's width and hidden-layer count when they
        differ from the actor's (`None`: the same, as in OPEN).
    - `normalize_obs`, `normalize_reward`: running-statistics wrappers (Brax).
    - `clip_actions`: clip continuous actions to the action space (Brax).
    - `dormancy_tau`: threshold of the per-layer dormancy metric (`tau = 0`, OPEN
        Section 7.1).
    - `update_statistics`: also record, per update, the cosine between each optimizer
        update and the negative gradient and the update's size relative to the
        parameters (`lorl_agents.update_statistics`; OPEN Appendix F's analyses). Off by
        default: the training program is then unchanged.
    """

    n_envs: int = 64  # OPEN Table 3, MinAtar
    n_steps: int = 128  # OPEN Table 3, MinAtar
    total_timesteps: int = 10_000_000  # OPEN Table 3, MinAtar: 1e7
    n_minibatches: int = 8  # OPEN Table 3, MinAtar
    n_epochs: int = 4  # OPEN Table 3, MinAtar
    gamma: float = 0.99  # OPEN Table 3 (all)
    gae_lambda: float = 0.95  # OPEN Table 3 (all)
    clip_eps: float = 0.2  # OPEN Table 3 (all)
    vf_coef: float = 0.5  # OPEN Table 3 (all)
    ent_coef: float = 0.01  # OPEN Table 3, MinAtar and gridworld; Ant: 0
    max_grad_norm: float = 0.5  # OPEN Table 3 (all)
    clip_actor_critic_separately: bool = True  # OPEN reference code (spec optimizers.md s.2)
    width: int = 64  # OPEN Table 3, MinAtar and Ant; gridworld: 16
    n_hidden: int = 2  # OPEN Table 3 (all)
    activation: Literal["relu", "tanh", "swish"] = "relu"  # OPEN Table 3, MinAtar; Ant, grid: tanh
    critic_width: int | None = None  # OPEN: same as the actor
    critic_hidden: int | None = None  # OPEN: same as the actor
    normalize_obs: bool = False  # OPEN reference: Brax only (spec agents_and_meta.md s.2)
    normalize_reward: bool = False  # OPEN reference: Brax only
    clip_actions: bool = True  # continuous actions only
    dormancy_tau: float = 0.0  # OPEN Section 7.1: tau = 0 dormancy
    update_statistics: bool = False  # analysis only (OPEN Appendix F); off: same program

    def __post_init__(self):
        for name in ("n_envs", "n_steps", "n_minibatches", "n_epochs", "width"):
            if getattr(self, name) < 1:
                raise ValueError(f"PPOConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.critic_width is not None and self.critic_width < 1:
            raise ValueError(f"PPOConfig.critic_width must be >= 1, got {self.critic_width}")
        for name in ("n_hidden", "critic_hidden"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"PPOConfig.{name} must be >= 0, got {value}")
        if self.batch_size % self.n_minibatches != 0:
            raise ValueError(
                f"the batch of n_envs * n_steps = {self.n_envs} * {self.n_steps} = "
                f"{self.batch_size} transitions does not divide into n_minibatches = "
                f"{self.n_minibatches} equal minibatches; pick n_minibatches among the "
                f"divisors of {self.batch_size}"
            )
        if self.n_updates < 1:
            raise ValueError(
                f"total_timesteps = {self.total_timesteps} is less than one update of "
                f"n_envs * n_steps = {self.batch_size} steps"
            )
        if not 0.0 <= self.gamma <= 1.0 or not 0.0 <= self.gae_lambda <= 1.0:
            raise ValueError(
                f"gamma and gae_lambda must lie in [0, 1]; got {self.gamma}, {self.gae_lambda}"
            )
        if self.activation not in ("relu", "tanh", "swish"):
            raise ValueError(
                f"activation must be 'relu', 'tanh' or 'swish', got {self.activation!r}"
            )

    @property
    def batch_size(self) -> int:
        """Transitions per update, `n_envs * n_steps`."""
        return self.n_envs * self.n_steps

    @property
    def minibatch_size(self) -> int:
        return self.batch_size // self.n_minibatches

    @property
    def n_updates(self) -> int:
        """Number of updates, `total_timesteps // (n_envs * n_steps)` (OPEN B.2: `N_batch`)."""
        return self.total_timesteps // self.batch_size

    @property
    def steps_per_run(self) -> int:
        """Environment steps actually taken: `n_updates * n_envs * n_steps`."""
        return self.n_updates * self.batch_size

    @property
    def steps_per_update(self) -> int:
        """Optimizer steps per update, `n_epochs * n_minibatches`."""
        return self.n_epochs * self.n_minibatches

    @property
    def optimizer_steps(self) -> int:
        """Optimizer steps of a run, `n_updates * n_epochs * n_minibatches`: with
        `steps_per_update`, what a learning-rate schedule over the run needs (e.g.
        `lorl_optim.baselines.adam(env, total_steps=config.optimizer_steps,
        steps_per_update=config.steps_per_update)`, OPEN's tuned Adam)."""
        return self.n_updates * self.steps_per_update

    @classmethod
    def minatar(cls, **overrides) -> "PPOConfig":
        """OPEN Table 3, MinAtar column (breakout, asterix, freeway, space invaders)."""
        return dataclasses.replace(cls(), **overrides)

    @classmethod
    def brax_ant(cls, **overrides) -> "PPOConfig":
        """OPEN Table 3, Ant column; observation and reward normalisation and action
        clipping as in the OPEN reference's Brax wrappers."""
        base = cls(
            n_envs=2048,  # OPEN Table 3, Ant
            n_steps=10,  # OPEN Table 3, Ant
            total_timesteps=50_000_000,  # OPEN Table 3, Ant: 5e7
            n_minibatches=32,  # OPEN Table 3, Ant
            n_epochs=4,  # OPEN Table 3, Ant
            ent_coef=0.0,  # OPEN Table 3, Ant
            width=64,  # OPEN Table 3, Ant
            activation="tanh",  # OPEN Table 3, Ant
            normalize_obs=True,
            normalize_reward=True,
        )
        return dataclasses.replace(base, **overrides)

    @classmethod
    def gridworld(cls, **overrides) -> "PPOConfig":
        """OPEN Table 3, Gridworld column (the paper prints `3 x 7` total timesteps; the
        text, Figure 16, says 3e7)."""
        base = cls(
            n_envs=1024,  # OPEN Table 3, Gridworld
            n_steps=20,  # OPEN Table 3, Gridworld
            total_timesteps=30_000_000,  # OPEN Figure 16 caption: 3e7
            n_minibatches=16,  # OPEN Table 3, Gridworld
            n_epochs=2,  # OPEN Table 3, Gridworld
            width=16,  # OPEN Table 3, Gridworld
            activation="tanh",  # OPEN Table 3, Gridworld
        )
        return dataclasses.replace(base, **overrides)

    @classmethod
    def cartpole(cls, **overrides) -> "PPOConfig":
        """CartPole-v1 smoke-test settings: PureJaxRL's PPO CartPole defaults (Lu et al.
        2022, code release), which the OPEN paper's PPO follows; not from either paper."""
        base = cls(
            n_envs=4,  # PureJaxRL CartPole
            n_steps=128,  # PureJaxRL CartPole
            total_timesteps=500_000,  # PureJaxRL CartPole: 5e5
            n_minibatches=4,  # PureJaxRL CartPole
            n_epochs=4,  # PureJaxRL CartPole
            width=64,  # PureJaxRL CartPole
            activation="tanh",  # PureJaxRL CartPole
        )
        return dataclasses.replace(base, **overrides)


@dataclasses.dataclass(frozen=True)
class A2CConfig:
    """A2C hyperparameters of the Optim4RL paper (Lan et al. 2024, Appendix C), for the
    LPG gridworlds. Every field changes the compiled program (it is static).

    **Arguments:**

    - `n_envs`: parallel environments (one agent, gradients averaged over them).
    - `n_steps`: rollout length per update.
    - `total_timesteps`: environment steps of the whole run.
    - `gamma`, `lam`: discount and lambda of the lambda-returns.
    - `vf_coef`, `ent_coef`: critic-loss and entropy weights.
    - `max_grad_value`: element-wise gradient clip before the optimizer (`None`: off).
    - `torso`: `"mlp"` (small gridworlds) or `"cnn"` (big gridworlds).
    - `hidden`, `conv_features`: torso sizes.
    - `final_return_window`: the final return is the mean of the per-update episode
        returns over this many last updates.
    - `dormancy_tau`: threshold of the per-layer dormancy metric.
    """

    n_envs: int = 512  # Optim4RL Appendix C.3: n = 512 environments / training units
    n_steps: int = 20  # Optim4RL Appendix C: "One rollout has 20 steps"
    total_timesteps: int = 30_000_000  # Optim4RL Appendix C.2: 30M steps
    gamma: float = 0.995  # Optim4RL Appendix C
    lam: float = 0.95  # Optim4RL Appendix C
    vf_coef: float = 0.5  # Optim4RL Appendix C: critic loss weight
    ent_coef: float = 0.01  # Optim4RL Appendix C: entropy weight
    max_grad_value: float | None = 1.0  # spec agents_and_meta.md s.1: element-wise at 1
    torso: Literal["mlp", "cnn"] = "mlp"  # Optim4RL Appendix C: MLP for "small" grids
    hidden: int = 32  # Optim4RL Appendix C: hidden size 32
    conv_features: int = 16  # Optim4RL Appendix C: CNN with 16 features, kernel 2
    final_return_window: int = 20  # spec agents_and_meta.md s.1: last ~20 logged points
    dormancy_tau: float = 0.0  # OPEN Section 7.1

    def __post_init__(self):
        for name in ("n_envs", "n_steps", "hidden", "conv_features", "final_return_window"):
            if getattr(self, name) < 1:
                raise ValueError(f"A2CConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.n_updates < 1:
            raise ValueError(
                f"total_timesteps = {self.total_timesteps} is less than one update of "
                f"n_envs * n_steps = {self.n_envs * self.n_steps} steps"
            )
        if self.torso not in ("mlp", "cnn"):
            raise ValueError(f"torso must be 'mlp' or 'cnn', got {self.torso!r}")
        if not 0.0 <= self.gamma <= 1.0 or not 0.0 <= self.lam <= 1.0:
            raise ValueError(f"gamma and lam must lie in [0, 1]; got {self.gamma}, {self.lam}")

    @property
    def n_updates(self) -> int:
        """`total_timesteps // (n_envs * n_steps)` (2,929 for the paper's 3e7)."""
        return self.total_timesteps // (self.n_envs * self.n_steps)

    @property
    def steps_per_run(self) -> int:
        return self.n_updates * self.n_envs * self.n_steps

    @classmethod
    def small_gridworld(cls, **overrides) -> "A2CConfig":
        """Optim4RL Appendix C, "small" gridworlds: MLP torso."""
        return dataclasses.replace(cls(torso="mlp"), **overrides)

    @classmethod
    def big_gridworld(cls, **overrides) -> "A2CConfig":
        """Optim4RL Appendix C, "big" gridworlds: CNN torso."""
        return dataclasses.replace(cls(torso="cnn"), **overrides)
