"""lorl.sharding over 8 forced host CPU devices: placement and errors before compute
(the 1-device vs 8-device equality of real runs is in test_equal_8.py)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lorl import sharding
from lorl.runs import ConfigError


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


def test_sharded_vmap_gathers_on_request():
    """Outputs stay split over the 8 devices by default in one process; `gather=True`
    (the default when the mesh spans several processes) replicates them, same values."""
    x = jnp.arange(16.0).reshape(8, 2)
    split = sharding.sharded_vmap(lambda r: r * 2.0, what="seeds")(x)
    gathered = sharding.sharded_vmap(lambda r: r * 2.0, what="seeds", gather=True)(x)
    assert not split.sharding.is_fully_replicated
    assert {s.data.shape for s in split.addressable_shards} == {(1, 2)}
    assert gathered.sharding.is_fully_replicated
    assert {s.data.shape for s in gathered.addressable_shards} == {(8, 2)}
    np.testing.assert_array_equal(np.asarray(gathered), np.asarray(split))


def test_es_generation_compiles_once_on_a_mesh(monkeypatch):
    # The ES state starts replicated over the mesh, as the generation returns it, so
    # generation 2 reuses generation 1's program: with validation only at the last of 3
    # generations there are exactly two traces (validate False, then True), not three.
    import dataclasses

    import lorl_agents as la
    import lorl_meta as lm
    from lorl_meta import _es

    from ._runs import ES_CONFIG, ES_PPO, Bandit, es_start, mesh_of

    traces = []
    fitness = _es.ESTrainer.population_fitness

    def counted(self, *args, **kwargs):
        traces.append(1)  # runs only while the generation is traced
        return fitness(self, *args, **kwargs)

    monkeypatch.setattr(_es.ESTrainer, "population_fitness", counted)
    env = Bandit()
    task = lm.ESTask("bandit", lm.ppo_fitness(la.PPO(ES_PPO), env), env.default_params)
    config = dataclasses.replace(ES_CONFIG, n_generations=3, eval_every=3)
    trainer = lm.ESTrainer(config, task, mesh=mesh_of(8))
    state = trainer.init(es_start(), trainer.strategy(es_start()), key=jax.random.key(0))
    assert len(state.es_state.mean.sharding.device_set) == 8  # replicated from the start
    trainer.train(es_start(), seed=0, progress=False)
    assert len(traces) == 2
