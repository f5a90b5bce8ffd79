"""Gridworld throughput benchmark (lorl-gridworlds, issue 2).

Environment steps per second for 1024 parallel environments x 1000 steps (jit + vmap +
lax.scan, uniformly random actions, the observation carried as an agent would) for every
LPG gridworld and for OPEN's `all` distribution (one level per environment), with gymnax's
Breakout-MinAtar measured in the same run as the reference. Prints a table, writes JSON.

    python tools/bench_gridworlds.py [--envs 1024] [--steps 1000] [--repeats 3]
                                     [--json bench_out/gridworlds.json] [names ...]

Target (issue 2): every LPG gridworld at least as fast as Breakout-MinAtar in the same
run, and `all` at least half as fast.
"""

import sys

from lorl_gridworlds._cli import main

if __name__ == "__main__":
    main(["bench", *sys.argv[1:]])
