"""Optim4RL meta-trained through PPO in Brax (Fig. 4 Ant, Table 1 Ant/Humanoid): both
scales build with the paper's values, validation before compute, clean skip without
Brax, and (slow, needs Brax) a tiny end-to-end run."""

import json

import pytest
from typer.testing import CliRunner

from lorl import experiments as ex, runs
from lorl._cli import app
from lorl.experiments.optim4rl import _brax as ob

NAMES = ("optim4rl/from-scratch-ant", "optim4rl/pipeline-ablation-brax")


@pytest.mark.parametrize("name", NAMES)
def test_both_scales_build_and_round_trip(name):
    e = ex.get_experiment(name)
    assert "Optim4RL" in e.reproduces and "brax" in e.reproduces
    for scale in ("cpu", "paper"):
        c = e.config(scale)
        assert runs.config_from_dict(type(c), runs.config_to_dict(c)) == c
    assert "meta.reset_interval" in runs.config_keys(e.config("cpu"))


def test_paper_scale_uses_the_papers_values():
    c = ex.get_experiment("optim4rl/from-scratch-ant").config("paper")
    m = c.meta
    assert c.env == "ant"
    assert m.units * m.envs_per_unit == 2048  # Optim4RL App. C.3: n = 2048 environments
    assert m.n_minibatches == 8  # Optim4RL App. C.3: 32 -> 8
    assert m.reset_interval in (512, 1024) and m.inner_updates == 4  # App. C.3, App. C
    assert m.lr in (3e-5, 1e-4, 3e-4, 1e-3) and m.outer_loss == "full"  # App. C.3, App. C
    assert (c.eval.seeds, c.eval.n_envs, c.eval.timesteps) == (10, 2048, 50_000_000)
    p = ex.get_experiment("optim4rl/pipeline-ablation-brax").config("paper")
    assert p.envs == ("ant", "humanoid")
    assert ob.PAPER_BRAX_PIPELINE == {"ant": "7088 ± 178", "humanoid": "7658 ± 282"}
    assert ob.PAPER_BRAX_NO_PIPELINE == {"ant": "5603 ± 631", "humanoid": "7053 ± 272"}


def test_validation_errors_before_compute():
    e = ex.get_experiment("optim4rl/from-scratch-ant")
    with pytest.raises(runs.ConfigError, match="allowed values"):
        runs.apply_overrides(e.config("cpu"), ["env=antt"])
    # A unit's PPO batch that does not split into minibatches: refused when the config
    # is built from the overrides, before any compute.
    with pytest.raises(runs.ConfigError, match="n_minibatches"):
        runs.apply_overrides(e.config("cpu"), ["meta.envs_per_unit=3", "meta.n_minibatches=7"])
    with pytest.raises(runs.ConfigError, match="reset_interval"):
        runs.apply_overrides(e.config("cpu"), ["meta.reset_interval=0"])
    assert e.validate is not None
    with pytest.raises(runs.ConfigError, match="n_minibatches"):
        e.validate(runs.apply_overrides(e.config("cpu"), ["eval.n_minibatches=7"]))
    p = ex.get_experiment("optim4rl/pipeline-ablation-brax")
    assert p.validate is not None
    with pytest.raises(runs.ConfigError, match="optimizer_path"):
        p.validate(runs.apply_overrides(p.config("cpu"), ["meta.optimizer_path=x.eqx"]))


def test_without_brax_the_experiments_refuse_cleanly(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda n, *a: None if n == "brax" else real(n, *a)
    )
    for name in NAMES:
        e = ex.get_experiment(name)
        assert e.validate is not None
        with pytest.raises(runs.ConfigError, match="brax"):
            e.validate(e.config("cpu"))


@pytest.mark.slow
def test_from_scratch_ant_end_to_end(tmp_path):
    """Two meta-iterations through PPO in Ant and a 1-update evaluation (minutes: Brax
    compiles slowly on the CPU)."""
    pytest.importorskip("brax")
    result = CliRunner().invoke(
        app,
        [
            "run",
            "optim4rl/from-scratch-ant",
            "--out",
            str(tmp_path),
            "--name",
            "r",
            "meta.steps=2",
            "meta.units=2",
            "meta.envs_per_unit=2",
            "meta.n_steps=2",
            "meta.n_minibatches=1",
            "meta.n_epochs=1",
            "meta.reset_interval=2",
            "meta.inner_updates=1",
            "eval.seeds=1",
            "eval.n_envs=2",
            "eval.n_minibatches=1",
            "eval.timesteps=20",
            "eval.baselines=adam",
        ],
    )
    assert result.exit_code == 0, result.output
    run = tmp_path / "r"
    res = json.loads((run / "results.json").read_text())
    # The meta-trained optimizer, its untrained initialisation (the control) and Adam.
    assert set(res["evaluation"]) == {"Optim4RL", "Optim4RL (untrained init)", "adam (tuned)"}
    assert (run / "optimizers" / "meta-optim4rl.eqx").is_file()
    assert "7088 ± 178" in (run / "report.md").read_text()


@pytest.mark.parametrize("name", NAMES)
def test_networks_use_the_reference_swish_and_tanh_stays_selectable(name, tmp_path):
    """Meta-training and evaluation build the same 32 x 4 / 64 x 5 networks with Brax's
    default swish (the Optim4RL reference code), or tanh on request."""
    e = ex.get_experiment(name)
    for overrides, activation in (([], "swish"), (["activation=tanh"], "tanh")):
        c = runs.apply_overrides(e.config("cpu"), overrides)
        assert c.activation == activation
        agent = ob._ppo_config(c.meta, c.activation)
        assert agent.activation == activation
        assert (agent.width, agent.n_hidden, agent.critic_width, agent.critic_hidden) == (
            32, 4, 64, 5
        )  # fmt: skip
        run_dir = runs.RunDir.create(tmp_path / activation, experiment=name, scale="cpu", config=c)
        evals = ob.make_brax_evals(run_dir, c.eval, c.activation)
        assert evals.overrides["activation"] == activation
        assert evals.overrides["critic_hidden"] == 5
    with pytest.raises(runs.ConfigError, match="allowed values"):
        runs.apply_overrides(e.config("cpu"), ["activation=gelu"])
