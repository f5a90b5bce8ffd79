"""Metric files: JSONL and CSV rows, NaN handling, rewrite on resume, TensorBoard, W&B
(with a fake `wandb` module)."""

import csv
import json
import math
import sys
import types

import pytest

import lorl_meta as lm


def test_jsonl_and_csv_rows_and_reset(tmp_path):
    log = lm.MetricsLog(tmp_path)
    log.append({"step": 1, "meta_loss": 0.5})
    log.append({"step": 2, "meta_loss": math.nan, "extra": math.inf})
    lines = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert lines == [
        {"step": 1, "meta_loss": 0.5},
        {"step": 2, "meta_loss": None, "extra": "inf"},
    ]
    with open(tmp_path / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["step"] for r in rows] == ["1", "2"] and rows[1]["extra"] == "inf"
    # Resume: the history is replaced by the checkpoint's, files rewritten.
    log.reset(lines[:1])
    assert len((tmp_path / "metrics.jsonl").read_text().splitlines()) == 1
    log.close()


def test_tensorboard_scalars(tmp_path):
    pytest.importorskip("tensorboardX")
    log = lm.MetricsLog(tmp_path, tensorboard=True)
    log.append({"step": 1, "meta_loss": 0.25})
    log.close()
    assert list((tmp_path / "tb").glob("events.out.tfevents.*"))


class _FakeRun:
    def __init__(self, kwargs):
        self.kwargs = kwargs
        self.logged: list[tuple[dict, int]] = []
        self.finished = False

    def log(self, data, step):
        self.logged.append((data, step))

    def finish(self):
        self.finished = True


def test_wandb_rows_go_to_a_run_started_with_the_given_arguments(tmp_path, monkeypatch):
    runs = []
    fake = types.ModuleType("wandb")
    fake.init = lambda **kwargs: runs.append(_FakeRun(kwargs)) or runs[-1]  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "wandb", fake)
    log = lm.MetricsLog(tmp_path, wandb={"project": "p", "name": "n"})
    log.reset([{"step": 1, "meta_loss": 1.0}])  # restored rows are not logged again
    log.append({"step": 2, "meta_loss": 0.5, "task/return": float("nan"), "label": "x"})
    log.append({"generation": 3, "ok": True})
    log.close()
    (run,) = runs
    assert run.kwargs == {"project": "p", "name": "n"}
    assert run.logged == [
        ({"step": 2, "meta_loss": 0.5}, 2),  # NaN became null, strings are not scalars
        ({"generation": 3, "ok": True}, 3),
    ]
    assert run.finished


def test_wandb_without_the_package_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "wandb", None)  # import wandb raises ImportError
    with pytest.raises(ImportError, match="pip install wandb"):
        lm.MetricsLog(tmp_path, wandb={"project": "p"})
