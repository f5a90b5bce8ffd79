"""The Optim4RL gradient analyses on small inputs: reservoir sampling (bound, unbiasedness),
histograms, Wasserstein distances, sign/log processing, identity accuracy and training,
and one tiny analysis experiment end to end through a RunDir."""

import dataclasses

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import scipy.stats

from lorl import analysis as an, experiments as ex, runs

# -- collection ---------------------------------------------------------------------


def test_reservoir_keeps_at_most_k_and_fills_empty_slots_first():
    k = 8
    values = jnp.full((k,), jnp.nan, jnp.float32)
    pri = jnp.full((k,), jnp.inf, jnp.float32)
    v, p = an.reservoir_merge(values, pri, jnp.arange(3.0), key=jax.random.key(0))
    assert v.shape == (k,)
    assert sorted(np.asarray(v)[np.isfinite(np.asarray(p))].tolist()) == [0.0, 1.0, 2.0]
    v, p = an.reservoir_merge(v, p, jnp.arange(3.0, 100.0), key=jax.random.key(1))
    assert v.shape == (k,) and np.all(np.isfinite(np.asarray(p)))
    assert len(set(np.asarray(v).tolist())) == k  # without replacement


def _collector_run(n_calls, n_stages, per_stage, n_traced, stream, key):
    """Feed `stream[t]` (a tiny 'gradient' tree) to a collector around SGD, in a scan."""
    params = {"a": jnp.zeros((stream.shape[1] - 2,)), "b": jnp.zeros((2,))}
    col = an.GradientCollector(
        optax.sgd(0.0), n_calls, n_stages=n_stages, per_stage=per_stage, n_traced=n_traced, key=key
    )
    state = col.init(params)

    def body(state, g):
        grads = {"a": g[:-2], "b": g[-2:]}
        _, state = col.update(grads, state, params)
        return state, None

    state, _ = jax.lax.scan(body, state, stream)
    return state


_collector_run_jit = eqx.filter_jit(_collector_run)


def test_collector_bounds_stages_and_traces():
    n_calls, width = 12, 10
    stream = jnp.arange(n_calls * width, dtype=jnp.float32).reshape(n_calls, width)
    state = _collector_run_jit(n_calls, 3, 7, 4, stream, jax.random.key(0))
    sample = an.GradientSample.from_state(state)
    assert sample.n_stages == 3
    assert [s.size for s in sample.stages] == [7, 7, 7]
    assert sample.seen.tolist() == [40, 40, 40]
    # Stage s only holds elements of calls 4s .. 4s+3.
    for s, vals in enumerate(sample.stages):
        assert np.all((vals >= 40 * s) & (vals < 40 * (s + 1)))
    # Traces: the traced elements' values at every call.
    assert sample.traces.shape == (n_calls, 4)
    np.testing.assert_array_equal(
        sample.traces, np.asarray(stream)[:, sample.trace_index]
    )  # flat order = tree order {"a", "b"} = stream order
    values, weights = sample.whole_run()
    assert values.size == 21 and np.allclose(weights, 40 / 7)
    back = an.GradientSample.from_dict(runs.to_jsonable(sample.to_dict()))
    assert all(np.array_equal(a, b) for a, b in zip(back.stages, sample.stages, strict=True))
    np.testing.assert_array_equal(back.traces, sample.traces)


def test_collector_passes_inner_updates_through():
    params = {"w": jnp.ones((3,))}
    grads = {"w": jnp.asarray([1.0, -2.0, 3.0])}
    inner = optax.sgd(0.5)
    col = an.GradientCollector(inner, 2, n_stages=1, per_stage=4, key=jax.random.key(0))
    out, _ = col.update(grads, col.init(params), params, training_proportion=0.3)
    ref, _ = inner.update(grads, inner.init(params), params)
    np.testing.assert_allclose(np.asarray(out["w"]), np.asarray(ref["w"]))  # pyright: ignore[reportIndexIssue]
    with pytest.raises(an.AnalysisError, match="n_stages"):
        an.GradientCollector(inner, 2, n_stages=3, key=jax.random.key(0))
    # A learned optimizer (an eqx.Module with optax-style init/update) as the inner one.
    from lorl_optim import Optim4RL

    lopt = Optim4RL(1e-3, key=jax.random.key(1))
    col = an.GradientCollector(lopt, 2, n_stages=1, per_stage=4, key=jax.random.key(0))
    out, state = col.update(grads, col.init(params), params, training_proportion=0.3)
    ref, _ = lopt.update(grads, lopt.init(params), params)
    np.testing.assert_allclose(np.asarray(out["w"]), np.asarray(ref["w"]), rtol=1e-6)  # pyright: ignore[reportIndexIssue]
    assert int(state.seen[0]) == 3


def test_reservoir_is_unbiased():
    # 400 runs of a stream of 5 calls x 40 elements, keeping 20 per (single) stage: every
    # element must be kept with probability 20/200 = 0.1, and the mean of the kept values
    # must estimate the stream mean.
    n_calls, width, k, reps = 5, 40, 20, 400
    stream = jnp.arange(n_calls * width, dtype=jnp.float32).reshape(n_calls, width)
    keys = jax.random.split(jax.random.key(3), reps)
    states = jax.lax.map(lambda kk: _collector_run(n_calls, 1, k, 0, stream, kk), keys)
    kept = np.asarray(states.values)[:, 0, :]  # (reps, k)
    counts = np.bincount(kept.astype(np.int64).ravel(), minlength=n_calls * width)
    # Inclusion counts ~ Binomial(reps, 0.1) each: chi-square goodness of fit.
    expected = reps * k / (n_calls * width)
    chi2 = np.sum((counts - expected) ** 2 / expected)
    assert scipy.stats.chi2.sf(chi2, n_calls * width - 1) > 1e-3
    # The mean of the kept values: true mean 99.5, s.d. of a 20-sample mean ~ 12.5.
    assert abs(kept.mean() - 99.5) < 4 * 57.7 / np.sqrt(k * reps)
    # Early and late calls equally represented (order does not matter).
    assert abs(np.mean(kept < 40) - 0.2) < 0.03


# -- distributions ------------------------------------------------------------------


def test_log10_magnitude_and_histogram_mass():
    g = np.array([0.0, 1e-3, -1e-3, 0.5, -20.0])
    np.testing.assert_allclose(an.log10_magnitude(g), [-16, -3, -3, np.log10(0.5), np.log10(20)])
    mass, edges = an.histogram_mass(an.log10_magnitude(g), bins=17, value_range=(-16.0, 1.0))
    assert edges.tolist() == list(np.arange(-16.0, 2.0))
    expected = np.zeros(17)
    expected[0] = 1  # the zero
    expected[13] = 2  # [-3, -2): both 1e-3
    expected[15] = 1  # [-1, 0): 0.5
    expected[16] = 1  # log10(20) = 1.3 > 1 is counted in the last bin
    np.testing.assert_allclose(mass, expected / 5)
    with pytest.raises(an.AnalysisError, match="empty"):
        an.histogram_mass(np.array([]))


def _sample(stages, seen=None):
    stages = [np.asarray(s, np.float32) for s in stages]
    seen = np.array([s.size for s in stages]) if seen is None else np.asarray(seen)
    return an.GradientSample(stages, seen, np.zeros((1, 0), np.float32), np.zeros(0, np.int64))


def test_wasserstein_closed_form():
    # scipy against the closed form: W1 of a distribution and its shift is the shift.
    rng = np.random.default_rng(0)
    x = rng.normal(size=500)
    assert scipy.stats.wasserstein_distance(x, x + 0.3) == pytest.approx(0.3)
    # Three stages: values {0}, {1}, {2} (equal sizes) -> whole run uniform on {0, 1, 2}:
    # W1(stage c, all) = mean |c - U| = (|c| + |c-1| + |c-2|) / 3.
    s = _sample([np.zeros(10), np.ones(10), np.full(10, 2.0)])
    w = an.wasserstein_to_whole(s, "raw")
    assert w == pytest.approx({"beginning": 1.0, "middle": 2 / 3, "end": 1.0})
    # Stage sizes weight the whole run: seen (10, 10, 30) -> whole = {0: .2, 1: .2, 2: .6}.
    s = _sample([np.zeros(10), np.ones(10), np.full(10, 2.0)], seen=[10, 10, 30])
    w = an.wasserstein_to_whole(s, "raw")
    assert w["beginning"] == pytest.approx(0.2 + 1.2)
    assert w["end"] == pytest.approx(0.4 + 0.2)
    # log10 transform: stages 1e-3 and 1e-1 -> log values -3 and -1, whole {-3, -1}.
    s = _sample([np.full(4, 1e-3), np.full(4, 1e-1)])
    w = an.wasserstein_to_whole(s, "log10", {"first": 0})
    assert w["first"] == pytest.approx(1.0, rel=1e-5)


def test_overlap_and_plots(tmp_path):
    a = np.array([1e-3] * 5 + [0.0] * 5)
    assert an.overlap(a, a) == pytest.approx(1.0)
    assert an.overlap(a, np.full(10, 1e-3)) == pytest.approx(0.5)
    an.plot_stage_histograms({"x": a, "y": a}, str(tmp_path / "s.png"))
    an.plot_overlay(("x", a), [("y", a, None)], str(tmp_path / "o.png"))
    assert (tmp_path / "s.png").stat().st_size > 0 and (tmp_path / "o.png").stat().st_size > 0


# -- identity ------------------------------------------------------------------------


def test_sign_log_features_hand_values_and_optimizer():
    from lorl_optim._optim4rl import process_gradient

    g = jnp.asarray([2.0, -1.0, 0.0, 1e-3])
    f = an.sign_log_features(g)
    np.testing.assert_allclose(f[:, 0], [1, -1, 0, 1])
    np.testing.assert_allclose(f[:, 1], [np.log(2), 0.0, np.log(1e-18), np.log(1e-3)], rtol=1e-5)
    # The same as Optim4RL's own input processing (no clipping below |g| <= 1).
    _, sign, log = process_gradient(g[1:], 0.0, 1e-18)
    np.testing.assert_allclose(f[1:, 0], sign)
    np.testing.assert_allclose(f[1:, 1], log, rtol=1e-6)


def test_identity_accuracy_hand_values():
    target = jnp.asarray([1.0, 1.0, 1.0, -2.0, -2.0, 0.0, 0.0, 0.5])
    pred = jnp.asarray([1.09, 1.11, 0.9, -2.1, 2.0, 0.0, 1e-9, -0.5])
    # correct: 1.09 (yes), 1.11 (no), 0.9 (edge: yes), -2.1 (yes), 2.0 (wrong sign),
    # exact 0 (yes), 1e-9 for 0 (no), -0.5 for 0.5 (no) -> 4 / 8.
    assert float(an.identity_accuracy(pred, target)) == pytest.approx(0.5)


def test_identity_rnn_learns_the_control():
    data = an.random_control_data(40, 16, key=jax.random.key(0))
    assert data.shape == (40, 16)
    d = np.asarray(data)
    assert d.min() >= 1.0 and d.max() <= 6.0 and d[-1].mean() > d[0].mean() + 2
    r = an.train_identity(data, "raw", epochs=150, learning_rate=3e-3, key=jax.random.key(1))
    assert r["accuracy"].shape == (150,)
    assert r["accuracy"][0] < 0.5
    assert r["accuracy"][-1] > 0.9
    with pytest.raises(an.AnalysisError, match="inputs"):
        an.IdentityRNN("log", key=jax.random.key(0))


# -- supervised collection and an experiment end to end ------------------------------


def test_digits_collection_small():
    images, labels = an.load_digits_data()
    assert images.shape == (1797, 8, 8, 1) and images.max() <= 1.0 and set(labels) == set(range(10))
    sample, metrics = an.collect_supervised_gradients(
        epochs=2, batch_size=256, n_stages=4, per_stage=100, key=jax.random.key(0)
    )
    assert sample.n_stages == 4 and all(s.size == 100 for s in sample.stages)
    n_params = 16 * (2 * 2 * 1) + 16 + 8 * 8 * 16 * 32 + 32 + 32 * 10 + 10
    assert sample.seen.sum() == 2 * (1797 // 256) * n_params
    assert metrics["loss"][-1] < metrics["loss"][0]


def test_identity_experiment_end_to_end(tmp_path):
    e = ex.get_experiment("analysis/identity")
    assert {"analysis/gradient-distributions", "analysis/wasserstein"} <= {
        x.name for x in ex.experiments()
    }
    cfg = runs.apply_overrides(
        e.config("cpu"),
        [
            "seeds=1",
            "a2c.env=small_dense_short",
            "a2c.n_envs=4",
            "a2c.total_timesteps=800",
            "a2c.n_stages=2",
            "a2c.per_stage=50",
            "n_traced=8",
            "epochs=3",
            "learning_rates=1e-3",
        ],
    )
    run = runs.RunDir.create(tmp_path, experiment=e.name, scale="cpu", config=cfg)
    results = e.run(cfg, run)
    run.write_results(results)
    md = e.report(run)
    assert results["data_shape"] == [10, 8]
    for cond in ("raw", "sign_log", "control"):
        assert 0.0 <= results[cond]["final_accuracy_mean"] <= 1.0
        assert len(results[cond]["curve_mean"]) == 3
    assert "Identity-function" in md and (run.plots_dir / "figure2_identity.png").is_file()
    # A resumed run loads the finished stages instead of recomputing them.
    again = e.run(cfg, runs.RunDir.open(run.path))
    assert runs.to_jsonable(again) == runs.to_jsonable(results)
    assert dataclasses.asdict(cfg)["n_traced"] == 8


def test_analysis_configs_validate_before_compute():
    for name in ("analysis/gradient-distributions", "analysis/wasserstein", "analysis/identity"):
        e = ex.get_experiment(name)
        assert e.validate is not None
        for scale in ("cpu", "paper"):
            e.validate(e.config(scale))
        with pytest.raises(runs.ConfigError, match="n_stages"):
            e.validate(runs.apply_overrides(e.config("cpu"), ["a2c.n_stages=100000"]))
    e = ex.get_experiment("analysis/identity")
    assert e.config("paper").epochs == 1000 and e.config("paper").a2c.n_envs == 512
    validate = e.validate
    assert validate is not None
    with pytest.raises(runs.ConfigError, match="seq_len"):
        validate(runs.apply_overrides(e.config("cpu"), ["seq_len=100000"]))


def test_identity_on_supervised_gradients_end_to_end(tmp_path):
    """Figure 9: the identity test on the digits network's gradient traces."""
    e = ex.get_experiment("analysis/identity")
    cfg = runs.apply_overrides(
        e.config("cpu"),
        ["data=supervised", "sl_epochs=2", "sl_batch_size=256", "seeds=1", "n_traced=8",
         "epochs=3", "learning_rates=1e-3", "a2c.n_stages=2", "a2c.per_stage=50"],
    )  # fmt: skip
    assert e.validate is not None
    e.validate(cfg)
    run = runs.RunDir.create(tmp_path, experiment=e.name, scale="cpu", config=cfg)
    results = e.run(cfg, run)
    run.write_results(results)
    md = e.report(run)
    assert results["data_shape"] == [2 * (1797 // 256), 8]  # optimizer steps x traced
    assert results["paper"]["sign_log"] == 0.80 and results["data"] == "supervised"
    assert not (run.path / "gradients" / "a2c.npz").exists()  # no RL run was needed
    assert "Figure 9" in md and "| ~80% |" in md
    with pytest.raises(runs.ConfigError, match="supervised run's steps"):
        e.validate(runs.apply_overrides(cfg, ["seq_len=100"]))
    with pytest.raises(runs.ConfigError, match="allowed values|data"):
        e.validate(runs.apply_overrides(cfg, ["data=mnist"]))
