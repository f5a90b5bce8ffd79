"""The Optim4RL experiments' gridworld settings and machinery (Lan et al., "Learning to
Optimize for Reinforcement Learning"): meta-training and evaluation configurations
(Optim4RL Appendix C), the meta-training stage and the paper's reported numbers.

Every experiment meta-trains through `lorl_meta.MetaGradientTrainer` (orbax checkpoints in
`run_dir.checkpoint_dir(stage)`, so `lorl resume` continues a killed run mid-training),
saves the learned optimizer in `optimizers/<stage>.eqx` (`lorl evaluate` accepts the run
folder), evaluates with `lorl.evaluation.evaluate` on fresh seeds, and reports the paper's
numbers beside ours.
"""

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from ..._paper import OPTIM4RL_TABLE1_NO_PIPELINE, OPTIM4RL_TABLE1_PIPELINE
from ...runs import ConfigError, RunDir
from ._common import (
    Evals,
    device_mesh,
    meta_stage,
    seed_list,
    trainer_settings,
)

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
    - `unit_batch`: speed only, `lorl_meta.MetaGradientConfig.unit_batch` (units per
      rematerialised group; `0`: all units in one vmapped program). `None` (default):
      8 on a single CPU device (2.1x faster meta-iterations at the paper configuration,
      docs/meta/benchmarks.md), `0` otherwise.
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
    unit_batch: int | None = None  # speed only; None: 8 on one CPU device, else 0

    def __post_init__(self):
        if self.unit_batch is not None and self.unit_batch < 0:
            raise ValueError("meta.unit_batch must be >= 0 (or None for the default)")
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


def paper_meta() -> MetaConfig:
    return MetaConfig(steps=2000, units=PAPER_ENVS, reset_interval=256)


def paper_eval() -> EvalConfig:
    return EvalConfig(seeds=PAPER_SEEDS, n_envs=PAPER_ENVS, updates=2929)


# ------------------------------------------------------------------- shared machinery


def learned_kwargs(env: str) -> dict[str, Any]:
    import lorl_optim as lo

    lr = lo.baselines.OPTIM4RL_A2C_AGENT_LR.get(env, 1e-2)  # Optim4RL Appendix C.3
    return {"learning_rate": lr}


def new_learned(kind: str, kwargs: Mapping[str, Any], seed: int) -> Any:
    import jax

    import lorl_optim as lo

    return lo.build(kind, dict(kwargs), key=jax.random.key(seed))


def meta_trainer(
    *, kind: str, envs: Sequence[str], meta: MetaConfig
) -> tuple[Any, Any, int, Mapping[str, Any]]:
    """The meta-gradient trainer, initial optimizer, seed and optimizer arguments of a
    meta-training stage (what `meta_train` runs; the diagnostics rebuild a run's trainer
    with it to read its checkpoints).

    **Arguments:**

    - `kind`, `envs`, `meta`: as for `meta_train`.

    **Returns:**

    `(trainer, optimizer, seed, optimizer_kwargs)`.
    """
    import lorl_agents as la
    import lorl_gridworlds as lg
    import lorl_meta as lm

    tasks = []
    for env in envs:
        reward_scale = lg.LPG_SPECS[env].multitask_reward_scale if len(envs) > 1 else 1.0
        env_obj, params = lg.make(env)
        ctor = la.A2CConfig.big_gridworld if env.startswith("big") else la.A2CConfig.small_gridworld
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
                agent_lr=learned_kwargs(env)["learning_rate"] if len(envs) > 1 else None,
            )
        )
    config = lm.MetaGradientConfig(**trainer_settings(meta))
    kwargs = learned_kwargs(envs[0])
    # units sharded over devices
    trainer = lm.MetaGradientTrainer(config, tasks, mesh=device_mesh())
    return trainer, new_learned(kind, kwargs, meta.seed), meta.seed, kwargs


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

    return meta_stage(
        run_dir, stage, meta.optimizer_path, lambda: meta_trainer(kind=kind, envs=envs, meta=meta)
    )


def make_evals(run_dir: RunDir, ev: EvalConfig) -> Evals:
    """The A2C evaluation protocol of `ev` (fresh seeds, `ev.n_envs` environments)."""
    return Evals(run_dir, seed_list(ev.seeds, ev.first_seed), ev.timesteps, {"n_envs": ev.n_envs})


def validate_lpg(envs: Sequence[str]) -> None:
    import lorl_gridworlds as lg

    for env in envs:
        if env not in lg.LPG_NAMES:
            raise ConfigError(
                f"{env!r} is not an Optim4RL gridworld; choose from {', '.join(lg.LPG_NAMES)}"
            )


#: Optim4RL Table 1, with and without pipeline training (`lorl._paper`).
PAPER_OPTIM4RL = OPTIM4RL_TABLE1_PIPELINE
PAPER_NO_PIPELINE = OPTIM4RL_TABLE1_NO_PIPELINE


LABEL = {"optim4rl": "Optim4RL", "linear_optim": "LinearOptim", "l2lgd2": "L2LGD2"}


def cpu_meta(**kw: Any) -> MetaConfig:
    # cpu scale: 64 units of 1 environment, reset interval 64, 150 meta-iterations
    # (about 3-4 minutes on 2 cores for small_dense_short).
    return dataclasses.replace(
        MetaConfig(steps=150, units=64, reset_interval=64, checkpoint_every=25), **kw
    )


def cpu_eval(**kw: Any) -> EvalConfig:
    # cpu scale: 8 seeds x 64 environments x 300 updates (384k steps; paper 3e7).
    return dataclasses.replace(EvalConfig(seeds=8, n_envs=64, updates=300), **kw)
