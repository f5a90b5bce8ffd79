"""Hand-designed baselines (optax) with the papers' tuned hyperparameters."""

import dataclasses
from typing import Any

import jax.numpy as jnp
import optax

# --------------------------------------------------------------------------- OPEN, C.2
# Tuned values from the OPEN paper (Goldie et al. 2024, Appendix C.2, Tables 4-6; spec
# section 3). Environment names: asterix, freeway, breakout, space_invaders, ant,
# gridworld.


@dataclasses.dataclass(frozen=True)
class AdamPreset:
    learning_rate: float
    b1: float
    b2: float
    anneal: bool


@dataclasses.dataclass(frozen=True)
class RMSPropPreset:
    learning_rate: float
    decay: float
    anneal: bool


@dataclasses.dataclass(frozen=True)
class LionPreset:
    learning_rate: float
    b1: float
    b2: float
    anneal: bool


# OPEN Appendix C.2, Tables 4 (MinAtar), 5 (Ant), 6 (Gridworld).
ADAM = {
    "asterix": AdamPreset(0.003, 0.9, 0.999, True),
    "freeway": AdamPreset(0.001, 0.9, 0.99, True),
    "breakout": AdamPreset(0.01, 0.9, 0.99, True),
    "space_invaders": AdamPreset(0.007, 0.9, 0.99, True),
    "ant": AdamPreset(0.0003, 0.99, 0.99, True),
    "gridworld": AdamPreset(0.0001, 0.99, 0.99, True),
}
# OPEN Appendix C.2, Tables 4 and 5 (no RMSProp tuning for the gridworld).
RMSPROP = {
    "asterix": RMSPropPreset(0.002, 0.99, True),
    "freeway": RMSPropPreset(0.001, 0.999, True),
    "breakout": RMSPropPreset(0.002, 0.99, False),
    "space_invaders": RMSPropPreset(0.009, 0.99, True),
    "ant": RMSPropPreset(0.0008, 0.99, False),
}
# OPEN Appendix C.2, Tables 4 and 5 (no Lion tuning for the gridworld).
LION = {
    "asterix": LionPreset(0.0003, 0.99, 0.9, True),
    "freeway": LionPreset(0.0003, 0.9, 0.9, True),
    "breakout": LionPreset(0.0008, 0.9, 0.9, False),
    "space_invaders": LionPreset(0.0008, 0.9, 0.99, True),
    "ant": LionPreset(0.00015, 0.9, 0.9, True),
}
# Optim4RL agent learning rate in OPEN's experiments: 0.1 x LR_Adam (Appendix C.2).
OPTIM4RL_LR = {
    "asterix": 0.0003,
    "freeway": 0.0001,
    "breakout": 0.001,
    "space_invaders": 0.0007,
    "ant": 0.00003,
}

# ------------------------------------------------------------------ Optim4RL, A2C grids
# Optim4RL paper (Lan et al., Appendix C.3): Adam/RMSProp learning rate picked from this
# grid; element-wise gradient clip 1; agent learning rate of the learned optimizers.
OPTIM4RL_A2C_LR_GRID = (3e-2, 1e-2, 3e-3, 1e-3, 3e-4, 1e-4)
OPTIM4RL_A2C_GRADIENT_CLIP = 1.0
OPTIM4RL_A2C_AGENT_LR = {"small_dense_short": 1e-2, "big_dense_long": 3e-3}


#: Other spellings of the OPEN environments (gymnax names, OPEN's `spaceinvaders`).
ENV_ALIASES = {
    "Asterix-MinAtar": "asterix",
    "Freeway-MinAtar": "freeway",
    "Breakout-MinAtar": "breakout",
    "SpaceInvaders-MinAtar": "space_invaders",
    "spaceinvaders": "space_invaders",
}


def linear_annealing(
    learning_rate: float, total_steps: int, steps_per_update: int = 1
) -> optax.Schedule:
    """The learning rate annealed linearly to 0 over a run, constant within an update:
    `lr * (1 - (t // steps_per_update) / (total_steps // steps_per_update))` at optimizer
    step `t` (PureJaxRL's rule, which the OPEN reference uses for its tuned baselines).

    **Arguments:**

    - `learning_rate`: the initial learning rate.
    - `total_steps`: optimizer steps of the run (PPO: `updates * epochs * minibatches`).
    - `steps_per_update`: optimizer steps per update (PPO: `epochs * minibatches`; `1`
      anneals at every step).

    **Returns:**

    An optax schedule.

    **Raises:**

    `ValueError` unless `total_steps >= steps_per_update >= 1`.
    """
    if not (isinstance(steps_per_update, int) and steps_per_update >= 1):
        raise ValueError(f"steps_per_update must be an integer >= 1, got {steps_per_update!r}")
    if not (isinstance(total_steps, int) and total_steps >= steps_per_update):
        raise ValueError(
            "This preset anneals the learning rate linearly to 0 and needs `total_steps` (the "
            f"run's optimizer steps, at least steps_per_update={steps_per_update}), got "
            f"{total_steps!r}."
        )
    n_updates = total_steps // steps_per_update

    def schedule(count: Any) -> Any:
        done = (count // steps_per_update).astype(jnp.float32) / n_updates
        return learning_rate * (1.0 - done)

    return schedule


def _lr(
    learning_rate: float, anneal: bool, total_steps: int | None, steps_per_update: int
) -> optax.ScalarOrSchedule:
    if not anneal:
        return learning_rate
    if total_steps is None:
        raise ValueError(
            "This preset anneals the learning rate linearly to 0 and needs `total_steps` "
            "(a positive number of optimizer steps), got None."
        )
    return linear_annealing(learning_rate, total_steps, steps_per_update)


def _get(table: dict, env: str, optimizer: str) -> object:
    name = ENV_ALIASES.get(env, env)
    if name not in table:
        raise ValueError(f"No tuned {optimizer} values for {env!r}; available: {', '.join(table)}.")
    return table[name]


def adam(
    env: str, *, total_steps: int | None = None, steps_per_update: int = 1
) -> optax.GradientTransformation:
    """Adam with OPEN's tuned values for `env` (Appendix C.2).

    **Arguments:**

    - `env`: `asterix`, `freeway`, `breakout`, `space_invaders`, `ant` or `gridworld`
      (or a gymnax MinAtar name, or `spaceinvaders`).
    - `total_steps`: optimizer steps of the run (required when the preset anneals; PPO:
      `config.optimizer_steps`).
    - `steps_per_update`: optimizer steps per update, within which the learning rate stays
      constant (PPO: `config.steps_per_update`; OPEN anneals per update).

    **Returns:**

    An optax transformation (gradient clipping is the learner's, not included).
    """
    p = _get(ADAM, env, "Adam")
    assert isinstance(p, AdamPreset)
    lr = _lr(p.learning_rate, p.anneal, total_steps, steps_per_update)
    return optax.adam(lr, b1=p.b1, b2=p.b2)


def rmsprop(
    env: str, *, total_steps: int | None = None, steps_per_update: int = 1
) -> optax.GradientTransformation:
    """RMSProp with OPEN's tuned values for `env` (Appendix C.2).

    **Arguments:**

    - `env`: `asterix`, `freeway`, `breakout`, `space_invaders` or `ant`.
    - `total_steps`, `steps_per_update`: as for [`lorl_optim.baselines.adam`][].

    **Returns:**

    An optax transformation.
    """
    p = _get(RMSPROP, env, "RMSProp")
    assert isinstance(p, RMSPropPreset)
    lr = _lr(p.learning_rate, p.anneal, total_steps, steps_per_update)
    return optax.rmsprop(lr, decay=p.decay)


def lion(
    env: str, *, total_steps: int | None = None, steps_per_update: int = 1
) -> optax.GradientTransformation:
    """Lion with OPEN's tuned values for `env` (Appendix C.2).

    **Arguments:**

    - `env`: `asterix`, `freeway`, `breakout`, `space_invaders` or `ant`.
    - `total_steps`, `steps_per_update`: as for [`lorl_optim.baselines.adam`][].

    **Returns:**

    An optax transformation.
    """
    p = _get(LION, env, "Lion")
    assert isinstance(p, LionPreset)
    lr = _lr(p.learning_rate, p.anneal, total_steps, steps_per_update)
    return optax.lion(lr, b1=p.b1, b2=p.b2)


def sgd(
    learning_rate: float, *, anneal: bool = False, total_steps: int | None = None
) -> optax.GradientTransformation:
    """Plain SGD, optionally with linear annealing to 0 (the papers tune no SGD values).

    **Arguments:**

    - `learning_rate`: the step size.
    - `anneal`: anneal linearly to 0 over `total_steps`.
    - `total_steps`: optimizer steps to anneal over (required with `anneal`).

    **Returns:**

    An optax transformation.
    """
    return optax.sgd(_lr(learning_rate, anneal, total_steps, 1))


def optim4rl_learning_rate(env: str) -> float:
    """Optim4RL's agent learning rate in OPEN's experiments (0.1 x LR_Adam; C.2).

    **Arguments:**

    - `env`: `asterix`, `freeway`, `breakout`, `space_invaders` or `ant`.

    **Returns:**

    The learning rate.
    """
    value = _get(OPTIM4RL_LR, env, "Optim4RL")
    assert isinstance(value, float)
    return value
