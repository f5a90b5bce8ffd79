"""The one number formatter of lorl's reports (no heavy imports: the experiment catalogue
uses it and must load without JAX)."""

import math
from typing import Any


def fmt(x: Any, digits: int = 3, *, significant: bool = False) -> str:
    """A report cell for `x`.

    **Arguments:**

    - `x`: a number (Python, NumPy or a 0-d array), `None`, or anything else.
    - `digits`: decimals (or significant digits with `significant=True`).
    - `significant`: format with `digits` significant digits (`"g"`), for quantities
      whose scale varies (gradient statistics, Wasserstein distances).

    **Returns:**

    `"–"` for `None`, `"nan"` / `"inf"` / `"-inf"` for non-finite numbers, the formatted
    number otherwise, and `str(x)` for what is not a number.
    """
    if x is None:
        return "–"
    if isinstance(x, str):
        return x
    try:
        value = float(x)
    except (TypeError, ValueError):
        return str(x)
    if not math.isfinite(value):
        return str(value)
    return f"{value:.{digits}{'g' if significant else 'f'}}"
