"""L2 regularisation and decoupled weight decay for any optimizer, learned or hand-designed,
as one optax transformation (the regularisation the comparative study tests against
policy collapse)."""

from collections.abc import Callable
from typing import Any

import optax
from jaxtyping import PyTree

from ._base import AbstractLearnedOptimizer


def regularised(
    optimizer: AbstractLearnedOptimizer | optax.GradientTransformation,
    *,
    l2: float = 0.0,
    weight_decay: float = 0.0,
    mask: PyTree[bool] | Callable[[Any], PyTree[bool]] | None = None,
) -> optax.GradientTransformationExtraArgs:
    """`optimizer` with L2 regularisation and/or decoupled weight decay.

    - `l2 = c`: the gradient of `c / 2 * |theta|^2` is added to the gradients before the
      optimizer sees them (`g + c * theta`), so an adaptive or learned optimizer
      rescales it like any gradient (classic L2 regularisation).
    - `weight_decay = d`: after the optimizer, every parameter is shrunk by the fraction
      `d` per step (`update - d * theta`), independent of the optimizer (decoupled weight
      decay, Loshchilov & Hutter). optax's `adamw(lr, weight_decay=w)` is Adam with
      `d = lr * w`.

    Context keywords (OPEN's dormancy, proportions, ...) pass through to a learned
    optimizer as optax extra args. The transformation closes over a learned optimizer's
    meta-parameters (use it to train agents, not to meta-train).

    **Arguments:**

    - `optimizer`: a learned optimizer or any optax transformation.
    - `l2`, `weight_decay`: non-negative coefficients (`0`: off).
    - `mask`: which parameters are regularised (a tree of booleans like the parameters,
      or a callable of the parameters returning one; default all), e.g. kernels only.

    **Returns:**

    An `optax.GradientTransformationExtraArgs`; it needs the parameters in `update`.

    **Raises:**

    `ValueError` for a negative or non-numeric coefficient; `TypeError` for an optimizer
    that is neither.
    """
    for name, value in (("l2", l2), ("weight_decay", weight_decay)):
        if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
            raise ValueError(f"{name} must be a number >= 0, got {value!r}")
    if isinstance(optimizer, AbstractLearnedOptimizer):
        inner: optax.GradientTransformation = optimizer.as_optax()
    elif isinstance(optimizer, optax.GradientTransformation):
        inner = optimizer
    else:
        raise TypeError(
            "regularised needs a lorl_optim learned optimizer or an optax transformation, "
            f"got {type(optimizer).__name__}"
        )
    parts: list[optax.GradientTransformation] = []
    if l2 > 0:
        parts.append(optax.add_decayed_weights(float(l2), mask))
    parts.append(inner)
    if weight_decay > 0:
        parts.append(optax.add_decayed_weights(-float(weight_decay), mask))
    return optax.chain(*parts)
