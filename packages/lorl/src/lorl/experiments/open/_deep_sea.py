"""`open/deep-sea`: separated actor/critic OPEN with and without learned stochasticity in
Deep Sea (OPEN Figure 6, Appendix I.2 Figure 17).

Catalogue module: registers its experiment on import."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import numpy as np

from ..._lazy import lazy_module
from ...runs import ConfigError, RunDir
from .._registry import Experiment, register
from . import _common as oc

if TYPE_CHECKING:
    import lorl_agents as la
    import lorl_meta as lm
else:  # loaded on first use: the catalogue of experiments imports no JAX stack
    la = lazy_module("lorl_agents")
    lm = lazy_module("lorl_meta")


@dataclasses.dataclass(frozen=True)
class DeepSeaConfig:
    """`open/deep-sea` (OPEN Figure 6, Appendix I.2, Figure 17): separated actor/critic
    OPEN with and without learned stochasticity, meta-trained by ES on Deep Sea (bsuite,
    via gymnax) of sizes 4..26 (every member on every size: Deep Sea's size is static
    in gymnax, so sizes are tasks), evaluated on those sizes and larger, out-of-support
    ones.

    **Fields:**

    - `learned`: optimizers (Figure 6: `separated` vs `separated_no_stochasticity`;
      Figure 17 adds the shared `open` and `no_stochasticity`).
    - `train_sizes`: Deep Sea sizes of meta-training (Section 7.2: 4..26).
    - `eval_sizes`: evaluation sizes (beyond 26: out of support; the figure's sizes
      are not given in the text).
    - `noise_sizes`: sizes at which the weight of the learned noise is recorded over
      training, for the optimizers with learned stochasticity (OPEN Appendix F.5,
      Figure 14: 10, 20, 30, 40, 50; `lorl.analysis.behaviour_curves`).
    - `seed`; `es` (48 generations, Appendix I.2; Table 7's MinAtar column for the rest:
      the paper gives no Deep Sea column); `agent` (the paper gives no Deep Sea PPO
      settings: Table 3's MinAtar column); `evaluation` (Figure 6: 128 seeds).
    """

    learned: tuple[str, ...] = ("separated", "separated_no_stochasticity")
    train_sizes: tuple[int, ...] = tuple(range(4, 27))  # OPEN Section 7.2
    eval_sizes: tuple[int, ...] = (*range(4, 27, 2), 30, 34, 38, 42)  # our choice
    noise_sizes: tuple[int, ...] = (10, 20, 30, 40, 50)  # OPEN Appendix F.5, Figure 14
    seed: int = 0
    es: oc.ESSettings = dataclasses.field(
        default_factory=lambda: oc.ESSettings(n_generations=48)  # OPEN Appendix I.2
    )
    agent: oc.AgentSettings = dataclasses.field(default_factory=oc.AgentSettings)
    evaluation: oc.EvalSettings = dataclasses.field(
        default_factory=lambda: oc.EvalSettings(n_seeds=128, baselines=())  # OPEN Figure 6
    )


def _deep_cpu() -> DeepSeaConfig:
    return DeepSeaConfig(
        train_sizes=(4, 6),
        eval_sizes=(4, 10),
        noise_sizes=(4, 10),
        es=oc.cpu_es(3, 4),
        # 4 envs x 16 steps x 16 updates = 1,024 steps per run.
        agent=oc.AgentSettings(
            n_envs=4, n_steps=16, total_timesteps=1_024, n_minibatches=2, n_epochs=2
        ),
        evaluation=oc.EvalSettings(n_seeds=16, baselines=()),
    )


def _deep_validate(cfg: DeepSeaConfig) -> None:
    oc.check_learned(
        cfg.learned, ("separated", "separated_no_stochasticity", "open", "no_stochasticity")
    )
    for name, sizes in (
        ("train_sizes", cfg.train_sizes), ("eval_sizes", cfg.eval_sizes),
        ("noise_sizes", cfg.noise_sizes),
    ):  # fmt: skip
        if (not sizes and name != "noise_sizes") or any(s < 1 for s in sizes):
            raise ConfigError(f"{name} must be positive Deep Sea sizes, got {sizes}")
    oc.check_common(cfg.es, "minatar", cfg.evaluation)
    for kind in cfg.learned:
        cfg.es.resolve(kind, "deep_sea", "minatar")
    cfg.agent.config(la.PPOConfig.minatar())
    if cfg.evaluation.baselines:
        raise ConfigError("Deep Sea has no tuned baselines in the paper; set evaluation.baselines=")


def _deep_env(size: int) -> tuple[Any, Any]:
    return la.make_env("DeepSea-bsuite", size=size)


def _deep_run(cfg: DeepSeaConfig, run_dir: RunDir) -> dict[str, Any]:
    _deep_validate(cfg)
    agent = cfg.agent.config(la.PPOConfig.minatar())
    ppo = la.PPO(agent)
    tasks = []
    for s in cfg.train_sizes:
        env, params = _deep_env(s)
        tasks.append(lm.ESTask(f"size{s}", lm.ppo_fitness(ppo, env), params))
    es: dict[str, Any] = {}
    for kind in cfg.learned:
        trainer = oc.es_trainer(cfg.es.resolve(kind, "deep_sea", "minatar"), tasks)
        es[kind] = oc.es_stage(run_dir, f"es-{kind}", trainer, oc.make_learned(kind), seed=cfg.seed)
    seeds = cfg.evaluation.seeds()
    evaluation: dict[str, Any] = {}
    for s in cfg.eval_sizes:
        evaluation[str(s)] = {}
        for kind in cfg.learned:
            opt = oc.load_trained(run_dir, f"es-{kind}", oc.make_learned(kind))
            evaluation[str(s)][kind] = run_dir.stage(
                f"eval-size{s}-{kind}",
                lambda opt=opt, s=s: oc.train_seeds(opt, *_deep_env(s), agent, seeds),
            )
    noise: dict[str, Any] = {}
    for kind in cfg.learned:
        if kind.endswith("no_stochasticity"):
            continue
        opt = oc.load_trained(run_dir, f"es-{kind}", oc.make_learned(kind))
        for s in cfg.noise_sizes:
            noise.setdefault(kind, {})[str(s)] = run_dir.stage(
                f"noise-size{s}-{kind}", lambda opt=opt, s=s: _noise_curve(opt, s, agent, seeds)
            )
    return {
        "es": es,
        "evaluation": evaluation,
        "noise": noise,
        "train_sizes": list(cfg.train_sizes),
        "agent": agent,
    }


def _noise_curve(opt: Any, size: int, agent: Any, seeds: list[int]) -> dict[str, Any]:
    """The learned noise's weight `|delta_actor| / |params_actor|` per update on every
    seed (OPEN Appendix F.5), with the runs' final returns."""
    from ...analysis import behaviour_curves

    r = behaviour_curves(opt, *_deep_env(size), agent, list(seeds), max_points=100)
    return {k: r[k] for k in ("noise_param_ratio", "steps", "final_returns")}


def _deep_report(run_dir: RunDir) -> str:
    from ... import stats

    res = run_dir.load_results()
    learned = list(res["es"])
    train = set(res["train_sizes"])
    out = oc.header(run_dir, "OPEN in Deep Sea: learned stochasticity", "OPEN Figure 6 (and 17)")
    out += [
        "## Meta-training (ES, every member on every training size)",
        "",
        oc.es_table(res["es"]),
    ]
    out += ["## IQM final return per size (95% stratified bootstrap CIs)", ""]
    cols = " | ".join(learned)
    out += [
        f"| size | {cols} | stochastic - deterministic (IQM) |",
        "|---|" + ":-:|" * (len(learned) + 1),
    ]
    for s, per in res["evaluation"].items():
        cells, points = [], {}
        for k in learned:
            x = oc.finite_scores(per[k]["final_returns"])
            if np.all(np.isfinite(x)) and len(x) >= 2:
                iv = stats.aggregate({k: x}, metrics=("iqm",))[k]["iqm"]
                points[k] = iv.point
                cells.append(f"{iv.point:.3f} [{iv.low:.3f}, {iv.high:.3f}]")
            else:
                cells.append("diverged")
        diff = "–"
        for sto, det in (("separated", "separated_no_stochasticity"), ("open", "no_stochasticity")):
            if sto in points and det in points:
                diff = f"{points[sto] - points[det]:+.3f}"
                break
        oos = "" if int(s) in train else " (OOS)"
        out.append(f"| {s}{oos} | " + " | ".join(cells) + f" | {diff} |")
    out += [
        "",
        "Paper (Figure 6, Figure 17): the separated optimizer with learned stochasticity "
        "improves on the one without at every size, and the gap grows with size; only it "
        "generalises to large, out-of-support sizes (returns lie in [-0.01, 0.99]).",
        "",
        "## Return curves",
        "",
    ]
    for s, per in res["evaluation"].items():
        img = oc.curves_plot(per, run_dir.plots_dir / f"curves-size{s}.png", f"Deep Sea {s}")
        if img:
            out += [img, ""]
    out += _noise_section(run_dir, res.get("noise") or {})
    return "\n".join(out)


def _noise_section(run_dir: RunDir, noise: dict[str, Any]) -> list[str]:
    """OPEN Figure 14: the learned noise's weight over training, one curve per size."""
    from ... import plots

    if not noise:
        return []
    out = [
        "## The learned noise against size (OPEN Appendix F.5, Figure 14)",
        "",
        "`|delta_actor| / |params_actor|` per update (global norms; the paper averages "
        "`|delta_i / p_i|`), mean over seeds. Paper: the weight falls over training and "
        "is larger in larger environments.",
        "",
        "| optimizer | size | first update | last update | mean over training |",
        "|---|---|---|---|---|",
    ]
    for kind, per in noise.items():
        curves = {}
        for s, r in per.items():
            x = np.asarray(r["noise_param_ratio"], np.float64)
            mean = np.mean(x, axis=0)
            out.append(f"| {kind} | {s} | {mean[0]:.3g} | {mean[-1]:.3g} | {np.mean(mean):.3g} |")
            curves[f"size {s}"] = (np.asarray(r["steps"], np.float64), x)
        path = run_dir.plots_dir / f"noise-{kind}.png"
        try:
            plots.return_curves(
                curves, path, title=f"learned noise, {kind}", ylabel="|delta| / |params|"
            )
            out += ["", f"![noise, {kind}](plots/{path.name})"]
        except Exception as e:  # a plot must not cost the report
            out += ["", f"(noise plot failed: {type(e).__name__}: {e})"]
    return [*out, ""]


DEEP_SEA = register(
    Experiment(
        name="open/deep-sea",
        summary="separated actor/critic OPEN with vs without learned stochasticity by ES in "
        "Deep Sea (sizes 4..26, larger out of support)",
        reproduces="OPEN Figure 6 (Appendix I.2, Figure 17)",
        scales={"cpu": _deep_cpu, "paper": DeepSeaConfig},
        run=_deep_run,
        report=_deep_report,
        validate=_deep_validate,
    )
)
