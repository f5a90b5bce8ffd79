"""Learning-rate schedules for the learned optimizers that have a learning rate (Optim4RL,
Optim4RLRevised, LinearOptim, L2LGD2; OPEN has none): `learning_rate` takes a float or an
optax schedule, on both backends, under jit and in optax chains, and meta-gradients flow
through it as through a fixed rate."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import lorl_optim as lo

PARAMS = {"w": jnp.linspace(-1.0, 1.0, 12).reshape(3, 4), "b": jnp.zeros(4)}
CLASSES = [
    (lo.Optim4RL, {"backend": "xla"}),
    (lo.Optim4RL, {"backend": "fused"}),
    (lo.Optim4RLRevised, {}),
    (lo.LinearOptim, {}),
    (lo.L2LGD2, {}),
]


def _grads(t):
    return jax.tree.map(lambda x: jnp.sin(x + 0.3 * t) * 0.1 + 0.01, PARAMS)


@pytest.mark.parametrize(("cls", "kw"), CLASSES)
def test_scheduled_updates_are_the_fixed_ones_times_the_schedule(cls, kw):
    if kw.get("backend") == "fused" and not lo.fused_kernel_available():
        pytest.skip("the fused kernel is not available here")
    lr = 1e-2
    schedule = optax.linear_schedule(lr, 0.0, 5)  # lr, 0.8 lr, 0.6 lr, ...
    fixed = cls(lr, key=jax.random.key(0), **kw)
    sched = cls(schedule, key=jax.random.key(0), **kw)  # same meta-parameters
    s1, s2 = fixed.init(PARAMS), sched.init(PARAMS)
    assert s1.count is None and int(s2.count) == 0
    step = jax.jit(lambda opt, g, s: opt.update(g, s))
    for t in range(4):
        u1, s1 = step(fixed, _grads(t), s1)
        u2, s2 = step(sched, _grads(t), s2)
        for a, b in zip(jax.tree.leaves(u1), jax.tree.leaves(u2), strict=True):
            np.testing.assert_allclose(b, a * (1 - t / 5), rtol=2e-5, atol=1e-10)
        np.testing.assert_array_equal(s1.slots, s2.slots)  # the recurrent state is the same
        assert int(s2.count) == t + 1


def test_schedule_in_an_optax_chain_under_jit():
    opt = lo.Optim4RL(optax.cosine_decay_schedule(1e-2, 10), key=jax.random.key(1))
    tx = optax.chain(optax.clip_by_global_norm(1.0), opt.as_optax())
    state = tx.init(PARAMS)

    @jax.jit
    def step(params, state, t):
        updates, state = tx.update(_grads(t), state, params)
        return optax.apply_updates(params, updates), state

    params = PARAMS
    for t in range(3):
        params, state = step(params, state, t)
    assert all(bool(jnp.all(jnp.isfinite(x))) for x in jax.tree.leaves(params))
    assert int(state[1].count) == 3


def test_meta_gradients_through_a_schedule():
    # A constant schedule gives the fixed rate's meta-gradients; a decaying one scales
    # the last update's contribution by its value there.
    lr = 1e-2

    def loss(opt):
        state = opt.init(PARAMS)
        total = 0.0
        for t in range(2):
            updates, state = opt.update(_grads(t), state)
            total = total + sum(jnp.sum(u) for u in jax.tree.leaves(updates))
        return total

    fixed = lo.Optim4RL(lr, backend="xla", key=jax.random.key(2))
    const = fixed.with_learning_rate(lambda count: lr)
    g1 = eqx.filter_grad(loss)(fixed)
    g2 = eqx.filter_grad(loss)(const)
    for a, b in zip(jax.tree.leaves(g1), jax.tree.leaves(g2), strict=True):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-12)
    assert any(float(jnp.max(jnp.abs(a))) > 0 for a in jax.tree.leaves(g1))


def test_bad_learning_rates_fail_at_construction():
    # (with the test suite's jaxtyping/beartype hook a wrong type is a TypeError naming
    # the argument before the constructor's own ValueError)
    for bad in ("1e-3", -1.0, 0.0, True, jnp.asarray(1e-3)):
        with pytest.raises((ValueError, TypeError), match="learning_rate"):
            lo.Optim4RL(bad, key=jax.random.key(0))  # pyright: ignore[reportArgumentType]
        with pytest.raises((ValueError, TypeError), match="learning_rate"):
            lo.LinearOptim(bad, key=jax.random.key(0))  # pyright: ignore[reportArgumentType]
    opt = lo.Optim4RL(1e-2, key=jax.random.key(0))
    with pytest.raises((ValueError, TypeError), match="learning_rate"):
        opt.with_learning_rate("fast")  # pyright: ignore[reportArgumentType]
    # a scheduled optimizer needs a counting state, and cannot be saved (code, not data)
    sched = opt.with_learning_rate(optax.constant_schedule(1e-2))
    with pytest.raises(ValueError, match="counts steps|count steps"):
        sched.update(_grads(0), opt.init(PARAMS))
    with pytest.raises(ValueError, match="schedule"):
        lo.save("unused.eqx", sched)
