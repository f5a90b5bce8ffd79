"""lorl's optimizers in a PureJaxRL-style loop of our own: a flax actor-critic, flax's
`TrainState`, a clipped-surrogate PPO update over epochs and minibatches, jitted and
vmapped over seeds. OPEN gets its context from `lorl_optim.open_context` (checked against
lorl's own PPO network with the same weights), its proportions from
`with_open_proportions` and reaches the update through `apply_gradients`; Optim4RL drops
in for Adam with a schedule. This is the code of docs/lorl/own-code.md's PureJaxRL page."""

import functools
from typing import Any

import equinox as eqx
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax.training.train_state import TrainState

import lorl_agents as la
import lorl_optim as lo

OBS, ACTIONS, WIDTH = 6, 3, 16
N_UPDATES, N_EPOCHS, N_MINIBATCHES, BATCH = 3, 2, 2, 32
NETWORKS = {
    "actor": ["actor_0", "actor_1", "actor_out"],
    "critic": ["critic_0", "critic_1", "critic_out"],
}


class ActorCritic(nn.Module):
    """Two tanh MLPs; returns every layer's output for OPEN's dormancy."""

    kernel_init: Any = nn.initializers.lecun_normal()  # flax's Dense default

    @nn.compact
    def __call__(self, x):
        acts = {}
        h = x
        dense = functools.partial(nn.Dense, kernel_init=self.kernel_init)
        for i in range(2):
            h = nn.tanh(dense(WIDTH, name=f"actor_{i}")(h))
            acts[f"actor_{i}"] = h
        logits = dense(ACTIONS, name="actor_out")(h)
        acts["actor_out"] = logits
        h = x
        for i in range(2):
            h = nn.tanh(dense(WIDTH, name=f"critic_{i}")(h))
            acts[f"critic_{i}"] = h
        value = dense(1, name="critic_out")(h)
        acts["critic_out"] = value
        return logits, value[..., 0], acts


MODEL = ActorCritic()


def _batch(key):
    k1, k2, k3, k4 = jax.random.split(key, 4)
    return {
        "obs": jax.random.normal(k1, (BATCH, OBS)),
        "action": jax.random.randint(k2, (BATCH,), 0, ACTIONS),
        "old_logp": -jnp.log(ACTIONS) * jnp.ones(BATCH),
        "advantage": jax.random.normal(k3, (BATCH,)),
        "target": jax.random.normal(k4, (BATCH,)),
    }


def _loss(params, mb, model=MODEL):
    logits, value, acts = model.apply(params, mb["obs"])
    logp_all = jax.nn.log_softmax(logits)
    logp = jnp.take_along_axis(logp_all, mb["action"][:, None], axis=1)[:, 0]
    ratio = jnp.exp(logp - mb["old_logp"])
    adv = mb["advantage"]
    surrogate = jnp.minimum(ratio * adv, jnp.clip(ratio, 0.8, 1.2) * adv)
    entropy = -jnp.sum(jnp.exp(logp_all) * logp_all, axis=1)
    loss = -surrogate.mean() + 0.5 * jnp.square(value - mb["target"]).mean() - 0.01 * entropy.mean()
    return loss, acts


def _train(tx, with_context):
    """One seed: N_UPDATES x N_EPOCHS x N_MINIBATCHES optimizer steps."""

    def run(key):
        init_key, key = jax.random.split(key)
        params = MODEL.init(init_key, jnp.zeros((1, OBS)))
        state = TrainState.create(apply_fn=MODEL.apply, params=params, tx=tx)
        for _ in range(N_UPDATES):
            key, batch_key = jax.random.split(key)
            batch = _batch(batch_key)
            for _ in range(N_EPOCHS):
                key, perm_key = jax.random.split(key)
                perm = jax.random.permutation(perm_key, BATCH)
                for mb_idx in perm.reshape(N_MINIBATCHES, -1):
                    mb = jax.tree.map(lambda x, i=mb_idx: x[i], batch)
                    (_, acts), grads = jax.value_and_grad(_loss, has_aux=True)(state.params, mb)
                    if with_context:  # OPEN: context from the tree and the forward pass
                        key, opt_key = jax.random.split(key)
                        context = lo.open_context(state.params, acts, networks=NETWORKS)
                        state = lo.apply_gradients(state, grads, **context, key=opt_key)
                    else:  # Optim4RL: flax's own apply_gradients, unchanged
                        state = state.apply_gradients(grads=grads)
        return state.params, state.step

    return jax.jit(jax.vmap(run))


def test_orthogonal_init_outside_the_vmap_workaround():
    """docs/lorl/own-code.md's workaround for the vmapped-QR hang: with an orthogonal
    initialiser, initialise each seed's parameters outside the vmapped program (the QR runs
    unbatched) and vmap only the training, which then equals the unbatched runs."""
    model = ActorCritic(kernel_init=nn.initializers.orthogonal(np.sqrt(2)))
    seeds = jax.random.split(jax.random.key(3), 2)
    init = jax.jit(lambda k: model.init(k, jnp.zeros((1, OBS))))
    with jax.numpy_dtype_promotion("standard"):  # flax's orthogonal initialiser needs it
        per_seed = [init(k) for k in seeds]  # one unbatched init (QR) per seed
    params = jax.tree.map(lambda *xs: jnp.stack(xs), *per_seed)
    tx = optax.adam(1e-3)

    def run(params, key):
        state = TrainState.create(apply_fn=model.apply, params=params, tx=tx)
        for _ in range(N_UPDATES):
            key, batch_key = jax.random.split(key)
            grads = jax.grad(lambda p, mb: _loss(p, mb, model)[0])(state.params, _batch(batch_key))
            state = state.apply_gradients(grads=grads)
        return state.params

    kernel = np.asarray(per_seed[0]["params"]["actor_1"]["kernel"])  # (16, 16): orthogonal
    np.testing.assert_allclose(kernel.T @ kernel, 2.0 * np.eye(WIDTH), atol=1e-4)
    with jax.numpy_dtype_promotion("standard"):  # optax's Adam (bias correction) needs it
        batched = jax.jit(jax.vmap(run))(params, seeds)
        alone_runs = [jax.jit(run)(per_seed[i], key) for i, key in enumerate(seeds)]
    for i, alone in enumerate(alone_runs):
        for a, b in zip(jax.tree.leaves(alone), jax.tree.leaves(batched), strict=True):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b[i]), rtol=1e-5, atol=1e-6)


def _moved(before_key, params):
    start = MODEL.init(jax.random.split(before_key)[0], jnp.zeros((1, OBS)))
    deltas = jax.tree.map(lambda a, b: float(jnp.max(jnp.abs(a - b))), params, start)
    return max(jax.tree.leaves(deltas))


def test_open_and_optim4rl_in_a_flax_ppo_loop_under_jit_and_vmap():
    keys = jax.random.split(jax.random.key(0), 2)
    steps = N_UPDATES * N_EPOCHS * N_MINIBATCHES
    open_tx = optax.chain(
        lo.clip_by_actor_critic_norm(0.5),
        lo.with_open_proportions(
            lo.load_open("breakout"),
            n_updates=N_UPDATES,
            n_epochs=N_EPOCHS,
            n_minibatches=N_MINIBATCHES,
        ),
    )
    optim4rl_tx = optax.chain(
        optax.clip_by_global_norm(0.5),
        lo.Optim4RL(optax.linear_schedule(1e-3, 0.0, steps), key=jax.random.key(1)).as_optax(),
    )
    for tx, with_context in ((open_tx, True), (optim4rl_tx, False)):
        params, step = _train(tx, with_context)(keys)
        assert np.all(np.asarray(step) == steps)
        for leaf in jax.tree.leaves(params):
            assert leaf.shape[0] == 2 and bool(jnp.all(jnp.isfinite(leaf)))
        one = jax.tree.map(lambda x: x[0], params)
        assert _moved(keys[0], one) > 0  # the optimizer changed the parameters


def test_with_open_proportions_counts_like_open_proportions():
    seen = []

    def spy_update(updates, state, params=None, **extra):
        seen.append((float(extra["training_proportion"]), float(extra["batch_proportion"])))
        return updates, state

    spy = optax.GradientTransformationExtraArgs(lambda p: optax.EmptyState(), spy_update)
    tx = lo.with_open_proportions(spy, n_updates=3, n_epochs=2, n_minibatches=2)
    state = tx.init({"w": jnp.zeros(2)})
    for _ in range(12):
        _, state = tx.update({"w": jnp.ones(2)}, state)
    expected = [lo.open_proportions(t, n_minibatches=2, n_epochs=2, n_updates=3) for t in range(12)]
    np.testing.assert_allclose(seen, [(float(a), float(b)) for a, b in expected])
    assert int(state.steps) == 12


def test_open_context_matches_lorls_own_network():
    # the same weights in flax (kernels (in, out)) and in lorl's PPONetwork (Equinox,
    # weights (out, in)): the context OPEN receives must agree leaf by leaf
    params = MODEL.init(jax.random.key(3), jnp.zeros((1, OBS)))
    obs = jax.random.normal(jax.random.key(4), (BATCH, OBS))
    _, _, acts = MODEL.apply(params, obs)
    ctx = lo.open_context(params, acts, networks=NETWORKS)

    net = la.PPONetwork((OBS,), ACTIONS, continuous=False, width=WIDTH, activation="tanh",
                        key=jax.random.key(5))  # fmt: skip
    p = params["params"]
    for side in ("actor", "critic"):
        layers = [f"{side}_0", f"{side}_1", f"{side}_out"]
        for i, name in enumerate(layers):
            net = eqx_set(net, side, i, p[name]["kernel"].T, p[name]["bias"])
    _, _, net_acts = jax.vmap(net)(obs)
    ours = {
        "dormancy": net.dormancy(net_acts),
        "layer_proportions": net.layer_proportions(),
        "actor_mask": net.actor_mask(),
    }
    for side in ("actor", "critic"):
        for i, name in enumerate([f"{side}_0", f"{side}_1", f"{side}_out"]):
            layer = getattr(ours["dormancy"], side)[i]
            kernel_d = jnp.broadcast_to(
                ctx["dormancy"]["params"][name]["kernel"],
                (WIDTH if i else OBS, layer.weight.shape[0]),
            )
            np.testing.assert_allclose(kernel_d.T, layer.weight, rtol=1e-5)
            np.testing.assert_allclose(
                ctx["dormancy"]["params"][name]["bias"], layer.bias, rtol=1e-5
            )
            lp = getattr(ours["layer_proportions"], side)[i]
            assert float(ctx["layer_proportions"]["params"][name]["kernel"]) == float(
                np.max(lp.weight)
            )
            am = getattr(ours["actor_mask"], side)[i]
            assert bool(ctx["actor_mask"]["params"][name]["bias"]) == bool(np.all(am.bias))


def eqx_set(net, side, i, weight, bias):
    net = eqx.tree_at(lambda n: getattr(n, side)[i].weight, net, weight)
    return eqx.tree_at(lambda n: getattr(n, side)[i].bias, net, bias)


def test_open_context_errors_name_the_problem():
    params = MODEL.init(jax.random.key(3), jnp.zeros((1, OBS)))
    _, _, acts = MODEL.apply(params, jnp.ones((4, OBS)))
    with pytest.raises(ValueError, match="lies under no named layer"):
        lo.open_context(params, acts, networks={"actor": ["actor_0"]})
    with pytest.raises(ValueError, match="no activations for layers"):
        lo.open_context(params, {}, networks=NETWORKS)
    with pytest.raises(ValueError, match="actor network 'policy'"):
        lo.open_context(params, acts, networks=NETWORKS, actor="policy")
    with pytest.raises(ValueError, match="first axis"):
        lo.open_context(params, acts, networks=NETWORKS, kernel_layout="out_in")
