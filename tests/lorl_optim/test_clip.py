"""`lorl_optim.clip_by_actor_critic_norm`: OPEN's reference clipping (actor and critic
gradient norms clipped separately) as an optax transformation, against hand-computed
values."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import lorl_optim as lo

GRADS = {
    "actor": jnp.asarray([3.0, 4.0]),
    "critic": jnp.asarray([0.3, 0.4]),
    "b": jnp.asarray([12.0]),
}
MASK = {"actor": True, "critic": False, "b": True}


def test_groups_are_clipped_separately():
    tx = lo.clip_by_actor_critic_norm(0.5)
    out, _ = tx.update(GRADS, tx.init(GRADS), actor_mask=MASK)
    # actor group: |(3, 4, 12)| = 13 -> scaled by 0.5 / 13; critic: |(0.3, 0.4)| = 0.5, kept
    np.testing.assert_allclose(out["actor"], np.asarray([3.0, 4.0]) * 0.5 / 13, rtol=1e-6)
    np.testing.assert_allclose(out["b"], [12.0 * 0.5 / 13], rtol=1e-6)
    np.testing.assert_allclose(out["critic"], [0.3, 0.4], rtol=1e-6)


def test_without_a_mask_it_is_the_global_clip_and_chains_with_open():
    tx = lo.clip_by_actor_critic_norm(0.5)
    out, _ = tx.update(GRADS, tx.init(GRADS))
    ref, _ = optax.clip_by_global_norm(0.5).update(GRADS, optax.EmptyState())
    for a, b in zip(jax.tree.leaves(out), jax.tree.leaves(ref), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6)
    # in a chain the one actor_mask reaches both the clip and OPEN
    params = jax.tree.map(jnp.zeros_like, GRADS)
    chain = optax.chain(
        lo.clip_by_actor_critic_norm(0.5), lo.OPEN(key=jax.random.key(0)).as_optax()
    )
    context = {
        "actor_mask": MASK,
        "dormancy": jax.tree.map(jnp.zeros_like, GRADS),
        "layer_proportions": jax.tree.map(lambda _: jnp.asarray(0.0), GRADS),
        "training_proportion": jnp.asarray(0.1),
        "batch_proportion": jnp.asarray(0.0),
        "key": jax.random.key(1),
    }
    updates, _ = chain.update(GRADS, chain.init(params), params, **context)
    assert all(bool(jnp.all(jnp.isfinite(u))) for u in jax.tree.leaves(updates))


def test_bad_input():
    with pytest.raises((ValueError, TypeError), match="max_norm"):
        lo.clip_by_actor_critic_norm(0.0)
    tx = lo.clip_by_actor_critic_norm(1.0)
    with pytest.raises(ValueError, match="one boolean per gradient leaf"):
        tx.update(GRADS, tx.init(GRADS), actor_mask={"actor": True})
