"""Tiny shared setups (one object per configuration, so jitted programs compile once per
test session)."""

import functools

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

import lorl_agents as la
import lorl_gridworlds as lg
import lorl_meta as lm
import lorl_optim as lo

N_INNER = 2
RESET_INTERVAL = 3
N_UNITS = 4


@functools.cache
def tiny_task(name: str = "small_dense_short") -> lm.MetaTask:
    env, params = lg.make(name)
    agent = la.A2C(la.A2CConfig.small_gridworld(n_envs=2, n_steps=5, total_timesteps=2 * 5 * 64))
    return lm.MetaTask(name, env, params, agent, n_units=N_UNITS)


@functools.cache
def tiny_trainer(
    n_meta_steps: int = 6, pipeline: bool = True, meta_lr: float = 1e-3, checkpoint_every: int = 2
) -> lm.MetaGradientTrainer:
    config = lm.MetaGradientConfig(
        n_meta_steps=n_meta_steps,
        n_inner=N_INNER,
        reset_interval=RESET_INTERVAL,
        pipeline=pipeline,
        meta_lr=meta_lr,
        checkpoint_every=checkpoint_every,
    )
    return lm.MetaGradientTrainer(config, tiny_task())


def optim4rl() -> lo.Optim4RL:
    return lo.Optim4RL(1e-2, key=jax.random.key(0))


class Quadratic(eqx.Module):
    """A toy 'optimizer': the ES problem is to move `w` to `TARGET`."""

    w: Float[Array, " n"]


TARGET = jnp.asarray([1.0, -1.0, 0.5, -0.5, 0.75], jnp.float32)


def quadratic_fitness(opt: Quadratic, env_params, key) -> Float[Array, ""]:
    return -jnp.sum((opt.w - TARGET) ** 2)


@functools.cache
def quadratic_task() -> lm.ESTask:
    return lm.ESTask("quadratic", quadratic_fitness)


@functools.cache
def quadratic_trainer(n_generations: int, checkpoint_every: int = 3) -> lm.ESTrainer:
    config = lm.ESConfig(
        n_generations=n_generations,
        population_size=16,
        sigma_init=0.1,
        sigma_decay=0.999,
        lr=0.05,
        lr_decay=0.999,
        eval_every=3,
        n_validation=2,
        checkpoint_every=checkpoint_every,
    )
    return lm.ESTrainer(config, quadratic_task())


def meta_leaves(optimizer) -> list:
    return jax.tree.leaves(eqx.filter(optimizer, eqx.is_inexact_array))
