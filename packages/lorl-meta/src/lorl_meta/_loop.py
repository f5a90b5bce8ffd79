"""The train loop shared by every trainer: checkpoint directory and fingerprint, resume,
metric rows (JSONL / CSV / TensorBoard), progress bar, periodic and final checkpoints.

Multi-process jobs (`jax.distributed`): every process runs the same loop on the same
global arrays; checkpoints and metric files are written by every process to the
directories it was given (one per process, e.g. the `-process<i>` run folders of
`lorl`), and only process 0 shows a progress bar.
"""

import pathlib
import time
from collections.abc import Callable
from typing import Any

import jax
import numpy as np
from jaxtyping import PyTree

from ._checkpoint import Checkpointer, to_host
from ._logging import MetricsLog, progress_bar


def scalar(x: Any) -> float | int | bool:
    """A scalar array (of any process layout: replicated arrays spanning several
    processes are read from a local copy) as a Python `bool`, `int` or `float`."""
    if isinstance(x, jax.Array) and not x.is_fully_addressable:
        x = x.addressable_data(0)
    a = np.asarray(x)
    if a.dtype == np.bool_:
        return bool(a)
    if np.issubdtype(a.dtype, np.integer):
        return int(a)
    return float(a)


def process_local(tree: PyTree) -> PyTree:
    """`tree` with every array that spans several processes replaced by a full copy on
    this process (a collective for sharded arrays: every process must call it), so a
    trainer's result can be saved, printed or evaluated like a 1-process one.

    **Arguments:**

    - `tree`: a pytree.

    **Returns:**

    The same tree with process-local arrays (other leaves unchanged).
    """

    def one(x: Any) -> Any:
        if isinstance(x, jax.Array) and not x.is_fully_addressable:
            return jax.numpy.asarray(to_host(x))
        return x

    return jax.tree.map(one, tree)


def check_seed(seed: Any) -> int:
    """`seed` as an `int`, or a clear error."""
    if not isinstance(seed, int | np.integer) or isinstance(seed, bool):
        raise ValueError(f"seed must be an integer, got {seed!r}")
    return int(seed)


def train_loop(
    init: Callable[[], PyTree],
    step_fn: Callable[[PyTree, int], tuple[PyTree, dict[str, Any]]],
    *,
    total: int,
    checkpoint_every: int,
    counter: str,
    postfix: str,
    desc: str,
    fingerprint: Callable[[], dict[str, Any]],
    checkpoint_dir: str | pathlib.Path | None,
    log_dir: str | pathlib.Path | None,
    progress: bool,
    tensorboard: bool,
    wandb: dict[str, Any] | None = None,
) -> tuple[PyTree, list[dict[str, Any]]]:
    """Run `step_fn` from the newest checkpoint (or `state`) up to `total` steps.

    **Arguments:**

    - `init`: builds the initial state (also the template a checkpoint is restored
      into); called only after the checkpoint directory's fingerprint was checked, so a
      mismatch is reported before any compute.
    - `step_fn`: `(state, i) -> (state, metrics)` for step `i` (0-based); the metrics are
      scalar arrays or Python scalars.
    - `total`: steps of the run.
    - `checkpoint_every`: save every this many steps and after the last.
    - `counter`: the row key of the 1-based step number (`"step"`, `"generation"`).
    - `postfix`: the metric shown in the progress bar.
    - `desc`: the progress bar's label.
    - `fingerprint`: builds the run's fingerprint (called only with `checkpoint_dir`).
    - `checkpoint_dir`, `log_dir`, `progress`, `tensorboard`, `wandb`: as the trainers'
      `train`.

    **Returns:**

    `(state, history)`: the final state and one row of Python scalars per step.
    """
    ckpt = None if checkpoint_dir is None else Checkpointer(checkpoint_dir, fingerprint())
    log = MetricsLog(log_dir, tensorboard=tensorboard, wandb=wandb)
    state = init()
    start = 0
    latest = None if ckpt is None else ckpt.latest_step()
    if ckpt is not None and latest is not None:
        start = int(latest)
        state, extras = ckpt.restore(start, state)
        log.reset(extras["history"])
    bar = progress_bar(total, start, desc, progress and jax.process_index() == 0)
    t0 = time.perf_counter()
    try:
        for i in range(start, total):
            state, metrics = step_fn(state, i)
            row: dict[str, Any] = {counter: i + 1}
            row.update({k: scalar(v) for k, v in metrics.items()})
            row["wall_time"] = time.perf_counter() - t0
            log.append(row)
            bar.set_postfix({postfix: f"{row[postfix]:.4g}"})
            bar.update(1)
            if ckpt is not None and ((i + 1) % checkpoint_every == 0 or i + 1 == total):
                ckpt.save(i + 1, state, {"history": log.rows})
    finally:
        bar.close()
        log.close()
        if ckpt is not None:
            ckpt.close()
    return state, log.rows
