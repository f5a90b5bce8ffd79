"""Run folders, config overrides and the experiment registry (no JAX compute)."""

import dataclasses
import json
from typing import Literal

import pytest

from lorl import experiments as ex, runs


@dataclasses.dataclass(frozen=True)
class Meta:
    lr: float = 1e-3
    iterations: int = 10
    clip: float | None = None


@dataclasses.dataclass(frozen=True)
class Config:
    seed: int = 0
    env: Literal["small_dense_short", "big_dense_long"] = "small_dense_short"
    pipeline: bool = True
    widths: tuple[int, ...] = (16, 16)
    meta: Meta = dataclasses.field(default_factory=Meta)

    def __post_init__(self):
        if self.seed < 0:
            raise ValueError("seed must be >= 0")


def test_overrides_parse_by_type():
    c = runs.apply_overrides(
        Config(),
        [
            "seed=3",
            "env=big_dense_long",
            "pipeline=false",
            "widths=8,4,2",
            "meta.lr=3e-4",
            "meta.iterations=1e2",
            "meta.clip=0.5",
        ],
    )
    assert c == Config(3, "big_dense_long", False, (8, 4, 2), Meta(3e-4, 100, 0.5))
    assert runs.apply_overrides(c, ["meta.clip=none"]).meta.clip is None
    assert Config().seed == 0  # the input is unchanged


def test_override_errors_are_clear():
    with pytest.raises(runs.UnknownOverrideError, match=r"meta\.lr"):
        runs.apply_overrides(Config(), ["meta.lrr=1"])
    with pytest.raises(runs.UnknownOverrideError, match="seed"):
        runs.apply_overrides(Config(), ["sead=1"])
    with pytest.raises(runs.ConfigError, match="allowed values"):
        runs.apply_overrides(Config(), ["env=atari"])
    with pytest.raises(runs.ConfigError, match="integer"):
        runs.apply_overrides(Config(), ["seed=1.5"])
    with pytest.raises(runs.ConfigError, match="true or false"):
        runs.apply_overrides(Config(), ["pipeline=maybe"])
    with pytest.raises(runs.ConfigError, match="key=value"):
        runs.apply_overrides(Config(), ["seed"])
    with pytest.raises(runs.ConfigError, match="seed must be"):
        runs.apply_overrides(Config(), ["seed=-1"])


def test_config_json_round_trip():
    c = Config(widths=(1, 2), meta=Meta(clip=2.0))
    d = runs.config_to_dict(c)
    assert json.loads(json.dumps(d)) == d
    assert runs.config_from_dict(Config, d) == c
    with pytest.raises(runs.ConfigError, match="no field"):
        runs.config_from_dict(Config, {**d, "bogus": 1})


def test_rundir_create_open_stage(tmp_path, monkeypatch):
    run = runs.RunDir.create(tmp_path, experiment="optim4rl/x", scale="cpu", config=Config())
    assert (run.path / "run.json").is_file()
    assert run.path.name.startswith("optim4rl-x-cpu-")
    calls = []

    def compute():
        calls.append(1)
        import numpy as np

        return {"returns": np.arange(3.0), "nan": float("nan")}

    first = run.stage("evaluate", compute)
    again = runs.RunDir.open(run.path).stage("evaluate", compute)
    assert calls == [1]
    assert first == again == {"returns": [0.0, 1.0, 2.0], "nan": "nan"}
    run.set_status("complete")
    assert runs.RunDir.open(run.path).status == "complete"
    with pytest.raises(ValueError, match="stage names"):
        run.stage("a/b", compute)


def test_rundir_refuses_other_versions(tmp_path):
    run = runs.RunDir.create(tmp_path, experiment="e", scale="cpu", config=Config(), name="r")
    with pytest.raises(runs.RunDirError, match="exists already"):
        runs.RunDir.create(tmp_path, experiment="e", scale="cpu", config=Config(), name="r")
    manifest = json.loads((run.path / "run.json").read_text())
    manifest["versions"]["lorl"] = "0.0.1"
    (run.path / "run.json").write_text(json.dumps(manifest))
    with pytest.raises(runs.RunDirError, match=r"written by lorl 0\.0\.1"):
        runs.RunDir.open(run.path)
    manifest["format"] = 99
    (run.path / "run.json").write_text(json.dumps(manifest))
    with pytest.raises(runs.RunDirError, match="format 99"):
        runs.RunDir.open(run.path)
    with pytest.raises(runs.RunDirError, match="not a lorl run folder"):
        runs.RunDir.open(tmp_path / "nothing")


def test_registry_suggests_names():
    exp = ex.Experiment(
        name="test/registry-probe",
        summary="probe",
        reproduces="nothing",
        scales={"cpu": Config},
        run=lambda config, run_dir: {},
        report=lambda run_dir: "",
    )
    ex.register(exp)
    assert ex.get_experiment("test/registry-probe") is exp
    with pytest.raises(runs.UnknownExperimentError, match="registry-probe"):
        ex.get_experiment("test/registry-prob")
    with pytest.raises(ValueError, match="twice"):
        ex.register(exp)
    with pytest.raises(runs.ConfigError, match="no scale 'paper'"):
        exp.config("paper")
    with pytest.raises(ValueError, match="'cpu' scale"):
        ex.Experiment(
            name="x", summary="", reproduces="", scales={}, run=exp.run, report=exp.report
        )


def test_every_module_that_defines_experiments_is_in_the_catalogue():
    # registering by import side effect: a module missing from the catalogue would drop
    # its experiments silently. Load the catalogue, then import every module of the
    # package: nothing new may register, and every experiment's code lies in a listed module.
    import importlib
    import pkgutil

    from lorl import experiments as ex
    from lorl.experiments import _registry

    before = {e.name for e in ex.experiments()}  # loads the catalogue
    for info in pkgutil.walk_packages(ex.__path__, prefix=""):
        importlib.import_module(f"lorl.experiments.{info.name}")
    assert set(_registry._REGISTRY) == before, set(_registry._REGISTRY) - before
    modules = {  # (tests register experiments of their own; only the package's count)
        e.run.__module__.removeprefix("lorl.experiments.")
        for e in ex.experiments()
        if e.run.__module__.startswith("lorl.experiments.")
    }
    assert modules <= set(_registry.CATALOGUE), modules - set(_registry.CATALOGUE)
    assert len(before) >= 20
