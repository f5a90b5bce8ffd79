"""Learned optimizers for RL (Optim4RL, OPEN and their ablations) as Equinox modules.

Every optimizer's fields are its meta-parameters; `init`/`update` are pure functions of
the module (differentiable, vmappable), and `as_optax()` gives an optax
`GradientTransformationExtraArgs`.
"""

from . import baselines as baselines
from ._ablations import L2LGD2 as L2LGD2, LinearOptim as LinearOptim
from ._base import (
    AbstractLearnedOptimizer as AbstractLearnedOptimizer,
    LearnedOptimizerState as LearnedOptimizerState,
    OptimizerContext as OptimizerContext,
    has_nonfinite as has_nonfinite,
)
from ._clip import clip_by_actor_critic_norm as clip_by_actor_critic_norm
from ._context import (
    DORMANCY_EPS as DORMANCY_EPS,
    OPENProportionsState as OPENProportionsState,
    apply_gradients as apply_gradients,
    neuron_scores as neuron_scores,
    open_context as open_context,
    open_proportions as open_proportions,
    with_open_proportions as with_open_proportions,
)
from ._fused import (
    FusedKernelWarning as FusedKernelWarning,
    available as fused_kernel_available,
)
from ._layout import ParamLayout as ParamLayout
from ._nn import GRU as GRU, MLP as MLP, LayerNorm as LayerNorm, Linear as Linear
from ._open import BETAS as BETAS, OPEN as OPEN, OPENNetwork as OPENNetwork
from ._optim4rl import (
    AbstractGradientOnlyOptimizer as AbstractGradientOnlyOptimizer,
    Optim4RL as Optim4RL,
    straight_through_sign as straight_through_sign,
)
from ._optim4rl_revised import Optim4RLRevised as Optim4RLRevised
from ._registry import (
    build as build,
    is_saved_optimizer as is_saved_optimizer,
    load as load,
    optimizer_class as optimizer_class,
    optimizer_name as optimizer_name,
    read_header as read_header,
    register as register,
    registered_optimizers as registered_optimizers,
    save as save,
)
from ._regularise import regularised as regularised
from ._weights import (
    load_meta_parameters as load_meta_parameters,
    load_open as load_open,
    pretrained_open_name as pretrained_open_name,
    pretrained_open_names as pretrained_open_names,
    save_meta_parameters as save_meta_parameters,
)

# The catalogue of learned optimizers (`lorl_optim.registered_optimizers()`): the names
# `save`/`load`, `lorl evaluate` and the experiments use.
register("optim4rl", Optim4RL)
register("optim4rl_revised", Optim4RLRevised)
register("linear_optim", LinearOptim)
register("l2lgd2", L2LGD2)
register("open", OPEN)

__version__ = "0.1.0"
