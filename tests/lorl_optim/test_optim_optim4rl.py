"""Optim4RL, LinearOptim, L2LGD2: single steps against NumPy, straight-through gradient."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _optim_numpy_ref import l2lgd2_step, linear_optim_step, optim4rl_step

import lorl_optim as lo

LR = 3e-3


def _params():
    k1, k2 = jax.random.split(jax.random.key(0))
    return {"b": jax.random.normal(k1, (5,)), "w": jax.random.normal(k2, (2, 5))}


def _grads(seed):
    k1, k2 = jax.random.split(jax.random.key(seed))
    g = {
        "b": 1e-4 * jax.random.normal(k1, (5,)),
        # spans [-3, 3] (clipped to [-1, 1]) and tiny values, plus an exact zero
        "w": 3.0 * jnp.tanh(jax.random.normal(k2, (2, 5))) * jnp.array([1.0, 1e-6])[:, None],
    }
    g["w"] = g["w"].at[0, 0].set(3.0).at[0, 1].set(-2.5).at[1, 4].set(0.0)
    return g


@eqx.filter_jit
def _step(opt, grads, state):
    return opt.update(grads, state)


def _flat(tree):
    return np.concatenate([np.ravel(np.asarray(x, np.float64)) for x in jax.tree.leaves(tree)])


def _randomise(opt, key, scale=0.5):
    """Replace every meta-parameter by N(0, scale^2) so that no output is trivially 0."""
    arrays, static = eqx.partition(opt, eqx.is_array)
    leaves, treedef = jax.tree.flatten(arrays)
    keys = jax.random.split(key, len(leaves))
    leaves = [scale * jax.random.normal(k, x.shape) for k, x in zip(keys, leaves, strict=True)]
    return eqx.combine(jax.tree.unflatten(treedef, leaves), static)


def test_optim4rl_parameter_count():
    opt = lo.Optim4RL(LR, key=jax.random.key(0))
    counts = [
        sum(x.size for x in jax.tree.leaves(m)) for m in (opt.gru1, opt.mlp1, opt.gru2, opt.mlp2)
    ]
    assert counts == [272, 450, 248, 433]  # spec section 1
    assert opt.init(_params()).slots.shape == (16, 15)


def test_optim4rl_two_steps_match_numpy():
    opt = _randomise(lo.Optim4RL(LR, key=jax.random.key(0)), jax.random.key(1))
    state = opt.init(_params())
    h1, h2 = np.zeros((8, 15)), np.zeros((8, 15))
    ref = np.zeros(15)
    for step in range(2):
        g = _grads(step)
        upd, state = _step(opt, g, state)
        ref, h1, h2 = optim4rl_step(opt, _flat(g), h1, h2, LR)
        np.testing.assert_allclose(_flat(upd), ref, rtol=1e-5, atol=1e-10)
        np.testing.assert_allclose(np.asarray(state.slots), np.vstack([h1, h2]), atol=1e-5)
    # Both signs of m_sign occur with random meta-parameters (the test covers both branches)
    assert np.any(ref * _flat(_grads(1)) > 0) and np.any(ref * _flat(_grads(1)) < 0)


def test_linear_optim_two_steps_match_numpy():
    opt = _randomise(lo.LinearOptim(LR, key=jax.random.key(0)), jax.random.key(2))
    state = opt.init(_params())
    assert state.slots.shape == (8, 15)
    h = np.zeros((8, 15))
    for step in range(2):
        g = _grads(step)
        upd, state = _step(opt, g, state)
        ref, h = linear_optim_step(opt, _flat(g), h, LR)
        np.testing.assert_allclose(_flat(upd), ref, rtol=1e-5, atol=1e-10)


def test_l2lgd2_two_steps_match_numpy():
    opt = _randomise(lo.L2LGD2(LR, key=jax.random.key(0)), jax.random.key(3))
    state = opt.init(_params())
    h = np.zeros((8, 15))
    for step in range(2):
        g = _grads(step)
        upd, state = _step(opt, g, state)
        ref, h = l2lgd2_step(opt, _flat(g), h, LR)
        np.testing.assert_allclose(_flat(upd), ref, rtol=1e-5, atol=1e-12)


def test_straight_through_sign():
    t = jnp.array([-0.7, -1e-3, 0.0, 0.4])
    np.testing.assert_array_equal(lo.straight_through_sign(t), [-1.0, -1.0, 1.0, 1.0])
    grad = jax.grad(lambda x: jnp.sum(lo.straight_through_sign(jnp.tanh(x + 1.0))))(t)
    np.testing.assert_allclose(grad, 1.0 - np.tanh(np.asarray(t) + 1.0) ** 2, rtol=1e-6)


def test_optim4rl_straight_through_meta_gradient():
    """d delta / d (bias of o1) = -lr * g_sign * exp(o2) / sqrt(v + eps) * (1 - tanh^2(o1+1)):
    the straight-through estimator passes tanh's derivative; the hard sign would give 0."""
    opt = _randomise(lo.Optim4RL(LR, key=jax.random.key(0)), jax.random.key(1))
    g = {"b": jnp.array([0.3]), "w": jnp.array([[-0.02]])}
    state = opt.init(g)

    def first_update(o):
        upd, _ = o.update(g, state)
        return upd["b"][0]

    grads = eqx.filter_grad(first_update)(opt)
    got = float(grads.mlp1.layers[-1].bias[0])

    # Reference: evaluate o1, o2, v for this parameter with NumPy and apply the formula.
    from _optim_numpy_ref import flax_gru, gru_from_module, relu_mlp

    gs, gl = 1.0, np.log(0.3 + 1e-18)
    a = flax_gru(gru_from_module(opt.gru1), np.array([gs, gl]), np.zeros(8))
    o1, o2 = relu_mlp(opt.mlp1, a)
    b = flax_gru(gru_from_module(opt.gru2), np.array([2 * gl]), np.zeros(8))
    v = np.exp(relu_mlp(opt.mlp2, b)[0])
    expected = -LR * gs * np.exp(o2) / np.sqrt(v + 1e-18) * (1 - np.tanh(o1 + 1.0) ** 2)
    assert abs(expected) > 1e-8
    np.testing.assert_allclose(got, expected, rtol=1e-4)


@pytest.mark.parametrize("cls", [lo.Optim4RL, lo.LinearOptim, lo.L2LGD2])
def test_wrong_grads_tree(cls):
    opt = cls(LR, key=jax.random.key(0))
    state = opt.init(_params())
    with pytest.raises(ValueError, match="does not match the tree"):
        opt.update({"b": jnp.zeros(5)}, state)
    with pytest.raises(ValueError, match="shape"):
        opt.update({"b": jnp.zeros(4), "w": jnp.zeros((2, 5))}, state)


@pytest.mark.parametrize("cls", [lo.Optim4RL, lo.LinearOptim, lo.L2LGD2])
def test_with_learning_rate_scales_the_update(cls):
    opt = _randomise(cls(LR, key=jax.random.key(0)), jax.random.key(1))
    faster = opt.with_learning_rate(4 * LR)
    assert faster.learning_rate == 4 * LR and opt.learning_rate == LR
    params = _params()
    upd, state = _step(opt, _grads(0), opt.init(params))
    upd4, state4 = _step(faster, _grads(0), faster.init(params))
    # The networks and the recurrent state do not depend on alpha; the update is linear in it.
    np.testing.assert_allclose(_flat(upd4), 4 * _flat(upd), rtol=1e-6, atol=1e-12)
    np.testing.assert_array_equal(np.asarray(state4.slots), np.asarray(state.slots))
    assert np.any(_flat(upd) != 0)
    with pytest.raises(ValueError, match="positive"):
        opt.with_learning_rate(-1.0)
