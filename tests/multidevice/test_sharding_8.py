"""lorl.sharding over 8 forced host CPU devices: placement, errors before compute, and a
real PPO training run vmapped over 8 seeds giving the same results as on one device.

"Same results": equal at float32 tolerance, `rtol=1e-5, atol=1e-6`, comparing the
8-device run with the same program on a 1-device mesh in the same process. (Each device
runs whole seeds, so no reduction crosses devices; the runs are in fact bit-identical
on this CPU, but XLA gives no such promise.)
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.sharding import NamedSharding, PartitionSpec

import lorl_agents as la
from lorl import sharding
from lorl.runs import ConfigError

RTOL, ATOL = 1e-5, 1e-6

# CartPole PPO, tiny: 4 updates of 4 envs x 16 steps (PureJaxRL CartPole settings
# otherwise; la.PPOConfig.cartpole).
TINY_PPO = la.PPOConfig.cartpole(
    n_envs=4, n_steps=16, total_timesteps=4 * 4 * 16, n_minibatches=2, n_epochs=2, width=16
)


def test_mesh_spans_8_devices():
    mesh = sharding.local_mesh()
    assert mesh.size == 8 and mesh.axis_names == ("batch",)
    placed = sharding.shard_leading({"x": jnp.arange(16.0).reshape(8, 2)}, mesh)
    shards = placed["x"].addressable_shards
    assert len(shards) == 8
    assert {s.device for s in shards} == set(jax.devices())
    for shard in shards:  # each device holds one row
        assert shard.data.shape == (1, 2)
        np.testing.assert_array_equal(shard.data, np.asarray(placed["x"])[shard.index])


def test_indivisible_counts_are_rejected_before_compute():
    mesh = sharding.local_mesh()
    with pytest.raises(
        ConfigError,
        match=r"population 6 is not divisible by the 8 devices; use a multiple of 8 \(e\.g\. 8\)",
    ):
        sharding.check_divisible(6, "population", mesh)
    with pytest.raises(ConfigError, match=r"seeds 20 .* \(e\.g\. 16 or 24\)"):
        sharding.check_divisible(20, "seeds", mesh)
    sharding.check_divisible(16, "seeds", mesh)

    calls = []

    def fn(x):
        calls.append(1)
        return x

    with pytest.raises(ConfigError, match="seeds 12 is not divisible by the 8 devices"):
        sharding.sharded_vmap(fn, what="seeds")(jnp.ones(12))
    with pytest.raises(ConfigError, match="not divisible"):
        sharding.shard_leading(jnp.ones((4, 3)), mesh)
    assert calls == []  # never traced: the error came before compute


def _train(key):
    env, params = la.make_env("CartPole-v1")
    result = la.PPO(TINY_PPO).train(env, params, optax.adam(2.5e-4), key=key)
    return {
        "final_return": result.final_return,
        "total_loss": result.metrics["total_loss"],
        "actor_weight": result.network.actor[0].weight,
        "nonfinite": result.first_nonfinite_update,
    }


@pytest.fixture(scope="module")
def ppo_runs():
    keys = jax.random.split(jax.random.key(0), 8)
    one = sharding.sharded_vmap(_train, mesh=sharding.local_mesh(devices=jax.devices()[:1]))
    eight = sharding.sharded_vmap(_train, mesh=sharding.local_mesh(), what="seeds")
    return one(keys), eight(keys)


@pytest.mark.timeout(600)
def test_ppo_8_seeds_on_8_devices_equals_1_device(ppo_runs):
    one, eight = ppo_runs
    assert eight["total_loss"].shape == (8, TINY_PPO.n_updates)
    expected = NamedSharding(sharding.local_mesh(), PartitionSpec("batch"))
    for name in one:
        assert eight[name].sharding.is_equivalent_to(expected, eight[name].ndim), name
        assert len(eight[name].sharding.device_set) == 8
        np.testing.assert_allclose(eight[name], one[name], rtol=RTOL, atol=ATOL, err_msg=name)
    # The seeds really differ (the comparison is not between 8 copies of one run) and
    # every run is finite.
    losses = np.asarray(eight["total_loss"])
    assert len({tuple(row) for row in losses.round(6)}) == 8
    np.testing.assert_array_equal(eight["nonfinite"], -1)
