"""lorl-agents: A2C (Optim4RL) and PPO (OPEN) in JAX with pluggable (learned) optimizers."""

from ._a2c import A2C as A2C, A2CState as A2CState, Trajectory as Trajectory
from ._agent import AbstractAgent as AbstractAgent
from ._brax import BraxEnv as BraxEnv, BraxEnvState as BraxEnvState, BraxParams as BraxParams
from ._common import (
    EpisodeStats as EpisodeStats,
    NonFiniteUpdateError as NonFiniteUpdateError,
    TrainResult as TrainResult,
    check_finite as check_finite,
    clip_by_group_norm as clip_by_group_norm,
    optimizer_step as optimizer_step,
)
from ._config import A2CConfig as A2CConfig, PPOConfig as PPOConfig
from ._distributions import (
    categorical_entropy as categorical_entropy,
    categorical_log_prob as categorical_log_prob,
    categorical_sample as categorical_sample,
    gaussian_entropy as gaussian_entropy,
    gaussian_log_prob as gaussian_log_prob,
    gaussian_sample as gaussian_sample,
)
from ._dormancy import dormant_fraction as dormant_fraction, neuron_scores as neuron_scores
from ._envs import (
    BRAX_ENVS as BRAX_ENVS,
    GYMNAX_ENVS as GYMNAX_ENVS,
    ActionSpec as ActionSpec,
    RewardScaled as RewardScaled,
    RunningStats as RunningStats,
    VecEnv as VecEnv,
    VecEnvState as VecEnvState,
    action_spec as action_spec,
    make_env as make_env,
    observation_shape as observation_shape,
    scale_rewards as scale_rewards,
)
from ._networks import (
    A2CNetwork as A2CNetwork,
    AbstractActorCritic as AbstractActorCritic,
    PPONetwork as PPONetwork,
    conv_same_channels_last as conv_same_channels_last,
    lecun_normal_init as lecun_normal_init,
    orthogonal_init as orthogonal_init,
)
from ._ppo import (
    PPO as PPO,
    PPOBatch as PPOBatch,
    PPOState as PPOState,
    clipped_policy_loss as clipped_policy_loss,
    clipped_value_loss as clipped_value_loss,
    normalize_advantages as normalize_advantages,
    ppo_loss as ppo_loss,
)
from ._returns import gae as gae, lambda_returns as lambda_returns
from ._update_stats import (
    MOMENTUM_BETAS as MOMENTUM_BETAS,
    MomentumProbe as MomentumProbe,
    MomentumProbeState as MomentumProbeState,
    momentum_statistics as momentum_statistics,
    noise_statistics as noise_statistics,
    update_statistics as update_statistics,
)
