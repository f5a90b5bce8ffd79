"""lorl-meta: meta-training of learned optimizers for RL.

- [`lorl_meta.MetaGradientTrainer`][]: meta-gradients through `M` inner A2C updates with
  pipeline training (Optim4RL, Sections 2.2 and 5.1), single- or multi-task.
- [`lorl_meta.PPOMetaGradientTrainer`][]: the same through `M` inner PPO updates (Optim4RL
  in Ant from scratch, Fig. 4; Table 1's Ant and Humanoid columns).
- [`lorl_meta.ESTrainer`][]: OpenAI-ES on evosax `Open_ES` (OPEN, Section 5.2) with
  centred ranks, antithetic task sampling, common random numbers, validation.

All runs checkpoint their whole state and resume bit-identically on CPU; a mesh may span
the devices of several processes (`jax.distributed`).
"""

from ._checkpoint import CheckpointMismatchError as CheckpointMismatchError
from ._es import (
    ESConfig as ESConfig,
    ESResult as ESResult,
    ESState as ESState,
    ESTask as ESTask,
    ESTrainer as ESTrainer,
    a2c_fitness as a2c_fitness,
    ppo_fitness as ppo_fitness,
    zero_meta_parameters as zero_meta_parameters,
)
from ._logging import MetricsLog as MetricsLog
from ._metagrad import (
    MetaGradientConfig as MetaGradientConfig,
    MetaGradientResult as MetaGradientResult,
    MetaGradientState as MetaGradientState,
    MetaGradientTrainer as MetaGradientTrainer,
)
from ._metagrad_ppo import (
    PPOMetaGradientConfig as PPOMetaGradientConfig,
    PPOMetaGradientResult as PPOMetaGradientResult,
    PPOMetaGradientState as PPOMetaGradientState,
    PPOMetaGradientTrainer as PPOMetaGradientTrainer,
)
from ._schedule import reset_mask as reset_mask, reset_offsets as reset_offsets
from ._shaping import centered_ranks as centered_ranks, pairwise_fitness as pairwise_fitness
from ._tasks import (
    MetaTask as MetaTask,
    PPOMetaTask as PPOMetaTask,
    task_optimizer as task_optimizer,
)

__version__ = "0.1.0"
