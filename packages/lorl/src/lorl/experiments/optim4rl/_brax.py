"""Optim4RL meta-trained from scratch *in Brax* through PPO (Optim4RL Fig. 4, Ant) and the
pipeline-training ablation in Ant and Humanoid (Optim4RL Table 1, Brax columns).

Meta-training runs `lorl_meta.PPOMetaGradientTrainer` (orbax checkpoints in
`run_dir.checkpoint_dir(stage)`, so `lorl resume` continues a killed run); the learned
optimizer is saved in `optimizers/<stage>.eqx` and evaluated with
`lorl.evaluation.evaluate` (PPO, fresh seeds) beside Adam and RMSProp. Needs `lorl[brax]`.
"""

import dataclasses
from collections.abc import Mapping
from typing import Any, Literal

from ...runs import ConfigError, RunDir
from .._registry import Experiment, register
from ._common import (
    Evals,
    check_brax_envs,
    check_units,
    device_mesh,
    meta_stage,
    pipeline_sections,
    report,
    run_learned_vs_baselines,
    run_pipeline_ablation,
    seed_list,
    trainer_settings,
)

BraxTask = Literal["ant", "humanoid"]
Activation = Literal["swish", "tanh", "relu"]

#: Optim4RL Table 1 (10 runs, mean ± s.e.): Optim4RL meta-trained in the task itself.
PAPER_BRAX_PIPELINE = {"ant": "7088 ± 178", "humanoid": "7658 ± 282"}
PAPER_BRAX_NO_PIPELINE = {"ant": "5603 ± 631", "humanoid": "7053 ± 272"}


@dataclasses.dataclass(frozen=True)
class BraxMetaConfig:
    """Meta-gradient training through PPO in a Brax task (Optim4RL Appendix C.3, "For
    training Optim4RL in Ant from scratch ...").

    **Fields:**

    - `steps`: meta-iterations (the paper does not print it; the reference code's Ant
      config trains for 1e8 environment steps).
    - `units`: training units `n` (independent PPO agents, batched with vmap).
    - `envs_per_unit`: Brax environments of each unit's PPO agent.
    - `n_steps`: PPO rollout length per update (OPEN Table 3, Ant: 10).
    - `n_minibatches`: PPO minibatches (Optim4RL App. C.3: 8 instead of 32, for memory).
    - `n_epochs`: PPO epochs (OPEN Table 3, Ant: 4; the reference code: 4).
    - `reset_interval`: pipeline reset interval `m` (Optim4RL App. C.3, Ant: {512, 1024}).
    - `pipeline`: pipeline training on (False: Table 1's ablation).
    - `inner_updates`: `M`, PPO updates per meta-iteration (Optim4RL App. C: 4).
    - `lr`: meta-optimizer (Adam) learning rate (App. C.3 grid {3e-5, 1e-4, 3e-4, 1e-3}).
    - `meta_grad_clip`: global-norm clip of the meta-gradient (`None`: off).
    - `agent_lr`: Optim4RL's agent learning rate (the reference code's Ant config,
      configs/meta_rl_ant.json: 3e-4; the paper does not print it).
    - `outer_loss`: `"full"`: the standard PPO loss (Optim4RL App. C: "For PPO, both the
      inner loss and outer loss are the standard PPO loss"); `"actor"`: clipped surrogate
      and entropy only.
    - `checkpoint_every`, `seed`: checkpoint period and meta-training seed.
    - `optimizer_path`: skip meta-training and use this saved learned optimizer.
    """

    steps: int
    units: int
    envs_per_unit: int
    n_steps: int = 10  # OPEN Table 3, Ant
    n_minibatches: int = 8  # Optim4RL App. C.3: "from the default value 32 to 8"
    n_epochs: int = 4  # OPEN Table 3, Ant
    reset_interval: int = 512  # Optim4RL App. C.3 (Ant): m in {512, 1024}
    pipeline: bool = True  # Optim4RL Section 5.1
    inner_updates: int = 4  # Optim4RL App. C: M = 4
    lr: float = 1e-4  # Optim4RL App. C.3: grid {3e-5, 1e-4, 3e-4, 1e-3}
    meta_grad_clip: float | None = None
    agent_lr: float = 3e-4  # Optim4RL reference code, configs/meta_rl_ant.json
    outer_loss: Literal["full", "actor"] = "full"  # Optim4RL App. C (PPO)
    checkpoint_every: int = 50
    seed: int = 0
    optimizer_path: str | None = None

    def __post_init__(self):
        for name in (
            "steps", "units", "envs_per_unit", "n_steps", "n_minibatches", "n_epochs",
            "reset_interval", "inner_updates", "checkpoint_every",
        ):  # fmt: skip
            if getattr(self, name) < 1:
                raise ValueError(f"meta.{name} must be >= 1, got {getattr(self, name)}")
        if not self.lr > 0 or not self.agent_lr > 0:
            raise ValueError("meta.lr and meta.agent_lr must be > 0")
        if (self.envs_per_unit * self.n_steps) % self.n_minibatches:
            raise ValueError(
                f"meta: a unit's batch of envs_per_unit * n_steps = "
                f"{self.envs_per_unit * self.n_steps} transitions does not divide into "
                f"n_minibatches = {self.n_minibatches}"
            )
        if self.outer_loss not in ("full", "actor"):
            raise ValueError(f"meta.outer_loss must be 'full' or 'actor', got {self.outer_loss!r}")


@dataclasses.dataclass(frozen=True)
class BraxEvalConfig:
    """Evaluation with fresh PPO agents (the Optim4RL paper: 10 runs).

    **Fields:**

    - `seeds`, `first_seed`: runs per optimizer, seeds `first_seed, first_seed + 1, ...`.
    - `n_envs`, `n_minibatches`: the PPO batch (OPEN Table 3, Ant: 2048 envs; the
      meta-training value of 8 minibatches, Optim4RL App. C.3).
    - `timesteps`: environment steps per run (OPEN Table 3, Ant: 5e7).
    - `baselines`: hand-designed optimizers beside it (`lorl.evaluation` names; `"adam"`
      and `"rmsprop"` are the OPEN paper's tuned Ant values, OPEN Appendix C.2; the
      Optim4RL paper tunes them on a grid without printing the winners).
    """

    seeds: int
    n_envs: int
    timesteps: int
    n_minibatches: int = 8  # Optim4RL App. C.3
    first_seed: int = 1000
    baselines: tuple[str, ...] = ("adam", "rmsprop")

    def __post_init__(self):
        for name in ("seeds", "n_envs", "timesteps", "n_minibatches"):
            if getattr(self, name) < 1:
                raise ValueError(f"eval.{name} must be >= 1, got {getattr(self, name)}")


#: The PPO networks of Optim4RL's Brax runs: Brax's PPO defaults, which its reference code
#: uses (a 32 x 4 policy, a 256 x 5 value net), with the value net shrunk to 64 x 5 for
#: training Optim4RL from scratch (Appendix C.3: "The hidden sizes of the value network
#: are changed from [256, 256, 256, 256, 256] to [64, 64, 64, 64, 64]"). The activation
#: is an experiment field (`activation`), by default Brax's swish as in the reference
#: (`brax.training.agents.ppo.networks.make_ppo_networks`: `activation=linen.swish`).
OPTIM4RL_BRAX_NETWORKS: dict[str, int] = {
    "width": 32,
    "n_hidden": 4,
    "critic_width": 64,
    "critic_hidden": 5,
}


def _ppo_config(meta: BraxMetaConfig, activation: str) -> Any:
    import lorl_agents as la

    # OPEN Table 3's Ant PPO with Optim4RL's networks and the meta-training batch. Its run
    # length only sets the training proportion: one unit lifetime of m * M updates.
    batch = meta.envs_per_unit * meta.n_steps
    return la.PPOConfig.brax_ant(
        n_envs=meta.envs_per_unit,
        n_steps=meta.n_steps,
        n_minibatches=meta.n_minibatches,
        n_epochs=meta.n_epochs,
        total_timesteps=batch * meta.reset_interval * meta.inner_updates,
        activation=activation,
        **OPTIM4RL_BRAX_NETWORKS,
    )


def meta_train_brax(
    run_dir: RunDir, stage: str, *, env: str, meta: BraxMetaConfig, activation: str = "swish"
) -> dict:
    """Meta-train Optim4RL through PPO in the Brax task `env` (one resumable stage).

    **Arguments:**

    - `run_dir`: the run folder.
    - `stage`: the stage name (checkpoints, metrics and `optimizers/<stage>.eqx`).
    - `env`: the Brax task.
    - `meta`: the `BraxMetaConfig`.
    - `activation`: the PPO networks' hidden activation.

    **Returns:**

    `optimizer_path` (relative to the run folder), `seconds`, a thinned `history`,
    `n_nonfinite_meta_steps`.
    """

    def build() -> tuple[Any, Any, int, Mapping[str, Any]]:
        import jax

        import lorl_agents as la
        import lorl_meta as lm
        import lorl_optim as lo

        env_obj, params = la.make_env(env)
        task = lm.PPOMetaTask(
            env, env_obj, params, la.PPO(_ppo_config(meta, activation)), n_units=meta.units
        )
        config = lm.PPOMetaGradientConfig(
            **trainer_settings(meta), meta_grad_clip=meta.meta_grad_clip
        )
        trainer = lm.PPOMetaGradientTrainer(config, task, mesh=device_mesh())
        optimizer = lo.Optim4RL(meta.agent_lr, key=jax.random.key(meta.seed))
        return trainer, optimizer, meta.seed, {"learning_rate": meta.agent_lr}

    return meta_stage(run_dir, stage, meta.optimizer_path, build)


def make_brax_evals(run_dir: RunDir, ev: BraxEvalConfig, activation: str) -> Evals:
    """The PPO evaluation protocol of `ev`, with Optim4RL's Brax networks."""
    overrides = {"n_envs": ev.n_envs, "n_minibatches": ev.n_minibatches}
    overrides |= {**OPTIM4RL_BRAX_NETWORKS, "activation": activation}
    return Evals(run_dir, seed_list(ev.seeds, ev.first_seed), ev.timesteps, overrides)


def validate_brax_common(envs: tuple[str, ...], meta: BraxMetaConfig, ev: BraxEvalConfig) -> None:
    from ...evaluation import require_brax

    check_brax_envs(envs)
    if (ev.n_envs * 10) % ev.n_minibatches:
        raise ConfigError(
            f"eval: n_envs * 10 (the PPO rollout) = {ev.n_envs * 10} does not divide into "
            f"n_minibatches = {ev.n_minibatches}"
        )
    if ev.timesteps < ev.n_envs * 10:
        raise ConfigError(
            f"eval.timesteps = {ev.timesteps} is less than one PPO update of "
            f"n_envs * 10 = {ev.n_envs * 10} steps"
        )
    check_units(meta.units, meta.reset_interval, meta.pipeline)
    require_brax("optim4rl Brax meta-training")


# ------------------------------------------------------------ Fig. 4 (Ant) from scratch


@dataclasses.dataclass(frozen=True)
class BraxFromScratchConfig:
    """Optim4RL meta-trained from scratch through PPO in a Brax task, evaluated there
    against Adam and RMSProp (Optim4RL Fig. 4, Ant).

    **Fields:**

    - `env`: the Brax task (`ant` in the paper).
    - `meta`, `eval`: `BraxMetaConfig`, `BraxEvalConfig`.
    - `activation`: hidden activation of the PPO networks in meta-training and
      evaluation (the reference: Brax's default, swish; `tanh`: OPEN's Ant networks).
    """

    env: BraxTask
    meta: BraxMetaConfig
    eval: BraxEvalConfig
    activation: Activation = "swish"  # Optim4RL reference code: Brax PPO default (swish)


def _run_from_scratch(config: BraxFromScratchConfig, run_dir: RunDir) -> dict[str, Any]:
    def train(stage: str, kind: str) -> dict[str, Any]:
        return meta_train_brax(
            run_dir, stage, env=config.env, meta=config.meta, activation=config.activation
        )

    evals = make_brax_evals(run_dir, config.eval, config.activation)
    return run_learned_vs_baselines(
        run_dir, config.env, {"optim4rl": "Optim4RL"}, train, evals, config.eval.baselines
    )


def _report_from_scratch(run_dir: RunDir) -> str:
    res = run_dir.load_results()
    env = res["env"]
    paper = {"Optim4RL": PAPER_BRAX_PIPELINE.get(env, "–")}
    paper |= {k: "similar to Optim4RL (Fig. 4, no number)" for k in res["evaluation"] if "(" in k}
    activation = run_dir.config_dict.get("activation", "tanh")  # older runs: tanh
    notes = (
        "PPO networks as in Optim4RL's Brax runs: a 32 x 4 policy and a 64 x 5 value net, "
        f"{activation} (the reference's Brax defaults use swish). Adam and RMSProp use the "
        "OPEN paper's tuned Ant values."
    )
    section = (f"PPO on {env}", res["evaluation"], f"brax_{env}", paper)
    return report(run_dir, [section], notes=notes, paper_source="Optim4RL Table 1 / Fig. 4")


def _validate_from_scratch(config: BraxFromScratchConfig) -> None:
    validate_brax_common((config.env,), config.meta, config.eval)


def brax_cpu_meta(**kw: Any) -> BraxMetaConfig:
    # cpu scale (ours; far too small to learn Ant): 2 units of 16 environments, 4
    # minibatches, 2 epochs, reset interval 2 (pipeline training needs n >= m). Measured
    # with reset interval 8: 12 min 50 s wall, 6 min 22 s CPU for the whole
    # from-scratch-ant run at load ~13 (docs/lorl/experiments-optim4rl.md).
    base = BraxMetaConfig(
        steps=12,
        units=2,
        envs_per_unit=16,
        n_minibatches=4,
        n_epochs=2,
        reset_interval=2,
        lr=1e-3,
        checkpoint_every=4,
    )
    return dataclasses.replace(base, **kw)


def brax_cpu_eval(**kw: Any) -> BraxEvalConfig:
    # cpu scale: 2 seeds x 32 environments x 20 PPO updates (6,400 steps; paper 5e7).
    return dataclasses.replace(
        BraxEvalConfig(seeds=2, n_envs=32, timesteps=32 * 10 * 20, n_minibatches=4), **kw
    )


def brax_paper_meta(**kw: Any) -> BraxMetaConfig:
    # Optim4RL App. C.3: "The number of environments / training units n is 2048. The
    # reset interval m is chosen from {512, 1024}". Pipeline training needs n >= m (every
    # phase of the reset schedule has a unit), so paper scale = 512 units x 4
    # environments (2048 in all) with m = 512. (The reference code, sail-sg/optim4rl
    # agents/MetaPPO.py, runs one PPO agent per device over the 2048 environments, i.e.
    # n = device count < m.)
    return dataclasses.replace(
        BraxMetaConfig(steps=2000, units=512, envs_per_unit=4, reset_interval=512), **kw
    )


def brax_paper_eval(**kw: Any) -> BraxEvalConfig:
    base = BraxEvalConfig(
        seeds=10,  # Optim4RL: "averaged over 10 runs"
        n_envs=2048,  # OPEN Table 3, Ant
        timesteps=50_000_000,  # OPEN Table 3, Ant: 5e7
    )
    return dataclasses.replace(base, **kw)


register(
    Experiment(
        name="optim4rl/from-scratch-ant",
        summary="Optim4RL meta-trained from scratch through PPO in Ant, vs Adam and RMSProp",
        reproduces="Optim4RL Fig. 4 (Ant) and Table 1 (with pipeline training); needs lorl[brax]",
        scales={
            "cpu": lambda: BraxFromScratchConfig(
                env="ant", meta=brax_cpu_meta(), eval=brax_cpu_eval()
            ),
            "paper": lambda: BraxFromScratchConfig(
                env="ant", meta=brax_paper_meta(), eval=brax_paper_eval()
            ),
        },
        run=_run_from_scratch,
        report=_report_from_scratch,
        validate=_validate_from_scratch,
    )
)


# ------------------------------------------------------ Table 1 (Ant, Humanoid) ablation


@dataclasses.dataclass(frozen=True)
class BraxPipelineAblationConfig:
    """Optim4RL meta-trained through PPO with and without pipeline training in Brax tasks
    (Optim4RL Table 1, Ant and Humanoid columns).

    **Fields:**

    - `envs`: Brax tasks (`ant`, `humanoid` in the paper).
    - `meta`: meta-training (`meta.pipeline` is ignored: both variants run).
    - `eval`: evaluation (`eval.baselines` are evaluated too).
    - `activation`: hidden activation of the PPO networks (as in `BraxFromScratchConfig`).
    """

    envs: tuple[BraxTask, ...]
    meta: BraxMetaConfig
    eval: BraxEvalConfig
    activation: Activation = "swish"  # Optim4RL reference code: Brax PPO default (swish)


def _run_pipeline(config: BraxPipelineAblationConfig, run_dir: RunDir) -> dict[str, Any]:
    def train(stage: str, env: str, pipeline: bool) -> dict[str, Any]:
        meta = dataclasses.replace(config.meta, pipeline=pipeline)
        return meta_train_brax(run_dir, stage, env=env, meta=meta, activation=config.activation)

    evals = make_brax_evals(run_dir, config.eval, config.activation)
    return run_pipeline_ablation(run_dir, config.envs, train, evals, config.eval.baselines)


def _report_pipeline(run_dir: RunDir) -> str:
    res = run_dir.load_results()
    sections = pipeline_sections(
        res["evaluation"], "PPO on", PAPER_BRAX_PIPELINE, PAPER_BRAX_NO_PIPELINE
    )
    activation = run_dir.config_dict.get("activation", "tanh")  # older runs: tanh
    notes = (
        "PPO networks as in Optim4RL's Brax runs: a 32 x 4 policy and a 64 x 5 value net, "
        f"{activation} (the reference's Brax defaults use swish)."
    )
    return report(run_dir, sections, notes=notes, paper_source="Optim4RL Table 1")


def _validate_pipeline(config: BraxPipelineAblationConfig) -> None:
    if not config.envs:
        raise ConfigError("envs: name at least one Brax task (ant, humanoid)")
    if config.meta.optimizer_path is not None:
        raise ConfigError("meta.optimizer_path makes no sense here: both variants are trained")
    validate_brax_common(tuple(config.envs), config.meta, config.eval)


register(
    Experiment(
        name="optim4rl/pipeline-ablation-brax",
        summary="Optim4RL meta-trained through PPO with vs without pipeline training (Brax)",
        reproduces="Optim4RL Table 1 (Ant and Humanoid columns); needs lorl[brax]",
        scales={
            "cpu": lambda: BraxPipelineAblationConfig(
                envs=("ant",), meta=brax_cpu_meta(), eval=brax_cpu_eval(baselines=())
            ),
            "paper": lambda: BraxPipelineAblationConfig(
                envs=("ant", "humanoid"), meta=brax_paper_meta(), eval=brax_paper_eval()
            ),
        },
        run=_run_pipeline,
        report=_report_pipeline,
        validate=_validate_pipeline,
    )
)
