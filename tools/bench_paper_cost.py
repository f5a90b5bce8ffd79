"""What one paper-budget evaluation seed costs on this machine (issue 18, items 2 and 3).

For each case (environment, optimizer) it runs `lorl.evaluation.evaluate` twice with the
paper's agent configuration (OPEN Table 3's column for the environment) at two short
budgets, `--updates U1` and `U2` updates of `n_envs x n_steps` steps, on `--seeds S`
seeds in one program (after one untimed warm-up call that absorbs one-time costs). Each
call compiles its own program (the scan length differs), so the difference of the two
wall times removes the compile and leaves the cost of `U2 - U1` updates:

    seconds per update  = (t(U2) - t(U1)) / (U2 - U1)
    hours per seed      = seconds per update x paper updates / S / 3600

The extrapolation assumes the per-update cost is constant over a run (PPO's update is;
episode lengths do not change the step cost of these environments). The table also gives
each case's environment steps per second and the ratio of the learned optimizer's time
to Adam's on the same environment in the same process (a ratio is what carries to
another machine). Stop other work first (`kill -STOP`), this is a timing.

    python tools/bench_paper_cost.py --out docs/data/lorl/bench_paper_cost.json
    python tools/bench_paper_cost.py --cases all:open:gridworld,all:adam --updates 4,64
"""

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import jax

from lorl import evaluation as ev

#: Default cases: the published gridworld OPEN and Ant OPEN against tuned Adam on their
#: own environments, and Breakout as the reference whose full runs are recorded
#: (docs/lorl/published-open.md).
CASES = (
    "all:open:gridworld",
    "all:adam",
    "ant:open:ant",
    "ant:adam",
    "breakout:open:breakout",
    "breakout:adam",
)


def _timed(optimizer: str, env: str, updates: int, seeds: int) -> tuple[float, int]:
    """Wall seconds of one `evaluate` call (compile included) and its steps per seed."""
    _, config = ev.agent_config_for(env)
    steps = updates * config.n_envs * config.n_steps
    t0 = time.perf_counter()
    ev.evaluate(optimizer, env, seeds=list(range(seeds)), timesteps=steps)
    return time.perf_counter() - t0, steps


def measure(case: str, u1: int, u2: int, seeds: int) -> dict:
    """The cost record of one `env:optimizer` case."""
    env, _, optimizer = case.partition(":")
    spec, config = ev.agent_config_for(env)
    _timed(optimizer, env, u1, seeds)  # warm-up: one-time imports, weights, tracing caches
    t1, _ = _timed(optimizer, env, u1, seeds)
    t2, _ = _timed(optimizer, env, u2, seeds)
    if t2 <= t1:
        raise SystemExit(
            f"{case}: {u2} updates took no longer than {u1} ({t2:.1f} s vs {t1:.1f} s); the "
            "compile noise hides the update cost, raise U2 (--updates)"
        )
    per_update = (t2 - t1) / (u2 - u1)
    batch = config.n_envs * config.n_steps
    paper_updates = config.total_timesteps // batch
    return {
        "case": case,
        "env": spec.name,
        "optimizer": optimizer,
        "seeds_per_program": seeds,
        "updates": [u1, u2],
        "wall_s": [t1, t2],
        "compile_and_first_s": t1 - u1 * per_update,
        "s_per_update": per_update,
        "env_steps_per_s": batch * seeds / per_update,
        "paper_timesteps": paper_updates * batch,
        "paper_hours_per_seed": per_update * paper_updates / seeds / 3600,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cases", default=",".join(CASES), help="comma-separated env:optimizer")
    p.add_argument("--updates", default="4,64", help="the two short budgets U1,U2 (updates)")
    p.add_argument("--seeds", type=int, default=2, help="seeds per compiled program")
    p.add_argument("--out", type=Path, default=None, help="write the records as JSON")
    args = p.parse_args()
    u1, u2 = (int(u) for u in args.updates.split(","))
    if not 0 < u1 < u2:
        p.error("--updates needs 0 < U1 < U2")
    rows = []
    for case in args.cases.split(","):
        rows.append(measure(case.strip(), u1, u2, args.seeds))
        r = rows[-1]
        print(f"  {case}: {r['s_per_update']:.2f} s/update", file=sys.stderr, flush=True)
    adam = {r["env"]: r["s_per_update"] for r in rows if r["optimizer"] == "adam"}
    for r in rows:
        base = adam.get(r["env"])
        r["over_adam"] = r["s_per_update"] / base if base else None
    print(
        f"{'case':<26} {'s/update':>9} {'steps/s':>9} {'x Adam':>7} {'paper steps':>12} "
        f"{'h/seed':>7}"
    )
    for r in rows:
        ratio = "" if r["over_adam"] is None else f"{r['over_adam']:.2f}"
        print(
            f"{r['case']:<26} {r['s_per_update']:>9.3f} {r['env_steps_per_s']:>9.0f} "
            f"{ratio:>7} {r['paper_timesteps']:>12.3g} {r['paper_hours_per_seed']:>7.2f}"
        )
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        meta = {
            "command": " ".join(["python", *sys.argv]),
            "machine": {
                "cpus": os.cpu_count(),
                "platform": platform.platform(),
                "jax": jax.__version__,
                "devices": jax.device_count(),
            },
        }
        args.out.write_text(json.dumps({**meta, "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
