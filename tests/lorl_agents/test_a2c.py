"""A2C: the loss against an independent computation, gradients through the update step,
learning on a gridworld."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import lorl_agents as la

CONFIG = la.A2CConfig.small_gridworld(n_envs=8, n_steps=5, total_timesteps=8 * 5 * 4)


class SGD(eqx.Module):
    """A minimal optimizer whose learning rate is a field (a meta-parameter)."""

    lr: jax.Array

    def init(self, params):
        return None

    def update(self, grads, state, params, **context):
        return jax.tree.map(lambda g: -self.lr * g, grads), state


@pytest.fixture(scope="module")
def cartpole():
    return la.make_env("CartPole-v1")


@pytest.fixture(scope="module")
def trajectories(cartpole):
    env, params = cartpole
    agent = la.A2C(CONFIG)
    state = agent.init(env, params, SGD(jnp.asarray(0.1)), key=jax.random.key(0))
    state, traj1, _ = eqx.filter_jit(agent.rollout)(state, env, params)
    state, traj2, _ = eqx.filter_jit(agent.rollout)(state, env, params)
    return agent, state.network, traj1, traj2


def test_a2c_loss_against_numpy(trajectories):
    agent, net, traj, _ = trajectories
    loss, _aux = agent.loss(net, traj)
    t, n = traj.rewards.shape
    logits, values, _ = jax.vmap(net)(traj.obs.reshape(t * n, -1))
    _, last_v, _ = jax.vmap(net)(traj.last_obs)
    logits, values = np.asarray(logits), np.asarray(values).reshape(t, n)
    r, d = np.asarray(traj.rewards), np.asarray(traj.dones, np.float64)
    g, lam, gamma = np.zeros((t, n)), CONFIG.lam, CONFIG.gamma
    nxt_g, nxt_v = np.asarray(last_v), np.asarray(last_v)
    for i in reversed(range(t)):
        g[i] = r[i] + gamma * (1 - d[i]) * ((1 - lam) * nxt_v + lam * nxt_g)
        nxt_g, nxt_v = g[i], values[i]
    delta = (g - values).reshape(-1)
    logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    a = np.asarray(traj.actions).reshape(-1)
    actor = np.mean(-logp[np.arange(t * n), a] * delta)
    entropy = np.mean(-(np.exp(logp) * logp).sum(-1))
    expected = actor + 0.5 * np.mean(delta**2) - 0.01 * entropy
    np.testing.assert_allclose(loss, expected, rtol=1e-4)
    actor_part, _ = agent.loss(net, traj, part="actor")
    np.testing.assert_allclose(actor_part, actor - 0.01 * entropy, rtol=1e-4)


def test_meta_gradient_flows_through_the_update_step(trajectories):
    """d(outer objective after one A2C update)/d(learning rate) matches finite differences.

    The outer objective has no stop-gradients (the A2C loss itself has some, so its value's
    finite difference is not its semi-gradient): the log-likelihood of a fresh trajectory's
    actions plus its mean value under the updated network."""
    agent, net, traj1, traj2 = trajectories
    t, n = traj2.rewards.shape

    def outer(lr):
        new_net, _, _ = agent.update(
            net, None, traj1, SGD(lr), jnp.asarray(0, jnp.int32), key=jax.random.key(1)
        )
        logits, values, _ = jax.vmap(new_net)(traj2.obs.reshape(t * n, -1))
        log_probs = la.categorical_log_prob(logits, traj2.actions.reshape(-1))
        return jnp.mean(log_probs) + jnp.mean(values)

    lr = jnp.asarray(0.05)
    grad = jax.jit(jax.grad(outer))(lr)
    h = 0.005
    outer_jit = jax.jit(outer)
    fd = (outer_jit(lr + h) - outer_jit(lr - h)) / (2 * h)
    assert abs(float(grad)) > 1e-4
    np.testing.assert_allclose(grad, fd, rtol=0.02)


class ProportionProbe(eqx.Module):
    """An 'optimizer' whose update of every parameter is the training proportion it got."""

    def init(self, params):
        return None

    def update(self, grads, state, params, *, training_proportion=None, **context):
        return jax.tree.map(lambda g: jnp.full_like(g, training_proportion), grads), state


def test_training_proportion_default_and_override(trajectories):
    # Default: update_index / (n_updates - 1) with CONFIG's 4 updates; an explicit
    # training_proportion (a unit's age over its lifetime in meta-training) replaces it.
    agent, net, traj1, _ = trajectories
    assert CONFIG.n_updates == 4

    def moved(update_index, **kwargs):
        new, _, _ = agent.update(
            net,
            None,
            traj1,
            ProportionProbe(),
            jnp.asarray(update_index, jnp.int32),
            key=jax.random.key(0),
            **kwargs,
        )
        return np.asarray(new.policy_head.bias - net.policy_head.bias)

    np.testing.assert_allclose(moved(2), 2 / 3, rtol=1e-6)
    np.testing.assert_allclose(moved(2, training_proportion=0.25), 0.25, rtol=1e-6)
    np.testing.assert_allclose(moved(0, training_proportion=jnp.asarray(0.8)), 0.8, rtol=1e-6)


def test_a2c_train_on_cartpole_and_errors(cartpole):
    env, params = cartpole
    result = la.A2C(CONFIG).train(env, params, optax.adam(1e-3), key=jax.random.key(0))
    assert result.metrics["dormancy"].shape == (CONFIG.n_updates, 3)
    assert result.layer_names == ("torso", "policy_head", "value_head")
    assert np.isfinite(float(result.final_return))
    pendulum, p_params = la.make_env("Pendulum-v1")
    with pytest.raises(ValueError, match="discrete action spaces only"):
        la.A2C(CONFIG).train(pendulum, p_params, optax.adam(1e-3), key=jax.random.key(0))
    with pytest.raises(ValueError, match="channels-last"):
        la.A2C(la.A2CConfig.big_gridworld()).make_network(env, params, key=jax.random.key(0))


def test_a2c_learns_small_dense_short():
    lg = pytest.importorskip("lorl_gridworlds")
    env, params = lg.make("small_dense_short")
    config = la.A2CConfig.small_gridworld(n_envs=64, total_timesteps=64 * 20 * 250)
    result = la.A2C(config).train(env, params, optax.adam(3e-3), key=jax.random.key(0))
    returns = np.asarray(result.metrics["episode_return"])
    # Random play scores about 0 here (+100 and -100 objects, rewards scaled); the
    # paper's fully trained agents reach ~11 (Optim4RL Table 8).
    assert abs(np.nanmean(returns[:10])) < 1.5
    assert float(result.final_return) > 2.0


def test_a2c_cnn_on_big_gridworld():
    lg = pytest.importorskip("lorl_gridworlds")
    env, params = lg.make("big_dense_long")
    config = la.A2CConfig.big_gridworld(n_envs=8, n_steps=5, total_timesteps=8 * 5 * 2)
    result = la.A2C(config).train(env, params, optax.adam(3e-3), key=jax.random.key(0))
    assert result.layer_names == ("conv", "torso", "policy_head", "value_head")
    assert result.network.conv is not None
    assert np.all(np.isfinite(np.asarray(result.metrics["total_loss"])))


@pytest.mark.slow
def test_a2c_cnn_torso_stays_alive_under_rmsprop_on_big_dense_long():
    """Regression (docs/agents/benchmarks.md, "big_dense_long dormancy"): with Equinox's
    default init the CNN torso died within a few RMSProp (3e-3) updates, 0.72-0.84 of it
    dormant after 5; with the Flax-default init it stays alive. 4 network seeds vmapped,
    16 envs x 20 steps x 6 updates; both inits share one compiled program."""
    lg = pytest.importorskip("lorl_gridworlds")
    env, params = lg.make("big_dense_long")
    agent = la.A2C(la.A2CConfig.big_gridworld(n_envs=16, total_timesteps=16 * 20 * 6))
    opt = optax.rmsprop(3e-3)
    keys = jax.random.split(jax.random.key(0), 4)

    def torso_dormancy(init):
        nets = eqx.filter_vmap(
            lambda k: la.A2CNetwork((13, 9, 5), 9, torso="cnn", init=init, key=k)
        )(keys)
        with jax.numpy_dtype_promotion("standard"):
            result = eqx.filter_vmap(lambda n, k: agent.train(env, params, opt, n, key=k))(
                nets, keys
            )
        return np.asarray(result.metrics["dormancy"])[:, :, 1]  # (seed, update)

    new, old = torso_dormancy("lecun"), torso_dormancy("equinox")
    assert new.shape == (4, 6)
    assert new.max() <= 0.25 and new[:, -1].mean() <= 0.1
    assert old[:, -1].min() >= 0.5
