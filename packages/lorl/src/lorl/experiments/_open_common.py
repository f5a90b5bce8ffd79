"""Shared machinery of the OPEN experiments (Goldie et al., NeurIPS 2024): config pieces,
the ES meta-training stage, evaluation stages and report helpers.

Every OPEN experiment is: meta-train one or more learned optimizers by OpenAI-ES
([`lorl_meta.ESTrainer`][], checkpointed in the run folder so a killed run resumes where
it stopped), then evaluate them on fresh seeds against tuned hand-designed optimizers
through `lorl.evaluation`, then report IQM with 95% stratified bootstrap CIs
(`lorl.stats`) and return curves (`lorl.plots`).
"""

from __future__ import annotations

import dataclasses
import math
import pathlib
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .._lazy import lazy_module
from ..runs import ConfigError, RunDir
from ._optim4rl_shared import stage_name as stage_name  # one rule for stage names

if TYPE_CHECKING:
    import jax

    import lorl_agents as la
    import lorl_meta as lm
    import lorl_optim as lo
else:  # loaded on first use: the catalogue of experiments imports no JAX stack
    la = lazy_module("lorl_agents")
    lm = lazy_module("lorl_meta")
    lo = lazy_module("lorl_optim")

# --------------------------------------------------------------------------- config pieces

#: OPEN Table 7 (Appendix C.3): ES hyperparameters per setting:
#: (sigma_init, sigma_decay, lr, lr_decay, population, eval frequency).
TABLE7 = {
    "minatar": (0.03, 0.999, 0.03, 0.999, 64, 24),
    "ant": (0.01, 0.999, 0.01, 0.999, 32, 24),
    "multi_task": (0.03, 0.998, 0.03, 0.998, 64, 9),
    "gridworld": (0.01, 0.999, 0.005, 0.990, 64, 9),
}

#: OPEN Table 7: "Max Gens" (how long each optimizer was trained) and "Gen Used" (the
#: validated generation used at test time), per learned optimizer and environment.
TABLE7_MAX_GENS = {
    ("open", "asterix"): 350,
    ("open", "breakout"): 500,
    ("open", "freeway"): 700,
    ("open", "space_invaders"): 450,
    ("open", "ant"): 700,
    ("open", "multi_task"): 300,
    ("open", "gridworld"): 350,
    ("optim4rl", "asterix"): 500,
    ("optim4rl", "breakout"): 550,
    ("optim4rl", "freeway"): 300,
    ("optim4rl", "space_invaders"): 400,
    ("optim4rl", "ant"): 700,
    ("optim4rl", "multi_task"): 300,
    ("no_features", "asterix"): 800,
    ("no_features", "breakout"): 850,
    ("no_features", "freeway"): 500,
    ("no_features", "space_invaders"): 600,
    ("no_features", "ant"): 400,
    ("no_features", "multi_task"): 300,
}
TABLE7_GEN_USED = {
    ("open", "asterix"): 336,
    ("open", "breakout"): 312,
    ("open", "freeway"): 648,
    ("open", "space_invaders"): 144,
    ("open", "ant"): 168,
    ("open", "multi_task"): 234,
    ("open", "gridworld"): 333,
    ("optim4rl", "asterix"): 288,
    ("optim4rl", "breakout"): 552,
    ("optim4rl", "freeway"): 216,
    ("optim4rl", "space_invaders"): 24,
    ("optim4rl", "ant"): 480,
    ("optim4rl", "multi_task"): 288,
    ("no_features", "asterix"): 456,
    ("no_features", "breakout"): 816,
    ("no_features", "freeway"): 408,
    ("no_features", "space_invaders"): 264,
    ("no_features", "ant"): 240,
    ("no_features", "multi_task"): 270,
}

#: Adam's final return per environment, the normaliser of OPEN's multi-task fitness and of
#: its Figure 3 (OPEN reference code; spec agents_and_meta.md section 4).
ADAM_NORMALISERS = {
    "asterix": 15.04,
    "freeway": 61.84,
    "breakout": 50.08,
    "space_invaders": 167.09,
    "ant": 6517.3,
}

MINATAR = ("asterix", "breakout", "freeway", "space_invaders")


@dataclasses.dataclass(frozen=True)
class ESSettings:
    """OpenAI-ES settings of one meta-training run (resolved to a [`lorl_meta.ESConfig`][]).
    A field left `None` takes OPEN Table 7's value for the experiment's setting (MinAtar,
    Ant, multi-task or gridworld column).

    **Fields:**

    - `n_generations`: generations (Table 7: "Max Gens" per optimizer and environment).
    - `population_size`: members per generation, even (antithetic pairs) and divisible by
      the number of local devices (Table 7: 64; Ant 32).
    - `sigma_init`, `sigma_decay`, `lr`, `lr_decay`: Table 7.
    - `eval_every`: validate the ES mean every this many generations (Table 7: 24
      MinAtar/Ant, 9 multi-task/gridworld).
    - `n_validation`: validation seeds (Appendix C.3: "a small in-distribution validation
      set"; its size is not stated).
    - `checkpoint_every`: orbax checkpoint every this many generations (and at the end);
      `None`: every `eval_every`.
    """

    n_generations: int | None = None
    population_size: int | None = None
    sigma_init: float | None = None
    sigma_decay: float | None = None
    lr: float | None = None
    lr_decay: float | None = None
    eval_every: int | None = None
    n_validation: int = 8  # not in the paper (Appendix C.3: "small validation set")
    checkpoint_every: int | None = None

    def resolve(self, learned: str, env: str, column: str) -> lm.ESConfig:
        """The [`lorl_meta.ESConfig`][] for meta-training `learned` on `env`, with
        Table 7 column `column` for the fields left `None`."""
        s0, sd, lr, lrd, pop, every = TABLE7[column]
        n = self.n_generations
        if n is None:
            n = TABLE7_MAX_GENS.get((learned, env))
            if n is None:
                raise ConfigError(
                    f"OPEN Table 7 gives no number of generations for {learned!r} on {env!r}; "
                    "set es.n_generations"
                )
        eval_every = every if self.eval_every is None else self.eval_every
        try:
            return lm.ESConfig(
                n_generations=n,
                population_size=pop if self.population_size is None else self.population_size,
                sigma_init=s0 if self.sigma_init is None else self.sigma_init,
                sigma_decay=sd if self.sigma_decay is None else self.sigma_decay,
                lr=lr if self.lr is None else self.lr,
                lr_decay=lrd if self.lr_decay is None else self.lr_decay,
                eval_every=eval_every,
                n_validation=self.n_validation,
                checkpoint_every=(
                    eval_every if self.checkpoint_every is None else self.checkpoint_every
                ),
            )
        except ValueError as e:
            raise ConfigError(f"es: {e}") from None

    def population(self, column: str) -> int:
        return TABLE7[column][4] if self.population_size is None else self.population_size


@dataclasses.dataclass(frozen=True)
class AgentSettings:
    """PPO settings that differ from OPEN Table 3's column for the environment (`None`:
    keep the table's value).

    **Fields:** `n_envs`, `n_steps`, `total_timesteps`, `n_minibatches`, `n_epochs`,
    `width` as in [`lorl_agents.PPOConfig`][]. `total_timesteps` is rounded down to whole
    updates of `n_envs * n_steps` steps (the OPEN reference PPO does the same:
    `NUM_UPDATES = TOTAL_TIMESTEPS // NUM_STEPS // NUM_ENVS`).
    """

    n_envs: int | None = None
    n_steps: int | None = None
    total_timesteps: int | None = None
    n_minibatches: int | None = None
    n_epochs: int | None = None
    width: int | None = None

    def config(self, base: la.PPOConfig, *, width: int | None = None) -> la.PPOConfig:
        """`base` (a Table 3 column) with these settings; `width` overrides `self.width`."""
        changes = {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if getattr(self, f.name) is not None
        }
        if width is not None:
            changes["width"] = width
        try:
            cfg = dataclasses.replace(base, **changes)
            batch = cfg.n_envs * cfg.n_steps
            return dataclasses.replace(cfg, total_timesteps=cfg.n_updates * batch)
        except ValueError as e:
            raise ConfigError(f"agent: {e}") from None


@dataclasses.dataclass(frozen=True)
class EvalSettings:
    """Final evaluation on fresh seeds.

    **Fields:**

    - `n_seeds`: agent seeds per optimizer and environment (OPEN: 16 MinAtar and Ant,
      64 gridworld and ablations, 128 Deep Sea).
    - `seed`: the first evaluation seed; seeds `seed .. seed + n_seeds - 1` are disjoint
      from the meta-training seeds (which derive from the run's `seed` through ES keys).
    - `baselines`: the tuned hand-designed optimizers to compare with (`adam`, `rmsprop`,
      `lion`; tuned per environment, OPEN Appendix C.2).
    - `seed_group`: seeds per compiled program (`0`: all in one). With `k > 0` every
      evaluation runs its seeds `k` at a time, each group a stage of its own, so a killed
      run resumed with `lorl resume` repeats at most one group (a paper-budget MinAtar
      seed is minutes on a CPU); the results equal an uninterrupted run with the same
      `seed_group`.
    """

    n_seeds: int = 16  # OPEN Figure 2: 16 seeds
    seed: int = 10_000
    baselines: tuple[str, ...] = ("adam", "rmsprop", "lion")
    seed_group: int = 0

    def __post_init__(self):
        if isinstance(self.seed_group, bool) or self.seed_group < 0:
            raise ValueError(f"evaluation.seed_group must be >= 0, got {self.seed_group}")

    def seeds(self) -> list[int]:
        return list(range(self.seed, self.seed + self.n_seeds))


# --------------------------------------------------------------------------- validation


def check_population(population_size: int) -> None:
    """[`lorl.runs.ConfigError`][] unless the ES population is even and divisible by
    the number of devices (it is sharded over them)."""
    if isinstance(population_size, bool) or population_size < 2 or population_size % 2:
        raise ConfigError(
            f"es.population_size must be even and >= 2 (antithetic +eps/-eps pairs), got "
            f"{population_size}"
        )
    from ..sharding import check_divisible

    check_divisible(population_size, "es.population_size")


def check_baselines(baselines: Sequence[str], envs: Sequence[str]) -> None:
    """[`lorl.runs.ConfigError`][] for an unknown baseline or one without tuned values for
    an environment (OPEN Appendix C.2 tunes Adam only in the gridworld)."""
    tables = {"adam": lo.baselines.ADAM, "rmsprop": lo.baselines.RMSPROP, "lion": lo.baselines.LION}
    for b in baselines:
        if b not in tables:
            raise ConfigError(f"unknown baseline {b!r}; available: {', '.join(tables)}")
        for env in envs:
            key = preset_key(env)
            if key not in tables[b]:
                raise ConfigError(
                    f"baseline {b!r} has no tuned values for {env!r} (OPEN Appendix C.2); "
                    f"tuned for: {', '.join(tables[b])}"
                )


def preset_key(env: str) -> str:
    """The key of `env` in the tuned-baseline tables."""
    if env in MINATAR or env == "ant":
        return env
    return "gridworld"


def require_brax() -> None:
    """[`lorl.runs.ConfigError`][] before compute if Brax (needed for Ant) is missing."""
    import importlib.util

    if importlib.util.find_spec("brax") is None:
        raise ConfigError(
            "Ant needs Brax, which is not installed. Install the optional extra: "
            "pip install './packages/lorl[brax]' (or pip install 'lorl-agents[brax]')"
        )


# --------------------------------------------------------------------------- optimizers

#: Learned-optimizer kinds and their `lorl_optim.OPEN` flags (OPEN Sections 5, 7.1, 7.2).
OPEN_VARIANTS: dict[str, dict[str, Any]] = {  # OPEN keyword arguments (feature flags)
    "open": {},
    "no_features": {"no_features": True},
    "no_training_proportion": {"use_training_proportion": False},
    "no_batch_proportion": {"use_batch_proportion": False},
    "no_layer_proportion": {"use_layer_proportion": False},
    "no_dormancy": {"use_dormancy": False},
    "no_stochasticity": {"use_stochasticity": False},
    "separated": {"separated": True},
    "separated_no_stochasticity": {"separated": True, "use_stochasticity": False},
}
LEARNED = (*OPEN_VARIANTS, "optim4rl")


def make_learned(kind: str, *, env: str = "breakout", larger: bool = False) -> Any:
    """A learned optimizer of `kind` with zero meta-parameters (the OPEN reference's ES
    initialisation, spec agents_and_meta.md section 4).

    `optim4rl` is Optim4RL at learning rate `0.1 x LR_Adam` of `env` (OPEN Appendix C.2).
    `larger=True` gives OPEN's multi-task size (F = 16, H = 32; Appendix B.5).
    """
    import jax

    key = jax.random.key(0)
    if kind == "optim4rl":
        lr = lo.baselines.optim4rl_learning_rate(preset_key(env))
        opt = lo.Optim4RL(lr, key=key)
    elif kind in OPEN_VARIANTS:
        sizes = {"hidden_size": 16, "mlp_width": 32} if larger else {}
        opt = lo.OPEN(**sizes, **OPEN_VARIANTS[kind], key=key)
    else:
        raise ConfigError(f"unknown learned optimizer {kind!r}; available: {', '.join(LEARNED)}")
    return lm.zero_meta_parameters(opt)


def baseline(name: str, env: str, total_steps: int) -> Any:
    """The tuned optax baseline `name` for `env` (OPEN Appendix C.2), with its learning
    rate annealed over `total_steps` optimizer steps where the paper anneals."""
    fns = {"adam": lo.baselines.adam, "rmsprop": lo.baselines.rmsprop, "lion": lo.baselines.lion}
    return fns[name](preset_key(env), total_steps=total_steps)


# --------------------------------------------------------------------------- ES stage


def es_trainer(config: lm.ESConfig, tasks: Any) -> lm.ESTrainer:
    """An [`lorl_meta.ESTrainer`][] whose population is sharded over all devices
    (`lorl.sharding.local_mesh`) when there is more than one; on one device, no mesh (the
    unsharded program)."""
    import jax

    if jax.device_count() > 1:
        from ..sharding import local_mesh

        return lm.ESTrainer(config, tasks, mesh=local_mesh())
    return lm.ESTrainer(config, tasks)


def es_stage(
    run_dir: RunDir,
    stage: str,
    trainer: lm.ESTrainer,
    optimizer: Any,
    *,
    seed: int,
    gen_used_paper: int | None = None,
) -> dict[str, Any]:
    """Meta-train `optimizer` with `trainer` as stage `stage` of `run_dir`.

    Checkpoints go to `run_dir.checkpoint_dir(stage)` (a killed run resumes from the last
    one), metrics to `run_dir.metrics_dir(stage)`, the selected meta-parameters to
    `optimizers/<stage>.eqx`. Returns the stage's stored summary.
    """

    def compute() -> dict[str, Any]:
        result = trainer.train(
            optimizer,
            seed=seed,
            checkpoint_dir=run_dir.checkpoint_dir(stage),
            log_dir=run_dir.metrics_dir(stage),
            progress=True,
        )
        path = optimizer_path(run_dir, stage)
        lo.save_meta_parameters(path, result.optimizer)
        return {
            "meta_parameters": str(path.relative_to(run_dir.path)),
            "n_generations": trainer.config.n_generations,
            "best_generation": result.best_generation,
            "best_validation_score": result.best_score,
            "paper_gen_used": gen_used_paper,
            "history": result.history,
        }

    return run_dir.stage(stage, compute)


def optimizer_path(run_dir: RunDir, stage: str) -> pathlib.Path:
    folder = run_dir.path / "optimizers"
    folder.mkdir(exist_ok=True)
    return folder / f"{stage}.eqx"


def load_trained(run_dir: RunDir, stage: str, like: Any) -> Any:
    """The meta-parameters stage `stage` selected, loaded into `like`'s structure."""
    return lo.load_meta_parameters(optimizer_path(run_dir, stage), like)


# --------------------------------------------------------------------------- evaluation


def evaluate_stage(
    run_dir: RunDir,
    stage: str,
    optimizer: Any,
    env: str,
    *,
    seeds: Sequence[int],
    agent: la.PPOConfig,
    label: str,
    seed_group: int = 0,
) -> dict[str, Any]:
    """Train fresh PPO agents with `optimizer` on `env` for every seed (through
    `lorl.evaluation.evaluate`; on a level distribution one level is drawn per seed), as
    a stage of `run_dir`.

    With `seed_group = k > 0` the seeds run `k` at a time, each group stored as a stage
    of its own (`<stage>-seeds-<first>-<last>`) before the whole is stored as `stage`: a
    killed run resumed repeats only the group it was in.

    Returns `{"final_returns": [n_seeds], "steps": [T], "returns": [n_seeds][T],
    "first_nonfinite_update": [n_seeds]}`; a run whose optimizer produced NaN/inf
    updates has final return NaN (reported, never averaged).
    """
    seeds = list(seeds)

    def one(group: list[int]) -> dict[str, Any]:
        from ..evaluation import evaluate

        result = evaluate(
            optimizer, env, seeds=group, agent=agent, label=label, on_nonfinite="record"
        )
        return eval_record(
            result.final_returns, result.steps, result.returns, result.first_nonfinite_update
        )

    def compute() -> dict[str, Any]:
        if seed_group < 1 or seed_group >= len(seeds):
            return one(seeds)
        parts = []
        for i in range(0, len(seeds), seed_group):
            group = seeds[i : i + seed_group]
            name = f"{stage}-seeds-{group[0]}-{group[-1]}"
            parts.append(run_dir.stage(name, lambda g=group: one(g)))
        return concat_records(parts)

    return run_dir.stage(stage, compute)


def _stored_array(x: Any, dtype: Any) -> np.ndarray:
    """An array from its stored (JSON) form, where NaN and infinities are strings."""
    a = np.asarray(x, dtype=object)
    for text, value in (("nan", np.nan), ("inf", np.inf), ("-inf", -np.inf)):
        a = np.where(a == text, value, a)
    return a.astype(dtype)


def concat_records(parts: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """One evaluation record from the records of seed groups (in order), as
    [`eval_record`][] stores them; every part must have the same update steps."""
    steps = [np.asarray(p["steps"], np.int64) for p in parts]
    if any(not np.array_equal(s, steps[0]) for s in steps[1:]):
        raise ValueError("seed groups of one evaluation ran different numbers of updates")

    def cat(key: str, dtype: Any) -> np.ndarray:
        return np.concatenate([_stored_array(p[key], dtype) for p in parts], axis=0)

    return {
        "final_returns": cat("final_returns", np.float64),
        "steps": steps[0],
        "returns": cat("returns", np.float64),
        "first_nonfinite_update": cat("first_nonfinite_update", np.int64),
    }


def eval_record(final: Any, steps: Any, returns: Any, first_nonfinite: Any) -> dict[str, Any]:
    """The stored form of an evaluation (diverged runs get final return NaN)."""
    first = np.asarray(first_nonfinite, np.int64)
    final = np.where(first >= 0, np.nan, np.asarray(final, np.float64))
    return {
        "final_returns": final,
        "steps": np.asarray(steps, np.int64),
        "returns": np.asarray(returns, np.float64),
        "first_nonfinite_update": first,
    }


def train_seeds(
    optimizer: Any, env: Any, env_params: Any, agent: la.PPOConfig, seeds: Sequence[int]
) -> dict[str, Any]:
    """PPO with `optimizer` on `env`, one run per seed in one compiled program, for the
    evaluations `lorl.evaluation.evaluate` does not cover (Deep Sea of a chosen size) or
    that need more than returns (the dormancy of Figure 5). Run `i` uses
    `jax.random.key(seeds[i])`, as `evaluate` does.

    Returns the stored form of `eval_record` plus `"dormancy"`: the mean over layers
    of the tau = 0 dormant fraction at the last update, per seed.
    """
    import jax
    import jax.numpy as jnp

    ppo = la.PPO(agent)

    def one(seed: jax.Array) -> dict[str, jax.Array]:
        r = ppo.train(env, env_params, optimizer, key=jax.random.key(seed))
        return {
            "final": r.final_return,
            "curve": r.metrics["last_return"],
            "bad": r.first_nonfinite_update,
            "dormancy": jnp.mean(r.metrics["dormancy"][-1]),
        }

    with jax.numpy_dtype_promotion("standard"):
        out = jax.jit(jax.vmap(one))(jnp.asarray(list(seeds), jnp.uint32))
    steps = np.arange(1, agent.n_updates + 1) * agent.batch_size
    record = eval_record(out["final"], steps, out["curve"], out["bad"])
    record["dormancy"] = np.asarray(out["dormancy"], np.float64)
    return record


# --------------------------------------------------------------------------- reporting


def finite_scores(values: Sequence[Any]) -> np.ndarray:
    """Final returns as float64 (JSON's `"nan"` strings back to NaN)."""
    return np.asarray([float(v) for v in values], np.float64)


def interval_table(
    scores: Mapping[str, np.ndarray],
    *,
    metrics: Sequence[str] = ("iqm", "mean"),
    seed: int = 0,
    precision: int = 3,
) -> tuple[str, dict[str, Any]]:
    """Markdown table and aggregates of `scores` (`name -> (n_runs,)` or `(n_runs,
    n_tasks)`). Algorithms with non-finite scores are listed below the table, not
    averaged away."""
    from .. import stats

    good = {k: v for k, v in scores.items() if np.all(np.isfinite(v)) and len(v) >= 2}
    bad = [k for k in scores if k not in good]
    if not good:
        return "_no finite scores to aggregate_\n", {}
    aggs = stats.aggregate(good, metrics=metrics, seed=seed)
    text = stats.markdown_table(aggs, metrics=metrics, precision=precision)
    if bad:
        text += f"\nNot aggregated (diverged runs or fewer than 2 seeds): {', '.join(bad)}.\n"
    return text, aggs


def curves_plot(
    curves: Mapping[str, Mapping[str, Any]], path: pathlib.Path, title: str
) -> str | None:
    """Return-curve PNG (mean with standard errors) from stored evaluation results;
    the Markdown image line, or `None` if there is nothing to plot."""
    from .. import plots

    data = {}
    for name, r in curves.items():
        returns = np.asarray(r["returns"], np.float64)
        if returns.ndim == 2 and returns.shape[1] > 0:
            data[name] = (np.asarray(r["steps"], np.float64), returns)
    if not data:
        return None
    try:
        plots.return_curves(data, path, title=title)
    except Exception as e:  # a plot must not cost the report (tables are the record)
        return f"(plot {path.name} failed: {type(e).__name__}: {e})"
    return f"![{title}](plots/{path.name})"


def intervals_plot(aggs: Mapping[str, Any], path: pathlib.Path) -> str | None:
    from .. import plots

    if not aggs:
        return None
    try:
        plots.interval_estimates(aggs, path)
    except Exception as e:  # a plot must not cost the report (tables are the record)
        return f"(plot {path.name} failed: {type(e).__name__}: {e})"
    return f"![interval estimates](plots/{path.name})"


def es_table(es: Mapping[str, Mapping[str, Any]]) -> str:
    """Markdown table of the ES runs: generations, selected generation (and the paper's
    "Gen Used", OPEN Table 7), validation score, last population mean."""
    lines = [
        "| optimizer | generations | selected generation | paper: gen used (Table 7) | "
        "validation score | last mean fitness |",
        "|---|--:|--:|--:|--:|--:|",
    ]
    for name, r in es.items():
        hist = r.get("history") or [{}]
        last = hist[-1].get("mean_score", float("nan"))
        paper = r.get("paper_gen_used")
        lines.append(
            f"| {name} | {r['n_generations']} | {r['best_generation']} | "
            f"{'–' if paper is None else paper} | {fmt(r['best_validation_score'])} | "
            f"{fmt(last)} |"
        )
    return "\n".join(lines) + "\n"


def fmt(x: Any, precision: int = 3) -> str:
    try:
        value = float(x)
    except (TypeError, ValueError):
        return str(x)
    if math.isnan(value):
        return "nan"
    return f"{value:.{precision}f}"


def header(run_dir: RunDir, title: str, reproduces: str) -> list[str]:
    return [
        f"# {title}",
        "",
        f"Reproduces: {reproduces}. Run `{run_dir.path.name}`, scale `{run_dir.scale}`, "
        f"overrides `{' '.join(run_dir.manifest.get('overrides', [])) or '(none)'}`.",
        "",
    ]


def per_env_block(
    run_dir: RunDir,
    evaluation: Mapping[str, Mapping[str, Any]],
    *,
    paper: Mapping[str, str] | None = None,
    plot_prefix: str = "curves",
) -> list[str]:
    """Per environment: IQM/mean table of final returns with 95% CIs, the paper's
    statement beside it, and the return-curve plot."""
    out: list[str] = []
    for env, per_opt in evaluation.items():
        scores = {name: finite_scores(r["final_returns"]) for name, r in per_opt.items()}
        table, _ = interval_table(scores)
        out += [f"### {env}", "", "Final return, IQM and mean with 95% stratified bootstrap CIs:"]
        out += ["", table]
        if paper and env in paper:
            out += [f"Paper: {paper[env]}", ""]
        img = curves_plot(
            per_opt, run_dir.plots_dir / f"{plot_prefix}-{stage_name(env)}.png", f"{env}"
        )
        if img:
            out += [img, ""]
    return out


ProgressFn = Callable[[str], None]
