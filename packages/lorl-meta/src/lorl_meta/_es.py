"""Evolution strategies for learned optimizers (OPEN, Goldie et al. 2024, Section 5.2 and
Appendix C.3) on evosax's `Open_ES`."""

import dataclasses
import pathlib
from collections.abc import Callable, Sequence
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from evosax.algorithms import Open_ES
from jax.sharding import Mesh, NamedSharding
from jaxtyping import Array, Float, Int, PRNGKeyArray, PyTree

from ._checkpoint import describe_static, describe_tree
from ._keys import raw_key
from ._loop import check_seed, process_local, scalar, train_loop
from ._shaping import centered_ranks, pairwise_fitness
from ._sharding import BatchSharding, as_batch_sharding, check_divisible

_STRATEGIES: dict[Any, Open_ES] = {}


@dataclasses.dataclass(frozen=True)
class ESConfig:
    """Hyperparameters of OpenAI-ES meta-training (all static). Defaults: the OPEN paper's
    gridworld column (Goldie et al. 2024, Appendix C.3, Table 7).

    **Arguments:**

    - `n_generations`: generations of the run.
    - `population_size`: members per generation, even (antithetic pairs; Table 7: 64).
    - `sigma_init`, `sigma_decay`: perturbation scale and its per-generation decay
      (Table 7, gridworld: 0.01, 0.999).
    - `lr`, `lr_decay`: ES learning rate and its per-generation decay (Table 7,
      gridworld: 0.005, 0.990). The mean is updated by Adam (the default optimizer of the
      evosax OpenES the OPEN reference code used).
    - `n_rollouts`: inner runs per member and task, averaged (Table 7: 1).
    - `eval_every`: validate the ES mean every this many generations (Table 7,
      gridworld: 9).
    - `n_validation`: seeds (and levels, for a level distribution) of the validation set
      (not stated in the paper; "a small in-distribution validation set", Appendix C.3).
    - `checkpoint_every`: checkpoint every this many generations.
    """

    n_generations: int
    population_size: int = 64  # OPEN Table 7 (gridworld, MinAtar, multi-task)
    sigma_init: float = 0.01  # OPEN Table 7, gridworld
    sigma_decay: float = 0.999  # OPEN Table 7, gridworld
    lr: float = 0.005  # OPEN Table 7, gridworld
    lr_decay: float = 0.990  # OPEN Table 7, gridworld
    n_rollouts: int = 1  # OPEN Table 7
    eval_every: int = 9  # OPEN Table 7, gridworld
    n_validation: int = 8  # not in the paper (Appendix C.3: "small validation set")
    checkpoint_every: int = 9

    def __post_init__(self):
        for name in (
            "n_generations",
            "population_size",
            "n_rollouts",
            "eval_every",
            "n_validation",
            "checkpoint_every",
        ):
            value = getattr(self, name)
            if not isinstance(value, int | np.integer) or isinstance(value, bool) or value < 1:
                raise ValueError(f"ESConfig.{name} must be an integer >= 1, got {value!r}")
        if self.population_size % 2 != 0 or self.population_size < 2:
            raise ValueError(
                f"ESConfig.population_size must be even and >= 2 for antithetic sampling "
                f"(members come in +eps/-eps pairs), got {self.population_size}"
            )
        for name in ("sigma_init", "lr"):
            if not getattr(self, name) > 0:
                raise ValueError(f"ESConfig.{name} must be > 0, got {getattr(self, name)}")
        for name in ("sigma_decay", "lr_decay"):
            if not 0 < getattr(self, name) <= 1:
                raise ValueError(f"ESConfig.{name} must lie in (0, 1], got {getattr(self, name)}")


@dataclasses.dataclass(frozen=True, eq=False)
class ESTask:
    """One task of ES meta-training.

    **Arguments:**

    - `name`: a label (used in metric names).
    - `fitness_fn`: `fitness_fn(optimizer, env_params, key) -> scalar`, the final return
      of a full inner training run with `optimizer` (pure and vmappable; see
      [`lorl_meta.ppo_fitness`][], which also takes an A2C agent). Return NaN for a run
      that diverged: such members rank last.
    - `env_params`: the task's fixed environment parameters (ignored with a sampler).
    - `level_sampler`: `level_sampler(key) -> env_params` for a task distribution: turns
      on antithetic task sampling (each antithetic pair is evaluated on one sampled level
      with one agent seed and compared pairwise; OPEN Section 5.2, after Jackson et al.).
      Only allowed as the single task of a run.
    - `normaliser`: the return of tuned Adam on this task; multi-task fitness averages
      `return / normaliser` over tasks before ranking (OPEN Section 5.2; e.g. breakout
      50.08, asterix 15.04, freeway 61.84, space_invaders 167.09).
    """

    name: str
    fitness_fn: Callable[[Any, Any, Array], Float[Array, ""]]
    env_params: Any = None
    level_sampler: Callable[[Array], Any] | None = None
    normaliser: float = 1.0

    def __post_init__(self):
        if not callable(self.fitness_fn):
            raise TypeError(f"ESTask {self.name!r}: fitness_fn must be callable")
        if self.level_sampler is not None and not callable(self.level_sampler):
            raise TypeError(f"ESTask {self.name!r}: level_sampler must be callable or None")
        if not (np.isfinite(self.normaliser) and self.normaliser != 0):
            raise ValueError(
                f"ESTask {self.name!r}: normaliser must be finite and non-zero, got "
                f"{self.normaliser}"
            )


def ppo_fitness(agent: Any, env: Any) -> Callable[[Any, Any, Array], Float[Array, ""]]:
    """A fitness function: the final return of `agent.train` (a `lorl_agents.PPO` or
    `lorl_agents.A2C`) on `env`, NaN if any update was non-finite.

    **Arguments:**

    - `agent`: the agent (its config fixes the inner budget).
    - `env`: a gymnax-interface environment.

    **Returns:**

    `fitness_fn(optimizer, env_params, key)`.
    """
    cfg = agent.config
    total = getattr(cfg, "total_timesteps", None)
    if total is not None and total != cfg.n_updates * cfg.n_envs * cfg.n_steps:
        raise ValueError(
            f"the agent's budget of {total} steps does not divide into updates of "
            f"n_envs * n_steps = {cfg.n_envs * cfg.n_steps} steps; use a multiple, e.g. "
            f"{cfg.n_updates * cfg.n_envs * cfg.n_steps}"
        )

    def fitness(optimizer: Any, env_params: Any, key: Array) -> Float[Array, ""]:
        result = agent.train(env, env_params, optimizer, key=key)
        bad = result.first_nonfinite_update >= 0
        return jnp.where(bad, jnp.nan, result.final_return).astype(jnp.float32)

    return fitness


a2c_fitness = ppo_fitness


class ESState(eqx.Module):
    """Everything an ES run carries between generations (and checkpoints).

    - `es_state`: evosax `Open_ES` state (mean, sigma, Adam state, counters).
    - `key`: the run's PRNG key (raw).
    - `generation`: generations done.
    - `best_score`, `best_generation`, `best_mean`: the best validation score of the ES
      mean so far, the generation it was measured after, and that mean (flat).
    - `n_nonfinite`: members whose fitness was NaN/inf, summed over generations.
    """

    es_state: Any
    key: Array
    generation: Int[Array, ""]
    best_score: Float[Array, ""]
    best_generation: Int[Array, ""]
    best_mean: Float[Array, " n"]
    n_nonfinite: Int[Array, ""]


class ESResult(eqx.Module):
    """What [`lorl_meta.ESTrainer.train`][] returns.

    - `optimizer`: the ES mean of the best validated generation.
    - `final_optimizer`: the ES mean after the last generation.
    - `best_generation`, `best_score`: which generation was selected and its validation
      score (mean normalised return).
    - `state`: the final [`lorl_meta.ESState`][].
    - `history`: one dict of scalar metrics per generation.
    """

    optimizer: Any
    final_optimizer: Any
    state: ESState
    best_generation: int = eqx.field(static=True)
    best_score: float = eqx.field(static=True)
    history: list[dict[str, Any]] = eqx.field(static=True)


class ESTrainer(eqx.Module):
    """OpenAI-ES meta-training of a learned optimizer (OPEN, Section 5.2, Appendix C.3).

    Each generation: `population_size` antithetic members `mean +- sigma * eps` (evosax
    `Open_ES`); every member's fitness is the final return of a full inner training run.

    - One fixed task: common random numbers (every member uses the same agent seeds),
      centred-rank shaping to `[-0.5, 0.5]`.
    - Several tasks (multi-task): every member on every task, returns divided by each
      task's `normaliser` (Adam's return), averaged, then centred ranks.
    - A task distribution (`ESTask.level_sampler`): antithetic task sampling: each
      antithetic pair gets its own sampled level and agent seed, and the better member of
      the pair gets `+0.5`, the worse `-0.5` (pairwise comparison, no global rank).

    A member whose fitness is NaN or infinite ranks last (loses its pair) and the
    generation goes on; the count is logged. evosax minimises, so the shaped utilities
    are negated before `tell`. Every `eval_every` generations the ES mean is validated on
    a fixed set of seeds (and levels); the best generation's mean is returned.

    With `mesh`, the population axis is sharded over devices (`jax.sharding`; each device
    runs `population_size / n_devices` members' inner runs); validation runs replicated.
    """

    config: ESConfig = eqx.field(static=True)
    tasks: tuple[ESTask, ...] = eqx.field(static=True)
    batch_sharding: BatchSharding | None = eqx.field(static=True)

    def __init__(
        self,
        config: ESConfig,
        tasks: Sequence[ESTask] | ESTask,
        *,
        mesh: Mesh | NamedSharding | None = None,
    ):
        """**Arguments:**

        - `config`: an [`lorl_meta.ESConfig`][].
        - `tasks`: one [`lorl_meta.ESTask`][] or several (multi-task).
        - `mesh`: shard the population axis over devices: a `jax.sharding.Mesh` (the
          axis is split over all its axes) or a `jax.sharding.NamedSharding` whose
          `PartitionSpec` names the mesh axes of the leading axis. `population_size` must
          be divisible by the number of devices it is split over (checked here, before any
          compute). `None` (default): no sharding constraint at all (one device).
        """
        batch = as_batch_sharding(mesh, "ESTrainer")
        check_divisible(batch, config.population_size, "ESConfig.population_size")
        if isinstance(tasks, ESTask):
            tasks = (tasks,)
        tasks = tuple(tasks)
        if not tasks:
            raise ValueError("ESTrainer needs at least one ESTask")
        for t in tasks:
            if not isinstance(t, ESTask):
                raise TypeError(f"tasks must be ESTask instances, got {type(t).__name__}")
        if len(tasks) > 1 and any(t.level_sampler is not None for t in tasks):
            raise ValueError(
                "antithetic task sampling (an ESTask with a level_sampler) needs it to be the "
                "only task of the run"
            )
        names = [t.name for t in tasks]
        if len(set(names)) != len(names):
            raise ValueError(f"task names must be unique, got {names}")
        self.config = config
        self.tasks = tasks
        self.batch_sharding = batch

    @property
    def mesh(self) -> Mesh | None:
        """The device mesh the population is sharded over (`None`: no sharding)."""
        return None if self.batch_sharding is None else self.batch_sharding.mesh

    def _shard(self, tree: PyTree) -> PyTree:
        """Constrain the leading (population) axis of `tree` to the mesh (no-op without)."""
        if self.batch_sharding is None:
            return tree
        return self.batch_sharding.constrain(tree)

    @property
    def antithetic_tasks(self) -> bool:
        """Whether this run uses antithetic task sampling."""
        return self.tasks[0].level_sampler is not None

    def _core(self) -> "ESTrainer":
        """This trainer with the run-length settings normalised, so trainers that differ
        only in `n_generations` / `checkpoint_every` share compiled programs."""
        config = dataclasses.replace(self.config, n_generations=1, checkpoint_every=1)
        batch = self.batch_sharding
        return ESTrainer(config, self.tasks, mesh=None if batch is None else batch.sharding())

    def strategy(self, optimizer: Any) -> Open_ES:
        """The evosax `Open_ES` for `optimizer`'s floating-point meta-parameters (one
        object per configuration and meta-parameter structure, so its jitted `ask` and
        `tell` compile once)."""
        solution = eqx.filter(optimizer, eqx.is_inexact_array)
        leaves, treedef = jax.tree.flatten(solution)
        signature = (
            self._core(),
            treedef,
            tuple((x.shape, str(x.dtype)) for x in leaves),
        )
        if signature not in _STRATEGIES:
            _STRATEGIES[signature] = self._make_strategy(solution)
        return _STRATEGIES[signature]

    def _make_strategy(self, solution: PyTree) -> Open_ES:
        cfg = self.config
        return Open_ES(
            population_size=cfg.population_size,
            solution=solution,
            use_antithetic_sampling=True,
            optimizer=optax.adam(optax.exponential_decay(cfg.lr, 1, cfg.lr_decay)),
            std_schedule=optax.exponential_decay(cfg.sigma_init, 1, cfg.sigma_decay),
            # We shape ourselves (NaN handling, pairwise fitness): identity in evosax.
            fitness_shaping_fn=lambda population, fitness, state, params: fitness,
        )

    def check_optimizer(self, optimizer: Any) -> None:
        """Raise before any compute if `optimizer` cannot be evolved."""
        if not isinstance(optimizer, eqx.Module):
            raise TypeError(
                f"ES needs an eqx.Module whose array fields are the meta-parameters, got "
                f"{type(optimizer).__name__}"
            )
        leaves = jax.tree.leaves(eqx.filter(optimizer, eqx.is_inexact_array))
        if not leaves:
            raise ValueError("the optimizer has no floating-point meta-parameters")
        if not all(bool(jnp.all(jnp.isfinite(x))) for x in leaves):
            raise ValueError("the optimizer's meta-parameters contain NaN or infinity")

    # ------------------------------------------------------------------ fitness

    def population_fitness(
        self, population: PyTree, static: Any, *, key: PRNGKeyArray
    ) -> tuple[Float[Array, " pop"], Float[Array, " pop"], dict[str, Array]]:
        """Evaluate a population (leading axis) and shape the fitness.

        **Arguments:**

        - `population`: floating-point meta-parameters with a leading population axis,
          in evosax's antithetic order (member `i` and `i + P/2` are a pair).
        - `static`: the rest of the optimizer (`eqx.partition(opt, eqx.is_inexact_array)[1]`).
        - `key`: PRNG key (levels and agent seeds of this generation).

        **Returns:**

        `(score, utility, metrics)`: the raw score per member (mean normalised return),
        the shaped utility in `[-0.5, 0.5]` (higher is better), and per-task mean returns.
        """
        cfg = self.config
        n_pop = jax.tree.leaves(population)[0].shape[0]
        half = n_pop // 2
        population = self._shard(population)

        def member_return(member, task, params, keys):
            opt = eqx.combine(member, static)
            returns = jax.vmap(lambda k: task.fitness_fn(opt, params, k))(keys)
            return jnp.mean(returns)

        metrics = {}
        if self.antithetic_tasks:
            task = self.tasks[0]
            assert task.level_sampler is not None
            level_key, seed_key = jax.random.split(key)
            levels = jax.vmap(task.level_sampler)(jax.random.split(level_key, half))
            seeds = jax.random.split(seed_key, half * cfg.n_rollouts).reshape(
                half, cfg.n_rollouts, -1
            )
            pair = jnp.concatenate([jnp.arange(half), jnp.arange(half)])
            member_levels = self._shard(jax.tree.map(lambda x: x[pair], levels))
            member_seeds = self._shard(seeds[pair])
            returns = jax.vmap(lambda m, lv, ks: member_return(m, task, lv, ks))(
                population, member_levels, member_seeds
            )
            returns = self._shard(returns)
            score = returns / task.normaliser
            utility = pairwise_fitness(score)
            metrics[f"{task.name}/return"] = jnp.nanmean(returns)
        else:
            # Common random numbers: one seed set for the whole population.
            keys = jax.random.split(key, cfg.n_rollouts)
            scores = []
            for task in self.tasks:
                returns = jax.vmap(
                    lambda m, task=task: member_return(m, task, task.env_params, keys)
                )(population)
                returns = self._shard(returns)
                scores.append(returns / task.normaliser)
                metrics[f"{task.name}/return"] = jnp.nanmean(returns)
            score = jnp.mean(jnp.stack(scores), axis=0)
            utility = centered_ranks(score)
        return score, utility, metrics

    def validation_score(self, optimizer: Any, *, key: PRNGKeyArray) -> Float[Array, ""]:
        """Mean normalised return of `optimizer` on `n_validation` seeds per task (and
        levels from `key`, for a distribution). NaN if any run diverged.

        **Arguments:**

        - `optimizer`: the learned optimizer.
        - `key`: PRNG key of the validation set (fixed across a run).

        **Returns:**

        A scalar.
        """
        n = self.config.n_validation
        scores = []
        for i, task in enumerate(self.tasks):
            task_key = jax.random.fold_in(key, i)
            seeds = jax.random.split(jax.random.fold_in(task_key, 0), n)
            if task.level_sampler is not None:
                levels = jax.vmap(task.level_sampler)(
                    jax.random.split(jax.random.fold_in(task_key, 1), n)
                )
                returns = jax.vmap(lambda lv, k, task=task: task.fitness_fn(optimizer, lv, k))(
                    levels, seeds
                )
            else:
                returns = jax.vmap(
                    lambda k, task=task: task.fitness_fn(optimizer, task.env_params, k)
                )(seeds)
            scores.append(jnp.mean(returns) / task.normaliser)
        return jnp.mean(jnp.stack(scores))

    # ------------------------------------------------------------------ the run

    def init(self, optimizer: Any, strategy: Open_ES, *, key: PRNGKeyArray) -> ESState:
        """Initial state with the ES mean at `optimizer`'s meta-parameters.

        **Arguments:**

        - `optimizer`: the initial ES mean (e.g. zeros: see
          [`lorl_meta.zero_meta_parameters`][]).
        - `strategy`: `self.strategy(optimizer)`.
        - `key`: PRNG key.

        **Returns:**

        An [`lorl_meta.ESState`][].
        """
        self.check_optimizer(optimizer)
        key = raw_key(key)
        init_key, run_key = jax.random.split(key)
        mean = eqx.filter(optimizer, eqx.is_inexact_array)
        with jax.numpy_dtype_promotion("standard"), jax.numpy_rank_promotion("allow"):
            es_state = strategy.init(init_key, mean, strategy.default_params)
        es_state = jax.tree.map(_strong, es_state)
        state = ESState(
            es_state,
            run_key,
            jnp.asarray(0, jnp.int32),
            jnp.asarray(-jnp.inf, jnp.float32),
            jnp.asarray(-1, jnp.int32),
            jnp.asarray(es_state.mean),
            jnp.asarray(0, jnp.int32),
        )
        # On a mesh the generation returns its state replicated over the devices; placed
        # so from the start, generation 1 compiles the same program as the later ones
        # (else it ran once for an unsharded state and compiled again for generation 2).
        return state if self.batch_sharding is None else self.batch_sharding.replicate(state)

    def fingerprint(self, optimizer: Any, seed: int) -> dict[str, Any]:
        """What must match for a checkpoint to be resumed."""
        return {
            "trainer": "ESTrainer",
            "config": {
                k: v for k, v in dataclasses.asdict(self.config).items() if k != "n_generations"
            },
            "tasks": [
                {
                    "name": t.name,
                    "env_params": describe_tree(t.env_params),
                    "distribution": t.level_sampler is not None,
                    "normaliser": t.normaliser,
                }
                for t in self.tasks
            ],
            "optimizer": type(optimizer).__name__,
            "optimizer_static": describe_static(eqx.partition(optimizer, eqx.is_inexact_array)[1]),
            "meta_parameters": describe_tree(optimizer),
            "seed": seed,
        }

    def train(
        self,
        optimizer: Any,
        *,
        seed: int,
        checkpoint_dir: str | pathlib.Path | None = None,
        log_dir: str | pathlib.Path | None = None,
        progress: bool = True,
        tensorboard: bool = False,
        wandb: dict[str, Any] | None = None,
    ) -> ESResult:
        """Evolve `optimizer`'s meta-parameters for `config.n_generations`, resumably.

        Checkpoints (every `config.checkpoint_every` generations and at the end) hold the
        evosax state, the key, the generation counter, the best validated mean and the
        metric history; resuming from one gives the same result, bit for bit on CPU, as an
        uninterrupted run. A directory of a different run raises
        [`lorl_meta.CheckpointMismatchError`][] before any compute.

        **Arguments:**

        - `optimizer`: the initial ES mean.
        - `seed`: integer seed of the run (the validation set derives from it too).
        - `checkpoint_dir`, `log_dir`, `progress`, `tensorboard`, `wandb`: as
          [`lorl_meta.MetaGradientTrainer.train`][].

        **Returns:**

        An [`lorl_meta.ESResult`][].
        """
        self.check_optimizer(optimizer)
        seed = check_seed(seed)
        strategy = self.strategy(optimizer)
        core = self._core()
        static = eqx.partition(optimizer, eqx.is_inexact_array)[1]
        root = jax.random.PRNGKey(seed)
        val_key = jax.random.fold_in(root, 1)
        cfg = self.config

        def one_generation(state: ESState, g: int) -> tuple[ESState, dict[str, Any]]:
            validate = (g + 1) % cfg.eval_every == 0 or g + 1 == cfg.n_generations
            state, metrics = _generation(core, strategy, static, state, val_key, validate)
            if not validate:
                metrics.pop("validation_score", None)
            return state, metrics

        state, history = train_loop(
            lambda: self.init(optimizer, strategy, key=jax.random.fold_in(root, 0)),
            one_generation,
            total=cfg.n_generations,
            checkpoint_every=cfg.checkpoint_every,
            counter="generation",
            postfix="mean_score",
            desc="ES",
            fingerprint=lambda: self.fingerprint(optimizer, seed),
            checkpoint_dir=checkpoint_dir,
            log_dir=log_dir,
            progress=progress,
            tensorboard=tensorboard,
            wandb=wandb,
        )
        # Process-local arrays (see MetaGradientTrainer.train).
        final = eqx.combine(process_local(strategy.get_mean(state.es_state)), static)
        best = eqx.combine(process_local(strategy._unravel_solution(state.best_mean)), static)
        return ESResult(
            best,
            final,
            state,
            int(scalar(state.best_generation)),
            float(scalar(state.best_score)),
            history,
        )


def _strong(x: Any) -> Array:
    """`x` as a strongly typed array. evosax's `init` leaves some state entries weakly
    typed (Python scalars) while `tell` returns them strongly typed; without this the
    jitted generation would be traced and compiled a second time in generation 2."""
    x = jnp.asarray(x)
    return jnp.asarray(x, dtype=x.dtype)


@eqx.filter_jit
def _generation(
    trainer: ESTrainer,
    strategy: Open_ES,
    static: Any,
    state: ESState,
    val_key: Array,
    validate: bool,
) -> tuple[ESState, dict[str, Array]]:
    key, ask_key, eval_key, tell_key = jax.random.split(state.key, 4)
    params = strategy.default_params
    with jax.numpy_dtype_promotion("standard"), jax.numpy_rank_promotion("allow"):
        population, es_state = strategy.ask(ask_key, state.es_state, params)
    score, utility, metrics = trainer.population_fitness(population, static, key=eval_key)
    nonfinite = jnp.sum(jnp.logical_not(jnp.isfinite(score)).astype(jnp.int32))
    with jax.numpy_dtype_promotion("standard"), jax.numpy_rank_promotion("allow"):
        es_state, _ = strategy.tell(tell_key, population, -utility, es_state, params)
    es_state = jax.tree.map(_strong, es_state)
    generation = state.generation + 1
    best_score, best_gen, best_mean = state.best_score, state.best_generation, state.best_mean
    val = jnp.asarray(jnp.nan, jnp.float32)
    if validate:
        mean_opt = eqx.combine(strategy._unravel_solution(es_state.mean), static)
        val = trainer.validation_score(mean_opt, key=val_key).astype(jnp.float32)
        better = jnp.isfinite(val) & (val > best_score)
        best_score = jnp.where(better, val, best_score)
        best_gen = jnp.where(better, generation, best_gen)
        best_mean = jnp.where(better, es_state.mean, best_mean)
    finite = jnp.isfinite(score)
    metrics = dict(metrics)
    metrics.update(
        mean_score=jnp.sum(jnp.where(finite, score, 0.0))
        / jnp.maximum(jnp.sum(finite.astype(score.dtype)), 1.0),
        max_score=jnp.max(jnp.where(finite, score, -jnp.inf)),
        n_nonfinite=nonfinite,
        sigma=jnp.asarray(es_state.std, jnp.float32),
        validation_score=val,
        best_validation_score=best_score,
        best_generation=best_gen,
    )
    new_state = ESState(
        es_state, key, generation, best_score, best_gen, best_mean, state.n_nonfinite + nonfinite
    )
    return new_state, metrics


def zero_meta_parameters(optimizer: Any) -> Any:
    """`optimizer` with every floating-point meta-parameter set to zero (the OPEN
    reference's ES initialisation; spec agents_and_meta.md section 4).

    **Arguments:**

    - `optimizer`: a learned optimizer (eqx.Module).

    **Returns:**

    The same module with zeroed float arrays.
    """
    return jax.tree.map(lambda x: jnp.zeros_like(x) if eqx.is_inexact_array(x) else x, optimizer)
