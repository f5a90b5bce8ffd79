"""`optim4rl/generalisation-brax`: Optim4RL meta-trained in gridworlds by A2C, then used to
train PPO on Brax tasks (Optim4RL Figures 5-7).

Catalogue module: registers its experiments on import.
"""

import dataclasses
from typing import Any

from ...runs import ConfigError, RunDir
from .._registry import Experiment, register
from ._common import (
    INIT_LABEL,
    Evals,
    check_brax_envs,
    check_units,
    init_file,
    optimizer_file,
    report,
    seed_list,
    stage_name,
)
from ._settings import (
    LPG,
    PAPER_SEEDS,
    SIX_GRIDWORLDS,
    MetaConfig,
    cpu_meta,
    meta_train,
    paper_meta,
    validate_lpg,
)


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

    from ...evaluation import load_optimizer

    out: dict[str, Any] = {"train_envs": list(config.train_envs), "evaluation": {}}
    out["meta"] = {
        "optim4rl": meta_train(
            run_dir, "meta-optim4rl", kind="optim4rl", envs=config.train_envs, meta=config.meta
        )
    }

    def at_agent_lr(path: str) -> Any:
        opt = load_optimizer(path)
        return lm.task_optimizer(path, opt, config.agent_lr)

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
    from ...evaluation import require_brax

    validate_lpg(config.train_envs)
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
                meta=cpu_meta(steps=60, units=32, reset_interval=32),
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
                meta=paper_meta(),
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
