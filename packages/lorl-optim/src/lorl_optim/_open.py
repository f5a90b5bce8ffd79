"""OPEN (Goldie et al. 2024, "Can Learned Optimization Make RL Less Difficult?")."""

import copy
import math
from typing import Any, Literal

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray, PyTree

from . import _fused
from ._base import (
    AbstractLearnedOptimizer,
    LearnedOptimizerState,
    OptimizerContext,
    check_state,
    gather_context,
    require,
    scalar_context,
)
from ._fused import fused_wanted, run_core
from ._layout import ParamLayout
from ._nn import GRU, MLP, LayerNorm, Linear, column_map, column_reduce, count_flops, gru_input

# Momentum timescales, spec section 2 / OPEN Appendix B.2.
BETAS = (0.1, 0.5, 0.9, 0.99, 0.999, 0.9999)
# Inside log(|x| + eps) of momenta and gradient (reference implementation, spec section 2).
LOG_EPS = 1e-13
# Per-tensor normalisation x * rsqrt(NORM_EPS + mean(x^2)) (spec section 2).
NORM_EPS = 1e-5
# Update scales alpha_1 = alpha_2 = alpha_3 = 0.001 (OPEN Appendix B.4).
ALPHA = 1e-3
# Columns per chunk of the flat computation (speed only): 2048 beat 8192 by ~10-25% at
# 60k and 1M parameters in interleaved A/Bs (tools/bench_optim_ab.py, docs/optim/benchmark.md).
DEFAULT_CHUNK = 2048

FEATURE_NAMES = (
    "parameter",
    *(f"sign(m_{b})" for b in BETAS),
    *(f"log|m_{b}|" for b in BETAS),
    "sign(g)",
    "log|g|",
    "training_proportion",
    "layer_proportion",
    "batch_proportion",
    "dormancy",
)


# Per-element input rows of the flat computation, in order.
_ROW_NAMES = ("g", "p", "lp", "dorm", "mask", "eps")


def actor_noise(key: PRNGKeyArray, n: int, dtype: Any) -> Float[Array, "1 n"]:
    """`jax.random.normal(key, (1, n), dtype)`, generated faster.

    With the default partitionable threefry generator every element's value depends only
    on its flat index, so the same numbers come from a `(rows, 1024)` draw cut to `n`
    (equality is tested). XLA:CPU generated `(1, n)` for odd `n` ~5x slower (60k
    parameters: ~3 ms, more than the rest of Adam's update; docs/optim/benchmark.md).
    Other generators fall back to the direct draw.
    """
    width = 1024
    partitionable = bool(getattr(jax.config, "jax_threefry_partitionable"))  # noqa: B009
    fast = partitionable and str(jax.random.key_impl(key)) == "threefry2x32"
    if not fast or n <= width:
        return jax.random.normal(key, (1, n), dtype)
    rows = -(-n // width)
    return jax.random.normal(key, (rows, width), dtype).reshape(1, rows * width)[:, :n]


class OPENNetwork(eqx.Module):
    """OPEN's per-parameter network: GRU(in, F), then
    `Linear(F, H) -> LayerNorm -> ReLU -> Linear(H, H) -> LayerNorm -> ReLU -> Linear(H, out)`
    (LayerNorm eps 1e-6; OPEN Appendix B.4, spec section 2)."""

    gru: GRU
    mlp: MLP

    def __call__(
        self, x: Float[Array, "in c"], h: Float[Array, "hidden c"]
    ) -> tuple[Float[Array, "out c"], Float[Array, "hidden c"]]:
        h = self.gru(x, h)
        return self.mlp(h), h


def _network_init(n_in: int, hidden: int, width: int, n_out: int, key: PRNGKeyArray) -> OPENNetwork:
    k1, k2 = jax.random.split(key)
    return OPENNetwork(
        GRU.init(n_in, hidden, key=k1),
        MLP.init(hidden, (width, width), n_out, layer_norm=True, key=k2),
    )


def flat_layout(
    n_in: int, hidden: int, width: int, n_out: int
) -> list[tuple[str, tuple[int, ...]]]:
    """`(name, shape)` of every leaf of the reference (flax) parameter tree of one OPEN
    network, in the order of the published flat vectors (sorted keys at every level,
    `gru_params` before `params`; kernels `(in, out)`), spec section 2."""
    f, h = hidden, width
    return [
        ("gru/hn/bias", (f,)),
        ("gru/hn/kernel", (f, f)),
        ("gru/hr/kernel", (f, f)),
        ("gru/hz/kernel", (f, f)),
        ("gru/in/bias", (f,)),
        ("gru/in/kernel", (n_in, f)),
        ("gru/ir/bias", (f,)),
        ("gru/ir/kernel", (n_in, f)),
        ("gru/iz/bias", (f,)),
        ("gru/iz/kernel", (n_in, f)),
        ("mlp/layers_0/bias", (h,)),
        ("mlp/layers_0/kernel", (f, h)),
        ("mlp/layers_1/bias", (h,)),
        ("mlp/layers_1/scale", (h,)),
        ("mlp/layers_3/bias", (h,)),
        ("mlp/layers_3/kernel", (h, h)),
        ("mlp/layers_4/bias", (h,)),
        ("mlp/layers_4/scale", (h,)),
        ("mlp/layers_6/bias", (n_out,)),
        ("mlp/layers_6/kernel", (h, n_out)),
    ]


def _network_from_flat(vector: np.ndarray, n_in: int, hidden: int, width: int, n_out: int):
    leaves = {}
    offset = 0
    for name, shape in flat_layout(n_in, hidden, width, n_out):
        size = math.prod(shape)
        leaves[name] = jnp.asarray(vector[offset : offset + size].reshape(shape))
        offset += size
    g = lambda gate, kind: leaves[f"gru/{gate}/{kind}"]
    gru = GRU(
        weight_ih=jnp.concatenate([g("ir", "kernel").T, g("iz", "kernel").T, g("in", "kernel").T]),
        bias_ih=jnp.concatenate([g("ir", "bias"), g("iz", "bias"), g("in", "bias")]),
        weight_hh=jnp.concatenate([g("hr", "kernel").T, g("hz", "kernel").T, g("hn", "kernel").T]),
        bias_hn=g("hn", "bias"),
    )
    m = lambda layer, kind: leaves[f"mlp/layers_{layer}/{kind}"]
    mlp = MLP(
        layers=tuple(Linear(m(i, "kernel").T, m(i, "bias")) for i in (0, 3, 6)),
        norms=tuple(LayerNorm(m(i, "scale"), m(i, "bias"), 1e-6) for i in (1, 4)),
    )
    return OPENNetwork(gru, mlp)


def _network_to_flat(net: OPENNetwork) -> np.ndarray:
    f = net.gru.hidden_size
    wi, bi, wh = (np.asarray(x) for x in (net.gru.weight_ih, net.gru.bias_ih, net.gru.weight_hh))
    assert net.mlp.norms is not None
    (l0, l3, l6), (n1, n4) = net.mlp.layers, net.mlp.norms
    gate = {"r": slice(0, f), "z": slice(f, 2 * f), "n": slice(2 * f, 3 * f)}
    parts = [
        np.asarray(net.gru.bias_hn),
        wh[gate["n"]].T,
        wh[gate["r"]].T,
        wh[gate["z"]].T,
        bi[gate["n"]],
        wi[gate["n"]].T,
        bi[gate["r"]],
        wi[gate["r"]].T,
        bi[gate["z"]],
        wi[gate["z"]].T,
        np.asarray(l0.bias),
        np.asarray(l0.weight).T,
        np.asarray(n1.bias),
        np.asarray(n1.scale),
        np.asarray(l3.bias),
        np.asarray(l3.weight).T,
        np.asarray(n4.bias),
        np.asarray(n4.scale),
        np.asarray(l6.bias),
        np.asarray(l6.weight).T,
    ]
    return np.concatenate([np.ravel(x) for x in parts])


class OPEN(AbstractLearnedOptimizer):
    """OPEN (Goldie et al. 2024, Section 5 and Appendix B), with its variants.

    Per agent parameter, 19 input features in this order (reference order, spec
    section 2): `[p, sign(m_b) x 6, log(|m_b| + 1e-13) x 6, sign(g), log(|g| + 1e-13),
    training proportion, layer proportion, batch proportion, dormancy]` for
    `b in (0.1, 0.5, 0.9, 0.99, 0.999, 0.9999)`. Momenta are updated with the current
    gradient first (`m_b <- b m_b + (1 - b) g`, no bias correction). Features 0-14 are
    each normalised over the elements of their parameter tensor,
    `x * rsqrt(1e-5 + mean(x^2))`. A GRU(19, F) and MLP (see `OPENNetwork`) give
    `(o0, o1, o2)` and

    ```
    u_hat = a1 * o0 * exp(a2 * o1) + a3 * o2 * eps * actor_mask   # eps ~ N(0, 1)
    u     = u_hat - mean(u_hat)        # one scalar mean over ALL elements (actor + critic)
    p_new = p - u
    ```
    with `a1 = a2 = a3 = 0.001` (Appendix B.4). **Sign convention:** `update` returns
    `-u`, the optax update to *add*.

    `g` is expected after the agent's own gradient clipping: OPEN's reference PPO clips
    the global norm of the actor's and of the critic's gradients to 0.5 separately, which
    is `lorl_optim.clip_by_actor_critic_norm(0.5)` chained before OPEN (it reads the same
    `actor_mask`); lorl's PPO does it itself.

    Variants (all static configuration):

    - `hidden_size=16, mlp_width=32`: "larger", the multi-task size (`OPEN.larger`).
    - `separated=True`: two networks (two sets of meta-parameters); actor leaves
      (`actor_mask` True) go through `network`, critic leaves through `critic_network`.
      Zero-meaning stays one mean over all elements, as in the shared optimizer (our
      reading of Section 7.2, which changes only the meta-parameters). With a bool per
      leaf, each leaf runs only its own network (`lax.cond`); with a per-element mask
      both run and the result is selected (2x the network cost).
    - `no_features=True`: "No Features" (Appendix B.4): 14 inputs, the normalised
      momentum and gradient features (features 1-14; the parameter value is dropped, our
      reading of "conditions only on gradient and momentum"), two outputs, no noise.
    - `use_training_proportion`, `use_batch_proportion`, `use_layer_proportion`,
      `use_dormancy`: False removes that input (GRU input size shrinks by one);
      `use_stochasticity=False` removes the third output and the noise (Section 7.1).

    State: `6 + F` floats per agent parameter (rows 0-5 the momenta in the order of
    `BETAS`, rows 6.. the GRU hidden state): 14 for the default size, 22 for "larger".
    """

    network: OPENNetwork
    critic_network: OPENNetwork | None
    hidden_size: int = eqx.field(static=True)  # F = 8 (Appendix B.4); 16 larger (B.5)
    mlp_width: int = eqx.field(static=True)  # H = 16 (Appendix B.4); 32 larger (B.5)
    separated: bool = eqx.field(static=True)
    no_features: bool = eqx.field(static=True)
    use_training_proportion: bool = eqx.field(static=True)
    use_batch_proportion: bool = eqx.field(static=True)
    use_layer_proportion: bool = eqx.field(static=True)
    use_dormancy: bool = eqx.field(static=True)
    use_stochasticity: bool = eqx.field(static=True)
    alpha1: float = eqx.field(static=True)  # 0.001, Appendix B.4
    alpha2: float = eqx.field(static=True)  # 0.001, Appendix B.4
    alpha3: float = eqx.field(static=True)  # 0.001, Appendix B.4
    chunk_size: int = eqx.field(static=True, metadata={"speed_only": True})
    backend: Literal["auto", "xla", "fused"] = eqx.field(static=True, metadata={"speed_only": True})

    def __init__(
        self,
        *,
        hidden_size: int = 8,
        mlp_width: int = 16,
        separated: bool = False,
        no_features: bool = False,
        use_training_proportion: bool = True,
        use_batch_proportion: bool = True,
        use_layer_proportion: bool = True,
        use_dormancy: bool = True,
        use_stochasticity: bool = True,
        chunk_size: int = DEFAULT_CHUNK,
        backend: str = "auto",
        key: PRNGKeyArray,
    ):
        """**Arguments:**

        - `hidden_size`: GRU size F (8; "larger" 16).
        - `mlp_width`: MLP width H (16; "larger" 32).
        - `separated`: separate actor and critic meta-parameters (Section 7.2).
        - `no_features`: the "No Features" baseline (overrides the `use_*` flags to False).
        - `use_training_proportion`, `use_batch_proportion`, `use_layer_proportion`,
          `use_dormancy`, `use_stochasticity`: feature ablations of Section 7.1.
        - `chunk_size`: columns per chunk of the XLA computation (speed only).
        - `backend`: "auto" (the fused CPU kernel on CPU when it is available, XLA on
          other platforms), "xla" (always XLA) or "fused" (the kernel; CPU only). Speed
          only: results agree to float32 rounding (docs/optim/fused.md).
        - `key`: PRNG key for the initial meta-parameters.
        """
        if no_features:
            use_training_proportion = use_batch_proportion = False
            use_layer_proportion = use_dormancy = use_stochasticity = False
        self.hidden_size = hidden_size
        self.mlp_width = mlp_width
        self.separated = separated
        self.no_features = no_features
        self.use_training_proportion = use_training_proportion
        self.use_batch_proportion = use_batch_proportion
        self.use_layer_proportion = use_layer_proportion
        self.use_dormancy = use_dormancy
        self.use_stochasticity = use_stochasticity
        self.alpha1 = self.alpha2 = self.alpha3 = ALPHA
        self.chunk_size = chunk_size
        if backend not in ("auto", "xla", "fused"):
            raise ValueError(f"backend must be 'auto', 'xla' or 'fused', got {backend!r}.")
        self.backend = backend  # pyright: ignore[reportAttributeAccessIssue]
        ka, kc = jax.random.split(key)
        dims = (self.n_inputs, hidden_size, mlp_width, self.n_outputs)
        self.network = _network_init(*dims, ka)
        self.critic_network = _network_init(*dims, kc) if separated else None

    def with_backend(self, backend: str) -> "OPEN":
        """A copy that computes with `backend` ("auto", "xla" or "fused"; speed only).

        **Arguments:**

        - `backend`: the backend.

        **Returns:**

        An `OPEN` with the same meta-parameters.
        """
        if backend not in ("auto", "xla", "fused"):
            raise ValueError(f"backend must be 'auto', 'xla' or 'fused', got {backend!r}.")
        new = copy.copy(self)
        object.__setattr__(new, "backend", backend)
        return new

    @staticmethod
    def larger(*, key: PRNGKeyArray, **kwargs: Any) -> "OPEN":
        """The "larger" OPEN of the multi-task experiment (F = 16, H = 32; Appendix B.5).

        **Arguments:**

        - `key`: PRNG key for the initial meta-parameters.
        - `**kwargs`: variant flags as in `OPEN(...)`.

        **Returns:**

        An `OPEN` with 3,571 meta-parameters per network.
        """
        return OPEN(hidden_size=16, mlp_width=32, key=key, **kwargs)

    @property
    def feature_names(self) -> tuple[str, ...]:
        """Names of the network inputs, in order."""
        names = list(FEATURE_NAMES[1:15] if self.no_features else FEATURE_NAMES[:15])
        for name, used in zip(
            FEATURE_NAMES[15:],
            (
                self.use_training_proportion,
                self.use_layer_proportion,
                self.use_batch_proportion,
                self.use_dormancy,
            ),
            strict=True,
        ):
            if used:
                names.append(name)
        return tuple(names)

    @property
    def n_inputs(self) -> int:
        return len(self.feature_names)

    @property
    def n_outputs(self) -> int:
        return 3 if self.use_stochasticity else 2

    @property
    def n_slots(self) -> int:
        return len(BETAS) + self.hidden_size

    def config(self) -> dict[str, Any]:
        """Constructor arguments (all but `key`); see `AbstractLearnedOptimizer.config`."""
        return {
            "hidden_size": self.hidden_size,
            "mlp_width": self.mlp_width,
            "separated": self.separated,
            "no_features": self.no_features,
            "use_training_proportion": self.use_training_proportion,
            "use_batch_proportion": self.use_batch_proportion,
            "use_layer_proportion": self.use_layer_proportion,
            "use_dormancy": self.use_dormancy,
            "use_stochasticity": self.use_stochasticity,
            "chunk_size": self.chunk_size,
            "backend": self.backend,
        }

    def flops_per_parameter(self) -> int:
        """Matmul FLOPs per agent parameter and step (2 per weight entry). When
        separated this counts both networks, which is what a per-element actor mask
        costs; with a bool per leaf only one of them runs per parameter."""
        return count_flops((self.network, self.critic_network))

    # ----------------------------------------------------------------- weights I/O

    @property
    def flat_size(self) -> int:
        """Length of this optimizer's flat meta-parameter vector (reference layout)."""
        one = sum(
            math.prod(s)
            for _, s in flat_layout(self.n_inputs, self.hidden_size, self.mlp_width, self.n_outputs)
        )
        return 2 * one if self.separated else one

    def to_flat(self) -> Float[np.ndarray, " size"]:
        """The meta-parameters as one flat vector in the reference layout (the layout of
        the published weights; for `separated`, the actor network's vector followed by
        the critic network's).

        **Returns:**

        A NumPy vector of length `self.flat_size`.
        """
        parts = [_network_to_flat(self.network)]
        if self.critic_network is not None:
            parts.append(_network_to_flat(self.critic_network))
        return np.concatenate(parts)

    def from_flat(self, vector: ArrayLike) -> "OPEN":
        """A copy of this OPEN with meta-parameters read from a flat reference-layout vector.

        **Arguments:**

        - `vector`: 1-D array of length `self.flat_size` (1,211 for the default size,
          3,571 for "larger"), finite.

        **Returns:**

        An `OPEN` with the same configuration and the given meta-parameters.
        """
        vector = np.asarray(vector)
        if vector.ndim != 1 or vector.shape[0] != self.flat_size:
            raise ValueError(
                f"OPEN meta-parameter vector has shape {vector.shape}; this configuration "
                f"(F={self.hidden_size}, H={self.mlp_width}, {self.n_inputs} inputs, "
                f"{self.n_outputs} outputs, separated={self.separated}) expects shape "
                f"({self.flat_size},)."
            )
        if not np.issubdtype(vector.dtype, np.floating):
            raise ValueError(f"OPEN meta-parameter vector must be floating, got {vector.dtype}.")
        if not np.all(np.isfinite(vector)):
            raise ValueError(
                f"OPEN meta-parameter vector contains {int(np.sum(~np.isfinite(vector)))} "
                "NaN/inf values; meta-parameters must be finite."
            )
        dims = (self.n_inputs, self.hidden_size, self.mlp_width, self.n_outputs)
        half = self.flat_size // 2 if self.separated else self.flat_size
        new = eqx.tree_at(lambda o: o.network, self, _network_from_flat(vector[:half], *dims))
        if self.separated:
            critic = _network_from_flat(vector[half:], *dims)
            new = eqx.tree_at(lambda o: o.critic_network, new, critic)
        return new

    # ----------------------------------------------------------------- the step

    def init(self, params: PyTree[Float[Array, "..."]]) -> LearnedOptimizerState:
        layout = ParamLayout.from_tree(params)
        return LearnedOptimizerState(jnp.zeros((self.n_slots, layout.size), layout.dtype), layout)

    def _raw_features(
        self, g: Float[Array, "1 c"], p: Float[Array, "1 c"] | None, m_old: Float[Array, "6 c"]
    ) -> tuple[Float[Array, "6 c"], list[Array]]:
        """New momenta and the (unnormalised) per-tensor features 0-14 (1-14 without p), as
        row blocks `[p], sign(m) (6), log|m| (6), sign(g), log|g|`. The per-tensor sums of
        squares are taken block by block: a fused concatenate-then-reduce was ~7x slower
        on this machine (docs/optim/benchmark.md)."""
        betas = jnp.asarray(BETAS, g.dtype)[:, None]
        m = betas * m_old + (1.0 - betas) * g
        rows = [] if p is None else [p]
        rows += [jnp.sign(m), jnp.log(jnp.abs(m) + LOG_EPS), jnp.sign(g)]
        rows.append(jnp.log(jnp.abs(g) + LOG_EPS))
        return m, rows

    def step(
        self,
        grads: PyTree[Float[Array, "..."]],
        state: LearnedOptimizerState,
        params: PyTree[Float[Array, "..."]] | None,
        context: OptimizerContext,
        *,
        key: PRNGKeyArray | None = None,
    ) -> tuple[PyTree[Float[Array, "..."]], LearnedOptimizerState]:
        """One OPEN step (called by `update`, which takes the context fields as keywords).

        **Arguments:**

        - `grads`: gradients (after the agent's gradient clipping), same tree as at `init`.
        - `state`: the optimizer state.
        - `params`: current parameters (feature 0; required unless `no_features`).
        - `context`: an [`lorl_optim.OptimizerContext`][] with:
          - `training_proportion`: scalar, `(t // (L * N_mb)) / (N_updates - 1)`
            (see `lorl_optim.open_proportions`); required unless ablated.
          - `batch_proportion`: scalar, `((t // N_mb) % L) / (L - 1)`; required unless
            ablated.
          - `layer_proportions`: pytree like `params`, a scalar per leaf,
            `i / (n_layers - 1)` for the i-th dense layer of its network; required unless
            ablated.
          - `dormancy`: pytree like `params`, each leaf broadcastable to the parameter leaf
            (the tau = 0 score of the downstream neuron, shape `(out,)` for a kernel
            `(in, out)` and its bias); required unless ablated.
          - `actor_mask`: pytree like `params`, a bool per leaf (True for actor leaves);
            required with stochasticity or `separated`.
        - `key`: PRNG key for the actor noise; required with stochasticity. The noise is
          `jax.random.normal(key, (1, n_params))` over the flat parameter vector (leaves
          in `jax.tree` order), so the update is deterministic given the key. The fused
          kernel draws the same numbers itself (identical bits, values within float32
          rounding; docs/optim/fused.md, "Actor noise").

        **Returns:**

        `(updates, new_state)` with `updates = -u`, to be added to the parameters.
        """
        data, layout, dtypes, use_fused = self._prepare(grads, state, params, context, key)
        slots, u_hat = run_core(
            self, data, _xla_core, _fused_core, layout.sizes, self.backend, use_fused
        )
        u = u_hat[0] - jnp.mean(u_hat[0])
        return layout.unravel(-u, dtypes), LearnedOptimizerState(slots, layout)

    def noise_weights(
        self,
        grads: PyTree[Float[Array, "..."]],
        state: LearnedOptimizerState,
        params: PyTree[Float[Array, "..."]] | None = None,
        **context: Any,
    ) -> PyTree[Float[Array, "..."]]:
        """The weight `delta_i^actor` of the learned noise in the update this step would
        make (OPEN Section 5.4: `u_i^actor += alpha3 * delta_i^actor * eps`), per
        parameter; 0 for the critic's parameters. OPEN Appendix F.4-F.5 plots it relative
        to the parameters. Computed by running the network twice (noise 1 and 0 on the
        actor), so it costs two optimizer steps; for analyses, not training.

        **Arguments:**

        - `grads`, `state`, `params`: as for `update` (the state before the step).
        - `context`: the context as `update`'s keywords (`training_proportion`,
          `batch_proportion`, `layer_proportions`, `dormancy`, `actor_mask`) or
          `context=` an [`lorl_optim.OptimizerContext`][].

        **Returns:**

        A tree like `grads`.

        **Raises:**

        `ValueError` if this OPEN has no learned stochasticity (`use_stochasticity=False`).
        """
        if not self.use_stochasticity:
            raise ValueError("noise_weights: this OPEN has no learned stochasticity")
        ctx = context.pop("context", None)
        context.pop("key", None)  # the weight does not depend on the noise drawn
        ctx = gather_context(ctx, context, "OPEN.noise_weights")
        data, layout, dtypes, _ = self._prepare(grads, state, params, ctx, jax.random.key(0))
        data = {**data, "noise_key": None}  # the noise is given as `eps` below
        n = layout.size
        u1 = run_core(
            self, {**data, "eps": jnp.ones((1, n), layout.dtype)}, _xla_core, _fused_core,
            layout.sizes, "xla", False,
        )[1]  # fmt: skip
        u0 = run_core(
            self, {**data, "eps": jnp.zeros((1, n), layout.dtype)}, _xla_core, _fused_core,
            layout.sizes, "xla", False,
        )[1]  # fmt: skip
        return layout.unravel((u1[0] - u0[0]) / self.alpha3, dtypes)

    def _prepare(
        self,
        grads: PyTree[Float[Array, "..."]],
        state: LearnedOptimizerState,
        params: PyTree[Float[Array, "..."]] | None,
        context: OptimizerContext,
        key: PRNGKeyArray | None,
    ) -> tuple[dict[str, Any], Any, list[Any], bool]:
        """The inputs of OPEN's core for one step: `(data, layout, dtypes, use_fused)`."""
        owner = "OPEN"
        dormancy, actor_mask = context.dormancy, context.actor_mask
        training_proportion = context.training_proportion
        batch_proportion = context.batch_proportion
        layer_proportions = context.layer_proportions
        state = check_state(state, owner, self.n_slots)
        layout = state.layout
        dtype = layout.dtype
        dtypes = [jnp.result_type(x) for x in layout.check(grads, "grads")]
        g = layout.ravel(grads, "grads").astype(dtype)
        like = "a pytree with the same structure as the parameters"

        n = layout.size
        inputs: dict[str, Array] = {"g": g[None]}
        if not self.no_features:
            params = require(params, "params", owner, "the current agent parameters")
            inputs["p"] = layout.ravel(params, "params").astype(dtype)[None]

        # Context. Per-leaf scalars (and the scalar proportions) are folded into the GRU's
        # input weights and bias leaf by leaf; anything per element is an input row.
        tp = bp = None
        if self.use_training_proportion:
            tp = scalar_context(training_proportion, "training_proportion", owner, dtype)
        if self.use_batch_proportion:
            bp = scalar_context(batch_proportion, "batch_proportion", owner, dtype)
        lp_table = None
        if self.use_layer_proportion:
            lp = require(
                layer_proportions,
                "layer_proportions",
                owner,
                f"{like}, a scalar per leaf: i / (n_layers - 1) for the i-th dense layer",
            )
            is_table, lp_flat = layout.per_leaf(lp, "layer_proportions", "a scalar per leaf", dtype)
            if is_table:
                lp_table = lp_flat
            else:
                inputs["lp"] = lp_flat[None]
        if self.use_dormancy:
            dorm = require(
                dormancy,
                "dormancy",
                owner,
                f"{like}, each leaf broadcastable to the parameter leaf (the downstream "
                "neuron's score: shape (out,) for a kernel (in, out) and for its bias)",
            )
            expected = "shape (out,) per (in, out) kernel"
            inputs["dorm"] = layout.broadcast_leaves(dorm, "dormancy", expected, dtype)[None]
        mask_table = None
        if self.use_stochasticity or self.separated:
            mask = require(
                actor_mask, "actor_mask", owner, f"{like}, a bool per leaf (True = actor)"
            )
            is_table, mask_flat = layout.per_leaf(mask, "actor_mask", "a bool per leaf", dtype)
            if is_table:
                mask_table = mask_flat
            else:
                inputs["mask"] = mask_flat[None]
        use_fused = fused_wanted(self.backend, dtype) and self._fused_supported(mask_table)
        key_data = None
        if self.use_stochasticity:
            noise_key = require(key, "key", owner, "a PRNG key for the actor's update noise")
            # eps ~ N(0, 1), one draw per agent parameter in flat order. The fused kernel
            # draws the same numbers itself from the key words where it can (actor
            # columns only); the XLA core then draws them from the same words.
            key_data = _fused.kernel_noise_key(noise_key) if use_fused else None
            if key_data is None:
                inputs["eps"] = actor_noise(noise_key, n, dtype)
        data: dict[str, Any] = dict(inputs)
        data.update(slots=state.slots, tp=tp, bp=bp, lp_table=lp_table, mask_table=mask_table)
        data["noise_key"] = key_data
        return data, layout, dtypes, use_fused

    def _fused_supported(self, mask_table: Array | None) -> bool:
        """Whether the fused kernel covers this configuration (sizes (8, 16) and
        (16, 32); `separated` only with a bool per leaf)."""
        sizes_ok = (self.hidden_size, self.mlp_width) in ((8, 16), (16, 32))
        return sizes_ok and not (self.separated and mask_table is None)


def _fold(
    opt: OPEN,
    net: OPENNetwork,
    leaf: int,
    inv_rms: Array,
    tp: Array | None,
    bp: Array | None,
    lp_table: Array | None,
) -> tuple[Array, Array]:
    """GRU input weights/bias for one leaf with the per-tensor normalisation and every
    per-leaf constant input folded in (columns left: raw features, then the per-element
    rows `lp` (if not a scalar per leaf) and `dorm`): `_fold_context` for this leaf, with
    the raw-feature columns scaled by `inv_rms`."""
    n_raw = 14 if opt.no_features else 15
    n_leaves = lp_table.shape[0] if lp_table is not None else leaf + 1
    wt, b = _fold_context(opt, net, n_leaves, tp, bp, lp_table)
    w = wt.T
    return jnp.concatenate([w[:, :n_raw] * inv_rms[None, :], w[:, n_raw:]], axis=1), b[leaf]


def _fold_context(
    opt: OPEN,
    net: OPENNetwork,
    n_leaves: int,
    tp: Array | None,
    bp: Array | None,
    lp_table: Array | None,
) -> tuple[Array, Array]:
    """`_fold` for the fused kernel, all leaves at once and without the per-tensor
    normalisation (the kernel folds that in itself): the GRU input weights of the inputs
    left per element, transposed to `(inputs, 3F)`, and the per-leaf biases `(leaves, 3F)`
    with the scalar and per-leaf context folded in (added in `_fold`'s order)."""
    n_raw = 14 if opt.no_features else 15
    w, b = net.gru.weight_ih, net.gru.bias_ih
    cols = [w[:, :n_raw]]
    b = jnp.broadcast_to(b[None], (n_leaves, b.shape[0]))
    idx = n_raw
    if tp is not None:
        b = b + (w[:, idx] * tp)[None]
        idx += 1
    if opt.use_layer_proportion:
        if lp_table is not None:
            b = b + w[None, :, idx] * lp_table[:, None]
        else:
            cols.append(w[:, idx : idx + 1])
        idx += 1
    if bp is not None:
        b = b + (w[:, idx] * bp)[None]
        idx += 1
    if opt.use_dormancy:
        cols.append(w[:, idx : idx + 1])
    return jnp.concatenate(cols, axis=1).T, b


def _centred(layer: Linear) -> tuple[Array, Array]:
    w = layer.weight - jnp.mean(layer.weight, axis=0, keepdims=True)
    return w, layer.bias - jnp.mean(layer.bias)


def pack_open_network(net: OPENNetwork) -> Float[Array, " w"]:
    """One OPEN network's weights in the kernel's packed layout (`_fused/open.h`, `OpenNet`);
    the LayerNorm centring is folded into the layers as in `lorl_optim.MLP`."""
    if net.mlp.norms is None:
        raise ValueError("the fused kernel packs OPEN networks with LayerNorm only")
    l0, l1, l2 = net.mlp.layers
    n1, n2 = net.mlp.norms
    w0, b0 = _centred(l0)
    w1, b1 = _centred(l1)
    parts = [
        net.gru.weight_hh.T,
        net.gru.bias_hn,
        w0.T,
        b0,
        n1.scale,
        n1.bias,
        w1.T,
        b1,
        n2.scale,
        n2.bias,
        l2.weight.T,
        l2.bias,
    ]
    return jnp.concatenate([jnp.ravel(x).astype(jnp.float32) for x in parts])


def _fused_core(opt: OPEN, data: dict[str, Any], sizes: tuple[int, ...]) -> tuple[Array, Array]:
    """`_xla_core` with one call of the fused CPU kernel (per-tensor statistics and their
    normalisation, network and `u_hat`); the per-leaf context folding stays in JAX (tiny,
    all leaves at once)."""
    g = data["g"][0]
    p = data["p"][0] if "p" in data else None
    slots = data["slots"]
    tp, bp = data["tp"], data["bp"]
    lp_table, mask_table = data["lp_table"], data["mask_table"]
    n_leaves = len(sizes)
    nets = [opt.network] + ([opt.critic_network] if opt.critic_network is not None else [])
    folds = [_fold_context(opt, net, n_leaves, tp, bp, lp_table) for net in nets]
    bi = folds[0][1]
    if len(nets) == 2:
        assert mask_table is not None
        on_actor = mask_table[:, None] > 0.5
        bi = jnp.where(on_actor, bi, folds[1][1])
        leaf_net = jnp.where(mask_table > 0.5, 0, 1).astype(jnp.int32)
    else:
        leaf_net = jnp.zeros((n_leaves,), jnp.int32)
    rows = [data[k][0] for k in ("lp", "dorm") if k in data]
    n = g.shape[0]
    row_block = jnp.stack(rows) if rows else jnp.zeros((0, n), g.dtype)
    eps = None
    key_data = data["noise_key"]
    leaf_noise = jnp.ones((n_leaves,), g.dtype)
    if opt.use_stochasticity:
        # Without a per-leaf table, `eps` is the noise times the per-element mask, or
        # (when the kernel draws the noise from `key_data`) the mask alone.
        if key_data is None:
            eps = data["eps"][0]
        if mask_table is None:
            eps = data["mask"][0] if eps is None else eps * data["mask"][0]
        else:
            leaf_noise = mask_table
    packed = jnp.stack([pack_open_network(net) for net in nets])
    new_slots, u_hat = _fused.open_step(
        g,
        p,
        slots,
        row_block,
        eps,
        key_data,
        leaf_noise,
        jnp.stack([w for w, _ in folds]),
        bi,
        packed,
        leaf_net,
        sizes,
        hidden=opt.hidden_size,
        width=opt.mlp_width,
        n_out=opt.n_outputs,
        alphas=(opt.alpha1, opt.alpha2, opt.alpha3),
        log_eps=LOG_EPS,
        ln_eps=opt.network.mlp.norms[0].eps if opt.network.mlp.norms else 1e-6,
        norm_eps=NORM_EPS,
    )
    return new_slots, u_hat[None]


def _xla_core(opt: OPEN, data: dict[str, Any], sizes: tuple[int, ...]) -> tuple[Array, Array]:
    """OPEN's per-tensor statistics, network and `u_hat` with XLA (chunked column passes).

    `data` holds the flat inputs (rows `(1, n)`: `g`, optionally `p`, `lp`, `dorm`,
    `mask`, `eps`), the state `slots`, and the scalars/tables `tp`, `bp`, `lp_table`,
    `mask_table` (None when absent). Returns `(new slots, u_hat (1, n))`.
    """
    self = opt
    layout_sizes = sizes
    if data.get("noise_key") is not None:  # the noise the fused kernel draws itself
        key = jax.random.wrap_key_data(data["noise_key"], impl="threefry2x32")
        data = {**data, "eps": actor_noise(key, data["g"].shape[1], data["g"].dtype)}
    inputs = {k: data[k] for k in _ROW_NAMES if k in data}
    tp, bp = data["tp"], data["bp"]
    lp_table, mask_table = data["lp_table"], data["mask_table"]
    dtype = data["g"].dtype
    n, n_mom = data["g"].shape[1], len(BETAS)
    offsets = tuple(int(o) for o in np.cumsum((0, *layout_sizes))[:-1])
    names = tuple(inputs)
    n_raw = 14 if self.no_features else 15

    def unpack(xs: tuple[Array, ...]) -> dict[str, Array]:
        return dict(zip(names, xs, strict=True))

    def moments(col: Any, xs: tuple[Array, ...]) -> Array:
        x = unpack(xs[:-1])
        _, raw = self._raw_features(x["g"], x.get("p"), xs[-1][:n_mom])
        return jnp.concatenate([jnp.sum(r * r, axis=1) for r in raw])

    def folded(net: OPENNetwork, leaf: int, inv_rms: Array) -> tuple[Array, Array]:
        return _fold(self, net, leaf, inv_rms, tp, bp, lp_table)

    def leaf_step(leaf: int, weights: tuple[Array, ...]):
        def step(col: Any, xs: tuple[Array, ...], cs: tuple[Array, ...]):
            x = unpack(xs)
            slots_c = cs[0]
            m, raw = self._raw_features(x["g"], x.get("p"), slots_c[:n_mom])
            inp = list(raw)
            if "lp" in x:
                inp.append(x["lp"])
            if "dorm" in x:
                inp.append(x["dorm"])
            h = slots_c[n_mom:]

            def run(net: OPENNetwork, wi: Array, bi: Array, inp: list[Array], h: Array):
                h_new = net.gru(gru_input(inp), h, wi, bi)
                return net.mlp(h_new), h_new

            critic = self.critic_network
            if critic is None:
                o, h_new = run(self.network, weights[0], weights[1], inp, h)
            else:
                actor_out = lambda i, hh: run(self.network, weights[0], weights[1], i, hh)
                critic_out = lambda i, hh: run(critic, weights[2], weights[3], i, hh)
                if mask_table is not None:
                    o, h_new = jax.lax.cond(mask_table[leaf] > 0.5, actor_out, critic_out, inp, h)
                else:
                    o_a, h_a = actor_out(inp, h)
                    o_c, h_c = critic_out(inp, h)
                    is_actor = x["mask"] > 0.5
                    o = jnp.where(is_actor, o_a, o_c)
                    h_new = jnp.where(is_actor, h_a, h_c)
            u_hat = self.alpha1 * o[0:1] * jnp.exp(self.alpha2 * o[1:2])
            if self.use_stochasticity:
                on_actor = x["mask"] if mask_table is None else mask_table[leaf]
                u_hat = u_hat + self.alpha3 * o[2:3] * (x["eps"] * on_actor)
            return (m, h_new), u_hat

        return step

    full = tuple(inputs.values())
    bufs = (data["slots"], jnp.zeros((1, n), dtype))
    for leaf, (offset, size) in enumerate(zip(offsets, layout_sizes, strict=True)):
        if size == 0:
            continue
        span = {"start": offset, "stop": offset + size}
        # Pass 1 (this leaf): per-tensor second moments of the raw features. Reads the
        # state from the carried buffer (this leaf's columns are not yet overwritten),
        # so the state can be updated in place.
        sums = column_reduce(
            moments, (*full, bufs[0]), jnp.zeros((n_raw,), dtype), self.chunk_size, **span
        )
        inv_rms = jax.lax.rsqrt(NORM_EPS + sums / size)
        weights = folded(self.network, leaf, inv_rms)
        if self.critic_network is not None:
            weights = (*weights, *folded(self.critic_network, leaf, inv_rms))
        # Pass 2 (this leaf): features, network and u_hat; state updated in place.
        bufs = column_map(leaf_step(leaf, weights), full, bufs, self.chunk_size, **span)
    slots, u_hat = bufs
    return slots, u_hat
