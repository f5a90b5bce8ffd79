"""`quickstart` (the README's first command) and `evaluate` (what `lorl evaluate` runs), as
registered experiments so `lorl resume` and `lorl report` work on their run folders."""

import dataclasses
import time
from collections.abc import Mapping
from typing import Any

from .._paper import OPEN_ADAM_RETURNS
from ..runs import ConfigError, RunDir
from ._registry import Experiment, register
from ._stages import evaluate_stage, stage_name
from .optim4rl._common import (
    INIT_LABEL,
    check_units,
    init_file,
    meta_summary,
    optimizer_file,
    results_from,
)
from .optim4rl._settings import PAPER_OPTIM4RL, EvalConfig, MetaConfig, make_evals, meta_train

# ------------------------------------------------------------------------- quickstart


@dataclasses.dataclass(frozen=True)
class QuickstartConfig:
    """The quickstart: Optim4RL meta-trained on small_dense_short, evaluated against Adam
    and RMSProp on fresh seeds; a published OPEN optimizer against tuned Adam on a short
    MinAtar run.

    **Fields:**

    - `env`: the gridworld of the Optim4RL part.
    - `meta`, `eval`: meta-training and the A2C evaluation (cpu-sized defaults).
    - `open_name`: the published OPEN optimizer (`lorl_optim.pretrained_open_names()`).
    - `open_env`: the MinAtar game (PPO with OPEN's MinAtar settings).
    - `open_seeds`, `open_timesteps`, `open_n_envs`: the PPO runs (OPEN: 16 seeds, 1e7
      steps, 64 environments).
    """

    env: str = "small_dense_short"
    # 64 units x 1 env, reset interval 64, 120 meta-iterations (Optim4RL: 512 units, m 256).
    meta: MetaConfig = dataclasses.field(
        default_factory=lambda: MetaConfig(
            steps=120, units=64, reset_interval=64, checkpoint_every=20
        )
    )
    # 8 seeds x 64 envs x 250 A2C updates (320k steps; Optim4RL: 10 x 512 x 2,929).
    eval: EvalConfig = dataclasses.field(
        default_factory=lambda: EvalConfig(seeds=8, n_envs=64, updates=250)
    )
    open_name: str = "breakout"
    open_env: str = "breakout"
    open_seeds: int = 4
    open_timesteps: int = 64 * 128 * 20  # 20 PPO updates (OPEN: 1e7 steps, 1,220 updates)
    open_n_envs: int = 64  # OPEN Table 3, MinAtar

    def __post_init__(self):
        if self.open_seeds < 1:
            raise ValueError("open_seeds must be >= 1")


#: The quickstart's label of Optim4RL's untrained initialisation (the control).
QUICKSTART_INIT = f"Optim4RL ({INIT_LABEL})"


def _timed(phases: dict[str, float], name: str, fn: Any) -> Any:
    start = time.perf_counter()
    out = fn()
    phases[name] = phases.get(name, 0.0) + time.perf_counter() - start
    return out


def _run_quickstart(config: QuickstartConfig, run_dir: RunDir) -> dict[str, Any]:
    from tqdm.auto import tqdm

    phases: dict[str, float] = {}
    evals = make_evals(run_dir, config.eval)
    out: dict[str, Any] = {"env": config.env, "open_env": config.open_env}
    bar = tqdm(total=5 + len(config.eval.baselines), desc="quickstart", unit="phase")
    out["meta"] = {
        "optim4rl": _timed(
            phases,
            "meta-training",
            lambda: meta_train(
                run_dir, "meta-optim4rl", kind="optim4rl", envs=[config.env], meta=config.meta
            ),
        )
    }
    bar.update(1)
    grid: dict[str, Any] = {}
    meta = out["meta"]["optim4rl"]
    # the untrained initialisation is the control: meta-training helped only if the
    # meta-trained optimizer beats it
    learned = {"optim4rl": optimizer_file(run_dir, meta)}
    init = init_file(run_dir, meta)
    if init is not None:
        learned["optim4rl-init"] = init
    labels = {"optim4rl": "Optim4RL (meta-trained here)", "optim4rl-init": QUICKSTART_INIT}
    for name in (*learned, *config.eval.baselines):
        opt = learned.get(name, name)

        def one(opt: Any = opt, name: str = name) -> Any:
            return evals(stage_name("eval", name), opt, config.env, labels.get(name))

        label, r = _timed(phases, "A2C evaluation", one)
        grid[label] = r
        bar.update(1)
    out["gridworld"] = grid
    minatar: dict[str, Any] = {}
    open_seeds = list(range(2000, 2000 + config.open_seeds))
    for opt in (f"open:{config.open_name}", "adam"):

        def one_ppo(opt: str = opt) -> Any:
            return evaluate_stage(
                run_dir,
                stage_name("ppo", opt),
                opt,
                config.open_env,
                seeds=open_seeds,
                timesteps=config.open_timesteps,
                agent_overrides={"n_envs": config.open_n_envs},
            )

        r = _timed(phases, "PPO evaluation (OPEN vs Adam)", one_ppo)
        minatar[r.optimizer] = r.to_dict()
        bar.update(1)
    out["minatar"] = minatar
    bar.close()
    out["phase_seconds"] = phases
    return out


def _report_quickstart(run_dir: RunDir) -> str:
    from .._report import evaluation_section, header

    res = run_dir.load_results()
    t0 = time.perf_counter()
    md = header(
        run_dir,
        "lorl quickstart",
        "Optim4RL Fig. 4 / Table 1 (small_dense_short) and OPEN's published optimizer vs "
        "tuned Adam (OPEN Fig. 2) at minute scale",
    )
    md += meta_summary(res["meta"])
    md += evaluation_section(
        run_dir,
        f"Optim4RL vs Adam and RMSProp on {res['env']}",
        results_from(res["gridworld"]),
        plot_name="gridworld",
        paper={
            k: (
                "the control (no meta-training); not in the paper"
                if k == QUICKSTART_INIT
                else PAPER_OPTIM4RL.get(res["env"], "–") + " (3e7 steps)"
                if "Optim4RL" in k
                else "≈ Optim4RL (Fig. 4)"
            )
            for k in res["gridworld"]
        },
        paper_source="Optim4RL Table 1 / Fig. 4",
    )
    if QUICKSTART_INIT in res["gridworld"]:
        md += (
            f"`{QUICKSTART_INIT}` is the optimizer meta-training started from: meta-training "
            "helped only where the meta-trained optimizer's interval lies above it.\n\n"
        )
    md += open_budget_note(res["minatar"])
    md += evaluation_section(
        run_dir,
        f"Published OPEN vs tuned Adam on {res['open_env']}",
        results_from(res["minatar"]),
        plot_name="minatar",
        paper={
            k: (
                "above Adam (Fig. 2, 1e7 steps)"
                if k.startswith("OPEN")
                else f"{OPEN_ADAM_RETURNS['breakout']} at 1e7 steps (OPEN's Adam return, App. C)"
            )
            for k in res["minatar"]
        },
        paper_source="OPEN, 16 seeds",
    )
    phases = dict(res.get("phase_seconds", {}))
    phases["report"] = time.perf_counter() - t0
    total = sum(phases.values())
    md += "## Time per phase\n\n| phase | seconds | share |\n|---|---:|---:|\n"
    for k, v in phases.items():
        md += f"| {k} | {v:.0f} | {100 * v / max(total, 1e-9):.0f}% |\n"
    md += f"| total | {total:.0f} | |\n\nCompilation is included in each phase.\n"
    return md


def open_budget_note(minatar: Mapping[str, Any]) -> str:
    """What the quickstart's OPEN comparison can and cannot show, from its budget."""
    timesteps = int(next(iter(minatar.values()))["timesteps"])
    paper = 10_000_000  # OPEN Table 3: MinAtar runs of 1e7 steps
    return (
        f"The published OPEN optimizers were meta-trained on runs of {paper:,} steps "
        f"(OPEN Table 3); this comparison runs {timesteps:,} steps "
        f"({100 * timesteps / paper:.1f}% of that). OPEN conditions on the training "
        "proportion, so it runs through its whole learned schedule, but a run this short "
        "lies far outside what it was meta-trained on: a loss or a win here says nothing "
        "about the paper's claim. The comparison at the paper's budget, 8 seeds per game, "
        "is in `docs/lorl/published-open.md` of the repository.\n\n"
    )


def _validate_quickstart(config: QuickstartConfig) -> None:
    import lorl_optim as lo

    from ..evaluation import agent_config_for, env_spec

    check_units(config.meta.units, config.meta.reset_interval, config.meta.pipeline)
    if config.open_name not in lo.pretrained_open_names():
        raise ConfigError(
            f"open_name: no published OPEN optimizer {config.open_name!r}; "
            f"available: {', '.join(lo.pretrained_open_names())}"
        )
    env_spec(config.env)
    agent_config_for(
        config.open_env, timesteps=config.open_timesteps, overrides={"n_envs": config.open_n_envs}
    )


register(
    Experiment(
        name="quickstart",
        summary="Optim4RL meta-trained and evaluated vs Adam/RMSProp; OPEN vs Adam on MinAtar",
        reproduces="Optim4RL Fig. 4 and OPEN Fig. 2, at minute scale (what `lorl quickstart` runs)",
        scales={"cpu": QuickstartConfig},
        run=_run_quickstart,
        report=_report_quickstart,
        validate=_validate_quickstart,
    )
)


# --------------------------------------------------------------------------- evaluate


@dataclasses.dataclass(frozen=True)
class EvaluateConfig:
    """`lorl evaluate`: one optimizer (and baselines) on chosen environments and seeds.

    **Fields:**

    - `optimizer`: a `lorl.evaluation` name (`"open:breakout"`, `"adam"`, ...) or the path
      of a saved learned optimizer / a run folder holding one.
    - `envs`: environments (`lorl.evaluation` names).
    - `seeds`, `first_seed`: runs per optimizer and environment.
    - `timesteps`: steps per run (`0`: the paper's budget for the environment).
    - `n_envs`: parallel environments per run (`0`: the paper's).
    - `baselines`: optimizers evaluated beside it (default: the tuned Adam).
    - `store`: a result-store folder (`lorl.evaluation.ResultStore`): runs it holds are
      reused, the others computed and added (`None`: no store).
    """

    optimizer: str = "open:breakout"
    envs: tuple[str, ...] = ("breakout",)
    seeds: int = 16  # OPEN: 16 seeds on MinAtar and Ant
    first_seed: int = 0
    timesteps: int = 0
    n_envs: int = 0
    baselines: tuple[str, ...] = ("adam",)
    store: str | None = None

    def __post_init__(self):
        if self.seeds < 1:
            raise ValueError("seeds must be >= 1")
        if not self.envs:
            raise ValueError("envs: name at least one environment")


def _run_evaluate(config: EvaluateConfig, run_dir: RunDir) -> dict[str, Any]:
    from tqdm.auto import tqdm

    seeds = list(range(config.first_seed, config.first_seed + config.seeds))
    out: dict[str, Any] = {"evaluation": {}}
    jobs = [(env, o) for env in config.envs for o in (config.optimizer, *config.baselines)]
    for i, (env, opt) in enumerate(tqdm(jobs, desc="evaluate", unit="run")):
        r = evaluate_stage(
            run_dir,
            f"eval-{i}",
            opt,
            env,
            seeds=seeds,
            timesteps=config.timesteps or None,
            agent_overrides={"n_envs": config.n_envs} if config.n_envs else None,
            store=config.store,
        )
        out["evaluation"].setdefault(r.env, {})[r.optimizer] = r.to_dict()
    return out


def _report_evaluate(run_dir: RunDir) -> str:
    from .._report import evaluation_section, header

    res = run_dir.load_results()
    md = header(
        run_dir,
        "lorl evaluate",
        "an evaluation of an optimizer against baselines",
        budget=budget_banner(res["evaluation"]),
    )
    for env, results in res["evaluation"].items():
        md += evaluation_section(run_dir, env, results_from(results), plot_name=env)
    return md


def budget_banner(evaluation: Mapping[str, Mapping[str, Any]]) -> str:
    """What budget an evaluation ran, per environment, beside the paper's budget there.

    **Arguments:**

    - `evaluation`: environment -> optimizer label -> stored evaluation (with
      `timesteps`).

    **Returns:**

    One Markdown paragraph: "*paper budget*" when every run had its paper's budget,
    else "*below the paper's budget*" / "*above the paper's budget*" with the figures.
    """
    from ..evaluation import agent_config_for

    parts, below, above = [], [], []
    for env, per_opt in evaluation.items():
        ran = {int(r["timesteps"]) for r in per_opt.values()}
        paper = int(agent_config_for(env)[1].steps_per_run)
        for t in sorted(ran):
            parts.append(f"`{env}` {t:,} steps per run (paper: {paper:,})")
            (below if t < paper else above if t > paper else []).append(env)
    if below:
        tag = (
            "*below the paper's budget* on "
            + ", ".join(sorted(set(below)))
            + ": the numbers show what this budget gives, not the paper's results"
        )
    elif above:
        tag = "*above the paper's budget* on " + ", ".join(sorted(set(above)))
    else:
        tag = "*paper budget* on every environment"
    return f"Budget: {'; '.join(parts)}. {tag}."


def _validate_evaluate(config: EvaluateConfig) -> None:
    from ..evaluation import agent_config_for, resolve_optimizer

    for env in config.envs:
        spec, agent = agent_config_for(
            env,
            timesteps=config.timesteps or None,
            overrides={"n_envs": config.n_envs} if config.n_envs else None,
        )
        for opt in (config.optimizer, *config.baselines):
            resolve_optimizer(opt, spec, agent)


register(
    Experiment(
        name="evaluate",
        summary="An optimizer (published, tuned or saved) vs baselines on chosen environments",
        reproduces="the papers' evaluation protocol (what `lorl evaluate` runs)",
        scales={"cpu": EvaluateConfig, "paper": EvaluateConfig},
        run=_run_evaluate,
        report=_report_evaluate,
        validate=_validate_evaluate,
    )
)
