"""What the A2C and PPO meta-gradient trainers share (Optim4RL, Sections 2.2 and 5.1):
sharding of the unit axis, pipeline resets, the meta-step with its non-finite handling,
evaluation, fingerprint and the resumable train loop. A subclass supplies the tasks'
type, its state and result classes and `_unit_objective` (M inner updates of one unit,
then the outer loss)."""

import abc
import dataclasses
import pathlib
from typing import Any, ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array, Float, Int, PRNGKeyArray, PyTree

from lorl_optim import AbstractLearnedOptimizer

from ._checkpoint import FINGERPRINT_FILE, Checkpointer, describe_static, describe_tree
from ._keys import raw_key
from ._loop import check_seed, process_local, train_loop
from ._schedule import reset_mask, reset_offsets
from ._sharding import BatchSharding, as_batch_sharding, check_divisible


def group_norms(tree: PyTree, prefix: str) -> dict[str, Array]:
    """`{"<prefix>/<field>": global norm}` per top-level field of a module (per key of a
    dict, per index of a sequence): which part of the optimizer the meta-gradient reaches.

    **Arguments:**

    - `tree`: a pytree of arrays (e.g. meta-gradients).
    - `prefix`: the metric name's prefix.

    **Returns:**

    A dict of scalar norms.
    """
    groups: dict[str, list[Array]] = {}
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        head = path[0] if path else None
        name = getattr(head, "name", getattr(head, "key", getattr(head, "idx", "root")))
        groups.setdefault(f"{prefix}/{name}", []).append(leaf)
    return {k: optax.tree.norm(v) for k, v in groups.items()}


def unit_metrics(
    task: Any, returns: Array, ep: dict[str, Array], nonfinite: Array, aux: dict[str, Array]
) -> dict[str, Array]:
    """One unit's metrics of a meta-iteration: the mean (unscaled) episode return over the
    `M` inner rollouts `returns` and the outer rollout's `ep`, whether an inner update was
    non-finite, and the outer loss's `aux["entropy"]`.

    **Arguments:**

    - `task`: the unit's task (its `reward_scale`).
    - `returns`: the inner rollouts' mean episode returns, shape `(M,)`.
    - `ep`: the outer rollout's episode statistics.
    - `nonfinite`: per inner update, whether it was non-finite.
    - `aux`: the outer loss's auxiliary outputs.

    **Returns:**

    `{"episode_return", "inner_nonfinite", "entropy"}`.
    """
    scale = jnp.asarray(task.reward_scale, jnp.float32)
    return {
        "episode_return": jnp.nanmean(jnp.concatenate([returns, ep["episode_return"][None]]))
        / scale,
        "inner_nonfinite": jnp.any(nonfinite),
        "entropy": aux["entropy"],
    }


def check_schedule_covered(n_units: int, reset_interval: int, pipeline: bool, task: str) -> None:
    """`ValueError` unless pipeline training's reset schedule covers every phase.

    The offsets `r_1..r_n` are spread evenly over `[0, m - 1]` (Optim4RL Section 5.1); with
    fewer units than the reset interval (`n < m`) some phases have no unit, so at a given
    meta-iteration the units' ages no longer spread over a whole lifetime (the paper uses
    n = 512 with m in {256, 512}). Nothing to check without pipeline training.
    """
    if pipeline and n_units < reset_interval:
        raise ValueError(
            f"task {task!r}: pipeline training needs n_units >= reset_interval so that the "
            f"units' reset offsets cover every phase of the schedule (Optim4RL Section 5.1: "
            f"n = 512, m in {{256, 512}}); got n_units={n_units} < "
            f"reset_interval={reset_interval}. "
            "Raise n_units or lower reset_interval."
        )


class MetaGradientBase(eqx.Module):
    """Base of [`lorl_meta.MetaGradientTrainer`][] and
    [`lorl_meta.PPOMetaGradientTrainer`][] (not public)."""

    config: Any = eqx.field(static=True)
    tasks: tuple[Any, ...] = eqx.field(static=True)
    batch_sharding: BatchSharding | None = eqx.field(static=True)

    _name: ClassVar[str] = ""
    _task_type: ClassVar[type] = object
    _agent_type: ClassVar[type] = object
    _agent_hint: ClassVar[str] = ""
    _state_type: ClassVar[type] = object
    _result_type: ClassVar[type] = object
    _progress_desc: ClassVar[str] = "meta-gradient"

    def _setup(self, config: Any, tasks: Any, mesh: Any) -> None:
        """Check and store the constructor's arguments (called by subclasses' `__init__`)."""
        batch = as_batch_sharding(mesh, self._name)
        task_list: tuple[Any, ...] = tuple(tasks) if isinstance(tasks, list | tuple) else (tasks,)
        if not task_list:
            raise ValueError(f"{self._name} needs at least one {self._task_type.__name__}")
        for t in task_list:
            if not isinstance(t, self._task_type):
                raise TypeError(
                    f"tasks must be {self._task_type.__name__} instances, got {type(t).__name__}"
                )
            if not isinstance(t.agent, self._agent_type):
                raise TypeError(
                    f"{self._name} trains {self._agent_type.__name__} units: task {t.name!r} "
                    f"has a {type(t.agent).__name__} agent; it needs {self._agent_hint}"
                )
        if batch is not None and getattr(config, "unit_batch", 0):
            raise ValueError(
                f"{self._name}: config.unit_batch = {config.unit_batch} runs units in "
                "sequential groups, which does not combine with a device mesh (the units are "
                "sharded over the devices instead); use unit_batch = 0 with a mesh"
            )
        names = [t.name for t in task_list]
        if len(set(names)) != len(names):
            raise ValueError(f"task names must be unique, got {names}")
        for t in task_list:
            check_divisible(batch, t.n_units, f"{self._task_type.__name__} {t.name!r}: n_units")
            check_schedule_covered(t.n_units, config.reset_interval, config.pipeline, t.name)
        self.config = config
        self.tasks = task_list
        self.batch_sharding = batch

    @property
    def mesh(self) -> jax.sharding.Mesh | None:
        """The device mesh the training units are sharded over (`None`: no sharding)."""
        return None if self.batch_sharding is None else self.batch_sharding.mesh

    def _shard(self, tree: PyTree) -> PyTree:
        """Constrain the leading (unit) axis of `tree` to the mesh (no-op without)."""
        if self.batch_sharding is None:
            return tree
        return self.batch_sharding.constrain(tree)

    def _core(self) -> Any:
        """This trainer with the run-length settings normalised, so trainers that differ
        only in `n_meta_steps` / `checkpoint_every` share compiled programs."""
        config = dataclasses.replace(self.config, n_meta_steps=1, checkpoint_every=1)
        batch = self.batch_sharding
        mesh = None if batch is None else batch.sharding()
        return type(self)(config, self.tasks, mesh=mesh)  # pyright: ignore[reportCallIssue]

    def _meta_optimizer(self) -> optax.GradientTransformation:
        cfg = self.config
        adam = optax.adam(cfg.meta_lr, b1=cfg.meta_b1, b2=cfg.meta_b2, eps=cfg.meta_eps)
        if cfg.meta_grad_clip is None:
            return adam
        return optax.chain(optax.clip_by_global_norm(cfg.meta_grad_clip), adam)

    @property
    def lifetime(self) -> int:
        """A unit's lifetime in inner updates: `reset_interval * n_inner` (`m * M`)."""
        return self.config.reset_interval * self.config.n_inner

    def training_proportion(self, age: Int[Array, "*batch"]) -> Float[Array, "*batch"]:
        """The training proportion a learned optimizer sees in a unit of age `age` (its
        number of inner updates since its last reset, the `update` counter of its agent
        state): `min(age / (m * M - 1), 1)`, the same convention as one agent run of
        `m * M` updates (`update_index / (n_updates - 1)`).

        Units live `m * M` updates between resets, so the proportion runs from 0 to 1
        over a life. Units not yet reset since the start (offset `r_i > 0`) are reset
        before reaching 1; without pipeline training units are never reset and the
        proportion stays at 1 once they pass `m * M` updates.

        **Arguments:**

        - `age`: inner updates since the unit's last reset.

        **Returns:**

        float32 proportions in `[0, 1]`.
        """
        denom = jnp.asarray(max(self.lifetime - 1, 1), jnp.float32)
        return jnp.minimum(age.astype(jnp.float32) / denom, 1.0)

    def check_optimizer(self, optimizer: AbstractLearnedOptimizer) -> None:
        """Raise before any compute if `optimizer` cannot be meta-trained here.

        **Arguments:**

        - `optimizer`: the learned optimizer.
        """
        if not isinstance(optimizer, AbstractLearnedOptimizer):
            raise TypeError(
                "meta-gradient training needs a lorl_optim learned optimizer (an eqx.Module "
                f"whose fields are the meta-parameters), got {type(optimizer).__name__}"
            )
        leaves = jax.tree.leaves(eqx.filter(optimizer, eqx.is_inexact_array))
        if not leaves:
            raise ValueError("the optimizer has no floating-point meta-parameters")
        if not all(bool(jnp.all(jnp.isfinite(x))) for x in leaves):
            raise ValueError("the optimizer's meta-parameters contain NaN or infinity")
        for task in self.tasks:
            task.optimizer_for(optimizer)
            task.agent.check(
                task.env,
                task.env_params,
                jax.eval_shape(
                    lambda k, task=task: task.agent.make_network(task.env, task.env_params, key=k),
                    jax.random.PRNGKey(0),
                ),
            )

    def _init_units(self, task: Any, optimizer: Any, key: Array) -> Any:
        opt = task.optimizer_for(optimizer)
        keys = self._shard(jax.random.split(key, task.n_units))
        units = jax.vmap(lambda k: task.agent.init(task.train_env, task.env_params, opt, key=k))(
            keys
        )
        return self._shard(units)

    def init(self, optimizer: AbstractLearnedOptimizer, *, key: PRNGKeyArray) -> Any:
        """The initial state: meta-parameters from `optimizer`, fresh units for every task.

        **Arguments:**

        - `optimizer`: the learned optimizer to meta-train (its array fields are the
          initial meta-parameters).
        - `key`: PRNG key.

        **Returns:**

        The trainer's state ([`lorl_meta.MetaGradientState`][] or
        [`lorl_meta.PPOMetaGradientState`][]).
        """
        self.check_optimizer(optimizer)
        return self._core()._init(optimizer, raw_key(key))

    @eqx.filter_jit
    def _init(self, optimizer: Any, key: Array) -> Any:
        meta_params = eqx.filter(optimizer, eqx.is_array)
        run_key, *task_keys = jax.random.split(key, len(self.tasks) + 1)
        units = tuple(
            self._init_units(t, optimizer, k) for t, k in zip(self.tasks, task_keys, strict=True)
        )
        return self._state_type(
            meta_params,
            self._meta_optimizer().init(eqx.filter(optimizer, eqx.is_inexact_array)),
            units,
            jnp.asarray(0, jnp.int32),
            run_key,
            jnp.asarray(0, jnp.int32),
        )

    @abc.abstractmethod
    def _unit_objective(
        self, task: Any, optimizer: Any, unit: Any
    ) -> tuple[Float[Array, ""], tuple[Any, dict[str, Array]]]:
        """M inner updates of one (unbatched) unit, then the outer loss on a fresh
        rollout: `(loss, (unit, metrics))` with metrics `episode_return`,
        `inner_nonfinite`, `entropy`."""

    def _objective(
        self, meta_params: PyTree, static: Any, units: tuple[Any, ...]
    ) -> tuple[Float[Array, ""], tuple[tuple[Any, ...], dict[str, Array]]]:
        optimizer = eqx.combine(meta_params, static)
        losses, new_units, metrics = [], [], {}
        for task, unit in zip(self.tasks, units, strict=True):

            def one(u: Any, task: Any = task) -> Any:
                return self._unit_objective(task, optimizer, u)

            if self.config.unit_batch:
                # Groups of units one after another, each recomputed in the backward pass
                # (MetaGradientConfig.unit_batch): their intermediates stay small.
                loss, (unit, m) = jax.lax.map(
                    jax.checkpoint(one), unit, batch_size=self.config.unit_batch
                )
            else:
                loss, (unit, m) = jax.vmap(one)(self._shard(unit))
            loss, unit, m = self._shard((loss, unit, m))
            losses.append(jnp.mean(loss))
            new_units.append(unit)
            metrics[f"{task.name}/outer_loss"] = jnp.mean(loss)
            metrics[f"{task.name}/episode_return"] = jnp.nanmean(m["episode_return"])
            metrics[f"{task.name}/entropy"] = jnp.mean(m["entropy"])
            metrics[f"{task.name}/inner_nonfinite"] = jnp.sum(m["inner_nonfinite"])
        return jnp.mean(jnp.stack(losses)), (tuple(new_units), metrics)

    def _reset(
        self, optimizer: Any, units: tuple[Any, ...], step: Array, key: Array
    ) -> tuple[tuple[Any, ...], Array]:
        """Pipeline resets of meta-iteration `step` (no-op for the ablation)."""
        if not self.config.pipeline:
            return units, jnp.asarray(0, jnp.int32)
        keys = jax.random.split(key, len(self.tasks))
        out, n_reset = [], jnp.asarray(0, jnp.int32)
        for task, unit, k in zip(self.tasks, units, keys, strict=True):
            offsets = reset_offsets(task.n_units, self.config.reset_interval)
            mask = reset_mask(offsets, step, self.config.reset_interval)
            fresh = self._init_units(task, optimizer, k)

            def pick(new, old, mask=mask):
                m = mask.reshape((-1,) + (1,) * (jnp.ndim(old) - 1))
                return jnp.where(m, new, old)

            out.append(self._shard(jax.tree.map(pick, fresh, unit)))
            n_reset = n_reset + jnp.sum(mask.astype(jnp.int32))
        return tuple(out), n_reset

    def _prepare(self, state: Any, static: Any) -> tuple[Array, tuple[Any, ...], Array]:
        """The next meta-iteration's key, its units after the pipeline resets, and the
        number of units reset (shared by `step` and the diagnostics)."""
        optimizer = eqx.combine(state.meta_params, static)
        key, reset_key = jax.random.split(state.key)
        units, n_reset = self._reset(optimizer, state.units, state.step, reset_key)
        return key, units, n_reset

    @eqx.filter_jit
    def meta_objective(
        self, state: Any, static: Any, meta_params: PyTree | None = None
    ) -> Float[Array, ""]:
        """The meta-loss the next meta-iteration of `state` computes, at `meta_params`:
        the same units after the same resets, the same randomness (common random
        numbers). Finite differences and line scans of the meta-objective use it.

        **Arguments:**

        - `state`: a trainer state (from `init`, `step` or a checkpoint).
        - `static`: the non-array part of the optimizer
          (`eqx.partition(optimizer, eqx.is_array)[1]`); another optimizer's static part
          (e.g. after `with_learning_rate`) evaluates that optimizer.
        - `meta_params`: the meta-parameters to evaluate (`None`: the state's).

        **Returns:**

        The scalar meta-loss (the mean over tasks of the mean outer loss over units).
        """
        _, units, _ = self._prepare(state, static)
        params = state.meta_params if meta_params is None else meta_params
        return self._objective(params, static, units)[0]

    @eqx.filter_jit
    def unit_meta_gradients(
        self, state: Any, static: Any
    ) -> tuple[tuple[Float[Array, " units"], PyTree], ...]:
        """Every unit's own meta-gradient at the next meta-iteration of `state` (the
        per-sample gradients whose mean `step` follows), for measuring the
        meta-gradient's signal-to-noise ratio (`lorl.analysis.gradient_snr`).

        The meta-gradient of `step` is the mean over tasks of the mean over each task's
        units of these gradients.

        **Arguments:**

        - `state`: a trainer state.
        - `static`: the non-array part of the optimizer.

        **Returns:**

        Per task, `(losses, grads)`: each unit's outer loss (shape `(n_units,)`) and its
        gradient with respect to the floating-point meta-parameters (every leaf with a
        leading `n_units` axis).
        """
        _, units, _ = self._prepare(state, static)
        diff, nondiff = eqx.partition(state.meta_params, eqx.is_inexact_array)
        out = []
        for task, unit in zip(self.tasks, units, strict=True):

            def one(d: PyTree, u: Any, task: Any = task) -> Float[Array, ""]:
                optimizer = eqx.combine(eqx.combine(d, nondiff), static)
                return self._unit_objective(task, optimizer, u)[0]

            losses, grads = jax.vmap(jax.value_and_grad(one), in_axes=(None, 0))(
                diff, self._shard(unit)
            )
            out.append((losses, grads))
        return tuple(out)

    @eqx.filter_jit
    def step(self, state: Any, static: Any) -> tuple[Any, dict]:
        """One meta-iteration (pure apart from jit; see the class docstring).

        **Arguments:**

        - `state`: the current state.
        - `static`: the non-array part of the optimizer
          (`eqx.partition(optimizer, eqx.is_array)[1]`).

        **Returns:**

        `(state, metrics)` with scalar metrics: `meta_loss`, `meta_grad_norm` (and per
        top-level field of the optimizer `meta_grad_norm/<field>`, e.g. `gru1`),
        `n_reset`, `nonfinite_meta_grad` and per task `<name>/outer_loss`,
        `<name>/episode_return` (unscaled, averaged over units and the iteration's
        rollouts), `<name>/entropy`, `<name>/inner_nonfinite`.
        """
        key, units, n_reset = self._prepare(state, static)
        diff, nondiff = eqx.partition(state.meta_params, eqx.is_inexact_array)

        def objective(d):
            return self._objective(eqx.combine(d, nondiff), static, units)

        (loss, (units, metrics)), grads = jax.value_and_grad(objective, has_aux=True)(diff)
        grad_norm = optax.tree.norm(grads)
        # A non-finite meta-gradient (or loss) skips the update and is counted.
        finite = jnp.isfinite(grad_norm) & jnp.isfinite(loss)
        grads = jax.tree.map(lambda g: jnp.where(finite, g, jnp.zeros_like(g)), grads)
        with jax.numpy_dtype_promotion("standard"):
            updates, opt_state = self._meta_optimizer().update(grads, state.meta_opt_state, diff)
        new_diff = optax.apply_updates(diff, updates)
        new_diff = jax.tree.map(lambda n, o: jnp.where(finite, n, o), new_diff, diff)
        opt_state = jax.tree.map(
            lambda n, o: jnp.where(finite, n, o), opt_state, state.meta_opt_state
        )
        new_state = self._state_type(
            eqx.combine(new_diff, nondiff),
            opt_state,
            units,
            state.step + 1,
            key,
            state.n_nonfinite + jnp.logical_not(finite).astype(jnp.int32),
        )
        metrics = dict(metrics)
        metrics.update(group_norms(grads, "meta_grad_norm"))
        metrics.update(
            meta_loss=loss,
            meta_grad_norm=grad_norm,
            n_reset=n_reset,
            nonfinite_meta_grad=jnp.logical_not(finite),
        )
        return new_state, metrics

    def evaluate(
        self, optimizer: AbstractLearnedOptimizer, n_iterations: int, *, key: PRNGKeyArray
    ) -> dict[str, float]:
        """The meta-objective of `optimizer` without training it: fresh units (no
        resets), `n_iterations` meta-iterations of `M` inner updates each, and the mean
        outer loss and episode return over them. With the same `key`, two optimizers are
        compared on common random numbers.

        **Arguments:**

        - `optimizer`: the learned optimizer (frozen).
        - `n_iterations`: meta-iterations to run (>= 1).
        - `key`: PRNG key.

        **Returns:**

        `{"meta_loss": ..., "<task>/episode_return": ..., "<task>/outer_loss": ...}` as
        Python floats.
        """
        if not isinstance(n_iterations, int | np.integer) or n_iterations < 1:
            raise ValueError(f"n_iterations must be an integer >= 1, got {n_iterations!r}")
        self.check_optimizer(optimizer)
        out = _evaluate(self._core(), optimizer, int(n_iterations), raw_key(key))
        return {k: float(v) for k, v in out.items()}

    def fingerprint(self, optimizer: AbstractLearnedOptimizer, seed: int) -> dict[str, Any]:
        """What must match for a checkpoint to be resumed: configuration, tasks, the
        optimizer's type, static fields (except speed-only ones, see
        `lorl_meta._checkpoint.describe_static`) and meta-parameter shapes, and the seed.

        **Arguments:**

        - `optimizer`: the learned optimizer.
        - `seed`: the run's seed.

        **Returns:**

        A JSON-serialisable dict.
        """
        tasks = [
            {
                "name": t.name,
                "env": type(t.env).__name__,
                "env_params": describe_tree(t.env_params),
                "agent": repr(t.agent.config),
                "n_units": t.n_units,
                "reward_scale": t.reward_scale,
                "agent_lr": t.agent_lr,
            }
            for t in self.tasks
        ]
        return {
            "trainer": self._name,
            "config": {
                f.name: getattr(self.config, f.name)
                for f in dataclasses.fields(self.config)
                if f.name != "n_meta_steps" and not f.metadata.get("speed_only", False)
            },
            "tasks": tasks,
            "optimizer": type(optimizer).__name__,
            "optimizer_static": describe_static(optimizer),
            "meta_parameters": describe_tree(optimizer),
            "seed": seed,
        }

    def restore(
        self,
        optimizer: AbstractLearnedOptimizer,
        *,
        seed: int,
        checkpoint_dir: str | pathlib.Path,
        step: int | None = None,
    ) -> Any:
        """The state a `train(optimizer, seed=seed, checkpoint_dir=checkpoint_dir)` run
        saved, for inspecting a run (e.g. its meta-gradients with `unit_meta_gradients`)
        without resuming it. Nothing in the directory is changed.

        **Arguments:**

        - `optimizer`, `seed`: those of the run (the initial optimizer, as given to
          `train`).
        - `checkpoint_dir`: the run's checkpoint directory.
        - `step`: the meta-iteration of the snapshot (`None`: the newest).

        **Returns:**

        The trainer's state at `step`.

        **Raises:**

        `FileNotFoundError` if the directory holds no run or no such snapshot;
        [`lorl_meta.CheckpointMismatchError`][] if it holds a run of another
        configuration, optimizer or seed.
        """
        directory = pathlib.Path(checkpoint_dir)
        if not (directory / FINGERPRINT_FILE).is_file():
            raise FileNotFoundError(f"{directory} holds no checkpointed run")
        self.check_optimizer(optimizer)
        seed = check_seed(seed)
        checkpointer = Checkpointer(directory, self.fingerprint(optimizer, seed))
        try:
            if step is None:
                step = checkpointer.latest_step()
                if step is None:
                    raise FileNotFoundError(f"{directory} holds no snapshot")
            template = self._core()._init(optimizer, jax.random.PRNGKey(seed))
            state, _ = checkpointer.restore(step, template)
        finally:
            checkpointer.close()
        return state

    def train(
        self,
        optimizer: AbstractLearnedOptimizer,
        *,
        seed: int,
        checkpoint_dir: str | pathlib.Path | None = None,
        log_dir: str | pathlib.Path | None = None,
        progress: bool = True,
        tensorboard: bool = False,
        wandb: dict[str, Any] | None = None,
    ) -> Any:
        """Meta-train `optimizer` for `config.n_meta_steps` meta-iterations, resumably.

        With `checkpoint_dir`, the full state (meta-parameters, Adam state, units, key,
        counters) and the metric history are saved every `config.checkpoint_every`
        meta-iterations and at the end; if the directory already holds a checkpoint of the
        same configuration and seed, the run resumes from the newest one and ends with the
        same meta-parameters, bit for bit on CPU, as an uninterrupted run. A directory of a
        different run raises [`lorl_meta.CheckpointMismatchError`][] before any compute.
        `n_meta_steps` may grow between invocations (to extend a run).

        In a multi-process JAX job (a `mesh` spanning the devices of several processes),
        every process calls `train` with the same arguments except `checkpoint_dir` and
        `log_dir`, which must be its own: each process writes a full copy of the
        checkpoints and the metrics there; only process 0 shows the progress bar.

        **Arguments:**

        - `optimizer`: the learned optimizer (its fields are the initial meta-parameters).
        - `seed`: integer seed of the whole run.
        - `checkpoint_dir`: directory for checkpoints (`None`: no checkpoints).
        - `log_dir`: directory for `metrics.jsonl` / `metrics.csv` (`None`: in memory only).
        - `progress`: show a tqdm bar with ETA and the current meta-loss.
        - `tensorboard`: also write TensorBoard scalars to `log_dir/tb` (needs
          `tensorboardX`).
        - `wandb`: `wandb.init` keyword arguments (e.g. `{"project": "lorl"}`) to also
          log every row to Weights & Biases from process 0 (needs `wandb`; `None`: off;
          see [`lorl_meta.MetricsLog`][]).

        **Returns:**

        The trainer's result ([`lorl_meta.MetaGradientResult`][] or
        [`lorl_meta.PPOMetaGradientResult`][]); its `optimizer` holds process-local
        arrays (its `state` keeps the mesh's sharding).
        """
        self.check_optimizer(optimizer)
        seed = check_seed(seed)
        static = eqx.partition(optimizer, eqx.is_array)[1]
        core = self._core()
        state, history = train_loop(
            lambda: core._init(optimizer, jax.random.PRNGKey(seed)),
            lambda s, _: core.step(s, static),
            total=self.config.n_meta_steps,
            checkpoint_every=self.config.checkpoint_every,
            counter="step",
            postfix="meta_loss",
            desc=self._progress_desc,
            fingerprint=lambda: self.fingerprint(optimizer, seed),
            checkpoint_dir=checkpoint_dir,
            log_dir=log_dir,
            progress=progress,
            tensorboard=tensorboard,
            wandb=wandb,
        )
        # The meta-parameters as process-local arrays (replicated over the mesh, they may
        # span several processes): the optimizer can be saved or used without the mesh.
        optimizer = eqx.combine(process_local(state.meta_params), static)
        return self._result_type(optimizer, state, history)


@eqx.filter_jit
def _evaluate(
    trainer: MetaGradientBase, optimizer: Any, n_iterations: int, key: Array
) -> dict[str, Array]:
    meta_params, static = eqx.partition(optimizer, eqx.is_array)
    task_keys = jax.random.split(key, len(trainer.tasks))
    units = tuple(
        trainer._init_units(t, optimizer, k) for t, k in zip(trainer.tasks, task_keys, strict=True)
    )

    def body(units, _):
        loss, (units, metrics) = trainer._objective(meta_params, static, units)
        return units, (loss, metrics)

    _, (losses, metrics) = jax.lax.scan(body, units, None, length=n_iterations)
    out = {"meta_loss": jnp.mean(losses)}
    for t in trainer.tasks:
        out[f"{t.name}/episode_return"] = jnp.nanmean(metrics[f"{t.name}/episode_return"])
        out[f"{t.name}/outer_loss"] = jnp.mean(metrics[f"{t.name}/outer_loss"])
    return out
