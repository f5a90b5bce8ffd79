"""What one meta-gradient iteration costs at Optim4RL's paper configuration, by
`MetaGradientConfig.unit_batch` (issue 22, item 2).

The configuration is the `optim4rl` experiments' paper scale (small_dense_short, 512
units of one environment, M = 4 inner A2C updates, reset interval 256, Optim4RL
initialised from `meta.seed`), built with `lorl.experiments.optim4rl._settings`. For each
`unit_batch` value (0: one vmapped program over all units, the previous implementation;
k: groups of k units under rematerialisation) the script times, in one process and in
interleaved rounds after a compiling call,

- `step`: one whole meta-iteration (meta-gradient and meta-optimizer update),
- `meta_objective`: the same iteration's forward pass only (for the backward's share),

all from the same state, and checks that every value's meta-gradient equals the first
value's to float32 rounding (max relative difference of the meta-gradient's norm and of
the new meta-parameters). Stop other work first (`kill -STOP`): this is a timing.

    python tools/bench_meta_gradient.py --unit-batch 0,32,16,8,4 --repeats 3 \\
        --out docs/data/meta/bench_meta_gradient.json
    python tools/bench_meta_gradient.py --units 64 --reset-interval 64   # quickstart size
"""

import argparse
import dataclasses
import json
import os
import platform
import statistics
import time
from pathlib import Path

import equinox as eqx
import jax
import numpy as np

from lorl.experiments.optim4rl._settings import meta_trainer, paper_meta


def main() -> None:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--unit-batch", default="0,8", help="comma-separated unit_batch values")
    p.add_argument("--units", type=int, default=None, help="units (default: the paper's 512)")
    p.add_argument("--reset-interval", type=int, default=None)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args()
    base = paper_meta()
    overrides = {}
    if args.units is not None:
        overrides["units"] = args.units
    if args.reset_interval is not None:
        overrides["reset_interval"] = args.reset_interval
    values = [int(v) for v in args.unit_batch.split(",")]
    programs = {}
    for value in values:
        meta = dataclasses.replace(base, **overrides, unit_batch=value)
        trainer, optimizer, seed, _ = meta_trainer(
            kind="optim4rl", envs=["small_dense_short"], meta=meta
        )
        programs[value] = (trainer._core(), optimizer, seed)
    core0, optimizer, seed = programs[values[0]]
    state = core0.init(optimizer, key=jax.random.key(seed))
    static = eqx.partition(optimizer, eqx.is_array)[1]

    first, reference = {}, None
    for value, (core, _, _) in programs.items():
        t0 = time.perf_counter()
        new_state, metrics = jax.block_until_ready(core.step(state, static))
        first[value] = time.perf_counter() - t0
        jax.block_until_ready(core.meta_objective(state, static))
        new_params = eqx.filter(new_state.meta_params, eqx.is_inexact_array)
        leaves = [np.asarray(x) for x in jax.tree.leaves(new_params)]
        grad_norm = float(metrics["meta_grad_norm"])
        if reference is None:
            reference = (leaves, grad_norm)
        first[value] = {
            "compile_and_first_s": first[value],
            "meta_grad_norm": grad_norm,
            "rel_diff_meta_grad_norm": abs(grad_norm - reference[1]) / abs(reference[1]),
            "max_rel_diff_new_meta_params": max(
                float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30))
                for a, b in zip(leaves, reference[0], strict=True)
            ),
        }
    step_s = {v: [] for v in values}
    fwd_s = {v: [] for v in values}
    for _ in range(args.repeats):
        for value, (core, _, _) in programs.items():
            t0 = time.perf_counter()
            jax.block_until_ready(core.step(state, static))
            step_s[value].append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            jax.block_until_ready(core.meta_objective(state, static))
            fwd_s[value].append(time.perf_counter() - t0)
    base_s = statistics.median(step_s[values[0]])
    rows = []
    print(f"{'unit_batch':>10s} {'step (s)':>9s} {'forward (s)':>11s} {'backward share':>14s} "
          f"{'speed-up':>9s} {'rel. diff':>10s}")  # fmt: skip
    for value in values:
        s, f = statistics.median(step_s[value]), statistics.median(fwd_s[value])
        row = {
            "unit_batch": value,
            "step_s": step_s[value],
            "forward_s": fwd_s[value],
            "median_step_s": s,
            "median_forward_s": f,
            "backward_share": (s - f) / s,
            "speedup_vs_first": base_s / s,
            **first[value],
        }
        rows.append(row)
        diff = row["max_rel_diff_new_meta_params"]
        print(f"{value:10d} {s:9.2f} {f:11.2f} {row['backward_share']:14.2f} "
              f"{row['speedup_vs_first']:9.2f} {diff:10.1e}")  # fmt: skip
    if args.out is not None:
        record = {
            "configuration": {
                "env": "small_dense_short",
                "units": overrides.get("units", base.units),
                "envs_per_unit": base.envs_per_unit,
                "inner_updates": base.inner_updates,
                "reset_interval": overrides.get("reset_interval", base.reset_interval),
            },
            "jax": jax.__version__,
            "cpu_count": os.cpu_count(),
            "processor": platform.processor() or platform.machine(),
            "load_average_at_end": os.getloadavg()[0],
            "timing": "compiled first, then interleaved rounds, all from the same state",
            "results": rows,
        }
        args.out.write_text(json.dumps(record, indent=2))
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
