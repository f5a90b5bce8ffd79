"""The machinery the Optim4RL experiments share, on gridworlds (A2C, `_optim4rl`) and in
Brax (PPO, `_optim4rl_brax`): the resumable meta-training stage, evaluation stages with a
fixed protocol, the two run layouts (learned optimizers then baselines; with vs without
pipeline training) and the report built from their results."""

import dataclasses
import pathlib
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from ...runs import ConfigError, RunDir
from .._registry import Experiment
from .._stages import (
    evaluate_stage as evaluate_stage,
    seed_list as seed_list,
    stage_name as stage_name,
)

# ------------------------------------------------------------------------ meta-training


def meta_stage(
    run_dir: RunDir,
    stage: str,
    optimizer_path: str | None,
    build: Callable[[], tuple[Any, Any, int, Mapping[str, Any]]],
) -> dict[str, Any]:
    """Meta-train a learned optimizer as one resumable stage of `run_dir`.

    **Arguments:**

    - `run_dir`: the run folder; checkpoints go to `run_dir.checkpoint_dir(stage)`,
      metrics to `run_dir.metrics_dir(stage)`, the optimizer to `optimizers/<stage>.eqx`.
    - `stage`: the stage name.
    - `optimizer_path`: a saved learned optimizer to use instead (no training), or `None`.
    - `build`: called inside the (timed) stage, returns `(trainer, optimizer, seed,
      save_kwargs)`: a `lorl_meta` meta-gradient trainer, the learned optimizer it starts
      from, the meta-training seed, and the keyword arguments
      `lorl.evaluation.save_optimizer` stores with it (its agent learning rate).

    **Returns:**

    The stage's stored result: `optimizer_path` (relative to the run folder), `seconds`,
    the meta-training history thinned to about 100 entries of scalar metrics,
    `n_nonfinite_meta_steps`, and `init_path`: the untrained optimizer meta-training
    started from, saved by a stage `<stage>-init` before training (the control every
    evaluation reports beside the meta-trained optimizer). With `optimizer_path` given,
    that path, an empty history and `init_path` `None`.
    """
    if optimizer_path is not None:
        return {
            "optimizer_path": optimizer_path,
            "seconds": 0.0,
            "history": [],
            "init_path": None,
        }

    def save_init() -> dict[str, Any]:
        from ...evaluation import save_optimizer
        from ...evaluation._optimizers import INIT_SUFFIX

        # building a trainer compiles nothing; only its starting optimizer is kept
        _, optimizer, _, save_kwargs = build()
        rel = pathlib.Path("optimizers") / f"{stage}{INIT_SUFFIX}"
        save_optimizer(run_dir.path / rel, optimizer, **save_kwargs)
        return {"optimizer_path": str(rel)}

    init = run_dir.stage(f"{stage}-init", save_init)

    def compute() -> dict[str, Any]:
        from ...evaluation import save_optimizer

        start = time.perf_counter()
        trainer, optimizer, seed, save_kwargs = build()
        result = trainer.train(
            optimizer,
            seed=seed,
            checkpoint_dir=run_dir.checkpoint_dir(stage),
            log_dir=run_dir.metrics_dir(stage),
            progress=True,
        )
        rel = pathlib.Path("optimizers") / f"{stage}.eqx"
        save_optimizer(run_dir.path / rel, result.optimizer, **save_kwargs)
        every = max(1, len(result.history) // 100)
        history = [
            {k: v for k, v in h.items() if isinstance(v, (int, float))}
            for h in result.history[::every]
        ]
        return {
            "optimizer_path": str(rel),
            "seconds": time.perf_counter() - start,
            "history": history,
            "n_nonfinite_meta_steps": int(result.state.n_nonfinite),
        }

    return {**run_dir.stage(stage, compute), "init_path": init["optimizer_path"]}


#: The label suffix of an untrained initialisation evaluated as a control.
INIT_LABEL = "untrained init"


def trainer_settings(meta: Any) -> dict[str, Any]:
    """The `lorl_meta` meta-gradient config fields (`MetaGradientConfig`,
    `PPOMetaGradientConfig`) of an experiment's meta-training config (`MetaConfig` or
    `BraxMetaConfig`: `steps`, `inner_updates`, `reset_interval`, `pipeline`, `lr`,
    `outer_loss`, `checkpoint_every`, `unit_batch`); checkpoints at least at the end."""
    return {
        "n_meta_steps": meta.steps,
        "n_inner": meta.inner_updates,
        "reset_interval": meta.reset_interval,
        "pipeline": meta.pipeline,
        "meta_lr": meta.lr,
        "outer_loss": meta.outer_loss,
        "checkpoint_every": min(meta.checkpoint_every, meta.steps),
        "unit_batch": unit_batch(getattr(meta, "unit_batch", 0)),
    }


#: Units per rematerialised group on one CPU device: at Optim4RL's paper configuration
#: (512 units, M = 4, small_dense_short) a meta-iteration took 7.30 s with one vmapped
#: program, 4.08 / 3.68 / 3.48 / 3.78 s with groups of 32 / 16 / 8 / 4 (2-core CPU,
#: docs/meta/benchmarks.md).
CPU_UNIT_BATCH = 8


def unit_batch(value: int | None) -> int:
    """`MetaGradientConfig.unit_batch` for an experiment's `meta.unit_batch`: the value
    itself, or for `None` `CPU_UNIT_BATCH` on a single CPU device and `0` (one vmapped
    program; units sharded over devices) otherwise."""
    if value is not None:
        return value
    import jax

    return CPU_UNIT_BATCH if jax.default_backend() == "cpu" and jax.device_count() == 1 else 0


def device_mesh() -> Any:
    """The local device mesh the trainers shard units over, `None` on one device."""
    import jax

    from ...sharding import local_mesh

    return local_mesh() if jax.device_count() > 1 else None


def optimizer_file(run_dir: RunDir, stored: Mapping[str, Any]) -> str:
    """The absolute path of a meta-training stage's saved optimizer."""
    p = pathlib.Path(stored["optimizer_path"])
    return str(p if p.is_absolute() or p.exists() else run_dir.path / p)


def init_file(run_dir: RunDir, stored: Mapping[str, Any]) -> str | None:
    """The absolute path of the untrained optimizer a meta-training stage started from
    (`None` when the stage used a saved optimizer instead of training)."""
    rel = stored.get("init_path")
    return None if rel is None else str(run_dir.path / rel)


# ---------------------------------------------------------------------------- evaluation


@dataclasses.dataclass(frozen=True)
class Evals:
    """One experiment's evaluation protocol: every stage runs the same seeds, budget and
    agent overrides.

    **Fields:**

    - `run_dir`: the run folder (each evaluation is a cached stage of it).
    - `seeds`, `timesteps`: seeds and environment steps per run.
    - `overrides`: agent hyperparameters that differ from the environment's defaults.
    """

    run_dir: RunDir
    seeds: Sequence[int]
    timesteps: int
    overrides: Mapping[str, Any]

    def __call__(
        self, stage: str, optimizer: Any, env: str, label: str | None = None, **extra: Any
    ) -> tuple[str, dict[str, Any]]:
        """Evaluate `optimizer` on `env` as stage `stage` (`extra`: more agent overrides).

        **Returns:**

        The result's optimizer label (`label`, or `lorl.evaluation`'s name of a
        hand-designed optimizer) and its stored form.
        """
        r = evaluate_stage(
            self.run_dir,
            stage,
            optimizer,
            env,
            seeds=self.seeds,
            timesteps=self.timesteps,
            agent_overrides={**self.overrides, **extra},
            label=label,
        )
        return r.optimizer, r.to_dict()


# ----------------------------------------------------------------------------- run layouts


def run_learned_vs_baselines(
    run_dir: RunDir,
    env: str,
    learned: Mapping[str, str],
    train: Callable[[str, str], dict[str, Any]],
    evals: Evals,
    baselines: Sequence[str],
) -> dict[str, Any]:
    """Meta-train each learned optimizer, evaluate each, then the baselines, on `env`.

    **Arguments:**

    - `run_dir`: the run folder.
    - `env`: the environment of meta-training and evaluation.
    - `learned`: learned optimizer kind -> its label in the results.
    - `train`: `train(stage, kind)` meta-trains one kind as stage `stage`
      (`meta-<kind>`) and returns the stage's stored result.
    - `evals`: the evaluation protocol (stages `eval-<kind>`, `eval-<kind>-init`,
      `eval-<baseline>`).
    - `baselines`: hand-designed optimizers (`lorl.evaluation` names).

    Each meta-trained optimizer's untrained initialisation is evaluated beside it as a
    control, labelled `"<label> (untrained init)"` (not when meta-training was skipped
    with a saved optimizer).

    **Returns:**

    `{"env", "meta": {kind: stored}, "evaluation": {label: stored evaluation}}`.
    """
    from tqdm.auto import tqdm

    out: dict[str, Any] = {"env": env, "meta": {}, "evaluation": {}}
    steps = [("meta", k) for k in learned] + [("eval", k) for k in learned]
    steps += [("baseline", b) for b in baselines]
    for what, name in tqdm(steps, desc=run_dir.experiment, unit="stage"):
        if what == "meta":
            out["meta"][name] = train(f"meta-{name}", name)
        elif what == "eval":
            path = optimizer_file(run_dir, out["meta"][name])
            label, r = evals(f"eval-{name}", path, env, learned[name])
            out["evaluation"][label] = r
            init = init_file(run_dir, out["meta"][name])
            if init is not None:
                label, r = evals(f"eval-{name}-init", init, env, f"{label} ({INIT_LABEL})")
                out["evaluation"][label] = r
        else:
            label, r = evals(stage_name("eval", name), name, env)
            out["evaluation"][label] = r
    return out


def run_pipeline_ablation(
    run_dir: RunDir,
    envs: Sequence[str],
    train: Callable[[str, str, bool], dict[str, Any]],
    evals: Evals,
    baselines: Sequence[str],
) -> dict[str, Any]:
    """Optim4RL meta-trained with and without pipeline training on each environment,
    each evaluated there, then the baselines (Optim4RL Table 1).

    **Arguments:**

    - `run_dir`: the run folder.
    - `envs`: the environments.
    - `train`: `train(stage, env, pipeline)` meta-trains Optim4RL on `env` with
      pipeline training on or off as stage `stage` and returns its stored result.
    - `evals`: the evaluation protocol.
    - `baselines`: hand-designed optimizers evaluated on every environment.

    **Returns:**

    `{"envs", "meta": {"<env>-pipeline" | "<env>-no-pipeline": stored}, "evaluation":
    {env: {"with pipeline" | "without pipeline" | "untrained init" | baseline label: stored
    evaluation}}}`. Both variants start from the same initialisation (same kind and
    seed), evaluated once per environment as the control (stage `eval-<env>-init`).
    """
    from tqdm.auto import tqdm

    out: dict[str, Any] = {"envs": list(envs), "meta": {}, "evaluation": {}}
    jobs = [(env, p) for env in envs for p in (True, False)]
    for env, pipeline in tqdm(jobs, desc=run_dir.experiment, unit="variant"):
        tag = f"{env}-{'pipeline' if pipeline else 'no-pipeline'}"
        out["meta"][tag] = train(f"meta-{tag}", env, pipeline)
        label = "with pipeline" if pipeline else "without pipeline"
        path = optimizer_file(run_dir, out["meta"][tag])
        _, r = evals(f"eval-{tag}", path, env, label)
        out["evaluation"].setdefault(env, {})[label] = r
        init = init_file(run_dir, out["meta"][tag])
        if pipeline and init is not None:
            _, r = evals(f"eval-{env}-init", init, env, INIT_LABEL)
            out["evaluation"][env][INIT_LABEL] = r
    for env in envs:
        for b in baselines:
            label, r = evals(stage_name("eval", env, b), b, env)
            out["evaluation"][env][label] = r
    return out


# ------------------------------------------------------------------------------- reports


def experiment_of(run_dir: RunDir) -> Experiment:
    """The registered experiment a run folder belongs to."""
    from .._registry import get_experiment

    return get_experiment(run_dir.experiment)


def results_from(stored: Mapping[str, Any]) -> dict[str, Any]:
    """Stored evaluations (label -> dict) back to `lorl.evaluation.EvaluationResult`s."""
    from ...evaluation import EvaluationResult

    return {k: EvaluationResult.from_dict(v) for k, v in stored.items()}


def meta_summary(meta: Mapping[str, Any]) -> str:
    """The report's meta-training table: seconds and meta-loss trend per stage."""
    lines = [
        "## Meta-training",
        "",
        "| optimizer | seconds | meta-loss (first → last) |",
        "|---|---:|---|",
    ]
    for name, m in meta.items():
        h = m.get("history") or []
        losses = [x.get("meta_loss") for x in h if isinstance(x.get("meta_loss"), float)]
        trend = f"{losses[0]:.4g} → {losses[-1]:.4g}" if losses else "(loaded, not trained)"
        lines.append(f"| {name} | {m.get('seconds', 0):.0f} | {trend} |")
    return "\n".join(lines) + "\n\n"


#: One report section: (title, stored evaluations, plot name, the paper's numbers or None).
Section = tuple[str, Mapping[str, Any], str, Mapping[str, str] | None]


def pipeline_sections(
    evaluation: Mapping[str, Mapping[str, Any]],
    title: str,
    with_pipeline: Mapping[str, str],
    without_pipeline: Mapping[str, str],
) -> list[Section]:
    """The report sections of a pipeline ablation, one per environment.

    **Arguments:**

    - `evaluation`: the results' `evaluation` (environment -> label -> stored result).
    - `title`: the section title before the environment's name (`"PPO on"`).
    - `with_pipeline`, `without_pipeline`: the paper's numbers per environment.

    **Returns:**

    The sections for `report`.
    """
    return [
        (
            f"{title} {env}",
            results,
            f"pipeline_{env}",
            {
                "with pipeline": with_pipeline.get(env, "–"),
                "without pipeline": without_pipeline.get(env, "–"),
            },
        )
        for env, results in evaluation.items()
    ]


def report(
    run_dir: RunDir, sections: Iterable[Section], *, notes: str = "", paper_source: str = ""
) -> str:
    """The Markdown report of an Optim4RL experiment: header, meta-training table, then
    one `lorl._report.evaluation_section` per section.

    **Arguments:**

    - `run_dir`: the run folder (its `results.json` holds `meta`).
    - `sections`: `(title, stored evaluations, plot name, paper numbers)` each.
    - `notes`: a paragraph under the header.
    - `paper_source`: where the paper's numbers come from.

    **Returns:**

    The report.
    """
    from ..._report import evaluation_section, header

    exp = experiment_of(run_dir)
    md = header(run_dir, exp.summary, exp.reproduces, notes)
    md += meta_summary(run_dir.load_results()["meta"])
    for title, results, plot_name, paper in sections:
        md += evaluation_section(
            run_dir,
            title,
            results_from(results),
            plot_name=plot_name,
            paper=paper,
            paper_source=paper_source if paper is not None else "",
        )
    return md


# ---------------------------------------------------------------------------- validation


def check_units(units: int, reset_interval: int | None = None, pipeline: bool = True) -> None:
    """Units are vmapped in one program per task; with several devices the trainers'
    sharding (lorl_meta) splits them, so they must divide evenly. With `reset_interval`
    given and pipeline training on, the units must also cover every phase of the reset
    schedule (`units >= reset_interval`, Optim4RL Section 5.1)."""
    import jax

    from ...sharding import check_divisible

    if jax.device_count() > 1:
        check_divisible(units, "meta.units (training units)")
    if reset_interval is not None and pipeline and units < reset_interval:
        raise ConfigError(
            f"meta.units={units} < meta.reset_interval={reset_interval}: pipeline training "
            "spreads the units' reset offsets over [0, m - 1], so with fewer units than m "
            "some phases of the schedule have no unit (Optim4RL Section 5.1 uses n = 512, "
            "m in {256, 512}); raise meta.units or lower meta.reset_interval"
        )


def check_brax_envs(envs: Iterable[str]) -> None:
    """Every name in `envs` is a Brax task (else `ConfigError`)."""
    import lorl_agents as la

    for env in envs:
        if env not in la.BRAX_ENVS:
            raise ConfigError(f"{env!r} is not a Brax task; choose from {', '.join(la.BRAX_ENVS)}")
