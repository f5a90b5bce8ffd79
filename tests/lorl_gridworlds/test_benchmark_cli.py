"""The throughput harness and the `lorl-gridworlds` command (tiny sizes: not timing)."""

import json

import jax
import pytest

import lorl_gridworlds as lg
from lorl_gridworlds._cli import main


def test_measure_throughput_counts_steps():
    env, params = lg.make("small_dense_short")
    row = lg.measure_throughput(
        "sds", env, params, num_envs=4, num_steps=10, repeats=1, key=jax.random.key(0)
    )
    assert row.num_envs * row.num_steps == 40
    assert row.steps_per_second == pytest.approx(40 / row.seconds)
    with pytest.raises(ValueError, match=">= 1"):
        lg.measure_throughput("x", env, params, num_envs=0, key=jax.random.key(0))


def test_bench_command_writes_json(tmp_path, capsys):
    out = tmp_path / "g.json"
    main(["bench", "small_dense_short", "all", "--envs", "4", "--steps", "5", "--repeats", "1",
          "--json", str(out)])  # fmt: skip
    printed = capsys.readouterr().out
    assert "Breakout-MinAtar" in printed and "small_dense_short" in printed
    payload = json.loads(out.read_text())
    assert [r["name"] for r in payload["rows"]] == ["Breakout-MinAtar", "small_dense_short", "all"]
    assert all(r["steps_per_second"] > 0 for r in payload["rows"])


def test_cli_rejects_bad_sizes():
    with pytest.raises(SystemExit):
        main(["bench", "--envs", "0"])
