"""Helpers shared by the gridworld tests (compiled functions are shared across tests)."""

import equinox as eqx
import jax.numpy as jnp
import pytest

import lorl_gridworlds as lg


@eqx.filter_jit
def step_env(env, key, state, action, params):
    """One transition without auto-reset (jitted once per environment)."""
    return env.step_env(key, state, action, params)


@eqx.filter_jit
def step(env, key, state, action, params):
    return env.step(key, state, action, params)


@eqx.filter_jit
def reset(env, key, params):
    return env.reset(key, params)


def state(agent, objects, present=None, time=0):
    """A hand-built state."""
    objects = jnp.asarray(objects, jnp.int32)
    if present is None:
        present = jnp.ones(objects.shape, bool)
    return lg.EnvState(
        agent=jnp.asarray(agent, jnp.int32),
        objects=objects,
        present=jnp.asarray(present, bool),
        time=jnp.asarray(time, jnp.int32),
    )


# A 3x4 open test world with one object (no walls), LPG rules (9 actions).
TINY_SPEC = lg.LPGSpec("tiny", 3, 4, ((1.0, 0.0, 0.0),), 10, 1.0)


@pytest.fixture(scope="session")
def tiny_env():
    return lg.LPGGridworld(TINY_SPEC)


def tiny_level(**overrides):
    kwargs = dict(
        height=3, width=4, rewards=[1.0], p_terminate=[0.0], p_respawn=[0.0], max_steps=10
    )
    kwargs.update(overrides)
    return lg.make_level(**kwargs)
