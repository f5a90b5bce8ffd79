"""Learning study for lorl-meta (issue 5, item 6b): OPEN meta-trained by evolution
strategies on a small task, against tuned Adam. Not a test: prints a table, writes JSON
and a figure. CPU only; sized for about 30 minutes on 2 cores (check the printed timings
and lower --generations if needed).

The small task: PPO (OPEN's gridworld settings, Appendix C.1, with a reduced budget of
`--envs` x 20 steps x `--updates` updates and `--width` hidden units) on the Optim4RL
gridworld `small_dense_short` (a 4 x 6 grid, 50-step episodes), chosen because one inner
run takes well under a second on the CPU.

Steps:

1. Tune Adam (OPEN's gridworld betas 0.99/0.99 with linear annealing, Table 6) over the
   learning rates {3e-4, 1e-3, 3e-3, 1e-2, 3e-2} with `--tune-seeds` seeds each.
2. ES (OPEN Table 7, MinAtar column by default: sigma 0.03, lr 0.03, both decaying
   0.999; population `--population`, validation every `--eval-every` generations), from
   OPEN's random initialisation (`--init zeros`: the reference's zeros), fitness = final
   return of the inner run, common random numbers; the population's mean fitness per
   generation and the ES mean's validation fitness are recorded.
3. Evaluate the best validated ES mean and tuned Adam on `--eval-seeds` fresh seeds; the
   bar: OPEN's mean final return is inside tuned Adam's 95% bootstrap confidence interval
   of the mean, or above it.

    python tools/study_meta_open.py --out docs/data/meta/study_open.json

STATUS: run; results, timings and the load they ran under in docs/meta/studies.md (bar met:
the ES mean beats tuned Adam's 95% CI on 32 fresh seeds).
"""

import argparse
import json
import os
import pathlib
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

import lorl_agents as la
import lorl_gridworlds as lg
import lorl_meta as lm
import lorl_optim as lo
from lorl.experiments.optim4rl._study import cached_tuning

ENV = "small_dense_short"
ADAM_GRID = (3e-4, 1e-3, 3e-3, 1e-2, 3e-2)


def bootstrap_ci(x: np.ndarray) -> tuple[float, float]:
    """95% bootstrap CI of the mean over seeds (one task), through `lorl.stats`."""
    from lorl import stats

    iv = stats.aggregate({"run": x}, metrics=("mean",), reps=10_000)["run"]["mean"]
    return iv.low, iv.high


def main() -> None:
    p = argparse.ArgumentParser(description=(__doc__ or "study").splitlines()[0])
    p.add_argument("--envs", type=int, default=32)
    p.add_argument("--updates", type=int, default=40)
    p.add_argument("--width", type=int, default=16)
    p.add_argument("--population", type=int, default=32)
    p.add_argument("--generations", type=int, default=60)
    p.add_argument("--eval-every", type=int, default=6)
    # OPEN Table 7, MinAtar column (sigma 0.03, lr 0.03, both decaying 0.999): larger
    # steps than the gridworld column (0.01 / 0.005 decaying 0.990), which suit our short
    # run of tens of generations.
    p.add_argument("--sigma", type=float, default=0.03)
    p.add_argument("--es-lr", type=float, default=0.03)
    p.add_argument("--decay", type=float, default=0.999)
    p.add_argument(
        "--init",
        choices=("random", "zeros"),
        default="random",
        help="ES mean at the start: OPEN's default initialisation (small random values) "
        "or zeros (the reference code's choice; spec agents_and_meta.md s.4 allows both)",
    )
    p.add_argument("--tune-seeds", type=int, default=8)
    p.add_argument("--eval-seeds", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--run-dir", default="runs/study_meta_open")
    p.add_argument("--out", default="docs/data/meta/study_open.json")
    args = p.parse_args()

    env, params = lg.make(ENV)
    cfg = la.PPOConfig.gridworld(
        n_envs=args.envs,
        n_steps=20,
        total_timesteps=args.envs * 20 * args.updates,
        n_minibatches=4,
        width=args.width,
    )
    agent = la.PPO(cfg)
    fitness = lm.ppo_fitness(agent, env)
    report: dict = {"env": ENV, "ppo_budget_steps": cfg.steps_per_run, "args": vars(args)}
    report["load_average_start"] = os.getloadavg()
    t0 = time.perf_counter()

    def returns(optimizer, seeds):
        keys = jax.vmap(jax.random.key)(jnp.asarray(list(seeds), jnp.uint32))
        return np.asarray(jax.vmap(lambda k: fitness(optimizer, params, k))(keys))

    def adam(lr):
        schedule = optax.linear_schedule(lr, 0.0, cfg.n_updates * cfg.n_epochs * cfg.n_minibatches)
        return optax.adam(schedule, b1=0.99, b2=0.99)  # OPEN Table 6 betas, annealed

    # Adam's tuning is cached in the run directory (keyed by its settings), so a rerun
    # that resumes the ES from its checkpoints does not repeat it.
    tuning = cached_tuning(
        pathlib.Path(args.run_dir) / "adam_tuning.json",
        [list(ADAM_GRID), args.tune_seeds, cfg.steps_per_run, args.width],
        ADAM_GRID,
        lambda lr: np.nanmean(returns(adam(lr), range(100, 100 + args.tune_seeds))),
    )
    best_lr = max(tuning, key=lambda k: tuning[k])
    report["adam_tuning"] = {str(k): v for k, v in tuning.items()}
    report["adam_lr"] = best_lr

    config = lm.ESConfig(
        n_generations=args.generations,
        population_size=args.population,
        sigma_init=args.sigma,
        sigma_decay=args.decay,
        lr=args.es_lr,
        lr_decay=args.decay,
        eval_every=args.eval_every,
        checkpoint_every=args.eval_every,
    )
    trainer = lm.ESTrainer(config, lm.ESTask(ENV, fitness, params))
    start = lo.OPEN(key=jax.random.key(args.seed))
    if args.init == "zeros":
        start = lm.zero_meta_parameters(start)
    run_dir = pathlib.Path(args.run_dir)
    result = trainer.train(start, seed=args.seed, checkpoint_dir=run_dir / "ckpt", log_dir=run_dir)
    report["es_history"] = [
        {
            k: r.get(k)
            for k in ("generation", "mean_score", "max_score", "validation_score", "wall_time")
        }
        for r in result.history
    ]
    report["best_generation"] = result.best_generation
    report["best_validation_score"] = result.best_score
    print(f"ES done, best generation {result.best_generation} ({time.perf_counter() - t0:.0f}s)")

    seeds = range(1000, 1000 + args.eval_seeds)
    evaluation = {
        "adam": returns(adam(best_lr), seeds),
        "open_es": returns(result.optimizer, seeds),
        "open_init": returns(start, seeds),
    }
    for name, x in evaluation.items():
        lo_ci, hi_ci = bootstrap_ci(x)
        report[name] = {
            "final_returns": x.tolist(),
            "mean": float(np.mean(x)),
            "ci95": [lo_ci, hi_ci],
        }
    bar = report["open_es"]["mean"] >= report["adam"]["ci95"][0]
    report["bar_met"] = bool(bar)
    report["wall_time_s"] = time.perf_counter() - t0
    report["load_average_end"] = os.getloadavg()
    print("\n| optimizer | mean final return | 95% CI |\n|---|---|---|")
    for name in evaluation:
        r = report[name]
        print(f"| {name} | {r['mean']:.3f} | [{r['ci95'][0]:.3f}, {r['ci95'][1]:.3f}] |")
    print(f"bar (OPEN mean >= Adam CI lower end): {'met' if bar else 'NOT met'}")

    out = pathlib.Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1))
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6, 4))
        gens = [r["generation"] for r in result.history]
        ax.plot(gens, [r["mean_score"] for r in result.history], label="population mean")
        val = [(r["generation"], r["validation_score"]) for r in result.history
               if r.get("validation_score") is not None]  # fmt: skip
        if val:
            ax.plot(*zip(*val, strict=True), "o-", label="ES mean (validation)")
        ax.axhline(report["adam"]["mean"], color="k", ls="--", label="tuned Adam")
        ax.set_xlabel("generation")
        ax.set_ylabel("final return")
        ax.legend()
        fig.tight_layout()
        fig.savefig(out.with_suffix(".png"), dpi=120)
    except ImportError:
        print("matplotlib not installed: no figure")


if __name__ == "__main__":
    main()
