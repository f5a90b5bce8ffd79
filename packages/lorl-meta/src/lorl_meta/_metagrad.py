"""Meta-gradient training of a learned optimizer with pipeline training (Optim4RL,
Lan et al., Sections 2.2 and 5.1, Appendix C)."""

import dataclasses
import pathlib
import time
from collections.abc import Sequence
from typing import Any, Literal

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding
from jaxtyping import Array, Float, Int, PRNGKeyArray, PyTree

from lorl_agents import A2CState
from lorl_optim import AbstractLearnedOptimizer

from ._checkpoint import Checkpointer, describe_tree
from ._keys import raw_key
from ._logging import MetricsLog, progress_bar
from ._schedule import reset_mask, reset_offsets
from ._sharding import BatchSharding, as_batch_sharding, check_divisible
from ._tasks import MetaTask


@dataclasses.dataclass(frozen=True)
class MetaGradientConfig:
    """Hyperparameters of meta-gradient training (all static).

    **Arguments:**

    - `n_meta_steps`: meta-iterations (meta-optimizer steps) of the run.
    - `n_inner`: inner updates per meta-iteration, `M` (Optim4RL Appendix C: M = 4).
    - `reset_interval`: the reset interval `m` of pipeline training (Optim4RL Appendix
      C.3/C.4: m in {256, 512} for the gridworlds).
    - `pipeline`: pipeline training (True) or the no-pipeline ablation (False: units are
      never reset; Optim4RL Table 1).
    - `meta_lr`: Adam learning rate of the meta-optimizer (Optim4RL Appendix C.3: chosen
      from {3e-5, 1e-4, 3e-4, 1e-3}; default 1e-3).
    - `meta_b1`, `meta_b2`, `meta_eps`: Adam's constants (optax defaults; the papers do
      not state them).
    - `meta_grad_clip`: clip the meta-gradient to this global norm (`None`: off; optional,
      spec agents_and_meta.md section 3).
    - `outer_loss`: `"actor"`, the actor part of the A2C loss on a fresh rollout (Optim4RL
      Appendix C, the paper's default) or `"full"` (the later reference code).
    - `checkpoint_every`: save a checkpoint every this many meta-iterations (when a
      checkpoint directory is given).
    """

    n_meta_steps: int
    n_inner: int = 4  # Optim4RL Appendix C: M = 4
    reset_interval: int = 256  # Optim4RL Appendix C.3: m in {256, 512}
    pipeline: bool = True  # Optim4RL Section 5.1; False = Table 1 ablation
    meta_lr: float = 1e-3  # Optim4RL Appendix C.3: grid {3e-5, 1e-4, 3e-4, 1e-3}
    meta_b1: float = 0.9  # optax default (not stated in the paper)
    meta_b2: float = 0.999  # optax default (not stated in the paper)
    meta_eps: float = 1e-8  # optax default (not stated in the paper)
    meta_grad_clip: float | None = None  # optional, spec agents_and_meta.md s.3
    outer_loss: Literal["actor", "full"] = "actor"  # Optim4RL Appendix C
    checkpoint_every: int = 50

    def __post_init__(self):
        for name in ("n_meta_steps", "n_inner", "reset_interval", "checkpoint_every"):
            value = getattr(self, name)
            if not isinstance(value, int | np.integer) or isinstance(value, bool) or value < 1:
                raise ValueError(
                    f"MetaGradientConfig.{name} must be an integer >= 1, got {value!r}"
                    + (" (M, the number of inner updates)" if name == "n_inner" else "")
                    + (" (m, the pipeline reset interval)" if name == "reset_interval" else "")
                )
        if not self.meta_lr > 0:
            raise ValueError(f"MetaGradientConfig.meta_lr must be > 0, got {self.meta_lr}")
        if self.meta_grad_clip is not None and not self.meta_grad_clip > 0:
            raise ValueError(
                f"MetaGradientConfig.meta_grad_clip must be > 0 or None, got {self.meta_grad_clip}"
            )
        if self.outer_loss not in ("actor", "full"):
            raise ValueError(
                f"MetaGradientConfig.outer_loss must be 'actor' or 'full', got {self.outer_loss!r}"
            )


class MetaGradientState(eqx.Module):
    """Everything a meta-gradient run carries between meta-iterations (and checkpoints).

    - `meta_params`: the learned optimizer's array fields (`eqx.filter(opt, eqx.is_array)`).
    - `meta_opt_state`: the Adam state of the meta-optimizer.
    - `units`: one batched `lorl_agents.A2CState` per task (leading axis: units).
    - `step`: the meta-iteration counter `t`.
    - `key`: the run's PRNG key (raw `uint32[2]`).
    - `n_nonfinite`: meta-iterations skipped because the meta-gradient was not finite.
    """

    meta_params: PyTree
    meta_opt_state: PyTree
    units: tuple[A2CState, ...]
    step: Int[Array, ""]
    key: Array
    n_nonfinite: Int[Array, ""]


class MetaGradientResult(eqx.Module):
    """What [`lorl_meta.MetaGradientTrainer.train`][] returns.

    - `optimizer`: the learned optimizer with the final meta-parameters.
    - `state`: the final [`lorl_meta.MetaGradientState`][].
    - `history`: one dict of scalar metrics per meta-iteration.
    """

    optimizer: AbstractLearnedOptimizer
    state: MetaGradientState
    history: list[dict[str, Any]] = eqx.field(static=True)


class MetaGradientTrainer(eqx.Module):
    """Meta-gradient training of a learned optimizer (Optim4RL, Sections 2.2 and 5.1).

    Every task has `n_units` training units (agent network, environment state, optimizer
    state), batched with `vmap`. One meta-iteration `t`:

    1. Pipeline training: unit `i` is reset (fresh network, fresh environment, zeroed
       optimizer state) when `r_i == t mod m`, with `r_1..r_n` evenly spaced integers over
       `[0, m - 1]` ([`lorl_meta.reset_offsets`][]). The ablation never resets.
    2. Every unit makes `M` A2C updates with the learned optimizer (rollout, gradient of
       the full A2C loss, element-wise clip, learned update: `lorl_agents.A2C.update`).
    3. A fresh rollout with the updated network gives the outer loss (the actor part of
       the A2C loss by default).
    4. The meta-gradient of the outer loss, averaged over units and then over tasks, flows
       back through the `M` updates and the optimizer's recurrent state (agent-gradients
       are stop-gradient inputs of the optimizers); Adam (optionally after global-norm
       clipping) updates the meta-parameters. A non-finite meta-gradient skips the
       update and is counted.

    Units then continue from their updated state (the environments advanced by the outer
    rollout too).

    With `mesh`, every task's training-unit axis is sharded over devices (`jax.sharding`;
    the meta-gradient's mean over units becomes a cross-device reduction).
    """

    config: MetaGradientConfig = eqx.field(static=True)
    tasks: tuple[MetaTask, ...] = eqx.field(static=True)
    batch_sharding: BatchSharding | None = eqx.field(static=True)

    def __init__(
        self,
        config: MetaGradientConfig,
        tasks: Sequence[MetaTask] | MetaTask,
        *,
        mesh: Mesh | NamedSharding | None = None,
    ):
        """**Arguments:**

        - `config`: a [`lorl_meta.MetaGradientConfig`][].
        - `tasks`: one [`lorl_meta.MetaTask`][] or several (multi-task training; the
          meta-gradient is averaged over tasks).
        - `mesh`: shard the training-unit axis over devices: a `jax.sharding.Mesh` (the
          axis is split over all its axes) or a `jax.sharding.NamedSharding` whose
          `PartitionSpec` names the mesh axes of the leading axis. Every task's `n_units`
          must be divisible by the number of devices it is split over (checked here,
          before any compute). `None` (default): no sharding constraint at all.
        """
        batch = as_batch_sharding(mesh, "MetaGradientTrainer")
        if isinstance(tasks, MetaTask):
            tasks = (tasks,)
        tasks = tuple(tasks)
        if not tasks:
            raise ValueError("MetaGradientTrainer needs at least one MetaTask")
        for t in tasks:
            if not isinstance(t, MetaTask):
                raise TypeError(f"tasks must be MetaTask instances, got {type(t).__name__}")
        names = [t.name for t in tasks]
        if len(set(names)) != len(names):
            raise ValueError(f"task names must be unique, got {names}")
        for t in tasks:
            check_divisible(batch, t.n_units, f"MetaTask {t.name!r}: n_units")
        self.config = config
        self.tasks = tasks
        self.batch_sharding = batch

    @property
    def mesh(self) -> Mesh | None:
        """The device mesh the training units are sharded over (`None`: no sharding)."""
        return None if self.batch_sharding is None else self.batch_sharding.mesh

    def _shard(self, tree: PyTree) -> PyTree:
        """Constrain the leading (unit) axis of `tree` to the mesh (no-op without)."""
        if self.batch_sharding is None:
            return tree
        return self.batch_sharding.constrain(tree)

    # ------------------------------------------------------------------ building blocks

    def _core(self) -> "MetaGradientTrainer":
        """This trainer with the run-length settings normalised, so trainers that differ
        only in `n_meta_steps` / `checkpoint_every` share compiled programs."""
        config = dataclasses.replace(self.config, n_meta_steps=1, checkpoint_every=1)
        batch = self.batch_sharding
        return MetaGradientTrainer(
            config, self.tasks, mesh=None if batch is None else batch.sharding()
        )

    def _meta_optimizer(self) -> optax.GradientTransformation:
        cfg = self.config
        adam = optax.adam(cfg.meta_lr, b1=cfg.meta_b1, b2=cfg.meta_b2, eps=cfg.meta_eps)
        if cfg.meta_grad_clip is None:
            return adam
        return optax.chain(optax.clip_by_global_norm(cfg.meta_grad_clip), adam)

    def _offsets(self, task: MetaTask) -> np.ndarray:
        return reset_offsets(task.n_units, self.config.reset_interval)

    @property
    def lifetime(self) -> int:
        """A unit's lifetime in inner updates: `reset_interval * n_inner` (`m * M`)."""
        return self.config.reset_interval * self.config.n_inner

    def training_proportion(self, age: Int[Array, "*batch"]) -> Float[Array, "*batch"]:
        """The training proportion a learned optimizer sees in a unit of age `age` (its
        number of inner updates since its last reset, `A2CState.update`):
        `min(age / (m * M - 1), 1)`, the same convention as one A2C run of `m * M`
        updates (`update_index / (n_updates - 1)`).

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
        """Raise before any compute if `optimizer` cannot be meta-trained here."""
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

    def _init_units(self, task: MetaTask, optimizer: Any, key: Array) -> A2CState:
        opt = task.optimizer_for(optimizer)
        keys = self._shard(jax.random.split(key, task.n_units))
        units = jax.vmap(lambda k: task.agent.init(task.train_env, task.env_params, opt, key=k))(
            keys
        )
        return self._shard(units)

    def init(self, optimizer: AbstractLearnedOptimizer, *, key: PRNGKeyArray) -> MetaGradientState:
        """The initial state: meta-parameters from `optimizer`, fresh units for every task.

        **Arguments:**

        - `optimizer`: the learned optimizer to meta-train (its array fields are the
          initial meta-parameters).
        - `key`: PRNG key.

        **Returns:**

        A [`lorl_meta.MetaGradientState`][].
        """
        self.check_optimizer(optimizer)
        return self._core()._init(optimizer, raw_key(key))

    @eqx.filter_jit
    def _init(self, optimizer: Any, key: Array) -> MetaGradientState:
        meta_params = eqx.filter(optimizer, eqx.is_array)
        run_key, *task_keys = jax.random.split(key, len(self.tasks) + 1)
        units = tuple(
            self._init_units(t, optimizer, k) for t, k in zip(self.tasks, task_keys, strict=True)
        )
        return MetaGradientState(
            meta_params,
            self._meta_optimizer().init(eqx.filter(optimizer, eqx.is_inexact_array)),
            units,
            jnp.asarray(0, jnp.int32),
            run_key,
            jnp.asarray(0, jnp.int32),
        )

    def _unit_objective(
        self, task: MetaTask, optimizer: Any, unit: A2CState
    ) -> tuple[Float[Array, ""], tuple[A2CState, dict[str, Array]]]:
        """M inner updates of one unit, then the outer loss on a fresh rollout."""
        agent = task.agent
        env = task.train_env
        opt = task.optimizer_for(optimizer)

        def inner(state: A2CState, _):
            state, trajectory, ep = agent.rollout(state, env, task.env_params)
            key, opt_key = jax.random.split(state.key)
            network, opt_state, aux = agent.update(
                state.network,
                state.opt_state,
                trajectory,
                opt,
                state.update,
                training_proportion=self.training_proportion(state.update),
                key=opt_key,
            )
            new = A2CState(
                network, opt_state, state.env_state, state.obs, state.episodes,
                state.update + 1, key,
            )  # fmt: skip
            return new, (ep["episode_return"], aux["nonfinite"])

        unit, (returns, nonfinite) = jax.lax.scan(inner, unit, None, length=self.config.n_inner)
        unit, trajectory, ep = agent.rollout(unit, env, task.env_params)
        loss, aux = agent.loss(unit.network, trajectory, part=self.config.outer_loss)
        scale = jnp.asarray(task.reward_scale, jnp.float32)
        metrics = {
            "episode_return": jnp.nanmean(jnp.concatenate([returns, ep["episode_return"][None]]))
            / scale,
            "inner_nonfinite": jnp.any(nonfinite),
            "entropy": aux["entropy"],
        }
        return loss, (unit, metrics)

    def _objective(
        self, meta_params: PyTree, static: Any, units: tuple[A2CState, ...]
    ) -> tuple[Float[Array, ""], tuple[tuple[A2CState, ...], dict[str, Array]]]:
        optimizer = eqx.combine(meta_params, static)
        losses, new_units, metrics = [], [], {}
        for task, unit in zip(self.tasks, units, strict=True):
            loss, (unit, m) = jax.vmap(
                lambda u, task=task: self._unit_objective(task, optimizer, u)
            )(self._shard(unit))
            loss, unit, m = self._shard((loss, unit, m))
            losses.append(jnp.mean(loss))
            new_units.append(unit)
            metrics[f"{task.name}/outer_loss"] = jnp.mean(loss)
            metrics[f"{task.name}/episode_return"] = jnp.nanmean(m["episode_return"])
            metrics[f"{task.name}/entropy"] = jnp.mean(m["entropy"])
            metrics[f"{task.name}/inner_nonfinite"] = jnp.sum(m["inner_nonfinite"])
        total = jnp.mean(jnp.stack(losses))
        return total, (tuple(new_units), metrics)

    def _reset(
        self, optimizer: Any, units: tuple[A2CState, ...], step: Array, key: Array
    ) -> tuple[tuple[A2CState, ...], Array]:
        """Pipeline resets of meta-iteration `step` (no-op for the ablation)."""
        if not self.config.pipeline:
            return units, jnp.asarray(0, jnp.int32)
        keys = jax.random.split(key, len(self.tasks))
        out, n_reset = [], jnp.asarray(0, jnp.int32)
        for task, unit, k in zip(self.tasks, units, keys, strict=True):
            mask = reset_mask(self._offsets(task), step, self.config.reset_interval)
            fresh = self._init_units(task, optimizer, k)

            def pick(new, old, mask=mask):
                m = mask.reshape((-1,) + (1,) * (jnp.ndim(old) - 1))
                return jnp.where(m, new, old)

            out.append(self._shard(jax.tree.map(pick, fresh, unit)))
            n_reset = n_reset + jnp.sum(mask.astype(jnp.int32))
        return tuple(out), n_reset

    @eqx.filter_jit
    def step(self, state: MetaGradientState, static: Any) -> tuple[MetaGradientState, dict]:
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
        optimizer = eqx.combine(state.meta_params, static)
        key, reset_key = jax.random.split(state.key)
        units, n_reset = self._reset(optimizer, state.units, state.step, reset_key)
        diff, nondiff = eqx.partition(state.meta_params, eqx.is_inexact_array)

        def objective(d):
            return self._objective(eqx.combine(d, nondiff), static, units)

        (loss, (units, metrics)), grads = jax.value_and_grad(objective, has_aux=True)(diff)
        grad_norm = optax.tree.norm(grads)
        finite = jnp.isfinite(grad_norm) & jnp.isfinite(loss)
        grads = jax.tree.map(lambda g: jnp.where(finite, g, jnp.zeros_like(g)), grads)
        with jax.numpy_dtype_promotion("standard"):
            updates, opt_state = self._meta_optimizer().update(grads, state.meta_opt_state, diff)
        new_diff = optax.apply_updates(diff, updates)
        new_diff = jax.tree.map(lambda n, o: jnp.where(finite, n, o), new_diff, diff)
        opt_state = jax.tree.map(
            lambda n, o: jnp.where(finite, n, o), opt_state, state.meta_opt_state
        )
        new_state = MetaGradientState(
            eqx.combine(new_diff, nondiff),
            opt_state,
            units,
            state.step + 1,
            key,
            state.n_nonfinite + jnp.logical_not(finite).astype(jnp.int32),
        )
        metrics = dict(metrics)
        metrics.update(_group_norms(grads, "meta_grad_norm"))
        metrics.update(
            meta_loss=loss,
            meta_grad_norm=grad_norm,
            n_reset=n_reset,
            nonfinite_meta_grad=jnp.logical_not(finite),
        )
        return new_state, metrics

    # ------------------------------------------------------------------ evaluation

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

        `{"meta_loss": ..., "<task>/episode_return": ..., ...}` as Python floats.
        """
        if n_iterations < 1:
            raise ValueError(f"n_iterations must be >= 1, got {n_iterations}")
        self.check_optimizer(optimizer)
        out = _evaluate(self._core(), optimizer, n_iterations, raw_key(key))
        return {k: float(v) for k, v in out.items()}

    # ------------------------------------------------------------------ the run

    def fingerprint(self, optimizer: AbstractLearnedOptimizer, seed: int) -> dict[str, Any]:
        """What must match for a checkpoint to be resumed: configuration, tasks, the
        optimizer's type and meta-parameter shapes, and the seed."""
        tasks = []
        for t in self.tasks:
            tasks.append(
                {
                    "name": t.name,
                    "env": type(t.env).__name__,
                    "env_params": describe_tree(t.env_params),
                    "agent": repr(t.agent.config),
                    "n_units": t.n_units,
                    "reward_scale": t.reward_scale,
                    "agent_lr": t.agent_lr,
                }
            )
        return {
            "trainer": "MetaGradientTrainer",
            "config": {
                k: v for k, v in dataclasses.asdict(self.config).items() if k != "n_meta_steps"
            },
            "tasks": tasks,
            "optimizer": type(optimizer).__name__,
            "optimizer_static": repr(eqx.partition(optimizer, eqx.is_array)[1]),
            "meta_parameters": describe_tree(optimizer),
            "seed": seed,
        }

    def train(
        self,
        optimizer: AbstractLearnedOptimizer,
        *,
        seed: int,
        checkpoint_dir: str | pathlib.Path | None = None,
        log_dir: str | pathlib.Path | None = None,
        progress: bool = True,
        tensorboard: bool = False,
    ) -> MetaGradientResult:
        """Meta-train `optimizer` for `config.n_meta_steps` meta-iterations, resumably.

        With `checkpoint_dir`, the full state (meta-parameters, Adam state, units, key,
        counters) and the metric history are saved every `config.checkpoint_every`
        meta-iterations and at the end; if the directory already holds a checkpoint of the
        same configuration and seed, the run resumes from the newest one and ends with the
        same meta-parameters, bit for bit on CPU, as an uninterrupted run. A directory of a
        different run raises [`lorl_meta.CheckpointMismatchError`][] before any compute.
        `n_meta_steps` may grow between invocations (to extend a run).

        **Arguments:**

        - `optimizer`: the learned optimizer (its fields are the initial meta-parameters).
        - `seed`: integer seed of the whole run.
        - `checkpoint_dir`: directory for checkpoints (`None`: no checkpoints).
        - `log_dir`: directory for `metrics.jsonl` / `metrics.csv` (`None`: in memory only).
        - `progress`: show a tqdm bar with ETA and the current meta-loss.
        - `tensorboard`: also write TensorBoard scalars to `log_dir/tb` (needs
          `tensorboardX`).

        **Returns:**

        A [`lorl_meta.MetaGradientResult`][].
        """
        self.check_optimizer(optimizer)
        if not isinstance(seed, int | np.integer) or isinstance(seed, bool):
            raise ValueError(f"seed must be an integer, got {seed!r}")
        ckpt = None
        if checkpoint_dir is not None:
            ckpt = Checkpointer(checkpoint_dir, self.fingerprint(optimizer, int(seed)))
        log = MetricsLog(log_dir, tensorboard=tensorboard)
        static = eqx.partition(optimizer, eqx.is_array)[1]
        core = self._core()
        state = core._init(optimizer, jax.random.PRNGKey(int(seed)))
        start = 0
        if ckpt is not None and ckpt.latest_step() is not None:
            start = int(ckpt.latest_step())  # pyright: ignore[reportArgumentType]
            state, extras = ckpt.restore(start, state)
            log.reset(extras["history"])
        total = self.config.n_meta_steps
        bar = progress_bar(total, start, "meta-gradient", progress)
        t0 = time.perf_counter()
        try:
            for t in range(start, total):
                state, metrics = core.step(state, static)
                row: dict[str, Any] = {"step": t + 1}
                row.update({k: _scalar(v) for k, v in metrics.items()})
                row["wall_time"] = time.perf_counter() - t0
                log.append(row)
                bar.set_postfix(meta_loss=f"{row['meta_loss']:.4g}")
                bar.update(1)
                if ckpt is not None and (
                    (t + 1) % self.config.checkpoint_every == 0 or t + 1 == total
                ):
                    ckpt.save(t + 1, state, {"history": log.rows})
        finally:
            bar.close()
            log.close()
            if ckpt is not None:
                ckpt.close()
        return MetaGradientResult(eqx.combine(state.meta_params, static), state, log.rows)


def _group_norms(tree: PyTree, prefix: str) -> dict[str, Array]:
    """`{"<prefix>/<field>": global norm}` per top-level field of a module (per key of a
    dict, per index of a sequence): which part of the optimizer the meta-gradient reaches."""
    groups: dict[str, list[Array]] = {}
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        head = path[0] if path else None
        name = getattr(head, "name", getattr(head, "key", getattr(head, "idx", "root")))
        groups.setdefault(f"{prefix}/{name}", []).append(leaf)
    return {k: optax.tree.norm(v) for k, v in groups.items()}


def _scalar(x: Any) -> float | int | bool:
    a = np.asarray(x)
    if a.dtype == np.bool_:
        return bool(a)
    if np.issubdtype(a.dtype, np.integer):
        return int(a)
    return float(a)


@eqx.filter_jit
def _evaluate(
    trainer: MetaGradientTrainer, optimizer: Any, n_iterations: int, key: Array
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
