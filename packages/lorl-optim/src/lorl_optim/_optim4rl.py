"""Optim4RL (Lan et al., "Learning to Optimize for Reinforcement Learning"), paper version."""

import abc
import copy
from typing import Any, Literal, TypeVar

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
from jaxtyping import Array, Float, PRNGKeyArray, PyTree

from . import _fused
from ._base import (
    AbstractLearnedOptimizer,
    LearnedOptimizerState,
    OptimizerContext,
    check_learning_rate,
    check_state,
)
from ._fused import BACKENDS, fused_wanted, run_core
from ._layout import ParamLayout
from ._nn import GRU, MLP, column_map, count_flops

_M = TypeVar("_M", bound=eqx.Module)


def _replace_static(module: _M, **fields: Any) -> _M:
    """A shallow copy of `module` with the given (static) fields replaced."""
    new = copy.copy(module)
    for name, value in fields.items():
        object.__setattr__(new, name, value)
    return new


def two_gru_config(opt: Any) -> dict[str, Any]:
    """The constructor arguments an Optim4RL-style optimizer (two GRUs, `gru1`/`mlp1`
    first) shares with its revision: learning rate, sizes, clip and chunk."""
    return {
        "learning_rate": opt.learning_rate,
        "hidden_size": opt.gru1.hidden_size,
        "mlp_widths": opt.mlp1.widths,
        "clip": opt.clip,
        "chunk_size": opt.chunk_size,
    }


# Column chunk of the flat per-parameter computation (keeps intermediates in cache);
# 8192 kept: 2048 was 0.89x the time at 1M parameters but 1.14x at 60k in an interleaved
# A/B (tools/bench_optim_ab.py, docs/optim/benchmark.md), not a clear win.
DEFAULT_CHUNK = 8192


def straight_through_sign(t: Float[Array, "*s"]) -> Float[Array, "*s"]:
    """`2 * (t >= 0) - 1` in the forward pass, identity gradient in the backward pass.

    Algorithm 1 of Optim4RL: `stop_gradient(2 (t >= 0) - 1 - t) + t`.
    """
    hard = jnp.where(t >= 0, 1.0, -1.0).astype(t.dtype)
    return jax.lax.stop_gradient(hard - t) + t


def process_gradient(
    g: Float[Array, "*s"], clip: float, eps: float
) -> tuple[Float[Array, "*s"], Float[Array, "*s"], Float[Array, "*s"]]:
    """Clip (if `clip > 0`), stop the gradient, and return `(g, sign(g), log(|g| + eps))`."""
    if clip > 0:
        g = jnp.clip(g, -clip, clip)
    g = jax.lax.stop_gradient(g)
    return g, jnp.sign(g), jnp.log(jnp.abs(g) + eps)


class AbstractGradientOnlyOptimizer(AbstractLearnedOptimizer):
    """A learned optimizer whose per-parameter network sees only the gradient (Optim4RL
    and its ablations): `n_slots` recurrent floats per agent parameter, one chunked column
    pass (`_columns`) over the flat gradient; every context keyword is ignored."""

    chunk_size: eqx.AbstractVar[int]
    learning_rate: eqx.AbstractVar[float | optax.Schedule]

    @property
    @abc.abstractmethod
    def n_slots(self) -> int:
        """Recurrent floats per agent parameter."""

    @abc.abstractmethod
    def _columns(
        self, g: Float[Array, "1 c"], h: Float[Array, "s c"]
    ) -> tuple[Float[Array, "s c"], Float[Array, "1 c"]]:
        """`(new state columns, delta_theta columns)` for a chunk of gradient columns."""

    @property
    def _fixed_rate(self) -> float:
        """The learning rate as a number: the network's computations see only that (a
        scheduled optimizer runs them on a copy at rate 1 and scales the update)."""
        lr = self.learning_rate
        if callable(lr):
            raise TypeError("a scheduled learning rate reached the network (internal error)")
        return lr

    @property
    def scheduled(self) -> bool:
        """Whether the learning rate is a schedule (then the state counts steps)."""
        return callable(self.learning_rate)

    def init(self, params: PyTree[Float[Array, "..."]]) -> LearnedOptimizerState:
        layout = ParamLayout.from_tree(params)
        slots = jnp.zeros((self.n_slots, layout.size), layout.dtype)
        count = jnp.zeros((), jnp.int32) if self.scheduled else None
        return LearnedOptimizerState(slots, layout, count)

    def step(
        self,
        grads: PyTree[Float[Array, "..."]],
        state: LearnedOptimizerState,
        params: PyTree[Float[Array, "..."]] | None,
        context: OptimizerContext,
        *,
        key: PRNGKeyArray | None = None,
    ) -> tuple[PyTree[Float[Array, "..."]], LearnedOptimizerState]:
        """One step (uses only `grads`; `params`, `context` and `key` are ignored).

        **Arguments:**

        - `grads`: gradients, same tree as at `init`.
        - `state`: the optimizer state.
        - `params`, `context`, `key`: ignored.

        **Returns:**

        `(updates, new_state)`; `updates` = `delta_theta`, to be added to the parameters.
        """
        state = check_state(state, type(self).__name__, self.n_slots)
        layout = state.layout
        if self.scheduled and state.count is None:
            raise ValueError(
                f"{type(self).__name__}.update: this optimizer's learning rate is a schedule, "
                "so its state must count steps; create the state with this optimizer's init."
            )
        dtypes = [jnp.result_type(x) for x in layout.check(grads, "grads")]
        g = layout.ravel(grads, "grads").astype(layout.dtype)[None]
        backend = self._backend()
        use_fused = fused_wanted(backend, layout.dtype) and self._fused_supported()
        # A schedule: every update is proportional to the learning rate, so the network
        # runs at rate 1 and its update is scaled by the schedule at this step's count.
        core = _replace_static(self, learning_rate=1.0) if self.scheduled else self
        slots, delta = run_core(
            core,
            {"g": g, "slots": state.slots},
            _xla_columns,
            _fused_columns,
            layout.sizes,
            backend,
            use_fused,
        )
        if not self.scheduled:
            return layout.unravel(delta[0], dtypes), LearnedOptimizerState(slots, layout)
        assert state.count is not None and callable(self.learning_rate)
        # optax's schedules mix Python floats with the int32 count: evaluate them under
        # standard promotion even where the caller runs strict promotion
        with jax.numpy_dtype_promotion("standard"):
            rate = jnp.asarray(self.learning_rate(state.count), layout.dtype)
        new_state = LearnedOptimizerState(slots, layout, state.count + 1)
        return layout.unravel(delta[0] * rate, dtypes), new_state

    def with_learning_rate(self: _M, learning_rate: float | optax.Schedule) -> _M:
        """A copy with another agent learning rate `alpha` (same meta-parameters).

        Optim4RL, LinearOptim and L2LGD2 scale their update by `alpha`; OPEN has no agent
        learning rate (its update scales are the fixed `alpha1..3` of the paper).

        **Arguments:**

        - `learning_rate`: the new agent learning rate: a positive Python float (a static
          field, so each value compiles its own program) or an optax schedule (a callable
          of the step count; the state then counts steps, so build it with the copy's
          `init`).

        **Returns:**

        A copy whose updates are `learning_rate / self.learning_rate` times this one's
        (networks unchanged).
        """
        learning_rate = check_learning_rate(learning_rate, type(self).__name__)
        return _replace_static(self, learning_rate=learning_rate)  # pyright: ignore[reportReturnType]

    def _backend(self) -> str:
        """The speed-only backend choice ("xla" for optimizers without a fused kernel)."""
        return "xla"

    def _fused_supported(self) -> bool:
        """Whether the fused CPU kernel covers this optimizer's configuration."""
        return False

    def _fused_step(
        self, g: Float[Array, " n"], slots: Float[Array, "s n"]
    ) -> tuple[Float[Array, "s n"], Float[Array, " n"]]:
        """`(new slots, delta_theta)` from the fused kernel (when `_fused_supported`)."""
        raise NotImplementedError


def _xla_columns(
    opt: AbstractGradientOnlyOptimizer, data: dict[str, Array], sizes: tuple[int, ...]
) -> tuple[Array, Array]:
    g = data["g"]
    slots, delta = column_map(
        lambda start, xs, cs: opt._columns(xs[0], cs[0]),
        (g,),
        (data["slots"], jnp.zeros_like(g)),
        opt.chunk_size,
    )
    return slots, delta


def pack_optim4rl(opt: "Optim4RL") -> Float[Array, " w"]:
    """Optim4RL's weights in the kernel's packed layout (`_fused/optim4rl.h`, `O4Net`)."""
    parts = []
    for gru, mlp in ((opt.gru1, opt.mlp1), (opt.gru2, opt.mlp2)):
        parts += [gru.weight_ih.T, gru.bias_ih, gru.weight_hh.T, gru.bias_hn]
        for layer in mlp.layers:
            parts += [layer.weight.T, layer.bias]
    return jnp.concatenate([jnp.ravel(x).astype(jnp.float32) for x in parts])


def _fused_columns(
    opt: AbstractGradientOnlyOptimizer, data: dict[str, Array], sizes: tuple[int, ...]
) -> tuple[Array, Array]:
    slots, delta = opt._fused_step(data["g"][0], data["slots"])
    return slots, delta[None]


class Optim4RL(AbstractGradientOnlyOptimizer):
    """Optim4RL, the paper version (Lan et al., Section 5 and Algorithm 1).

    Per scalar gradient `g` (all values from Algorithm 1 / Appendix A):

    ```
    g = clip(g, -c, c)                       # c = 1
    g_sign = sg(sign(g)); g_log = sg(log(|g| + 1e-18))
    h1 = GRU1(h1, [g_sign, g_log]); o1, o2 = MLP1(h1)
    m_sign = straight_through_sign(tanh(o1 + b))          # b = 1
    m = g_sign * m_sign * exp(o2)
    h2 = GRU2(h2, 2 g_log);  o3 = MLP2(h2);  v = exp(o3)
    delta_theta = -alpha * m / sqrt(v + 1e-18)
    ```
    GRUs have hidden size 8, MLPs hidden sizes [16, 16] with ReLU (Appendix A): 1,403
    meta-parameters. `delta_theta` is returned as the optax update (it is added to the
    parameters). Gradients enter only as stop-gradient inputs, so meta-gradients need no
    second derivatives of the agent loss.

    State: 16 floats per agent parameter (rows 0-7 `h1`, rows 8-15 `h2`).

    The later revision in the public Optim4RL code (raw g and g^2 inputs, no hidden MLP
    layers, no straight-through sign) is `lorl_optim.Optim4RLRevised`.
    """

    gru1: GRU
    mlp1: MLP
    gru2: GRU
    mlp2: MLP
    learning_rate: float | optax.Schedule = eqx.field(static=True)
    clip: float = eqx.field(static=True)  # c = 1, Algorithm 1
    sign_bias: float = eqx.field(static=True)  # b = 1, Algorithm 1
    eps1: float = eqx.field(static=True)  # 1e-18, Algorithm 1
    eps2: float = eqx.field(static=True)  # 1e-18, Algorithm 1
    chunk_size: int = eqx.field(static=True, metadata={"speed_only": True})
    backend: Literal["auto", "xla", "fused"] = eqx.field(static=True, metadata={"speed_only": True})

    def __init__(
        self,
        learning_rate: float | optax.Schedule,
        *,
        hidden_size: int = 8,
        mlp_widths: tuple[int, ...] = (16, 16),
        clip: float = 1.0,
        chunk_size: int = DEFAULT_CHUNK,
        backend: str = "auto",
        key: PRNGKeyArray,
    ):
        """**Arguments:**

        - `learning_rate`: the agent learning rate `alpha` (Optim4RL A2C gridworlds:
          1e-2 small_dense_short, 3e-3 big_dense_long, Appendix C.3; OPEN's MinAtar runs:
          0.1 x the Adam learning rate, OPEN Appendix C.2; see `lorl_optim.baselines`),
          or an optax schedule of the step count (the state then counts steps; the
          update is proportional to `alpha`, so it is scaled by the schedule's value).
        - `hidden_size`, `mlp_widths`: 8 and (16, 16) in the paper (Appendix A); OPEN's
          multi-task experiment doubles them (16, (32, 32); OPEN Appendix B.5).
        - `clip`: element-wise gradient clip `c` (1 in Algorithm 1; 0 disables).
        - `chunk_size`: columns per chunk of the XLA computation (speed only).
        - `backend`: "auto" (the fused CPU kernel on CPU when available, XLA on other
          platforms), "xla" or "fused" (speed only; docs/optim/fused.md).
        - `key`: PRNG key for the initial meta-parameters (see `lorl_optim` init notes).
        """
        k1, k2, k3, k4 = jax.random.split(key, 4)
        self.gru1 = GRU.init(2, hidden_size, key=k1)
        self.mlp1 = MLP.init(hidden_size, mlp_widths, 2, layer_norm=False, key=k2)
        self.gru2 = GRU.init(1, hidden_size, key=k3)
        self.mlp2 = MLP.init(hidden_size, mlp_widths, 1, layer_norm=False, key=k4)
        self.learning_rate = check_learning_rate(learning_rate, "Optim4RL")
        self.clip = clip
        self.sign_bias = 1.0
        self.eps1 = 1e-18
        self.eps2 = 1e-18
        self.chunk_size = chunk_size
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}.")
        self.backend = backend  # pyright: ignore[reportAttributeAccessIssue]

    @property
    def n_slots(self) -> int:
        return self.gru1.hidden_size + self.gru2.hidden_size

    def config(self) -> dict[str, Any]:
        """Constructor arguments (all but `key`); see `AbstractLearnedOptimizer.config`."""
        return {**two_gru_config(self), "backend": self.backend}

    def with_backend(self, backend: str) -> "Optim4RL":
        """A copy that computes with `backend` ("auto", "xla" or "fused"; speed only).

        **Arguments:**

        - `backend`: the backend.

        **Returns:**

        An `Optim4RL` with the same meta-parameters.
        """
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}.")
        return _replace_static(self, backend=backend)

    def _backend(self) -> str:
        return self.backend

    def _fused_supported(self) -> bool:
        sizes = (self.gru1.hidden_size, *(layer.bias.shape[0] for layer in self.mlp1.layers))
        sizes2 = (self.gru2.hidden_size, *(layer.bias.shape[0] for layer in self.mlp2.layers))
        return (
            sizes in ((8, 16, 16, 2), (16, 32, 32, 2))
            and sizes2 == (*sizes[:3], 1)
            and self.mlp1.norms is None
            and self.mlp2.norms is None
        )

    def _fused_step(
        self, g: Float[Array, " n"], slots: Float[Array, "s n"]
    ) -> tuple[Float[Array, "s n"], Float[Array, " n"]]:
        widths = (self.mlp1.layers[0].bias.shape[0], self.mlp1.layers[1].bias.shape[0])
        return _fused.optim4rl_step(
            g,
            slots,
            pack_optim4rl(self),
            hidden=self.gru1.hidden_size,
            widths=widths,
            learning_rate=self._fixed_rate,
            clip=self.clip,
            sign_bias=self.sign_bias,
            eps1=self.eps1,
            eps2=self.eps2,
        )

    def flops_per_parameter(self) -> int:
        """Matmul FLOPs per agent parameter and step (2 per weight entry)."""
        return count_flops((self.gru1, self.mlp1, self.gru2, self.mlp2))

    def _columns(
        self, g: Float[Array, "1 c"], h: Float[Array, "s c"]
    ) -> tuple[Float[Array, "s c"], Float[Array, "1 c"]]:
        f1 = self.gru1.hidden_size
        _, g_sign, g_log = process_gradient(g, self.clip, self.eps1)
        h1 = self.gru1(jnp.concatenate([g_sign, g_log], axis=0), h[:f1])
        o = self.mlp1(h1)
        m_sign = straight_through_sign(jnp.tanh(o[0:1] + self.sign_bias))
        m = g_sign * m_sign * jnp.exp(o[1:2])
        h2 = self.gru2(2.0 * g_log, h[f1:])
        v = jnp.exp(self.mlp2(h2))
        delta = -self._fixed_rate * m / jnp.sqrt(v + self.eps2)
        return jnp.concatenate([h1, h2], axis=0), delta
