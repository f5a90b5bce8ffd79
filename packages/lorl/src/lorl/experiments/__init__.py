"""The experiments of the Optim4RL and OPEN papers (and the Optim4RL analyses) as named
presets with a `cpu` and a `paper` scale. `lorl list` prints them."""

from ._registry import (
    SCALES as SCALES,
    Experiment as Experiment,
    experiments as experiments,
    get_experiment as get_experiment,
    register as register,
)
