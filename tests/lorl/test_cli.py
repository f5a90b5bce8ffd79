"""The `lorl` CLI through typer's CliRunner: list, errors with suggestions and exit codes
before compute, a real (tiny) run, a killed run resumed without repeating finished
stages, report, and refusing a run folder of another version."""

import json

import pytest
from typer.testing import CliRunner

import lorl.evaluation
from lorl import experiments as ex
from lorl._cli import USER_ERROR, app

runner = CliRunner()

# `lorl evaluate` on small_dense_short with A2C cut down to seconds: 2 seeds, 4 envs,
# 3 updates of 20 steps.
TINY_EVAL = [
    "evaluate",
    "adam:3e-3",
    "--env",
    "small_dense_short",
    "--seeds",
    "2",
    "--timesteps",
    str(4 * 20 * 3),
    "--n-envs",
    "4",
    "--baseline",
    "rmsprop:3e-3",
]


def test_list_shows_every_experiment():
    result = runner.invoke(app, ["list"])
    assert result.exit_code == 0
    for e in ex.experiments():
        assert e.name in result.output
        assert e.reproduces in result.output
    for name in (
        "quickstart",
        "optim4rl/from-scratch-small_dense_short",
        "optim4rl/from-scratch-big_dense_long",
        "optim4rl/pipeline-ablation",
        "optim4rl/inductive-bias-ablation",
        "optim4rl/generalisation-brax",
        "optim4rl/robustness",
    ):
        assert name in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "optim4rl/pipeline-ablaton"], "Did you mean optim4rl/pipeline-ablation"),
        (["run", "quickstart", "meta.stepz=3"], "Did you mean meta.steps"),
        (["run", "quickstart", "eval.seeds=two"], "expected an integer"),
        (["run", "quickstart", "meta.units=0"], "meta.units must be >= 1"),
        (["run", "quickstart", "--scale", "paper"], "no scale 'paper'"),
        (["run", "quickstart", "open_name=brekout"], "no published OPEN optimizer"),
        (["evaluate", "adamm", "--env", "breakout"], "Did you mean 'adam'"),
        (["evaluate", "adam", "--env", "brekout"], "Did you mean 'breakout'"),
        (["resume", "/no/such/run"], "not a lorl run folder"),
    ],
)
def test_user_errors_are_one_line_with_exit_code(args, message, tmp_path):
    result = runner.invoke(app, [*args, "--out", str(tmp_path)] if args[0] != "resume" else args)
    assert result.exit_code == USER_ERROR, result.output
    assert message in result.output
    assert "Traceback" not in result.output
    assert result.output.strip().startswith("error:")
    assert not any(tmp_path.iterdir())  # nothing was created: the error came first


def test_run_kill_resume_report(tmp_path, monkeypatch):
    calls = []
    real = lorl.evaluation.evaluate

    def killed_at_second(*args, **kwargs):
        calls.append(args[0])
        if len(calls) == 2:
            raise KeyboardInterrupt  # as if the process were stopped during stage 2
        return real(*args, **kwargs)

    monkeypatch.setattr(lorl.evaluation, "evaluate", killed_at_second)
    result = runner.invoke(app, [*TINY_EVAL, "--out", str(tmp_path)])
    assert result.exit_code == 130, result.output
    (run_dir,) = tmp_path.iterdir()
    manifest = json.loads((run_dir / "run.json").read_text())
    assert manifest["status"] == "interrupted"
    assert manifest["config"]["optimizer"] == "adam:3e-3"
    assert (run_dir / "results" / "eval-0.json").is_file()
    assert not (run_dir / "results.json").exists()

    counted = []

    def counting(*args, **kwargs):
        counted.append(args[0])
        return real(*args, **kwargs)

    monkeypatch.setattr(lorl.evaluation, "evaluate", counting)
    result = runner.invoke(app, ["resume", str(run_dir)])
    assert result.exit_code == 0, result.output
    assert counted == ["rmsprop:3e-3"]  # the finished stage (adam) was not repeated
    results = json.loads((run_dir / "results.json").read_text())
    runs = results["evaluation"]["small_dense_short"]
    assert set(runs) == {"adam (lr 0.003)", "rmsprop (lr 0.003)"}
    assert len(runs["adam (lr 0.003)"]["final_returns"]) == 2
    assert json.loads((run_dir / "run.json").read_text())["status"] == "complete"
    report = (run_dir / "report.md").read_text()
    assert "IQM" in report and "adam (lr 0.003)" in report
    assert (run_dir / "plots" / "small_dense_short_curves.png").is_file()

    # A second resume of a complete run recomputes nothing; report rewrites report.md.
    counted.clear()
    assert runner.invoke(app, ["resume", str(run_dir)]).exit_code == 0
    assert counted == []
    (run_dir / "report.md").unlink()
    result = runner.invoke(app, ["report", str(run_dir)])
    assert result.exit_code == 0 and (run_dir / "report.md").is_file()

    # A run folder written by another lorl version is refused, before any compute.
    manifest = json.loads((run_dir / "run.json").read_text())
    manifest["versions"]["lorl"] = "0.0.1"
    (run_dir / "run.json").write_text(json.dumps(manifest))
    result = runner.invoke(app, ["resume", str(run_dir)])
    assert result.exit_code == USER_ERROR
    assert "written by lorl 0.0.1" in result.output and counted == []


CHECK_NO_JAX = """
import sys
from typer.testing import CliRunner
from lorl._cli import app

for args, code in (
    (["run", "quickstart", "meta.stepz=1"], 2),
    (["run", "open/gridwrld"], 2),
    (["run", "open/published", "evaluation.seed_group=x"], 2),
    (["list"], 0),
    (["list", "--keys", "open/published"], 0),
    (["run", "--help"], 0),
):
    result = CliRunner().invoke(app, args)
    assert result.exit_code == code, (args, result.output)
loaded = [m for m in ("jax", "lorl_agents", "lorl_meta", "lorl_optim", "lorl_gridworlds",
                      "gymnax", "brax") if m in sys.modules
          and type(sys.modules[m]).__name__ != "_LazyModule"]
print(loaded)
"""


def test_names_and_configs_are_checked_before_the_jax_stacks_load():
    # A mistyped key or experiment, `lorl list` and `--help` answer without importing
    # JAX or the environment stacks (which take seconds): nothing of them is loaded.
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-c", CHECK_NO_JAX], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_list_keys_shows_every_key_with_its_default_per_scale():
    from typer.testing import CliRunner

    from lorl._cli import app

    out = CliRunner().invoke(app, ["list", "--keys", "optim4rl/pipeline-ablation"])
    assert out.exit_code == 0, out.output
    lines = out.output.splitlines()
    assert any(line.split()[:1] == ["key"] and "paper scale" in line for line in lines)
    row = next(line.split() for line in lines if line.startswith("meta.units "))
    assert row[1:] == ["64", "512"]  # cpu scale, then the paper's n = 512
    bad = CliRunner().invoke(app, ["list", "--keys", "optim4rl/pipline-ablation"])
    assert bad.exit_code == 2 and "Did you mean optim4rl/pipeline-ablation" in bad.output
