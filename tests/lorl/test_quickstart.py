"""`lorl quickstart` end to end at a few seconds of compute per phase (slow: it compiles a
meta-gradient program, two A2C and two PPO programs)."""

import json
import re

import pytest
from typer.testing import CliRunner

from lorl import experiments as ex, runs
from lorl._cli import app

TINY = [
    "meta.steps=2",
    "meta.units=2",
    "meta.reset_interval=2",
    "meta.checkpoint_every=1",
    "eval.seeds=2",
    "eval.n_envs=2",
    "eval.updates=3",
    "eval.baselines=adam",
    "open_seeds=2",
    f"open_timesteps={8 * 128 * 3}",
    "open_n_envs=8",
]


def test_quickstart_defaults_fit_the_brief():
    c = ex.get_experiment("quickstart").config("cpu")
    assert c.env == "small_dense_short" and c.open_env == "breakout"
    assert c.eval.baselines == ("adam", "rmsprop") and c.eval.seeds >= 5
    assert c.eval.first_seed >= 1000  # fresh seeds, unused by meta-training
    ex.get_experiment("quickstart").validate(runs.apply_overrides(c, TINY))  # pyright: ignore[reportOptionalCall]


@pytest.mark.slow
def test_quickstart_end_to_end(tmp_path):
    result = CliRunner().invoke(app, ["quickstart", "--out", str(tmp_path), *TINY])
    assert result.exit_code == 0, result.output
    (run,) = tmp_path.iterdir()
    res = json.loads((run / "results.json").read_text())
    control = "Optim4RL (untrained init)"  # meta-training is measured against it
    assert control in res["gridworld"] and control in (run / "report.md").read_text()
    (adam,) = set(res["gridworld"]) - {"Optim4RL (meta-trained here)", control}
    assert re.fullmatch(r"adam \(lr [0-9.e-]+, tuned\)", adam), res["gridworld"].keys()
    assert set(res["minatar"]) == {"OPEN (breakout)", "adam (tuned)"}
    report = (run / "report.md").read_text()
    assert "IQM" in report and "Time per phase" in report
    assert "says nothing about the paper's claim" in report  # the short OPEN run, honestly
    for png in ("gridworld_curves.png", "minatar_curves.png", "gridworld_intervals.png"):
        assert (run / "plots" / png).is_file()
    assert str(run) in result.output
