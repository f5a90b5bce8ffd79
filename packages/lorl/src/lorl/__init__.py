"""lorl: learned optimizers for reinforcement learning.

The integration package: the experiments of Optim4RL (Lan et al.) and OPEN (Goldie et
al., NeurIPS 2024) behind one CLI (`lorl list | run | resume | evaluate | report |
quickstart`), sharded across devices, with rliable statistics and matplotlib plots.

Namespaces:

- [`lorl.experiments`][]: the registry of named experiment presets.
- `lorl.runs`: run folders, typed configs and overrides, errors.
- `lorl.evaluation`: train agents with any optimizer on many seeds and environments.
- `lorl.stats`: IQM, mean, median, optimality gap with stratified bootstrap CIs.
- `lorl.plots`: return curves and interval plots.
- `lorl.sharding`: device meshes and sharding of seeds, populations and training units.
- `lorl.analysis`: the Optim4RL gradient analyses (distributions, Wasserstein, identity).
"""

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from . import (
        analysis as analysis,
        evaluation as evaluation,
        experiments as experiments,
        plots as plots,
        runs as runs,
        sharding as sharding,
        stats as stats,
    )

__all__ = ["analysis", "evaluation", "experiments", "plots", "runs", "sharding", "stats"]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    # The namespaces are imported on first use: importing them starts JAX's backend
    # (gymnax, under lorl-gridworlds, creates arrays at import), and the `lorl` command
    # must be able to join a multi-process job (`jax.distributed`) before that happens.
    if name in __all__:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'lorl' has no attribute {name!r}")
