"""Run a tiny meta-training with checkpoints and SIGKILL ourselves after `kill_after`
metric rows (between checkpoints). Used by test_resume.py:

    python -m tests.lorl_meta.resume_worker {metagrad|es} CKPT_DIR LOG_DIR KILL_AFTER
"""

import os
import signal
import sys

import jax.numpy as jnp

import lorl_meta as lm
from lorl_meta import _logging

from .common import Quadratic, optim4rl, quadratic_trainer, tiny_trainer

SEED = 3
METAGRAD_STEPS = 6
ES_GENERATIONS = 9


def main() -> None:
    kind, ckpt_dir, log_dir, kill_after = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    original = _logging.MetricsLog.append

    def append_then_maybe_die(self, row):
        original(self, row)
        if len(self.rows) >= kill_after:
            os.kill(os.getpid(), signal.SIGKILL)

    _logging.MetricsLog.append = append_then_maybe_die  # type: ignore[method-assign]
    if kind == "metagrad":
        tiny_trainer(METAGRAD_STEPS).train(
            optim4rl(), seed=SEED, checkpoint_dir=ckpt_dir, log_dir=log_dir, progress=False
        )
    elif kind == "es":
        quadratic_trainer(ES_GENERATIONS).train(
            Quadratic(jnp.zeros(5, jnp.float32)),
            seed=SEED,
            checkpoint_dir=ckpt_dir,
            log_dir=log_dir,
            progress=False,
        )
    else:
        raise SystemExit(f"unknown kind {kind}")
    assert lm is not None


if __name__ == "__main__":
    main()
