"""lorl-gridworlds: the gridworlds of Optim4RL and OPEN in pure JAX (gymnax 1.x interface).

- The six LPG gridworlds of Optim4RL (Appendix B): `make("small_dense_short")`, ...
- OPEN's parameterised gridworld (Appendix D): levels are `EnvParams`; draw them with
  `sample_level(key, "all")` (pure, vmap-able), or use `rand_dense`, `rand_sparse`,
  `rand_long`, and the mazes `standard_maze`, `sixteen_rooms`, `labyrinth`.
- `optim4rl_reference_view(env)`: an LPG gridworld as the Optim4RL reference code presents
  it (a diagnostic).
"""

from ._benchmark import (
    Throughput as Throughput,
    benchmark_suite as benchmark_suite,
    format_table as format_table,
    measure_throughput as measure_throughput,
)
from ._core import EnvState as EnvState
from ._distributions import (
    DEFAULT_CANVAS as DEFAULT_CANVAS,
    DISTRIBUTIONS as DISTRIBUTIONS,
    MAZE_NAMES as MAZE_NAMES,
    maze_layouts as maze_layouts,
    sample_level as sample_level,
)
from ._env import (
    LEVEL_ACTIONS as LEVEL_ACTIONS,
    LPG_ACTIONS as LPG_ACTIONS,
    AbstractGridworld as AbstractGridworld,
    LevelGridworld as LevelGridworld,
    LPGGridworld as LPGGridworld,
)
from ._level import Level as Level, make_level as make_level, validate_level as validate_level
from ._lpg import LPG_SPECS as LPG_SPECS, LPGSpec as LPGSpec, lpg_level as lpg_level
from ._reference_view import optim4rl_reference_view as optim4rl_reference_view
from ._registry import LPG_NAMES as LPG_NAMES, make as make, registered_names as registered_names
from ._render import render as render, rollout_frames as rollout_frames, save_frames as save_frames
from ._spaces import Box as Box, Discrete as Discrete

__version__ = "0.1.0"
