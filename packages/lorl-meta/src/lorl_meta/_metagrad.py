"""Meta-gradient training of a learned optimizer with pipeline training (Optim4RL,
Lan et al., Sections 2.2 and 5.1, Appendix C)."""

import dataclasses
from collections.abc import Sequence
from typing import Any, Literal

import equinox as eqx
import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jaxtyping import Array, Float, Int, PyTree

from lorl_agents import A2C, A2CState
from lorl_optim import AbstractLearnedOptimizer

from ._metagrad_base import MetaGradientBase, unit_metrics
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
    - `unit_batch`: speed only. `0` (default): a task's units run as one vmapped program.
      `k > 0`: they run `k` at a time (`jax.lax.map`), each group under
      `jax.checkpoint`, so the backward pass recomputes a group's forward pass instead of
      storing every unit's intermediates (the per-parameter optimizer network's gates
      for all units and inner updates, gigabytes at the paper's 512 units). On the
      2-core CPU, `k = 8` made a meta-iteration at Optim4RL's paper configuration 2.1x
      faster (docs/meta/benchmarks.md); on accelerators one vmap (`0`) is usually best.
      The meta-gradient is the same up to float32 rounding (the sum over units is
      ordered differently). Not combinable with a device mesh (units are sharded there).
      Left out of checkpoint fingerprints, so a run may be resumed with another value.
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
    unit_batch: int = dataclasses.field(default=0, metadata={"speed_only": True})

    def __post_init__(self):
        for name in ("n_meta_steps", "n_inner", "reset_interval", "checkpoint_every"):
            value = getattr(self, name)
            if not isinstance(value, int | np.integer) or isinstance(value, bool) or value < 1:
                raise ValueError(
                    f"MetaGradientConfig.{name} must be an integer >= 1, got {value!r}"
                    + (" (M, the number of inner updates)" if name == "n_inner" else "")
                    + (" (m, the pipeline reset interval)" if name == "reset_interval" else "")
                )
        ub = self.unit_batch
        if not isinstance(ub, int | np.integer) or isinstance(ub, bool) or ub < 0:
            raise ValueError(f"MetaGradientConfig.unit_batch must be an integer >= 0, got {ub!r}")
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


class MetaGradientTrainer(MetaGradientBase):
    """Meta-gradient training of a learned optimizer (Optim4RL, Sections 2.2 and 5.1).

    Every task has `n_units` training units (agent network, environment state, optimizer
    state), batched with `vmap`. One meta-iteration `t`:

    1. Pipeline training: unit `i` is reset (fresh network, fresh environment, zeroed
       optimizer state) when `r_i == t mod m`, with `r_1..r_n` evenly spaced integers over
       `[0, m - 1]` ([`lorl_meta.reset_offsets`][]). The ablation never resets.
    2. Every unit makes `M` A2C updates with the learned optimizer (rollout, gradient of
       the full A2C loss, element-wise clip, learned update: `lorl_agents.A2C.step`).
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

    _name = "MetaGradientTrainer"
    _task_type = MetaTask
    _agent_type = A2C
    _agent_hint = "an A2C agent; PPO tasks go to lorl_meta.PPOMetaGradientTrainer"
    _state_type = MetaGradientState
    _result_type = MetaGradientResult
    _progress_desc = "meta-gradient"

    def __init__(
        self,
        config: MetaGradientConfig,
        tasks: Sequence[MetaTask[A2C]] | MetaTask[A2C],
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
          before any compute). `None` (default): no sharding constraint at all. The mesh
          may span the devices of several processes (`jax.distributed`; see
          [`lorl_meta.MetaGradientTrainer.train`][]).
        """
        self._setup(config, tasks, mesh)

    def _unit_objective(
        self, task: MetaTask[A2C], optimizer: Any, unit: A2CState
    ) -> tuple[Float[Array, ""], tuple[A2CState, dict[str, Array]]]:
        """M inner updates of one unit, then the outer loss on a fresh rollout."""
        agent = task.agent
        env = task.train_env
        opt = task.optimizer_for(optimizer)

        def inner(state: A2CState, _):
            state, aux = agent.step(
                state,
                env,
                task.env_params,
                opt,
                training_proportion=self.training_proportion(state.update),
            )
            return state, (aux["episode_return"], aux["nonfinite"])

        unit, (returns, nonfinite) = jax.lax.scan(inner, unit, None, length=self.config.n_inner)
        unit, trajectory, ep = agent.rollout(unit, env, task.env_params)
        loss, aux = agent.loss(unit.network, trajectory, part=self.config.outer_loss)
        return loss, (unit, unit_metrics(task, returns, ep, nonfinite, aux))
