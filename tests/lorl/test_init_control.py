"""Every Optim4RL preset reports its untrained initialisation as a control: the meta
stage saves the optimizer it starts from before training, and both run layouts (learned
vs baselines; with vs without pipeline training) evaluate it beside the meta-trained one.
Meta-training and evaluation are stubbed: what is checked is what gets evaluated."""

import dataclasses

import jax
import numpy as np
import pytest

import lorl_optim as lo
from lorl import experiments as ex, runs
from lorl.evaluation import load_optimizer
from lorl.experiments.optim4rl import _common as shared


class _Boom(RuntimeError):
    pass


class _FailingTrainer:
    def train(self, *args, **kwargs):
        raise _Boom("killed during meta-training")


def _run_dir(tmp_path, name="r"):
    e = ex.get_experiment("optim4rl/pipeline-ablation")
    return runs.RunDir.create(
        tmp_path, experiment=e.name, scale="cpu", config=e.config("cpu"), name=name
    )


def test_meta_stage_saves_the_starting_optimizer_before_training(tmp_path):
    run = _run_dir(tmp_path)
    start = lo.Optim4RL(1e-2, key=jax.random.key(7))

    def build():
        return _FailingTrainer(), start, 7, {"learning_rate": 1e-2}

    with pytest.raises(_Boom):
        shared.meta_stage(run, "meta-x", None, build)
    # the init stage finished before training began, so a failed or killed run keeps it
    assert run.has_result("meta-x-init") and not run.has_result("meta-x")
    saved = load_optimizer(run.path / run.load_result("meta-x-init")["optimizer_path"])
    for a, b in zip(jax.tree.leaves(saved), jax.tree.leaves(start), strict=True):
        if hasattr(a, "shape"):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_meta_stage_with_a_saved_optimizer_has_no_control(tmp_path):
    stored = shared.meta_stage(_run_dir(tmp_path), "meta-x", "given.eqx", lambda: None)
    assert stored["init_path"] is None and stored["optimizer_path"] == "given.eqx"


@dataclasses.dataclass(frozen=True)
class _Evals(shared.Evals):
    """Records what an experiment evaluates, (stage, optimizer, env, label), instead of
    training (an `Evals`, as the run layouts' type hints require)."""

    calls: list = dataclasses.field(default_factory=list)

    def __call__(self, stage, optimizer, env, label=None, **extra):
        self.calls.append((stage, optimizer, env, label))
        return label or optimizer, {"final_returns": [0.0]}


def _evals(run):
    return _Evals(run, [0], 1, {})


def _trained(run, with_init=True):
    def train(stage, *args):
        init = f"optimizers/{stage}-init.eqx" if with_init else None
        return {"optimizer_path": f"{run.path}/{stage}.eqx", "init_path": init}

    return train


def test_learned_vs_baselines_evaluates_each_init(tmp_path):
    run = _run_dir(tmp_path)
    evals = _evals(run)
    out = shared.run_learned_vs_baselines(
        run, "small_dense_short", {"optim4rl": "Optim4RL", "l2lgd2": "L2LGD2"},
        _trained(run), evals, ["adam"],
    )  # fmt: skip
    assert set(out["evaluation"]) == {
        "Optim4RL",
        "Optim4RL (untrained init)",
        "L2LGD2",
        "L2LGD2 (untrained init)",
        "adam",
    }
    init_calls = [c for c in evals.calls if c[0].endswith("-init")]
    assert [c[1] for c in init_calls] == [
        str(run.path / "optimizers/meta-optim4rl-init.eqx"),
        str(run.path / "optimizers/meta-l2lgd2-init.eqx"),
    ]
    # a saved optimizer instead of meta-training: no control to evaluate
    evals2 = _evals(run)
    out2 = shared.run_learned_vs_baselines(
        _run_dir(tmp_path, "r2"), "small_dense_short", {"optim4rl": "Optim4RL"},
        _trained(run, with_init=False), evals2, [],
    )  # fmt: skip
    assert set(out2["evaluation"]) == {"Optim4RL"}


def test_pipeline_ablation_evaluates_the_shared_init_once_per_env(tmp_path):
    run = _run_dir(tmp_path)
    evals = _evals(run)
    out = shared.run_pipeline_ablation(
        run, ["small_dense_short", "big_dense_long"], _trained(run), evals, []
    )
    for env in ("small_dense_short", "big_dense_long"):
        assert set(out["evaluation"][env]) == {
            "with pipeline",
            "without pipeline",
            "untrained init",
        }
    stages = [c[0] for c in evals.calls if c[0].endswith("-init")]
    assert stages == ["eval-small_dense_short-init", "eval-big_dense_long-init"]
