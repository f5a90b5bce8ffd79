"""The ablation optimizers of Optim4RL (Lan et al., Section 6.1 and Appendix C.3)."""

import math
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
from jaxtyping import Array, Float, PRNGKeyArray

from ._base import check_learning_rate
from ._nn import GRU, MLP, count_flops
from ._optim4rl import DEFAULT_CHUNK, AbstractGradientOnlyOptimizer, process_gradient


def _one_gru_config(opt: Any) -> dict[str, Any]:
    """The constructor arguments of a one-GRU ablation (LinearOptim, L2LGD2)."""
    return {
        "learning_rate": opt.learning_rate,
        "hidden_size": opt.gru.hidden_size,
        "mlp_widths": opt.mlp.widths,
        "clip": opt.clip,
        "chunk_size": opt.chunk_size,
    }


class LinearOptim(AbstractGradientOnlyOptimizer):
    """LinearOptim (Optim4RL paper, Section 6.1, Appendix C.3).

    Gradient processing as Optim4RL (clip to `[-c, c]` with c = 1, inputs
    `[sign(g), log(|g| + 1e-18)]`), one GRU(8) + MLP[16, 16] (ReLU) with two outputs
    `(a, b)`, and the update `delta_theta = -alpha * (a * g + b)` with the clipped `g`.
    `g` is a stop-gradient input here too (as in Optim4RL), so meta-gradients flow only
    through `a` and `b`.

    State: 8 floats per agent parameter (the GRU hidden state).
    """

    gru: GRU
    mlp: MLP
    learning_rate: float | optax.Schedule = eqx.field(static=True)
    clip: float = eqx.field(static=True)  # c = 1 (Optim4RL Algorithm 1)
    eps: float = eqx.field(static=True)  # 1e-18 (Optim4RL Algorithm 1)
    chunk_size: int = eqx.field(static=True, metadata={"speed_only": True})

    def __init__(
        self,
        learning_rate: float | optax.Schedule,
        *,
        hidden_size: int = 8,
        mlp_widths: tuple[int, ...] = (16, 16),
        clip: float = 1.0,
        chunk_size: int = DEFAULT_CHUNK,
        key: PRNGKeyArray,
    ):
        """**Arguments:**

        - `learning_rate`: agent learning rate `alpha` (1e-2 small_dense_short, 3e-3
          big_dense_long; Optim4RL Appendix C.3).
        - `hidden_size`, `mlp_widths`: GRU 8, MLP [16, 16] (Optim4RL Appendix C.3).
        - `clip`: element-wise gradient clip (1; 0 disables).
        - `chunk_size`: columns per chunk of the flat computation (speed only).
        - `key`: PRNG key for the initial meta-parameters.
        """
        k1, k2 = jax.random.split(key)
        self.gru = GRU.init(2, hidden_size, key=k1)
        self.mlp = MLP.init(hidden_size, mlp_widths, 2, layer_norm=False, key=k2)
        self.learning_rate = check_learning_rate(learning_rate, type(self).__name__)
        self.clip = clip
        self.eps = 1e-18
        self.chunk_size = chunk_size

    def flops_per_parameter(self) -> int:
        """Matmul FLOPs per agent parameter and step (2 per weight entry)."""
        return count_flops((self.gru, self.mlp))

    @property
    def n_slots(self) -> int:
        return self.gru.hidden_size

    def config(self) -> dict[str, Any]:
        """Constructor arguments (all but `key`); see `AbstractLearnedOptimizer.config`."""
        return _one_gru_config(self)

    def _columns(
        self, g: Float[Array, "1 c"], h: Float[Array, "s c"]
    ) -> tuple[Float[Array, "s c"], Float[Array, "1 c"]]:
        g, g_sign, g_log = process_gradient(g, self.clip, self.eps)
        h = self.gru(jnp.concatenate([g_sign, g_log], axis=0), h)
        o = self.mlp(h)
        return h, -self._fixed_rate * (o[0:1] * g + o[1:2])


def l2l_preprocess(
    g: Float[Array, "*s"], p: float, eps: float
) -> tuple[Float[Array, "*s"], Float[Array, "*s"]]:
    """Andrychowicz et al. (2016) input preprocessing, as specified for L2LGD2.

    `[log(|g| + eps) / p, sign(g)]` if `log(|g| + eps) / p >= -1`, else `[-1, e^p * g]`.
    """
    scaled_log = jnp.log(jnp.abs(g) + eps) / p
    big = scaled_log >= -1.0
    first = jnp.where(big, scaled_log, -1.0)
    second = jnp.where(big, jnp.sign(g), math.exp(p) * g)
    return first, second


class L2LGD2(AbstractGradientOnlyOptimizer):
    """L2LGD2 (Andrychowicz et al. 2016) as the Optim4RL paper's ablation (Section 6.1).

    Inputs: the Andrychowicz preprocessing with `p = 10` of the (clipped, stop-gradient)
    gradient, see `l2l_preprocess`; one GRU(8) + MLP[16, 16] (ReLU, Optim4RL Appendix
    C.3) with one output `o`; update `delta_theta = -alpha * exp(o) * g`. The gradient is
    clipped element-wise to `[-1, 1]` first, as every optimizer in Optim4RL's A2C
    gridworld setup (gradient clip 1, element-wise); `clip=0` disables it.

    State: 8 floats per agent parameter (the GRU hidden state).
    """

    gru: GRU
    mlp: MLP
    learning_rate: float | optax.Schedule = eqx.field(static=True)
    clip: float = eqx.field(static=True)  # 1 (Optim4RL A2C setup)
    preprocess_p: float = eqx.field(static=True)  # p = 10 (Andrychowicz et al. 2016)
    eps: float = eqx.field(static=True)  # 1e-18 (Optim4RL Algorithm 1)
    chunk_size: int = eqx.field(static=True, metadata={"speed_only": True})

    def __init__(
        self,
        learning_rate: float | optax.Schedule,
        *,
        hidden_size: int = 8,
        mlp_widths: tuple[int, ...] = (16, 16),
        clip: float = 1.0,
        chunk_size: int = DEFAULT_CHUNK,
        key: PRNGKeyArray,
    ):
        """**Arguments:**

        - `learning_rate`: agent learning rate `alpha` (1e-2 small_dense_short, 3e-3
          big_dense_long; Optim4RL Appendix C.3).
        - `hidden_size`, `mlp_widths`: GRU 8, MLP [16, 16] (Optim4RL Appendix C.3).
        - `clip`: element-wise gradient clip (1; 0 disables).
        - `chunk_size`: columns per chunk of the flat computation (speed only).
        - `key`: PRNG key for the initial meta-parameters.
        """
        k1, k2 = jax.random.split(key)
        self.gru = GRU.init(2, hidden_size, key=k1)
        self.mlp = MLP.init(hidden_size, mlp_widths, 1, layer_norm=False, key=k2)
        self.learning_rate = check_learning_rate(learning_rate, type(self).__name__)
        self.clip = clip
        self.preprocess_p = 10.0
        self.eps = 1e-18
        self.chunk_size = chunk_size

    def flops_per_parameter(self) -> int:
        """Matmul FLOPs per agent parameter and step (2 per weight entry)."""
        return count_flops((self.gru, self.mlp))

    @property
    def n_slots(self) -> int:
        return self.gru.hidden_size

    def config(self) -> dict[str, Any]:
        """Constructor arguments (all but `key`); see `AbstractLearnedOptimizer.config`."""
        return _one_gru_config(self)

    def _columns(
        self, g: Float[Array, "1 c"], h: Float[Array, "s c"]
    ) -> tuple[Float[Array, "s c"], Float[Array, "1 c"]]:
        g, _, _ = process_gradient(g, self.clip, self.eps)
        first, second = l2l_preprocess(g, self.preprocess_p, self.eps)
        h = self.gru(jnp.concatenate([first, second], axis=0), h)
        o = self.mlp(h)
        return h, -self._fixed_rate * jnp.exp(o) * g
