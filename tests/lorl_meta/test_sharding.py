"""The `mesh=` hook of both trainers on one device: argument checks before compute, and a
one-device mesh gives the same result as no mesh (multi-device equality is tested in
tests/multidevice with 8 forced host devices)."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import Mesh, NamedSharding, PartitionSpec

import lorl_meta as lm

from .common import Quadratic, quadratic_trainer, tiny_trainer


def _mesh(n: int, name: str = "batch") -> Mesh:
    # A mesh of `n` copies of the one CPU device: enough to exercise the checks, which
    # only look at the mesh's shape.
    return Mesh(np.array([jax.devices()[0]] * n), (name,))


def test_indivisible_population_and_units_are_rejected_before_compute():
    es = quadratic_trainer(3)  # population 16
    with pytest.raises(ValueError, match=r"population_size = 16 is not divisible by the 3"):
        lm.ESTrainer(es.config, es.tasks, mesh=_mesh(3))
    mg = tiny_trainer()  # 4 units
    with pytest.raises(ValueError, match=r"n_units = 4 is not divisible by the 3 devices"):
        lm.MetaGradientTrainer(mg.config, mg.tasks, mesh=_mesh(3))
    # Sequential groups of units (speed only) and sharded units do not combine.
    with pytest.raises(ValueError, match="unit_batch"):
        grouped = dataclasses.replace(mg.config, unit_batch=2)
        lm.MetaGradientTrainer(grouped, mg.tasks, mesh=_mesh(2))
    # Several mesh axes multiply; a NamedSharding splits over the axes it names only.
    two_by_three = Mesh(np.array([jax.devices()[0]] * 6).reshape(2, 3), ("a", "b"))
    with pytest.raises(ValueError, match=r"not divisible by the 6 devices"):
        lm.ESTrainer(es.config, es.tasks, mesh=two_by_three)
    ok = lm.ESTrainer(es.config, es.tasks, mesh=NamedSharding(two_by_three, PartitionSpec("a")))
    assert ok.batch_sharding is not None and ok.batch_sharding.n_shards == 2


def test_bad_mesh_arguments_are_rejected():
    es = quadratic_trainer(3)
    with pytest.raises(TypeError, match="mesh"):
        lm.ESTrainer(es.config, es.tasks, mesh="cpu")  # pyright: ignore[reportArgumentType]
    with pytest.raises(ValueError, match="must name the mesh axes of the leading"):
        lm.ESTrainer(es.config, es.tasks, mesh=NamedSharding(_mesh(1), PartitionSpec()))
    two_axes = Mesh(np.array([jax.devices()[0]] * 2).reshape(1, 2), ("a", "b"))
    with pytest.raises(ValueError, match="only the leading"):
        lm.ESTrainer(es.config, es.tasks, mesh=NamedSharding(two_axes, PartitionSpec("a", "b")))


def test_one_device_mesh_matches_no_mesh():
    # (The meta-gradient trainer's equality is in tests/multidevice: its compile is long.)
    devices = np.array(jax.devices()[:1])
    es = quadratic_trainer(3)
    start = Quadratic(jnp.zeros(5, jnp.float32))
    plain = es.train(start, seed=0, progress=False)
    sharded = lm.ESTrainer(es.config, es.tasks, mesh=Mesh(devices, ("pop",))).train(
        start, seed=0, progress=False
    )
    np.testing.assert_allclose(
        np.asarray(sharded.final_optimizer.w), np.asarray(plain.final_optimizer.w), atol=1e-6
    )
