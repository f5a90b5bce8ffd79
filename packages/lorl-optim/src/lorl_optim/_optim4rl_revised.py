"""The later revision of Optim4RL in the public reference code (a named variant; the
paper version is `lorl_optim.Optim4RL`)."""

from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
from jaxtyping import Array, Float, PRNGKeyArray

from ._base import check_learning_rate
from ._nn import GRU, MLP, count_flops
from ._optim4rl import DEFAULT_CHUNK, AbstractGradientOnlyOptimizer, two_gru_config

# The reference file the equations, sizes and constants below were read from (read for
# facts only; no code was taken from it).
REFERENCE = "sail-sg/optim4rl, components/optim.py at d2180b52603ae480046065451120ae5322149624"


class Optim4RLRevised(AbstractGradientOnlyOptimizer):
    """Optim4RL, the later revision of the public reference code (not the paper version).

    Read from the reference repository `sail-sg/optim4rl`, file `components/optim.py`,
    commit `d2180b52603ae480046065451120ae5322149624` (class `Optim4RL` and the
    element-wise clip of its `OptimizerWrapper`). Per scalar gradient `g`:

    ```
    g = sg(clip(g, -c, c))                   # c = 1 (the reference configs' grad_clip)
    h1 = GRU1(h1, g);    o1 = MLP1(h1);    m = sign(g) * exp(o1)
    h2 = GRU2(h2, g^2);  o2 = MLP2(h2)
    delta_theta = -alpha * m * rsqrt(exp(o2) + eps)       # eps = 1e-8
    ```
    What differs from the paper version (`lorl_optim.Optim4RL`, Algorithm 1): the GRUs
    read the raw clipped gradient `g` and its square `g^2` (not `sign(g)`, `log|g|` and
    `2 log|g|`), the read-outs have no hidden layers (`mlp_widths = ()`: one linear map
    from the GRU state, as the reference default `mlp_dims = ()`), the update direction is
    `sign(g)` with no learned, straight-through sign flip, and `eps = 1e-8` sits inside
    the reciprocal square root. GRU hidden size 8 (the reference default), tanh candidate
    activation, zero initial hidden states.

    Meta-parameters: two GRUs with one input (8 hidden: 248 each) and two 8 -> 1 linear
    read-outs (9 each): 514 in all. Initialisation as in `lorl_optim`'s other optimizers
    (LeCun-normal kernels, zero biases; the reference's flax defaults differ only by
    orthogonal recurrent kernels). Gradients enter only as stop-gradient inputs, so
    meta-gradients need no second derivatives of the agent loss.

    State: 16 floats per agent parameter (rows 0-7 `h1`, rows 8-15 `h2`). XLA only (no
    fused CPU kernel).
    """

    gru1: GRU
    mlp1: MLP
    gru2: GRU
    mlp2: MLP
    learning_rate: float | optax.Schedule = eqx.field(static=True)
    clip: float = eqx.field(static=True)  # c = 1, reference configs (grad_clip 1)
    eps: float = eqx.field(static=True)  # 1e-8, reference `Optim4RL.eps`
    chunk_size: int = eqx.field(static=True, metadata={"speed_only": True})

    def __init__(
        self,
        learning_rate: float | optax.Schedule,
        *,
        hidden_size: int = 8,
        mlp_widths: tuple[int, ...] = (),
        clip: float = 1.0,
        eps: float = 1e-8,
        chunk_size: int = DEFAULT_CHUNK,
        key: PRNGKeyArray,
    ):
        """**Arguments:**

        - `learning_rate`: the agent learning rate `alpha` (the reference configs use
          e.g. 3e-2 on small_dense_long and 1e-3 to 3e-3 on the gridworlds).
        - `hidden_size`: GRU hidden size (8, the reference default).
        - `mlp_widths`: hidden widths of the two read-outs (`()`, the reference default:
          a single linear layer; ReLU between hidden layers otherwise).
        - `clip`: element-wise gradient clip `c` (1, the reference configs; 0 disables).
        - `eps`: added to `v = exp(o2)` inside the reciprocal square root (1e-8, the
          reference default).
        - `chunk_size`: columns per chunk of the flat computation (speed only).
        - `key`: PRNG key for the initial meta-parameters.

        **Raises:**

        `ValueError` for a non-positive `learning_rate`, `hidden_size` or `eps`, or a
        negative `clip`.
        """
        learning_rate = check_learning_rate(learning_rate, "Optim4RLRevised")
        if not isinstance(hidden_size, int) or hidden_size < 1:
            raise ValueError(f"hidden_size must be an integer >= 1, got {hidden_size!r}.")
        if not clip >= 0:
            raise ValueError(f"clip must be >= 0 (0 disables clipping), got {clip!r}.")
        if not eps > 0:
            raise ValueError(f"eps must be > 0, got {eps!r}.")
        k1, k2, k3, k4 = jax.random.split(key, 4)
        self.gru1 = GRU.init(1, hidden_size, key=k1)
        self.mlp1 = MLP.init(hidden_size, tuple(mlp_widths), 1, layer_norm=False, key=k2)
        self.gru2 = GRU.init(1, hidden_size, key=k3)
        self.mlp2 = MLP.init(hidden_size, tuple(mlp_widths), 1, layer_norm=False, key=k4)
        self.learning_rate = learning_rate
        self.clip = float(clip)
        self.eps = float(eps)
        self.chunk_size = chunk_size

    @property
    def n_slots(self) -> int:
        return self.gru1.hidden_size + self.gru2.hidden_size

    def config(self) -> dict[str, Any]:
        """Constructor arguments (all but `key`); see `AbstractLearnedOptimizer.config`."""
        return {**two_gru_config(self), "eps": self.eps}

    def flops_per_parameter(self) -> int:
        """Matmul FLOPs per agent parameter and step (2 per weight entry)."""
        return count_flops((self.gru1, self.mlp1, self.gru2, self.mlp2))

    def _columns(
        self, g: Float[Array, "1 c"], h: Float[Array, "s c"]
    ) -> tuple[Float[Array, "s c"], Float[Array, "1 c"]]:
        f1 = self.gru1.hidden_size
        if self.clip > 0:
            g = jnp.clip(g, -self.clip, self.clip)
        g = jax.lax.stop_gradient(g)
        h1 = self.gru1(g, h[:f1])
        m = jnp.sign(g) * jnp.exp(self.mlp1(h1))
        h2 = self.gru2(g * g, h[f1:])
        rsqrt_v = jax.lax.rsqrt(jnp.exp(self.mlp2(h2)) + self.eps)
        delta = -self._fixed_rate * m * rsqrt_v
        return jnp.concatenate([h1, h2], axis=0), delta
