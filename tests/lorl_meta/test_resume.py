"""Checkpoints: a run killed with SIGKILL between checkpoints and resumed ends with the
same meta-parameters, bit for bit, as an uninterrupted run; a different run's checkpoint
is refused before any compute."""

import json
import os
import pathlib
import signal
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import lorl_meta as lm

from .common import Quadratic, meta_leaves, optim4rl, quadratic_trainer, tiny_trainer
from .resume_worker import ES_GENERATIONS, METAGRAD_STEPS, SEED

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _killed_run(
    kind: str, tmp_path: pathlib.Path, kill_after: int
) -> tuple[pathlib.Path, pathlib.Path]:
    ckpt, logs = tmp_path / "ckpt", tmp_path / "logs"
    proc = subprocess.run(
        [sys.executable, "-m", "tests.lorl_meta.resume_worker", kind, str(ckpt), str(logs),
         str(kill_after)],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-3000:]
    rows = (logs / "metrics.jsonl").read_text().splitlines()
    assert len(rows) == kill_after  # it died after writing this row, before finishing
    return ckpt, logs


def _strip(history):
    return [{k: v for k, v in row.items() if k != "wall_time"} for row in history]


def _assert_bitwise_equal(a, b):
    la, lb = meta_leaves(a), meta_leaves(b)
    assert len(la) == len(lb)
    for x, y in zip(la, lb, strict=True):
        assert np.array_equal(np.asarray(x), np.asarray(y))


@pytest.mark.timeout(900)
def test_metagrad_resume_after_sigkill_is_bit_identical(tmp_path):
    # Killed after 5 meta-iterations; checkpoints every 2, so it resumes from 4.
    ckpt, logs = _killed_run("metagrad", tmp_path, kill_after=5)
    trainer = tiny_trainer(METAGRAD_STEPS)
    full = trainer.train(optim4rl(), seed=SEED, progress=False)
    resumed = trainer.train(
        optim4rl(), seed=SEED, checkpoint_dir=ckpt, log_dir=logs, progress=False
    )
    _assert_bitwise_equal(full.optimizer, resumed.optimizer)
    opt_a = jax.tree.leaves(full.state.meta_opt_state)
    opt_b = jax.tree.leaves(resumed.state.meta_opt_state)
    for x, y in zip(opt_a, opt_b, strict=True):
        assert np.array_equal(np.asarray(x), np.asarray(y))
    assert _strip(full.history) == _strip(resumed.history)
    lines = (logs / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in lines] == list(range(1, METAGRAD_STEPS + 1))


@pytest.mark.timeout(600)
def test_es_resume_after_sigkill_is_bit_identical(tmp_path):
    # Killed after 5 generations; checkpoints every 3, so it resumes from 3.
    ckpt, logs = _killed_run("es", tmp_path, kill_after=5)
    trainer = quadratic_trainer(ES_GENERATIONS)
    start = Quadratic(jnp.zeros(5, jnp.float32))
    full = trainer.train(start, seed=SEED, progress=False)
    resumed = trainer.train(start, seed=SEED, checkpoint_dir=ckpt, log_dir=logs, progress=False)
    _assert_bitwise_equal(full.optimizer, resumed.optimizer)
    _assert_bitwise_equal(full.final_optimizer, resumed.final_optimizer)
    assert full.best_generation == resumed.best_generation
    assert _strip(full.history) == _strip(resumed.history)
    assert int(resumed.state.generation) == ES_GENERATIONS


def test_a_different_run_is_refused_before_any_compute(tmp_path, monkeypatch):
    start = Quadratic(jnp.zeros(5, jnp.float32))
    quadratic_trainer(3, checkpoint_every=3).train(
        start, seed=0, checkpoint_dir=tmp_path, progress=False
    )

    def no_compute(*args, **kwargs):
        raise AssertionError("compute was spent before the configuration check")

    import lorl_meta._es as es_module

    monkeypatch.setattr(es_module, "_generation", no_compute)
    monkeypatch.setattr(es_module.ESTrainer, "init", no_compute)
    with pytest.raises(lm.CheckpointMismatchError, match="seed"):
        quadratic_trainer(6, checkpoint_every=3).train(
            start, seed=1, checkpoint_dir=tmp_path, progress=False
        )
    other = lm.ESTrainer(
        lm.ESConfig(n_generations=6, population_size=8), quadratic_trainer(6).tasks
    )
    with pytest.raises(lm.CheckpointMismatchError, match="population_size"):
        other.train(start, seed=0, checkpoint_dir=tmp_path, progress=False)
    with pytest.raises(lm.CheckpointMismatchError, match="meta_parameters"):
        quadratic_trainer(6, checkpoint_every=3).train(
            Quadratic(jnp.zeros(7, jnp.float32)), seed=0, checkpoint_dir=tmp_path, progress=False
        )
    # The same configuration with a longer budget resumes (extends the run).
    monkeypatch.undo()
    result = quadratic_trainer(6, checkpoint_every=3).train(
        start, seed=0, checkpoint_dir=tmp_path, progress=False
    )
    assert [row["generation"] for row in result.history] == list(range(1, 7))
    assert os.path.exists(tmp_path / "fingerprint.json")
