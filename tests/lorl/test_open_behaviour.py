"""`analysis/open-behaviour`: configs, validation, and a tiny real run whose stored curves
and report hold the behaviour metrics."""

import json

import numpy as np
import pytest

from lorl import experiments as ex, runs

NAME = "analysis/open-behaviour"


@pytest.mark.parametrize("scale", ["cpu", "paper"])
def test_scales(scale):
    exp = ex.get_experiment(NAME)
    config = exp.config(scale)
    exp.validate(config)  # pyright: ignore[reportOptionalCall]
    data = json.loads(json.dumps(runs.config_to_dict(config)))
    assert runs.config_from_dict(exp.config_class, data) == config


def test_validation():
    exp = ex.get_experiment(NAME)
    for overrides, match in ((["env=CartPole-v1"], "MinAtar"), (["optimizers=adamm"], "adam")):
        with pytest.raises(runs.ConfigError, match=match):
            exp.validate(runs.apply_overrides(exp.config("cpu"), overrides))  # pyright: ignore[reportOptionalCall]


def test_tiny_run(tmp_path):
    exp = ex.get_experiment(NAME)
    overrides = ["agent.n_envs=8", "agent.n_steps=16", "agent.total_timesteps=768",
                 "agent.n_minibatches=2", "agent.n_epochs=1", "max_points=4"]  # fmt: skip
    config = runs.apply_overrides(exp.config("cpu"), overrides)
    run = runs.RunDir.create(tmp_path, experiment=NAME, scale="cpu", config=config, name="r")
    results = exp.run(config, run)
    run.write_results(results)
    report = exp.report(run)
    r = results["runs"]["open:breakout"]
    cos = np.asarray(r["update_grad_cosine"])
    assert cos.shape == (2, 6) and np.all(np.abs(cos) <= 1.0 + 1e-6)  # 6 updates, 2 seeds
    assert np.asarray(r["dormancy"]).shape == (2, 6, 6)  # updates x (3 actor + 3 critic) layers
    assert np.all(np.asarray(results["runs"]["adam"]["update_param_ratio"]) > 0)
    assert "| open:breakout |" in report and (run.plots_dir / "dormancy-0.png").is_file()
    # the learned noise's weight: recorded for OPEN only, positive and finite
    noise = np.asarray(r["noise_param_ratio"])
    assert noise.shape == (2, 6) and np.all(np.isfinite(noise)) and np.all(noise > 0)
    assert "noise_param_ratio" not in results["runs"]["adam"]
    assert (run.plots_dir / "noise_param_ratio.png").is_file()
    # the alignment with the momentum at OPEN's six timescales, for both optimizers
    for name in ("open:breakout", "adam"):
        m = np.asarray(results["runs"][name]["update_momentum_cosine_0.9"])
        assert m.shape == (2, 6) and np.all(np.abs(m) <= 1.0 + 1e-6)
    assert "| gradient | beta = 0.1 |" in report and "beta = 0.9999" in report
    assert (run.plots_dir / "update_momentum_cosine_0.999.png").is_file()


def test_momentum_probe_holds_opens_own_momenta():
    """Around OPEN, the probe's momenta are OPEN's momentum features (its state's first six
    rows, the same six timescales), and OPEN's updates, noise included, pass through."""
    import dataclasses

    import jax
    import jax.numpy as jnp

    import lorl_agents as la
    import lorl_optim as lo

    env, params = la.make_env("CartPole-v1")  # the cheapest compile; any task will do
    config = la.PPOConfig.cartpole(
        n_envs=4, n_steps=8, total_timesteps=4 * 8 * 3, n_minibatches=2, n_epochs=1
    )
    agent = la.PPO(dataclasses.replace(config, update_statistics=True))
    opt = lo.load_open("breakout")
    probe = la.MomentumProbe(opt)
    assert probe.betas == (0.1, 0.5, 0.9, 0.99, 0.999, 0.9999)  # OPEN Appendix F.2
    state = agent.init(env, params, probe, key=jax.random.key(0))
    plain = agent.init(env, params, opt, key=jax.random.key(0))
    for _ in range(3):
        state, metrics = agent.step(state, env, params, probe)
        plain, plain_metrics = agent.step(plain, env, params, opt)
    flat = jnp.stack(
        [
            jnp.concatenate([jnp.ravel(x) for x in jax.tree.leaves(m)])
            for m in state.opt_state.momenta
        ]
    )
    np.testing.assert_allclose(flat, state.opt_state.inner.slots[:6], rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(
        metrics["noise_param_ratio"], plain_metrics["noise_param_ratio"], rtol=1e-4
    )
    for a, b in zip(jax.tree.leaves(state.network), jax.tree.leaves(plain.network), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_deep_sea_noise_curve_is_real_and_positive():
    """OPEN Figure 14's measurement on a tiny Deep Sea run: the separated OPEN's learned
    noise weight, one positive finite value per update and seed (zero meta-parameters,
    ES's starting point, have none: random ones stand in for a trained optimizer)."""
    import lorl_agents as la
    from lorl.experiments.open import _common as oc, _deep_sea as ds

    agent = la.PPOConfig.minatar(
        n_envs=4, n_steps=8, total_timesteps=4 * 8 * 3, n_minibatches=2, n_epochs=1
    )
    zero = oc.make_learned("separated")  # ES's initialisation: zero meta-parameters
    opt = zero.from_flat(np.random.default_rng(0).normal(0, 0.3, zero.flat_size))
    r = ds._noise_curve(opt, 5, agent, [0, 1])
    x = np.asarray(r["noise_param_ratio"])
    assert x.shape == (2, 3) and np.all(np.isfinite(x)) and np.all(x > 0)
    assert r["steps"] == [32, 64, 96] and len(r["final_returns"]) == 2
