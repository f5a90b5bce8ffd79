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
