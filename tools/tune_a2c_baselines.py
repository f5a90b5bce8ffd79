"""Tune A2C's Adam and RMSProp learning rates on an Optim4RL gridworld, as the Optim4RL
paper does (Appendix C.3: the best agent learning rate of {3e-2, 1e-2, 3e-3, 1e-3, 3e-4,
1e-4}; the paper does not print the winners). Not a test: prints a table, writes JSON.

Each (learning rate, tuning seed) pair is one A2C run with the paper's settings
(`lorl.evaluation.tune_learning_rate`: one vmapped program per optimizer); the tuning seeds
are disjoint from the evaluation seeds `0..n-1`. Feed the winners to the quality benchmark:

    python tools/tune_a2c_baselines.py --task small_dense_short --timesteps 3e6 \
        --out docs/data/agents/tune_a2c_small_dense_short.json
    python tools/bench_agents_quality.py --part a2c --tasks small_dense_short --seeds 10 \
        --adam-lr <adam winner> --rmsprop-lr <rmsprop winner> --out ...
"""

import argparse
import json

from lorl.evaluation import OPTIM4RL_LR_GRID, tune_learning_rate
from lorl.runs import to_jsonable


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="small_dense_short")
    parser.add_argument("--timesteps", type=float, default=3e6, help="steps per tuning run")
    parser.add_argument("--seeds", type=int, default=4, help="tuning seeds per learning rate")
    parser.add_argument("--optimizers", nargs="+", default=["adam", "rmsprop"])
    parser.add_argument("--out", required=True)
    args = parser.parse_args()

    out = {}
    print(f"{'optimizer':<10}" + "".join(f"{lr:>10g}" for lr in OPTIM4RL_LR_GRID) + "  best")
    for kind in args.optimizers:
        result = tune_learning_rate(
            kind, args.task, timesteps=int(args.timesteps), seeds=args.seeds
        )
        out[kind] = result.to_dict()
        means = "".join(f"{m:>10.3f}" for m in result.mean_returns)
        print(f"{kind:<10}{means}  {result.best_lr:g}  ({result.seconds:.0f} s)", flush=True)
    with open(args.out, "w") as f:
        json.dump(to_jsonable({"task": args.task, "results": out}), f, indent=1)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
