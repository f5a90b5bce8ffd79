"""Gradient clipping as OPEN's reference PPO does it, as an optax transformation."""

from typing import Any

import jax
import jax.numpy as jnp
import optax


class ClipByActorCriticNormState(optax.EmptyState):
    """`clip_by_actor_critic_norm` keeps no state."""


def clip_by_actor_critic_norm(max_norm: float) -> optax.GradientTransformationExtraArgs:
    """Clip the global gradient norm of the actor's and of the critic's parameters to
    `max_norm` separately, as OPEN's reference PPO does (two networks, each with its own
    `clip_by_global_norm(0.5)`); lorl's own PPO does the same
    (`PPOConfig.clip_actor_critic_separately`).

    Which leaves are the actor's comes from the `actor_mask` extra argument (a pytree like
    the gradients, one boolean per leaf: True for the actor), the same context OPEN's
    update takes, so in `optax.chain(clip_by_actor_critic_norm(0.5), open.as_optax())` one
    `actor_mask=...` serves both. Without `actor_mask` every leaf is one group (plain
    `optax.clip_by_global_norm`).

    **Arguments:**

    - `max_norm`: the norm each group is clipped to (OPEN Table 3: 0.5).

    **Returns:**

    An `optax.GradientTransformationExtraArgs`.

    **Raises:**

    `ValueError` for a non-positive `max_norm`; in `update`, for an `actor_mask` whose
    structure differs from the gradients'.
    """
    if isinstance(max_norm, bool) or not isinstance(max_norm, int | float) or not max_norm > 0:
        raise ValueError(f"max_norm must be a number > 0, got {max_norm!r}")
    limit = float(max_norm)

    def init_fn(params: Any) -> ClipByActorCriticNormState:
        del params
        return ClipByActorCriticNormState()

    def update_fn(
        updates: Any, state: Any, params: Any = None, *, actor_mask: Any = None, **extra: Any
    ) -> tuple[Any, Any]:
        del params, extra
        leaves, treedef = jax.tree.flatten(updates)
        if actor_mask is None:
            masks = [jnp.asarray(True)] * len(leaves)
        else:
            mask_leaves, mask_def = jax.tree.flatten(actor_mask)
            if mask_def.num_leaves != treedef.num_leaves:
                raise ValueError(
                    f"actor_mask has {mask_def.num_leaves} leaves but the gradients have "
                    f"{treedef.num_leaves}; give one boolean per gradient leaf"
                )
            masks = [jnp.asarray(m, bool) for m in mask_leaves]
        squares = [jnp.sum(jnp.square(g.astype(jnp.float32))) for g in leaves]
        zero = jnp.zeros((), jnp.float32)
        actor = jnp.sqrt(
            sum((jnp.where(m, s, zero) for s, m in zip(squares, masks, strict=True)), zero)
        )
        critic = jnp.sqrt(
            sum((jnp.where(m, zero, s) for s, m in zip(squares, masks, strict=True)), zero)
        )
        scale_a = jnp.minimum(1.0, limit / jnp.maximum(actor, 1e-12))
        scale_c = jnp.minimum(1.0, limit / jnp.maximum(critic, 1e-12))
        clipped = [
            (g * jnp.where(m, scale_a, scale_c)).astype(g.dtype)
            for g, m in zip(leaves, masks, strict=True)
        ]
        return jax.tree.unflatten(treedef, clipped), state

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)  # pyright: ignore[reportArgumentType]
