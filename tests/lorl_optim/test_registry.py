"""The learned-optimizer registry and `lorl_optim.save` / `load`: one self-describing file
(class, configuration, meta-parameters) that every registered optimizer round-trips
through, with no class argument and no sidecar."""

import dataclasses

import equinox as eqx
import jax
import numpy as np
import pytest

import lorl_optim as lo

# Non-default configurations, so a loader that fell back to the defaults would fail.
CASES = [
    ("optim4rl", {"learning_rate": 3e-3, "hidden_size": 4, "mlp_widths": (5, 3), "clip": 0.5}),
    ("optim4rl_revised", {"learning_rate": 2e-3, "hidden_size": 3, "mlp_widths": (4,)}),
    ("linear_optim", {"learning_rate": 1e-2, "hidden_size": 5, "mlp_widths": (6,)}),
    ("l2lgd2", {"learning_rate": 1e-3, "hidden_size": 4, "mlp_widths": ()}),
    ("open", {}),
    ("open", {"hidden_size": 16, "mlp_width": 32}),  # the multi-task size
    ("open", {"separated": True}),
    ("open", {"no_features": True}),
    ("open", {"use_training_proportion": False}),
    ("open", {"use_batch_proportion": False}),
    ("open", {"use_layer_proportion": False}),
    ("open", {"use_dormancy": False}),
    ("open", {"use_stochasticity": False}),
    ("open", {"separated": True, "use_stochasticity": False}),
]


def test_every_class_is_registered_and_covered():
    names = set(lo.registered_optimizers())
    assert names == {"optim4rl", "optim4rl_revised", "linear_optim", "l2lgd2", "open"}
    assert names == {name for name, _ in CASES}


@pytest.mark.parametrize(("name", "config"), CASES)
def test_round_trip(tmp_path, name, config):
    opt = lo.build(name, config, key=jax.random.key(5))
    path = lo.save(tmp_path / "sub" / "o.eqx", opt)
    assert lo.is_saved_optimizer(path) and not path.with_name("o.eqx.json").exists()
    header = lo.read_header(path)
    assert header["class"] == name and header["version"] == 1
    loaded = lo.load(path)
    assert type(loaded) is type(opt) and loaded.config() == opt.config()
    for key, value in config.items():
        assert loaded.config()[key] == value
    a, b = eqx.partition(loaded, eqx.is_array), eqx.partition(opt, eqx.is_array)
    assert a[1] == b[1]  # static fields equal
    for x, y in zip(jax.tree.leaves(a[0]), jax.tree.leaves(b[0]), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_published_open_round_trips(tmp_path):
    opt = lo.load_open("breakout")
    loaded = lo.load(lo.save(tmp_path / "b.eqx", opt))
    np.testing.assert_array_equal(np.asarray(loaded.to_flat()), np.asarray(opt.to_flat()))


def test_bad_input(tmp_path):
    opt = lo.Optim4RL(1e-2, key=jax.random.key(0))
    # non-finite meta-parameters are not saved
    broken = eqx.tree_at(lambda o: o.mlp2.layers[-1].bias, opt, opt.mlp2.layers[-1].bias * np.nan)
    with pytest.raises(ValueError, match="NaN or inf"):
        lo.save(tmp_path / "x.eqx", broken)
    assert not (tmp_path / "x.eqx").exists()
    # a file of another format, and a newer version of this one
    (tmp_path / "other.eqx").write_bytes(b"not an optimizer")
    with pytest.raises(ValueError, match="not written by lorl_optim.save"):
        lo.load(tmp_path / "other.eqx")
    path = lo.save(tmp_path / "o.eqx", opt)
    data = path.read_bytes().replace(b'"version": 1', b'"version": 9')
    (tmp_path / "new.eqx").write_bytes(data)
    with pytest.raises(ValueError, match="format version 9"):
        lo.load(tmp_path / "new.eqx")
    with pytest.raises(KeyError, match="registered"):
        lo.optimizer_class("nope")

    # an unregistered class cannot be saved; a registered name cannot be taken twice
    @dataclasses.dataclass
    class Fake:
        pass

    with pytest.raises(TypeError, match="AbstractLearnedOptimizer"):
        lo.register("fake", Fake)  # pyright: ignore[reportArgumentType]
    with pytest.raises(ValueError, match="already registered"):
        lo.register("optim4rl", lo.OPEN)
    with pytest.raises(ValueError, match="already registered"):
        lo.register("optim4rl_again", lo.Optim4RL)


def test_class_names_of_the_previous_format_resolve():
    # files of the previous format record the class name ("Optim4RL"), not the key
    assert lo.optimizer_class("Optim4RL") is lo.Optim4RL
    assert lo.optimizer_class("OPEN") is lo.OPEN
