"""`optim4rl/pipeline-ablation`: Optim4RL meta-trained with and without pipeline training
(Optim4RL Table 1, gridworld columns).

Catalogue module: registers its experiments on import.
"""

import dataclasses
from typing import Any

from ...runs import ConfigError, RunDir
from .._registry import Experiment, register
from ._common import (
    check_units,
    pipeline_sections,
    report,
    run_pipeline_ablation,
)
from ._settings import (
    LPG,
    PAPER_NO_PIPELINE,
    PAPER_OPTIM4RL,
    EvalConfig,
    MetaConfig,
    cpu_eval,
    cpu_meta,
    make_evals,
    meta_train,
    paper_eval,
    paper_meta,
    validate_lpg,
)


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

    evals = make_evals(run_dir, config.eval)
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
    validate_lpg(config.envs)
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
                meta=cpu_meta(steps=100),
                eval=cpu_eval(updates=200, baselines=()),
            ),
            "paper": lambda: PipelineAblationConfig(
                envs=("small_dense_short", "big_dense_long"),
                meta=paper_meta(),
                eval=paper_eval(),
            ),
        },
        run=_run_pipeline,
        report=_report_pipeline,
        validate=_validate_pipeline,
    )
)
