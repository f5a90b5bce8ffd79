"""`optim4rl/from-scratch-<env>` and `optim4rl/inductive-bias-ablation`: Optim4RL (and
LinearOptim, L2LGD2) meta-trained from scratch in a gridworld, against Adam and RMSProp
(Optim4RL Figure 4, Section 6.1).

Catalogue module: registers its experiments on import.
"""

import dataclasses
from typing import Any

from ...runs import ConfigError, RunDir
from .._registry import Experiment, register
from ._common import (
    check_units,
    report,
    run_learned_vs_baselines,
)
from ._settings import (
    LABEL,
    LPG,
    PAPER_OPTIM4RL,
    EvalConfig,
    LearnedKind,
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


def _run_from_scratch(config: FromScratchConfig, run_dir: RunDir) -> dict[str, Any]:
    def train(stage: str, kind: str) -> dict[str, Any]:
        return meta_train(run_dir, stage, kind=kind, envs=[config.env], meta=config.meta)

    learned = {k: LABEL[k] for k in config.learned}
    evals = make_evals(run_dir, config.eval)
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
    validate_lpg([config.env])
    check_units(config.meta.units, config.meta.reset_interval, config.meta.pipeline)
    if not config.learned:
        raise ConfigError("learned: name at least one learned optimizer")


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
                            cpu_meta(steps=150)
                            if e == "small_dense_short"
                            else cpu_meta(steps=60, units=16, reset_interval=16)
                        ),
                        eval=cpu_eval(updates=300 if e == "small_dense_short" else 100),
                    )
                ),
                "paper": lambda e=_env: FromScratchConfig(
                    env=e, meta=paper_meta(), eval=paper_eval()
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
                meta=cpu_meta(steps=100),
                eval=cpu_eval(updates=200, baselines=("adam",)),
                learned=("optim4rl", "linear_optim", "l2lgd2"),
            ),
            "paper": lambda: FromScratchConfig(
                env="small_dense_short",
                meta=paper_meta(),
                eval=paper_eval(),
                learned=("optim4rl", "linear_optim", "l2lgd2"),
            ),
        },
        run=_run_from_scratch,
        report=_report_from_scratch,
        validate=_validate_from_scratch,
    )
)
