"""Metric files: JSONL and CSV rows, NaN handling, rewrite on resume, TensorBoard."""

import csv
import json
import math

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
