"""PPO's pure pieces for meta-training: rollout (constant batch), update (training
proportion override, stop-gradient agent-gradients), loss parts."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import lorl_agents as la

TINY = la.PPOConfig.cartpole(
    n_envs=4, n_steps=8, total_timesteps=10 * 32, n_minibatches=2, n_epochs=2
)


class ProportionProbe(eqx.Module):
    """SGD whose state records the training and batch proportions of every step."""

    lr: jax.Array

    def init(self, params):
        return jnp.zeros((TINY.n_epochs * TINY.n_minibatches, 2), jnp.float32), jnp.asarray(0)

    def update(self, grads, state, params=None, *, training_proportion, batch_proportion,
               **context):  # fmt: skip
        seen, i = state
        seen = seen.at[i].set(jnp.stack([training_proportion, batch_proportion]))
        return jax.tree.map(lambda g: -self.lr * g, grads), (seen, i + 1)


@pytest.fixture(scope="module")
def setup():
    env, params = la.make_env("CartPole-v1")
    agent = la.PPO(TINY)
    opt = ProportionProbe(jnp.asarray(0.1, jnp.float32))
    state = agent.init(env, params, opt, key=jax.random.key(0))
    return agent, env, params, opt, state


def test_update_uses_the_given_training_proportion(setup):
    agent, env, params, opt, state = setup
    state, batch, ep, key = agent.rollout(state, env, params)
    assert batch.obs.shape == (TINY.batch_size, 4) and set(ep) >= {"episode_return"}
    update = eqx.filter_jit(agent.update)
    net, opt_state, step = state.network, state.opt_state, state.opt_step
    _, (seen, _), opt_step, _ = update(net, opt_state, step, batch, opt, key=key)
    # Default: (opt_step // 4) / (n_updates - 1) = 0 for the first update; batch
    # proportion = epoch / (n_epochs - 1) (OPEN reference).
    np.testing.assert_allclose(np.asarray(seen), [[0, 0], [0, 0], [0, 1], [0, 1]])
    assert int(opt_step) == 4
    _, (seen, _), _, _ = update(
        state.network, state.opt_state, state.opt_step, batch, opt,
        training_proportion=jnp.asarray(0.375), key=key,
    )  # fmt: skip
    np.testing.assert_allclose(np.asarray(seen)[:, 0], [0.375] * 4)


def test_batch_and_agent_gradients_are_constants(setup):
    agent, env, params, _, state = setup
    sgd = optax.sgd(0.1)
    state = agent.init(env, params, sgd, key=jax.random.key(1))

    def through_batch(net):
        s = eqx.tree_at(lambda s: s.network, state, net)
        _, batch, _, _ = agent.rollout(s, env, params)
        return jnp.sum(batch.log_probs) + jnp.sum(batch.values) + jnp.sum(batch.targets)

    grads = eqx.filter_grad(through_batch)(state.network)
    assert all(float(jnp.max(jnp.abs(g))) == 0.0 for g in jax.tree.leaves(grads))

    _, batch, _, key = agent.rollout(state, env, params)

    def after_update(net):
        new, _, _, _ = agent.update(net, state.opt_state, state.opt_step, batch, sgd, key=key)
        return jnp.sum(new.critic[-1].bias)

    # d(theta - lr * stop_gradient(g(theta)))/d(theta) = identity: only the direct path.
    g = eqx.filter_grad(after_update)(state.network)
    np.testing.assert_allclose(np.asarray(g.critic[-1].bias), [1.0])
    assert float(jnp.max(jnp.abs(g.actor[0].weight))) == 0.0


def test_loss_parts(setup):
    agent, env, params, _, state = setup
    _, batch, _, _ = agent.rollout(state, env, params)
    full, aux = agent.loss(state.network, batch)
    actor, _ = agent.loss(state.network, batch, part="actor")
    np.testing.assert_allclose(float(full), float(aux["total_loss"]), rtol=1e-6)
    expected = float(aux["actor_loss"]) - TINY.ent_coef * float(aux["entropy"])
    np.testing.assert_allclose(float(actor), expected, rtol=1e-6)
    # On the batch's own policy the ratio is 1: the surrogate is -mean(normalised A) = 0.
    assert abs(float(aux["actor_loss"])) < 1e-6
    with pytest.raises((ValueError, TypeError), match="part"):  # TypeError: the nox hook
        agent.loss(state.network, batch, part="critic")  # pyright: ignore[reportArgumentType]
