"""The ablation optimizers of Optim4RL (Lan et al., Section 6.1 and Appendix C.3)."""

import math

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Bool, Float, PRNGKeyArray, PyTree

from ._base import AbstractLearnedOptimizer, LearnedOptimizerState, check_state
from ._layout import ParamLayout
from ._nn import GRU, MLP, column_map, count_flops
from ._optim4rl import DEFAULT_CHUNK, process_gradient


class LinearOptim(AbstractLearnedOptimizer):
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
    learning_rate: float = eqx.field(static=True)
    clip: float = eqx.field(static=True)  # c = 1 (Optim4RL Algorithm 1)
    eps: float = eqx.field(static=True)  # 1e-18 (Optim4RL Algorithm 1)
    chunk_size: int = eqx.field(static=True)

    def __init__(
        self,
        learning_rate: float,
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
        self.learning_rate = learning_rate
        self.clip = clip
        self.eps = 1e-18
        self.chunk_size = chunk_size

    def flops_per_parameter(self) -> int:
        """Matmul FLOPs per agent parameter and step (2 per weight entry)."""
        return count_flops((self.gru, self.mlp))

    def init(self, params: PyTree[Float[Array, "..."]]) -> LearnedOptimizerState:
        layout = ParamLayout.from_tree(params)
        return LearnedOptimizerState(
            jnp.zeros((self.gru.hidden_size, layout.size), layout.dtype), layout
        )

    def _columns(
        self, g: Float[Array, "1 c"], h: Float[Array, "s c"]
    ) -> tuple[Float[Array, "s c"], Float[Array, "1 c"]]:
        g, g_sign, g_log = process_gradient(g, self.clip, self.eps)
        h = self.gru(jnp.concatenate([g_sign, g_log], axis=0), h)
        o = self.mlp(h)
        return h, -self.learning_rate * (o[0:1] * g + o[1:2])

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
        """One step (uses only `grads`; all context is ignored).

        **Arguments:**

        - `grads`: gradients, same tree as at `init`.
        - `state`: the optimizer state.
        - `params` and the context keywords: ignored.

        **Returns:**

        `(updates, new_state)`; `updates` = `delta_theta`, to be added to the parameters.
        """
        state = check_state(state, "LinearOptim", self.gru.hidden_size)
        layout = state.layout
        dtypes = [jnp.result_type(x) for x in layout.check(grads, "grads")]
        g = layout.ravel(grads, "grads").astype(layout.dtype)[None]
        slots, delta = column_map(
            lambda start, xs, cs: self._columns(xs[0], cs[0]),
            (g,),
            (state.slots, jnp.zeros_like(g)),
            self.chunk_size,
        )
        return layout.unravel(delta[0], dtypes), LearnedOptimizerState(slots, layout)


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


class L2LGD2(AbstractLearnedOptimizer):
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
    learning_rate: float = eqx.field(static=True)
    clip: float = eqx.field(static=True)  # 1 (Optim4RL A2C setup)
    preprocess_p: float = eqx.field(static=True)  # p = 10 (Andrychowicz et al. 2016)
    eps: float = eqx.field(static=True)  # 1e-18 (Optim4RL Algorithm 1)
    chunk_size: int = eqx.field(static=True)

    def __init__(
        self,
        learning_rate: float,
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
        self.learning_rate = learning_rate
        self.clip = clip
        self.preprocess_p = 10.0
        self.eps = 1e-18
        self.chunk_size = chunk_size

    def flops_per_parameter(self) -> int:
        """Matmul FLOPs per agent parameter and step (2 per weight entry)."""
        return count_flops((self.gru, self.mlp))

    def init(self, params: PyTree[Float[Array, "..."]]) -> LearnedOptimizerState:
        layout = ParamLayout.from_tree(params)
        return LearnedOptimizerState(
            jnp.zeros((self.gru.hidden_size, layout.size), layout.dtype), layout
        )

    def _columns(
        self, g: Float[Array, "1 c"], h: Float[Array, "s c"]
    ) -> tuple[Float[Array, "s c"], Float[Array, "1 c"]]:
        g, _, _ = process_gradient(g, self.clip, self.eps)
        first, second = l2l_preprocess(g, self.preprocess_p, self.eps)
        h = self.gru(jnp.concatenate([first, second], axis=0), h)
        o = self.mlp(h)
        return h, -self.learning_rate * jnp.exp(o) * g

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
        """One step (uses only `grads`; all context is ignored).

        **Arguments:**

        - `grads`: gradients, same tree as at `init`.
        - `state`: the optimizer state.
        - `params` and the context keywords: ignored.

        **Returns:**

        `(updates, new_state)`; `updates` = `delta_theta`, to be added to the parameters.
        """
        state = check_state(state, "L2LGD2", self.gru.hidden_size)
        layout = state.layout
        dtypes = [jnp.result_type(x) for x in layout.check(grads, "grads")]
        g = layout.ravel(grads, "grads").astype(layout.dtype)[None]
        slots, delta = column_map(
            lambda start, xs, cs: self._columns(xs[0], cs[0]),
            (g,),
            (state.slots, jnp.zeros_like(g)),
            self.chunk_size,
        )
        return layout.unravel(delta[0], dtypes), LearnedOptimizerState(slots, layout)
