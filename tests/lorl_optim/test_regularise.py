"""`lorl_optim.regularised`: L2 regularisation (before the optimizer) and decoupled weight
decay (after it) for learned and hand-designed optimizers, checked against the formulas."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import lorl_optim as lo

PARAMS = {"w": jnp.linspace(-1.0, 1.0, 6).reshape(2, 3), "b": jnp.asarray([0.5, -0.25, 2.0])}
GRADS = jax.tree.map(lambda x: 0.1 * jnp.cos(x), PARAMS)


def _step(tx, grads=GRADS, **extra):
    state = tx.init(PARAMS)
    updates, _ = tx.update(grads, state, PARAMS, **extra)
    return updates


def test_sgd_formulas():
    # sgd(1): update = -(g + l2 theta) - wd theta
    updates = _step(lo.regularised(optax.sgd(1.0), l2=0.1, weight_decay=0.01))
    for u, g, p in zip(*(jax.tree.leaves(t) for t in (updates, GRADS, PARAMS)), strict=True):
        np.testing.assert_allclose(u, -(g + 0.1 * p) - 0.01 * p, rtol=1e-6)


def test_learned_optimizer_sees_the_l2_gradient_and_is_decayed_after():
    opt = lo.Optim4RL(1e-2, backend="xla", key=jax.random.key(0))
    plain = _step(opt.as_optax(), jax.tree.map(lambda g, p: g + 0.1 * p, GRADS, PARAMS))
    l2 = _step(lo.regularised(opt, l2=0.1))
    for a, b in zip(jax.tree.leaves(plain), jax.tree.leaves(l2), strict=True):
        np.testing.assert_allclose(b, a, rtol=1e-6, atol=1e-9)
    base = _step(opt.as_optax())
    wd = _step(lo.regularised(opt, weight_decay=0.05))
    for a, b, p in zip(*(jax.tree.leaves(t) for t in (base, wd, PARAMS)), strict=True):
        np.testing.assert_allclose(b, a - 0.05 * p, rtol=1e-6, atol=1e-9)


def test_context_reaches_open_and_a_mask_limits_the_decay():
    opt = lo.OPEN(key=jax.random.key(1))
    context = {
        "dormancy": jax.tree.map(jnp.zeros_like, PARAMS),
        "training_proportion": jnp.asarray(0.5),
        "batch_proportion": jnp.asarray(0.0),
        "layer_proportions": jax.tree.map(lambda _: jnp.asarray(0.5), PARAMS),
        "actor_mask": jax.tree.map(lambda _: jnp.asarray(True), PARAMS),
        "key": jax.random.key(2),
    }
    base = _step(opt.as_optax(), **context)
    mask = {"w": True, "b": False}
    wd = _step(lo.regularised(opt, weight_decay=0.1, mask=mask), **context)
    np.testing.assert_allclose(wd["w"], base["w"] - 0.1 * PARAMS["w"], rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(wd["b"], base["b"], rtol=1e-6, atol=1e-9)


def test_bad_input():
    with pytest.raises(ValueError, match="l2 must be"):
        lo.regularised(optax.sgd(1.0), l2=-1.0)
    with pytest.raises((ValueError, TypeError), match="weight_decay"):
        lo.regularised(optax.sgd(1.0), weight_decay="1e-4")  # pyright: ignore[reportArgumentType]
    with pytest.raises(TypeError, match="optimizer"):
        lo.regularised(object(), l2=0.1)  # pyright: ignore[reportArgumentType]
