"""Hand-designed baselines (optax) with the papers' tuned hyperparameters."""

import dataclasses

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


def _lr(learning_rate: float, anneal: bool, total_steps: int | None) -> optax.ScalarOrSchedule:
    if not anneal:
        return learning_rate
    if total_steps is None or total_steps < 1:
        raise ValueError(
            "This preset anneals the learning rate linearly to 0 and needs `total_steps` "
            f"(a positive number of optimizer steps), got {total_steps!r}."
        )
    return optax.linear_schedule(learning_rate, 0.0, total_steps)


def _get(table: dict, env: str, optimizer: str) -> object:
    if env not in table:
        raise ValueError(f"No tuned {optimizer} values for {env!r}; available: {', '.join(table)}.")
    return table[env]


def adam(env: str, *, total_steps: int | None = None) -> optax.GradientTransformation:
    """Adam with OPEN's tuned values for `env` (Appendix C.2).

    **Arguments:**

    - `env`: `asterix`, `freeway`, `breakout`, `space_invaders`, `ant` or `gridworld`.
    - `total_steps`: optimizer steps to anneal over (required when the preset anneals).

    **Returns:**

    An optax transformation.
    """
    p = _get(ADAM, env, "Adam")
    assert isinstance(p, AdamPreset)
    return optax.adam(_lr(p.learning_rate, p.anneal, total_steps), b1=p.b1, b2=p.b2)


def rmsprop(env: str, *, total_steps: int | None = None) -> optax.GradientTransformation:
    """RMSProp with OPEN's tuned values for `env` (Appendix C.2).

    **Arguments:**

    - `env`: `asterix`, `freeway`, `breakout`, `space_invaders` or `ant`.
    - `total_steps`: optimizer steps to anneal over (required when the preset anneals).

    **Returns:**

    An optax transformation.
    """
    p = _get(RMSPROP, env, "RMSProp")
    assert isinstance(p, RMSPropPreset)
    return optax.rmsprop(_lr(p.learning_rate, p.anneal, total_steps), decay=p.decay)


def lion(env: str, *, total_steps: int | None = None) -> optax.GradientTransformation:
    """Lion with OPEN's tuned values for `env` (Appendix C.2).

    **Arguments:**

    - `env`: `asterix`, `freeway`, `breakout`, `space_invaders` or `ant`.
    - `total_steps`: optimizer steps to anneal over (required when the preset anneals).

    **Returns:**

    An optax transformation.
    """
    p = _get(LION, env, "Lion")
    assert isinstance(p, LionPreset)
    return optax.lion(_lr(p.learning_rate, p.anneal, total_steps), b1=p.b1, b2=p.b2)


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
    return optax.sgd(_lr(learning_rate, anneal, total_steps))


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
