"""The lorl-meta trainers with `mesh=` over 8 forced host CPU devices give the same
results as with a 1-device mesh: one ES generation of OPEN (population 8, each member a
real PPO training run) and one meta-gradient step of Optim4RL (8 A2C training units).
The inner environment is a one-step contextual bandit written here, so that the compile
time stays small; the agents, optimizers and trainers are the real ones.

Tolerances (float32): scalar fitness and loss values `rtol=1e-5, atol=1e-6`. Per-member
and per-unit training states are computed on one device each, but XLA compiles the
8-device program separately and may fuse or vectorise it differently; last-bit
differences then grow through the inner training steps (observed: 26 of 341,248 unit
values differing by up to 3.5e-5 after 2 A2C updates on a gridworld), so states are
compared with `atol=1e-4`. The meta-parameters after the meta-gradient trainer's Adam
step (whose mean over units becomes a cross-device reduction) are compared with
`atol = 1e-3 * meta_lr`: Adam's first step is `meta_lr * g / (|g| + eps)`, so a
last-bit difference in a gradient component near 0 moves that parameter by a fraction of
`meta_lr`.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import lorl_agents as la
import lorl_meta as lm
import lorl_optim as lo
from lorl import sharding

RTOL, ATOL = 1e-5, 1e-6
STATE_ATOL = 1e-4


class _Discrete:
    def __init__(self, n: int):
        self.n = n


class _Box:
    def __init__(self, shape: tuple[int, ...]):
        self.shape = shape


class Bandit:
    """A gymnax-interface contextual bandit: observe a one-hot context out of 4, reward 1
    for the action equal to the context, every episode one step long."""

    n = 4

    @property
    def default_params(self):
        return jnp.asarray(1.0, jnp.float32)

    def action_space(self, params=None):
        return _Discrete(self.n)

    def observation_space(self, params=None):
        return _Box((self.n,))

    def reset(self, key, params=None):
        context = jax.random.randint(key, (), 0, self.n)
        return jax.nn.one_hot(context, self.n, dtype=jnp.float32), context

    def step(self, key, state, action, params=None):
        reward = jnp.where(action == state, params, jnp.zeros_like(params))
        obs, context = self.reset(key, params)
        return obs, context, reward, jnp.asarray(True), jnp.asarray(False), {}


def _meshes():
    return {
        1: sharding.local_mesh("population", devices=jax.devices()[:1]),
        8: sharding.local_mesh("population"),
    }


def _leaves(tree) -> list[np.ndarray]:
    return [np.asarray(x) for x in jax.tree.leaves(eqx.filter(tree, eqx.is_inexact_array))]


# ---------------------------------------------------------------------------- ES (OPEN)

# PPO sizes of lorl-meta's own ES bandit test: 2 updates of 4 envs x 4 steps.
ES_PPO = la.PPOConfig(
    n_envs=4, n_steps=4, total_timesteps=4 * 4 * 2, n_minibatches=2, n_epochs=1, width=8
)
# sigma 0.5 (not OPEN Table 7's 0.01) so that members differ in a tiny run.
ES_CONFIG = lm.ESConfig(
    n_generations=1, population_size=8, sigma_init=0.5, eval_every=1, n_validation=2
)


@pytest.fixture(scope="module")
def es_results():
    env = Bandit()
    task = lm.ESTask("bandit", lm.ppo_fitness(la.PPO(ES_PPO), env), env.default_params)
    start = lo.OPEN(key=jax.random.key(0))
    results = {
        n: lm.ESTrainer(ES_CONFIG, task, mesh=mesh).train(start, seed=0, progress=False)
        for n, mesh in _meshes().items()
    }
    return start, results


@pytest.mark.timeout(900)
def test_es_generation_8_devices_equals_1_device(es_results):
    start, results = es_results
    one, eight = results[1], results[8]
    assert eight.history[0]["n_nonfinite"] == 0
    for key in ("mean_score", "max_score", "validation_score"):
        np.testing.assert_allclose(
            eight.history[0][key], one.history[0][key], rtol=RTOL, atol=ATOL, err_msg=key
        )
    for a, b in zip(_leaves(eight.final_optimizer), _leaves(one.final_optimizer), strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=STATE_ATOL)
    # The generation moved the ES mean, so equal results are not a trivial no-op.
    moved = [
        not np.array_equal(a, b)
        for a, b in zip(_leaves(start), _leaves(eight.final_optimizer), strict=True)
    ]
    assert any(moved)


# ------------------------------------------------------------- meta-gradient (Optim4RL)

MG_AGENT = la.A2C(la.A2CConfig.small_gridworld(n_envs=8, n_steps=4, total_timesteps=8 * 4 * 64))
MG_CONFIG = lm.MetaGradientConfig(n_meta_steps=1, n_inner=2, reset_interval=4, meta_lr=1e-2)


@pytest.fixture(scope="module")
def mg_results():
    env = Bandit()
    task = lm.MetaTask("bandit", env, env.default_params, MG_AGENT, n_units=8)
    start = lo.Optim4RL(1e-2, key=jax.random.key(0))
    results = {
        n: lm.MetaGradientTrainer(MG_CONFIG, task, mesh=mesh).train(start, seed=0, progress=False)
        for n, mesh in _meshes().items()
    }
    return start, results


@pytest.mark.timeout(900)
def test_meta_gradient_step_8_devices_equals_1_device(mg_results):
    start, results = mg_results
    one, eight = results[1], results[8]
    loss_key = "bandit/outer_loss"
    np.testing.assert_allclose(
        eight.history[0][loss_key], one.history[0][loss_key], rtol=RTOL, atol=ATOL
    )
    # Per-unit state (networks after the inner updates) is computed on its own device.
    for a, b in zip(_leaves(eight.state.units), _leaves(one.state.units), strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=STATE_ATOL)
    # Meta-parameters after one Adam step on the cross-device mean meta-gradient.
    meta_atol = 1e-3 * MG_CONFIG.meta_lr
    for a, b in zip(_leaves(eight.optimizer), _leaves(one.optimizer), strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=meta_atol)
    # The step changed the meta-parameters by about meta_lr.
    change = max(
        float(np.max(np.abs(a - b)))
        for a, b in zip(_leaves(eight.optimizer), _leaves(start), strict=True)
    )
    assert change > 0.5 * MG_CONFIG.meta_lr
    # The units really are spread over the 8 devices.
    unit_leaf = jax.tree.leaves(eqx.filter(eight.state.units, eqx.is_inexact_array))[0]
    assert len(unit_leaf.sharding.device_set) == 8
