"""The Optim4RL experiment presets: configs at both scales, the paper's values, overrides
down to seconds, validation before compute, and (slow) a real end-to-end run."""

import importlib.util
import json
import re

import numpy as np
import pytest
from typer.testing import CliRunner

from lorl import experiments as ex, runs
from lorl._cli import app
from lorl.experiments.optim4rl import _robustness as o4

NAMES = (
    "optim4rl/from-scratch-small_dense_short",
    "optim4rl/from-scratch-big_dense_long",
    "optim4rl/pipeline-ablation",
    "optim4rl/inductive-bias-ablation",
    "optim4rl/generalisation-brax",
    "optim4rl/robustness",
)


@pytest.mark.parametrize("name", NAMES)
def test_both_scales_build_and_round_trip(name):
    e = ex.get_experiment(name)
    assert "Optim4RL" in e.reproduces
    for scale in ("cpu", "paper"):
        c = e.config(scale)
        assert runs.config_from_dict(type(c), runs.config_to_dict(c)) == c
    # every key is overridable from the command line
    keys = runs.config_keys(e.config("cpu"))
    assert "meta.steps" in keys


def test_paper_scale_uses_the_papers_values():
    c = ex.get_experiment("optim4rl/from-scratch-small_dense_short").config("paper")
    assert (c.meta.units, c.meta.envs_per_unit) == (512, 1)  # Optim4RL App. C.3
    assert c.meta.reset_interval in (256, 512) and c.meta.inner_updates == 4
    assert c.meta.lr in (3e-5, 1e-4, 3e-4, 1e-3) and c.meta.outer_loss == "actor"
    assert (c.eval.seeds, c.eval.n_envs) == (10, 512)
    assert c.eval.timesteps == 512 * 20 * 2929  # 3e7 steps
    g = ex.get_experiment("optim4rl/generalisation-brax").config("paper")
    assert len(g.train_envs) == 6 and len(g.brax_envs) == 8
    assert (g.n_envs, g.n_minibatches, g.timesteps) == (2048, 32, 50_000_000)  # OPEN T3
    r = ex.get_experiment("optim4rl/robustness").config("paper")
    assert r.lam == (0.9, 0.95, 0.99, 0.995) and r.ent_coef == (0.005, 0.01, 0.02, 0.04)
    assert set(o4.PAPER_ROBUSTNESS["big_dense_long"]["gamma"]) == set(r.gamma)
    p = ex.get_experiment("optim4rl/pipeline-ablation").config("paper")
    assert p.envs == ("small_dense_short", "big_dense_long")


def test_cpu_scales_overridable_down_to_seconds():
    e = ex.get_experiment("optim4rl/pipeline-ablation")
    c = runs.apply_overrides(
        e.config("cpu"),
        [
            "meta.steps=1",
            "meta.units=2",
            "meta.reset_interval=2",
            "eval.seeds=1",
            "eval.n_envs=2",
            "eval.updates=1",
            "eval.baselines=adam,rmsprop",
        ],
    )
    assert (
        c.meta.steps == 1 and c.eval.timesteps == 2 * 20 and c.eval.baselines == ("adam", "rmsprop")
    )
    assert e.validate is not None
    e.validate(c)


def test_validation_errors_before_compute():
    e = ex.get_experiment("optim4rl/robustness")
    with pytest.raises(runs.ConfigError, match=r"\[0, 1\]"):
        e.validate(runs.apply_overrides(e.config("cpu"), ["gamma=0.9,1.5"]))  # pyright: ignore[reportOptionalCall]
    with pytest.raises(runs.ConfigError, match="allowed values"):
        runs.apply_overrides(e.config("cpu"), ["env=small_dense_shrt"])
    p = ex.get_experiment("optim4rl/pipeline-ablation")
    with pytest.raises(runs.ConfigError, match="optimizer_path"):
        p.validate(runs.apply_overrides(p.config("cpu"), ["meta.optimizer_path=x.eqx"]))  # pyright: ignore[reportOptionalCall]


@pytest.mark.slow
def test_from_scratch_end_to_end(tmp_path):
    """Meta-train Optim4RL for 2 iterations and evaluate it and Adam (about a minute)."""
    result = CliRunner().invoke(
        app,
        [
            "run",
            "optim4rl/from-scratch-small_dense_short",
            "--out",
            str(tmp_path),
            "--name",
            "r",
            "meta.steps=2",
            "meta.units=2",
            "meta.reset_interval=2",
            "meta.checkpoint_every=1",
            "eval.seeds=2",
            "eval.n_envs=2",
            "eval.updates=3",
            "eval.baselines=adam",
        ],
    )
    assert result.exit_code == 0, result.output
    run = tmp_path / "r"
    res = json.loads((run / "results.json").read_text())
    assert "Optim4RL (untrained init)" in res["evaluation"]  # the control
    (adam,) = set(res["evaluation"]) - {"Optim4RL", "Optim4RL (untrained init)"}
    assert re.fullmatch(r"adam \(lr [0-9.e-]+, tuned\)", adam), res["evaluation"].keys()
    assert (run / "optimizers" / "meta-optim4rl.eqx").is_file()
    assert any((run / "checkpoints" / "meta-optim4rl").iterdir())
    assert "11.31 ± 0.07" in (run / "report.md").read_text()  # the paper's number beside ours
    # `lorl evaluate` takes the run folder as the optimizer
    out = CliRunner().invoke(
        app,
        [
            "evaluate",
            str(run),
            "--env",
            "small_dense_short",
            "--seeds",
            "1",
            "--n-envs",
            "2",
            "--timesteps",
            "120",
            "--out",
            str(tmp_path),
        ],
    )
    assert out.exit_code == 0, out.output


# ------------------------------------------------------------------ glue of every experiment

BRAX_NAMES = ("optim4rl/from-scratch-ant", "optim4rl/pipeline-ablation-brax")
HAS_BRAX = importlib.util.find_spec("brax") is not None


def _fake_meta_train(self, optimizer, *, seed, checkpoint_dir=None, log_dir=None, **kwargs):
    """Stands in for both meta-gradient trainers' `train`: the initial optimizer back, a
    meta-loss history that falls from 1 to 0."""
    import types

    n = self.config.n_meta_steps
    history = [{"meta_iteration": i, "meta_loss": 1.0 - i / max(n - 1, 1)} for i in range(n)]
    state = types.SimpleNamespace(n_nonfinite=0)
    return types.SimpleNamespace(optimizer=optimizer, state=state, history=history)


def _fake_evaluate(optimizer, env, *, seeds, timesteps=None, agent_overrides=None, label=None,
                   on_nonfinite="raise", **kwargs):  # fmt: skip
    """Stands in for `lorl.evaluation.evaluate`: returns that depend on the label and the
    hyperparameter overrides (so each table cell differs), on 4 updates."""
    from lorl.evaluation import EvaluationResult

    name = label if label is not None else f"{optimizer} (tuned)"
    overrides = dict(agent_overrides or {})
    base = 1.0 + (sum(map(ord, name + repr(sorted(overrides.items())))) % 13) / 13
    returns = base + 0.1 * np.arange(len(seeds) * 4, dtype=float).reshape(len(seeds), 4)
    return EvaluationResult(
        env=env,
        optimizer=name,
        agent="ppo" if env in ("ant", "humanoid") else "a2c",
        seeds=tuple(seeds),
        final_returns=returns[:, -1],
        steps=np.arange(1, 5) * 100,
        returns=returns,
        first_nonfinite_update=np.full(len(seeds), -1),
        timesteps=timesteps or 400,
        seconds=0.0,
        agent_config=overrides,
    )


@pytest.mark.parametrize(
    "name",
    # The Brax meta-training experiments build Ant (a minute and more on a loaded CPU).
    NAMES + tuple(pytest.param(n, marks=pytest.mark.slow) for n in BRAX_NAMES),
)
def test_every_experiment_runs_and_reports_with_stubbed_compute(name, tmp_path, monkeypatch):
    """Each cpu scale's stages, saved optimizers, results and report with the compute
    replaced by stubs (meta-training returns its initial optimizer, evaluations fixed
    returns): the glue between meta-training, evaluation, results.json and report.md, in
    seconds."""
    if (name in BRAX_NAMES or "brax" in name) and not HAS_BRAX:
        pytest.skip("needs brax")
    import lorl.evaluation as ev
    import lorl_meta as lm

    monkeypatch.setattr(lm.MetaGradientTrainer, "train", _fake_meta_train)
    monkeypatch.setattr(lm.PPOMetaGradientTrainer, "train", _fake_meta_train)
    monkeypatch.setattr(ev, "evaluate", _fake_evaluate)
    exp = ex.get_experiment(name)
    config = exp.config("cpu")
    assert exp.validate is not None
    exp.validate(config)
    run_dir = runs.RunDir.create(tmp_path, experiment=name, scale="cpu", config=config)
    results = exp.run(config, run_dir)
    run_dir.write_results(results)
    run_dir.write_report(exp.report(run_dir))
    stored = json.loads((run_dir.path / "results.json").read_text())
    report = (run_dir.path / "report.md").read_text()
    assert exp.reproduces.split(" (")[0].split(";")[0] in report
    assert "## Meta-training" in report and "1 → 0" in report  # the stub's meta-loss
    for stage, meta in stored["meta"].items():
        assert meta["optimizer_path"] == f"optimizers/meta-{stage}.eqx"
        assert (run_dir.path / meta["optimizer_path"]).is_file()
    # every evaluation's mean ± s.e. stands in the report
    from lorl._report import mean_se

    def leaves(d):
        if "final_returns" in d:
            yield d
        else:
            for v in d.values():
                yield from leaves(v)

    evals = list(leaves(stored["evaluation"]))
    assert evals
    for r in evals:
        assert mean_se(r["final_returns"]).split(" ± ")[0] in report, (r["optimizer"], report)
    expected = {
        "optim4rl/from-scratch-small_dense_short": ["11.31 ± 0.07", "adam (tuned)"],
        "optim4rl/from-scratch-big_dense_long": ["23.14 ± 0.33", "rmsprop (tuned)"],
        "optim4rl/pipeline-ablation": ["11.31 ± 0.07", "11.15 ± 0.10", "without pipeline"],
        "optim4rl/inductive-bias-ablation": ["LinearOptim", "L2LGD2", "fails (Fig. 4)"],
        "optim4rl/generalisation-brax": ["PPO on ant", "7088 ± 178", "Optim4RL"],
        "optim4rl/robustness": ["11.51 ± 0.11", "11.01 ± 0.09", "10.81 ± 0.10", "12.47 ± 0.08"],
        "optim4rl/from-scratch-ant": ["7088 ± 178", "PPO on ant", "rmsprop (tuned)"],
        "optim4rl/pipeline-ablation-brax": ["7088 ± 178", "5603 ± 631", "PPO on ant"],
    }[name]
    for text in expected:
        assert text in report, (text, report)


@pytest.mark.parametrize("name", [*NAMES, "quickstart"])
def test_pipeline_schedule_covers_every_phase_in_every_preset(name):
    # Optim4RL Section 5.1 spreads the units' reset offsets over [0, m - 1]: a preset
    # with fewer units than m would leave phases of the schedule without a unit.
    e = ex.get_experiment(name)
    for scale in e.scales:
        meta = e.config(scale).meta
        assert meta.units >= meta.reset_interval, (name, scale)
    bad = runs.apply_overrides(e.config("cpu"), ["meta.units=2", "meta.reset_interval=3"])
    with pytest.raises(runs.ConfigError, match=r"meta.units=2 < meta.reset_interval=3"):
        e.validate(bad)  # pyright: ignore[reportOptionalCall]


def test_no_pipeline_ablation_needs_no_schedule():
    e = ex.get_experiment("optim4rl/from-scratch-small_dense_short")
    c = runs.apply_overrides(
        e.config("cpu"), ["meta.units=2", "meta.reset_interval=3", "meta.pipeline=false"]
    )
    e.validate(c)  # pyright: ignore[reportOptionalCall]
