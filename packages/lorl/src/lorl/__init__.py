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

from . import (
    analysis as analysis,
    evaluation as evaluation,
    experiments as experiments,
    plots as plots,
    runs as runs,
    sharding as sharding,
    stats as stats,
)

__version__ = "0.1.0"
