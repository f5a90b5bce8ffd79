"""`evaluate`: train fresh agents with an optimizer on many seeds, vmapped and sharded."""

import dataclasses
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array

import lorl_agents as la
import lorl_gridworlds as lg

from ..runs import ConfigError
from ..sharding import local_mesh, sharded_vmap
from ._envs import EnvSpec, default_agent_config, env_spec, make
from ._optimizers import _with_lr, resolve_optimizer
from ._tuning import (
    DEFAULT_TUNING_SEEDS,
    TUNING_SEED_OFFSET,
    LearningRateSearch,
    TuningResult,
    best_learning_rate,
)

#: Folded into a seed's key to draw its level on OPEN's level distributions (so the level
#: and the agent's own randomness are independent).
LEVEL_KEY_SALT = 0x1E7E1


@dataclasses.dataclass(frozen=True)
class EvaluationResult:
    """What [`lorl.evaluation.evaluate`][] returns: one optimizer on one environment.

    **Fields:**

    - `env`: the canonical environment name.
    - `optimizer`: a label (`"adam (tuned)"`, `"OPEN (breakout)"`, `"Optim4RL"`, ...).
    - `agent`: `"a2c"` or `"ppo"`.
    - `seeds`: the seeds, one training run each (`jax.random.key(seed)`).
    - `final_returns`: `(n_seeds,)`, the final return as the agent's paper defines it
      (A2C/Optim4RL: mean episode return over the last 20 updates; PPO/OPEN: mean over
      environments of each one's last episode return at the end of training).
    - `steps`: `(T,)` environment steps after each update.
    - `returns`: `(n_seeds, T)` the return curve: A2C, the average return of the episodes
      finished in each update (NaN where none finished); PPO, the mean over environments
      of each one's last finished episode return.
    - `first_nonfinite_update`: `(n_seeds,)`, the first update whose optimizer step was
      NaN/inf (`-1`: none); only non-negative with `on_nonfinite="record"`.
    - `timesteps`: environment steps per run.
    - `seconds`: wall time of the evaluation, including compilation.
    - `agent_config`: the agent configuration as a dict.
    - `tuning`: for a baseline whose learning rate was picked by grid search (see
      [`lorl.evaluation.evaluate`][]), the search as a dict
      ([`lorl.evaluation.TuningResult.to_dict`][]); `None` otherwise.
    """

    env: str
    optimizer: str
    agent: str
    seeds: tuple[int, ...]
    final_returns: np.ndarray
    steps: np.ndarray
    returns: np.ndarray
    first_nonfinite_update: np.ndarray
    timesteps: int
    seconds: float
    agent_config: dict[str, Any]
    tuning: dict[str, Any] | None = None

    @property
    def mean(self) -> float:
        """Mean final return over seeds (NaN-skipping)."""
        return float(np.nanmean(self.final_returns))

    @property
    def stderr(self) -> float:
        """Standard error of the mean final return (0 for one seed)."""
        x = self.final_returns[np.isfinite(self.final_returns)]
        return float(np.std(x, ddof=1) / np.sqrt(len(x))) if len(x) > 1 else 0.0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-convertible dict (arrays become lists; `from_dict` reverses it)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "EvaluationResult":
        """Rebuild from [`lorl.evaluation.EvaluationResult.to_dict`][] (also after a JSON
        round trip, where NaN was stored as the string `"nan"`)."""

        def arr(x: Any, dtype: Any = np.float64) -> np.ndarray:
            a = np.asarray(x, dtype=object)
            a = np.where(a == "nan", np.nan, a)
            a = np.where(a == "inf", np.inf, a)
            a = np.where(a == "-inf", -np.inf, a)
            return a.astype(dtype)

        return cls(
            env=data["env"],
            optimizer=data["optimizer"],
            agent=data["agent"],
            seeds=tuple(int(s) for s in data["seeds"]),
            final_returns=arr(data["final_returns"]),
            steps=arr(data["steps"], np.int64),
            returns=arr(data["returns"]),
            first_nonfinite_update=arr(data["first_nonfinite_update"], np.int64),
            timesteps=int(data["timesteps"]),
            seconds=float(data["seconds"]),
            agent_config=dict(data["agent_config"]),
            tuning=dict(data["tuning"]) if data.get("tuning") is not None else None,
        )


def _seed_list(seeds: int | Iterable[int]) -> tuple[int, ...]:
    if isinstance(seeds, (int, np.integer)) and not isinstance(seeds, bool):
        if seeds < 1:
            raise ConfigError(f"seeds must be >= 1 (a count) or a list of seeds, got {seeds}")
        return tuple(range(int(seeds)))
    out = tuple(int(s) for s in seeds)  # pyright: ignore[reportGeneralTypeIssues]
    if not out:
        raise ConfigError("seeds is empty")
    if any(s < 0 or s >= 2**32 for s in out):
        raise ConfigError("seeds must lie in [0, 2**32)")
    return out


def agent_config_for(
    env: str,
    agent: Literal["a2c", "ppo"] | la.A2CConfig | la.PPOConfig | None = None,
    timesteps: int | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> tuple[EnvSpec, Any]:
    """The environment spec and the agent configuration `evaluate` would use.

    **Arguments:**

    - `env`, `agent`, `timesteps`: as for [`lorl.evaluation.evaluate`][].
    - `overrides`: agent-config fields to replace (e.g. `{"gamma": 0.99, "n_envs": 64}`).

    **Returns:**

    `(spec, config)`: an [`lorl.evaluation.EnvSpec`][] and an `A2CConfig` or `PPOConfig`.
    """
    spec = env_spec(env)
    if agent is None or isinstance(agent, str):
        name = spec.agent if agent is None else agent.lower()
        if name not in ("a2c", "ppo"):
            raise ConfigError(f"agent must be 'a2c' or 'ppo', got {agent!r}")
        config = default_agent_config(spec, name)
    elif isinstance(agent, (la.A2CConfig, la.PPOConfig)):
        config = agent
    else:
        raise ConfigError(f"agent must be 'a2c', 'ppo', an A2CConfig or a PPOConfig; got {agent!r}")
    if isinstance(config, la.A2CConfig) and spec.family != "lpg":
        raise ConfigError(f"A2C runs on the Optim4RL gridworlds only; {spec.name!r} needs PPO")
    changes = dict(overrides or {})
    if timesteps is not None:
        changes["total_timesteps"] = int(timesteps)
    if changes:
        names = {f.name for f in dataclasses.fields(config)}
        bad = sorted(set(changes) - names)
        if bad:
            raise ConfigError(f"{type(config).__name__} has no field(s) {bad}")
        try:
            config = dataclasses.replace(config, **changes)
        except (TypeError, ValueError) as e:
            raise ConfigError(f"agent config for {spec.name!r}: {e}") from None
    return spec, config


def _vmap_runner(fn: Any, n: int) -> tuple[Any, int]:
    """A jitted vmap of `fn` sharded over every device of the job (lorl.sharding), and the
    padded batch size (a multiple of the global device count, which is what
    `sharded_vmap` splits over, also in a multi-host run)."""
    n_dev = local_mesh().size
    padded = -(-n // n_dev) * n_dev
    return sharded_vmap(fn), padded


def _trainer(spec: EnvSpec, config: Any, env_params: Any, make_opt: Any) -> tuple[Any, Any]:
    """The learner and `run_one(seed, hyper) -> outputs`: one training run with the
    optimizer `make_opt(hyper)` (built inside the traced function, so `hyper` may be a
    traced learning rate)."""
    env_obj, default_params = make(spec)
    learner = la.A2C(config) if isinstance(config, la.A2CConfig) else la.PPO(config)
    per_seed_level = spec.family == "levels" and env_params is None
    fixed_params = default_params if env_params is None else env_params
    curve_name = learner.curve_metric

    def run_one(seed: Array, hyper: Array) -> dict[str, Array]:
        key = jax.random.key(seed)
        params = fixed_params
        if per_seed_level:
            params = lg.sample_level(jax.random.fold_in(key, LEVEL_KEY_SALT), spec.name)
        result = learner.train(env_obj, params, make_opt(hyper), key=key)
        return {
            "final_return": result.final_return,
            "curve": result.metrics[curve_name],
            "first_nonfinite_update": result.first_nonfinite_update,
        }

    return learner, run_one


def _run_batch(run_one: Any, seeds: Sequence[int], hypers: Sequence[float]) -> dict[str, Any]:
    """`run_one` over `(seeds[i], hypers[i])` pairs in one sharded program (padded to a
    multiple of the device count; the padding is discarded); NumPy outputs."""
    n = len(seeds)
    runner, padded = _vmap_runner(run_one, n)
    seed_batch = list(seeds) + [seeds[-1]] * (padded - n)
    hyper_batch = list(hypers) + [hypers[-1]] * (padded - n)
    with jax.numpy_dtype_promotion("standard"):
        out = runner(
            jnp.asarray(seed_batch, dtype=jnp.uint32),
            jnp.asarray(hyper_batch, dtype=jnp.float32),
        )
    return jax.tree.map(lambda x: np.asarray(x)[:n], out)


def _tuning_seed_list(seeds: int | Sequence[int]) -> tuple[int, ...]:
    if isinstance(seeds, (int, np.integer)) and not isinstance(seeds, bool):
        if seeds < 1:
            raise ConfigError(f"tuning seeds must be >= 1 (a count) or a list, got {seeds}")
        return tuple(TUNING_SEED_OFFSET + i for i in range(int(seeds)))
    return _seed_list(seeds)


def tune_learning_rate(
    optimizer: str | LearningRateSearch,
    env: str,
    *,
    seeds: int | Sequence[int] = DEFAULT_TUNING_SEEDS,
    grid: Sequence[float] | None = None,
    agent: Literal["a2c", "ppo"] | la.A2CConfig | la.PPOConfig | None = None,
    timesteps: int | None = None,
    agent_overrides: Mapping[str, Any] | None = None,
    env_params: Any = None,
    progress: bool = False,
) -> TuningResult:
    """Pick a baseline's learning rate by grid search, as the papers tune their baselines:
    one training run per learning rate and tuning seed (all in one compiled program,
    vmapped and sharded), the best mean final return wins.

    **Arguments:**

    - `optimizer`: `"adam"`, `"rmsprop"`, `"sgd"`, `"lion"` (optax defaults besides the
      learning rate) or a [`lorl.evaluation.LearningRateSearch`][].
    - `env`, `agent`, `timesteps`, `agent_overrides`, `env_params`: as for
      [`lorl.evaluation.evaluate`][] (tune at the budget you evaluate at).
    - `seeds`: a count `n` (seeds `TUNING_SEED_OFFSET + 0..n-1`, disjoint from the
      evaluation seeds) or the seeds themselves. Default 4 (OPEN Appendix C.2).
    - `grid`: the learning rates; default the optimizer's search grid (Optim4RL Appendix
      C.3: `3e-2 ... 1e-4`).
    - `progress`: show a tqdm bar.

    **Returns:**

    A [`lorl.evaluation.TuningResult`][].

    **Raises:**

    `lorl.runs.ConfigError` before any compute for bad names, grids or configs; after
    the runs if every learning rate diverged.
    """
    if isinstance(optimizer, str):
        search = LearningRateSearch(optimizer.strip().lower().removesuffix(":tuned"))
    elif isinstance(optimizer, LearningRateSearch):
        search = optimizer
    else:
        raise ConfigError(
            f"optimizer must be a name or a LearningRateSearch, got {type(optimizer).__name__}"
        )
    if grid is not None:
        search = LearningRateSearch(search.kind, tuple(float(lr) for lr in grid))
    seed_list = _tuning_seed_list(seeds)
    spec, config = agent_config_for(env, agent, timesteps, agent_overrides)
    _, run_one = _trainer(spec, config, env_params, lambda lr: _with_lr(search.kind, lr))
    pairs = [(seed, lr) for lr in search.grid for seed in seed_list]
    from tqdm.auto import tqdm

    start = time.perf_counter()
    with tqdm(
        total=1,
        desc=f"tuning {search.kind} on {spec.name} ({len(search.grid)} lrs x "
        f"{len(seed_list)} seeds)",
        disable=not progress,
        leave=False,
    ) as bar:
        out = _run_batch(run_one, [p[0] for p in pairs], [p[1] for p in pairs])
        bar.update(1)
    final = out["final_return"].astype(np.float64)
    final = np.where(out["first_nonfinite_update"] >= 0, np.nan, final)
    final = final.reshape(len(search.grid), len(seed_list))
    return TuningResult(
        kind=search.kind,
        env=spec.name,
        grid=search.grid,
        seeds=seed_list,
        final_returns=final,
        best_lr=best_learning_rate(search.grid, final),
        timesteps=int(config.steps_per_run),
        seconds=time.perf_counter() - start,
    )


def evaluate(
    optimizer: Any,
    env: str,
    *,
    seeds: int | Sequence[int],
    agent: Literal["a2c", "ppo"] | la.A2CConfig | la.PPOConfig | None = None,
    timesteps: int | None = None,
    agent_overrides: Mapping[str, Any] | None = None,
    env_params: Any = None,
    label: str | None = None,
    on_nonfinite: Literal["raise", "record"] = "raise",
    tuning_seeds: int | Sequence[int] = DEFAULT_TUNING_SEEDS,
    progress: bool = False,
) -> EvaluationResult:
    """Train a fresh agent per seed with `optimizer` on `env`; all seeds in one compiled
    program, vmapped and sharded over the local devices.

    **Arguments:**

    - `optimizer`: `"adam"`, `"rmsprop"`, `"lion"` (the papers' tuned baselines for `env`:
      OPEN Appendix C.2's values for PPO environments, annealed as OPEN does; for A2C on
      the Optim4RL gridworlds, Adam and RMSProp tuned here as Optim4RL Appendix C.3 does,
      by a grid search over `3e-2 ... 1e-4` at this budget on `tuning_seeds`);
      `"adam:tuned"` etc. (that grid search on any environment); `"adam:3e-4"`,
      `"rmsprop:1e-3"`, `"sgd:0.01"`, `"lion:1e-4"` (that constant learning rate);
      `"open:<name>"` (published OPEN weights, `lorl_optim.pretrained_open_names()`); a
      path to a learned optimizer saved with [`lorl.evaluation.save_optimizer`][] (or a
      run folder holding one); a `lorl_optim` learned optimizer; or any optax
      transformation.
    - `env`: an Optim4RL gridworld (`"small_dense_short"`, ...; A2C by default), one of
      OPEN's level distributions (`"all"`, `"rand_dense"`, ..., `"labyrinth"`; PPO, one
      level drawn per seed), a MinAtar game (`"breakout"` or `"Breakout-MinAtar"`, ...),
      another gymnax name (`"CartPole-v1"`, `"DeepSea-bsuite"`), or a Brax task (`"ant"`,
      ...; needs `lorl[brax]`).
    - `seeds`: a number `n` (seeds `0..n-1`) or the seeds themselves; run `i` uses
      `jax.random.key(seeds[i])`, exactly as `agent.train(env, params, opt, key=...)`.
      With several devices the batch is padded to a multiple of the device count (the
      last seed repeated; the extra runs are discarded), so any number of seeds works.
    - `agent`: `"a2c"`, `"ppo"`, or a full `A2CConfig` / `PPOConfig`; default: A2C with
      Optim4RL's settings on its gridworlds, PPO with OPEN's settings elsewhere
      ([`lorl.evaluation.agent_config_for`][]).
    - `timesteps`: environment steps per run (default: the paper's budget).
    - `agent_overrides`: other agent-config fields to replace, e.g. `{"n_envs": 64}`.
    - `env_params`: environment parameters (a level) for every seed instead of the default
      (or, on a level distribution, instead of one drawn level per seed).
    - `label`: the optimizer's label in results and plots (default: derived).
    - `on_nonfinite`: `"raise"` a `lorl_agents.NonFiniteUpdateError` naming the env,
      optimizer and seeds whose optimizer produced NaN/inf updates, or `"record"` them in
      `first_nonfinite_update` and return.
    - `tuning_seeds`: for a grid-searched baseline, the tuning runs per learning rate: a
      count (seeds disjoint from the evaluation seeds) or the seeds (they must not
      overlap `seeds`). See [`lorl.evaluation.tune_learning_rate`][]; the search is
      recorded in the result's `tuning`.
    - `progress`: show a tqdm bar (one step: the whole compiled run).

    **Returns:**

    An [`lorl.evaluation.EvaluationResult`][].

    **Raises:**

    [`lorl.runs.ConfigError`][] (before any compute) for an unknown environment or
    optimizer name (naming the closest), a Brax task without Brax installed, or an agent
    configuration that does not fit; `lorl_agents.NonFiniteUpdateError` as above.
    """
    seed_list = _seed_list(seeds)
    if on_nonfinite not in ("raise", "record"):
        raise ConfigError(f"on_nonfinite must be 'raise' or 'record', got {on_nonfinite!r}")
    spec, config = agent_config_for(env, agent, timesteps, agent_overrides)
    opt, default_label = resolve_optimizer(optimizer, spec, config)
    tuning = None
    if isinstance(opt, LearningRateSearch):
        tuning_list = _tuning_seed_list(tuning_seeds)
        if set(tuning_list) & set(seed_list):
            raise ConfigError(
                f"tuning seeds {sorted(set(tuning_list) & set(seed_list))} are also "
                "evaluation seeds; a baseline must not be tuned on its test runs"
            )
        found = tune_learning_rate(
            opt, spec.name, seeds=tuning_list, agent=config, env_params=env_params,
            progress=progress,
        )  # fmt: skip
        tuning = found.to_dict()
        opt = _with_lr(opt.kind, found.best_lr)
        default_label = f"{found.kind} (lr {found.best_lr:g}, tuned)"
    label = label or default_label
    learner, run_one = _trainer(spec, config, env_params, lambda _: opt)
    from tqdm.auto import tqdm

    start = time.perf_counter()
    with tqdm(
        total=1,
        desc=f"{label} on {spec.name} ({len(seed_list)} seeds)",
        disable=not progress,
        leave=False,
    ) as bar:
        out = _run_batch(run_one, seed_list, [0.0] * len(seed_list))
        bar.update(1)
    seconds = time.perf_counter() - start
    first = out["first_nonfinite_update"].astype(np.int64)
    if on_nonfinite == "raise" and np.any(first >= 0):
        bad = [f"seed {seed_list[i]} (update {int(first[i])})" for i in np.flatnonzero(first >= 0)]
        raise la.NonFiniteUpdateError(
            f"{label} produced NaN/inf updates on {spec.name}: {', '.join(bad[:8])}"
            f"{' ...' if len(bad) > 8 else ''}. Lower the learning rate, or pass "
            "on_nonfinite='record' to keep the results."
        )
    per_update = config.n_envs * config.n_steps
    n_updates = out["curve"].shape[-1]
    return EvaluationResult(
        env=spec.name,
        optimizer=label,
        agent=learner.name,
        seeds=seed_list,
        final_returns=out["final_return"].astype(np.float64),
        steps=(np.arange(1, n_updates + 1) * per_update).astype(np.int64),
        returns=out["curve"].astype(np.float64),
        first_nonfinite_update=first,
        timesteps=int(config.steps_per_run),
        seconds=seconds,
        agent_config=dataclasses.asdict(config),
        tuning=tuning,
    )
