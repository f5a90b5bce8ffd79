"""Meta-gradient training of a learned optimizer through PPO with pipeline training
(Optim4RL, Lan et al., Sections 2.2, 5.1 and 6.1; Appendix C: "For training Optim4RL in
Ant from scratch ...").

The A2C trainer ([`lorl_meta.MetaGradientTrainer`][]) carries A2C states; this module is
its PPO counterpart: both share everything but the inner update and the unit types
(`_metagrad_base`: schedule, sharding, meta-step, checkpoints and the train loop).
"""

import dataclasses
from collections.abc import Sequence
from typing import Any, Literal

import equinox as eqx
import jax
from jax.sharding import Mesh, NamedSharding
from jaxtyping import Array, Float, Int, PyTree

from lorl_agents import PPO, PPOState
from lorl_optim import AbstractLearnedOptimizer

from ._metagrad import MetaGradientConfig
from ._metagrad_base import MetaGradientBase, unit_metrics
from ._tasks import MetaTask


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


class PPOMetaGradientTrainer(MetaGradientBase):
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

    _name = "PPOMetaGradientTrainer"
    _task_type = MetaTask
    _agent_type = PPO
    _agent_hint = "a PPO agent (a PPOMetaTask); A2C tasks go to lorl_meta.MetaGradientTrainer"
    _state_type = PPOMetaGradientState
    _result_type = PPOMetaGradientResult
    _progress_desc = "meta-gradient (PPO)"

    def __init__(
        self,
        config: MetaGradientConfig,
        tasks: Sequence[MetaTask[PPO]] | MetaTask[PPO],
        *,
        mesh: Mesh | NamedSharding | None = None,
    ):
        """**Arguments:**

        - `config`: a [`lorl_meta.PPOMetaGradientConfig`][] (a plain
          [`lorl_meta.MetaGradientConfig`][] works too; mind its A2C default
          `outer_loss="actor"`).
        - `tasks`: one [`lorl_meta.PPOMetaTask`][] (or `MetaTask` with a PPO agent) or
          several (meta-gradient averaged).
        - `mesh`: shard the unit axis over devices (as [`lorl_meta.MetaGradientTrainer`][];
          every `n_units` must divide over the devices, checked here; the mesh may span
          several processes).
        """
        if not isinstance(config, MetaGradientConfig):
            raise TypeError(f"config must be a PPOMetaGradientConfig, got {type(config).__name__}")
        self._setup(config, tasks, mesh)

    def inner_update(
        self, task: MetaTask[PPO], optimizer: Any, unit: PPOState
    ) -> tuple[PPOState, dict[str, Array]]:
        """One inner update of one (unbatched) unit: a PPO update with the learned
        optimizer at the unit's training proportion. Pure and differentiable w.r.t. the
        optimizer's array fields.

        **Arguments:**

        - `task`: the unit's task.
        - `optimizer`: the learned optimizer (before `task.optimizer_for`).
        - `unit`: the unit's `lorl_agents.PPOState`.

        **Returns:**

        `(unit, metrics)`: the unit after the update (`update` counter + 1) and the metrics
        of [`lorl_agents.PPO.step`][] (the update's, and the rollout's episode
        statistics).
        """
        return task.agent.step(
            unit,
            task.train_env,
            task.env_params,
            task.optimizer_for(optimizer),
            training_proportion=self.training_proportion(unit.update),
        )

    def _unit_objective(
        self, task: MetaTask[PPO], optimizer: Any, unit: PPOState
    ) -> tuple[Float[Array, ""], tuple[PPOState, dict[str, Array]]]:
        """M inner PPO updates of one unit, then the outer loss on a fresh rollout."""

        def inner(state: PPOState, _):
            state, aux = self.inner_update(task, optimizer, state)
            return state, (aux["episode_return"], aux["nonfinite"])

        unit, (returns, nonfinite) = jax.lax.scan(inner, unit, None, length=self.config.n_inner)
        unit, batch, ep, _ = task.agent.rollout(unit, task.train_env, task.env_params)
        loss, aux = task.agent.loss(unit.network, batch, part=self.config.outer_loss)
        return loss, (unit, unit_metrics(task, returns, ep, nonfinite, aux))
