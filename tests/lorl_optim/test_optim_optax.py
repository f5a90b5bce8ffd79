"""optax integration, baselines presets, proportions, save/load of meta-parameters."""

from typing import cast

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import lorl_optim as lo
from lorl_optim import baselines


def _quadratic():
    target = {"a": jnp.array([1.0, -2.0, 0.5]), "b": jnp.array([[0.3, -0.7]])}

    def loss(p):
        return sum(
            jnp.sum((x - t) ** 2)
            for x, t in zip(jax.tree.leaves(p), jax.tree.leaves(target), strict=True)
        )

    params = jax.tree.map(jnp.zeros_like, target)
    return params, loss


def _run(tx, params, loss, steps, **extra):
    @jax.jit
    def train(params):
        def body(carry, _):
            p, s = carry
            g = jax.grad(loss)(p)
            upd, s = tx.update(g, s, p, **extra)
            return (optax.apply_updates(p, upd), s), loss(p)

        (p, _), losses = jax.lax.scan(body, (params, tx.init(params)), None, length=steps)
        return p, losses

    return train(params)


def test_optim4rl_in_optax_loop_descends():
    params, loss = _quadratic()
    tx = lo.Optim4RL(learning_rate=0.01, key=jax.random.key(0)).as_optax()
    _, losses = _run(tx, params, loss, 100)
    assert np.all(np.isfinite(losses))
    assert float(losses[-1]) < 0.5 * float(losses[0])


def test_open_in_optax_chain_with_extra_args():
    """OPEN inside `optax.chain`, context as extra args, unknown extra args ignored."""
    params, loss = _quadratic()
    opt = lo.load_open("breakout")
    tx = optax.chain(optax.clip_by_global_norm(0.5), opt.as_optax())
    ctx = {
        "dormancy": jax.tree.map(lambda x: jnp.ones(x.shape[-1:]), params),
        "training_proportion": jnp.asarray(0.1),
        "batch_proportion": jnp.asarray(0.0),
        "layer_proportions": {"a": jnp.asarray(0.0), "b": jnp.asarray(1.0)},
        "actor_mask": {"a": jnp.asarray(True), "b": jnp.asarray(False)},
        "key": jax.random.key(0),
        "value": jnp.asarray(3.0),  # e.g. for optax.contrib optimizers: must be ignored
    }
    p, losses = _run(tx, params, loss, 5, **ctx)
    assert np.all(np.isfinite(losses)) and not bool(lo.has_nonfinite(p))
    # First step through optax == direct call on the clipped gradient.
    g = jax.grad(loss)(params)
    g_clipped, _ = optax.clip_by_global_norm(0.5).update(g, optax.EmptyState())
    direct, _ = opt.update(
        g_clipped, opt.init(params), params, **{k: v for k, v in ctx.items() if k != "value"}
    )
    via_optax, _ = tx.update(g, tx.init(params), params, **ctx)
    for a, b in zip(jax.tree.leaves(direct), jax.tree.leaves(via_optax), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6)


def test_as_optax_missing_context_raises():
    params, loss = _quadratic()
    tx = lo.load_open("ant").as_optax()
    with pytest.raises(ValueError, match="training_proportion"):
        tx.update(jax.grad(loss)(params), tx.init(params), params)


def test_baseline_presets():
    assert baselines.ADAM["breakout"] == baselines.AdamPreset(0.01, 0.9, 0.99, True)
    assert baselines.RMSPROP["freeway"] == baselines.RMSPropPreset(0.001, 0.999, True)
    assert baselines.LION["asterix"] == baselines.LionPreset(0.0003, 0.99, 0.9, True)
    assert baselines.optim4rl_learning_rate("ant") == 0.00003
    assert baselines.OPTIM4RL_A2C_AGENT_LR["big_dense_long"] == 3e-3
    params, loss = _quadratic()
    for tx in (
        baselines.adam("gridworld", total_steps=50),
        baselines.rmsprop("breakout"),  # no annealing in this preset
        baselines.lion("ant", total_steps=50),
        baselines.sgd(0.1, anneal=True, total_steps=50),
    ):
        # optax's Adam bias correction (b1 ** int count) needs standard promotion.
        with jax.numpy_dtype_promotion("standard"):
            _, losses = _run(tx, params, loss, 50)
        assert float(losses[-1]) < float(losses[0])
    with pytest.raises(ValueError, match="total_steps"):
        baselines.adam("breakout")
    with pytest.raises(ValueError, match="available: asterix"):
        baselines.lion("gridworld", total_steps=10)


def test_annealing_reaches_zero():
    params, loss = _quadratic()
    tx = baselines.sgd(0.1, anneal=True, total_steps=4)
    g = jax.grad(loss)(params)
    state = tx.init(params)
    scales = []
    for _ in range(5):
        upd, state = tx.update(g, state, params)
        upd_a = cast(dict[str, jax.Array], upd)["a"]
        scales.append(float(upd_a[0] / -g["a"][0]))
    np.testing.assert_allclose(scales, [0.1, 0.075, 0.05, 0.025, 0.0], atol=1e-7)


def test_open_proportions():
    tp, bp = lo.open_proportions(jnp.asarray(0), n_minibatches=8, n_epochs=4, n_updates=10)
    assert (float(tp), float(bp)) == (0.0, 0.0)
    steps = jnp.array([7, 8, 31, 32, 319])
    tp, bp = jax.vmap(lambda t: lo.open_proportions(t, n_minibatches=8, n_epochs=4, n_updates=10))(
        steps
    )
    np.testing.assert_allclose(tp, [0, 0, 0, 1 / 9, 1], rtol=1e-6)
    np.testing.assert_allclose(bp, [0, 1 / 3, 1, 0, 1], rtol=1e-6)
    with pytest.raises(ValueError, match="n_epochs"):
        lo.open_proportions(jnp.asarray(0), n_minibatches=8, n_epochs=0, n_updates=10)


@pytest.mark.parametrize(
    "make",
    [
        lambda k: lo.OPEN(key=k),
        lambda k: lo.OPEN(separated=True, key=k),
        lambda k: lo.OPEN.larger(use_dormancy=False, key=k),
        lambda k: lo.Optim4RL(1e-3, key=k),
        lambda k: lo.L2LGD2(1e-3, key=k),
    ],
)
def test_save_load_round_trip(tmp_path, make):
    opt = make(jax.random.key(0))
    path = tmp_path / "meta.eqx"
    lo.save_meta_parameters(path, opt)
    loaded = lo.load_meta_parameters(path, make(jax.random.key(1)))
    for a, b in zip(jax.tree.leaves(opt), jax.tree.leaves(loaded), strict=True):
        np.testing.assert_array_equal(a, b)
    if isinstance(opt, lo.OPEN):  # the published (reference) flat layout round trip
        again = make(jax.random.key(2)).from_flat(opt.to_flat())
        for a, b in zip(jax.tree.leaves(opt), jax.tree.leaves(again), strict=True):
            np.testing.assert_array_equal(a, b)


def test_load_rejects_nan_meta_parameters(tmp_path):
    opt = lo.Optim4RL(1e-3, key=jax.random.key(0))
    bad = eqx.tree_at(lambda o: o.mlp2.layers[0].bias, opt, jnp.full((16,), jnp.nan))
    path = tmp_path / "bad.eqx"
    lo.save_meta_parameters(path, bad)
    with pytest.raises(ValueError, match="NaN"):
        lo.load_meta_parameters(path, opt)


def test_has_nonfinite():
    assert not bool(lo.has_nonfinite({"a": jnp.ones(3), "n": jnp.arange(3)}))
    assert bool(lo.has_nonfinite({"a": jnp.array([1.0, jnp.inf])}))
    assert bool(lo.has_nonfinite([jnp.zeros(2), jnp.array([jnp.nan])]))
    assert not bool(lo.has_nonfinite({}))
    assert bool(jax.jit(lo.has_nonfinite)({"x": jnp.array([0.0, jnp.nan])}))


def test_tuned_adam_anneals_per_update_as_open_does():
    # OPEN Table 4: breakout Adam lr 0.01, b1 0.9, b2 0.99, annealed; PureJaxRL's rule keeps
    # the rate constant within an update (32 optimizer steps at MinAtar's 4 x 8).
    assert baselines.ADAM["breakout"] == baselines.AdamPreset(0.01, 0.9, 0.99, True)
    per_update, n_updates = 32, 1220
    schedule = baselines.linear_annealing(0.01, per_update * n_updates, per_update)
    np.testing.assert_allclose(schedule(jnp.asarray(per_update - 1)), 0.01)
    np.testing.assert_allclose(
        schedule(jnp.asarray(per_update * 10 + 5)), 0.01 * (1 - 10 / n_updates), rtol=1e-6
    )
    # steps_per_update=1 anneals at every step
    every = baselines.linear_annealing(0.01, 100)
    np.testing.assert_allclose(every(jnp.asarray(25)), 0.0075, rtol=1e-6)
    # the same optimizer as the annealed preset, for every spelling of the game
    for name in ("breakout", "Breakout-MinAtar"):
        opt = baselines.adam(name, total_steps=per_update * n_updates, steps_per_update=per_update)
        assert isinstance(opt, optax.GradientTransformation)
    assert baselines.rmsprop("spaceinvaders", total_steps=64).init is not None
    with pytest.raises(ValueError, match="No tuned Adam values for 'pong'"):
        baselines.adam("pong", total_steps=10)
    with pytest.raises(ValueError, match="steps_per_update"):
        baselines.linear_annealing(0.01, 100, 0)
    with pytest.raises(ValueError, match="total_steps"):
        baselines.adam("breakout")
