"""The OPEN experiments of `lorl.experiments`: configs build and validate at both scales,
bad configs fail before compute, and one tiny ES experiment runs end to end through a
`RunDir`, then resumes without repeating a finished stage."""

import importlib.util
import json

import numpy as np
import pytest

import lorl_meta as lm
from lorl import experiments as ex, runs
from lorl.experiments.open import _common as open_common

OPEN_NAMES = (
    "open/single-task",
    "open/multi-task",
    "open/gridworld",
    "open/feature-ablations",
    "open/deep-sea",
    "open/published",
)


def test_every_open_experiment_is_registered_and_cites_its_figure():
    names = {e.name for e in ex.experiments() if e.name.startswith("open/")}
    assert names == set(OPEN_NAMES)
    for name in OPEN_NAMES:
        assert "OPEN Figure" in ex.get_experiment(name).reproduces


@pytest.mark.parametrize("name", OPEN_NAMES)
@pytest.mark.parametrize("scale", ["cpu", "paper"])
def test_configs_build_validate_and_round_trip(name, scale):
    exp = ex.get_experiment(name)
    config = exp.config(scale)
    assert exp.validate is not None
    try:
        exp.validate(config)
    except runs.ConfigError as e:
        # Configs that include Ant need the optional Brax; where it is not installed (the
        # CI environment of this package) validation must say so, before compute.
        if importlib.util.find_spec("brax") is not None or "needs Brax" not in str(e):
            raise
    data = runs.config_to_dict(config)
    assert runs.config_from_dict(exp.config_class, json.loads(json.dumps(data))) == config
    # every key can be overridden from the command line
    assert runs.config_keys(config)


def test_paper_scales_use_table7_and_table3():
    # OPEN Table 7: MinAtar sigma 0.03 lr 0.03 pop 64 eval 24; breakout: ~500 generations.
    single = ex.get_experiment("open/single-task").config("paper")
    es = single.es.resolve("open", "breakout", "minatar")
    assert (es.sigma_init, es.lr, es.population_size, es.eval_every) == (0.03, 0.03, 64, 24)
    assert es.n_generations == 500
    assert single.evaluation.n_seeds == 16  # Figure 2
    ant = single.es.resolve("open", "ant", "ant")
    assert (ant.sigma_init, ant.lr, ant.population_size) == (0.01, 0.01, 32)
    grid = ex.get_experiment("open/gridworld").config("paper")
    g = grid.es.resolve("open", "gridworld", "gridworld")
    assert (g.sigma_init, g.lr, g.lr_decay, g.eval_every) == (0.01, 0.005, 0.990, 9)
    assert grid.evaluation.n_seeds == 64  # Figure 4
    multi = ex.get_experiment("open/multi-task").config("paper")
    m = multi.es.resolve("open", "multi_task", "multi_task")
    assert (m.n_generations, m.sigma_decay, m.lr_decay) == (300, 0.998, 0.998)
    # Table 3: PPO on MinAtar, total steps rounded down to whole updates of 64 x 128.
    agent = single.agent.config(open_common.base_agent("breakout"))
    assert (agent.n_envs, agent.n_steps, agent.n_minibatches, agent.n_epochs) == (64, 128, 8, 4)
    assert agent.total_timesteps == (10_000_000 // (64 * 128)) * 64 * 128
    abl = ex.get_experiment("open/feature-ablations").config("paper")
    assert abl.n_optimizers == 17 and abl.agent.total_timesteps == 200_000  # Appendix I.1
    assert ex.get_experiment("open/deep-sea").config("paper").train_sizes == tuple(range(4, 27))


def _bad(name, overrides, match, error=runs.ConfigError):
    exp = ex.get_experiment(name)
    with pytest.raises(error, match=match):
        exp.validate(runs.apply_overrides(exp.config("cpu"), overrides))  # pyright: ignore[reportOptionalCall]


def test_validation_errors_before_compute():
    _bad("open/single-task", ["es.population_size=7"], "even")
    _bad("open/multi-task", ["es.population_size=0"], "even")
    _bad("open/single-task", ["learned=open,adam"], "unknown or unsupported optimizer 'adam'")
    _bad("open/multi-task", ["learned=optim4rl"], "unsupported optimizer 'optim4rl'")
    _bad("open/gridworld", ["eval_envs=all,moon"], "unknown level distribution 'moon'")
    _bad("open/gridworld", ["evaluation.baselines=lion"], "no tuned values")
    _bad("open/single-task", ["agent.n_minibatches=7"], "minibatches")
    _bad("open/feature-ablations", ["variants=open,no_memory"], "no_memory")
    _bad("open/deep-sea", ["evaluation.baselines=adam"], "no tuned baselines")
    _bad("open/published", ["envs=pong"], "no published OPEN optimizer")
    _bad("open/single-task", ["es.n_generations=none", "learned=separated"], "unsupported")
    with pytest.raises(runs.UnknownOverrideError, match="population_size"):
        runs.apply_overrides(
            ex.get_experiment("open/single-task").config("cpu"), ["es.populaton_size=8"]
        )


def test_population_must_divide_over_devices(monkeypatch):
    # On a 3-device mesh a population of 8 cannot be sharded evenly; 6 can.
    import types

    import lorl.sharding._mesh as mesh_module

    monkeypatch.setattr(mesh_module, "_mesh", lambda mesh=None: types.SimpleNamespace(size=3))
    _bad("open/single-task", ["es.population_size=8"], "not divisible by the 3 devices")
    _bad("open/gridworld", ["es.population_size=4"], "not divisible by the 3 devices")
    exp = ex.get_experiment("open/single-task")
    exp.validate(runs.apply_overrides(exp.config("cpu"), ["es.population_size=6"]))  # pyright: ignore[reportOptionalCall]


def test_ant_without_brax_is_a_clear_error(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "brax" else real(name, *a)
    )
    _bad("open/single-task", ["env=ant"], "needs Brax")
    _bad("open/published", ["envs=ant"], "needs Brax")


# ------------------------------------------------------------------ tiny end-to-end run

TINY = [
    "env=breakout",
    "learned=open",
    "es.n_generations=2",
    "es.population_size=2",
    "es.eval_every=1",  # validate every generation: one compiled generation program
    "es.n_validation=1",
    "agent.n_envs=2",
    "agent.n_steps=8",
    "agent.total_timesteps=48",
    "agent.n_minibatches=1",
    "agent.n_epochs=1",
    "evaluation.n_seeds=2",
    "evaluation.baselines=adam",
]


def _run(exp, config, run_dir):
    results = exp.run(config, run_dir)
    run_dir.write_results(results)
    run_dir.write_report(exp.report(run_dir))
    return results


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    exp = ex.get_experiment("open/single-task")
    config = runs.apply_overrides(exp.config("cpu"), TINY)
    exp.validate(config)  # pyright: ignore[reportOptionalCall]
    root = tmp_path_factory.mktemp("runs")
    run_dir = runs.RunDir.create(
        root, experiment=exp.name, scale="cpu", config=config, overrides=TINY
    )
    results = _run(exp, config, run_dir)
    return exp, config, run_dir, results


def test_tiny_single_task_end_to_end(tiny_run):
    exp, config, run_dir, results = tiny_run
    es = results["es"]["open"]
    assert es["n_generations"] == 2 and len(es["history"]) == 2
    assert es["best_generation"] in (1, 2)
    assert all(np.isfinite(row["validation_score"]) for row in es["history"])
    assert (run_dir.path / es["meta_parameters"]).is_file()
    assert any(run_dir.checkpoint_dir("es-open").iterdir())
    per_opt = results["evaluation"]["breakout"]
    assert set(per_opt) == {"open", "adam"}
    for r in per_opt.values():
        assert len(r["final_returns"]) == 2
        assert np.asarray(r["returns"]).shape == (2, 3)  # 2 seeds x 3 updates
        assert all(np.isfinite(float(x)) for x in r["final_returns"])
    report = (run_dir.path / "report.md").read_text()
    assert "OPEN Figure 2" in report and "IQM" in report and "| open |" in report
    assert (run_dir.plots_dir / "curves-breakout.png").is_file()
    assert json.loads((run_dir.path / "results.json").read_text())["es"]["open"]["history"]


def test_resume_repeats_no_finished_stage(tiny_run, monkeypatch):
    exp, config, run_dir, results = tiny_run
    # Forget one evaluation stage: a resumed run recomputes exactly that one.
    (run_dir.path / "results" / "eval-breakout-adam.json").unlink()
    calls = []

    def no_es(*args, **kwargs):
        raise AssertionError("the finished ES stage was repeated")

    import lorl.evaluation as ev

    real_evaluate = ev.evaluate

    def counting(optimizer, env, **kwargs):
        calls.append(optimizer if isinstance(optimizer, str) else type(optimizer).__name__)
        return real_evaluate(optimizer, env, **kwargs)

    monkeypatch.setattr(lm.ESTrainer, "train", no_es)
    monkeypatch.setattr(ev, "evaluate", counting)
    reopened = runs.RunDir.open(run_dir.path)
    again = _run(exp, config, reopened)
    assert calls == ["adam"]
    assert again["es"] == runs.to_jsonable(results["es"])
    assert again["evaluation"]["breakout"]["open"] == runs.to_jsonable(
        results["evaluation"]["breakout"]["open"]
    )


# ------------------------------------------------------------------ glue of every experiment


@pytest.mark.parametrize("name", OPEN_NAMES)
def test_every_experiment_runs_and_reports_with_stubbed_compute(name, tmp_path, monkeypatch):
    """Each cpu scale's stages, folders, results and report, with the compute replaced
    by stubs (ES returns its initial optimizer, evaluations return fixed returns): the
    glue between ES, evaluation, results.json and report.md, in seconds."""
    import types

    import lorl.evaluation as ev

    oc = open_common

    def fake_train(self, optimizer, *, seed, checkpoint_dir=None, log_dir=None, **kwargs):
        n = self.config.n_generations
        history = [{"generation": g + 1, "mean_score": 0.1 * g} for g in range(n)]
        return types.SimpleNamespace(
            optimizer=optimizer, best_generation=n, best_score=0.5, history=history
        )

    def fake_returns(label, n_seeds, n_updates):
        base = 1.0 + (sum(map(ord, str(label))) % 7) / 7
        rng = np.random.default_rng(n_seeds)
        returns = base + 0.1 * rng.normal(size=(n_seeds, n_updates))
        return returns[:, -1], np.arange(1, n_updates + 1), returns

    def fake_evaluate(optimizer, env, *, seeds, agent, label, on_nonfinite, **kwargs):
        final, steps, returns = fake_returns(label, len(seeds), agent.n_updates)
        return ev.EvaluationResult(
            env=env,
            optimizer=label,
            agent="ppo",
            seeds=tuple(seeds),
            final_returns=final,
            steps=steps,
            returns=returns,
            first_nonfinite_update=np.full(len(seeds), -1),
            timesteps=int(steps[-1]),
            seconds=0.0,
            agent_config={},
        )

    def fake_train_seeds(optimizer, env, env_params, agent, seeds):
        final, steps, returns = fake_returns(type(optimizer).__name__, len(seeds), agent.n_updates)
        record = oc.eval_record(final, steps, returns, np.full(len(seeds), -1))
        record["dormancy"] = np.full(len(seeds), 0.25)
        return record

    def fake_behaviour_curves(optimizer, env, params, agent, seeds, max_points):
        ratio = np.linspace(2.0, 1.0, 5)[None] * np.ones((len(seeds), 1))
        return {"noise_param_ratio": ratio, "steps": np.arange(1, 6), "final_returns": [0.0]}

    import lorl.analysis

    monkeypatch.setattr(lm.ESTrainer, "train", fake_train)
    monkeypatch.setattr(ev, "evaluate", fake_evaluate)
    monkeypatch.setattr(oc, "train_seeds", fake_train_seeds)
    monkeypatch.setattr(lorl.analysis, "behaviour_curves", fake_behaviour_curves)
    exp = ex.get_experiment(name)
    config = exp.config("cpu")
    run_dir = runs.RunDir.create(tmp_path, experiment=name, scale="cpu", config=config)
    results = _run(exp, config, run_dir)
    assert json.loads((run_dir.path / "results.json").read_text())
    report = (run_dir.path / "report.md").read_text()
    assert exp.reproduces.split(" (")[0] in report
    assert "Paper" in report and "[" in report  # the paper's statement and CIs
    assert "failed" not in report
    assert list(run_dir.plots_dir.glob("*.png"))
    for stage in results.get("es", {}):
        assert (run_dir.path / "optimizers" / f"es-{stage}.eqx").is_file()
    if name == "open/deep-sea":  # Figure 14: the stochastic optimizer only, every size
        assert set(results["noise"]) == {"separated"}
        assert set(results["noise"]["separated"]) == {"4", "10"}
        assert "| separated | 10 | 2 | 1 | 1.5 |" in report
        assert (run_dir.plots_dir / "noise-separated.png").is_file()


def test_multi_task_accepts_ant_beside_the_minatar_games():
    # the comparative study's discrete + continuous multi-task run (003): each
    # environment keeps its own PPO column of OPEN Table 3
    exp = ex.get_experiment("open/multi-task")
    config = runs.apply_overrides(
        exp.config("paper"), ["envs=asterix,breakout,freeway,space_invaders,ant"]
    )
    try:
        exp.validate(config)  # pyright: ignore[reportOptionalCall]
    except runs.ConfigError as e:
        if importlib.util.find_spec("brax") is not None or "needs Brax" not in str(e):
            raise
    assert open_common.base_agent("ant").n_envs == 2048  # OPEN Table 3, Ant
    _bad("open/multi-task", ["envs=breakout,pong"], "allowed values are")
