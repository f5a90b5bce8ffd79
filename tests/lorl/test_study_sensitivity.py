"""`study/optim4rl-sensitivity` and `study/optim4rl-sensitivity-ant`: the grids at both
scales, validation before compute, stubbed runs through the run folder and report, and one
tiny real run (the Ant one is slow and needs Brax)."""

import importlib.util
import json

import numpy as np
import pytest

from lorl import evaluation as ev, experiments as ex, runs
from lorl.experiments.study import _sensitivity as sens, _sensitivity_ant as sens_ant

NAME = "study/optim4rl-sensitivity"
ANT = "study/optim4rl-sensitivity-ant"
HAS_BRAX = importlib.util.find_spec("brax") is not None
TINY = [
    "meta.steps=2",
    "meta.units=2",
    "meta.checkpoint_every=1",
    "meta_lrs=1e-3",
    "reset_intervals=2",
    "deploy_lrs=3e-3",
    "deploy_settings=gamma=0.9",
    "eval.seeds=2",
    "eval.n_envs=2",
    "eval.updates=3",
]


def _config(overrides, scale="cpu", name=NAME):
    exp = ex.get_experiment(name)
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
    if scale == "paper":  # Optim4RL Tables 8-10: every value other than the default
        assert len(config.deploy_settings) == 9 and "gamma=0.9" in config.deploy_settings


@pytest.mark.parametrize("scale", ["cpu", "paper"])
def test_ant_scales(scale):
    exp, config = _config([], scale, ANT)
    assert (
        runs.config_from_dict(exp.config_class, json.loads(json.dumps(runs.config_to_dict(config))))
        == config
    )
    if scale == "paper":
        m = config.meta
        assert config.meta_lrs == (3e-5, 1e-4, 3e-4, 1e-3)  # Optim4RL Appendix C.3
        assert config.reset_intervals == (512, 1024)  # Optim4RL Appendix C.3, Ant
        assert m.units * m.envs_per_unit == 2048 and m.units >= max(config.reset_intervals)
        assert (config.eval.seeds, config.eval.n_envs, config.eval.timesteps) == (
            10, 2048, 50_000_000,
        )  # fmt: skip
        assert len(config.cells()) == 8
    if HAS_BRAX:
        exp.validate(config)  # pyright: ignore[reportOptionalCall]
    else:
        with pytest.raises(runs.ConfigError, match="brax"):
            exp.validate(config)  # pyright: ignore[reportOptionalCall]


def test_validation_before_compute():
    exp, config = _config(["meta.units=16", "reset_intervals=16,32"])
    with pytest.raises(runs.ConfigError, match="meta.units=16 < meta.reset_interval=32"):
        exp.validate(config)  # pyright: ignore[reportOptionalCall]
    with pytest.raises(ValueError, match="must be > 0"):
        _config(["meta_lrs=0"])
    with pytest.raises(runs.ConfigError, match="not 'name=value'"):
        _config(["deploy_settings=lam"])
    exp, config = _config(["deploy_settings=gae_lambda=0.9"])  # a PPO name, not A2C's
    with pytest.raises(runs.ConfigError, match="'gae_lambda' is not a hyperparameter"):
        exp.validate(config)  # pyright: ignore[reportOptionalCall]
    exp, config = _config(["deploy_settings=gamma=1.5"])
    with pytest.raises(runs.ConfigError, match="gamma=1.5: gamma and lam must lie"):
        exp.validate(config)  # pyright: ignore[reportOptionalCall]
    exp, config = _config(["deploy_settings=lam=0.9"], name=ANT)
    with pytest.raises(runs.ConfigError, match="'lam' is not a hyperparameter"):
        exp.validate(config)  # pyright: ignore[reportOptionalCall]
    exp, config = _config(["reset_intervals=2,4"], name=ANT)  # 2 units < m = 4
    with pytest.raises(runs.ConfigError, match="meta.units=2 < meta.reset_interval=4"):
        exp.validate(config)  # pyright: ignore[reportOptionalCall]


class FakeEvals:
    """Stands in for the evaluation protocol: the initialisation scores 3-4, cells 8-9,
    except under `gamma=0.9`, where the initialisation scores 20 (the cell falls below)."""

    def __init__(self):
        self.calls = []

    def __call__(self, stage, optimizer, env, label=None, **extra):
        self.calls.append((stage, optimizer, extra))
        base = 3.0 if stage.startswith("eval-init") else 8.0
        if stage == "eval-init-gamma0.9":
            base = 20.0
        return label, {"final_returns": [base, base + 0.5, base + 1.0, base + 0.2]}


class FakeOptimizer:
    def __init__(self, path):
        self.path = path

    def with_learning_rate(self, lr):
        return f"{self.path}@{lr:g}"


def _fake_history(meta, env):
    rng = np.random.default_rng(int(meta.lr * 1e6) + meta.reset_interval)
    return [{f"{env}/episode_return": float(x)} for x in rng.normal(5, 1, 3)]


def _check_stubbed(exp, config, run, fake, setting):
    results = exp.run(config, run)
    run.write_results(results)
    report = exp.report(run)
    assert len(results["cells"]) == len(config.cells()) and results["control"] is not None
    # every cell and the initialisation: the main evaluation, one per lr, one per setting
    per = 1 + len(config.deploy_lrs) + len(config.deploy_settings)
    assert len(fake.calls) == per * (len(config.cells()) + 1)
    name, value = sens.parse_setting(setting)
    tag = f"{name}{value:g}"
    init_setting = [c for c in fake.calls if c[0] == f"eval-init-{tag}"]
    assert len(init_setting) == 1 and init_setting[0][2] == {name: value}
    assert init_setting[0][1].endswith("optimizers/init.eqx")
    lr_calls = [c for c in fake.calls if c[0].endswith("-lr0.003")]
    assert lr_calls and all(c[1].endswith("@0.003") for c in lr_calls)
    # mean of 8, 8.5, 9, 8.2 = 8.425; the control's 3.425 lies far below ...
    cell = sens.cell_name(config.meta_lrs[-1], config.reset_intervals[-1], 4)
    assert f"| {cell} | 8.43 [" in report and "(above)" in report
    # ... except under the setting where the control scores 20.4: the cell is below it
    _, row = [line for line in report.splitlines() if line.startswith(f"| {cell} |")]
    assert row.split(" | ")[1].endswith("(above)")  # at lr 3e-3: 8.43 against 3.43
    assert row.rstrip(" |").endswith("(below)")  # under the setting: 8.43 against 20.43
    assert f"| lr 0.003 | {setting} |" in report
    assert (run.plots_dir / "sensitivity.png").is_file()
    return results


def test_stubbed_run_and_report(tmp_path, monkeypatch):
    def fake_meta_train(run_dir, stage, *, kind, envs, meta):
        return {"optimizer_path": f"{stage}.eqx", "history": _fake_history(meta, envs[0]),
                "n_nonfinite_meta_steps": 0, "init_path": "optimizers/init.eqx"}  # fmt: skip

    fake = FakeEvals()
    monkeypatch.setattr(sens, "meta_train", fake_meta_train)
    monkeypatch.setattr(sens, "make_evals", lambda run_dir, ev: fake)
    monkeypatch.setattr(ev, "load_optimizer", FakeOptimizer)
    exp, config = _config(["deploy_lrs=3e-3", "deploy_settings=gamma=0.9"])
    run = runs.RunDir.create(tmp_path, experiment=NAME, scale="cpu", config=config, name="r")
    _check_stubbed(exp, config, run, fake, "gamma=0.9")


def test_stubbed_ant_run_and_report(tmp_path, monkeypatch):
    trained = []

    def fake_meta_train_brax(run_dir, stage, *, env, meta, activation):
        trained.append((meta.lr, meta.reset_interval, meta.units, activation))
        return {"optimizer_path": f"{stage}.eqx", "history": _fake_history(meta, env),
                "n_nonfinite_meta_steps": 0, "init_path": "optimizers/init.eqx"}  # fmt: skip

    fake = FakeEvals()
    monkeypatch.setattr(sens_ant, "meta_train_brax", fake_meta_train_brax)
    monkeypatch.setattr(sens_ant, "make_brax_evals", lambda run_dir, ev, activation: fake)
    monkeypatch.setattr(sens_ant, "validate_brax_common", lambda *a: None)  # Brax not needed
    monkeypatch.setattr(ev, "load_optimizer", FakeOptimizer)
    exp, config = _config(
        ["deploy_lrs=3e-3", "deploy_settings=gamma=0.9", "reset_intervals=1,2"], name=ANT
    )
    run = runs.RunDir.create(tmp_path, experiment=ANT, scale="cpu", config=config, name="r")
    _check_stubbed(exp, config, run, fake, "gamma=0.9")
    assert trained == [(lr, m, 2, "swish") for lr in (1e-4, 1e-3) for m in (1, 2)]


def test_tiny_real_run(tmp_path):
    exp, config = _config(TINY)
    run = runs.RunDir.create(tmp_path, experiment=NAME, scale="cpu", config=config, name="r")
    results = exp.run(config, run)
    (cell,) = results["cells"].values()
    assert len(cell["evaluation"]["final_returns"]) == 2 and "0.003" in cell["deployed"]
    assert results["control"] is not None  # the initialisation, evaluated as the control
    assert set(results["control_settings"]) == {"gamma=0.9"} == set(cell["deployed_settings"])
    assert cell["deployed_settings"]["gamma=0.9"]["agent_config"]["gamma"] == 0.9
    assert (run.path / "optimizers" / "meta-lr0.001-m2-M4-init.eqx").is_file()


@pytest.mark.slow
@pytest.mark.skipif(not HAS_BRAX, reason="needs lorl[brax]")
def test_tiny_real_ant_run(tmp_path):
    exp, config = _config(
        ["meta.steps=2", "meta.checkpoint_every=1", "meta_lrs=1e-3", "eval.seeds=2",
         "eval.timesteps=640", "eval.n_envs=32", "deploy_lrs=1e-3",
         "deploy_settings=gae_lambda=0.9"],
        name=ANT,
    )  # fmt: skip
    run = runs.RunDir.create(tmp_path, experiment=ANT, scale="cpu", config=config, name="r")
    results = exp.run(config, run)
    (cell,) = results["cells"].values()
    assert len(cell["evaluation"]["final_returns"]) == 2
    assert set(results["control_settings"]) == {"gae_lambda=0.9"}
    run.write_results(results)
    assert "## Deployment side" in exp.report(run)
