"""Measurements of a meta-gradient: its signal-to-noise ratio over training units, its
agreement with finite differences of the meta-objective, and saturation of a learned
optimizer's GRU gates (issue 19, item 6; docs/meta/studies.md)."""

from collections.abc import Callable, Sequence
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PyTree

from ._errors import AnalysisError


def _flat(tree: PyTree) -> np.ndarray:
    """The leaves of a tree of per-unit arrays as one `(units, d)` float64 matrix."""
    leaves = [np.asarray(x, np.float64) for x in jax.tree.leaves(tree)]
    if not leaves:
        raise AnalysisError("the gradient tree has no array leaves")
    n = leaves[0].shape[0]
    if any(x.ndim < 1 or x.shape[0] != n for x in leaves):
        raise AnalysisError("every leaf of the per-unit gradients needs the same leading axis")
    return np.concatenate([x.reshape(n, -1) for x in leaves], axis=1)


def gradient_snr(
    unit_grads: PyTree[Float[Array, "units ..."]], parts: Sequence[str] | None = None
) -> dict[str, dict[str, float]]:
    """How much signal the mean of per-unit gradients carries, overall and per part.

    With per-unit gradients `g_1..g_n` (rows), mean `m` and per-coordinate unbiased
    variances `s_j^2`:

    - `mean_norm = ||m||`, `unit_norm` = the mean of `||g_i||`;
    - `standard_error = sqrt(sum_j s_j^2 / n)`, the norm that `m` would have from noise
      alone (its expected squared norm is `standard_error^2` when the true mean is 0);
    - `snr = mean_norm / standard_error`: about 1 for pure noise, `>> 1` when the units
      agree;
    - `split_half_cosine`: cosine between the means of the even and the odd units
      (about 0 for pure noise, 1 for a noiseless gradient).

    **Arguments:**

    - `unit_grads`: per-unit gradients (every leaf with the unit axis first, e.g. from
      `lorl_meta.MetaGradientTrainer.unit_meta_gradients`), at least 4 units.
    - `parts`: attribute names of the gradient module (e.g. `("gru1", "mlp1")`) to report
      separately (`None`: only `"all"`).

    **Returns:**

    `{"all": stats, <part>: stats, ...}` with the keys above.
    """

    def stats(tree: PyTree) -> dict[str, float]:
        g = _flat(tree)
        n = g.shape[0]
        if n < 4:
            raise AnalysisError(f"gradient_snr needs at least 4 units, got {n}")
        bad = int(np.sum(~np.all(np.isfinite(g), axis=1)))
        if bad:
            raise AnalysisError(f"{bad} of {n} units have non-finite gradients")
        m = g.mean(0)
        se = float(np.sqrt(g.var(0, ddof=1).sum() / n))
        a, b = g[0::2].mean(0), g[1::2].mean(0)
        denom = float(np.linalg.norm(a) * np.linalg.norm(b))
        return {
            "mean_norm": float(np.linalg.norm(m)),
            "unit_norm": float(np.linalg.norm(g, axis=1).mean()),
            "standard_error": se,
            "snr": float(np.linalg.norm(m)) / se if se > 0 else float("inf"),
            "split_half_cosine": float(a @ b) / denom if denom > 0 else 0.0,
        }

    out = {"all": stats(eqx.filter(unit_grads, eqx.is_array))}
    for part in parts or ():
        if not hasattr(unit_grads, part):
            raise AnalysisError(f"the gradients have no part {part!r}")
        out[part] = stats(eqx.filter(getattr(unit_grads, part), eqx.is_array))
    return out


def directional_derivatives(
    f: Callable[[PyTree], Any],
    x: PyTree,
    direction: PyTree,
    epsilons: Sequence[float],
) -> list[float]:
    """Central finite differences `(f(x + e d) - f(x - e d)) / (2 e)` of a scalar
    function along `direction` (normalised to unit length), one per step `e`: compare
    with the autodiff slope `grad f(x) . d` to check a gradient, and watch how the
    slope changes with `e` (a non-smooth objective, e.g. through sampled actions, agrees
    only in the small-`e` limit).

    **Arguments:**

    - `f`: the scalar function of a tree of arrays.
    - `x`: the point.
    - `direction`: a tree like `x` (non-zero).
    - `epsilons`: positive steps.

    **Returns:**

    The slopes, one per `e`.
    """
    norm = float(np.sqrt(sum(float(jnp.sum(d**2)) for d in jax.tree.leaves(direction))))
    if not norm > 0:
        raise AnalysisError("the direction is zero")
    if any(not e > 0 for e in epsilons):
        raise AnalysisError(f"epsilons must be positive, got {list(epsilons)}")
    unit = jax.tree.map(lambda d: d / norm, direction)
    out = []
    for e in epsilons:
        plus = jax.tree.map(lambda a, d, e=e: a + e * d, x, unit)
        minus = jax.tree.map(lambda a, d, e=e: a - e * d, x, unit)
        out.append((float(f(plus)) - float(f(minus))) / (2 * e))
    return out


def gru_saturation(
    gru: Any, inputs: Float[Array, "steps features n"], threshold: float = 4.0
) -> dict[str, float]:
    """How saturated a `lorl_optim` GRU's gates are on an input stream, and how much
    its state still depends on the input.

    The GRU runs over `inputs` from a zero state. Over the second half of the stream:
    the fraction of reset (`r`), update (`z`) and candidate (`n`) gate pre-activations
    with magnitude above `threshold` (sigmoid slope below 0.018 at 4), and
    `input_sensitivity`, the mean over columns of `||d h_t / d x_t||` (how much the new
    state moves per unit of input: near 0 when the gates saturate).

    **Arguments:**

    - `gru`: a `lorl_optim` GRU (e.g. `Optim4RL(...).gru2`).
    - `inputs`: `(steps, features, n)`: `n` independent columns (parameters).
    - `threshold`: the pre-activation magnitude counted as saturated.

    **Returns:**

    `{"r": frac, "z": frac, "n": frac, "input_sensitivity": float}`.
    """
    x = jnp.asarray(inputs, jnp.float32)
    if x.ndim != 3 or x.shape[0] < 2 or x.shape[1] != gru.weight_ih.shape[1]:
        raise AnalysisError(
            f"inputs must be (steps >= 2, {gru.weight_ih.shape[1]}, n), got {x.shape}"
        )
    f = gru.hidden_size

    def body(h: Array, xt: Array) -> tuple[Array, tuple[Array, Array]]:
        pre = gru.weight_ih @ xt + gru.bias_ih[:, None]
        gh = gru.weight_hh @ h
        r_pre = pre[:f] + gh[:f]
        z_pre = pre[f : 2 * f] + gh[f : 2 * f]
        r = jax.nn.sigmoid(r_pre)
        n_pre = pre[2 * f :] + r * (gh[2 * f :] + gru.bias_hn[:, None])

        def col(xc: Array, hc: Array) -> Array:
            return gru(xc[:, None], hc[:, None])[:, 0]

        jac = jax.vmap(jax.jacfwd(col), in_axes=(1, 1))(xt, h)  # (n, hidden, features)
        sens = jnp.sqrt(jnp.sum(jac**2, axis=(1, 2)))
        return gru(xt, h), (jnp.stack([r_pre, z_pre, n_pre]), sens)

    _, (pre, sens) = jax.lax.scan(body, jnp.zeros((f, x.shape[2]), x.dtype), x)
    half = x.shape[0] // 2
    sat = np.asarray(jnp.abs(pre[half:]) > threshold).mean(axis=(0, 2, 3))
    return {
        "r": float(sat[0]),
        "z": float(sat[1]),
        "n": float(sat[2]),
        "input_sensitivity": float(np.asarray(sens[half:]).mean()),
    }
