"""Learning-rate grid searches for hand-designed baselines, the way the papers tune them."""

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from lorl_optim.baselines import OPTIM4RL_A2C_LR_GRID

from ..runs import ConfigError

#: The agent learning-rate grid of the Optim4RL paper for Adam and RMSProp (Appendix C.3:
#: "we pick the best agent learning rate from {3e-2, 1e-2, 3e-3, 1e-3, 3e-4, 1e-4}"); its
#: one home is `lorl_optim.baselines.OPTIM4RL_A2C_LR_GRID`.
OPTIM4RL_LR_GRID: tuple[float, ...] = OPTIM4RL_A2C_LR_GRID

#: Tuning seeds per grid point: the OPEN paper's sweeps "evaluate performance over four
#: seeds" (Appendix C.2); the Optim4RL paper does not say.
DEFAULT_TUNING_SEEDS = 4

#: Tuning runs use seeds `TUNING_SEED_OFFSET + i`, disjoint from the evaluation seeds
#: (`0..n-1` by default), so the reported baseline is not selected on its own test runs.
TUNING_SEED_OFFSET = 1 << 30

TUNABLE = ("adam", "rmsprop", "sgd", "lion")


@dataclasses.dataclass(frozen=True)
class LearningRateSearch:
    """A baseline whose learning rate [`lorl.evaluation.evaluate`][] picks by grid search
    before evaluating it (what `"adam:tuned"` names, and bare `"adam"` / `"rmsprop"` for
    A2C on the Optim4RL gridworlds, as that paper tunes them).

    **Fields:**

    - `kind`: `"adam"`, `"rmsprop"`, `"sgd"` or `"lion"` (optax defaults otherwise).
    - `grid`: the candidate learning rates.
    """

    kind: str
    grid: tuple[float, ...] = OPTIM4RL_LR_GRID

    def __post_init__(self):
        if self.kind not in TUNABLE:
            raise ConfigError(f"cannot tune {self.kind!r}; tunable: {', '.join(TUNABLE)}")
        if not self.grid or any(not (lr > 0 and np.isfinite(lr)) for lr in self.grid):
            raise ConfigError(f"the learning-rate grid must be non-empty and > 0: {self.grid}")


@dataclasses.dataclass(frozen=True)
class TuningResult:
    """The outcome of a learning-rate grid search ([`lorl.evaluation.tune_learning_rate`][]).

    **Fields:**

    - `kind`: the optimizer (`"adam"`, ...).
    - `env`: the canonical environment name.
    - `grid`: the learning rates tried.
    - `seeds`: the tuning seeds (disjoint from evaluation seeds by default).
    - `final_returns`: `(len(grid), len(seeds))` final returns (NaN where a run diverged).
    - `best_lr`: the grid point with the highest mean final return over the tuning seeds
      (a diverged run counts as the worst; ties go to the earlier grid point).
    - `timesteps`: environment steps per run.
    - `seconds`: wall time of the search, including compilation.
    """

    kind: str
    env: str
    grid: tuple[float, ...]
    seeds: tuple[int, ...]
    final_returns: np.ndarray
    best_lr: float
    timesteps: int
    seconds: float

    @property
    def mean_returns(self) -> np.ndarray:
        """`(len(grid),)` mean final return per learning rate (NaN if any run diverged)."""
        return np.mean(self.final_returns, axis=1)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-convertible dict (`from_dict` reverses it)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "TuningResult":
        """Rebuild from [`lorl.evaluation.TuningResult.to_dict`][] (also after a JSON round
        trip, where NaN was stored as the string `"nan"`)."""
        returns = np.asarray(data["final_returns"], dtype=object)
        returns = np.where(returns == "nan", np.nan, returns).astype(np.float64)
        return cls(
            kind=data["kind"],
            env=data["env"],
            grid=tuple(float(x) for x in data["grid"]),
            seeds=tuple(int(s) for s in data["seeds"]),
            final_returns=returns,
            best_lr=float(data["best_lr"]),
            timesteps=int(data["timesteps"]),
            seconds=float(data["seconds"]),
        )


def best_learning_rate(grid: Sequence[float], final_returns: np.ndarray) -> float:
    """The grid point with the highest mean final return; a grid point with a diverged
    (non-finite) run ranks below every finite one; ties go to the earlier point.

    **Arguments:**

    - `grid`: the learning rates, `(n,)`.
    - `final_returns`: `(n, n_seeds)` final returns.

    **Returns:**

    The chosen learning rate.

    **Raises:**

    `lorl.runs.ConfigError` if every grid point diverged.
    """
    returns = np.asarray(final_returns, dtype=np.float64)
    if returns.ndim != 2 or returns.shape[0] != len(grid):
        raise ConfigError(f"final_returns must be (len(grid), seeds), got {returns.shape}")
    means = np.where(np.all(np.isfinite(returns), axis=1), returns.mean(axis=1), -np.inf)
    if not np.any(np.isfinite(means)):
        raise ConfigError(
            f"every learning rate in {tuple(grid)} diverged (NaN/inf) on some tuning seed"
        )
    return float(grid[int(np.argmax(means))])
