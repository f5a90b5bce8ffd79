"""Long evaluations survive a kill: `evaluation.seed_group` stores each group of seeds as a
stage, a process SIGKILLed between two groups is resumed without repeating the stored
group, and the resumed run's returns are bit-identical to an uninterrupted run's.
`lorl evaluate`'s report says which budget ran."""

import json
import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from lorl import experiments as ex, runs
from lorl.experiments._quickstart import budget_banner
from lorl.experiments.open._common import concat_records, eval_record

# breakout only, one published optimizer, no baseline, 3 seeds in groups of 2: two
# groups (10000-10001, 10002), 4 PPO updates of 8 x 16 steps each.
TINY = [
    "envs=breakout",
    "multi=false",
    "evaluation.baselines=",
    "evaluation.n_seeds=3",
    "evaluation.seed_group=2",
    "agent.n_envs=8",
    "agent.n_steps=16",
    "agent.total_timesteps=512",
    "agent.n_minibatches=2",
    "agent.n_epochs=1",
]
FIRST = "eval-breakout-open_breakout-seeds-10000-10001"
WHOLE = "eval-breakout-open_breakout"

# A child process that runs the experiment and SIGKILLs itself right after the first
# seed group is stored: a kill between two groups, at a known point.
CHILD = textwrap.dedent(
    """
    import os, signal, sys
    from lorl import experiments as ex, runs

    save = runs.RunDir.save_result

    def save_then_die(self, stage, result):
        save(self, stage, result)
        if stage == {first!r}:
            os.kill(os.getpid(), signal.SIGKILL)

    runs.RunDir.save_result = save_then_die
    exp = ex.get_experiment("open/published")
    config = runs.apply_overrides(exp.config("cpu"), {tiny!r})
    run = runs.RunDir.create(sys.argv[1], experiment="open/published", scale="cpu",
                             config=config, overrides={tiny!r}, name="killed")
    exp.run(config, run)
    """
).format(first=FIRST, tiny=TINY)


def _config():
    exp = ex.get_experiment("open/published")
    return exp, runs.apply_overrides(exp.config("cpu"), TINY)


def test_seed_group_is_validated():
    exp = ex.get_experiment("open/published")
    with pytest.raises(ValueError, match="seed_group must be >= 0"):
        runs.apply_overrides(exp.config("cpu"), ["evaluation.seed_group=-1"])


def test_concat_records_joins_groups_in_order_and_keeps_nan():
    a = eval_record([1.0, 2.0], [10, 20], [[0.5, 1.0], [1.5, 2.0]], [-1, -1])
    b = json.loads(json.dumps(runs.to_jsonable(eval_record([3.0], [10, 20], [[2.5, 3.0]], [1]))))
    whole = concat_records([a, b])
    assert whole["final_returns"][:2].tolist() == [1.0, 2.0]
    assert np.isnan(whole["final_returns"][2])  # a diverged run stays NaN
    assert whole["returns"].shape == (3, 2) and whole["steps"].tolist() == [10, 20]
    assert whole["first_nonfinite_update"].tolist() == [-1, -1, 1]
    with pytest.raises(ValueError, match="different numbers of updates"):
        concat_records([a, eval_record([1.0], [10], [[0.5]], [-1])])


def test_killed_evaluation_resumes_to_the_uninterrupted_result(tmp_path):
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    child = subprocess.run(
        [sys.executable, "-c", CHILD, str(tmp_path)], env=env, capture_output=True, text=True
    )
    assert child.returncode == -signal.SIGKILL, child.stderr[-2000:]
    killed = runs.RunDir.open(tmp_path / "killed")
    assert killed.has_result(FIRST)
    assert not killed.has_result(WHOLE)  # the second group never finished
    first_stored = (killed.path / "results" / f"{FIRST}.json").read_bytes()

    exp, config = _config()
    resumed = exp.run(config, killed)  # what `lorl resume` does
    # the stored group was loaded, not recomputed
    assert (killed.path / "results" / f"{FIRST}.json").read_bytes() == first_stored

    fresh_dir = runs.RunDir.create(
        tmp_path, experiment="open/published", scale="cpu", config=config, name="fresh"
    )
    fresh = exp.run(config, fresh_dir)
    a = resumed["evaluation"]["breakout"]["open:breakout"]
    b = fresh["evaluation"]["breakout"]["open:breakout"]
    assert len(a["final_returns"]) == 3
    np.testing.assert_array_equal(a["final_returns"], b["final_returns"])
    np.testing.assert_array_equal(a["returns"], b["returns"])


def _stored(timesteps):
    return {"adam": {"timesteps": timesteps}, "open:breakout": {"timesteps": timesteps}}


def test_budget_banner_says_which_budget_ran():
    paper = (10_000_000 // (64 * 128)) * 64 * 128  # OPEN Table 3, whole updates
    text = budget_banner({"breakout": _stored(paper)})
    assert "*paper budget*" in text and f"{paper:,} steps per run (paper: {paper:,})" in text
    text = budget_banner({"breakout": _stored(25_600), "asterix": _stored(paper)})
    assert "*below the paper's budget* on breakout" in text
    assert "asterix" in text and "cpu scale" not in text


def test_evaluation_stages_stored_before_the_shared_stage_still_load(tmp_path, monkeypatch):
    """Run folders of the OPEN experiments stored an evaluation's arrays only; resuming
    them loads those stages (whole and per seed group) as EvaluationResults, nothing is
    trained again."""
    import lorl.evaluation as ev
    from lorl.experiments._stages import evaluate_stage

    _, config = _config()
    run = runs.RunDir.create(tmp_path, experiment="open/published", scale="cpu", config=config)
    a = eval_record([1.0, 2.0], [10, 20], [[0.5, 1.0], [1.5, 2.0]], [-1, -1])
    b = eval_record([3.0], [10, 20], [[2.5, 3.0]], [1])
    run.save_result("eval-x-seeds-5-6", a)
    run.save_result("eval-x-seeds-7-7", b)

    def no_training(*args, **kwargs):
        raise AssertionError("a stored stage was trained again")

    monkeypatch.setattr(ev, "evaluate", no_training)
    r = evaluate_stage(
        run, "eval-x", "adam", "breakout", seeds=[5, 6, 7], label="adam", seed_group=2
    )
    assert (r.env, r.optimizer, r.agent, r.seeds, r.timesteps) == (
        "breakout",
        "adam",
        "ppo",
        (5, 6, 7),
        20,
    )
    np.testing.assert_array_equal(r.final_returns, [1.0, 2.0, np.nan])
    np.testing.assert_array_equal(r.first_nonfinite_update, [-1, -1, 1])
    # the whole is now stored in the full form and loads as it was
    again = evaluate_stage(
        run, "eval-x", "adam", "breakout", seeds=[5, 6, 7], label="adam", seed_group=2
    )
    np.testing.assert_array_equal(again.returns, r.returns)
    assert again.seeds == (5, 6, 7)
