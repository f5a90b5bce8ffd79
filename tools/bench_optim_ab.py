"""Interleaved A/B benchmark of lorl-optim: a git revision of the package ("old") against the
working tree ("new"), one jitted, state-donating update per optimizer on the agents of
`bench_optim.py`, in one process. Rounds alternate old/new; prints the per-round times and
the median new/old ratio, and can write JSON.

The old package is `git show <rev>:packages/lorl-optim/src/lorl_optim/*` copied into a
temporary directory under another name (`lorl_optim_old`), so both versions are imported
side by side; its fused kernels are registered under other FFI target names
(`lorl_old_*`), since XLA rejects a second handler for a name already registered.

    python tools/bench_optim_ab.py --rev HEAD --rounds 5 --sizes minatar,1m \
        --optimizers open,optim4rl --out bench_out/ab.json
"""

import argparse
import copy
import json
import pathlib
import statistics
import sys
import time

import equinox as eqx
import jax
import jax.numpy as jnp

from lorl._bench import import_revision, synthetic_agent_params, synthetic_context, time_step


def make(module, name: str):
    key = jax.random.key(0)
    return {
        "open": lambda: module.load_open("breakout"),
        "open_multi": lambda: module.load_open("multi"),
        "open_separated": lambda: module.OPEN(separated=True, key=key),
        "optim4rl": lambda: module.Optim4RL(1e-3, key=key),
        "linear": lambda: module.LinearOptim(1e-3, key=key),
        "l2lgd2": lambda: module.L2LGD2(1e-3, key=key),
    }[name]()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rev", default="HEAD")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=5, help="timed steps per round")
    parser.add_argument("--sizes", default="minatar,1m")
    parser.add_argument("--optimizers", default="open,optim4rl")
    parser.add_argument(
        "--clock",
        choices=("wall", "cpu"),
        default="wall",
        help="wall: time.perf_counter; cpu: time.process_time (CPU seconds of all threads of "
        "this process, less sensitive to other jobs on a shared machine)",
    )
    parser.add_argument("--old-chunk", type=int, default=None, help="override chunk_size (old)")
    parser.add_argument("--new-chunk", type=int, default=None, help="override chunk_size (new)")
    parser.add_argument("--out", type=pathlib.Path, default=None)
    cli = parser.parse_args()
    import lorl_optim as new_module

    clock = time.perf_counter if cli.clock == "wall" else time.process_time
    versions = {"old": import_revision(cli.rev), "new": new_module}
    widths = {"minatar": 64, "1m": 544}
    rows = []
    for size in cli.sizes.split(","):
        params = synthetic_agent_params(widths[size], jax.random.key(1))
        n = sum(x.size for x in jax.tree.leaves(params))
        grads = jax.tree.map(lambda x: 0.01 * jnp.ones_like(x), params)
        ctx = synthetic_context(params)
        for name in cli.optimizers.split(","):
            steps, inits, args = {}, {}, {}
            for v, module in versions.items():
                opt = make(module, name)
                chunk = cli.old_chunk if v == "old" else cli.new_chunk
                if chunk is not None:  # a static field: set on a shallow copy
                    opt = copy.copy(opt)
                    object.__setattr__(opt, "chunk_size", chunk)
                arrays, static = eqx.partition(opt, eqx.is_array)
                steps[v] = jax.jit(
                    lambda a, g, p, c, k, s, static=static: eqx.combine(a, static).update(
                        g, s, p, **c, key=k
                    ),
                    donate_argnums=5,
                )
                inits[v] = opt.init
                args[v] = (arrays, grads, params, ctx, jax.random.key(2))
            times: dict[str, list[float]] = {"old": [], "new": []}
            ratios = []
            for _ in range(cli.rounds):
                for v in ("old", "new"):
                    t = time_step(steps[v], args[v], inits[v](params), cli.steps, clock)
                    times[v].append(t)
                ratios.append(times["new"][-1] / times["old"][-1])
            med = {v: statistics.median(ts) for v, ts in times.items()}
            row = {
                "size": size,
                "n_params": n,
                "optimizer": name,
                "old_ms": [1e3 * t for t in times["old"]],
                "new_ms": [1e3 * t for t in times["new"]],
                "median_ratio_new_over_old": statistics.median(ratios),
                "new_ns_per_param": 1e9 * med["new"] / n,
                "old_ns_per_param": 1e9 * med["old"] / n,
            }
            rows.append(row)
            print(
                f"{size:8s} {name:15s} old {1e3 * med['old']:8.2f} ms  new {1e3 * med['new']:8.2f}"
                f" ms  new/old {row['median_ratio_new_over_old']:.2f} "
                f"(rounds {[round(r, 2) for r in ratios]})",
                flush=True,
            )
    if cli.out is not None:
        cli.out.parent.mkdir(parents=True, exist_ok=True)
        result = {"command": " ".join(sys.argv), "rev": cli.rev, "clock": cli.clock, "rows": rows}
        cli.out.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
