"""`lorl._bench` (the helpers of the benchmark scripts in tools/) and `lorl.analysis`'s
step-size probe and relative change."""

import math
import shutil
import subprocess

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import lorl_optim as lo
from lorl import _bench, analysis


def test_synthetic_agent_has_opens_minatar_shape():
    params = _bench.synthetic_agent_params(64, jax.random.key(0))
    n = sum(x.size for x in jax.tree.leaves(params))
    # actor 400*64+64 + 64*64+64 + 64*6+6, critic the same with one output
    assert n == (400 * 64 + 64 + 64 * 64 + 64) * 2 + (64 * 6 + 6) + (64 + 1)
    ctx = _bench.synthetic_context(params)
    assert float(ctx["layer_proportions"]["actor"]["layer_0"]["kernel"]) == 0.0
    assert float(ctx["layer_proportions"]["critic"]["layer_2"]["bias"]) == 1.0
    assert bool(ctx["actor_mask"]["actor"]["layer_1"]["bias"])
    assert not bool(ctx["actor_mask"]["critic"]["layer_1"]["bias"])
    assert ctx["dormancy"]["actor"]["layer_0"]["kernel"].shape == (64,)
    # the context fits OPEN's update
    opt = lo.load_open("breakout")
    updates, _ = opt.update(
        jax.tree.map(jnp.ones_like, params),
        opt.init(params),
        params,
        **ctx,
        key=jax.random.key(1),
    )
    assert jax.tree.structure(updates) == jax.tree.structure(params)


def test_timers_count_with_the_given_clock():
    ticks = iter(range(100))
    clock = lambda: float(next(ticks))  # every reading advances by one

    def step(x, state):
        return x, state + 1

    assert _bench.time_step(step, (0,), 0, 3, clock) == 1.0
    assert _bench.time_fn(lambda: 0, (), 5, clock) == 1.0
    with pytest.raises(ValueError, match="reps"):
        _bench.time_step(step, (0,), 0, 0)


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_import_revision_gives_a_second_lorl_optim():
    try:
        old = _bench.import_revision("HEAD", name="lorl_optim_test_copy")
    except subprocess.CalledProcessError:
        pytest.skip("not a git checkout with lorl_optim at HEAD")
    assert old.__name__ == "lorl_optim_test_copy" and old is not lo
    a = eqx.filter(old.load_open("breakout"), eqx.is_array)
    b = eqx.filter(lo.load_open("breakout"), eqx.is_array)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_probe_of_sign_descent_is_two_phi_minus_one():
    """Sign descent steps `lr * sign(g)`: size 1 and progress E[sign(snr + z)] = 2 Phi(snr) - 1."""
    lr = 0.01
    sign_sgd = optax.chain(optax.scale_by_sign(), optax.scale(-lr))
    probe = analysis.step_size_probe(sign_sgd, lr, n=4000)
    for snr in analysis.PROBE_SNRS:
        want = math.erf(snr / math.sqrt(2))  # 2 Phi(snr) - 1
        got = probe[f"snr {snr:g}"]
        assert got["size"] == pytest.approx(1.0)
        # 100 steps x 4000 parameters: standard error <= 1 / sqrt(4e5) = 0.0016
        assert got["progress"] == pytest.approx(want, abs=0.01)


def test_probe_of_sgd_is_the_mean_gradient():
    lr = 0.1
    probe = analysis.step_size_probe(optax.sgd(lr), lr, snrs=(2.0,), n=4000)
    # an SGD step in units of lr is the gradient itself: mean 1e-3 * 2
    assert probe["snr 2"]["progress"] == pytest.approx(2e-3, rel=0.01)


def test_relative_change_by_hand():
    class Two(eqx.Module):
        a: jax.Array
        b: jax.Array

    start = Two(jnp.array([3.0, 4.0]), jnp.array([1.0]))
    end = Two(jnp.array([3.0, 4.5]), jnp.array([3.0]))
    change = analysis.relative_change(start, end, ("a", "b"))
    assert change == pytest.approx({"a": 0.5 / 5.0, "b": 2.0})
    with pytest.raises(ValueError, match="no part"):
        analysis.relative_change(start, end, ("c",))
    with pytest.raises(ValueError, match="norm 0"):
        analysis.relative_change(Two(jnp.zeros(2), jnp.ones(1)), end, ("a",))


def test_cached_tuning_computes_each_rate_once(tmp_path):
    from lorl.experiments.optim4rl._study import cached_tuning

    calls = []

    def score(lr):
        calls.append(lr)
        return -abs(lr - 1e-2)

    path = tmp_path / "t" / "adam_tuning.json"
    first = cached_tuning(path, ["grid", 1], (1e-3, 1e-2), score)
    assert first == {1e-3: pytest.approx(-9e-3), 1e-2: 0.0} and calls == [1e-3, 1e-2]
    again = cached_tuning(path, ["grid", 1], (1e-3, 1e-2, 3e-2), score)
    assert calls == [1e-3, 1e-2, 3e-2]  # only the new rate is computed
    assert again[1e-3] == first[1e-3] and again[3e-2] == pytest.approx(-2e-2)
    cached_tuning(path, ["other settings"], (1e-3,), score)
    assert calls[-1] == 1e-3  # another key recomputes
