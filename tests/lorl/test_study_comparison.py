"""`study/comparison`: configs at both scales, validation before compute, a run through a
run folder and its report with stubbed training, and a tiny real run whose repeat reuses
every stored run."""

import importlib.util
import json

import numpy as np
import pytest

from lorl import evaluation as ev, experiments as ex, runs
from lorl.evaluation import _store

NAME = "study/comparison"
TINY = [
    "envs=breakout",
    "optimizers=adam,open",
    "n_seeds=2",
    "agent.n_envs=8",
    "agent.n_steps=16",
    "agent.total_timesteps=256",
    "agent.n_minibatches=2",
    "agent.n_epochs=1",
]


def _config(overrides, scale="cpu"):
    exp = ex.get_experiment(NAME)
    return exp, runs.apply_overrides(exp.config(scale), overrides)


@pytest.mark.parametrize("scale", ["cpu", "paper"])
def test_scales_build_validate_and_round_trip(scale):
    exp = ex.get_experiment(NAME)
    config = exp.config(scale)
    try:
        exp.validate(config)  # pyright: ignore[reportOptionalCall]
    except runs.ConfigError as e:  # paper scale includes Ant: needs the optional Brax
        if importlib.util.find_spec("brax") is not None or "needs Brax" not in str(e):
            raise
    data = json.loads(json.dumps(runs.config_to_dict(config)))
    assert runs.config_from_dict(exp.config_class, data) == config
    assert config.n_seeds == (16 if scale == "paper" else 4)


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        (["envs=pong"], "choose from asterix"),
        (["optimizers=adam,velo"], "velo"),
        (["optimizers=rmsprop"], "must include adam"),
        (["optim4rl_path=/no/such.eqx"], "does not exist"),
    ],
)
def test_bad_configs_fail_before_compute(overrides, match):
    exp, config = _config(overrides)
    with pytest.raises(runs.ConfigError, match=match):
        exp.validate(config)  # pyright: ignore[reportOptionalCall]


def test_run_and_report_with_stubbed_training(tmp_path, monkeypatch):
    def fake_evaluate(optimizer, env, *, seeds, agent, **kwargs):
        rng = np.random.default_rng(hash((str(optimizer), env)) % 2**32)
        base = {"adam": 10.0, "rmsprop": 8.0}.get(str(optimizer), 12.0)
        n, t = len(seeds), 3
        final = base + rng.normal(0, 1, n)
        return ev.EvaluationResult(
            env=env, optimizer=str(optimizer), agent="ppo", seeds=tuple(seeds),
            final_returns=final, steps=np.arange(1, t + 1) * 100,
            returns=np.repeat(final[:, None], t, 1), first_nonfinite_update=-np.ones(n, int),
            timesteps=300, seconds=1.0, agent_config=ev.agent_config_for(env, agent)[1].__dict__,
        )  # fmt: skip

    monkeypatch.setattr(_store, "evaluate", fake_evaluate)
    exp, config = _config(["envs=breakout,asterix", "optimizers=adam,rmsprop,open,optim4rl"])
    run = runs.RunDir.create(tmp_path, experiment=NAME, scale="cpu", config=config, name="r")
    results = exp.run(config, run)
    run.write_results(results)
    report = exp.report(run)
    assert set(results["evaluation"]["breakout"]) == {"adam", "rmsprop", "open:breakout"}
    assert results["not_run"]["asterix"]["optim4rl"] == "no optim4rl_path given"
    assert "## Aggregate over environments" in report and "P(better than Adam)" in report
    assert "| open | " in report  # the per-environment OPENs aggregate as one optimizer
    assert (run.plots_dir / "performance-profiles.png").is_file()
    assert "not run on breakout: optim4rl" in report


def test_tiny_real_run_then_everything_reused(tmp_path, monkeypatch):
    exp, config = _config([*TINY, f"store={tmp_path / 'store'}"])
    first_dir = runs.RunDir.create(tmp_path, experiment=NAME, scale="cpu", config=config, name="a")
    first = exp.run(config, first_dir)
    assert len(ev.ResultStore(tmp_path / "store")) == 4  # 2 optimizers x 2 seeds
    calls = []
    monkeypatch.setattr(_store, "evaluate", lambda *a, **k: calls.append(a))
    second_dir = runs.RunDir.create(tmp_path, experiment=NAME, scale="cpu", config=config, name="b")
    second = exp.run(config, second_dir)
    assert calls == []  # nothing trained again: the shared store had every run
    a, b = first["evaluation"]["breakout"], second["evaluation"]["breakout"]
    assert a["open:breakout"]["final_returns"] == b["open:breakout"]["final_returns"]
