"""The fused CPU kernel: approximation error bounds, fused vs XLA vs the NumPy oracle for
OPEN (all variants) and Optim4RL on odd trees, gradients and vmap through the fused path,
thread-count independence, concurrent calls, the compiler fallback.

The kernel must build on CI (Debian with g++): these tests fail, not skip, when it does
not, unless LORL_OPTIM_SKIP_FUSED_TESTS=1 says the machine has no compiler on purpose.
"""

import math
import os
import shutil
import time
import warnings
from concurrent.futures import ThreadPoolExecutor

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _optim_numpy_ref import open_step, open_table, optim4rl_step, unpack

import lorl_optim as lo
from lorl_optim import _fused

if os.environ.get("LORL_OPTIM_SKIP_FUSED_TESTS") == "1":
    pytest.skip("LORL_OPTIM_SKIP_FUSED_TESTS=1", allow_module_level=True)


def test_kernel_builds():
    assert _fused.available(), f"fused kernel unavailable: {_fused.error()!r}"


# ----------------------------------------------------------------- approximations

# Maximal errors measured against float64 on 4M points per function (docs/optim/fused.md);
# the bounds below leave ~30% headroom.
RNG = np.random.default_rng(0)


def _check(op, x, reference, bound):
    y = np.asarray(_fused.math_op(jnp.asarray(x, jnp.float32), op), np.float64)
    err = np.abs(y - reference(np.asarray(x, np.float32).astype(np.float64)))
    assert np.all(err <= bound), (op, float(np.max(err / np.maximum(bound, 1e-300))))


def test_approximation_error_bounds():
    x = RNG.uniform(-87.0, 88.0, 200_000)
    _check("exp", x, np.exp, 3e-7 * np.exp(x))
    x = np.exp(RNG.uniform(np.log(1e-37), np.log(3e38), 200_000))
    x = np.concatenate([x, np.linspace(0.5, 2.0, 20_000)])
    _check("log", x, np.log, 3e-7 * np.maximum(1.0, np.abs(np.log(x))))
    x = RNG.uniform(-30.0, 30.0, 200_000)
    _check("sigmoid", x, lambda v: 1.0 / (1.0 + np.exp(-v)), 1.5e-7)
    _check("tanh", x, np.tanh, 2.5e-7)
    x = np.exp(RNG.uniform(np.log(1e-30), np.log(1e30), 200_000))
    _check("rsqrt", x, lambda v: 1.0 / np.sqrt(v), 2e-7 / np.sqrt(x))


def test_exp_limits_are_xla_s():
    """exp overflows to inf, underflows to 0 and propagates NaN as XLA does (AVX-512
    path; sigmoid and tanh then saturate exactly)."""
    x = np.array([1e30, -1e30, np.inf, -np.inf, np.nan, 89.0, 88.7, -88.0, -200.0], np.float32)
    got = np.asarray(_fused.math_op(jnp.asarray(x), "exp"))
    want = np.asarray(jnp.exp(jnp.asarray(x)))
    np.testing.assert_array_equal(np.isinf(got), np.isinf(want))
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_array_equal(got == 0, want == 0)
    sig = np.asarray(_fused.math_op(jnp.asarray(x), "sigmoid"))
    np.testing.assert_array_equal(sig[[0, 1, 2, 3]], [1.0, 0.0, 1.0, 0.0])
    tanh = np.asarray(_fused.math_op(jnp.asarray(x), "tanh"))
    np.testing.assert_array_equal(tanh[[0, 1, 2, 3]], [1.0, -1.0, 1.0, -1.0])


# ----------------------------------------------------------------- actor noise


@pytest.mark.parametrize("seed", [0, 12345])
def test_kernel_noise_is_jax_random_normal(seed):
    """The kernel draws OPEN's actor noise itself: its random bits are exactly
    `jax.random.bits`, its values `jax.random.normal` to float32 rounding (the erfinv
    and log approximations), over 300k values (reaching |z| ~ 4.5, the tail branch)."""
    assert _fused.available()
    n = 300_001
    key = jax.random.key(seed)
    key_data = _fused.kernel_noise_key(key)
    assert key_data is not None
    bits, z = jax.jit(_fused.normal, static_argnums=1)(key_data, n)
    np.testing.assert_array_equal(bits, jax.random.bits(key, (n,), jnp.uint32))
    want = np.asarray(jax.random.normal(key, (n,)), np.float64)
    z = np.asarray(z, np.float64)
    assert np.max(np.abs(want)) > 4.0
    # jax.random.normal's own float32 erfinv is off by up to 5.5e-6 relative in the
    # tails (measured), so the two agree to 1e-5 relative ...
    np.testing.assert_allclose(z, want, rtol=1e-5, atol=1e-7)
    # ... and the kernel's value is within 4e-7 relative (measured 2.7e-7) of the exact
    # sqrt(2) erfinv(u) of the same uniform u, found by Newton steps on erf in float64.
    floats = (np.asarray(bits) >> 9 | 0x3F800000).astype(np.uint32).view(np.float32) - 1
    u = (floats * np.float32(2) + np.nextafter(np.float32(-1), np.float32(0))).astype(float)
    erf = np.vectorize(math.erf)
    exact = want.copy()
    for _ in range(3):
        exact -= (erf(exact / np.sqrt(2)) - u) / (np.sqrt(2 / np.pi) * np.exp(-(exact**2) / 2))
    np.testing.assert_allclose(z, exact, rtol=4e-7, atol=1e-9)
    # A raw uint32 key gives the same words.
    raw = jax.random.key_data(key)
    np.testing.assert_array_equal(_fused.kernel_noise_key(raw), raw)


def test_kernel_noise_statistics():
    """Fixed-seed sample statistics of the kernel's draw (1M values): mean, variance,
    skewness and excess kurtosis of N(0, 1) within ~5 standard errors, and the tail
    fractions P(|z| > 1, 2, 3) within 5 binomial standard errors."""
    assert _fused.available()
    n = 1 << 20
    key_data = _fused.kernel_noise_key(jax.random.key(2026))
    assert key_data is not None
    _, z = _fused.normal(key_data, n)
    z = np.asarray(z, np.float64)
    assert abs(np.mean(z)) < 5 / np.sqrt(n)
    assert abs(np.var(z) - 1) < 5 * np.sqrt(2 / n)
    assert abs(np.mean(z**3)) < 5 * np.sqrt(15 / n)
    assert abs(np.mean(z**4) - 3) < 5 * np.sqrt(96 / n)
    for t in (1.0, 2.0, 3.0):
        p = math.erfc(t / math.sqrt(2))
        assert abs(np.mean(np.abs(z) > t) - p) < 5 * np.sqrt(p * (1 - p) / n), t


def test_kernel_noise_only_where_the_generator_allows():
    """Another PRNG implementation, or non-partitionable threefry, falls back to
    drawing the noise in JAX (the kernel cannot reproduce those bits); the update is
    still the XLA path's."""
    assert _fused.kernel_noise_key(jax.random.key(0, impl="rbg")) is None
    with jax.threefry_partitionable(False):
        assert _fused.kernel_noise_key(jax.random.key(0)) is None
    params = _tree(0, 1.0, small=True)
    ctx = _context(params)
    opt = _randomise(lo.OPEN(key=jax.random.key(0)), jax.random.key(1))
    key = jax.random.key(3, impl="rbg")
    res = []
    for backend in ("fused", "xla"):
        o = opt.with_backend(backend)
        res.append(o.update(_grads(0, small=True), o.init(params), params, **ctx, key=key))
    _assert_close(([res[0][0]], res[0][1]), ([res[1][0]], res[1][1]))


# ----------------------------------------------------------------- OPEN

# Odd sizes: a scalar, an empty leaf, leaves that are not multiples of the 16-lane vector,
# and one leaf spanning several 1,024-column pieces of work (kernels.cc, piece_columns).
SHAPES = {"a": (), "b": (0,), "c": (17,), "d": (33, 7), "e": (4099,)}
ACTOR = {"a": True, "b": True, "c": True, "d": False, "e": False}


def _tree(seed, scale, small=False):
    """The odd tree; `small` drops the large leaf (for the costlier gradient tests)."""
    shapes = {k: v for k, v in SHAPES.items() if not (small and k == "e")}
    keys = jax.random.split(jax.random.key(seed), len(shapes))
    return {
        k: scale * jax.random.normal(key, shape)
        for key, (k, shape) in zip(keys, shapes.items(), strict=True)
    }


def _grads(step, small=False):
    g = _tree(100 + step, 1e-2, small)
    g["d"] = g["d"].at[0, 0].set(0.0).at[1, 1].set(3.0)  # an exact zero and a large value
    return g


def _context(params):
    return {
        "dormancy": {
            k: jnp.linspace(0.0, 2.0, x.shape[-1]) if x.ndim else jnp.asarray(0.7)
            for k, x in params.items()
        },
        "training_proportion": jnp.asarray(0.3),
        "batch_proportion": jnp.asarray(0.6),
        "layer_proportions": {k: jnp.asarray(i / 4) for i, k in enumerate(params)},
        "actor_mask": {k: jnp.asarray(ACTOR[k]) for k in params},
    }


def _randomise(opt, key, scale=0.3):
    arrays, static = eqx.partition(opt, eqx.is_array)
    leaves, treedef = jax.tree.flatten(arrays)
    keys = jax.random.split(key, len(leaves))
    new = [scale * jax.random.normal(k, x.shape) for k, x in zip(keys, leaves, strict=True)]
    return eqx.combine(jax.tree.unflatten(treedef, new), static)


@eqx.filter_jit
def _open_step(opt, grads, state, params, context, key):
    return opt.update(grads, state, params, **context, key=key)


def _run_open(opt, steps=3):
    params = _tree(0, 1.0)
    ctx = _context(params)
    state = opt.init(params)
    outs = []
    for step in range(steps):
        upd, state = _open_step(opt, _grads(step), state, params, ctx, jax.random.key(step))
        outs.append(upd)
        params = jax.tree.map(jnp.add, params, upd)
    return outs, state


def _max_abs(tree):
    return max(float(jnp.max(jnp.abs(x))) for x in jax.tree.leaves(tree) if x.size)


# Fused vs XLA, both float32: the approximations (<= 3e-7 relative, test above) and a
# different summation order of the per-tensor statistics change results at the level of
# float32 rounding of the network's pre-activations; through three recurrent steps and
# zero-meaning (which subtracts nearly equal numbers) we allow 2e-5 of the largest update
# per element and 1e-5 relative (the NumPy-oracle tolerance of test_optim_open.py) and
# 2e-5 absolute on the state (momenta and GRU hidden values are O(1)).
def _assert_close(fused, xla):
    outs_f, state_f = fused
    outs_x, state_x = xla
    for uf, ux in zip(outs_f, outs_x, strict=True):
        scale = _max_abs(ux)
        for a, b in zip(jax.tree.leaves(uf), jax.tree.leaves(ux), strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=2e-5 * scale)
    np.testing.assert_allclose(state_f.slots, state_x.slots, rtol=1e-5, atol=2e-5)


VARIANTS = {
    "default": {},
    "larger": {"hidden_size": 16, "mlp_width": 32},
    "separated": {"separated": True},
    "no_features": {"no_features": True},
    "no_training_proportion": {"use_training_proportion": False},
    "no_batch_proportion": {"use_batch_proportion": False},
    "no_layer_proportion": {"use_layer_proportion": False},
    "no_dormancy": {"use_dormancy": False},
    "no_stochasticity": {"use_stochasticity": False},
}


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_open_fused_matches_xla(variant):
    opt = _randomise(lo.OPEN(key=jax.random.key(0), **VARIANTS[variant]), jax.random.key(1))
    fused = _run_open(opt.with_backend("fused"))
    xla = _run_open(opt.with_backend("xla"))
    _assert_close(fused, xla)
    assert _max_abs(fused[0][-1]) > 0


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the oracle's mean over the empty leaf
def test_open_fused_matches_numpy_oracle():
    """Three fused steps of the published breakout OPEN against the float64 oracle."""
    opt = lo.load_open("breakout").with_backend("fused")
    params = _tree(0, 1.0)
    ctx = _context(params)
    outs, _ = _run_open(opt)
    w = unpack(opt.to_flat(), open_table(19, 8, 16, 3))
    p = [np.asarray(x, np.float64) for x in jax.tree.leaves(params)]
    mom = [np.zeros((6, *x.shape)) for x in p]
    hid = [np.zeros((8, *x.shape)) for x in p]
    lp = [float(x) for x in jax.tree.leaves(ctx["layer_proportions"])]
    dorm = [np.asarray(x, np.float64) for x in jax.tree.leaves(ctx["dormancy"])]
    actor = [bool(x) for x in jax.tree.leaves(ctx["actor_mask"])]
    n = sum(x.size for x in p)
    for step, ours in enumerate(outs):
        flat_eps = np.asarray(jax.random.normal(jax.random.key(step), (n,)), np.float64)
        eps, off = [], 0
        for x in p:
            eps.append(flat_eps[off : off + x.size].reshape(x.shape))
            off += x.size
        g = [np.asarray(x, np.float64) for x in jax.tree.leaves(_grads(step))]
        upd, mom, hid = open_step(
            w, p, g, mom, hid, tp=0.3, bp=0.6, lp=lp, dorm=dorm, actor=actor, eps=eps
        )
        scale = max(float(np.max(np.abs(u))) for u in upd if u.size)
        for a, b in zip(jax.tree.leaves(ours), upd, strict=True):
            np.testing.assert_allclose(np.asarray(a, np.float64), b, rtol=1e-5, atol=2e-5 * scale)
        p = [a + b for a, b in zip(p, upd, strict=True)]


def test_open_per_element_context():
    """Per-element layer proportions and actor mask (rows instead of per-leaf tables)."""
    opt = _randomise(lo.OPEN(key=jax.random.key(0)), jax.random.key(2))
    params = _tree(0, 1.0)
    ctx = _context(params)
    ctx["layer_proportions"] = {k: jnp.full(x.shape, 0.25) for k, x in params.items()}
    ctx["actor_mask"] = {k: jnp.full(x.shape, ACTOR[k]) for k, x in params.items()}
    res = {}
    for backend in ("fused", "xla"):
        o = opt.with_backend(backend)
        res[backend] = _open_step(o, _grads(0), o.init(params), params, ctx, jax.random.key(5))
    _assert_close(([res["fused"][0]], res["fused"][1]), ([res["xla"][0]], res["xla"][1]))


def test_thread_count_does_not_change_results(monkeypatch):
    opt = lo.load_open("breakout").with_backend("fused")
    results = []
    for threads in ("1", "2", ""):
        monkeypatch.setenv("LORL_OPTIM_FUSED_THREADS", threads)
        outs, state = _run_open(opt, steps=2)
        results.append([np.asarray(x) for x in (*jax.tree.leaves(outs), state.slots)])
    for other in results[1:]:
        for a, b in zip(results[0], other, strict=True):
            np.testing.assert_array_equal(a, b)


# Leaves of 9,000, 5, 0, 9,000 and 9,001 columns: three segments of `lorl_open_step`
# (kernels.cc, SEGMENT_COLUMNS = 8,192: [a], [b, c, d], [e]), each with pieces claimed
# from both ends by two threads.
SEGMENT_SHAPES = {"a": (9000,), "b": (5,), "c": (0,), "d": (30, 300), "e": (9001,)}


def _segment_run(opt, jit=True, steps=2):
    keys = jax.random.split(jax.random.key(11), len(SEGMENT_SHAPES))
    params = {
        k: jax.random.normal(key, shape)
        for key, (k, shape) in zip(keys, SEGMENT_SHAPES.items(), strict=True)
    }
    ctx = {
        "dormancy": {k: jnp.linspace(0.0, 2.0, x.shape[-1]) for k, x in params.items()},
        "training_proportion": jnp.asarray(0.3),
        "batch_proportion": jnp.asarray(0.6),
        "layer_proportions": {k: jnp.asarray(i / 4) for i, k in enumerate(params)},
        "actor_mask": {k: jnp.asarray(k in ("a", "b")) for k in params},
    }
    state = opt.init(params)
    outs = []
    for step in range(steps):
        grads = jax.tree.map(lambda x, s=step: 1e-2 * jnp.roll(x, s + 1), params)
        if jit:
            upd, state = _open_step(opt, grads, state, params, ctx, jax.random.key(step))
        else:
            upd, state = opt.update(grads, state, params, **ctx, key=jax.random.key(step))
        outs.append(upd)
        params = jax.tree.map(jnp.add, params, upd)
    return outs, state


def _as_arrays(run):
    outs, state = run
    return [np.asarray(x) for x in (*jax.tree.leaves(outs), state.slots)]


def test_several_segments(monkeypatch):
    """A tree whose columns form several segments of the kernel (both phases run segment
    by segment): fused matches XLA, and the results are the same bits with one thread
    and with two, and with phase 1's log features kept for phase 2 or recomputed."""
    opt = _randomise(lo.OPEN(key=jax.random.key(0)), jax.random.key(3))
    fused = opt.with_backend("fused")
    _assert_close(_segment_run(fused), _segment_run(opt.with_backend("xla")))
    runs = []
    for threads in ("1", "2"):
        monkeypatch.setenv("LORL_OPTIM_FUSED_THREADS", threads)
        runs.append(_as_arrays(_segment_run(fused)))
    eager = _as_arrays(_segment_run(fused, jit=False))
    monkeypatch.setattr(_fused._calls, "LOG_CACHE_MAX_COLUMNS", 0)  # read when the call is traced
    recomputed = _as_arrays(_segment_run(fused, jit=False))
    for first, second in ((runs[0], runs[1]), (eager, recomputed)):
        for a, b in zip(first, second, strict=True):
            np.testing.assert_array_equal(a, b)


def test_concurrent_calls_give_the_sequential_results():
    """Several kernel calls at once (Python threads; XLA may also run two custom calls at
    once, and every call schedules helpers on XLA's thread pool): each result is
    bit-identical to the same call made alone."""
    opt = lo.load_open("breakout").with_backend("fused")
    params = _tree(0, 1.0)
    ctx = _context(params)

    def one(step):
        upd, state = _open_step(
            opt, _grads(step), opt.init(params), params, ctx, jax.random.key(step)
        )
        return [np.asarray(x) for x in (*jax.tree.leaves(upd), state.slots)]

    alone = [one(step) for step in range(4)]
    for _ in range(3):
        with ThreadPoolExecutor(4) as pool:
            together = list(pool.map(one, range(4)))
        for want, got in zip(alone, together, strict=True):
            for a, b in zip(want, got, strict=True):
                np.testing.assert_array_equal(a, b)


# ----------------------------------------------------------------- Optim4RL


@eqx.filter_jit
def _o4_step(opt, grads, state):
    return opt.update(grads, state)


def _run_o4(opt, steps=3):
    params = _tree(0, 1.0)
    state = opt.init(params)
    outs = []
    for step in range(steps):
        g = jax.tree.map(lambda x: 300.0 * x, _grads(step))  # spans the clip at 1
        upd, state = _o4_step(opt, g, state)
        outs.append(upd)
    return outs, state


@pytest.mark.parametrize("size", ["paper", "larger"])
def test_optim4rl_fused_matches_xla_and_numpy(size):
    kw = {} if size == "paper" else {"hidden_size": 16, "mlp_widths": (32, 32)}
    opt = _randomise(lo.Optim4RL(3e-3, key=jax.random.key(0), **kw), jax.random.key(3))
    fused = _run_o4(opt.with_backend("fused"))
    xla = _run_o4(opt.with_backend("xla"))
    _assert_close(fused, xla)
    # NumPy oracle, first step.
    g = np.concatenate([np.ravel(x) for x in jax.tree.leaves(_grads(0))]) * 300.0
    f = opt.gru1.hidden_size
    ref, _, _ = optim4rl_step(
        opt, g.astype(np.float64), np.zeros((f, g.size)), np.zeros((f, g.size)), 3e-3
    )
    ours = np.concatenate([np.ravel(x) for x in jax.tree.leaves(fused[0][0])])
    np.testing.assert_allclose(ours, np.ravel(ref), rtol=1e-5, atol=1e-5 * np.max(np.abs(ref)))


# ----------------------------------------------------------------- autodiff and vmap


def _meta_loss(arrays, static, steps=2):
    opt = eqx.combine(arrays, static)
    params = _tree(0, 1.0, small=True)
    ctx = _context(params)
    state = opt.init(params)
    total = jnp.asarray(0.0)
    for step in range(steps):
        grads = jax.tree.map(lambda p, g: g + 0.1 * p, params, _grads(step, small=True))
        upd, state = opt.update(grads, state, params, **ctx, key=jax.random.key(step))
        params = jax.tree.map(jnp.add, params, upd)
        total = total + sum(jnp.sum(jnp.sin(x)) for x in jax.tree.leaves(params))
    return total


def _assert_meta_gradient_auto_equals_xla(loss, opt):
    """The meta-gradient of `loss(arrays, static)` is the same (to float32 rounding) with
    the "auto" backend (the fused kernel on CPU) as with "xla", and it is not zero."""
    grads = {}
    for backend in ("auto", "xla"):
        arrays, static = eqx.partition(opt.with_backend(backend), eqx.is_array)
        grads[backend] = jax.jit(jax.grad(loss), static_argnums=1)(arrays, static)
    for a, b in zip(jax.tree.leaves(grads["auto"]), jax.tree.leaves(grads["xla"]), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6 * float(jnp.max(jnp.abs(b))))
    assert _max_abs(grads["auto"]) > 0


def test_open_meta_gradient_auto_equals_xla():
    opt = _randomise(lo.OPEN(key=jax.random.key(0)), jax.random.key(4))
    _assert_meta_gradient_auto_equals_xla(_meta_loss, opt)


def test_optim4rl_straight_through_gradient_auto_equals_xla():
    opt = _randomise(lo.Optim4RL(3e-3, key=jax.random.key(0)), jax.random.key(5))

    def loss(arrays, static):
        o = eqx.combine(arrays, static)
        params = _tree(0, 1.0, small=True)
        state = o.init(params)
        total = jnp.asarray(0.0)
        for step in range(2):
            upd, state = o.update(_grads(step, small=True), state)
            total = total + sum(jnp.sum(x * x) for x in jax.tree.leaves(upd))
        return total

    _assert_meta_gradient_auto_equals_xla(loss, opt)


def test_vmap_over_meta_parameters():
    base = lo.OPEN(key=jax.random.key(0))
    members = [_randomise(base, jax.random.key(10 + i)) for i in range(3)]
    arrays = [eqx.partition(m, eqx.is_array)[0] for m in members]
    stacked = jax.tree.map(lambda *xs: jnp.stack(xs), *arrays)
    params = _tree(0, 1.0, small=True)
    ctx = _context(params)

    static = eqx.partition(base, eqx.is_array)[1]

    def one(a, backend):
        o = eqx.combine(a, static).with_backend(backend)
        g = _grads(0, small=True)
        upd, state = o.update(g, o.init(params), params, **ctx, key=jax.random.key(7))
        return upd, state.slots

    batched = jax.jit(jax.vmap(lambda a: one(a, "auto")))(stacked)
    for i, a in enumerate(arrays):
        ref = jax.jit(lambda a: one(a, "xla"))(a)
        got = jax.tree.map(lambda x, i=i: x[i], batched)
        scale = _max_abs(ref[0])
        for a, b in zip(jax.tree.leaves(got[0]), jax.tree.leaves(ref[0]), strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=2e-5 * scale)
        np.testing.assert_allclose(got[1], ref[1], rtol=1e-5, atol=2e-5)


def test_vmap_over_noise_keys():
    """A population with one key per member (as an ES population draws): the kernel's
    noise follows each member's key, as the XLA path's does."""
    opt = _randomise(lo.OPEN(key=jax.random.key(0)), jax.random.key(6))
    params = _tree(0, 1.0, small=True)
    ctx = _context(params)
    keys = jax.random.split(jax.random.key(8), 3)

    def one(k, backend):
        o = opt.with_backend(backend)
        upd, state = o.update(_grads(0, small=True), o.init(params), params, **ctx, key=k)
        return upd, state.slots

    got = jax.jit(jax.vmap(lambda k: one(k, "fused")))(keys)
    want = jax.jit(jax.vmap(lambda k: one(k, "xla")))(keys)
    scale = _max_abs(want[0])
    for a, b in zip(jax.tree.leaves(got[0]), jax.tree.leaves(want[0]), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=2e-5 * scale)
    # The members' updates differ (different noise).
    actor_leaf = np.asarray(got[0]["c"])
    assert not np.allclose(actor_leaf[0], actor_leaf[1])


# ----------------------------------------------------------------- fallback


def test_missing_compiler_warns_and_falls_back(monkeypatch, tmp_path):
    monkeypatch.setattr(
        _fused._compile, "_state", {"tried": False, "ok": False, "error": None, "path": None}
    )
    monkeypatch.setenv("LORL_OPTIM_CXX", str(tmp_path / "no-such-compiler"))
    monkeypatch.setenv("LORL_OPTIM_CACHE_DIR", str(tmp_path / "cache"))
    # A chunk size no other test uses: a fresh trace, so the backend is decided anew.
    opt = lo.OPEN(chunk_size=999, key=jax.random.key(0))  # backend "auto"
    params = _tree(0, 1.0, small=True)
    ctx = _context(params)
    g = _grads(0, small=True)
    with pytest.warns(lo.FusedKernelWarning, match="XLA implementation"):
        upd, _ = _open_step(opt, g, opt.init(params), params, ctx, jax.random.key(1))
    assert _fused.error() is not None and not lo.fused_kernel_available()
    with warnings.catch_warnings():
        warnings.simplefilter("error", lo.FusedKernelWarning)  # warned only once
        x = opt.with_backend("xla")
        ref, _ = _open_step(x, g, x.init(params), params, ctx, jax.random.key(1))
    for a, b in zip(jax.tree.leaves(upd), jax.tree.leaves(ref), strict=True):
        np.testing.assert_array_equal(a, b)  # computed by the XLA path


def test_backend_validation():
    with pytest.raises(ValueError, match="backend"):
        lo.OPEN(key=jax.random.key(0), backend="gpu")
    with pytest.raises(ValueError, match="backend"):
        lo.Optim4RL(1e-3, key=jax.random.key(0)).with_backend("cuda")
    fields = {f.name: f for f in __import__("dataclasses").fields(lo.OPEN)}
    assert fields["backend"].metadata.get("speed_only") is True
    assert fields["chunk_size"].metadata.get("speed_only") is True


@pytest.mark.slow
def test_concurrent_builds_are_atomic(tmp_path):
    """Two builds into an empty cache at once (threads stand in for processes: each writes
    its own temporary file and renames it) give one complete, loadable library."""
    import concurrent.futures
    import ctypes

    compiler = _fused._compile._compiler()
    assert compiler is not None
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        paths = list(pool.map(lambda _: _fused._compile._build(compiler, tmp_path), range(2)))
    assert paths[0] == paths[1]
    assert [p.name for p in tmp_path.iterdir()] == [paths[0].name]  # no temporary left
    ctypes.cdll.LoadLibrary(str(paths[0])).LorlOpenStep  # noqa: B018


# ----------------------------------------------------------------- cache housekeeping


def _touch(path, age_s):
    path.write_bytes(b"x")
    t = time.time() - age_s
    os.utime(path, (t, t))


def test_remove_stale_builds_age_rule_and_lock(tmp_path):
    day, hour = 86400.0, 3600.0
    files = {
        "lorl_optim_kernels-current.so": 30 * day,  # this process's: always kept
        "lorl_optim_kernels-old.so": 8 * day,  # unused for longer than STALE_DAYS
        "lorl_optim_kernels-recent.so": 6 * day,  # another version, still in use
        "lorl_optim_kernels-old.ab12.tmp.so": 7 * hour,  # a killed build's leftover
        "lorl_optim_kernels-new.cd34.tmp.so": 60.0,  # a build in progress elsewhere
        "notes.txt": 30 * day,  # not ours
    }
    for name, age in files.items():
        _touch(tmp_path / name, age)
    assert _fused.STALE_DAYS == 7.0 and _fused.STALE_TMP_HOURS == 6.0
    keep = tmp_path / "lorl_optim_kernels-current.so"
    # While another process builds or loads (shared lock), nothing is removed.
    with _fused._compile._cache_lock(tmp_path, exclusive=False) as held:
        assert held
        assert _fused.remove_stale_builds(tmp_path, keep=keep) == []
    assert {p.name for p in tmp_path.iterdir()} == {*files, ".lock"}
    removed = _fused.remove_stale_builds(tmp_path, keep=keep)
    assert sorted(p.name for p in removed) == [
        "lorl_optim_kernels-old.ab12.tmp.so",
        "lorl_optim_kernels-old.so",
    ]
    assert {p.name for p in tmp_path.iterdir()} == {*files, ".lock"} - {p.name for p in removed}
    assert _fused.remove_stale_builds(tmp_path / "missing") == []


def test_loading_marks_the_library_and_removes_stale_builds(monkeypatch, tmp_path):
    """`available()` in a fresh state with a cache holding this build (copied, so nothing
    compiles) and a stale one: the library is loaded, its mtime set to now, the stale file
    removed."""
    assert _fused.available()
    current = _fused._compile._state["path"]
    shutil.copy(current, tmp_path / current.name)
    _touch(tmp_path / "lorl_optim_kernels-stale.so", 10 * 86400.0)
    old = time.time() - 20 * 86400.0
    os.utime(tmp_path / current.name, (old, old))
    monkeypatch.setenv("LORL_OPTIM_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(
        _fused._compile, "_state", {"tried": False, "ok": False, "error": None, "path": None}
    )
    # The targets are registered already in this process; do not register the copy.
    monkeypatch.setattr(jax.ffi, "register_ffi_target", lambda *a, **k: None)
    assert _fused.available(), _fused.error()
    assert _fused._compile._state["path"] == tmp_path / current.name
    assert time.time() - (tmp_path / current.name).stat().st_mtime < 600
    assert not (tmp_path / "lorl_optim_kernels-stale.so").exists()
