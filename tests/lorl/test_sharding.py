"""lorl.sharding on the devices of this process (usually one CPU device): meshes,
placement, `sharded_vmap` equal to `jax.vmap`, and clear errors. The 8-device behaviour
is tested in tests/multidevice (`nox -s multidevice`)."""

import subprocess
import sys

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from lorl import sharding
from lorl.runs import ConfigError


def test_local_mesh():
    mesh = sharding.local_mesh()
    assert isinstance(mesh, Mesh)
    assert mesh.axis_names == ("batch",)
    assert mesh.size == jax.device_count()
    assert list(mesh.devices.flat) == jax.devices()
    one = sharding.local_mesh("seeds", devices=jax.devices()[:1])
    assert one.axis_names == ("seeds",) and one.size == 1


def test_local_mesh_errors():
    with pytest.raises(ConfigError, match="at least one device"):
        sharding.local_mesh(devices=[])
    with pytest.raises(ConfigError, match="twice"):
        sharding.local_mesh(devices=[jax.devices()[0], jax.devices()[0]])
    with pytest.raises(ConfigError, match="axis_name"):
        sharding.local_mesh("")


def test_check_divisible_single_device():
    mesh = sharding.local_mesh(devices=jax.devices()[:1])
    for n in (1, 6, 7):
        sharding.check_divisible(n, "population", mesh)
    with pytest.raises(ConfigError, match="population must be at least 1, got 0"):
        sharding.check_divisible(0, "population", mesh)
    with pytest.raises((ConfigError, TypeError), match="(integer|int)"):
        sharding.check_divisible(2.0, "seeds", mesh)  # pyright: ignore[reportArgumentType]


def test_shard_leading_and_replicate():
    mesh = sharding.local_mesh()
    n = 2 * mesh.size
    tree = {"a": np.arange(n * 3.0).reshape(n, 3), "b": jnp.ones(n), "f": jnp.tanh, "k": 3}
    placed = sharding.shard_leading(tree, mesh)
    assert placed["f"] is jnp.tanh and placed["k"] == 3
    for leaf in (placed["a"], placed["b"]):
        assert isinstance(leaf, jax.Array)
        assert leaf.sharding.is_equivalent_to(NamedSharding(mesh, PartitionSpec("batch")), 2)
    np.testing.assert_array_equal(placed["a"], tree["a"])
    shared = sharding.replicate(tree, mesh)
    assert shared["a"].sharding.is_fully_replicated
    assert sharding.shard_leading({"k": 1}, mesh) == {"k": 1}


def test_shard_leading_errors():
    with pytest.raises(ConfigError, match="different leading sizes"):
        sharding.shard_leading({"a": jnp.ones(2), "b": jnp.ones(3)})
    with pytest.raises(ConfigError, match=r"\['a'\] is a scalar"):
        sharding.shard_leading({"a": jnp.float32(1.0)}, what="seeds")


class Linear(eqx.Module):
    weight: jax.Array
    bias: jax.Array
    activation: object = eqx.field(static=True)


TRACES = {"count": 0}


def per_seed(key: jax.Array, model: Linear, scale: jax.Array) -> dict[str, jax.Array]:
    TRACES["count"] += 1
    x = jax.random.normal(key, (5, 3))
    y = model.activation(x @ model.weight + model.bias[None, :]) * scale
    return {"y": y, "norm": jnp.sum(y**2)}


@pytest.fixture(scope="module")
def inputs():
    keys = jax.random.split(jax.random.key(0), 4)
    model = Linear(jax.random.normal(jax.random.key(1), (3, 2)), jnp.array([0.1, -0.2]), jnp.tanh)
    return keys, model, jnp.float32(2.0)


def test_sharded_vmap_equals_vmap(inputs):
    keys, model, scale = inputs
    expected = jax.vmap(per_seed, in_axes=(0, None, None))(keys, model, scale)
    fn = sharding.sharded_vmap(per_seed, in_axes=(0, None, None), what="seeds")
    TRACES["count"] = 0
    got = fn(keys, model, scale)
    got_again = fn(keys, model, scale * 2)
    assert TRACES["count"] == 1  # one trace for both calls: no recompilation
    np.testing.assert_allclose(got["y"], expected["y"], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(got["norm"], expected["norm"], rtol=1e-6)
    np.testing.assert_allclose(got_again["norm"], 4 * expected["norm"], rtol=1e-5)
    assert got["y"].shape == (4, 5, 2)
    mesh = sharding.local_mesh()
    assert got["y"].sharding.is_equivalent_to(NamedSharding(mesh, PartitionSpec("batch")), 3)


def test_sharded_vmap_batched_module(inputs):
    keys, model, scale = inputs
    models = jax.vmap(lambda k: eqx.tree_at(lambda m: m.bias, model, jax.random.normal(k, (2,))))(
        keys
    )
    fn = sharding.sharded_vmap(per_seed, in_axes=(0, 0, None))
    expected = eqx.filter_vmap(per_seed, in_axes=(0, 0, None))(keys, models, scale)
    np.testing.assert_allclose(fn(keys, models, scale)["y"], expected["y"], rtol=1e-6)


def test_sharded_vmap_errors(inputs):
    keys, model, scale = inputs
    with pytest.raises(ConfigError, match="2 entries but the function got 3"):
        sharding.sharded_vmap(per_seed, in_axes=(0, None))(keys, model, scale)
    with pytest.raises(ConfigError, match="must be 0"):
        sharding.sharded_vmap(per_seed, in_axes=(1, None, None))(keys, model, scale)
    with pytest.raises(ConfigError, match="no argument as batched"):
        sharding.sharded_vmap(per_seed, in_axes=None)(keys, model, scale)
    with pytest.raises(ConfigError, match="seeds: .*different leading sizes"):
        sharding.sharded_vmap(lambda a, b: a + b, what="seeds")(jnp.ones(2), jnp.ones(4))
    with pytest.raises((ConfigError, TypeError), match="[Mm]esh"):
        sharding.sharded_vmap(per_seed, mesh="gpu")  # pyright: ignore[reportArgumentType]


def test_initialize_distributed_single_process(monkeypatch):
    for var in ("JAX_COORDINATOR_ADDRESS", "JAX_NUM_PROCESSES", "JAX_PROCESS_ID", "SLURM_JOB_ID"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.delenv("OMPI_MCA_orte_hnp_uri", raising=False)
    monkeypatch.delenv("OMPI_MCA_ess_base_jobid", raising=False)
    assert sharding.initialize_distributed() is False
    assert sharding.initialize_distributed(num_processes=1) is False
    monkeypatch.setenv("JAX_NUM_PROCESSES", "1")
    assert sharding.initialize_distributed() is False


def test_initialize_distributed_errors(monkeypatch):
    for var in ("JAX_COORDINATOR_ADDRESS", "JAX_NUM_PROCESSES", "JAX_PROCESS_ID", "SLURM_JOB_ID"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(ConfigError, match="needs coordinator_address"):
        sharding.initialize_distributed(num_processes=2)
    with pytest.raises(ConfigError, match="process_id 2 is outside 0 .. 1"):
        sharding.initialize_distributed("localhost:1234", 2, 2)
    monkeypatch.setenv("JAX_NUM_PROCESSES", "two")
    with pytest.raises(ConfigError, match="not an integer"):
        sharding.initialize_distributed()


def test_import_lorl_does_not_start_the_backend():
    """`import lorl` (and `lorl.sharding`, `lorl.runs`, the CLI module) must leave JAX's
    backend unstarted, so that the `lorl` command can still join a multi-process job."""
    code = (
        "import jax._src.xla_bridge as xb\n"
        "import lorl, lorl.sharding, lorl.runs, lorl._cli\n"
        "assert not xb._backends, 'backend started'\n"
        "import lorl.evaluation\n"
        "assert xb._backends, 'the check cannot see a started backend'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]


def test_lorl_namespaces_load_on_first_use():
    import lorl

    assert lorl.stats.__name__ == "lorl.stats"
    assert set(lorl.__all__) >= {"evaluation", "experiments", "sharding", "stats", "runs"}
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = lorl.nope  # pyright: ignore[reportAttributeAccessIssue]
