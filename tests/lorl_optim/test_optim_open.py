"""OPEN: published weights, single steps against NumPy, noise, zero mean, variants, errors."""

from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _optim_numpy_ref import SPEC_DEFAULT_OFFSETS, open_step, open_table, unpack

import lorl_optim as lo

WEIGHTS = Path("/work/shared/pretrained/open")  # only used when present (raw-file check)
NAMES = ("ant", "asterix", "breakout", "freeway", "gridworld", "spaceinvaders", "multi")


def _params(seed: int = 0):
    k = jax.random.split(jax.random.key(seed), 4)
    return {
        "actor": {"b": 0.1 * jax.random.normal(k[0], (4,)), "w": jax.random.normal(k[1], (3, 4))},
        "critic": {"b": 0.1 * jax.random.normal(k[2], (1,)), "w": jax.random.normal(k[3], (3, 1))},
    }


def _grads(seed: int):
    p = _params(seed + 100)
    # Gradients over several orders of magnitude, with one exact zero.
    scales = {"actor": {"b": 1e-3, "w": 0.5}, "critic": {"b": 2.0, "w": 1e-6}}
    g = jax.tree.map(lambda x, s: x * s, p, scales)
    g["actor"]["b"] = g["actor"]["b"].at[0].set(0.0)
    return g


CONTEXT = {
    "dormancy": {
        "actor": {"b": jnp.array([0.0, 0.5, 1.0, 2.5]), "w": jnp.array([0.0, 0.5, 1.0, 2.5])},
        "critic": {"b": jnp.array([1.0]), "w": jnp.array([1.0])},
    },
    "training_proportion": jnp.asarray(0.25),
    "batch_proportion": jnp.asarray(1.0 / 3.0),
    "layer_proportions": {
        "actor": {"b": jnp.asarray(0.5), "w": jnp.asarray(0.5)},
        "critic": {"b": jnp.asarray(1.0), "w": jnp.asarray(1.0)},
    },
    "actor_mask": {
        "actor": {"b": jnp.asarray(True), "w": jnp.asarray(True)},
        "critic": {"b": jnp.asarray(False), "w": jnp.asarray(False)},
    },
}


@eqx.filter_jit
def _step(opt, grads, state, params, context, key):
    return opt.update(grads, state, params, **context, key=key)


def _leaves(tree):
    return [np.asarray(x, np.float64) for x in jax.tree.leaves(tree)]


def _ref_two_steps(vec, f, h, params, key, *, critic_vec=None, no_features=False):
    """Two consecutive OPEN steps with the NumPy oracle (params updated in between)."""
    n_in, n_out = (14, 2) if no_features else (19, 3)
    table = open_table(n_in, f, h, n_out)
    w = unpack(vec, table)
    wc = None if critic_vec is None else unpack(critic_vec, table)
    p = _leaves(params)
    mom = [np.zeros((6, *x.shape)) for x in p]
    hid = [np.zeros((f, *x.shape)) for x in p]
    ctx = CONTEXT
    lp = [float(x) for x in jax.tree.leaves(ctx["layer_proportions"])]
    dorm = _leaves(ctx["dormancy"])
    actor = [bool(x) for x in jax.tree.leaves(ctx["actor_mask"])]
    outs = []
    for step, k in enumerate(jax.random.split(key, 2)):
        n = sum(x.size for x in p)
        flat_eps = np.asarray(jax.random.normal(k, (n,), jnp.float32), np.float64)
        eps, off = [], 0
        for x in p:
            eps.append(flat_eps[off : off + x.size].reshape(x.shape))
            off += x.size
        g = _leaves(_grads(step))
        upd, mom, hid = open_step(
            w,
            p,
            g,
            mom,
            hid,
            tp=0.25,
            bp=1.0 / 3.0,
            lp=lp,
            dorm=dorm,
            actor=actor,
            eps=eps,
            no_features=no_features,
            critic_weights=wc,
        )
        outs.append(upd)
        p = [a + b for a, b in zip(p, upd, strict=True)]
    return outs


def _lib_two_steps(opt, params, key):
    state = opt.init(params)
    outs = []
    for step, k in enumerate(jax.random.split(key, 2)):
        upd, state = _step(opt, _grads(step), state, params, CONTEXT, k)
        outs.append(_leaves(upd))
        params = jax.tree.map(lambda a, b: a + b, params, upd)
    return outs


def _assert_float32_close(ours, ref):
    """Float32 agreement with the float64 oracle: every element within 1e-5 of the largest
    update (zero-meaning subtracts nearly equal numbers, so tiny elements carry the
    absolute error of the large ones) plus 1e-5 relative."""
    for a, b in zip(ours, ref, strict=True):
        scale = max(float(np.max(np.abs(y))) for y in b)
        for x, y in zip(a, b, strict=True):
            np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-5 * scale)


def test_spec_offset_table():
    table = open_table(19, 8, 16, 3)
    for name, off in SPEC_DEFAULT_OFFSETS.items():
        assert table[name][0] == off
    assert table["__size__"][0] == 1211
    assert open_table(19, 16, 32, 3)["__size__"][0] == 3571


@pytest.mark.parametrize("name", NAMES)
def test_load_by_name_round_trip(name):
    opt = lo.load_open(name)
    size = 3571 if name == "multi" else 1211
    assert opt.flat_size == size
    assert opt.n_slots == (22 if name == "multi" else 14)
    raw = opt.to_flat()
    assert raw.shape == (size,) and raw.dtype == np.float32
    if WEIGHTS.exists():  # the shipped copy is byte-identical to the published file
        np.testing.assert_array_equal(raw, np.load(WEIGHTS / f"{name}_OPEN.npy"))
    assert sum(x.size for x in jax.tree.leaves(eqx.filter(opt, eqx.is_array))) == size


@pytest.mark.parametrize(
    ("spelling", "name"),
    [
        ("space_invaders", "spaceinvaders"),
        ("SpaceInvaders-MinAtar", "spaceinvaders"),
        ("spaceinvaders", "spaceinvaders"),
        ("Breakout-MinAtar", "breakout"),
        ("Asterix-MinAtar", "asterix"),
    ],
)
def test_every_spelling_of_an_environment_loads_its_weights(spelling, name):
    assert lo.pretrained_open_name(spelling) == name
    np.testing.assert_array_equal(lo.load_open(spelling).to_flat(), lo.load_open(name).to_flat())


def test_unknown_published_name_lists_the_available_ones():
    with pytest.raises(ValueError, match=r"No published OPEN weights named 'pong'.*breakout"):
        lo.load_open("pong")


def test_hand_derived_gru_values():
    """Pinned values derived by hand from the raw breakout vector and the offset table.

    Zero hidden state, input x = e_0 + 2 e_18 (parameter feature 1, dormancy 2). With
    h = 0 the GRU reduces to h' = (1 - z) * tanh(x W_in + b_in + r * b_hn).
    """
    vec = lo.load_open("breakout").to_flat().astype(np.float64)
    w = unpack(vec, open_table(19, 8, 16, 3))
    x = np.zeros(19)
    x[0], x[18] = 1.0, 2.0
    r = 1 / (1 + np.exp(-(x @ w["gru/ir/kernel"] + w["gru/ir/bias"])))
    z = 1 / (1 + np.exp(-(x @ w["gru/iz/kernel"] + w["gru/iz/bias"])))
    n = np.tanh(x @ w["gru/in/kernel"] + w["gru/in/bias"] + r * w["gru/hn/bias"])
    by_hand = (1 - z) * n
    # The same three numbers written out: row 0 and row 18 of each input kernel.
    assert w["gru/ir/kernel"][0, 0] == vec[368 + 0] and w["gru/ir/kernel"][18, 0] == vec[368 + 144]
    # Literal pins (computed once from the file with the formula above): regression guard.
    np.testing.assert_allclose(by_hand[:3], PINNED_H[:3], rtol=1e-5)

    opt = lo.load_open("breakout")
    ours = opt.network.gru(jnp.asarray(x, jnp.float32)[:, None], jnp.zeros((8, 1)))[:, 0]
    np.testing.assert_allclose(np.asarray(ours), by_hand, rtol=2e-5, atol=1e-6)


# Computed once with the formula of test_hand_derived_gru_values from the published
# breakout file (float64): a regression pin for the shipped weights.
PINNED_H = np.array([-0.06136933, -0.56393589, 0.65826116])


@pytest.mark.parametrize("name", ["breakout", "multi"])
def test_two_steps_match_numpy(name):
    opt = lo.load_open(name)
    params, key = _params(), jax.random.key(3)
    ours = _lib_two_steps(opt, params, key)
    ref = _ref_two_steps(opt.to_flat(), opt.hidden_size, opt.mlp_width, params, key)
    _assert_float32_close(ours, ref)


def test_updates_zero_mean_and_deterministic():
    opt = lo.load_open("asterix")
    params = _params()
    state = opt.init(params)
    u1, _ = _step(opt, _grads(0), state, params, CONTEXT, jax.random.key(7))
    u2, _ = _step(opt, _grads(0), state, params, CONTEXT, jax.random.key(7))
    u3, _ = _step(opt, _grads(0), state, params, CONTEXT, jax.random.key(8))
    flat1 = np.concatenate([np.ravel(x) for x in jax.tree.leaves(u1)])
    assert abs(flat1.mean()) < 1e-6 * np.abs(flat1).max()
    # Deterministic given the key.
    for a, b in zip(jax.tree.leaves(u1), jax.tree.leaves(u2), strict=True):
        np.testing.assert_array_equal(a, b)
    # Another key changes the actor; on the critic it only shifts the common mean.
    diff = jax.tree.map(lambda a, b: np.asarray(a) - np.asarray(b), u1, u3)
    critic = np.concatenate([np.ravel(x) for x in jax.tree.leaves(diff["critic"])])
    actor = np.concatenate([np.ravel(x) for x in jax.tree.leaves(diff["actor"])])
    np.testing.assert_allclose(critic, critic[0], atol=1e-9)
    assert np.std(actor) > 100 * max(np.std(critic), 1e-12)


def test_no_noise_without_actor_leaves():
    opt = lo.load_open("breakout")
    params = _params()
    ctx = dict(CONTEXT, actor_mask=jax.tree.map(lambda _: jnp.asarray(False), params))
    state = opt.init(params)
    u1, _ = _step(opt, _grads(0), state, params, ctx, jax.random.key(0))
    u2, _ = _step(opt, _grads(0), state, params, ctx, jax.random.key(1))
    for a, b in zip(jax.tree.leaves(u1), jax.tree.leaves(u2), strict=True):
        np.testing.assert_array_equal(a, b)


def test_separated_matches_numpy():
    actor_vec = lo.load_open("breakout").to_flat()
    critic_vec = lo.load_open("asterix").to_flat()
    opt = lo.OPEN(separated=True, key=jax.random.key(0)).from_flat(
        np.concatenate([actor_vec, critic_vec])
    )
    assert opt.flat_size == 2 * 1211
    params, key = _params(), jax.random.key(5)
    ours = _lib_two_steps(opt, params, key)
    ref = _ref_two_steps(actor_vec, 8, 16, params, key, critic_vec=critic_vec)
    _assert_float32_close(ours, ref)


def test_no_features_matches_numpy():
    template = lo.OPEN(no_features=True, key=jax.random.key(0))
    assert template.n_inputs == 14 and template.n_outputs == 2
    vec = np.asarray(jax.random.normal(jax.random.key(1), (template.flat_size,))) * 0.5
    opt = template.from_flat(vec)
    params, key = _params(), jax.random.key(2)
    state = opt.init(params)
    ours = []
    p = params
    for step in range(2):
        upd, state = _step(opt, _grads(step), state, None, {}, None)
        ours.append(_leaves(upd))
        p = jax.tree.map(lambda a, b: a + b, p, upd)
    ref = _ref_two_steps(vec, 8, 16, params, key, no_features=True)
    _assert_float32_close(ours, ref)


@pytest.mark.parametrize(
    ("flag", "context_name", "n_inputs", "n_outputs"),
    [
        ("use_training_proportion", "training_proportion", 18, 3),
        ("use_batch_proportion", "batch_proportion", 18, 3),
        ("use_layer_proportion", "layer_proportions", 18, 3),
        ("use_dormancy", "dormancy", 18, 3),
        ("use_stochasticity", "key", 19, 2),
    ],
)
def test_feature_ablations(flag, context_name, n_inputs, n_outputs):
    flags: dict[str, Any] = {flag: False}
    opt = lo.OPEN(**flags, key=jax.random.key(0))
    assert (opt.n_inputs, opt.n_outputs) == (n_inputs, n_outputs)
    params = _params()
    context = {k: v for k, v in CONTEXT.items() if k != context_name}
    key = None if context_name == "key" else jax.random.key(0)
    upd, _ = opt.update(_grads(0), opt.init(params), params, **context, key=key)
    assert not bool(lo.has_nonfinite(upd))
    # The full optimizer does need that context.
    full = lo.OPEN(key=jax.random.key(0))
    with pytest.raises(ValueError, match=context_name):
        full.update(_grads(0), full.init(params), params, **context, key=key)


def test_larger_sizes():
    opt = lo.OPEN.larger(key=jax.random.key(0))
    assert opt.flat_size == 3571 and opt.n_slots == 22
    assert lo.OPEN(key=jax.random.key(0)).flat_size == 1211


def test_chunked_equals_unchunked():
    big = lo.load_open("gridworld")
    small = lo.load_open("gridworld", chunk_size=7)  # 20 params -> 3 chunks, 1 padded
    params = _params()
    a, _ = _step(big, _grads(0), big.init(params), params, CONTEXT, jax.random.key(0))
    b, _ = _step(small, _grads(0), small.init(params), params, CONTEXT, jax.random.key(0))
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_allclose(x, y, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("n", [1, 1023, 1024, 1025, 4097, 60103])
def test_actor_noise_is_the_documented_draw(n):
    """The fast noise draw equals `jax.random.normal(key, (1, n))` (typed and raw keys,
    under jit and vmap), for sizes below, at and above the 1024-wide rows."""
    from lorl_optim._open import actor_noise

    for key in (jax.random.key(5), jax.random.PRNGKey(5)):
        want = jax.random.normal(key, (1, n))
        got = jax.jit(actor_noise, static_argnums=(1, 2))(key, n, jnp.float32)
        np.testing.assert_array_equal(got, want)
    keys = jax.random.split(jax.random.key(6), 3)
    got = jax.vmap(lambda k: actor_noise(k, n, jnp.float32))(keys)
    want = jax.vmap(lambda k: jax.random.normal(k, (1, n)))(keys)
    np.testing.assert_array_equal(got, want)


def test_large_odd_tree_chunk_sizes_agree():
    """Several full chunks, partial tails, a scalar leaf and small leaves: the default chunk
    equals a single-chunk-per-leaf run and a tiny chunk, noise included (n > 1024, odd)."""
    k = jax.random.split(jax.random.key(11), 6)
    params = {
        "a": jax.random.normal(k[0], (67, 71)),  # 4757 columns: 2 full chunks + tail
        "b": jax.random.normal(k[1], (71,)),
        "c": jax.random.normal(k[2], ()),
        "d": jax.random.normal(k[3], (3, 5)),
    }
    grads = jax.tree.map(
        lambda x, kk: 1e-2 * jax.random.normal(kk, x.shape),
        params,
        {"a": k[4], "b": k[5], "c": k[0], "d": k[1]},
    )
    ctx = {
        "dormancy": jax.tree.map(lambda x: jnp.full(x.shape[-1:], 0.5), params),
        "training_proportion": jnp.asarray(0.25),
        "batch_proportion": jnp.asarray(0.5),
        "layer_proportions": jax.tree.map(lambda _: jnp.asarray(0.5), params),
        "actor_mask": {
            "a": jnp.asarray(True),
            "b": jnp.asarray(False),
            "c": jnp.asarray(True),
            "d": jnp.asarray(False),
        },
    }
    outs = []
    for chunk in (None, 8192, 100):
        opt = (
            lo.load_open("breakout")
            if chunk is None
            else lo.load_open("breakout", chunk_size=chunk)
        )
        state = opt.init(params)
        _, state = _step(opt, grads, state, params, ctx, jax.random.key(0))
        upd, state = _step(opt, grads, state, params, ctx, jax.random.key(1))
        outs.append((upd, state.slots))
    for upd, slots in outs[1:]:
        for x, y in zip(jax.tree.leaves(outs[0][0]), jax.tree.leaves(upd), strict=True):
            np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-9)
        # hidden states are O(1): the per-tensor sums differ in summation order only
        np.testing.assert_allclose(outs[0][1], slots, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("separated", [False, True])
def test_per_element_context_equals_per_leaf(separated):
    """Layer proportions and actor mask given per element (arrays broadcast to each leaf)
    give the same update as a scalar per leaf (the folded-into-weights path)."""
    opt = lo.OPEN(separated=separated, key=jax.random.key(0))
    params = _params()
    expand = lambda tree: jax.tree.map(lambda c, p: jnp.broadcast_to(c, p.shape), tree, params)
    ctx = dict(
        CONTEXT,
        layer_proportions=expand(CONTEXT["layer_proportions"]),
        actor_mask=expand(CONTEXT["actor_mask"]),
    )
    state = opt.init(params)
    a, _ = _step(opt, _grads(0), state, params, CONTEXT, jax.random.key(0))
    b, _ = _step(opt, _grads(0), state, params, ctx, jax.random.key(0))
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-9)


# ------------------------------------------------------------------------------ errors


def test_missing_context_messages():
    opt = lo.load_open("breakout")
    params = _params()
    state = opt.init(params)
    context = {k: v for k, v in CONTEXT.items() if k != "dormancy"}
    with pytest.raises(ValueError, match=r"dormancy.*broadcastable.*\(out,\)"):
        opt.update(_grads(0), state, params, **context, key=jax.random.key(0))
    with pytest.raises(ValueError, match="params"):
        opt.update(_grads(0), state, None, **CONTEXT, key=jax.random.key(0))
    with pytest.raises(ValueError, match="PRNG key"):
        opt.update(_grads(0), state, params, **CONTEXT)
    bad_dorm = dict(CONTEXT, dormancy=jax.tree.map(lambda x: jnp.ones((7,)), params))
    with pytest.raises(ValueError, match="does not broadcast"):
        opt.update(_grads(0), state, params, **bad_dorm, key=jax.random.key(0))
    with pytest.raises(ValueError, match="same structure"):
        opt.update(
            _grads(0), state, params, **dict(CONTEXT, actor_mask=True), key=jax.random.key(0)
        )


def test_grads_tree_mismatch():
    opt = lo.load_open("breakout")
    params = _params()
    state = opt.init(params)
    with pytest.raises(ValueError, match="does not match the tree"):
        opt.update({"actor": _grads(0)["actor"]}, state, params, **CONTEXT, key=jax.random.key(0))
    wrong_shape = jax.tree.map(lambda x: x, _grads(0))
    wrong_shape["critic"]["w"] = jnp.zeros((3, 2))
    with pytest.raises(ValueError, match=r"shape \(3, 2\).*\(3, 1\)"):
        opt.update(wrong_shape, state, params, **CONTEXT, key=jax.random.key(0))
    other_state = lo.Optim4RL(1e-3, key=jax.random.key(0)).init(params)  # 16 slots, not 14
    with pytest.raises(ValueError, match="14 slots per parameter, got 16"):
        opt.update(_grads(0), other_state, params, **CONTEXT, key=jax.random.key(0))


def test_weight_loading_errors():
    with pytest.raises(ValueError, match="available: ant, asterix"):
        lo.load_open("pong")
    template = lo.OPEN(key=jax.random.key(0))
    with pytest.raises(ValueError, match=r"expects shape \(1211,\)"):
        template.from_flat(np.zeros(1210, np.float32))
    with pytest.raises(ValueError, match=r"expects shape \(3571,\)"):
        lo.OPEN.larger(key=jax.random.key(0)).from_flat(np.zeros(1211, np.float32))
    vec = lo.load_open("breakout").to_flat()
    vec[17] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        template.from_flat(vec)


def test_nan_propagates_and_is_detectable():
    """Documented behaviour: NaN in gradients or meta-parameters propagates to the updates
    (zero-meaning spreads it to every parameter); `has_nonfinite` detects it."""
    opt = lo.load_open("breakout")
    params = _params()
    state = opt.init(params)
    grads = _grads(0)
    grads["critic"]["w"] = grads["critic"]["w"].at[0, 0].set(jnp.nan)
    assert bool(lo.has_nonfinite(grads))
    upd, new_state = _step(opt, grads, state, params, CONTEXT, jax.random.key(0))
    assert bool(lo.has_nonfinite(upd)) and bool(lo.has_nonfinite(new_state))
    assert all(bool(jnp.all(jnp.isnan(x))) for x in jax.tree.leaves(upd))
    bad = eqx.tree_at(lambda o: o.network.gru.bias_hn, opt, jnp.full((8,), jnp.nan))
    assert bool(lo.has_nonfinite(bad)) and not bool(lo.has_nonfinite(opt))
    upd, _ = _step(bad, _grads(0), state, params, CONTEXT, jax.random.key(0))
    assert bool(lo.has_nonfinite(upd))


def test_context_as_one_structure_equals_keywords():
    """`update(context=OptimizerContext(...))`, the keywords, a mix of both, `step` and
    the optax adapter give the same update; a field given twice is an error."""
    opt = lo.load_open("breakout")
    params, grads, key = _params(), _grads(0), jax.random.key(7)
    state = opt.init(params)
    want, _ = opt.update(grads, state, params, **CONTEXT, key=key)
    ctx = lo.OptimizerContext(**CONTEXT)
    part = lo.OptimizerContext(dormancy=CONTEXT["dormancy"], actor_mask=CONTEXT["actor_mask"])
    rest = {k: v for k, v in CONTEXT.items() if k not in ("dormancy", "actor_mask")}
    tx = opt.as_optax()
    runs = {
        "context": opt.update(grads, state, params, context=ctx, key=key)[0],
        "mixed": opt.update(grads, state, params, context=part, **rest, key=key)[0],
        "step": opt.step(grads, state, params, ctx, key=key)[0],
        "optax": tx.update(grads, tx.init(params), params, context=ctx, key=key)[0],
    }
    for name, got in runs.items():
        for a, b in zip(_leaves(want), _leaves(got), strict=True):
            np.testing.assert_array_equal(a, b, err_msg=name)
    with pytest.raises(ValueError, match="both in `context` and as keywords"):
        opt.update(grads, state, params, context=ctx, dormancy=CONTEXT["dormancy"], key=key)


def test_noise_weights_are_the_updates_dependence_on_the_noise():
    """`noise_weights` is the delta of u_actor += alpha3 * delta * eps: two steps from the
    same state with two keys differ by exactly alpha3 * delta * (eps1 - eps2), recentred
    (OPEN's updates are zero-mean); the critic's weights are 0."""
    from lorl_optim._open import actor_noise

    opt = lo.load_open("breakout").with_backend("xla")
    params, grads = _params(), _grads(0)
    state = opt.init(params)
    delta = opt.noise_weights(grads, state, params, **CONTEXT, key=jax.random.key(9))
    assert all(np.all(x == 0) for x in jax.tree.leaves(delta["critic"]))
    assert all(np.any(x != 0) for x in jax.tree.leaves(delta["actor"]))
    k1, k2 = jax.random.key(1), jax.random.key(2)
    u1, _ = _step(opt, grads, state, params, CONTEXT, k1)
    u2, _ = _step(opt, grads, state, params, CONTEXT, k2)
    n = sum(x.size for x in jax.tree.leaves(params))
    d_eps = np.asarray(actor_noise(k1, n, jnp.float32) - actor_noise(k2, n, jnp.float32))[0]
    d = np.concatenate([np.ravel(x) for x in _leaves(delta)]) * opt.alpha3 * d_eps
    want = -(d - d.mean())  # updates are -u, u zero-mean
    got = np.concatenate([np.ravel(a - b) for a, b in zip(_leaves(u1), _leaves(u2), strict=True)])
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-9)
    # the same through an OptimizerContext; no stochasticity -> a clear error
    again = opt.noise_weights(grads, state, params, context=lo.OptimizerContext(**CONTEXT))
    for a, b in zip(_leaves(again), _leaves(delta), strict=True):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="no learned stochasticity"):
        lo.OPEN(use_stochasticity=False, key=jax.random.key(0)).noise_weights(grads, state, params)
    with pytest.raises(ValueError, match="unknown context"):
        opt.noise_weights(grads, state, params, dormancy_tau=1.0)
