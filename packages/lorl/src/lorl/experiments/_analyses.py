"""Catalogue module (registers experiments on import): the Optim4RL gradient analyses.

- `analysis/gradient-distributions`: Figure 1 (A2C in `big_dense_long`, RMSProp 3e-3,
  beginning / middle / end of training) and Figures 5-6 (a PPO task's agent-gradients
  against the gridworlds').
- `analysis/wasserstein`: Appendix E, Table 11 (RL vs supervised learning; digits
  replaces MNIST, which cannot be downloaded here).
- `analysis/identity`: Sections 4.2 and 5.2, Figure 2 (an LSTM reproducing agent-gradients
  from raw or sign/log inputs, and the non-iid random control).
"""

import dataclasses
import math
from typing import Any

import numpy as np

from ..runs import RunDir
from ._registry import Experiment, register

# -- shared pieces --------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class A2CCollect:
    """The A2C run whose agent-gradients are collected (Optim4RL Appendix C.2).

    - `env`: LPG gridworld (`big_dense_long` in the paper).
    - `n_envs`: 512 in the paper (Appendix C.3); fewer at cpu scale (noisier gradients).
    - `total_timesteps`: 3e7 in the paper (Appendix C.2).
    - `learning_rate`: RMSProp's, 3e-3 (Appendix C.2).
    - `n_stages`: 30 parts by time (Appendix C.2).
    - `per_stage`: gradient elements kept per part (ours; the memory bound).
    """

    env: str = "big_dense_long"  # Optim4RL Section 4.1
    n_envs: int = 512  # Optim4RL Appendix C.3
    total_timesteps: int = 30_000_000  # Optim4RL Appendix C.2
    learning_rate: float = 3e-3  # Optim4RL Appendix C.2 (RMSProp)
    n_stages: int = 30  # Optim4RL Appendix C.2
    per_stage: int = 10_000  # ours (bounded memory)


def _a2c_agent(c: A2CCollect) -> tuple[Any, Any, Any]:
    import lorl_gridworlds
    from lorl_agents import A2C, A2CConfig

    env, params = lorl_gridworlds.make(c.env)
    big = c.env.startswith("big")
    make = A2CConfig.big_gridworld if big else A2CConfig.small_gridworld
    return A2C(make(n_envs=c.n_envs, total_timesteps=c.total_timesteps)), env, params


def _validate_a2c(c: A2CCollect) -> int:
    """Raise ConfigError for an A2C collection that cannot run; return its update count."""
    from lorl_agents import A2CConfig

    from ..runs import ConfigError

    try:
        n_updates = A2CConfig(n_envs=c.n_envs, total_timesteps=c.total_timesteps).n_updates
    except ValueError as e:
        raise ConfigError(f"a2c: {e}") from None
    if not 1 <= c.n_stages <= n_updates or c.per_stage < 1:
        raise ConfigError(
            f"a2c.n_stages must lie in [1, {n_updates}] (the run's updates) and a2c.per_stage "
            f"must be >= 1; got {c.n_stages} and {c.per_stage}"
        )
    return n_updates


def _validate_distributions(c: "DistributionsConfig") -> None:
    _validate_a2c(c.a2c)


def _validate_wasserstein(c: "WassersteinConfig") -> None:
    from ..runs import ConfigError

    _validate_a2c(c.a2c)
    if c.sl_epochs < 1 or not 1 <= c.sl_batch_size <= 1797:
        raise ConfigError("sl_epochs must be >= 1 and sl_batch_size in [1, 1797] (digits)")


def _validate_identity(c: "IdentityConfig") -> None:
    from ..runs import ConfigError

    n_updates = _validate_a2c(c.a2c)
    if c.seeds < 1 or c.epochs < 1 or c.n_traced < 1 or not c.learning_rates:
        raise ConfigError("seeds, epochs, n_traced must be >= 1 and learning_rates non-empty")
    if not 1 <= c.seq_len <= n_updates:
        raise ConfigError(f"seq_len must lie in [1, {n_updates}] (the A2C run's updates)")


def _save_sample(run_dir: RunDir, name: str, sample: Any, metrics: dict[str, Any]) -> None:
    folder = run_dir.path / "gradients"
    folder.mkdir(exist_ok=True)
    arrays = {f"stage_{i}": s for i, s in enumerate(sample.stages)}
    np.savez_compressed(
        folder / f"{name}.npz",
        seen=sample.seen,
        traces=sample.traces,
        trace_index=sample.trace_index,
        **arrays,
    )
    run_dir.save_result(name, {k: np.asarray(v) for k, v in metrics.items()})


def _load_sample(run_dir: RunDir, name: str) -> Any:
    from ..analysis import GradientSample

    with np.load(run_dir.path / "gradients" / f"{name}.npz") as z:
        n = len(z["seen"])
        return GradientSample(
            [z[f"stage_{i}"] for i in range(n)], z["seen"], z["traces"], z["trace_index"]
        )


def _collect_a2c(run_dir: RunDir, name: str, c: A2CCollect, n_traced: int, seed: int) -> Any:
    """Collect (or, on resume, load) the A2C agent-gradients of one run."""
    import jax
    import optax

    from ..analysis import collect_rl_gradients

    if not (run_dir.has_result(name) and (run_dir.path / "gradients" / f"{name}.npz").is_file()):
        agent, env, params = _a2c_agent(c)
        sample, metrics = collect_rl_gradients(
            agent,
            env,
            params,
            optax.rmsprop(c.learning_rate),
            n_stages=c.n_stages,
            per_stage=c.per_stage,
            n_traced=n_traced,
            key=jax.random.key(seed),
        )
        _save_sample(run_dir, name, sample, metrics)
    return _load_sample(run_dir, name)


def _stage_summary(sample: Any) -> dict[str, Any]:
    from ..analysis import log10_magnitude

    out = []
    for i, v in enumerate(sample.stages):
        nz = v[v != 0]
        q = np.percentile(log10_magnitude(nz), [5, 25, 50, 75, 95]).tolist() if nz.size else None
        out.append({"stage": i, "zero_fraction": float(np.mean(v == 0)), "log10_nonzero_q": q})
    return {"per_stage": out}


def _fmt(x: Any, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "-"
    if isinstance(x, float):
        return f"{x:.{digits}g}"
    return str(x)


def _rel(run_dir: RunDir, path: Any) -> str:
    return str(path.relative_to(run_dir.path))


# -- analysis/gradient-distributions ------------------------------------------------


@dataclasses.dataclass(frozen=True)
class DistributionsConfig:
    """Figure 1 and Figures 5-6 of Optim4RL.

    - `seed`: PRNG seed.
    - `a2c`: the A2C run in the gridworld of Figure 1.
    - `gridworlds`: extra gridworlds whose agent-gradients join the "all gridworlds"
      distribution of Figure 6 (the paper: all six; each is one more A2C run).
    - `ppo_env`: the PPO task overlaid on the gridworlds (Figure 5: Brax `ant`,
      `humanoid`, ...; any `lorl_agents.make_env` name, e.g. `Breakout-MinAtar` when
      Brax is not installed).
    - `ppo_n_envs`, `ppo_n_steps`, `ppo_total_timesteps`, `ppo_minibatches`: its PPO
      configuration (OPEN Table 3's Ant column in the paper scale; smaller at cpu scale).
    """

    seed: int = 0
    a2c: A2CCollect = dataclasses.field(default_factory=A2CCollect)
    gridworlds: tuple[str, ...] = (
        "small_dense_short",
        "small_dense_long",
        "big_sparse_short",
        "big_sparse_long",
        "big_dense_short",
    )  # Optim4RL Figure 6: all six LPG gridworlds
    ppo_env: str = "ant"  # Optim4RL Figure 5 (e)-(h): Brax tasks
    ppo_n_envs: int = 2048  # OPEN Table 3, Ant
    ppo_n_steps: int = 10  # OPEN Table 3, Ant
    ppo_total_timesteps: int = 50_000_000  # OPEN Table 3, Ant
    ppo_minibatches: int = 32  # OPEN Table 3, Ant


def _distributions_cpu() -> DistributionsConfig:
    return DistributionsConfig(
        a2c=A2CCollect(n_envs=64, total_timesteps=64 * 20 * 150, per_stage=4000),
        gridworlds=("small_dense_short",),
        # Brax ant PPO took 337 s for 100 small updates here (shared 2-core CPU), over the
        # cpu budget; Breakout-MinAtar (OPEN Table 3 sizes, 20 updates) stands in.
        ppo_env="Breakout-MinAtar",
        ppo_n_envs=64,  # OPEN Table 3, MinAtar
        ppo_n_steps=128,  # OPEN Table 3, MinAtar
        ppo_total_timesteps=64 * 128 * 20,  # ours: 20 updates
        ppo_minibatches=8,  # OPEN Table 3, MinAtar
    )


def _collect_ppo(run_dir: RunDir, c: DistributionsConfig) -> Any:
    import jax

    name = "ppo"
    if not (run_dir.has_result(name) and (run_dir.path / "gradients" / f"{name}.npz").is_file()):
        from lorl_agents import BRAX_ENVS, PPO, PPOConfig, make_env
        from lorl_optim.baselines import adam as tuned_adam

        from ..analysis import collect_rl_gradients

        env, params = make_env(c.ppo_env)
        sizes = dict(
            n_envs=c.ppo_n_envs,
            n_steps=c.ppo_n_steps,
            total_timesteps=c.ppo_total_timesteps,
            n_minibatches=c.ppo_minibatches,
        )
        brax = c.ppo_env.removeprefix("brax/") in BRAX_ENVS
        cfg = PPOConfig.brax_ant(**sizes) if brax else PPOConfig.minatar(**sizes)
        # OPEN's tuned Adam for the task if it has one, else Ant's (Brax) / Breakout's.
        try:
            opt = tuned_adam(
                c.ppo_env.removeprefix("brax/"),
                total_steps=cfg.optimizer_steps,
                steps_per_update=cfg.steps_per_update,
            )
        except ValueError:
            opt = tuned_adam(
                "ant" if brax else "breakout",
                total_steps=cfg.optimizer_steps,
                steps_per_update=cfg.steps_per_update,
            )
        sample, metrics = collect_rl_gradients(
            PPO(cfg),
            env,
            params,
            opt,
            n_stages=c.a2c.n_stages,
            per_stage=c.a2c.per_stage,
            key=jax.random.key(c.seed + 1000),
        )
        _save_sample(run_dir, name, sample, metrics)
    return _load_sample(run_dir, name)


def _run_distributions(c: DistributionsConfig, run_dir: RunDir) -> dict[str, Any]:
    from ..analysis import overlap, stage_indices

    main = _collect_a2c(run_dir, "a2c", c.a2c, 0, c.seed)
    grids = {c.a2c.env: main}
    for i, g in enumerate(c.gridworlds):
        grids[g] = _collect_a2c(
            run_dir, f"a2c-{g}", dataclasses.replace(c.a2c, env=g), 0, c.seed + 1 + i
        )
    ppo = _collect_ppo(run_dir, c)
    ppo_all, ppo_w = ppo.whole_run()
    main_all, main_w = main.whole_run()
    pooled = np.concatenate([s.whole_run()[0] for s in grids.values()])
    # Each gridworld counts equally in the pooled distribution.
    pooled_w = np.concatenate([s.whole_run()[1] / s.whole_run()[1].sum() for s in grids.values()])
    idx = stage_indices(main.n_stages)
    return {
        "a2c_env": c.a2c.env,
        "ppo_env": c.ppo_env,
        "stages": idx,
        "a2c": _stage_summary(main),
        "ppo": _stage_summary(ppo),
        "gridworlds": {g: _stage_summary(s) for g, s in grids.items()},
        "zero_fraction_whole_run": {
            **{
                g: float(np.average(s.whole_run()[0] == 0, weights=s.whole_run()[1]))
                for g, s in grids.items()
            },
            c.ppo_env: float(np.average(ppo_all == 0, weights=ppo_w)),
        },
        "overlap_ppo_vs_main_gridworld": overlap(ppo_all, main_all, b_weights=main_w),
        "overlap_ppo_vs_all_gridworlds": overlap(ppo_all, pooled, b_weights=pooled_w),
    }


def _report_distributions(run_dir: RunDir) -> str:
    from ..analysis import plot_overlay, plot_stage_histograms

    r = run_dir.load_results()
    main = _load_sample(run_dir, "a2c")
    idx = r["stages"]
    fig1 = run_dir.plots_dir / "figure1_stages.png"
    plot_stage_histograms(
        {f"{k} (part {v + 1}/{main.n_stages})": main.stage(v) for k, v in idx.items()},
        str(fig1),
        title=f"A2C agent-gradients in {r['a2c_env']} (RMSProp)",
    )
    ppo = _load_sample(run_dir, "ppo")
    pv, _ = ppo.whole_run()
    mv, mw = main.whole_run()
    fig5 = run_dir.plots_dir / "figure5_overlay.png"
    plot_overlay((f"{r['ppo_env']} (PPO)", pv), [(f"{r['a2c_env']} (A2C)", mv, mw)], str(fig5))
    others = []
    for g in r["gridworlds"]:
        s = main if g == r["a2c_env"] else _load_sample(run_dir, f"a2c-{g}")
        v, w = s.whole_run()
        others.append((f"{g} (A2C)", v, w))
    fig6 = run_dir.plots_dir / "figure6_overlay.png"
    plot_overlay((f"{r['ppo_env']} (PPO)", pv), others, str(fig6))
    lines = [
        "# Agent-gradient distributions (Optim4RL Figure 1, Figures 5-6)",
        "",
        f"Config: `{json_dumps(run_dir.config_dict)}`",
        "",
        f"![stages]({_rel(run_dir, fig1)})",
        "",
        "| stage | part | zero fraction | log10 abs(g), non-zero: 5% / 50% / 95% |",
        "|---|---|---|---|",
    ]
    per = r["a2c"]["per_stage"]
    for k, v in idx.items():
        q = per[v]["log10_nonzero_q"]
        qs = " / ".join(_fmt(q[i]) for i in (0, 2, 4)) if q else "-"
        lines.append(f"| {k} | {v + 1} | {_fmt(per[v]['zero_fraction'])} | {qs} |")
    lines += [
        "",
        "Paper (Figure 1, 512 environments, 3e7 steps): two peaks at the beginning; in the "
        "middle most agent-gradients are non-zero, concentrated around 1e-3; at the end a "
        "large portion are zeros.",
        "",
        f"![figure5]({_rel(run_dir, fig5)}) ![figure6]({_rel(run_dir, fig6)})",
        "",
        "| comparison | histogram overlap (1 = identical) |",
        "|---|---|",
        f"| {r['ppo_env']} vs {r['a2c_env']} | {_fmt(r['overlap_ppo_vs_main_gridworld'])} |",
        f"| {r['ppo_env']} vs pooled gridworlds ({', '.join(r['gridworlds'])}) | "
        f"{_fmt(r['overlap_ppo_vs_all_gridworlds'])} |",
        "",
        "Paper (Figures 5-6): the Brax tasks where Optim4RL trained on big_dense_long "
        "generalises (ur5e, Humanoid) overlap its gridworld's support; Ant and Grasp do not, "
        "and overlap more with all six gridworlds pooled.",
        "",
        "Whole-run zero fractions: "
        + ", ".join(f"{k} {_fmt(v)}" for k, v in r["zero_fraction_whole_run"].items()),
        "",
    ]
    return "\n".join(lines)


def json_dumps(d: Any) -> str:
    import json

    return json.dumps(d, separators=(",", ":"))


register(
    Experiment(
        name="analysis/gradient-distributions",
        summary=(
            "Agent-gradient histograms over training (A2C, big_dense_long) and "
            "PPO-vs-gridworld overlays"
        ),
        reproduces="Optim4RL Figure 1, Figures 5-6",
        scales={"cpu": _distributions_cpu, "paper": DistributionsConfig},
        run=_run_distributions,
        report=_report_distributions,
        validate=_validate_distributions,
    )
)


# -- analysis/wasserstein -------------------------------------------------------------

#: Optim4RL Appendix E, Table 11.
PAPER_TABLE_11 = {
    "MNIST": {"beginning": 4.0642e-4, "middle": 0.7205e-4, "end": 1.4204e-4},
    "big_dense_long": {"beginning": 7.1583e-4, "middle": 1.1726e-4, "end": 6.7967e-4},
}


@dataclasses.dataclass(frozen=True)
class WassersteinConfig:
    """Optim4RL Appendix E, Table 11: Wasserstein distance of each stage to the whole run.

    - `seed`: PRNG seed.
    - `a2c`: the RL run (A2C in `big_dense_long`, RMSProp 3e-3).
    - `sl_epochs`, `sl_batch_size`, `sl_learning_rate`: the supervised run on
      scikit-learn's digits (MNIST in the paper: 10 epochs, batch 128, RMSProp 3e-4 in the
      Optim4RL public code's `configs/collect_mnist.json`).
    """

    seed: int = 0
    a2c: A2CCollect = dataclasses.field(default_factory=A2CCollect)
    sl_epochs: int = 10  # Optim4RL Appendix E
    sl_batch_size: int = 128  # Optim4RL public code, configs/collect_mnist.json
    sl_learning_rate: float = 3e-4  # Optim4RL public code, configs/collect_mnist.json


def _wasserstein_cpu() -> WassersteinConfig:
    return WassersteinConfig(
        a2c=A2CCollect(n_envs=64, total_timesteps=64 * 20 * 150, per_stage=4000)
    )


def _run_wasserstein(c: WassersteinConfig, run_dir: RunDir) -> dict[str, Any]:
    import jax

    from ..analysis import collect_supervised_gradients, wasserstein_to_whole

    rl = _collect_a2c(run_dir, "a2c", c.a2c, 0, c.seed)
    if not (run_dir.has_result("digits") and (run_dir.path / "gradients" / "digits.npz").is_file()):
        sample, metrics = collect_supervised_gradients(
            epochs=c.sl_epochs,
            batch_size=c.sl_batch_size,
            learning_rate=c.sl_learning_rate,
            n_stages=c.a2c.n_stages,
            per_stage=c.a2c.per_stage,
            key=jax.random.key(c.seed + 1),
        )
        _save_sample(run_dir, "digits", sample, metrics)
    sl = _load_sample(run_dir, "digits")
    sl_metrics = run_dir.load_result("digits")
    return {
        "raw": {
            "digits": wasserstein_to_whole(sl, "raw"),
            c.a2c.env: wasserstein_to_whole(rl, "raw"),
        },
        "log10": {
            "digits": wasserstein_to_whole(sl, "log10"),
            c.a2c.env: wasserstein_to_whole(rl, "log10"),
        },
        "digits_final_train_accuracy": float(np.mean(sl_metrics["accuracy"][-10:])),
        "a2c_env": c.a2c.env,
        "zero_fraction": {
            "digits": float(np.average(sl.whole_run()[0] == 0, weights=sl.whole_run()[1])),
            c.a2c.env: float(np.average(rl.whole_run()[0] == 0, weights=rl.whole_run()[1])),
        },
        "paper": PAPER_TABLE_11,
    }


def _report_wasserstein(run_dir: RunDir) -> str:
    from ..analysis import plot_stage_histograms, stage_indices

    r = run_dir.load_results()
    sl = _load_sample(run_dir, "digits")
    idx = stage_indices(sl.n_stages)
    fig8 = run_dir.plots_dir / "figure8_digits_stages.png"
    plot_stage_histograms(
        {k: sl.stage(v) for k, v in idx.items()}, str(fig8), title="digits CNN gradients (RMSProp)"
    )
    env = r["a2c_env"]
    lines = [
        "# Wasserstein distance of stage to whole run (Optim4RL Appendix E, Table 11)",
        "",
        f"Config: `{json_dumps(run_dir.config_dict)}`",
        "",
        "scikit-learn's digits replaces MNIST (MNIST cannot be downloaded here). "
        "`scipy.stats.wasserstein_distance`; the whole run is the stage samples pooled, "
        "weighted by stage size.",
        "",
        "| task | W(beginning, all) | W(middle, all) | W(end, all) "
        "| paper (beginning / middle / end) |",
        "|---|---|---|---|---|",
    ]
    for task, paper in (("digits", "MNIST"), (env, "big_dense_long")):
        for tr in ("raw", "log10"):
            w = r[tr][task]
            p = r["paper"][paper]
            ps = " / ".join(f"{p[k]:.3g}" for k in ("beginning", "middle", "end"))
            lines.append(
                f"| {task}, {'g' if tr == 'raw' else 'log10 abs(g)'} | "
                + " | ".join(_fmt(w[k]) for k in ("beginning", "middle", "end"))
                + f" | {paper}: {ps if tr == 'raw' else '(not reported)'} |"
            )
    lines += [
        "",
        f"Zero fractions (whole run): digits {_fmt(r['zero_fraction']['digits'])}, "
        f"{env} {_fmt(r['zero_fraction'][env])}. Digits training accuracy at the end "
        f"{_fmt(r['digits_final_train_accuracy'])}.",
        "",
        f"![digits]({_rel(run_dir, fig8)})",
        "",
    ]
    return "\n".join(lines)


register(
    Experiment(
        name="analysis/wasserstein",
        summary=(
            "Wasserstein distance of each training stage's gradients to the whole run: "
            "RL vs supervised (digits)"
        ),
        reproduces="Optim4RL Appendix E, Table 11 (and Figure 8)",
        scales={"cpu": _wasserstein_cpu, "paper": WassersteinConfig},
        run=_run_wasserstein,
        report=_report_wasserstein,
        validate=_validate_wasserstein,
    )
)


# -- analysis/identity ----------------------------------------------------------------

#: Optim4RL Figure 2 (b), read off the curves (Sections 4.2, 5.2).
PAPER_IDENTITY = {"raw": 0.75, "sign_log": 0.90, "control": 1.0}


@dataclasses.dataclass(frozen=True)
class IdentityConfig:
    """Optim4RL Sections 4.2 and 5.2, Figure 2 (b).

    - `seeds`: training runs per condition and learning rate (10 in the paper).
    - `a2c`: the A2C run whose agent-gradient traces are the data.
    - `n_traced`: parameter elements whose gradient sequences form the data (the public
      code keeps every 100th parameter of the network: ~600 of ~60,000 here).
    - `epochs`: 1,000 (Appendix C.2). `seq_len`: 5 (public code).
    - `learning_rates`: Adam's; the best is reported (Appendix C.2: {3e-3, 1e-3, 3e-4, 1e-4}).
    """

    seeds: int = 10  # Optim4RL Figure 2: 10 runs
    a2c: A2CCollect = dataclasses.field(default_factory=lambda: A2CCollect(per_stage=1000))
    n_traced: int = 600  # Optim4RL public code: every 100th parameter (configs/collect_bdl.json)
    epochs: int = 1000  # Optim4RL Appendix C.2
    seq_len: int = 5  # Optim4RL public code, configs/bdl_identity.json
    learning_rates: tuple[float, ...] = (3e-3, 1e-3, 3e-4, 1e-4)  # Optim4RL Appendix C.2


def _identity_cpu() -> IdentityConfig:
    return IdentityConfig(
        seeds=2,
        a2c=A2CCollect(n_envs=64, total_timesteps=64 * 20 * 150, per_stage=1000),
        n_traced=128,
        epochs=150,
        learning_rates=(3e-3, 1e-3),
    )


def _run_identity(c: IdentityConfig, run_dir: RunDir) -> dict[str, Any]:
    import jax

    from ..analysis import random_control_data, train_identity

    sample = _collect_a2c(run_dir, "a2c", c.a2c, c.n_traced, 0)
    traces = np.asarray(sample.traces, np.float32)
    control = np.asarray(random_control_data(*traces.shape, key=jax.random.key(7)))
    data = {"raw": (traces, "raw"), "sign_log": (traces, "sign_log"), "control": (control, "raw")}
    out: dict[str, Any] = {"paper": PAPER_IDENTITY, "data_shape": list(traces.shape)}
    for cond, (d, inputs) in data.items():

        def compute(d=d, inputs=inputs):
            runs = {}
            for lr in c.learning_rates:
                runs[str(lr)] = [
                    train_identity(
                        d,
                        inputs,
                        epochs=c.epochs,
                        seq_len=c.seq_len,
                        learning_rate=lr,
                        key=jax.random.key(100 + s),
                    )
                    for s in range(c.seeds)
                ]
            return runs

        runs = run_dir.stage(f"identity-{cond}", compute)
        # Per-epoch accuracy oscillates; "final" is the mean over the last tenth of the
        # epochs, "best" the best epoch (the Optim4RL code logs its best performance).
        tail = max(1, c.epochs // 10)

        def final_of(r: dict[str, Any], key: str = "accuracy", tail: int = tail) -> float:
            return float(np.mean(r[key][-tail:]))

        # The paper picks the best learning rate: highest mean (over seeds) final accuracy.
        best_lr = max(runs, key=lambda lr: np.mean([final_of(r) for r in runs[lr]]))
        best = runs[best_lr]
        final = np.array([final_of(r) for r in best])
        se = float(final.std(ddof=1) / np.sqrt(len(final))) if len(final) > 1 else float("nan")
        out[cond] = {
            "best_learning_rate": float(best_lr),
            "final_accuracy_mean": float(final.mean()),
            "final_accuracy_se": se,
            "final_accuracy_per_seed": final.tolist(),
            "final_accuracy_nonzero_mean": float(
                np.mean([final_of(r, "accuracy_nonzero") for r in best])
            ),
            "best_epoch_accuracy_mean": float(np.mean([np.max(r["accuracy"]) for r in best])),
            "nonzero_fraction": float(best[0]["nonzero_fraction"]),
            "curve_mean": np.mean([r["accuracy"] for r in best], axis=0).tolist(),
            "curve_nonzero_mean": np.mean([r["accuracy_nonzero"] for r in best], axis=0).tolist(),
        }
    return out


def _report_identity(run_dir: RunDir) -> str:
    from matplotlib.figure import Figure

    r = run_dir.load_results()
    fig = Figure(figsize=(9, 3.3))
    axes = fig.subplots(1, 2)
    labels = {"raw": "gradients", "sign_log": "processed gradients", "control": "random (non-iid)"}
    for cond, label in labels.items():
        axes[0].plot(r[cond]["curve_mean"], label=label)
        axes[1].plot(r[cond]["curve_nonzero_mean"], label=label)
    axes[0].set_title("accuracy (paper's definition)")
    axes[1].set_title("accuracy on non-zero targets")
    for ax in axes:
        ax.set_xlabel("epoch")
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    path = run_dir.plots_dir / "figure2_identity.png"
    fig.savefig(path, dpi=110)
    from ..analysis import plot_stage_histograms

    data_path = run_dir.plots_dir / "figure2a_data.png"
    traces = _load_sample(run_dir, "a2c").traces
    plot_stage_histograms(
        {"all traced agent-gradients": traces.ravel()}, str(data_path), title="identity data"
    )
    lines = [
        "# Identity-function experiment (Optim4RL Sections 4.2, 5.2, Figure 2)",
        "",
        f"Config: `{json_dumps(run_dir.config_dict)}`",
        "",
        f"Data: {r['data_shape'][0]} optimizer steps x {r['data_shape'][1]} parameter elements. "
        "Final accuracy: mean over the last tenth of the epochs, then over seeds; best "
        "epoch: the highest per-epoch accuracy, mean over seeds.",
        "",
        "| inputs | final accuracy (mean ± s.e.) | on non-zero targets | best epoch "
        "| non-zero fraction of data | best lr | paper |",
        "|---|---|---|---|---|---|---|",
    ]
    for cond, label in labels.items():
        x = r[cond]
        lines.append(
            f"| {label} | {_fmt(x['final_accuracy_mean'])} ± {_fmt(x['final_accuracy_se'], 2)} | "
            f"{_fmt(x['final_accuracy_nonzero_mean'])} | {_fmt(x['best_epoch_accuracy_mean'])} | "
            f"{_fmt(x['nonzero_fraction'])} | "
            f"{_fmt(x['best_learning_rate'])} | ~{r['paper'][cond]:.0%} |"
        )
    lines += [
        "",
        f"![identity]({_rel(run_dir, path)}) ![data (Figure 2 (a))]({_rel(run_dir, data_path)})",
        "",
    ]
    return "\n".join(lines)


register(
    Experiment(
        name="analysis/identity",
        summary=(
            "LSTM(8)+MLP[16,16] reproducing agent-gradients: raw vs sign/log inputs vs "
            "random control"
        ),
        reproduces="Optim4RL Sections 4.2, 5.2, Figure 2",
        scales={"cpu": _identity_cpu, "paper": IdentityConfig},
        run=_run_identity,
        report=_report_identity,
        validate=_validate_identity,
    )
)
