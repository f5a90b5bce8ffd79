"""The checkpointer on its own: exact round trips of every kind of leaf (zero-size arrays
of any dtype, PRNG key arrays, bfloat16), shape checks, retention, and fingerprints that
ignore speed-only fields of the optimizer."""

import json

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jaxtyping import Array, Float

import lorl_meta as lm
from lorl_meta._checkpoint import Checkpointer, describe_static

from .common import TARGET, quadratic_trainer


def _tree():
    key = jax.random.key(7)
    return {
        "w": jnp.arange(6, dtype=jnp.float32).reshape(2, 3) / 3.0,
        "empty_f32": jnp.zeros((0,), jnp.float32),
        "empty_i8": jnp.zeros((3, 0), jnp.int8),
        "empty_bool": jnp.zeros((0, 2), bool),
        "empty_keys": jax.random.split(key, 0),
        "keys": jax.random.split(key, 3),
        "raw_key": jax.random.PRNGKey(3),
        "bf16": jnp.asarray([1.5, -2.25, 3e-3], jnp.bfloat16),
        "scalar": jnp.asarray(5, jnp.int32),
        "numpy": np.asarray([1.0, 2.0], np.float32),
        "static": "kept",
    }


def _template():
    key = jax.random.key(0)
    return {
        "w": jnp.zeros((2, 3), jnp.float32),
        "empty_f32": jnp.ones((0,), jnp.float32),
        "empty_i8": jnp.ones((3, 0), jnp.int8),
        "empty_bool": jnp.ones((0, 2), bool),
        "empty_keys": jax.random.split(key, 0),
        "keys": jax.random.split(key, 3),
        "raw_key": jax.random.PRNGKey(0),
        "bf16": jnp.zeros(3, jnp.bfloat16),
        "scalar": jnp.asarray(0, jnp.int32),
        "numpy": np.zeros(2, np.float32),
        "static": "kept",
    }


def _data(x):
    if jnp.issubdtype(x.dtype, jax.dtypes.prng_key):
        return np.asarray(jax.random.key_data(x))
    return np.asarray(x)


@pytest.mark.parametrize("storage", ["orbax", "npz"])
def test_round_trip_of_every_kind_of_leaf_is_exact(tmp_path, monkeypatch, storage):
    # "orbax" is what a single-process job writes; "npz" the per-process copies of a
    # multi-process job (forced here; the real multi-process path is in tests/multidevice).
    monkeypatch.setattr("lorl_meta._checkpoint._storage_format", lambda: storage)
    tree = _tree()
    ckpt = Checkpointer(tmp_path, {"run": 1})
    assert ckpt.latest_step() is None
    ckpt.save(4, tree, {"history": [{"step": 1, "x": 0.5}]})
    assert ckpt.latest_step() == 4
    snapshot = tmp_path / "steps" / "4"
    assert json.loads((snapshot / "layout.json").read_text())["format"] == storage
    assert (snapshot / "state").is_dir() == (storage == "orbax")
    assert (snapshot / "arrays.npz").is_file() == (storage == "npz")
    restored, extras = Checkpointer(tmp_path, {"run": 1}).restore(4, _template())
    assert extras == {"history": [{"step": 1, "x": 0.5}]}
    assert restored["static"] == "kept"
    for name, want in tree.items():
        if name == "static":
            continue
        got = restored[name]
        assert got.dtype == jnp.asarray(want).dtype, name
        assert got.shape == want.shape, name
        assert np.array_equal(_data(got), _data(want)), name
    # Key arrays come back as key arrays of the same implementation, usable as keys.
    assert jax.random.key_impl(restored["keys"]) == jax.random.key_impl(tree["keys"])
    assert np.array_equal(
        jax.random.normal(restored["keys"][1], (2,)), jax.random.normal(tree["keys"][1], (2,))
    )


def test_a_template_of_another_shape_or_dtype_is_refused(tmp_path):
    ckpt = Checkpointer(tmp_path, {})
    ckpt.save(1, _tree(), {})
    bad = _template()
    bad["empty_i8"] = jnp.ones((2, 0), jnp.int8)  # zero-size, but another shape
    with pytest.raises(lm.CheckpointMismatchError, match=r"leaf 3 has shape \(3, 0\) int8"):
        ckpt.restore(1, bad)
    bad = _template()
    bad["w"] = jnp.zeros((2, 3), jnp.bfloat16)
    with pytest.raises(lm.CheckpointMismatchError, match="float32, expected"):
        ckpt.restore(1, bad)
    with pytest.raises(lm.CheckpointMismatchError, match="holds 10 arrays, expected 1"):
        ckpt.restore(1, {"w": jnp.zeros(3)})


def test_only_the_newest_snapshots_are_kept_and_partial_ones_are_ignored(tmp_path):
    ckpt = Checkpointer(tmp_path, {}, keep=2)
    tree = {"x": jnp.zeros(2)}
    for step in (1, 2, 3):
        ckpt.save(step, {"x": tree["x"] + step}, {"s": step})
    assert sorted(p.name for p in (tmp_path / "steps").iterdir()) == ["2", "3"]
    # A snapshot being written when the process died is a hidden temporary directory.
    (tmp_path / "steps" / ".tmp-4-123").mkdir()
    assert ckpt.latest_step() == 3
    # Saving a step again replaces it.
    ckpt.save(3, {"x": tree["x"] + 30}, {"s": 30})
    restored, extras = ckpt.restore(3, tree)
    assert extras == {"s": 30} and np.array_equal(restored["x"], np.full(2, 30.0))


class SpeedOptimizer(eqx.Module):
    """A toy optimizer with a semantic static field and a speed-only one (the way
    lorl-optim marks e.g. a chunk size)."""

    w: Float[Array, " n"]
    scale: float = eqx.field(static=True, default=1.0)
    chunk_size: int = eqx.field(static=True, default=8, metadata={"speed_only": True})


def _fitness(opt: SpeedOptimizer, env_params, key):
    return -jnp.sum((opt.w * opt.scale - TARGET) ** 2)


def test_describe_static_leaves_out_speed_only_fields_at_any_depth():
    a = SpeedOptimizer(jnp.zeros(5), chunk_size=8)
    b = SpeedOptimizer(jnp.ones(5), chunk_size=1024)
    c = SpeedOptimizer(jnp.zeros(5), scale=2.0)
    assert describe_static(a) == describe_static(b) == "SpeedOptimizer(w=array, scale=1.0)"
    assert describe_static(c) == "SpeedOptimizer(w=array, scale=2.0)"
    assert describe_static((a, [b])) == describe_static((b, [a]))
    assert describe_static({"o": a}) != describe_static({"o": c})
    assert a.chunk_size == 8  # not modified by describing it


def test_resume_across_a_speed_only_change_is_accepted_and_a_semantic_one_refused(tmp_path):
    task = lm.ESTask("quadratic", _fitness)
    base = quadratic_trainer(3, checkpoint_every=3)
    short = lm.ESTrainer(base.config, task)
    long = lm.ESTrainer(lm.ESConfig(**{**base.config.__dict__, "n_generations": 6}), task)
    start = SpeedOptimizer(jnp.zeros(5, jnp.float32), chunk_size=8)
    first = short.train(start, seed=0, checkpoint_dir=tmp_path, progress=False)
    stored = json.loads((tmp_path / "fingerprint.json").read_text())
    assert "chunk_size" not in stored["optimizer_static"]
    faster = SpeedOptimizer(jnp.zeros(5, jnp.float32), chunk_size=4096)
    resumed = long.train(faster, seed=0, checkpoint_dir=tmp_path, progress=False)
    assert [row["generation"] for row in resumed.history] == list(range(1, 7))
    assert resumed.history[:3] == first.history  # resumed, not restarted
    uninterrupted = long.train(faster, seed=0, progress=False)
    assert np.array_equal(resumed.final_optimizer.w, uninterrupted.final_optimizer.w)
    other = SpeedOptimizer(jnp.zeros(5, jnp.float32), scale=2.0)
    with pytest.raises(lm.CheckpointMismatchError, match="optimizer_static") as info:
        long.train(other, seed=0, checkpoint_dir=tmp_path, progress=False)
    assert "scale=2.0" in str(info.value) and "scale=1.0" in str(info.value)
