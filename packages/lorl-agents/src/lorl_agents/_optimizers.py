"""The OPEN paper's tuned optax baselines for PPO (Goldie et al. 2024, Appendix C.2)."""

from typing import Any

import jax.numpy as jnp
import optax

from ._config import PPOConfig

#: Adam `(lr, b1, b2, anneal)` per environment: OPEN Table 4 (MinAtar), Table 5 (Ant),
#: Table 6 (gridworld).
PAPER_ADAM: dict[str, tuple[float, float, float, bool]] = {
    "asterix": (0.003, 0.9, 0.999, True),  # OPEN Table 4
    "freeway": (0.001, 0.9, 0.99, True),  # OPEN Table 4
    "breakout": (0.01, 0.9, 0.99, True),  # OPEN Table 4
    "space_invaders": (0.007, 0.9, 0.99, True),  # OPEN Table 4
    "ant": (0.0003, 0.99, 0.99, True),  # OPEN Table 5
    "gridworld": (0.0001, 0.99, 0.99, True),  # OPEN Table 6
}

#: RMSProp `(lr, decay, anneal)` per environment: OPEN Tables 4 and 5.
PAPER_RMSPROP: dict[str, tuple[float, float, bool]] = {
    "asterix": (0.002, 0.99, True),  # OPEN Table 4
    "freeway": (0.001, 0.999, True),  # OPEN Table 4
    "breakout": (0.002, 0.99, False),  # OPEN Table 4
    "space_invaders": (0.009, 0.99, True),  # OPEN Table 4
    "ant": (0.0008, 0.99, False),  # OPEN Table 5
}

_ALIASES = {
    "Asterix-MinAtar": "asterix",
    "Freeway-MinAtar": "freeway",
    "Breakout-MinAtar": "breakout",
    "SpaceInvaders-MinAtar": "space_invaders",
    "spaceinvaders": "space_invaders",
}


def _canonical(env: str, table: dict[str, Any]) -> str:
    name = _ALIASES.get(env, env)
    if name not in table:
        raise ValueError(f"no tuned values for {env!r}; known: {sorted(table)}")
    return name


def linear_annealing(lr: float, config: PPOConfig) -> optax.Schedule:
    """Learning rate annealed linearly to 0 over training, constant within an update:
    `lr * (1 - (t // (n_epochs * n_minibatches)) / n_updates)` at optimizer step `t`
    (PureJaxRL's schedule, which the OPEN reference uses).

    **Arguments:**

    - `lr`: initial learning rate.
    - `config`: the PPO configuration (number of updates and steps per update).

    **Returns:**

    An optax schedule.
    """
    per_update = config.n_epochs * config.n_minibatches
    n_updates = config.n_updates

    def schedule(count):
        done = (count // per_update).astype(jnp.float32) / n_updates
        return lr * (1.0 - done)

    return schedule


def paper_adam(env: str, config: PPOConfig) -> optax.GradientTransformation:
    """Adam with the OPEN paper's tuned values for `env` (Appendix C.2, Tables 4-6).

    **Arguments:**

    - `env`: `"asterix"`, `"freeway"`, `"breakout"`, `"space_invaders"` (or the gymnax
        MinAtar names), `"ant"` or `"gridworld"`.
    - `config`: the PPO configuration (for the annealing schedule).

    **Returns:**

    An optax transformation (gradient clipping is done by the learner, not here).
    """
    lr, b1, b2, anneal = PAPER_ADAM[_canonical(env, PAPER_ADAM)]
    return optax.adam(linear_annealing(lr, config) if anneal else lr, b1=b1, b2=b2)


def paper_rmsprop(env: str, config: PPOConfig) -> optax.GradientTransformation:
    """RMSProp with the OPEN paper's tuned values for `env` (Appendix C.2, Tables 4-5).

    **Arguments:**

    - `env`: a MinAtar game or `"ant"`.
    - `config`: the PPO configuration (for the annealing schedule).

    **Returns:**

    An optax transformation.
    """
    lr, decay, anneal = PAPER_RMSPROP[_canonical(env, PAPER_RMSPROP)]
    return optax.rmsprop(linear_annealing(lr, config) if anneal else lr, decay=decay)
