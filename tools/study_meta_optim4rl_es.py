"""Diagnostic study for lorl-meta (issue 5, item 6): the paper-version Optim4RL trained by
evolution strategies on the whole-run objective (the final return of a full A2C run) on
`small_dense_short`, against tuned Adam on the same A2C budget. Not a test and not the
issue's bar (the bar asks for pipeline training by meta-gradients): it asks whether the
architecture can reach 90% of tuned Adam at this budget when the objective is not the
myopic M = 4 actor loss. Prints a table, writes JSON and a figure. CPU only.

The evaluation protocol is the one of `tools/study_meta_optim4rl.py` (imported, not
repeated): A2C with the Optim4RL Appendix C settings, `--envs` x 20 steps x `--updates`
updates, final return = mean of the last 20 updates; Adam tuned on the paper's grid on
seeds 100-102 (cached per run directory); 10 fresh evaluation seeds 1000-1009; the
step-size probe on synthetic gradient streams.

Steps:

1. Tune Adam (or read the cache in `--run-dir`).
2. ES (`lorl_meta.ESTrainer`: evosax `Open_ES`, antithetic pairs, centred ranks, common
   random numbers, Adam on the mean) from the pipeline study's meta-seed-0
   initialisation (`lorl_optim.Optim4RL(1e-2, backend="xla", key=jax.random.key(0))`);
   fitness = final return of one full A2C run per member with `--member-envs`
   environments (default: the evaluation's 64) and the evaluation's number of updates.
   Every `--validate-every` generations the ES mean runs the evaluation budget on
   `--val-seeds` tuning seeds (100, 101, ...); the best validated mean is selected.
   Training runs in chunks of `--validate-every` generations from checkpoints in
   `--run-dir` (a killed run resumes); before each chunk the CPU time used so far plus
   the last chunk's cost and a reserve for the evaluation is checked against
   `--cpu-budget-min`, and the ES stops early if it would not fit.
3. Evaluate tuned Adam, the selected ES mean, the last ES mean and the initialisation
   (control) on `--eval-seeds` fresh seeds (1000, 1001, ...).
4. Step-size probe of each, and each part's relative change from the initialisation.

    python tools/study_meta_optim4rl_es.py --run-dir runs/hm4_es \\
        --out docs/data/meta/study_optim4rl_es.json

    python tools/study_meta_optim4rl_es.py --handbuilt --run-dir runs/hm4_handbuilt \\
        --out docs/data/meta/study_optim4rl_es_handbuilt.json

STATUS: run once (docs/meta/studies.md, "Whole-run objective by ES (diagnostic)"): 40
generations reach 0.82 (selected) and 0.86 (last) of tuned Adam, initialisation 0.78,
still sign descent with a larger step; hand-set sign-of-momentum meta-parameters reach
0.94, so the architecture can express a rule above 0.9 at this budget.
"""

import argparse
import json
import os
import pathlib
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

import lorl_agents as la
import lorl_gridworlds as lg
import lorl_meta as lm
import lorl_optim as lo
from lorl.analysis import relative_change, step_size_probe
from lorl.experiments.optim4rl._study import (
    AGENT_LR,
    ENV,
    PARTS,
    a2c_returns,
    make_evaluator,
    make_optimizer,
    plot_curves,
    print_probes,
    print_results,
    tune_adam,
)


def summary(final: np.ndarray) -> dict:
    """Final returns, their mean and standard error."""
    return {
        "final_returns": final.tolist(),
        "mean": float(np.mean(final)),
        "stderr": float(np.std(final, ddof=1) / np.sqrt(len(final))),
    }


def sign_momentum_optim4rl(
    start: lo.Optim4RL, *, step: float, log_kappa: float | None, beta: float = 0.9
) -> lo.Optim4RL:
    """Meta-parameters of the paper-version Optim4RL set by hand so that it computes a
    sign-of-momentum rule (the kind of rule Lion is), to test whether the architecture
    can express a rule that passes the bar. With `h` the first unit of `h1`:

    - `log_kappa` given (magnitude-weighted momentum): the update gate reads `log|g|`,
      `1 - z = sigmoid(log|g| + log_kappa) ~ kappa |g|`, so
      `h <- h + (1 - z) (tanh(3 sign(g)) - h)`, a running sum of `g` with forgetting;
    - `log_kappa` None (vote of signs): constant gate, `h <- beta h + (1 - beta)
      tanh(3 sign(g))`.

    The second unit of `h1` is `tanh(3 sign(g))` (update gate closed, z ~ 1e-13), the
    other six stay 0. MLP1 computes `o1 + 1 = 10 (|a + b| - |a - b|)` (`a` the current
    sign unit, `b = h`; four ReLUs and an identity layer), whose sign is
    `sign(g) * sign(h)`, so the direction `g_sign * m_sign` is `sign(h)`; `o2 =
    log(step / alpha)`; MLP2 is zero, so `v = 1`. The update is
    `-step * sign(h)` (checked against a direct computation by `check_sign_momentum`).

    **Arguments:**

    - `start`: an `Optim4RL` of the paper's sizes (its learning rate `alpha` is kept).
    - `step`: the step size of every update.
    - `log_kappa`: log of the gate's gain on `|g|` (None: the vote of signs).
    - `beta`: the constant gate of the vote of signs.

    **Returns:**

    An `Optim4RL` with the same static fields as `start`.
    """
    f = start.gru1.hidden_size
    g1 = start.gru1
    wi = jnp.zeros_like(g1.weight_ih).at[2 * f, 0].set(3.0).at[2 * f + 1, 0].set(3.0)
    bi = jnp.zeros_like(g1.bias_ih).at[f + 1].set(-30.0)
    if log_kappa is None:
        bi = bi.at[f].set(float(np.log(beta / (1 - beta))))
    else:
        wi = wi.at[f, 1].set(-1.0)
        bi = bi.at[f].set(-log_kappa)
    gru1 = eqx.tree_at(
        lambda g: (g.weight_ih, g.bias_ih, g.weight_hh, g.bias_hn),
        g1,
        (wi, bi, jnp.zeros_like(g1.weight_hh), jnp.zeros_like(g1.bias_hn)),
    )
    l1, l2, l3 = start.mlp1.layers
    # Inputs b = h1[0] (momentum), a = h1[1] (current sign); hidden units
    # relu(a + b), relu(-a - b), relu(a - b), relu(b - a).
    w1 = jnp.zeros_like(l1.weight)
    for row, (ca, cb) in enumerate(((1, 1), (-1, -1), (1, -1), (-1, 1))):
        w1 = w1.at[row, 1].set(ca).at[row, 0].set(cb)
    w2 = jnp.zeros_like(l2.weight).at[jnp.arange(4), jnp.arange(4)].set(1.0)
    w3 = jnp.zeros_like(l3.weight).at[0, :4].set(jnp.array([10.0, 10.0, -10.0, -10.0]))
    b3 = jnp.zeros_like(l3.bias).at[0].set(-start.sign_bias)
    b3 = b3.at[1].set(float(np.log(step / start.learning_rate)))
    mlp1 = eqx.tree_at(
        lambda m: tuple(x for layer in m.layers for x in (layer.weight, layer.bias)),
        start.mlp1,
        (w1, jnp.zeros_like(l1.bias), w2, jnp.zeros_like(l2.bias), w3, b3),
    )
    mlp2 = jax.tree.map(jnp.zeros_like, start.mlp2)
    return eqx.tree_at(lambda o: (o.gru1, o.mlp1, o.mlp2), start, (gru1, mlp1, mlp2))


def check_sign_momentum(optimizer, step: float, log_kappa: float | None, beta: float) -> float:
    """Largest difference between `optimizer`'s updates and a direct float64 computation
    of the rule of `sign_momentum_optim4rl` on a random gradient stream (50 steps, 1,000
    parameters, gradients `1e-3 (0.3 + noise)`)."""
    g = np.asarray(1e-3 * (0.3 + jax.random.normal(jax.random.key(1), (50, 1000))), np.float64)
    state = optimizer.init({"w": jnp.zeros(1000)})
    h, err = np.zeros(1000), 0.0
    for gt in g:
        delta, state = optimizer.update({"w": jnp.asarray(gt, jnp.float32)}, state)
        if log_kappa is None:
            a = 1 - beta
        else:
            a = 1 / (1 + np.exp(-(np.log(np.abs(gt) + 1e-18) + log_kappa)))
        h = (1 - a) * h + a * np.tanh(3 * np.sign(gt))
        err = max(err, float(np.abs(np.asarray(delta["w"]) + step * np.sign(h)).max()))
    return err


def handbuilt_study(args, agent, env, params, evaluate, start, best_lr, report, clock) -> None:
    """`--handbuilt`: the sign-of-momentum rules of `sign_momentum_optim4rl` on the
    tuning seeds (`--val-seeds`), the best of them with tuned Adam and the
    initialisation on the fresh seeds; probe; JSON at `--out`."""
    val_seeds = list(range(100, 100 + args.val_seeds))
    grid = [
        (kind, value, step)
        for kind, values in (("vote", (0.9, 0.99)), ("weighted", (10.0, 100.0)))
        for value in values
        for step in (3e-3, 1e-2)
    ]
    rules, rows = {}, []
    for kind, value, step in grid:
        log_kappa = None if kind == "vote" else float(np.log(value))
        beta = value if kind == "vote" else 0.9
        opt = sign_momentum_optim4rl(start, step=step, log_kappa=log_kappa, beta=beta)
        err = check_sign_momentum(opt, step, log_kappa, beta)
        if err > 1e-7:
            raise SystemExit(f"hand-built rule {kind} {value} {step}: update error {err:.2e}")
        name = f"{kind}_{'beta' if kind == 'vote' else 'kappa'}{value:g}_step{step:g}"
        rules[name] = opt
        score = float(np.mean(evaluate(opt, val_seeds)[0]))
        rows.append({"name": name, "validation": score, "max_update_error": err})
        print(f"{name}: validation {score:.3f} (update error {err:.1e})", flush=True)
    report["handbuilt_validation"] = rows
    clock("handbuilt_validation")
    best = max(rows, key=lambda r: r["validation"])["name"]
    report["handbuilt_selected"] = best
    report["handbuilt_relative_change"] = relative_change(start, rules[best], PARTS)
    seeds = list(range(1000, 1000 + args.eval_seeds))
    report["adam"] = summary(a2c_returns(agent, env, params, optax.adam(best_lr), seeds)[0])
    report["optim4rl_init"] = summary(evaluate(start, seeds)[0])
    report["optim4rl_handbuilt"] = summary(evaluate(rules[best], seeds)[0])
    ratio = report["optim4rl_handbuilt"]["mean"] / report["adam"]["mean"]
    report["handbuilt_over_adam"] = ratio
    report["step_probe"] = {
        "adam": step_size_probe(optax.adam(best_lr), args.agent_lr),
        "optim4rl_init": step_size_probe(start, args.agent_lr),
        **{name: step_size_probe(opt, args.agent_lr) for name, opt in rules.items()},
    }
    clock("handbuilt_evaluation")
    report["cpu_time_s"] = report["timings"]["handbuilt_evaluation"]["cpu_s"]
    report["wall_time_s"] = report["timings"]["handbuilt_evaluation"]["wall_s"]
    report["load_average_end"] = os.getloadavg()
    for name in ("adam", "optim4rl_init", "optim4rl_handbuilt"):
        r = report[name]
        print(f"{name}: {r['mean']:.3f} +- {r['stderr']:.3f}")
    print(f"hand-built ({best}) / adam = {ratio:.3f}")
    out = pathlib.Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1))


def main() -> None:
    p = argparse.ArgumentParser(description=(__doc__ or "study").splitlines()[0])
    p.add_argument("--envs", type=int, default=64, help="environments of the evaluation runs")
    p.add_argument("--updates", type=int, default=500)
    p.add_argument(
        "--member-envs",
        type=int,
        default=None,
        help="environments of each ES member's run (default: --envs)",
    )
    p.add_argument("--tune-seeds", type=int, default=3, help="Adam tuning seeds 100, ...")
    p.add_argument("--val-seeds", type=int, default=6, help="validation seeds 100, ...")
    p.add_argument("--eval-seeds", type=int, default=10, help="fresh seeds 1000, ...")
    # OPEN (Goldie et al. 2024) Table 7: Optim4RL was trained by ES with the MinAtar
    # column's sigma 0.03 and learning rate 0.03, both decaying 0.999, population 64 (Ant
    # column: 32). We halve the population to 32 (as tools/study_meta_open.py) to afford
    # tens of generations of full 500-update runs on the CPU.
    p.add_argument("--population", type=int, default=32)
    p.add_argument("--generations", type=int, default=40)
    p.add_argument("--validate-every", type=int, default=5)
    p.add_argument("--sigma", type=float, default=0.03)
    p.add_argument("--es-lr", type=float, default=0.03)
    p.add_argument("--decay", type=float, default=0.999)
    p.add_argument("--agent-lr", type=float, default=AGENT_LR)
    p.add_argument("--seed", type=int, default=0, help="meta-seed of the initialisation")
    p.add_argument("--es-seed", type=int, default=0, help="seed of the ES run")
    p.add_argument(
        "--cpu-budget-min",
        type=float,
        default=30.0,
        help="stop the ES early if the next chunk would leave less than the evaluation "
        "reserve of this many CPU-minutes (time.process_time of this process)",
    )
    p.add_argument("--eval-reserve-min", type=float, default=3.0)
    p.add_argument(
        "--handbuilt",
        action="store_true",
        help="no ES: evaluate hand-set sign-of-momentum meta-parameters "
        "(sign_momentum_optim4rl) instead",
    )
    p.add_argument("--run-dir", default="runs/study_meta_optim4rl_es")
    p.add_argument("--out", default="docs/data/meta/study_optim4rl_es.json")
    args = p.parse_args()
    if args.generations % args.validate_every:
        raise SystemExit("--generations must be a multiple of --validate-every")
    member_envs = args.member_envs or args.envs
    run_dir = pathlib.Path(args.run_dir)

    env, params = lg.make(ENV)
    eval_cfg = la.A2CConfig.small_gridworld(
        n_envs=args.envs, total_timesteps=args.envs * 20 * args.updates
    )
    agent = la.A2C(eval_cfg)
    report: dict = {"env": ENV, "a2c_eval_budget_steps": eval_cfg.steps_per_run, "args": vars(args)}
    report["load_average_start"] = os.getloadavg()
    t0, c0 = time.perf_counter(), time.process_time()

    def cpu_s() -> float:
        return time.process_time() - c0

    def clock(phase: str) -> None:
        report.setdefault("timings", {})[phase] = {
            "wall_s": time.perf_counter() - t0,
            "cpu_s": cpu_s(),
        }
        print(f"[{phase}] wall {time.perf_counter() - t0:.0f}s cpu {cpu_s():.0f}s", flush=True)

    # 1. Tuned Adam.
    tune_seeds = list(range(100, 100 + args.tune_seeds))
    tuning = tune_adam(agent, env, params, tune_seeds, run_dir)
    best_lr = max(tuning, key=lambda k: tuning[k])
    report["adam_tuning"] = {str(k): v for k, v in tuning.items()}
    report["adam_lr"] = best_lr
    val_seeds = list(range(100, 100 + args.val_seeds))
    report["adam_validation"] = float(
        np.mean(a2c_returns(agent, env, params, optax.adam(best_lr), val_seeds)[0])
    )
    clock("adam_tuning")

    # 2. ES from the pipeline study's initialisation of meta-seed `--seed`.
    start = make_optimizer("paper", args.agent_lr, "xla", key=jax.random.key(args.seed))
    static = eqx.partition(start, eqx.is_array)[1]
    evaluate = make_evaluator(agent, env, params, static)
    init_val = float(np.mean(evaluate(start, val_seeds)[0]))
    report["init_validation"] = init_val
    print(f"init: validation {init_val:.3f}; adam {report['adam_validation']:.3f}", flush=True)
    clock("init_validation")
    if args.handbuilt:
        handbuilt_study(args, agent, env, params, evaluate, start, best_lr, report, clock)
        return

    member_cfg = la.A2CConfig.small_gridworld(
        n_envs=member_envs, total_timesteps=member_envs * 20 * args.updates
    )
    task = lm.ESTask(ENV, lm.a2c_fitness(la.A2C(member_cfg), env), params)
    validation, best = [], (-np.inf, 0, start)
    result, trainer, chunk_cpu, stopped_early = None, None, 0.0, False

    def es_config(n_gens: int) -> lm.ESConfig:
        """The ES settings for a run of `n_gens` generations (chunks of one run resume
        from its checkpoints)."""
        return lm.ESConfig(
            n_generations=n_gens,
            population_size=args.population,
            sigma_init=args.sigma,
            sigma_decay=args.decay,
            lr=args.es_lr,
            lr_decay=args.decay,
            eval_every=args.validate_every,
            # The trainer's own validation (seeds derived from --es-seed) is not used:
            # one run, the minimum; selection uses the tuning seeds below.
            n_validation=1,
            checkpoint_every=args.validate_every,
        )

    for n_gens in range(args.validate_every, args.generations + 1, args.validate_every):
        config = es_config(n_gens)
        trainer = lm.ESTrainer(config, task)
        cached = run_dir / f"validated_{n_gens}.eqx"
        if cached.exists():
            optimizer = eqx.tree_deserialise_leaves(cached, start)
            score = json.loads(cached.with_suffix(".json").read_text())["validation"]
        else:
            budget = 60 * (args.cpu_budget_min - args.eval_reserve_min)
            if cpu_s() + chunk_cpu > budget:
                print(f"CPU budget: stopping the ES before generation {n_gens}", flush=True)
                stopped_early = True
                break
            c_chunk = cpu_s()
            result = trainer.train(
                start, seed=args.es_seed, checkpoint_dir=run_dir / "ckpt", log_dir=run_dir,
                progress=False,
            )  # fmt: skip
            optimizer = result.final_optimizer
            score = float(np.mean(evaluate(optimizer, val_seeds)[0]))
            chunk_cpu = cpu_s() - c_chunk
            eqx.tree_serialise_leaves(cached, optimizer)
            cached.with_suffix(".json").write_text(json.dumps({"validation": score}))
        validation.append({"generation": n_gens, "validation": score})
        if score > best[0]:
            best = (score, n_gens, optimizer)
        print(f"ES generation {n_gens}: validation {score:.3f} (cpu {cpu_s():.0f}s)", flush=True)
    if not validation:
        raise SystemExit("no ES chunk fits the CPU budget")
    last_gens = validation[-1]["generation"]
    if result is None or len(result.history) != last_gens:
        # Every chunk cached: the history and last mean from the last checkpoint.
        assert trainer is not None
        config = es_config(last_gens)
        result = lm.ESTrainer(config, task).train(
            start, seed=args.es_seed, checkpoint_dir=run_dir / "ckpt", progress=False
        )
    sel_score, sel_gen, selected = best
    report["es_validation"] = validation
    report["es_selected_generation"] = sel_gen
    report["es_generations_run"] = last_gens
    report["es_stopped_early_for_cpu"] = stopped_early
    report["es_history"] = [
        {
            k: r.get(k)
            for k in ("generation", "mean_score", "max_score", "sigma", "n_nonfinite", "wall_time")
        }
        for r in result.history
    ]
    report["es_relative_change"] = relative_change(start, selected, PARTS)
    report["es_last_relative_change"] = relative_change(start, result.final_optimizer, PARTS)
    print(f"ES: selected generation {sel_gen} (validation {sel_score:.3f}), relative change "
          f"{report['es_relative_change']}", flush=True)  # fmt: skip
    clock("es")

    # 3. Fresh seeds.
    seeds = list(range(1000, 1000 + args.eval_seeds))
    learned = {
        "optim4rl_init": start,
        "optim4rl_es": selected,
        "optim4rl_es_last": result.final_optimizer,
    }
    curves = {}
    for name, opt in [("adam", None), *learned.items()]:
        if opt is None:
            final, curve = a2c_returns(agent, env, params, optax.adam(best_lr), seeds)
        else:
            final, curve = evaluate(opt, seeds)
        curves[name] = np.nanmean(curve, axis=0)
        report[name] = summary(final)
    clock("evaluation")
    adam_mean = report["adam"]["mean"]
    if adam_mean <= 0:
        raise SystemExit(f"tuned Adam's mean final return is {adam_mean:.3f} <= 0")
    ratio = report["optim4rl_es"]["mean"] / adam_mean
    report["es_over_adam"] = ratio
    report["reaches_0.9_of_adam"] = bool(ratio >= 0.9)

    # 4. Probe.
    report["step_probe"] = {"adam": step_size_probe(optax.adam(best_lr), args.agent_lr)}
    for name, opt in learned.items():
        report["step_probe"][name] = step_size_probe(opt, args.agent_lr)
    clock("probe")
    report["wall_time_s"] = time.perf_counter() - t0
    report["cpu_time_s"] = cpu_s()
    report["load_average_end"] = os.getloadavg()

    print_results(report, ["adam", *learned], args.eval_seeds, adam_mean)
    print(f"ES / adam = {ratio:.3f} (0.9: {'reached' if ratio >= 0.9 else 'NOT reached'})")
    print_probes(report)

    out = pathlib.Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1))
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, (ax0, ax) = plt.subplots(1, 2, figsize=(12, 4))
        hist = report["es_history"]
        ax0.plot([h["generation"] for h in hist], [h["mean_score"] for h in hist],
                 label="population mean (training seeds)")  # fmt: skip
        ax0.plot([h["generation"] for h in hist], [h["max_score"] for h in hist], alpha=0.4,
                 label="population max")  # fmt: skip
        ax0.plot([0] + [v["generation"] for v in validation],
                 [init_val] + [v["validation"] for v in validation], "o-",
                 label=f"ES mean, validation ({args.val_seeds} tuning seeds)")  # fmt: skip
        ax0.axhline(report["adam_validation"], color="k", ls="--", label=f"Adam {best_lr:g}")
        ax0.axhline(0.9 * report["adam_validation"], color="gray", ls=":", label="90% of Adam")
        ax0.set_xlabel("generation")
        ax0.set_ylabel("final return")
        ax0.set_title("ES on the whole-run final return")
        ax0.legend(fontsize=7)
        plot_curves(ax, curves, args.eval_seeds)
        fig.tight_layout()
        fig.savefig(out.with_suffix(".png"), dpi=110)
    except ImportError:
        print("matplotlib not installed: no figure")


if __name__ == "__main__":
    main()
