"""`study/optim4rl-sensitivity`: the grid at both scales, validation before compute, a
stubbed run through the run folder and report, and one tiny real run."""

import json

import numpy as np
import pytest

from lorl import evaluation as ev, experiments as ex, runs
from lorl.experiments.study import _sensitivity as sens

NAME = "study/optim4rl-sensitivity"
TINY = [
    "meta.steps=2",
    "meta.units=2",
    "meta.checkpoint_every=1",
    "meta_lrs=1e-3",
    "reset_intervals=2",
    "deploy_lrs=3e-3",
    "eval.seeds=2",
    "eval.n_envs=2",
    "eval.updates=3",
]


def _config(overrides, scale="cpu"):
    exp = ex.get_experiment(NAME)
    return exp, runs.apply_overrides(exp.config(scale), overrides)


@pytest.mark.parametrize("scale", ["cpu", "paper"])
def test_scales(scale):
    exp, config = _config([], scale)
    exp.validate(config)  # pyright: ignore[reportOptionalCall]
    assert (
        runs.config_from_dict(exp.config_class, json.loads(json.dumps(runs.config_to_dict(config))))
        == config
    )
    assert config.meta_lrs == (3e-5, 1e-4, 3e-4, 1e-3)  # Optim4RL Appendix C.3's grid
    if scale == "paper":
        assert config.reset_intervals == (256, 512) and config.meta.units == 512
    assert len(config.cells()) == 8


def test_validation_before_compute():
    exp, config = _config(["meta.units=16", "reset_intervals=16,32"])
    with pytest.raises(runs.ConfigError, match="meta.units=16 < meta.reset_interval=32"):
        exp.validate(config)  # pyright: ignore[reportOptionalCall]
    with pytest.raises(ValueError, match="must be > 0"):
        _config(["meta_lrs=0"])


def test_stubbed_run_and_report(tmp_path, monkeypatch):
    def fake_meta_train(run_dir, stage, *, kind, envs, meta):
        rng = np.random.default_rng(int(meta.lr * 1e6) + meta.reset_interval)
        history = [{f"{envs[0]}/episode_return": float(x)} for x in rng.normal(5, 1, 3)]
        return {"optimizer_path": f"{stage}.eqx", "history": history, "n_nonfinite_meta_steps": 0,
                "init_path": "optimizers/init.eqx"}  # fmt: skip

    class FakeEvals:
        def __call__(self, stage, optimizer, env, label=None, **extra):
            base = 3.0 if stage == "eval-init" else 8.0
            return label, {"final_returns": [base, base + 0.5, base + 1.0, base + 0.2]}

    monkeypatch.setattr(sens, "meta_train", fake_meta_train)
    monkeypatch.setattr(sens, "make_evals", lambda run_dir, ev: FakeEvals())
    monkeypatch.setattr(
        sens, "load_optimizer_for_deploy", lambda path, lr: f"{path}@{lr}", raising=False
    )
    exp, config = _config(["deploy_lrs=3e-3"])
    run = runs.RunDir.create(tmp_path, experiment=NAME, scale="cpu", config=config, name="r")

    class Fake:
        def with_learning_rate(self, lr):
            return f"opt@{lr}"

    monkeypatch.setattr(ev, "load_optimizer", lambda path: Fake())
    results = exp.run(config, run)
    run.write_results(results)
    report = exp.report(run)
    assert len(results["cells"]) == 8 and results["control"] is not None
    # mean of 8, 8.5, 9, 8.2 = 8.425; the control's 3.4 lies far below
    assert "| lr0.001-m32-M4 | 8.43 [" in report and "| yes |" in report
    assert "deployed at lr 0.003" in report
    assert (run.plots_dir / "sensitivity.png").is_file()


def test_tiny_real_run(tmp_path):
    exp, config = _config(TINY)
    run = runs.RunDir.create(tmp_path, experiment=NAME, scale="cpu", config=config, name="r")
    results = exp.run(config, run)
    (cell,) = results["cells"].values()
    assert len(cell["evaluation"]["final_returns"]) == 2 and "0.003" in cell["deployed"]
    assert results["control"] is not None  # the initialisation, evaluated as the control
    assert (run.path / "optimizers" / "meta-lr0.001-m2-M4-init.eqx").is_file()
