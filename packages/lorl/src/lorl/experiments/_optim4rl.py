"""The Optim4RL paper's experiments (Lan et al., "Learning to Optimize for Reinforcement
Learning"): meta-training from scratch by meta-gradients with pipeline training, its
ablations, generalisation from gridworlds to Brax, and hyperparameter robustness.

Every experiment meta-trains through `lorl_meta.MetaGradientTrainer` (orbax checkpoints in
`run_dir.checkpoint_dir(stage)`, so `lorl resume` continues a killed run mid-training),
saves the learned optimizer in `optimizers/<stage>.eqx` (`lorl evaluate` accepts the run
folder), evaluates with `lorl.evaluation.evaluate` on fresh seeds, and reports the paper's
numbers beside ours.
"""

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from ..runs import ConfigError, RunDir
from ._optim4rl_shared import (
    INIT_LABEL,
    Evals,
    check_brax_envs,
    check_units,
    device_mesh,
    init_file,
    meta_stage,
    optimizer_file,
    pipeline_sections,
    report,
    run_learned_vs_baselines,
    run_pipeline_ablation,
    seed_list,
    stage_name,
    trainer_settings,
)
from ._registry import Experiment, register

LPG = Literal[
    "small_dense_short",
    "small_dense_long",
    "big_sparse_short",
    "big_sparse_long",
    "big_dense_short",
    "big_dense_long",
]
SIX_GRIDWORLDS: tuple[str, ...] = (
    "small_dense_long",
    "big_sparse_short",
    "big_sparse_long",
    "big_dense_short",
    "small_dense_short",
    "big_dense_long",
)  # Optim4RL Section 6 / Appendix B
LearnedKind = Literal["optim4rl", "linear_optim", "l2lgd2"]
A2C_ROLLOUT = 20  # Optim4RL Appendix C: "One rollout has 20 steps"
PAPER_A2C_STEPS = 30_000_000  # Optim4RL Appendix C.2: 3e7 steps
PAPER_ENVS = 512  # Optim4RL Appendix C.3: n = 512 environments / training units
PAPER_SEEDS = 10  # Optim4RL: "averaged over 10 runs"


# ----------------------------------------------------------------------------- configs


@dataclasses.dataclass(frozen=True)
class MetaConfig:
    """Meta-gradient training (Optim4RL Sections 2.2, 5.1; Appendix C.3-C.4).

    **Fields:**

    - `steps`: meta-iterations. The paper does not print its number; `paper` scale uses
      2,000 (our choice).
    - `units`: training units per task, `n` (paper: 512, one environment each).
    - `envs_per_unit`: A2C environments per unit (paper: 1).
    - `reset_interval`: pipeline reset interval `m` (paper: 256 or 512).
    - `pipeline`: pipeline training on (False: the Table 1 ablation).
    - `inner_updates`: `M`, inner A2C updates per meta-iteration (paper: 4).
    - `lr`: the meta-optimizer's (Adam) learning rate (paper grid {3e-5, 1e-4, 3e-4, 1e-3}).
    - `outer_loss`: `"actor"` (the paper) or `"full"` (the later reference code).
    - `checkpoint_every`: meta-iterations between orbax checkpoints.
    - `seed`: the meta-training seed.
    - `optimizer_path`: skip meta-training and use this saved learned optimizer (a file
      written by `lorl.evaluation.save_optimizer` or a run folder holding one), e.g. the
      one `lorl quickstart` trained.
    """

    steps: int
    units: int
    envs_per_unit: int = 1  # Optim4RL Appendix C.3: one environment per unit
    reset_interval: int = 256  # Optim4RL Appendix C.3: m in {256, 512}
    pipeline: bool = True  # Optim4RL Section 5.1
    inner_updates: int = 4  # Optim4RL Appendix C: M = 4
    lr: float = 1e-3  # Optim4RL Appendix C.3: grid {3e-5, 1e-4, 3e-4, 1e-3}
    outer_loss: Literal["actor", "full"] = "actor"  # Optim4RL Appendix C
    checkpoint_every: int = 50
    seed: int = 0
    optimizer_path: str | None = None

    def __post_init__(self):
        for name in ("steps", "units", "envs_per_unit", "reset_interval", "inner_updates"):
            if getattr(self, name) < 1:
                raise ValueError(f"meta.{name} must be >= 1")
        if not self.lr > 0:
            raise ValueError("meta.lr must be > 0")
        if self.checkpoint_every < 1:
            raise ValueError("meta.checkpoint_every must be >= 1")


@dataclasses.dataclass(frozen=True)
class EvalConfig:
    """Evaluation of learned and hand-designed optimizers with fresh A2C agents.

    **Fields:**

    - `seeds`: runs per optimizer (paper: 10).
    - `first_seed`: seeds are `first_seed, first_seed + 1, ...` (fresh: meta-training uses
      other keys).
    - `n_envs`: A2C environments per run (paper: 512).
    - `updates`: A2C updates per run; steps = `n_envs * 20 * updates` (paper: 3e7 steps,
      2,929 updates).
    - `baselines`: hand-designed optimizers beside the learned one (`lorl.evaluation`
      names; paper: Adam and RMSProp with the best lr of its grid).
    """

    seeds: int
    n_envs: int
    updates: int
    first_seed: int = 1000
    baselines: tuple[str, ...] = ("adam", "rmsprop")

    def __post_init__(self):
        for name in ("seeds", "n_envs", "updates"):
            if getattr(self, name) < 1:
                raise ValueError(f"eval.{name} must be >= 1")

    @property
    def timesteps(self) -> int:
        return self.n_envs * A2C_ROLLOUT * self.updates


def _paper_meta() -> MetaConfig:
    return MetaConfig(steps=2000, units=PAPER_ENVS, reset_interval=256)


def _paper_eval() -> EvalConfig:
    return EvalConfig(seeds=PAPER_SEEDS, n_envs=PAPER_ENVS, updates=2929)


# ------------------------------------------------------------------- shared machinery


def _learned_kwargs(env: str) -> dict[str, Any]:
    import lorl_optim as lo

    lr = lo.baselines.OPTIM4RL_A2C_AGENT_LR.get(env, 1e-2)  # Optim4RL Appendix C.3
    return {"learning_rate": lr}


def _new_learned(kind: str, kwargs: Mapping[str, Any], seed: int) -> Any:
    import jax

    import lorl_optim as lo

    return lo.build(kind, dict(kwargs), key=jax.random.key(seed))


def meta_train(
    run_dir: RunDir,
    stage: str,
    *,
    kind: str,
    envs: Sequence[str],
    meta: MetaConfig,
) -> dict[str, Any]:
    """Meta-train a learned optimizer (one stage of a run; resumable).

    **Arguments:**

    - `run_dir`: the run folder; checkpoints go to `run_dir.checkpoint_dir(stage)`,
      metrics to `run_dir.metrics_dir(stage)`, the optimizer to `optimizers/<stage>.eqx`.
    - `stage`: the stage name.
    - `kind`: `"optim4rl"`, `"linear_optim"` or `"l2lgd2"`.
    - `envs`: the Optim4RL gridworlds to meta-train on (several: multi-task, each with the
      reference code's reward scale and its own agent learning rate).
    - `meta`: the `MetaConfig`.

    **Returns:**

    The stage's stored result: `optimizer_path` (relative to the run folder), `seconds`,
    and the meta-training history (meta-loss and training returns every few iterations).
    """

    def build() -> tuple[Any, Any, int, Mapping[str, Any]]:
        import lorl_agents as la
        import lorl_gridworlds as lg
        import lorl_meta as lm

        tasks = []
        for env in envs:
            reward_scale = lg.LPG_SPECS[env].multitask_reward_scale if len(envs) > 1 else 1.0
            env_obj, params = lg.make(env)
            ctor = (
                la.A2CConfig.big_gridworld
                if env.startswith("big")
                else la.A2CConfig.small_gridworld
            )
            # The unit's A2C run length only sets the training proportion given to the
            # optimizer: one reset interval of M inner updates.
            unit = ctor(
                n_envs=meta.envs_per_unit,
                total_timesteps=meta.envs_per_unit
                * A2C_ROLLOUT
                * meta.reset_interval
                * meta.inner_updates,
            )
            tasks.append(
                lm.MetaTask(
                    env,
                    env_obj,
                    params,
                    la.A2C(unit),
                    n_units=meta.units,
                    reward_scale=reward_scale,
                    agent_lr=_learned_kwargs(env)["learning_rate"] if len(envs) > 1 else None,
                )
            )
        config = lm.MetaGradientConfig(**trainer_settings(meta))
        kwargs = _learned_kwargs(envs[0])
        # units sharded over devices
        trainer = lm.MetaGradientTrainer(config, tasks, mesh=device_mesh())
        return trainer, _new_learned(kind, kwargs, meta.seed), meta.seed, kwargs

    return meta_stage(run_dir, stage, meta.optimizer_path, build)


def _evals(run_dir: RunDir, ev: EvalConfig) -> Evals:
    """The A2C evaluation protocol of `ev` (fresh seeds, `ev.n_envs` environments)."""
    return Evals(run_dir, seed_list(ev.seeds, ev.first_seed), ev.timesteps, {"n_envs": ev.n_envs})


def _validate_lpg(envs: Sequence[str]) -> None:
    import lorl_gridworlds as lg

    for env in envs:
        if env not in lg.LPG_NAMES:
            raise ConfigError(
                f"{env!r} is not an Optim4RL gridworld; choose from {', '.join(lg.LPG_NAMES)}"
            )


# ------------------------------------------------------ Fig. 4: learning from scratch

#: Optim4RL's final returns (10 runs, mean ± s.e.), Table 1 "With Pipeline Training";
#: Fig. 4 plots Adam and RMSProp "on par" without printing numbers.
PAPER_OPTIM4RL = {"small_dense_short": "11.31 ± 0.07", "big_dense_long": "23.14 ± 0.33"}
PAPER_NO_PIPELINE = {"small_dense_short": "11.15 ± 0.10", "big_dense_long": "23.04 ± 0.41"}


@dataclasses.dataclass(frozen=True)
class FromScratchConfig:
    """Optim4RL (or an ablation) meta-trained on one gridworld, evaluated there against
    Adam and RMSProp (Optim4RL Fig. 4).

    **Fields:**

    - `env`: the gridworld (`small_dense_short` or `big_dense_long` in the paper).
    - `learned`: the learned optimizers to meta-train (Fig. 4 also shows the LinearOptim
      and L2LGD2 ablations).
    - `meta`, `eval`: `MetaConfig`, `EvalConfig`.
    """

    env: LPG
    meta: MetaConfig
    eval: EvalConfig
    learned: tuple[LearnedKind, ...] = ("optim4rl",)


_LABEL = {"optim4rl": "Optim4RL", "linear_optim": "LinearOptim", "l2lgd2": "L2LGD2"}


def _run_from_scratch(config: FromScratchConfig, run_dir: RunDir) -> dict[str, Any]:
    def train(stage: str, kind: str) -> dict[str, Any]:
        return meta_train(run_dir, stage, kind=kind, envs=[config.env], meta=config.meta)

    learned = {k: _LABEL[k] for k in config.learned}
    evals = _evals(run_dir, config.eval)
    return run_learned_vs_baselines(
        run_dir, config.env, learned, train, evals, config.eval.baselines
    )


def _report_from_scratch(run_dir: RunDir) -> str:
    res = run_dir.load_results()
    env = res["env"]
    paper = {"Optim4RL": PAPER_OPTIM4RL.get(env, "–")}
    paper |= {"LinearOptim": "fails (Fig. 4)", "L2LGD2": "fails (Fig. 4)"}
    paper |= {k: "on par with Optim4RL (Fig. 4, no number)" for k in res["evaluation"] if "(" in k}
    section = (f"Evaluation on {env}", res["evaluation"], env, paper)
    return report(run_dir, [section], paper_source="Optim4RL Table 1 / Fig. 4")


def _validate_from_scratch(config: FromScratchConfig) -> None:
    _validate_lpg([config.env])
    check_units(config.meta.units, config.meta.reset_interval, config.meta.pipeline)
    if not config.learned:
        raise ConfigError("learned: name at least one learned optimizer")


def _cpu_meta(**kw: Any) -> MetaConfig:
    # cpu scale: 64 units of 1 environment, reset interval 64, 150 meta-iterations
    # (about 3-4 minutes on 2 cores for small_dense_short).
    return dataclasses.replace(
        MetaConfig(steps=150, units=64, reset_interval=64, checkpoint_every=25), **kw
    )


def _cpu_eval(**kw: Any) -> EvalConfig:
    # cpu scale: 8 seeds x 64 environments x 300 updates (384k steps; paper 3e7).
    return dataclasses.replace(EvalConfig(seeds=8, n_envs=64, updates=300), **kw)


for _env in ("small_dense_short", "big_dense_long"):
    register(
        Experiment(
            name=f"optim4rl/from-scratch-{_env}",
            summary=f"Optim4RL meta-trained from scratch on {_env}, vs Adam and RMSProp",
            reproduces=f"Optim4RL Fig. 4 ({_env}) and Table 1 (with pipeline training)",
            scales={
                "cpu": (
                    lambda e=_env: FromScratchConfig(
                        env=e,
                        # big_dense_long: 16 units. Meta-gradients through Optim4RL on
                        # the CNN agent keep ~0.32 GB per unit (peak RSS measured 4.1 /
                        # 6.6 / 11.7 GB at 8 / 16 / 32 units): 64 units (~22 GB) were
                        # killed by the OOM killer on the 24 GB project machine.
                        meta=(
                            _cpu_meta(steps=150)
                            if e == "small_dense_short"
                            else _cpu_meta(steps=60, units=16, reset_interval=16)
                        ),
                        eval=_cpu_eval(updates=300 if e == "small_dense_short" else 100),
                    )
                ),
                "paper": lambda e=_env: FromScratchConfig(
                    env=e, meta=_paper_meta(), eval=_paper_eval()
                ),
            },
            run=_run_from_scratch,
            report=_report_from_scratch,
            validate=_validate_from_scratch,
        )
    )

register(
    Experiment(
        name="optim4rl/inductive-bias-ablation",
        summary="LinearOptim and L2LGD2 vs Optim4RL, each meta-trained from scratch",
        reproduces="Optim4RL Fig. 4 (LinearOptim, L2LGD2) and Section 6.1",
        scales={
            "cpu": lambda: FromScratchConfig(
                env="small_dense_short",
                meta=_cpu_meta(steps=100),
                eval=_cpu_eval(updates=200, baselines=("adam",)),
                learned=("optim4rl", "linear_optim", "l2lgd2"),
            ),
            "paper": lambda: FromScratchConfig(
                env="small_dense_short",
                meta=_paper_meta(),
                eval=_paper_eval(),
                learned=("optim4rl", "linear_optim", "l2lgd2"),
            ),
        },
        run=_run_from_scratch,
        report=_report_from_scratch,
        validate=_validate_from_scratch,
    )
)


# ------------------------------------------------------------ Table 1: pipeline ablation


@dataclasses.dataclass(frozen=True)
class PipelineAblationConfig:
    """Optim4RL meta-trained with and without pipeline training (Optim4RL Table 1).

    **Fields:**

    - `envs`: gridworlds (the paper: small_dense_short, big_dense_long; its Ant and
      Humanoid columns are `optim4rl/pipeline-ablation-brax`).
    - `meta`: meta-training (`meta.pipeline` is ignored: both variants run).
    - `eval`: evaluation; `eval.baselines` are evaluated too.
    """

    envs: tuple[LPG, ...]
    meta: MetaConfig
    eval: EvalConfig


def _run_pipeline(config: PipelineAblationConfig, run_dir: RunDir) -> dict[str, Any]:
    def train(stage: str, env: str, pipeline: bool) -> dict[str, Any]:
        meta = dataclasses.replace(config.meta, pipeline=pipeline)
        return meta_train(run_dir, stage, kind="optim4rl", envs=[env], meta=meta)

    evals = _evals(run_dir, config.eval)
    return run_pipeline_ablation(run_dir, config.envs, train, evals, config.eval.baselines)


def _report_pipeline(run_dir: RunDir) -> str:
    res = run_dir.load_results()
    sections = pipeline_sections(
        res["evaluation"], "Evaluation on", PAPER_OPTIM4RL, PAPER_NO_PIPELINE
    )
    notes = (
        "The paper's Ant and Humanoid columns (7088 ± 178 vs 5603 ± 631; 7658 ± 282 vs "
        "7053 ± 272) are the experiment optim4rl/pipeline-ablation-brax (PPO meta-gradients)."
    )
    return report(run_dir, sections, notes=notes, paper_source="Optim4RL Table 1")


def _validate_pipeline(config: PipelineAblationConfig) -> None:
    _validate_lpg(config.envs)
    check_units(config.meta.units, config.meta.reset_interval)  # both variants run
    if config.meta.optimizer_path is not None:
        raise ConfigError("meta.optimizer_path makes no sense here: both variants are trained")


register(
    Experiment(
        name="optim4rl/pipeline-ablation",
        summary="Optim4RL meta-trained with vs without pipeline training",
        reproduces="Optim4RL Table 1 (gridworld columns)",
        scales={
            "cpu": lambda: PipelineAblationConfig(
                envs=("small_dense_short",),
                meta=_cpu_meta(steps=100),
                eval=_cpu_eval(updates=200, baselines=()),
            ),
            "paper": lambda: PipelineAblationConfig(
                envs=("small_dense_short", "big_dense_long"),
                meta=_paper_meta(),
                eval=_paper_eval(),
            ),
        },
        run=_run_pipeline,
        report=_report_pipeline,
        validate=_validate_pipeline,
    )
)


# ------------------------------------------- Figs. 5-7: gridworlds -> Brax generalisation


@dataclasses.dataclass(frozen=True)
class GeneralisationConfig:
    """Optim4RL meta-trained on gridworlds (A2C), then used to train PPO on Brax tasks
    (Optim4RL Figs. 5-7).

    **Fields:**

    - `train_envs`: the gridworlds meta-trained on: all six (Figs. 6-7, multi-task with the
      reference code's reward scales) or `big_dense_long` alone (Fig. 5).
    - `brax_envs`: the Brax tasks (paper: 8; ur5e and grasp are no longer in Brax).
    - `meta`: meta-training.
    - `seeds`, `first_seed`: PPO runs per optimizer.
    - `timesteps`: PPO steps per run (OPEN Table 3's Ant column otherwise: 2048 envs x 10).
    - `n_envs`, `n_minibatches`: PPO batch (paper: 2048 and 32).
    - `agent_lr`: Optim4RL's agent learning rate in PPO (OPEN's choice for Optim4RL in
      Ant, 0.1 x Adam's, OPEN Appendix C.2; the Optim4RL paper does not print it).
    - `baselines`: hand-designed optimizers beside it (Adam with OPEN's Ant values).
    """

    train_envs: tuple[LPG, ...]
    brax_envs: tuple[str, ...]
    meta: MetaConfig
    seeds: int
    timesteps: int
    n_envs: int
    n_minibatches: int
    first_seed: int = 1000
    agent_lr: float = 3e-5  # OPEN Appendix C.2: Optim4RL lr in Ant = 0.1 x LR_Adam
    baselines: tuple[str, ...] = ("adam",)


def _run_generalisation(config: GeneralisationConfig, run_dir: RunDir) -> dict[str, Any]:
    from tqdm.auto import tqdm

    import lorl_meta as lm

    from ..evaluation import load_optimizer

    out: dict[str, Any] = {"train_envs": list(config.train_envs), "evaluation": {}}
    out["meta"] = {
        "optim4rl": meta_train(
            run_dir, "meta-optim4rl", kind="optim4rl", envs=config.train_envs, meta=config.meta
        )
    }

    def at_agent_lr(path: str) -> Any:
        opt = load_optimizer(path)
        return lm.LRScaled(opt, config.agent_lr / opt.learning_rate)  # pyright: ignore[reportAttributeAccessIssue]

    meta = out["meta"]["optim4rl"]
    # the meta-trained optimizer, and the untrained one it started from as the control
    learned = {"optim4rl": ("Optim4RL", at_agent_lr(optimizer_file(run_dir, meta)))}
    init = init_file(run_dir, meta)
    if init is not None:
        learned["optim4rl-init"] = (f"Optim4RL ({INIT_LABEL})", at_agent_lr(init))
    seeds = seed_list(config.seeds, config.first_seed)
    overrides = {"n_envs": config.n_envs, "n_minibatches": config.n_minibatches}
    evals = Evals(run_dir, seeds, config.timesteps, overrides)
    jobs = [(env, o) for env in config.brax_envs for o in (*learned, *config.baselines)]
    for env, opt in tqdm(jobs, desc=run_dir.experiment, unit="run"):
        name, optimizer = learned.get(opt, (None, opt))
        label, r = evals(stage_name("eval", env, opt), optimizer, env, name)
        out["evaluation"].setdefault(env, {})[label] = r
    return out


def _report_generalisation(run_dir: RunDir) -> str:
    res = run_dir.load_results()
    notes = (
        f"Meta-trained on {', '.join(res['train_envs'])}. The paper reports curves only "
        "(Figs. 5-7); Table 1 gives Optim4RL (meta-trained in Ant itself) 7088 ± 178 in Ant "
        "and 7658 ± 282 in Humanoid for scale."
    )
    sections = [
        (f"PPO on {env}", results, f"brax_{env}", None)
        for env, results in res["evaluation"].items()
    ]
    return report(run_dir, sections, notes=notes)


def _validate_generalisation(config: GeneralisationConfig) -> None:
    from ..evaluation import require_brax

    _validate_lpg(config.train_envs)
    check_units(config.meta.units, config.meta.reset_interval, config.meta.pipeline)
    check_brax_envs(config.brax_envs)
    require_brax("optim4rl/generalisation-brax")
    if (config.n_envs * 10) % config.n_minibatches:
        raise ConfigError("n_envs * 10 (PPO rollout) must divide into n_minibatches")


register(
    Experiment(
        name="optim4rl/generalisation-brax",
        summary="Optim4RL meta-trained on gridworlds (A2C), used to train PPO on Brax tasks",
        reproduces="Optim4RL Figs. 5-7 (needs lorl[brax])",
        scales={
            "cpu": lambda: GeneralisationConfig(
                train_envs=("small_dense_short", "small_dense_long"),
                brax_envs=("ant",),
                meta=_cpu_meta(steps=60, units=32, reset_interval=32),
                seeds=2,
                timesteps=64 * 10 * 30,
                n_envs=64,
                n_minibatches=4,
            ),
            "paper": lambda: GeneralisationConfig(
                train_envs=SIX_GRIDWORLDS,  # pyright: ignore[reportArgumentType]
                brax_envs=(
                    "ant",
                    "humanoid",
                    "halfcheetah",
                    "hopper",
                    "walker2d",
                    "inverted_double_pendulum",
                    "reacher",
                    "pusher",
                ),
                meta=_paper_meta(),
                seeds=PAPER_SEEDS,
                timesteps=50_000_000,  # OPEN Table 3, Ant: 5e7
                n_envs=2048,  # OPEN Table 3, Ant
                n_minibatches=32,  # OPEN Table 3, Ant
            ),
        },
        run=_run_generalisation,
        report=_report_generalisation,
        validate=_validate_generalisation,
    )
)


# ---------------------------------------------------- Tables 8-10: hyperparameter robustness

#: Optim4RL Tables 8-10: (task, hyperparameter, value) -> mean ± s.e. over 10 runs.
PAPER_ROBUSTNESS: dict[str, dict[str, dict[float, str]]] = {
    "small_dense_short": {
        "lam": {
            0.9: "11.51 ± 0.11",
            0.95: "11.25 ± 0.09",
            0.99: "10.81 ± 0.10",
            0.995: "10.66 ± 0.10",
        },
        "ent_coef": {
            0.005: "11.01 ± 0.09",
            0.01: "11.13 ± 0.05",
            0.02: "11.29 ± 0.07",
            0.04: "11.25 ± 0.09",
        },
        "gamma": {
            0.9: "12.47 ± 0.08",
            0.95: "12.32 ± 0.05",
            0.99: "11.48 ± 0.05",
            0.995: "11.01 ± 0.10",
        },
    },
    "big_dense_long": {
        "lam": {
            0.9: "23.35 ± 0.44",
            0.95: "23.57 ± 0.35",
            0.99: "21.31 ± 0.37",
            0.995: "20.55 ± 0.31",
        },
        "ent_coef": {
            0.005: "22.41 ± 0.34",
            0.01: "22.45 ± 0.46",
            0.02: "22.59 ± 0.25",
            0.04: "19.96 ± 0.75",
        },
        "gamma": {
            0.9: "18.13 ± 1.89",
            0.95: "25.01 ± 0.82",
            0.99: "25.45 ± 0.27",
            0.995: "22.07 ± 0.47",
        },
    },
}


@dataclasses.dataclass(frozen=True)
class RobustnessConfig:
    """Optim4RL meta-trained once, then evaluated with other A2C hyperparameters
    (Optim4RL Appendix D, Tables 8-10).

    **Fields:**

    - `env`: the gridworld.
    - `lam`, `ent_coef`, `gamma`: the values tried for GAE lambda (Table 8), the entropy
      weight (Table 9) and the discount (Table 10); the others stay at the paper's
      defaults (0.95, 0.01, 0.995).
    - `meta`, `eval`: meta-training and evaluation (`eval.baselines` are ignored).
    """

    env: LPG
    meta: MetaConfig
    eval: EvalConfig
    lam: tuple[float, ...] = (0.9, 0.95, 0.99, 0.995)  # Optim4RL Table 8
    ent_coef: tuple[float, ...] = (0.005, 0.01, 0.02, 0.04)  # Optim4RL Table 9
    gamma: tuple[float, ...] = (0.9, 0.95, 0.99, 0.995)  # Optim4RL Table 10


def _run_robustness(config: RobustnessConfig, run_dir: RunDir) -> dict[str, Any]:
    from tqdm.auto import tqdm

    out: dict[str, Any] = {"env": config.env, "evaluation": {}}
    out["meta"] = {
        "optim4rl": meta_train(
            run_dir, "meta-optim4rl", kind="optim4rl", envs=[config.env], meta=config.meta
        )
    }
    path = optimizer_file(run_dir, out["meta"]["optim4rl"])
    # the untrained initialisation under each setting is the control
    init = init_file(run_dir, out["meta"]["optim4rl"])
    evals = _evals(run_dir, config.eval)
    jobs = [(h, v) for h in ("lam", "ent_coef", "gamma") for v in getattr(config, h)]
    for h, v in tqdm(jobs, desc=run_dir.experiment, unit="setting"):
        _, r = evals(f"eval-{h}-{v:g}", path, config.env, f"{h}={v:g}", **{h: v})
        out["evaluation"].setdefault(h, {})[f"{v:g}"] = r
        if init is not None:
            label = f"{h}={v:g} ({INIT_LABEL})"
            _, r = evals(f"eval-{h}-{v:g}-init", init, config.env, label, **{h: v})
            out.setdefault("control", {}).setdefault(h, {})[f"{v:g}"] = r
    return out


def _report_robustness(run_dir: RunDir) -> str:
    from .._report import mean_se

    res = run_dir.load_results()
    env = res["env"]
    md = report(run_dir, [])
    names = {"lam": "lambda (Table 8)", "ent_coef": "entropy weight (Table 9)"}
    names["gamma"] = "discount (Table 10)"
    control = res.get("control", {})

    def cell(r: Mapping[str, Any] | None) -> str:
        if r is None:
            return "–"
        return mean_se([float("nan") if x == "nan" else x for x in r["final_returns"]])

    for h, values in res["evaluation"].items():
        md += (
            f"## {names[h]}\n\n| value | ours: mean ± s.e. | {INIT_LABEL} (control) | paper "
            "|\n|---|---|---|---|\n"
        )
        for v, r in values.items():
            paper = PAPER_ROBUSTNESS.get(env, {}).get(h, {}).get(float(v), "–")
            md += f"| {v} | {cell(r)} | {cell(control.get(h, {}).get(v))} | {paper} |\n"
        md += "\n"
    return md


def _validate_robustness(config: RobustnessConfig) -> None:
    _validate_lpg([config.env])
    check_units(config.meta.units, config.meta.reset_interval, config.meta.pipeline)
    for h in ("lam", "ent_coef", "gamma"):
        for v in getattr(config, h):
            if not 0 <= v <= 1:
                raise ConfigError(f"{h} values must lie in [0, 1], got {v}")


register(
    Experiment(
        name="optim4rl/robustness",
        summary="Optim4RL under other A2C lambda, entropy weight and discount values",
        reproduces="Optim4RL Appendix D, Tables 8-10",
        scales={
            "cpu": lambda: RobustnessConfig(
                env="small_dense_short",
                meta=_cpu_meta(steps=100),
                eval=_cpu_eval(seeds=4, updates=150),
                lam=(0.9, 0.99),
                ent_coef=(0.005, 0.04),
                gamma=(0.9, 0.99),
            ),
            "paper": lambda: RobustnessConfig(
                env="small_dense_short", meta=_paper_meta(), eval=_paper_eval()
            ),
        },
        run=_run_robustness,
        report=_report_robustness,
        validate=_validate_robustness,
    )
)


# Brax meta-training through PPO (Fig. 4 Ant, Table 1 Ant/Humanoid) registers on import.
from . import _optim4rl_brax  # noqa: E402, F401
