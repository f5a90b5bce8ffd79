"""A point estimate with its confidence interval."""

import dataclasses
import numbers


@dataclasses.dataclass(frozen=True)
class Interval:
    """A point estimate with the bounds of its confidence interval.

    **Fields:**

    - `point`: the metric on the observed scores.
    - `low`: the lower bound of the (percentile bootstrap) confidence interval.
    - `high`: the upper bound.
    """

    point: float
    low: float
    high: float

    def __post_init__(self) -> None:
        for name in ("point", "low", "high"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise TypeError(f"Interval.{name} must be a float, got {type(value).__name__}")
            object.__setattr__(self, name, float(value))

    def contains(self, value: float) -> bool:
        """Whether `low <= value <= high`."""
        return self.low <= value <= self.high

    def to_dict(self) -> dict[str, float]:
        """`{"point": ..., "low": ..., "high": ...}` (JSON-ready)."""
        return {"point": self.point, "low": self.low, "high": self.high}
