"""Quality benchmark of lorl-agents (issue 4, item 8). Not a test: prints a table, writes JSON.

Parts (choose with `--part`):

- `cartpole`: PPO + Adam on CartPole-v1, 5e5 steps, 4 seeds; target mean final return
  >= 475. Adam lr 2.5e-4 annealed linearly, eps 1e-5 (PureJaxRL's CartPole defaults).
- `minatar`: PPO + the OPEN-tuned Adam (Table 4) on the four MinAtar games, 1e7 steps by
  default; compare with OPEN's Adam references (asterix 15.0, freeway 61.8, breakout
  50.1, space invaders 167.1); reported as IQM with 95% bootstrap CIs over seeds.
- `a2c`: A2C (Optim4RL settings) with Adam and RMSProp on `small_dense_short` and
  `big_dense_long` (needs lorl-gridworlds), 3e7 steps and 10 seeds by default; the paper
  reports about 11 and 23.

Seeds run as a `vmap` inside one jitted program per setting. `--steps` and `--seeds`
override the budgets (runs at reduced budgets must be labelled as reduced).
`--emulate-reference` (part `a2c` only, a diagnostic): train on the gridworld as the
Optim4RL reference code presents it (`lorl_gridworlds.optim4rl_reference_view`), to
measure how much its two departures from our environment change the returns.
Long runs survive a kill: `--seed-group k` trains k seeds per program and rewrites `--out`
after each group; `--resume` continues from what `--out` holds (same part, steps, seeds).

    python tools/bench_agents_quality.py --part cartpole \
        --out docs/data/agents/bench_quality_cartpole.json
"""

import argparse
import json
import os
import time

import jax
import numpy as np
import optax

import lorl_agents as la
import lorl_optim as lo
from lorl._paper import OPEN_ADAM_RETURNS, OPTIM4RL_A2C_BASELINE_ABOUT

OPEN_ADAM_REFERENCE = {  # OPEN's Adam returns (lorl._paper), by gymnax name
    "Asterix-MinAtar": OPEN_ADAM_RETURNS["asterix"],
    "Freeway-MinAtar": OPEN_ADAM_RETURNS["freeway"],
    "Breakout-MinAtar": OPEN_ADAM_RETURNS["breakout"],
    "SpaceInvaders-MinAtar": OPEN_ADAM_RETURNS["space_invaders"],
}
OPTIM4RL_REFERENCE = OPTIM4RL_A2C_BASELINE_ABOUT  # about, Optim4RL Figure 4


def iqm_with_ci(final: np.ndarray) -> tuple[float, float, float]:
    """IQM and its 95% bootstrap CI over seeds (one task), through `lorl.stats`."""
    from lorl import stats

    iv = stats.aggregate({"run": final}, metrics=("iqm",))["run"]["iqm"]
    return iv.point, iv.low, iv.high


class Progress:
    """Per-setting results on disk, so a long benchmark survives a kill.

    The `--out` JSON is rewritten after every group of seeds; with `--resume`, settings and
    seeds already in it are skipped. Seed `i` always trains with key `i` of
    `split(key(12345), seeds)`, whatever the grouping, so a resumed run uses the same keys
    as an uninterrupted one (results agree up to float32 differences between vmap sizes).
    """

    def __init__(self, path: str, header: dict, resume: bool):
        self.path = path
        self.header = header
        self.rows: dict[str, dict] = {}
        if resume and os.path.exists(path):
            with open(path) as f:
                old = json.load(f)
            for field in ("part", "steps", "seeds"):
                if old.get(field) != header[field]:
                    raise SystemExit(
                        f"--resume: {path} was written with {field}={old.get(field)!r}, "
                        f"this run has {field}={header[field]!r}; use another --out"
                    )
            self.rows = {row["setting"]: row for row in old["rows"]}
            print(f"resuming from {path}: {len(self.rows)} settings on record")

    def save(self, complete: bool = False) -> None:
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(
                {**self.header, "complete": complete, "rows": list(self.rows.values())},
                f,
                indent=2,
            )
        os.replace(tmp, self.path)


def run_seeds(
    progress: Progress, name: str, train_fn, seeds: int, group: int | None, extra: dict
) -> dict:
    """Train `seeds` seeds of one setting, `group` seeds per vmapped program (all at once
    by default), saving after each group; returns the summary row."""
    keys = jax.random.split(jax.random.key(12345), seeds)
    row = progress.rows.get(name)
    final = list(row["final_returns"]) if row else []
    first_bad = list(row["first_nonfinite_update_per_seed"]) if row else []
    elapsed = float(row["seconds"]) if row else 0.0
    group = group or seeds
    program = jax.jit(jax.vmap(train_fn))
    while len(final) < seeds:
        start = len(final)
        stop = min(seeds, start + group)
        t0 = time.perf_counter()
        result = program(keys[start:stop])
        final += np.asarray(jax.block_until_ready(result.final_return)).tolist()
        first_bad += np.asarray(result.first_nonfinite_update).tolist()
        elapsed += time.perf_counter() - t0
        progress.rows[name] = summarise(name, np.asarray(final), elapsed, first_bad, extra)
        progress.save()
        if len(final) < seeds:
            print(f"  ... {len(final)}/{seeds} seeds of {name} done, saved", flush=True)
    if row is not None and len(row["final_returns"]) == seeds:
        print(f"{name}: on record ({seeds} seeds), skipped")
    return progress.rows[name]


def summarise(name: str, final: np.ndarray, elapsed: float, first_bad, extra: dict) -> dict:
    point, lo, hi = iqm_with_ci(final)
    row = {
        "setting": name,
        "seeds": len(final),
        "final_returns": final.tolist(),
        "mean": float(np.mean(final)),
        "iqm": point,
        "iqm_ci95": [lo, hi],
        "seconds": elapsed,
        "first_nonfinite_update_per_seed": first_bad,
        **extra,
    }
    print(
        f"{name:55s} mean {row['mean']:9.2f}  IQM {row['iqm']:9.2f} [{lo:8.2f}, {hi:8.2f}]  "
        f"({len(final)} seeds, {elapsed:7.0f} s) {extra}"
    )
    return row


def part_cartpole(progress: Progress, steps: int, seeds: int, group: int | None) -> None:
    env, params = la.make_env("CartPole-v1")
    config = la.PPOConfig.cartpole(total_timesteps=steps)
    lr = lo.baselines.linear_annealing(2.5e-4, config.optimizer_steps, config.steps_per_update)
    opt = optax.adam(lr, eps=1e-5)
    agent = la.PPO(config)
    name = f"PPO+Adam CartPole-v1 {config.steps_per_run:.3g} steps"
    row = run_seeds(
        progress,
        name,
        lambda k: agent.train(env, params, opt, key=k),
        seeds,
        group,
        {"target_mean": 475.0},
    )
    row["passed"] = bool(row["mean"] >= 475.0)


def part_minatar(
    progress: Progress, steps: int, seeds: int, group: int | None, games: list[str]
) -> None:
    for game in games:
        env, params = la.make_env(game)
        config = la.PPOConfig.minatar(total_timesteps=steps)
        opt = lo.baselines.adam(
            game, total_steps=config.optimizer_steps, steps_per_update=config.steps_per_update
        )
        agent = la.PPO(config)
        run_seeds(
            progress,
            f"PPO+Adam(OPEN-tuned) {game} {config.steps_per_run:.3g} steps",
            lambda k, agent=agent, env=env, params=params, opt=opt: agent.train(
                env, params, opt, key=k
            ),
            seeds,
            group,
            {"open_adam_reference": OPEN_ADAM_REFERENCE[game]},
        )


def part_a2c(
    progress: Progress,
    steps: int,
    seeds: int,
    group: int | None,
    lrs: dict[str, float],
    tasks: list[str],
    optimizers: list[str],
    emulate_reference: bool = False,
) -> None:
    import lorl_gridworlds

    for task in tasks:
        env, params = lorl_gridworlds.make(task)
        if emulate_reference:
            env = lorl_gridworlds.optim4rl_reference_view(env)
        base = (
            la.A2CConfig.small_gridworld if task.startswith("small") else la.A2CConfig.big_gridworld
        )
        config = base(total_timesteps=steps)
        agent = la.A2C(config)
        makers = {"adam": optax.adam, "rmsprop": optax.rmsprop}
        for opt_name in optimizers:
            lr = lrs[opt_name]
            opt = makers[opt_name](lr)
            run_seeds(
                progress,
                f"A2C+{opt_name}(lr {lr}) {task}"
                f"{' (reference emulation)' if emulate_reference else ''}"
                f" {config.steps_per_run:.3g}",
                lambda k, agent=agent, env=env, params=params, opt=opt: agent.train(
                    env, params, opt, key=k
                ),
                seeds,
                group,
                {"optim4rl_reference_about": OPTIM4RL_REFERENCE[task]},
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--part", choices=["cartpole", "minatar", "a2c"], required=True)
    parser.add_argument("--steps", type=float, default=None, help="override the step budget")
    parser.add_argument("--seeds", type=int, default=None, help="override the seed count")
    parser.add_argument(
        "--seed-group",
        type=int,
        default=None,
        help="seeds per vmapped program (default: all); results are saved after each group",
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue the run recorded in --out (same part, steps and seeds): settings and "
        "seeds on record are skipped",
    )
    parser.add_argument("--games", nargs="*", default=list(OPEN_ADAM_REFERENCE))
    parser.add_argument("--tasks", nargs="*", default=list(OPTIM4RL_REFERENCE))
    parser.add_argument(
        "--adam-lr",
        type=float,
        default=3e-3,
        help="A2C Adam lr (Optim4RL picks the best of 3e-2..1e-4 per task)",
    )
    parser.add_argument(
        "--rmsprop-lr",
        type=float,
        default=3e-3,
        help="A2C RMSProp lr (Optim4RL C.2 uses 3e-3 on big_dense_long)",
    )
    parser.add_argument("--optimizers", nargs="*", default=["adam", "rmsprop"])
    parser.add_argument(
        "--emulate-reference",
        action="store_true",
        help="part a2c: present the gridworld as the Optim4RL reference code does "
        "(channels-first walled observations into the channels-last conv; no sliding along "
        "edges); a diagnostic",
    )
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    if args.emulate_reference and args.part != "a2c":
        parser.error("--emulate-reference applies to --part a2c only")
    if args.seed_group is not None and args.seed_group < 1:
        parser.error(f"--seed-group must be >= 1, got {args.seed_group}")

    defaults = {"cartpole": (5e5, 4), "minatar": (1e7, 4), "a2c": (3e7, 10)}[args.part]
    steps = int(args.steps or defaults[0])
    seeds = args.seeds or defaults[1]
    reduced = steps < defaults[0] or seeds < defaults[1]
    if reduced:
        print(
            f"REDUCED RUN: {steps:.3g} steps x {seeds} seeds "
            f"(full: {defaults[0]:.3g} x {defaults[1]})"
        )
    header = {
        "part": args.part,
        "steps": steps,
        "seeds": seeds,
        "reduced": reduced,
        "jax": jax.__version__,
        "cpu_count": os.cpu_count(),
    }
    if args.part == "a2c":
        header["emulate_reference"] = args.emulate_reference
    progress = Progress(args.out, header, args.resume)
    if args.part == "cartpole":
        part_cartpole(progress, steps, seeds, args.seed_group)
    elif args.part == "minatar":
        part_minatar(progress, steps, seeds, args.seed_group, args.games)
    else:
        lrs = {"adam": args.adam_lr, "rmsprop": args.rmsprop_lr}
        part_a2c(
            progress,
            steps,
            seeds,
            args.seed_group,
            lrs,
            args.tasks,
            args.optimizers,
            args.emulate_reference,
        )
    progress.save(complete=True)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
