"""Meta-learning readiness: meta-gradients through K updates, populations, no re-tracing."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _finite_differences import check_directional_derivative

import lorl_optim as lo

K = 3


def _problem(dtype):
    """A tiny actor/critic-shaped quadratic: loss(p) = 0.5 * sum(a * (p - t)^2)."""
    p0 = {
        "actor": jnp.array([[0.5, -1.0], [2.0, 0.1]], dtype),
        "critic": jnp.array([1.5, -0.3], dtype),
    }
    target = {"actor": jnp.array([[0.0, 1.0], [-1.0, 0.0]], dtype), "critic": jnp.zeros(2, dtype)}
    curv = {
        "actor": jnp.array([[1.0, 3.0], [0.5, 2.0]], dtype),
        "critic": jnp.array([1.0, 4.0], dtype),
    }

    def loss(p):
        terms = jax.tree.map(lambda x, t, a: jnp.sum(a * (x - t) ** 2), p, target, curv)
        return 0.5 * sum(jax.tree.leaves(terms))

    return p0, loss


def _context(dtype):
    return {
        "dormancy": {"actor": jnp.array([0.2, 1.8], dtype), "critic": jnp.ones((), dtype)},
        "training_proportion": jnp.asarray(0.5, dtype),
        "batch_proportion": jnp.asarray(0.0, dtype),
        "layer_proportions": {"actor": jnp.asarray(1.0, dtype), "critic": jnp.asarray(1.0, dtype)},
        "actor_mask": {"actor": jnp.asarray(True), "critic": jnp.asarray(False)},
    }


def _meta_loss(opt, dtype, inner="quadratic"):
    """Outer loss after K inner updates. `inner="linear"` uses a constant inner gradient:
    the Optim4RL family feeds gradients in as stop-gradient inputs (a deliberately
    truncated meta-gradient), which equals the true derivative only when the inner
    gradient does not depend on the parameters."""
    p, loss = _problem(dtype)
    state = opt.init(p)
    keys = jax.random.split(jax.random.key(0), K)
    for k in range(K):
        if inner == "quadratic":
            g = jax.grad(loss)(p)
        else:
            g = jax.tree.map(
                lambda x: jnp.linspace(-1.0, 0.5, x.size, dtype=dtype).reshape(x.shape), p
            )
        upd, state = opt.update(g, state, p, **_context(dtype), key=keys[k])
        p = jax.tree.map(lambda a, b: a + b, p, upd)
    return loss(p)


def _as_float64(opt):
    return jax.tree.map(lambda x: x.astype(jnp.float64) if eqx.is_array(x) else x, opt)


@pytest.mark.parametrize("which", ["open", "linear"])
def test_meta_gradient_matches_finite_differences(which):
    with jax.enable_x64(True):
        if which == "open":
            opt, inner = lo.load_open("breakout"), "quadratic"
        else:
            opt, inner = lo.LinearOptim(0.05, key=jax.random.key(1)), "linear"
        opt = _as_float64(opt)
        arrays, static = eqx.partition(opt, eqx.is_array)

        def meta(a):
            return _meta_loss(eqx.combine(a, static), jnp.float64, inner)

        f = jax.jit(meta)
        grad = jax.jit(jax.grad(meta))(arrays)
        check_directional_derivative(f, grad, arrays, seed=2, rtol=1e-5, floor=1e-8)


def test_vmap_over_population_matches_members():
    names = ("breakout", "asterix")
    members = [lo.load_open(n) for n in names]
    population = jax.tree.map(lambda *xs: jnp.stack(xs), *members)
    p, loss = _problem(jnp.float32)
    g = jax.grad(loss)(p)
    ctx = _context(jnp.float32)
    key = jax.random.key(4)

    @eqx.filter_jit
    def one(opt):
        upd, _ = opt.update(g, opt.init(p), p, **ctx, key=key)
        return upd

    batched = eqx.filter_jit(eqx.filter_vmap(one))(population)
    for i, member in enumerate(members):
        single = one(member)
        for a, b in zip(jax.tree.leaves(batched), jax.tree.leaves(single), strict=True):
            np.testing.assert_allclose(a[i], b, rtol=1e-5, atol=1e-9)
    # Optim4RL population too (the random initialisation differs per member).
    o4 = [lo.Optim4RL(1e-3, key=jax.random.key(i)) for i in range(2)]
    pop4 = jax.tree.map(lambda *xs: jnp.stack(xs), *o4)
    out = eqx.filter_vmap(lambda o: o.update(g, o.init(p))[0])(pop4)
    np.testing.assert_allclose(
        out["critic"][1], o4[1].update(g, o4[1].init(p))[0]["critic"], rtol=1e-5
    )


@eqx.filter_jit
@eqx.debug.assert_max_traces(max_traces=1)
def _traced_once(opt, g, state, p, ctx, key):
    return opt.update(g, state, p, **ctx, key=key)


def test_changing_meta_parameters_never_retraces():
    p, loss = _problem(jnp.float32)
    g = jax.grad(loss)(p)
    ctx = _context(jnp.float32)
    for name in ("breakout", "asterix", "spaceinvaders"):
        opt = lo.load_open(name)
        _traced_once(opt, g, opt.init(p), p, ctx, jax.random.key(0))
    # Perturbed values, same configuration: still the one trace.
    opt = jax.tree.map(lambda x: x * 1.01 if eqx.is_array(x) else x, lo.load_open("ant"))
    _traced_once(opt, g, opt.init(p), p, ctx, jax.random.key(1))
