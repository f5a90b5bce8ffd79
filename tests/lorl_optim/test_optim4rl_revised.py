"""Optim4RLRevised (the later revision of the Optim4RL reference code): single steps
against an independent NumPy computation, meta-gradients against finite differences
through K updates, vmap over meta-parameters, optax usage and bad input."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from _finite_differences import check_directional_derivative

import lorl_optim as lo

LR = 3e-3
K = 3


def _params():
    k1, k2 = jax.random.split(jax.random.key(0))
    return {"b": jax.random.normal(k1, (5,)), "w": jax.random.normal(k2, (2, 5))}


def _grads(seed):
    """Gradients of several scales: tiny (1e-4), values clipped at +-1, an exact zero."""
    k1, k2 = jax.random.split(jax.random.key(seed))
    g = {
        "b": 1e-4 * jax.random.normal(k1, (5,)),
        "w": 0.8 * jax.random.normal(k2, (2, 5)),
    }
    g["w"] = g["w"].at[0, 0].set(3.0).at[0, 1].set(-2.5).at[1, 4].set(0.0)
    return g


def _flat(tree):
    return np.concatenate([np.ravel(np.asarray(x, np.float64)) for x in jax.tree.leaves(tree)])


def _randomise(opt, key, scale=0.7):
    """Replace every meta-parameter by N(0, scale^2) (biases too), so that no term of
    the computation is trivially zero."""
    arrays, static = eqx.partition(opt, eqx.is_array)
    leaves, treedef = jax.tree.flatten(arrays)
    keys = jax.random.split(key, len(leaves))
    leaves = [scale * jax.random.normal(k, x.shape) for k, x in zip(keys, leaves, strict=True)]
    return eqx.combine(jax.tree.unflatten(treedef, leaves), static)


# --- an independent NumPy computation of the revision (float64) -------------------------


def _np_sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _np_gru(gru, x, h):
    """flax GRUCell on rows of features: x (n, in), h (n, F) -> (n, F)."""
    wi = np.asarray(gru.weight_ih, np.float64)
    bi = np.asarray(gru.bias_ih, np.float64)
    wh = np.asarray(gru.weight_hh, np.float64)
    bhn = np.asarray(gru.bias_hn, np.float64)
    f = h.shape[1]
    w_ir, w_iz, w_in = wi[:f], wi[f : 2 * f], wi[2 * f :]
    b_ir, b_iz, b_in = bi[:f], bi[f : 2 * f], bi[2 * f :]
    w_hr, w_hz, w_hn = wh[:f], wh[f : 2 * f], wh[2 * f :]
    r = _np_sigmoid(x @ w_ir.T + b_ir + h @ w_hr.T)
    z = _np_sigmoid(x @ w_iz.T + b_iz + h @ w_hz.T)
    n = np.tanh(x @ w_in.T + b_in + r * (h @ w_hn.T + bhn))
    return (1.0 - z) * n + z * h


def _np_readout(mlp, x):
    for i, layer in enumerate(mlp.layers):
        x = x @ np.asarray(layer.weight, np.float64).T + np.asarray(layer.bias, np.float64)
        if i < len(mlp.layers) - 1:
            x = np.maximum(x, 0.0)
    return x


def _np_step(opt, g, h1, h2, lr, clip=1.0, eps=1e-8):
    """One step of the revision per scalar (reference components/optim.py, d2180b5)."""
    g = np.clip(g, -clip, clip)[:, None]
    h1 = _np_gru(opt.gru1, g, h1)
    h2 = _np_gru(opt.gru2, g * g, h2)
    m = np.sign(g) * np.exp(_np_readout(opt.mlp1, h1))
    v = np.exp(_np_readout(opt.mlp2, h2))
    return (-lr * m / np.sqrt(v + eps))[:, 0], h1, h2


@eqx.filter_jit
def _step(opt, grads, state):
    return opt.update(grads, state)


def test_parameter_count_and_state_layout():
    opt = lo.Optim4RLRevised(LR, key=jax.random.key(0))
    counts = [
        sum(x.size for x in jax.tree.leaves(m)) for m in (opt.gru1, opt.mlp1, opt.gru2, opt.mlp2)
    ]
    # GRU with 1 input and 8 hidden: 3*8*1 + 3*8 + 3*8*8 + 8 = 248; read-out 8 -> 1: 9.
    assert counts == [248, 9, 248, 9]
    assert opt.init(_params()).slots.shape == (16, 15)
    wider = lo.Optim4RLRevised(LR, mlp_widths=(4,), key=jax.random.key(0))
    assert sum(x.size for x in jax.tree.leaves(wider.mlp1)) == 8 * 4 + 4 + 4 + 1


@pytest.mark.parametrize("mlp_widths", [(), (4,)])
def test_three_steps_match_numpy(mlp_widths):
    opt = _randomise(
        lo.Optim4RLRevised(LR, mlp_widths=mlp_widths, key=jax.random.key(0)), jax.random.key(1)
    )
    state = opt.init(_params())
    h1, h2 = np.zeros((15, 8)), np.zeros((15, 8))
    ref, upd = np.zeros(15), {}
    for step in range(3):
        g = _grads(step)
        upd, state = _step(opt, g, state)
        ref, h1, h2 = _np_step(opt, _flat(g), h1, h2, LR)
        np.testing.assert_allclose(_flat(upd), ref, rtol=2e-5, atol=1e-12)
        np.testing.assert_allclose(np.asarray(state.slots), np.vstack([h1.T, h2.T]), atol=2e-6)
    # the update direction is sign(g) (no learned sign flip); zero gradient, zero update
    flat_g = _flat(_grads(2))
    assert np.all(np.sign(ref) == -np.sign(flat_g))
    assert _flat(upd)[flat_g == 0.0].tolist() == [0.0]


def test_clip_and_eps_are_applied():
    """With all meta-parameters zero: h stays 0, m = sign(g), v = 1, so the update is
    exactly -lr * sign(g) / sqrt(1 + eps) whatever |g|; `clip` changes the GRU input,
    visible in the hidden state after one step."""
    opt = lo.Optim4RLRevised(0.5, eps=0.25, key=jax.random.key(0))
    zero = jax.tree.map(jnp.zeros_like, eqx.filter(opt, eqx.is_array))
    opt = eqx.combine(zero, eqx.filter(opt, eqx.is_array, inverse=True))
    g = {"x": jnp.array([3.0, -1e-5, 0.0])}
    upd, _ = opt.update(g, opt.init(g))
    np.testing.assert_allclose(upd["x"], -0.5 * np.array([1.0, -1.0, 0.0]) / np.sqrt(1.25))
    # n = tanh(w * clip(g)) with a unit input weight on one candidate unit
    base = lo.Optim4RLRevised(0.5, clip=2.0, key=jax.random.key(0))
    gru = eqx.tree_at(lambda m: m.weight_ih, base.gru1, jnp.zeros((24, 1)).at[16, 0].set(1.0))
    gru = eqx.tree_at(lambda m: (m.weight_hh, m.bias_ih, m.bias_hn), gru, (
        jnp.zeros((24, 8)), jnp.zeros(24), jnp.zeros(8)
    ))  # fmt: skip
    opt2 = eqx.tree_at(lambda m: m.gru1, base, gru)
    _, state = opt2.update(g, opt2.init(g))
    # z = sigmoid(0) = 1/2: h1[0] = 0.5 * tanh(clip(g, -2, 2))
    np.testing.assert_allclose(state.slots[0], 0.5 * np.tanh([2.0, -1e-5, 0.0]), rtol=1e-6)


def _meta_loss(opt, dtype):
    """Outer loss after K updates of a quadratic with gradients that do not depend on the
    parameters (the revision feeds gradients in as stop-gradient inputs: a deliberately
    truncated meta-gradient that equals the true derivative only in that case)."""
    p = {"a": jnp.array([[0.5, -1.0], [2.0, 0.1]], dtype), "c": jnp.array([1.5, -0.3], dtype)}
    state = opt.init(p)
    for k in range(K):
        g = jax.tree.map(
            lambda x, k=k: jnp.linspace(-0.9 + 0.2 * k, 0.6, x.size, dtype=dtype).reshape(x.shape),
            p,
        )
        upd, state = opt.update(g, state, p)
        p = jax.tree.map(lambda a, b: a + b, p, upd)
    return sum(jnp.sum((x - 0.3) ** 2) for x in jax.tree.leaves(p))


def test_meta_gradient_matches_finite_differences():
    with jax.enable_x64(True):
        opt = _randomise(lo.Optim4RLRevised(0.2, key=jax.random.key(3)), jax.random.key(4))
        opt = jax.tree.map(lambda x: x.astype(jnp.float64) if eqx.is_array(x) else x, opt)
        arrays, static = eqx.partition(opt, eqx.is_array)

        def meta(a):
            return _meta_loss(eqx.combine(a, static), jnp.float64)

        f = jax.jit(meta)
        grad = jax.jit(jax.grad(meta))(arrays)
        # every part receives meta-gradient (through h1 and h2 of earlier steps too)
        for part in ("gru1", "mlp1", "gru2", "mlp2"):
            assert float(optax.tree.norm(getattr(grad, part))) > 1e-6, part
        check_directional_derivative(f, grad, arrays, seed=5, rtol=1e-6, floor=1e-6)


def test_vmap_over_meta_parameters_matches_members():
    members = [
        _randomise(lo.Optim4RLRevised(LR, key=jax.random.key(0)), jax.random.key(10 + i))
        for i in range(3)
    ]
    population = jax.tree.map(lambda *xs: jnp.stack(xs), *members)
    g = _grads(0)

    def two_steps(opt):
        state = opt.init(g)
        u1, state = opt.update(g, state)
        u2, state = opt.update(_grads(1), state)
        return u2, state.slots

    batched_u, batched_s = eqx.filter_jit(eqx.filter_vmap(two_steps))(population)
    for i, member in enumerate(members):
        u, s = eqx.filter_jit(two_steps)(member)
        member_u = jax.tree.map(lambda x, i=i: x[i], batched_u)
        np.testing.assert_allclose(_flat(member_u), _flat(u), rtol=1e-5, atol=1e-10)
        np.testing.assert_allclose(batched_s[i], s, rtol=1e-5, atol=1e-7)
    # members differ, so the test can tell them apart
    assert not np.allclose(batched_s[0], batched_s[1])


@eqx.filter_jit
@eqx.debug.assert_max_traces(max_traces=1)
def _traced_once(opt, g, state):
    return opt.update(g, state)


def test_new_meta_parameter_values_never_retrace():
    g = _grads(0)
    for seed in range(3):
        opt = lo.Optim4RLRevised(LR, key=jax.random.key(seed))
        _traced_once(opt, g, opt.init(g))


def test_with_learning_rate_scales_updates_and_optax_loop_descends():
    opt = _randomise(lo.Optim4RLRevised(LR, key=jax.random.key(0)), jax.random.key(6), 0.3)
    g = _grads(0)
    u1, _ = opt.update(g, opt.init(g))
    u2, _ = opt.with_learning_rate(2 * LR).update(g, opt.init(g))
    np.testing.assert_allclose(_flat(u2), 2 * _flat(u1), rtol=1e-6)
    # five lines of optax: minimise a quadratic from its random initialisation
    tx = lo.Optim4RLRevised(0.05, key=jax.random.key(1)).as_optax()
    params = {"x": jnp.array([1.0, -2.0, 0.5])}
    state = tx.init(params)

    @jax.jit
    def train_step(params, state):
        grads = jax.grad(lambda p: jnp.sum(p["x"] ** 2))(params)
        updates, state = tx.update(grads, state, params)
        return optax.apply_updates(params, updates), state

    for _ in range(60):
        params, state = train_step(params, state)
    assert float(jnp.max(jnp.abs(params["x"]))) < 0.1


def test_bad_input_is_refused_with_a_clear_message():
    opt = lo.Optim4RLRevised(LR, key=jax.random.key(0))
    state = opt.init(_params())
    with pytest.raises(ValueError, match="grads"):
        opt.update({"b": jnp.zeros(5)}, state)
    with pytest.raises(ValueError, match="16 slots"):
        opt.update(_params(), lo.LinearOptim(LR, key=jax.random.key(0)).init(_params()))
    # a plain dict as state: the package's own check (ValueError), or jaxtyping's
    # TypeCheckError (a TypeError) first when runtime type checking is on
    with pytest.raises((ValueError, TypeError), match="LearnedOptimizerState"):
        opt.update(_params(), {"slots": jnp.zeros((16, 15))})  # pyright: ignore[reportArgumentType]
    for kwargs, match in [
        ({"learning_rate": 0.0}, "learning_rate"),
        ({"learning_rate": LR, "hidden_size": 0}, "hidden_size"),
        ({"learning_rate": LR, "clip": -1.0}, "clip"),
        ({"learning_rate": LR, "eps": 0.0}, "eps"),
    ]:
        with pytest.raises(ValueError, match=match):
            lo.Optim4RLRevised(**kwargs, key=jax.random.key(0))
    with pytest.raises(ValueError, match="learning_rate"):
        opt.with_learning_rate(-1.0)


def test_nan_gradient_or_meta_parameter_is_detectable():
    opt = lo.Optim4RLRevised(LR, key=jax.random.key(0))
    g = _grads(0)
    g["b"] = g["b"].at[2].set(jnp.nan)
    upd, state = opt.update(g, opt.init(g))
    assert bool(lo.has_nonfinite(upd)) and bool(lo.has_nonfinite(state.slots))
    bad = eqx.tree_at(lambda m: m.mlp2.layers[0].bias, opt, jnp.array([jnp.nan]))
    assert bool(lo.has_nonfinite(bad))
    assert bool(lo.has_nonfinite(bad.update(_grads(0), bad.init(g))[0]))
