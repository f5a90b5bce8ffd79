"""Calls into the fused CPU kernels (`kernels.cc`) through the XLA FFI, and the choice
between them and the XLA implementations (`fused_wanted`, `run_core`)."""

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Int, UInt32

from ._compile import _require_kernel, available

# Actor-noise modes of `lorl_open_step` (kernels.cc, `NoiseMode`).
NOISE_NONE, NOISE_GIVEN, NOISE_KEY, NOISE_KEY_MASK = 0, 1, 2, 3
# Up to this many parameters `lorl_open_step` keeps phase 1's seven log features for phase
# 2 instead of recomputing them (7 floats per parameter, 28 MB at 1M, held per calling
# thread between calls); above, it recomputes them. Speed only: results are the same.
LOG_CACHE_MAX_COLUMNS = 1 << 22


def offsets_array(sizes: tuple[int, ...]) -> Int[np.ndarray, " leaves_plus_one"]:
    """Leaf boundaries `(0, s0, s0 + s1, ...)` as int32."""
    return np.cumsum((0, *sizes)).astype(np.int32)


def kernel_noise_key(key: Any) -> UInt32[Array, "2"] | None:
    """The two key words from which the kernel can draw `jax.random.normal(key, (1, n))`
    itself, or None when it cannot (another PRNG implementation, or the non-default
    `jax_threefry_partitionable=False`, under which the bits of an element also depend on
    `n`).

    **Arguments:**

    - `key`: a typed PRNG key or a raw `uint32[2]` key.

    **Returns:**

    `uint32[2]` key data, or None.
    """
    partitionable = bool(getattr(jax.config, "jax_threefry_partitionable"))  # noqa: B009
    if not partitionable or str(jax.random.key_impl(key)) != "threefry2x32":
        return None
    if jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key):
        key = jax.random.key_data(key)
    if key.shape != (2,) or key.dtype != jnp.uint32:
        return None
    return key


def normal(key_data: UInt32[Array, "2"], n: int) -> tuple[UInt32[Array, " n"], Float[Array, " n"]]:
    """The kernel's own draw of `jax.random.bits(key, (n,))` and
    `jax.random.normal(key, (n,))` (for the tests).

    **Arguments:**

    - `key_data`: `kernel_noise_key(key)`.
    - `n`: number of values.

    **Returns:**

    `(bits, normal values)`.
    """
    _require_kernel()
    bits, values = jax.ffi.ffi_call(
        "lorl_normal",
        (jax.ShapeDtypeStruct((n,), jnp.uint32), jax.ShapeDtypeStruct((n,), jnp.float32)),
    )(key_data)
    return bits, values


def open_step(
    g: Float[Array, " n"],
    p: Float[Array, " n"] | None,
    slots: Float[Array, "s n"],
    rows: Float[Array, "r n"],
    eps: Float[Array, " n"] | None,
    key_data: UInt32[Array, "2"] | None,
    leaf_noise: Float[Array, " leaves"],
    wi: Float[Array, "nets k gates"],
    bi: Float[Array, "leaves gates"],
    nets: Float[Array, "nets w"],
    leaf_net: Int[Array, " leaves"],
    sizes: tuple[int, ...],
    *,
    hidden: int,
    width: int,
    n_out: int,
    alphas: tuple[float, float, float],
    log_eps: float,
    ln_eps: float,
    norm_eps: float,
) -> tuple[Float[Array, "s n"], Float[Array, " n"]]:
    """One whole OPEN step in one kernel call (`lorl_open_step`): the per-tensor
    statistics of the raw features, their normalisation folded into each leaf's GRU
    input weights, then the network and `u_hat` for every column.

    **Arguments:** flat inputs as described in kernels.cc (`OpenStepImpl`); `wi` are
    each network's GRU input weights transposed to `(inputs, 3F)` *without* the
    per-tensor normalisation (the kernel scales the raw-feature rows of each leaf by
    `1 / sqrt(norm_eps + mean square)`), `bi` the per-leaf biases with every per-leaf
    constant input folded in; `leaf_net` picks each leaf's network; `nets` the packed
    networks (`pack_open_network`). Actor noise: with `key_data` (`kernel_noise_key`)
    the kernel draws `jax.random.normal(key, (1, n))` itself, only for leaves whose
    `leaf_noise` is non-zero, times `eps` if given (a per-element actor mask); without
    it `eps` is the noise itself (None: no stochasticity). Up to `LOG_CACHE_MAX_COLUMNS`
    parameters the kernel keeps its first phase's log features for the second.

    **Returns:**

    `(new slots, u_hat)`.
    """
    n = g.shape[0]
    cache_logs = n <= LOG_CACHE_MAX_COLUMNS
    if key_data is not None:
        noise = NOISE_KEY if eps is None else NOISE_KEY_MASK
    else:
        noise = NOISE_NONE if eps is None else NOISE_GIVEN
    new_slots, u_hat = jax.ffi.ffi_call(
        "lorl_open_step",
        (jax.ShapeDtypeStruct(slots.shape, jnp.float32), jax.ShapeDtypeStruct((n,), jnp.float32)),
        vmap_method="sequential",
        input_output_aliases={2: 0},
    )(
        g,
        g if p is None else p,
        slots,
        rows,
        jnp.zeros((1,), jnp.float32) if eps is None else eps,
        jnp.zeros((2,), jnp.uint32) if key_data is None else key_data,
        leaf_noise,
        wi,
        bi,
        nets,
        leaf_net,
        jnp.asarray(offsets_array(sizes)),
        hidden=hidden,
        width=width,
        n_out=n_out,
        has_p=p is not None,
        noise=np.int64(noise),
        a1=np.float32(alphas[0]),
        a2=np.float32(alphas[1]),
        a3=np.float32(alphas[2]),
        log_eps=np.float32(log_eps),
        ln_eps=np.float32(ln_eps),
        norm_eps=np.float32(norm_eps),
        cache_logs=cache_logs,
    )
    return new_slots, u_hat


def optim4rl_step(
    g: Float[Array, " n"],
    slots: Float[Array, "s n"],
    net: Float[Array, " w"],
    *,
    hidden: int,
    widths: tuple[int, int],
    learning_rate: float,
    clip: float,
    sign_bias: float,
    eps1: float,
    eps2: float,
) -> tuple[Float[Array, "s n"], Float[Array, " n"]]:
    """Optim4RL's per-parameter networks and `delta_theta` (the kernel `lorl_optim4rl_step`).

    **Arguments:** flat gradient, state, packed weights (`pack_optim4rl`) and the static
    configuration.

    **Returns:**

    `(new slots, delta_theta)`.
    """
    new_slots, delta = jax.ffi.ffi_call(
        "lorl_optim4rl_step",
        (
            jax.ShapeDtypeStruct(slots.shape, jnp.float32),
            jax.ShapeDtypeStruct(g.shape, jnp.float32),
        ),
        vmap_method="sequential",
        input_output_aliases={1: 0},
    )(
        g,
        slots,
        net,
        hidden=hidden,
        width1=widths[0],
        width2=widths[1],
        lr=np.float32(learning_rate),
        clip=np.float32(clip),
        sign_bias=np.float32(sign_bias),
        eps1=np.float32(eps1),
        eps2=np.float32(eps2),
    )
    return new_slots, delta


def math_op(x: Float[Array, " n"], op: str) -> Float[Array, " n"]:
    """The kernel's approximation of `op` ("exp", "log", "sigmoid", "tanh", "rsqrt")
    applied elementwise (for tests of the documented error bounds).

    **Arguments:**

    - `x`: float32 vector.
    - `op`: the function's name.

    **Returns:**

    The approximated values.
    """
    _require_kernel()
    index = ("exp", "log", "sigmoid", "tanh", "rsqrt").index(op)
    return jax.ffi.ffi_call("lorl_math", jax.ShapeDtypeStruct(x.shape, jnp.float32))(
        x, op=np.int64(index)
    )


# ------------------------------------------------------------------- backend selection

BACKENDS = ("auto", "xla", "fused")


def fused_wanted(backend: str, dtype: Any) -> bool:
    """Whether an optimizer with this `backend` field should use the fused kernel for
    parameters of `dtype` (float32 only; builds the kernel on first use).

    **Arguments:**

    - `backend`: "auto", "xla" or "fused".
    - `dtype`: the flat parameter dtype.

    **Returns:**

    True to use the fused path (on CPU; "auto" still runs XLA on other platforms).
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}.")
    if backend == "xla" or jnp.dtype(dtype) != jnp.float32:
        return False
    return available()


def run_core(
    opt: Any,
    data: Any,
    xla_core: Any,
    fused_core: Any,
    sizes: tuple[int, ...],
    backend: str,
    use_fused: bool,
) -> Any:
    """`xla_core(opt, data, sizes)`, computed by `fused_core` when `use_fused`.

    The fused path is a `jax.custom_jvp` whose JVP rule is the JVP of the XLA core, so
    forward- and reverse-mode derivatives (meta-gradients) are those of the XLA
    implementation. With `backend="auto"` the kernel is chosen per lowering platform
    (`jax.lax.platform_dependent`): CPU runs the kernel, other platforms the XLA core.

    **Arguments:**

    - `opt`: the optimizer module (its arrays are the meta-parameters).
    - `data`: pytree of arrays (None allowed) read by both cores.
    - `xla_core`, `fused_core`: functions `(opt, data, sizes) -> outputs`.
    - `sizes`: static leaf sizes.
    - `backend`: the optimizer's `backend` field.
    - `use_fused`: result of `fused_wanted` and the optimizer's own support check.

    **Returns:**

    The core's outputs.
    """

    def xla(o: Any, d: Any) -> Any:
        return xla_core(o, d, sizes)

    if not use_fused:
        return xla(opt, data)

    def fused(o: Any, d: Any) -> Any:
        return fused_core(o, d, sizes)

    @jax.custom_jvp
    def core(o: Any, d: Any) -> Any:
        if backend == "fused":
            return fused(o, d)
        return jax.lax.platform_dependent(o, d, cpu=fused, default=xla)

    @core.defjvp
    def _core_jvp(primals: Any, tangents: Any) -> Any:
        return jax.jvp(xla, primals, tangents)

    return core(opt, data)
