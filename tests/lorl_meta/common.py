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


class _Discrete:
    def __init__(self, n: int):
        self.n = n


class _Box:
    def __init__(self, shape: tuple[int, ...]):
        self.shape = shape


class ContextBandit:
    """A toy gymnax-interface environment that compiles fast: observe a one-hot context
    out of `N_CONTEXTS`, reward 1 for the action equal to the context, one-step episodes."""

    n = 4

    @property
    def default_params(self):
        return jnp.asarray(1.0, jnp.float32)  # reward of a correct action

    def action_space(self, params=None):
        return _Discrete(self.n)

    def observation_space(self, params=None):
        return _Box((self.n,))

    def _obs(self, context):
        return jax.nn.one_hot(context, self.n, dtype=jnp.float32)

    def reset(self, key, params=None):
        context = jax.random.randint(key, (), 0, self.n)
        return self._obs(context), context

    def step(self, key, state, action, params=None):
        reward = jnp.where(action == state, params, jnp.zeros_like(params))
        context = jax.random.randint(key, (), 0, self.n)
        return self._obs(context), context, reward, jnp.asarray(True), jnp.asarray(False), {}


@functools.cache
def tiny_task(name: str = "bandit") -> lm.MetaTask:
    if name == "bandit":
        env = ContextBandit()
        params = env.default_params
    else:
        env, params = lg.make(name)
    agent = la.A2C(la.A2CConfig.small_gridworld(n_envs=8, n_steps=4, total_timesteps=8 * 4 * 64))
    return lm.MetaTask(name, env, params, agent, n_units=N_UNITS)


@functools.cache
def tiny_trainer(
    n_meta_steps: int = 6, pipeline: bool = True, meta_lr: float = 1e-2, checkpoint_every: int = 2
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
