"""The runs compared between 1 and 8 devices, shared by the tests and by the subprocess
that computes the 1-device reference concurrently (`python -m tests.multidevice._runs
OUT.npz`: both cores compile at once, halving the session's wall time).

- `ppo`: a PPO CartPole training run vmapped over 8 seeds with `lorl.sharding.sharded_vmap`.
- `es`: one ES generation of OPEN (`lorl_meta.ESTrainer`, population 8, each member a
  PPO run on a contextual bandit).
- `mg`: one meta-gradient step of Optim4RL (`lorl_meta.MetaGradientTrainer`, 8 A2C
  training units on the bandit).

Each returns a flat dict of NumPy arrays.
"""

import sys

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

import lorl_agents as la
import lorl_meta as lm
import lorl_optim as lo
from lorl import sharding


def mesh_of(n_devices: int):
    return sharding.local_mesh(devices=jax.devices()[:n_devices])


def _leaves(tree) -> list[np.ndarray]:
    return [np.asarray(x) for x in jax.tree.leaves(eqx.filter(tree, eqx.is_inexact_array))]


def _flat(prefix: str, tree) -> dict[str, np.ndarray]:
    return {f"{prefix}/{i}": leaf for i, leaf in enumerate(_leaves(tree))}


class _Discrete:
    def __init__(self, n: int):
        self.n = n


class _Box:
    def __init__(self, shape: tuple[int, ...]):
        self.shape = shape


class Bandit:
    """A gymnax-interface contextual bandit that compiles fast: observe a one-hot context
    out of 4, reward 1 for the action equal to the context, every episode one step."""

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


# ------------------------------------------------------------------------------ PPO

# CartPole PPO, tiny: 4 updates of 4 envs x 16 steps (PureJaxRL CartPole settings
# otherwise; la.PPOConfig.cartpole).
TINY_PPO = la.PPOConfig.cartpole(
    n_envs=4, n_steps=16, total_timesteps=4 * 4 * 16, n_minibatches=2, n_epochs=2, width=16
)


def _train_cartpole(key):
    env, params = la.make_env("CartPole-v1")
    result = la.PPO(TINY_PPO).train(env, params, optax.adam(2.5e-4), key=key)
    return {
        "final_return": result.final_return,
        "total_loss": result.metrics["total_loss"],
        "actor_weight": result.network.actor[0].weight,
        "nonfinite": result.first_nonfinite_update,
    }


def ppo(n_devices: int) -> dict[str, np.ndarray]:
    keys = jax.random.split(jax.random.key(0), 8)
    out = sharding.sharded_vmap(_train_cartpole, mesh=mesh_of(n_devices), what="seeds")(keys)
    flat = {f"ppo/{k}": np.asarray(v) for k, v in out.items()}
    flat["ppo/n_devices_used"] = np.asarray(len(out["total_loss"].sharding.device_set))
    return flat


# ------------------------------------------------------------------------------- ES

# PPO sizes of lorl-meta's own ES bandit test: 2 updates of 4 envs x 4 steps.
ES_PPO = la.PPOConfig(
    n_envs=4, n_steps=4, total_timesteps=4 * 4 * 2, n_minibatches=2, n_epochs=1, width=8
)
# sigma 0.5 (not OPEN Table 7's 0.01) so that members differ in a tiny run.
ES_CONFIG = lm.ESConfig(
    n_generations=1, population_size=8, sigma_init=0.5, eval_every=1, n_validation=2
)


def es_start() -> lo.OPEN:
    return lo.OPEN(key=jax.random.key(0))


def es(n_devices: int) -> dict[str, np.ndarray]:
    env = Bandit()
    task = lm.ESTask("bandit", lm.ppo_fitness(la.PPO(ES_PPO), env), env.default_params)
    trainer = lm.ESTrainer(ES_CONFIG, task, mesh=mesh_of(n_devices))
    result = trainer.train(es_start(), seed=0, progress=False)
    row = result.history[0]
    flat = {
        f"es/{k}": np.asarray(row[k])
        for k in ("mean_score", "max_score", "validation_score", "n_nonfinite")
    }
    flat.update(_flat("es/final", result.final_optimizer))
    return flat


# ---------------------------------------------------------------------- meta-gradient

MG_AGENT = la.A2C(la.A2CConfig.small_gridworld(n_envs=8, n_steps=4, total_timesteps=8 * 4 * 64))
MG_CONFIG = lm.MetaGradientConfig(n_meta_steps=1, n_inner=2, reset_interval=4, meta_lr=1e-2)


def mg_start() -> lo.Optim4RL:
    return lo.Optim4RL(1e-2, key=jax.random.key(0))


def mg(n_devices: int) -> dict[str, np.ndarray]:
    env = Bandit()
    task = lm.MetaTask("bandit", env, env.default_params, MG_AGENT, n_units=8)
    trainer = lm.MetaGradientTrainer(MG_CONFIG, task, mesh=mesh_of(n_devices))
    result = trainer.train(mg_start(), seed=0, progress=False)
    flat = {"mg/outer_loss": np.asarray(result.history[0]["bandit/outer_loss"])}
    flat.update(_flat("mg/units", result.state.units))
    flat.update(_flat("mg/optimizer", result.optimizer))
    unit_leaf = jax.tree.leaves(eqx.filter(result.state.units, eqx.is_inexact_array))[0]
    flat["mg/n_devices_used"] = np.asarray(len(unit_leaf.sharding.device_set))
    return flat


RUNS = {"ppo": ppo, "es": es, "mg": mg}


def main() -> None:
    """`python -m tests.multidevice._runs OUT.npz`: every run on a 1-device mesh."""
    # The same promotion rules as the tests (tests/conftest.py).
    jax.config.update("jax_numpy_dtype_promotion", "strict")
    jax.config.update("jax_numpy_rank_promotion", "raise")
    out: dict[str, np.ndarray] = {}
    for run in RUNS.values():
        out.update(run(1))
    np.savez(sys.argv[1], **out)  # pyright: ignore[reportArgumentType]


if __name__ == "__main__":
    main()
