"""Meta-gradient training of a learned optimizer through PPO with pipeline training
(Optim4RL, Lan et al., Sections 2.2, 5.1 and 6.1; Appendix C: "For training Optim4RL in
Ant from scratch ...").

The A2C trainer ([`lorl_meta.MetaGradientTrainer`][]) carries A2C states; this module is
its PPO counterpart with the same schedule, sharding and checkpoint machinery (reused from
`_schedule`, `_sharding`, `_checkpoint`, `_logging`).
"""

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

from lorl_agents import PPO, PPOState
from lorl_optim import AbstractLearnedOptimizer

from ._checkpoint import Checkpointer, describe_tree
from ._keys import raw_key
from ._logging import MetricsLog, progress_bar
from ._metagrad import MetaGradientConfig
from ._schedule import reset_mask, reset_offsets
from ._sharding import BatchSharding, as_batch_sharding, check_divisible
from ._tasks import LRScaled, RewardScaled


@dataclasses.dataclass(frozen=True)
class PPOMetaGradientConfig(MetaGradientConfig):
    """[`lorl_meta.MetaGradientConfig`][] with PPO's defaults.

    Same fields; what differs:

    - `outer_loss`: `"full"` by default: "For PPO, both the inner loss and outer loss are
      the standard PPO loss" (Optim4RL Appendix C). `"actor"` uses the clipped surrogate
      minus the entropy bonus (no value term).
    - `reset_interval`: 512 by default (Optim4RL Appendix C.3, Ant from scratch:
      m in {512, 1024}).

    One *inner update* of a PPO unit is one whole PPO update: a rollout of
    `n_envs * n_steps` transitions, then `n_epochs * n_minibatches` learned-optimizer
    steps ([`lorl_agents.PPO.update`][]). `n_inner = M = 4` of them per meta-iteration
    (Optim4RL Appendix C: "we set M = 4 in all experiments"), then the outer loss on one
    fresh rollout.
    """

    reset_interval: int = 512  # Optim4RL Appendix C.3 (Ant): m in {512, 1024}
    outer_loss: Literal["actor", "full"] = "full"  # Optim4RL Appendix C: PPO outer = PPO loss


@dataclasses.dataclass(frozen=True, eq=False)
class PPOMetaTask:
    """One task of meta-gradient training through PPO (the PPO counterpart of
    [`lorl_meta.MetaTask`][]).

    **Arguments:**

    - `name`: a label (used in metric names).
    - `env`, `env_params`: a gymnax-interface environment, discrete or continuous actions
      (e.g. `lorl_agents.make_env("ant")`).
    - `agent`: the PPO agent of every unit (its `n_envs` environments, `n_steps`,
      `n_epochs`, `n_minibatches`; its `n_updates` is not used: the training proportion is
      the unit's age over its lifetime, see
      [`lorl_meta.PPOMetaGradientTrainer.training_proportion`][]).
    - `n_units`: training units `n` (Optim4RL Appendix C.3, Ant: 2048).
    - `reward_scale`: multiplies the rewards during meta-training (1: off).
    - `agent_lr`: agent learning rate for this task (`None`: the optimizer's own).
    """

    name: str
    env: Any
    env_params: Any
    agent: PPO
    n_units: int = 2048  # Optim4RL Appendix C.3 (Ant): n = 2048
    reward_scale: float = 1.0
    agent_lr: float | None = None

    def __post_init__(self):
        if not isinstance(self.agent, PPO):
            raise TypeError(
                f"PPOMetaTask {self.name!r}: agent must be a lorl_agents.PPO, got "
                f"{type(self.agent).__name__} (A2C tasks go to lorl_meta.MetaTask)"
            )
        if not isinstance(self.n_units, int | np.integer) or self.n_units < 1:
            raise ValueError(
                f"PPOMetaTask {self.name!r}: n_units must be an integer >= 1, got {self.n_units}"
            )
        if not self.reward_scale > 0:
            raise ValueError(
                f"PPOMetaTask {self.name!r}: reward_scale must be > 0, got {self.reward_scale}"
            )
        if self.agent_lr is not None and not self.agent_lr > 0:
            raise ValueError(
                f"PPOMetaTask {self.name!r}: agent_lr must be > 0, got {self.agent_lr}"
            )

    @property
    def train_env(self) -> Any:
        """The environment the units train on (rewards scaled if `reward_scale != 1`)."""
        return self.env if self.reward_scale == 1.0 else RewardScaled(self.env, self.reward_scale)

    def optimizer_for(self, optimizer: Any) -> Any:
        """`optimizer` at this task's agent learning rate (see [`lorl_meta.LRScaled`][])."""
        if self.agent_lr is None:
            return optimizer
        base = getattr(optimizer, "learning_rate", None)
        if not isinstance(base, int | float) or base <= 0:
            raise ValueError(
                f"PPOMetaTask {self.name!r} sets agent_lr, but {type(optimizer).__name__} has "
                "no positive `learning_rate` to rescale; leave agent_lr None"
            )
        return LRScaled(optimizer, float(self.agent_lr) / float(base))


class PPOMetaGradientState(eqx.Module):
    """Everything a PPO meta-gradient run carries between meta-iterations (and
    checkpoints); as [`lorl_meta.MetaGradientState`][] with batched
    `lorl_agents.PPOState` units."""

    meta_params: PyTree
    meta_opt_state: PyTree
    units: tuple[PPOState, ...]
    step: Int[Array, ""]
    key: Array
    n_nonfinite: Int[Array, ""]


class PPOMetaGradientResult(eqx.Module):
    """What [`lorl_meta.PPOMetaGradientTrainer.train`][] returns: `optimizer` (final
    meta-parameters), `state`, `history` (one dict of scalar metrics per meta-iteration)."""

    optimizer: AbstractLearnedOptimizer
    state: PPOMetaGradientState
    history: list[dict[str, Any]] = eqx.field(static=True)


class PPOMetaGradientTrainer(eqx.Module):
    """Meta-gradient training of a learned optimizer through PPO (Optim4RL Sections 2.2,
    5.1; Fig. 4 and Table 1, Ant and Humanoid).

    Every task has `n_units` training units (PPO agent, its environments, optimizer
    state), batched with `vmap`. One meta-iteration `t`:

    1. Pipeline training: unit `i` is reset (fresh networks, environments, zeroed
       optimizer state) when `r_i == t mod m` ([`lorl_meta.reset_offsets`][]); the
       ablation (`pipeline=False`) never resets.
    2. Every unit makes `M` PPO updates with the learned optimizer: rollout, GAE, then
       `n_epochs x n_minibatches` steps of gradient of the PPO loss -> global-norm clip ->
       learned update ([`lorl_agents.PPO.update`][]).
    3. A fresh rollout with the updated networks gives the outer loss: the standard PPO
       loss on the whole fresh batch by default (Optim4RL Appendix C). On a fresh batch
       the policy ratio is 1, so the clipped surrogate's gradient is the policy gradient
       with normalised advantages.
    4. The meta-gradient of the outer loss, averaged over units and tasks, flows back
       through all `M * n_epochs * n_minibatches` optimizer steps and the optimizer's
       recurrent state; agent-gradients and rollout data are stop-gradient inputs. Adam
       (optionally after global-norm clipping) updates the meta-parameters; a non-finite
       meta-gradient skips the update and is counted.

    With `mesh`, every task's unit axis is sharded over devices.
    """

    config: MetaGradientConfig = eqx.field(static=True)
    tasks: tuple[PPOMetaTask, ...] = eqx.field(static=True)
    batch_sharding: BatchSharding | None = eqx.field(static=True)

    def __init__(
        self,
        config: MetaGradientConfig,
        tasks: Sequence[PPOMetaTask] | PPOMetaTask,
        *,
        mesh: Mesh | NamedSharding | None = None,
    ):
        """**Arguments:**

        - `config`: a [`lorl_meta.PPOMetaGradientConfig`][] (a plain
          [`lorl_meta.MetaGradientConfig`][] works too; mind its A2C default
          `outer_loss="actor"`).
        - `tasks`: one [`lorl_meta.PPOMetaTask`][] or several (meta-gradient averaged).
        - `mesh`: shard the unit axis over devices (as [`lorl_meta.MetaGradientTrainer`][];
          every `n_units` must divide over the devices, checked here).
        """
        if not isinstance(config, MetaGradientConfig):
            raise TypeError(f"config must be a PPOMetaGradientConfig, got {type(config).__name__}")
        batch = as_batch_sharding(mesh, "PPOMetaGradientTrainer")
        task_list: tuple[Any, ...] = tuple(tasks) if isinstance(tasks, list | tuple) else (tasks,)
        if not task_list:
            raise ValueError("PPOMetaGradientTrainer needs at least one PPOMetaTask")
        for t in task_list:
            if not isinstance(t, PPOMetaTask):
                raise TypeError(f"tasks must be PPOMetaTask instances, got {type(t).__name__}")
        names = [t.name for t in task_list]
        if len(set(names)) != len(names):
            raise ValueError(f"task names must be unique, got {names}")
        for t in task_list:
            check_divisible(batch, t.n_units, f"PPOMetaTask {t.name!r}: n_units")
        self.config = config
        self.tasks = task_list
        self.batch_sharding = batch

    @property
    def mesh(self) -> Mesh | None:
        """The device mesh the units are sharded over (`None`: no sharding)."""
        return None if self.batch_sharding is None else self.batch_sharding.mesh

    def _shard(self, tree: PyTree) -> PyTree:
        if self.batch_sharding is None:
            return tree
        return self.batch_sharding.constrain(tree)

    def _core(self) -> "PPOMetaGradientTrainer":
        config = dataclasses.replace(self.config, n_meta_steps=1, checkpoint_every=1)
        batch = self.batch_sharding
        return PPOMetaGradientTrainer(
            config, self.tasks, mesh=None if batch is None else batch.sharding()
        )

    def _meta_optimizer(self) -> optax.GradientTransformation:
        cfg = self.config
        adam = optax.adam(cfg.meta_lr, b1=cfg.meta_b1, b2=cfg.meta_b2, eps=cfg.meta_eps)
        if cfg.meta_grad_clip is None:
            return adam
        return optax.chain(optax.clip_by_global_norm(cfg.meta_grad_clip), adam)

    @property
    def lifetime(self) -> int:
        """A unit's lifetime in PPO updates: `reset_interval * n_inner` (`m * M`)."""
        return self.config.reset_interval * self.config.n_inner

    def training_proportion(self, age: Int[Array, "*batch"]) -> Float[Array, "*batch"]:
        """`min(age / (m * M - 1), 1)` for a unit `age` PPO updates after its last reset
        (the convention of [`lorl_meta.MetaGradientTrainer.training_proportion`][]).

        **Arguments:**

        - `age`: PPO updates since the unit's last reset.

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

    def _init_units(self, task: PPOMetaTask, optimizer: Any, key: Array) -> PPOState:
        opt = task.optimizer_for(optimizer)
        keys = self._shard(jax.random.split(key, task.n_units))
        units = jax.vmap(lambda k: task.agent.init(task.train_env, task.env_params, opt, key=k))(
            keys
        )
        return self._shard(units)

    def init(
        self, optimizer: AbstractLearnedOptimizer, *, key: PRNGKeyArray
    ) -> PPOMetaGradientState:
        """The initial state: meta-parameters from `optimizer`, fresh units for every task.

        **Arguments:**

        - `optimizer`: the learned optimizer to meta-train.
        - `key`: PRNG key.

        **Returns:**

        A [`lorl_meta.PPOMetaGradientState`][].
        """
        self.check_optimizer(optimizer)
        return self._core()._init(optimizer, raw_key(key))

    @eqx.filter_jit
    def _init(self, optimizer: Any, key: Array) -> PPOMetaGradientState:
        meta_params = eqx.filter(optimizer, eqx.is_array)
        run_key, *task_keys = jax.random.split(key, len(self.tasks) + 1)
        units = tuple(
            self._init_units(t, optimizer, k) for t, k in zip(self.tasks, task_keys, strict=True)
        )
        return PPOMetaGradientState(
            meta_params,
            self._meta_optimizer().init(eqx.filter(optimizer, eqx.is_inexact_array)),
            units,
            jnp.asarray(0, jnp.int32),
            run_key,
            jnp.asarray(0, jnp.int32),
        )

    def inner_update(
        self, task: PPOMetaTask, optimizer: Any, unit: PPOState
    ) -> tuple[PPOState, dict[str, Array]]:
        """One inner update of one (unbatched) unit: a PPO update with the learned
        optimizer at the unit's training proportion. Pure and differentiable w.r.t. the
        optimizer's array fields.

        **Arguments:**

        - `task`: the unit's task.
        - `optimizer`: the learned optimizer (before `task.optimizer_for`).
        - `unit`: the unit's `lorl_agents.PPOState`.

        **Returns:**

        `(unit, metrics)`: the unit after the update (`update` counter + 1) and the PPO
        update's metrics plus the rollout's `episode_return`.
        """
        agent = task.agent
        opt = task.optimizer_for(optimizer)
        state, batch, ep, update_key = agent.rollout(unit, task.train_env, task.env_params)
        network, opt_state, opt_step, aux = agent.update(
            state.network,
            state.opt_state,
            state.opt_step,
            batch,
            opt,
            training_proportion=self.training_proportion(state.update),
            key=update_key,
        )
        new = PPOState(
            network, opt_state, state.env_state, state.obs, state.episodes, opt_step,
            state.update + 1, state.key,
        )  # fmt: skip
        aux = dict(aux)
        aux["episode_return"] = ep["episode_return"]
        return new, aux

    def _unit_objective(
        self, task: PPOMetaTask, optimizer: Any, unit: PPOState
    ) -> tuple[Float[Array, ""], tuple[PPOState, dict[str, Array]]]:
        """M inner PPO updates of one unit, then the outer loss on a fresh rollout."""

        def inner(state: PPOState, _):
            state, aux = self.inner_update(task, optimizer, state)
            return state, (aux["episode_return"], aux["nonfinite"])

        unit, (returns, nonfinite) = jax.lax.scan(inner, unit, None, length=self.config.n_inner)
        unit, batch, ep, _ = task.agent.rollout(unit, task.train_env, task.env_params)
        loss, aux = task.agent.loss(unit.network, batch, part=self.config.outer_loss)
        scale = jnp.asarray(task.reward_scale, jnp.float32)
        metrics = {
            "episode_return": jnp.nanmean(jnp.concatenate([returns, ep["episode_return"][None]]))
            / scale,
            "inner_nonfinite": jnp.any(nonfinite),
            "entropy": aux["entropy"],
        }
        return loss, (unit, metrics)

    def _objective(
        self, meta_params: PyTree, static: Any, units: tuple[PPOState, ...]
    ) -> tuple[Float[Array, ""], tuple[tuple[PPOState, ...], dict[str, Array]]]:
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
        return jnp.mean(jnp.stack(losses)), (tuple(new_units), metrics)

    def _reset(
        self, optimizer: Any, units: tuple[PPOState, ...], step: Array, key: Array
    ) -> tuple[tuple[PPOState, ...], Array]:
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

    @eqx.filter_jit
    def step(self, state: PPOMetaGradientState, static: Any) -> tuple[PPOMetaGradientState, dict]:
        """One meta-iteration (see the class docstring).

        **Arguments:**

        - `state`: the current state.
        - `static`: `eqx.partition(optimizer, eqx.is_array)[1]`.

        **Returns:**

        `(state, metrics)`: `meta_loss`, `meta_grad_norm`, `n_reset`,
        `nonfinite_meta_grad` and per task `<name>/outer_loss`, `<name>/episode_return`,
        `<name>/entropy`, `<name>/inner_nonfinite`.
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
        new_state = PPOMetaGradientState(
            eqx.combine(new_diff, nondiff),
            opt_state,
            units,
            state.step + 1,
            key,
            state.n_nonfinite + jnp.logical_not(finite).astype(jnp.int32),
        )
        metrics = dict(metrics)
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
        """The meta-objective of a frozen `optimizer`: fresh units (no resets),
        `n_iterations` meta-iterations, mean outer loss and episode return.

        **Arguments:**

        - `optimizer`: the learned optimizer (frozen).
        - `n_iterations`: meta-iterations to run (>= 1).
        - `key`: PRNG key (the same key gives common random numbers).

        **Returns:**

        `{"meta_loss": ..., "<task>/episode_return": ..., "<task>/outer_loss": ...}`.
        """
        if not isinstance(n_iterations, int | np.integer) or n_iterations < 1:
            raise ValueError(f"n_iterations must be an integer >= 1, got {n_iterations!r}")
        self.check_optimizer(optimizer)
        out = _evaluate(self._core(), optimizer, int(n_iterations), raw_key(key))
        return {k: float(v) for k, v in out.items()}

    def fingerprint(self, optimizer: AbstractLearnedOptimizer, seed: int) -> dict[str, Any]:
        """What must match for a checkpoint to be resumed."""
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
            "trainer": "PPOMetaGradientTrainer",
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
    ) -> PPOMetaGradientResult:
        """Meta-train `optimizer` for `config.n_meta_steps` meta-iterations, resumably
        (as [`lorl_meta.MetaGradientTrainer.train`][]: orbax checkpoints every
        `config.checkpoint_every` iterations; resuming gives the same final
        meta-parameters as an uninterrupted run; a directory of another run raises
        [`lorl_meta.CheckpointMismatchError`][] before compute).

        **Arguments:**

        - `optimizer`: the learned optimizer (its fields are the initial meta-parameters).
        - `seed`: integer seed of the whole run.
        - `checkpoint_dir`: checkpoint directory (`None`: none).
        - `log_dir`: directory for `metrics.jsonl` / `metrics.csv` (`None`: in memory).
        - `progress`: tqdm bar with ETA and the current meta-loss.
        - `tensorboard`: also write TensorBoard scalars to `log_dir/tb`.

        **Returns:**

        A [`lorl_meta.PPOMetaGradientResult`][].
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
            saved, empty = eqx.partition(state, _nonempty_array)
            saved, extras = ckpt.restore(start, saved)
            state = eqx.combine(saved, empty)
            log.reset(extras["history"])
        total = self.config.n_meta_steps
        bar = progress_bar(total, start, "meta-gradient (PPO)", progress)
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
                    # orbax refuses zero-size arrays (Brax environment states hold
                    # some); they carry no data and come back from the fresh template.
                    ckpt.save(t + 1, eqx.filter(state, _nonempty_array), {"history": log.rows})
        finally:
            bar.close()
            log.close()
            if ckpt is not None:
                ckpt.close()
        return PPOMetaGradientResult(eqx.combine(state.meta_params, static), state, log.rows)


def _nonempty_array(x: Any) -> bool:
    return eqx.is_array(x) and x.size > 0


def _scalar(x: Any) -> float | int | bool:
    a = np.asarray(x)
    if a.dtype == np.bool_:
        return bool(a)
    if np.issubdtype(a.dtype, np.integer):
        return int(a)
    return float(a)


@eqx.filter_jit
def _evaluate(
    trainer: PPOMetaGradientTrainer, optimizer: Any, n_iterations: int, key: Array
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
