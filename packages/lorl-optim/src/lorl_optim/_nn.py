"""Features-major building blocks of the per-parameter networks.

Every array here is laid out `(features, n)`: one column per agent parameter, so each
layer is one matrix product `W @ X` over all parameters at once. Weights are stored
`(out, in)` (the transpose of the flax kernels the published OPEN weights use).

Initialisation (for training from scratch; the papers do not state one): kernels are
LeCun-normal, `N(0, 1/fan_in)` (the flax `Dense` default), biases zero, LayerNorm scale
one. Recurrent GRU kernels use LeCun-normal too instead of flax's orthogonal default:
a batched QR under `vmap` deadlocked on this machine (architecture notes, pitfalls).
"""

from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray


def _lecun(key: PRNGKeyArray, out_features: int, in_features: int) -> Float[Array, "o i"]:
    return jax.random.normal(key, (out_features, in_features)) / jnp.sqrt(float(in_features))


class Linear(eqx.Module):
    """Dense layer on features-major input: `y = W @ x + b`, `W` of shape `(out, in)`."""

    weight: Float[Array, "out in"]
    bias: Float[Array, " out"]

    @staticmethod
    def init(in_features: int, out_features: int, *, key: PRNGKeyArray) -> "Linear":
        return Linear(_lecun(key, out_features, in_features), jnp.zeros((out_features,)))

    def __call__(self, x: Float[Array, "in n"]) -> Float[Array, "out n"]:
        return self.weight @ x + self.bias[:, None]


class LayerNorm(eqx.Module):
    """LayerNorm over the feature axis (axis 0) of a features-major array.

    `y = (x - mean) / sqrt(var + eps) * scale + bias`, with the biased variance, as flax
    `nn.LayerNorm`; OPEN uses `eps = 1e-6` (flax default, spec section 2).
    """

    scale: Float[Array, " features"]
    bias: Float[Array, " features"]
    eps: float = eqx.field(static=True, default=1e-6)

    @staticmethod
    def init(features: int, eps: float = 1e-6) -> "LayerNorm":
        return LayerNorm(jnp.ones((features,)), jnp.zeros((features,)), eps)

    def __call__(self, x: Float[Array, "features n"]) -> Float[Array, "features n"]:
        # The means over the (short, leading) feature axis are products with a row of
        # 1/features: XLA:CPU reduces a leading axis of a wide array very slowly (a
        # (16, 60k) sum took ~10 ms, the same as a matrix product ~0.1 ms; see
        # docs/optim/benchmark.md).
        average = jnp.full((1, x.shape[0]), 1.0 / x.shape[0], x.dtype)
        mean = jnp.matmul(average, x, precision=jax.lax.Precision.HIGHEST)
        return self.centred(x - mean)

    def centred(self, centred: Float[Array, "features n"]) -> Float[Array, "features n"]:
        """The LayerNorm of an input whose feature mean has already been subtracted."""
        average = jnp.full((1, centred.shape[0]), 1.0 / centred.shape[0], centred.dtype)
        highest = jax.lax.Precision.HIGHEST  # exact float32 means on GPUs/TPUs too
        var = jnp.matmul(average, centred * centred, precision=highest)
        normed = centred * jax.lax.rsqrt(var + self.eps)
        return normed * self.scale[:, None] + self.bias[:, None]


class GRU(eqx.Module):
    """GRU cell (flax `GRUCell` convention), applied to every column independently.

    Gates stacked in the order `[r, z, n]` along the first axis of `weight_ih`
    (`(3F, in)`), `bias_ih` (`(3F,)`) and `weight_hh` (`(3F, F)`):

    ```
    r  = sigmoid(W_ir x + b_ir + W_hr h)
    z  = sigmoid(W_iz x + b_iz + W_hz h)
    n  = tanh(W_in x + b_in + r * (W_hn h + b_hn))
    h' = (1 - z) * n + z * h
    ```
    The new hidden state is also the output.
    """

    weight_ih: Float[Array, "gates in"]
    bias_ih: Float[Array, " gates"]
    weight_hh: Float[Array, "gates hidden"]
    bias_hn: Float[Array, " hidden"]

    @staticmethod
    def init(in_features: int, hidden: int, *, key: PRNGKeyArray) -> "GRU":
        ki, kh = jax.random.split(key)
        return GRU(
            _lecun(ki, 3 * hidden, in_features),
            jnp.zeros((3 * hidden,)),
            _lecun(kh, 3 * hidden, hidden),
            jnp.zeros((hidden,)),
        )

    @property
    def hidden_size(self) -> int:
        return self.bias_hn.shape[-1]

    def __call__(
        self,
        x: Float[Array, "in n"],
        h: Float[Array, "hidden n"],
        weight_ih: Float[Array, "gates in"] | None = None,
        bias_ih: Float[Array, " gates"] | None = None,
    ) -> Float[Array, "hidden n"]:
        """One step; `weight_ih`/`bias_ih` replace the input weights (used to fold
        per-tensor constants into them)."""
        f = self.hidden_size
        wi = self.weight_ih if weight_ih is None else weight_ih
        bi = self.bias_ih if bias_ih is None else bias_ih
        gx = wi @ x + bi[:, None]
        gh = self.weight_hh @ h
        r = jax.nn.sigmoid(gx[:f] + gh[:f])
        z = jax.nn.sigmoid(gx[f : 2 * f] + gh[f : 2 * f])
        n = jnp.tanh(gx[2 * f :] + r * (gh[2 * f :] + self.bias_hn[:, None]))
        return (1.0 - z) * n + z * h


class MLP(eqx.Module):
    """`Linear -> [LayerNorm] -> ReLU -> ... -> Linear` on features-major input."""

    layers: tuple[Linear, ...]
    norms: tuple[LayerNorm, ...] | None

    @staticmethod
    def init(
        in_features: int,
        widths: tuple[int, ...],
        out_features: int,
        *,
        layer_norm: bool,
        key: PRNGKeyArray,
    ) -> "MLP":
        sizes = (in_features, *widths, out_features)
        keys = jax.random.split(key, len(sizes) - 1)
        layers = tuple(
            Linear.init(a, b, key=k) for a, b, k in zip(sizes[:-1], sizes[1:], keys, strict=True)
        )
        norms = tuple(LayerNorm.init(w) for w in widths) if layer_norm else None
        return MLP(layers, norms)

    @property
    def widths(self) -> tuple[int, ...]:
        """The hidden widths (the `widths` given to `MLP.init`)."""
        return tuple(int(layer.weight.shape[-2]) for layer in self.layers[:-1])

    def __call__(self, x: Float[Array, "in n"]) -> Float[Array, "out n"]:
        for i, layer in enumerate(self.layers[:-1]):
            if self.norms is None:
                x = layer(x)
            else:
                # LayerNorm's centring folded into the layer: the feature mean of
                # `W x + b` is `mean_rows(W) x + mean(b)`, so the centred output is one
                # product with the row-centred weights (one reduction less per column;
                # equal up to float32 rounding).
                w = layer.weight - jnp.mean(layer.weight, axis=0, keepdims=True)
                b = layer.bias - jnp.mean(layer.bias)
                x = self.norms[i].centred(w @ x + b[:, None])
            x = jax.nn.relu(x)
        return self.layers[-1](x)


def gru_input(rows: list[Array]) -> Float[Array, "in c"]:
    """GRU input rows joined into one `(in, c)` block, behind an optimisation barrier.

    Without the barrier XLA splits `W @ concatenate(rows)` into one product per row block
    (products with K = 1 become broadcast multiplies fused into the gate computation). In
    isolation (a 2048-column chunk in cache) that made OPEN's GRU step ~1.3-2x slower on
    XLA:CPU; in the whole update the barrier was worth ~5% at 60k parameters and nothing
    measurable at 1M (docs/optim/benchmark.md). It is the identity for values, gradients
    and `vmap`.
    """
    return jax.lax.optimization_barrier(jnp.concatenate(rows, axis=0))


def count_flops(module: Any) -> int:
    """Multiply-add FLOPs (2 per weight entry) of one column through `module`'s matmuls."""
    return sum(
        2 * int(leaf.size)
        for leaf in jax.tree.leaves(module)
        if isinstance(leaf, jax.Array) and leaf.ndim == 2
    )


def column_map(
    fn: Callable[..., tuple[Any, ...]],
    inputs: tuple[Array, ...],
    carry: tuple[Array, ...],
    chunk_size: int,
    *,
    start: int = 0,
    stop: int | None = None,
) -> tuple[Array, ...]:
    """Run a column-wise computation over columns `[start, stop)` of features-major arrays,
    one column chunk at a time.

    `inputs` are `(k_i, n)` arrays (read only); `carry` are `(k_j, n)` output buffers.
    For each chunk of at most `chunk_size` columns beginning at (absolute) column `col`,
    `fn(col, input_chunks, carry_chunks)` returns the new carry chunks, which are written
    back in place (a carry chunk may be returned as a tuple of row blocks). A buffer may
    hold the old values (e.g. the optimizer state): a chunk is read before it is
    overwritten, and no other chunk reads it.

    Every intermediate of the per-parameter network then lives in cache, and no full-size
    temporary is allocated: on this machine both mattered more than the matmuls themselves
    (docs/optim/benchmark.md). Full chunks run in a `fori_loop` (reverse-differentiable,
    vmappable); a last partial chunk runs once after it with its own static size.
    """
    stop = (inputs or carry)[0].shape[-1] if stop is None else stop
    n_full, tail = divmod(stop - start, chunk_size)

    def run(col: Any, size: int, bufs: tuple[Array, ...]) -> tuple[Array, ...]:
        xs = tuple(jax.lax.dynamic_slice_in_dim(x, col, size, axis=1) for x in inputs)
        cs = tuple(jax.lax.dynamic_slice_in_dim(b, col, size, axis=1) for b in bufs)
        ys = fn(col, xs, cs)
        out = []
        for b, y in zip(bufs, ys, strict=True):
            # Row blocks are joined in cache and written with ONE update: writing them one by
            # one made XLA copy the whole buffer per chunk (8x slower, benchmark notes).
            if isinstance(y, tuple):
                y = jnp.concatenate(y, axis=0)
            out.append(jax.lax.dynamic_update_slice_in_dim(b, y.astype(b.dtype), col, axis=1))
        return tuple(out)

    bufs = tuple(carry)
    if n_full == 1:
        bufs = run(start, chunk_size, bufs)
    elif n_full > 1:
        bufs = jax.lax.fori_loop(
            0, n_full, lambda i, b: run(start + i * chunk_size, chunk_size, b), bufs
        )
    if tail:
        bufs = run(start + n_full * chunk_size, tail, bufs)
    return bufs


def column_reduce(
    fn: Callable[..., Array],
    inputs: tuple[Array, ...],
    init: Array,
    chunk_size: int,
    *,
    start: int = 0,
    stop: int | None = None,
) -> Array:
    """Sum of `fn(col, input_chunks)` over the column chunks of `[start, stop)` (see
    `column_map`)."""
    stop = inputs[0].shape[-1] if stop is None else stop
    n_full, tail = divmod(stop - start, chunk_size)

    def part(col: Any, size: int) -> Array:
        return fn(col, tuple(jax.lax.dynamic_slice_in_dim(x, col, size, axis=1) for x in inputs))

    total = init
    if n_full == 1:
        total = total + part(start, chunk_size)
    elif n_full > 1:
        total = jax.lax.fori_loop(
            0, n_full, lambda i, acc: acc + part(start + i * chunk_size, chunk_size), total
        )
    if tail:
        total = total + part(start + n_full * chunk_size, tail)
    return total
