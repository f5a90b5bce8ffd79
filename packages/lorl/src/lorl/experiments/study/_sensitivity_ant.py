"""`study/optim4rl-sensitivity-ant`: the Optim4RL sensitivity grid (`_sensitivity`) in a
Brax task, each cell meta-trained through PPO as `optim4rl/from-scratch-ant` does."""

from __future__ import annotations

import dataclasses
from typing import Any

from ...runs import ConfigError, RunDir
from .._registry import Experiment, register
from ..optim4rl._brax import (
    Activation,
    BraxEvalConfig,
    BraxMetaConfig,
    BraxTask,
    brax_cpu_eval,
    brax_cpu_meta,
    brax_paper_eval,
    brax_paper_meta,
    make_brax_evals,
    meta_train_brax,
    validate_brax_common,
)
from ..optim4rl._common import check_units
from ._sensitivity import (
    PAPER_META_LRS,
    SensitivityGrid,
    check_settings,
    run_grid,
    sensitivity_report,
)

#: Optim4RL Appendix C.3: m in {512, 1024} in Ant.
PAPER_ANT_RESET_INTERVALS = (512, 1024)


@dataclasses.dataclass(frozen=True)
class AntSensitivityConfig(SensitivityGrid):
    """The sensitivity grid in a Brax task (PPO), Optim4RL's Ant meta-training per cell.

    **Fields:**

    - `env`: the Brax task (`ant`).
    - `meta_lrs`, `reset_intervals`, `inner_updates`: the grid, as in `SensitivityConfig`.
    - `meta`, `eval`, `activation`: meta-training through PPO, its evaluation and the
      networks' activation (as in `optim4rl/from-scratch-ant`).
    - `deploy_lrs`: agent learning rates each optimizer is also deployed at (the training
      rate is `meta.agent_lr`, 3e-4).
    - `deploy_settings`: PPO hyperparameters (`"name=value"`: `gae_lambda`, `gamma`,
      `ent_coef`, ...) each optimizer is also deployed under.
    """

    env: BraxTask
    meta: BraxMetaConfig
    eval: BraxEvalConfig
    meta_lrs: tuple[float, ...] = PAPER_META_LRS
    reset_intervals: tuple[int, ...] = PAPER_ANT_RESET_INTERVALS
    inner_updates: tuple[int, ...] = (4,)  # Optim4RL Appendix C: M = 4
    deploy_lrs: tuple[float, ...] = (1e-4, 1e-3)  # ours: about 0.3x and 3x of 3e-4
    # ours: the Tables 8-10 neighbours of PPO's defaults (lambda 0.95, discount 0.99)
    deploy_settings: tuple[str, ...] = (
        "gae_lambda=0.9", "gae_lambda=0.99", "gamma=0.95", "gamma=0.995",
    )  # fmt: skip
    activation: Activation = "swish"  # Optim4RL reference code: Brax PPO default (swish)


def _validate_ant(cfg: AntSensitivityConfig) -> None:
    import lorl_agents as la

    if cfg.meta.optimizer_path is not None:
        raise ConfigError("meta.optimizer_path makes no sense here: every cell is meta-trained")
    check_settings(cfg.deploy_settings, la.PPOConfig.brax_ant)
    for m in cfg.reset_intervals:
        check_units(cfg.meta.units, m, cfg.meta.pipeline)
    # the rest, and last of all: Brax installed
    meta = dataclasses.replace(cfg.meta, reset_interval=max(cfg.reset_intervals))
    validate_brax_common((cfg.env,), meta, cfg.eval)


def _run_ant(cfg: AntSensitivityConfig, run_dir: RunDir) -> dict[str, Any]:
    _validate_ant(cfg)

    def train(stage: str, meta_lr: float, m: int, big_m: int) -> dict[str, Any]:
        meta = dataclasses.replace(cfg.meta, lr=meta_lr, reset_interval=m, inner_updates=big_m)
        return meta_train_brax(run_dir, stage, env=cfg.env, meta=meta, activation=cfg.activation)

    return run_grid(cfg, run_dir, train, make_brax_evals(run_dir, cfg.eval, cfg.activation))


def _ant_cpu() -> AntSensitivityConfig:
    # cpu scale (ours; far too small to learn Ant, it shows the grid runs): the
    # from-scratch-ant cpu scale per cell (2 units of 16 environments, 12 meta-iterations,
    # m = 2), two meta learning rates, one deployment of each kind.
    return AntSensitivityConfig(
        env="ant",
        meta=brax_cpu_meta(),
        eval=brax_cpu_eval(baselines=()),
        meta_lrs=(1e-4, 1e-3),
        reset_intervals=(2,),
        deploy_lrs=(1e-3,),
        deploy_settings=("gae_lambda=0.9",),
    )


def _ant_paper() -> AntSensitivityConfig:
    # Optim4RL App. C.3: 2048 environments, m in {512, 1024}. Pipeline training needs
    # n >= m, so every cell runs 1024 units of 2 environments (2048 in all); 4 minibatches
    # keep from-scratch-ant's minibatch of 5 transitions (512 units x 4 environments x 10
    # steps / 8). Evaluation: 10 seeds x 2048 environments x 5e7 steps.
    return AntSensitivityConfig(
        env="ant",
        meta=brax_paper_meta(units=1024, envs_per_unit=2, n_minibatches=4),
        eval=brax_paper_eval(baselines=()),
    )


SENSITIVITY_ANT = register(
    Experiment(
        name="study/optim4rl-sensitivity-ant",
        summary="the Optim4RL sensitivity grid in Ant: meta-trained through PPO per cell, "
        "against its untrained initialisation, deployed at other lrs and PPO settings",
        reproduces="the comparative study (003): Optim4RL's sensitivity on Ant; needs lorl[brax]",
        scales={"cpu": _ant_cpu, "paper": _ant_paper},
        run=_run_ant,
        report=sensitivity_report,
        validate=_validate_ant,
    )
)
