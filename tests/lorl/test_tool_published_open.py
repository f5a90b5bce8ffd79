"""`tools/published_open_results.py`: seed groups of an `open/published` run folder
(finished or not) become one `lorl evaluate`-format JSON per environment and optimizer,
merged across runs, and the results page is written from those files alone."""

import importlib.util
import json
import pathlib

import numpy as np
import pytest

from lorl import evaluation as ev, experiments as ex, runs

_TOOL = pathlib.Path(__file__).resolve().parents[2] / "tools" / "published_open_results.py"


@pytest.fixture(scope="module")
def tool():
    if not _TOOL.is_file():
        pytest.skip("tools/ is not part of this checkout")
    spec = importlib.util.spec_from_file_location("published_open_results", _TOOL)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _fake_run(root, name, seeds, offset):
    exp = ex.get_experiment("open/published")
    overrides = ["envs=breakout", "multi=false", "evaluation.baselines=adam",
                 f"evaluation.seed={seeds[0]}", f"evaluation.n_seeds={len(seeds)}",
                 "evaluation.seed_group=2"]  # fmt: skip
    config = runs.apply_overrides(exp.config("cpu"), overrides)
    run = runs.RunDir.create(root, experiment=exp.name, scale="cpu", config=config, name=name)
    steps = [512 * (i + 1) for i in range(10)]
    for stage, base in (("eval-breakout-open_breakout", 20.0), ("eval-breakout-adam", 10.0)):
        for i in range(0, len(seeds), 2):
            group = seeds[i : i + 2]
            final = [base + offset + s % 7 for s in group]
            run.save_result(f"{stage}-seeds-{group[0]}-{group[-1]}", {
                "final_returns": final, "steps": steps,
                "returns": [[f * (j + 1) / 10 for j in range(10)] for f in final],
                "first_nonfinite_update": [-1] * len(group),
            })  # fmt: skip
    return run.path


def test_collect_merge_and_page(tool, tmp_path, monkeypatch):
    monkeypatch.setattr(tool, "DATA", tmp_path / "data")
    monkeypatch.setattr(tool, "PAGE", tmp_path / "page.md")
    monkeypatch.setattr(tool, "IMG", tmp_path / "img")
    a = _fake_run(tmp_path, "a", [10000, 10001, 10002, 10003], 0.0)
    b = _fake_run(tmp_path, "b", [10004, 10005], 0.0)
    written = tool.collect([a, b], stride=4)
    assert len(set(written)) == 2
    data = json.loads((tmp_path / "data" / "breakout__open_breakout.json").read_text())
    r = ev.EvaluationResult.from_dict(data)  # the format lorl evaluate writes
    assert r.seeds == tuple(range(10000, 10006)) and r.optimizer == "open:breakout"
    assert r.final_returns.tolist() == [20.0 + s % 7 for s in range(10000, 10006)]
    assert r.steps.tolist() == [512, 2560, 4608, 5120]  # every 4th update and the last
    np.testing.assert_allclose(r.returns[0], [r.final_returns[0] * k / 10 for k in (1, 5, 9, 10)])
    assert r.timesteps == r.agent_config["total_timesteps"]
    # a seed seen again with another final return is refused, not silently replaced
    c = _fake_run(tmp_path, "c", [10000, 10001], 1.0)
    with pytest.raises(SystemExit, match="seed 10000 stored with another final return"):
        tool.collect([c], stride=4)
    tool.write_page(min_seeds=8)
    page = (tmp_path / "page.md").read_text()
    assert "| open:breakout (running) | 6 |" in page and "P(better than Adam)" in page
    assert (tmp_path / "img" / "published-open-breakout.png").is_file()
