"""`study/policy-collapse`: configs, validation, and a stubbed run through the run folder
and report (the real run needs Brax for Ant; `env=breakout` runs a tiny real one)."""

import importlib.util
import json

import jax
import numpy as np
import pytest

import lorl_optim as lo
from lorl import evaluation as ev, experiments as ex, runs
from lorl.experiments.study import _collapse

NAME = "study/policy-collapse"


def _config(overrides, scale="cpu"):
    exp = ex.get_experiment(NAME)
    return exp, runs.apply_overrides(exp.config(scale), overrides)


@pytest.mark.parametrize("scale", ["cpu", "paper"])
def test_scales(scale):
    exp, config = _config([], scale)
    data = json.loads(json.dumps(runs.config_to_dict(config)))
    assert runs.config_from_dict(exp.config_class, data) == config
    try:
        exp.validate(config)  # pyright: ignore[reportOptionalCall]
    except runs.ConfigError as e:
        if importlib.util.find_spec("brax") is not None or "needs Brax" not in str(e):
            raise


def test_validation():
    exp, config = _config(["env=CartPole-v1"])
    with pytest.raises(runs.ConfigError, match="choose ant or a MinAtar game"):
        exp.validate(config)  # pyright: ignore[reportOptionalCall]
    with pytest.raises(ValueError, match="adam_b2"):
        _config(["adam_b2=1.5"])


def test_stubbed_run_reports_collapse_rates(tmp_path, monkeypatch):
    opt = lo.Optim4RL(1e-2, key=jax.random.key(0))
    path = lo.save(tmp_path / "o.eqx", opt)

    def fake_stage(run_dir, stage, optimizer, env, *, seeds, agent, label, **kw):
        t = np.arange(20, dtype=np.float64)
        # the b2 = 0.999 Adam collapses on every seed, the rest keep rising
        curve = np.concatenate([t[:10], np.zeros(10)]) if "b2 0.999" in label else t
        n = len(seeds)
        return ev.EvaluationResult(
            env=env, optimizer=label, agent="ppo", seeds=tuple(seeds),
            final_returns=np.full(n, curve[-1]), steps=np.arange(1, 21) * 10,
            returns=np.tile(curve, (n, 1)), first_nonfinite_update=-np.ones(n, int),
            timesteps=200, seconds=1.0, agent_config={},
        )  # fmt: skip

    monkeypatch.setattr(_collapse, "evaluate_stage", fake_stage)
    monkeypatch.setattr(_collapse, "_validate", lambda cfg: None)  # no Brax needed here
    exp, config = _config([f"optim4rl_path={path}", "l2=1e-4,1e-3", "n_seeds=3"])
    run = runs.RunDir.create(tmp_path, experiment=NAME, scale="cpu", config=config, name="r")
    results = exp.run(config, run)
    run.write_results(results)
    report = exp.report(run)
    rates = {k: v["rate"] for k, v in results["collapse"].items()}
    assert rates["adam (b1 0.9, b2 0.999)"] == 1.0 and rates["optim4rl + l2 0.001"] == 0.0
    assert set(rates) == {
        "adam (OPEN-tuned: b1 0.99, b2 0.99)",
        "adam (b1 0.9, b2 0.999)",
        "optim4rl",
        "optim4rl + l2 0.0001",
        "optim4rl + l2 0.001",
    }
    assert "| adam (b1 0.9, b2 0.999) | 3 of 3 | 1.00 |" in report
