"""What an optimizer does with gradients of known signal-to-noise ratio (the step-size
probe of docs/meta/studies.md), and how far meta-training moved a learned optimizer's
parameters."""

from collections.abc import Sequence
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

#: Signal-to-noise ratios of the probe's gradient streams (docs/meta/studies.md).
PROBE_SNRS = (0.0, 0.3, 1.0, 3.0)
#: Size of the probe's gradients: about that of A2C's gradients in the LPG gridworlds.
PROBE_SCALE = 1e-3


def step_size_probe(
    optimizer: Any,
    learning_rate: float,
    *,
    snrs: Sequence[float] = PROBE_SNRS,
    steps: int = 200,
    n: int = 2000,
    scale: float = PROBE_SCALE,
) -> dict[str, dict[str, float]]:
    """Steps of `optimizer` on synthetic gradient streams `g_t = scale * (snr + z_t)` with
    standard normal `z_t`, `n` independent parameters per signal-to-noise ratio.

    Over the second half of each stream: `progress` is the mean step along the descent
    direction of the mean gradient and `size` the mean `|step|`, both in units of
    `learning_rate`. A sign optimizer of rate `learning_rate` has size 1 and progress
    `2 Phi(snr) - 1` (0, 0.24, 0.68, 1.00 at snr 0, 0.3, 1, 3); Adam's size shrinks where
    the signal is weak.

    **Arguments:**

    - `optimizer`: anything with optax's `init(params)` and `update(grads, state)`
      returning `(updates, state)`: an optax transformation or a gradient-only learned
      optimizer (`lorl_optim.Optim4RL`, ...).
    - `learning_rate`: the unit of the reported steps.
    - `snrs`: signal-to-noise ratios, one stream each (the key `i` of the stream's noise
      is its position in `snrs`).
    - `steps`: length of each stream (at least 2).
    - `n`: parameters per stream.
    - `scale`: gradient scale.

    **Returns:**

    `{"snr <snr>": {"progress": float, "size": float}}`.
    """
    if steps < 2 or n < 1:
        raise ValueError(f"need steps >= 2 and n >= 1, got steps={steps}, n={n}")
    if not learning_rate > 0:
        raise ValueError(f"learning_rate must be positive, got {learning_rate}")
    out = {}
    for i, snr in enumerate(snrs):
        g = scale * (snr + jax.random.normal(jax.random.key(i), (steps, n)))
        state = optimizer.init({"w": jnp.zeros(n)})

        def body(state: Any, gt: jax.Array) -> tuple[Any, jax.Array]:
            delta, state = optimizer.update({"w": gt}, state)
            return state, -delta["w"] / learning_rate

        _, d = jax.lax.scan(body, state, g)
        d = np.asarray(d[steps // 2 :])
        out[f"snr {snr:g}"] = {"progress": float(d.mean()), "size": float(np.abs(d).mean())}
    return out


def relative_change(start: Any, end: Any, parts: Sequence[str]) -> dict[str, float]:
    """`||theta_end - theta_start|| / ||theta_start||` of each named part (attribute) of a
    learned optimizer, over its floating-point arrays.

    **Arguments:**

    - `start`, `end`: two optimizers of the same structure (e.g. an initialisation and
      its meta-trained version).
    - `parts`: attribute names, e.g. `("gru1", "mlp1", "gru2", "mlp2")` for
      `lorl_optim.Optim4RL`.

    **Returns:**

    `{part: relative change}`.

    **Raises:**

    `ValueError` for a part the optimizers lack or whose start has norm zero.
    """
    d0 = eqx.filter(start, eqx.is_inexact_array)
    d1 = eqx.filter(end, eqx.is_inexact_array)
    out = {}
    for part in parts:
        if not hasattr(d0, part) or not hasattr(d1, part):
            raise ValueError(f"the optimizers have no part {part!r}")
        a, b = getattr(d0, part), getattr(d1, part)
        base = float(optax.tree.norm(a))
        if base == 0.0:
            raise ValueError(f"part {part!r} of the start has norm 0; no relative change")
        out[part] = float(optax.tree.norm(jax.tree.map(lambda x, y: y - x, a, b))) / base
    return out
