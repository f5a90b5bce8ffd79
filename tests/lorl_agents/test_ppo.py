"""PPO: learning on CartPole, optimizer context, vmapping, no re-tracing, clean errors."""

import dataclasses

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import lorl_agents as la

TINY = la.PPOConfig.cartpole(
    n_envs=4, n_steps=8, total_timesteps=3 * 32, n_minibatches=2, n_epochs=2
)


@pytest.fixture(scope="module")
def cartpole():
    return la.make_env("CartPole-v1")


def test_ppo_learns_cartpole(cartpole):
    """A short, fixed-seed run: random play lasts ~22 steps; PPO gets far past it."""
    env, params = cartpole
    config = la.PPOConfig.cartpole(total_timesteps=60_000)
    result = la.PPO(config).train(env, params, optax.adam(2.5e-4), key=jax.random.key(0))
    returns = np.asarray(result.metrics["episode_return"])
    first, last = np.nanmean(returns[:5]), np.nanmean(returns[-15:])
    assert first < 40.0
    assert last > 150.0, (first, last)
    assert float(result.final_return) > 100.0
    assert result.metrics["dormancy"].shape == (config.n_updates, 6)
    assert not np.any(np.asarray(result.metrics["nonfinite"]))


class RecordingOptimizer(eqx.Module):
    """SGD that records the learned-optimizer context it receives."""

    lr: jax.Array
    n_steps: int = eqx.field(static=True)

    def init(self, params):
        zeros = jnp.zeros((self.n_steps,), jnp.float32)
        return (jnp.asarray(0, jnp.int32), zeros, zeros, jnp.zeros((self.n_steps, 2), jnp.uint32))

    def update(self, grads, state, params, *, dormancy, training_proportion, batch_proportion,
               layer_proportions, actor_mask, key):  # fmt: skip
        t, tp, bp, keys = state
        # Context trees must have the parameters' structure.
        assert jax.tree.structure(dormancy) == jax.tree.structure(params)
        assert jax.tree.structure(layer_proportions) == jax.tree.structure(params)
        assert jax.tree.structure(actor_mask) == jax.tree.structure(params)
        for d, p in zip(jax.tree.leaves(dormancy), jax.tree.leaves(params), strict=True):
            assert d.shape == p.shape
        tp = tp.at[t].set(training_proportion)
        bp = bp.at[t].set(batch_proportion)
        keys = keys.at[t].set(jax.random.key_data(key))
        updates = jax.tree.map(lambda g: -self.lr * g, grads)
        return updates, (t + 1, tp, bp, keys)


def test_optimizer_receives_open_context(cartpole):
    env, params = cartpole
    agent = la.PPO(TINY)
    n_steps = TINY.n_updates * TINY.n_epochs * TINY.n_minibatches  # 3 * 2 * 2
    opt = RecordingOptimizer(jnp.asarray(0.01), n_steps)
    state = agent.init(env, params, opt, key=jax.random.key(0))
    step = eqx.filter_jit(agent.step)
    for _ in range(TINY.n_updates):
        state, _ = step(state, env, params, opt)
    t, tp, bp, keys = state.opt_state
    assert int(t) == n_steps
    # training proportion (t // (L * N_mb)) / (N_updates - 1); batch ((t // N_mb) % L) / (L - 1)
    np.testing.assert_allclose(tp, [0, 0, 0, 0, 0.5, 0.5, 0.5, 0.5, 1, 1, 1, 1])
    np.testing.assert_allclose(bp, [0, 0, 1, 1] * 3)
    assert len({tuple(k) for k in np.asarray(keys)}) == n_steps  # a fresh key each step


class LastContextSGD(eqx.Module):
    """SGD that keeps the dormancy context of its latest call in its state."""

    lr: float

    def init(self, params):
        return jax.tree.map(jnp.zeros_like, params)

    def update(self, grads, state, params, *, dormancy, **context):
        return jax.tree.map(lambda g: -self.lr * g, grads), dormancy


def test_dormancy_metric_is_the_last_minibatchs(cartpole):
    """The per-update `dormancy` metric is the tau = 0 dormant fraction of the forward pass
    of the update's last optimizer step (independently: the zero neuron scores the
    optimizer received in that step), with dead neurons so the fractions are not 0."""
    env, params = cartpole
    config = dataclasses.replace(TINY, activation="relu", n_minibatches=2, n_epochs=3)
    agent = la.PPO(config)
    net = agent.make_network(env, params, key=jax.random.key(1))
    # Neurons 0..k-1 of every hidden layer never fire (k = 3 actor, 5 critic).
    for side, k in (("actor", 3), ("critic", 5)):
        for i in range(config.n_hidden):
            net = eqx.tree_at(
                lambda n, side=side, i=i: getattr(n, side)[i].bias,
                net,
                getattr(net, side)[i].bias.at[:k].set(-1e4),
            )
    opt = LastContextSGD(0.05)
    state = agent.init(env, params, opt, net, key=jax.random.key(0))
    state, metrics = eqx.filter_jit(agent.step)(state, env, params, opt)
    last_scores = state.opt_state  # one score per neuron, spread over its parameters
    layers = [*state.network.actor, *state.network.critic]
    scores = [*last_scores.actor, *last_scores.critic]
    # A silent neuron's score is eps / mean(a + eps) (~1e-11); a live one's is far above 1e-6.
    expected = [float(np.mean(np.asarray(s.bias) < 1e-6)) for s in scores]
    assert len(layers) == len(expected) == 6
    np.testing.assert_allclose(np.asarray(metrics["dormancy"]), expected, rtol=0, atol=0)
    assert expected[0] >= 3 / 64 and expected[3] >= 5 / 64


def test_step_does_not_retrace(cartpole):
    env, params = cartpole
    agent = la.PPO(TINY)
    opt = optax.adam(1e-3)
    state = agent.init(env, params, opt, key=jax.random.key(0))

    @eqx.filter_jit
    @eqx.debug.assert_max_traces(max_traces=1)
    def step(state):
        return agent.step(state, env, params, opt)

    for _ in range(3):
        state, _metrics = step(state)
    assert int(state.update) == 3


class FaultySGD(eqx.Module):
    """SGD whose updates turn NaN from optimizer step `nan_from` on; both fields are
    arrays, so one compiled program serves every value (and vmaps over them)."""

    lr: jax.Array
    nan_from: jax.Array

    def init(self, params):
        return jnp.asarray(0, jnp.int32)

    def update(self, grads, count, params=None, **context):
        scale = jnp.where(count >= self.nan_from, jnp.nan, -self.lr)
        return jax.tree.map(lambda g: scale * g, grads), count + 1


NEVER = 10**9


@pytest.mark.timeout(600)
def test_train_vmaps_over_seeds_and_meta_parameters_and_reports_nonfinite(cartpole):
    """One vmapped program over (seed, optimizer) pairs, one single-run program."""
    env, params = cartpole
    agent = la.PPO(TINY)
    init_net = agent.make_network(env, params, key=jax.random.key(5))
    k0, k1 = jax.random.split(jax.random.key(0))
    per_update = TINY.n_epochs * TINY.n_minibatches  # 4 optimizer steps per update
    keys = jnp.stack([k0, k1, k0, k0])
    opts = FaultySGD(
        lr=jnp.array([0.01, 0.01, 0.0, 0.01]),
        nan_from=jnp.array([NEVER, NEVER, NEVER, per_update + 1]),  # last: update 1
    )
    results = eqx.filter_vmap(lambda k, o: agent.train(env, params, o, init_net, key=k))(keys, opts)
    loss = np.asarray(results.metrics["total_loss"])
    assert loss.shape == (4, TINY.n_updates)
    # Seeds differ; lr = 0 leaves the network untouched; the faulty run is reported.
    assert not np.allclose(loss[0], loss[1])
    np.testing.assert_array_equal(results.network.actor[0].weight[2], init_net.actor[0].weight)
    assert not np.allclose(results.network.actor[0].weight[0], init_net.actor[0].weight)
    np.testing.assert_array_equal(results.first_nonfinite_update, [-1, -1, -1, 1])
    with pytest.raises(la.NonFiniteUpdateError, match=r"run \(3,\): update 1"):
        la.check_finite(results)

    # The vmapped run equals the single run; a single faulty run raises with the index.
    single = agent.train(env, params, FaultySGD(jnp.asarray(0.01), jnp.asarray(NEVER)),
                         init_net, key=k0)  # fmt: skip
    np.testing.assert_allclose(single.metrics["total_loss"], loss[0], rtol=1e-4, atol=1e-5)
    faulty = FaultySGD(jnp.asarray(0.01), jnp.asarray(per_update + 1))
    with pytest.raises(la.NonFiniteUpdateError, match="update 1"):
        agent.train(env, params, faulty, init_net, key=k0)


def test_continuous_actions_gaussian_policy():
    env, params = la.make_env("Pendulum-v1")
    config = la.PPOConfig(n_envs=4, n_steps=8, total_timesteps=64, n_minibatches=2, n_epochs=1,
                          width=16, activation="tanh")  # fmt: skip
    result = la.PPO(config).train(env, params, optax.adam(1e-2), key=jax.random.key(0))
    net = result.network
    assert net.continuous and net.log_std is not None and net.log_std.shape == (1,)
    assert not np.allclose(net.log_std, 0.0)  # the log-std is trained
    assert np.all(np.isfinite(np.asarray(result.metrics["total_loss"])))


def test_bad_configs_and_inputs(cartpole):
    env, params = cartpole
    with pytest.raises(ValueError, match="does not divide into n_minibatches"):
        la.PPOConfig(n_envs=4, n_steps=10, n_minibatches=3)
    with pytest.raises(ValueError, match="less than one update"):
        la.PPOConfig(n_envs=64, n_steps=128, total_timesteps=100)
    with pytest.raises(ValueError, match="unknown environment 'Breakout'"):
        la.make_env("Breakout")
    with pytest.raises(TypeError, match="optimizer must be"):
        la.PPO(TINY).train(env, params, "adam", key=jax.random.key(0))
    # A network built for another environment.
    breakout, b_params = la.make_env("Breakout-MinAtar")
    net = la.PPO(TINY).make_network(breakout, b_params, key=jax.random.key(0))
    with pytest.raises(ValueError, match="observation mismatch"):
        la.PPO(TINY).train(env, params, optax.adam(1e-3), net, key=jax.random.key(0))
    other = la.PPONetwork((4,), 3, continuous=False, key=jax.random.key(0))
    with pytest.raises(ValueError, match="action mismatch"):
        la.PPO(TINY).train(env, params, optax.adam(1e-3), other, key=jax.random.key(0))


def test_optimizer_steps_of_a_run():
    # what a learning-rate schedule over a PPO run needs (OPEN Table 3 MinAtar sizes)
    config = la.PPOConfig.minatar()
    assert config.steps_per_update == config.n_epochs * config.n_minibatches == 4 * 8
    assert config.optimizer_steps == config.n_updates * 32 == 1220 * 32


def test_ppo_vmapped_over_open_gridworld_levels():
    lg = pytest.importorskip("lorl_gridworlds")
    env, _ = lg.make("all")
    levels = jax.vmap(lambda k: lg.sample_level(k, "all"))(jax.random.split(jax.random.key(0), 2))
    config = la.PPOConfig.gridworld(
        n_envs=8, n_steps=4, total_timesteps=2 * 32, n_minibatches=2, n_epochs=2
    )
    agent = la.PPO(config)
    keys = jax.random.split(jax.random.key(1), 2)
    results = jax.vmap(lambda p, k: agent.train(env, p, optax.adam(1e-3), key=k))(levels, keys)
    la.check_finite(results)
    assert results.network.actor[-1].out_features == 5  # OPEN gridworld: 5 actions
    assert results.metrics["total_loss"].shape == (2, config.n_updates)


def test_update_statistics_by_hand_and_in_a_run():
    g = {"a": jnp.asarray([3.0, 4.0]), "b": jnp.asarray([0.0])}
    p = {"a": jnp.asarray([6.0, 8.0]), "b": jnp.asarray([0.0])}
    stats = la.update_statistics(g, jax.tree.map(lambda x: -0.5 * x, g), p)
    np.testing.assert_allclose(stats["update_grad_cosine"], 1.0, rtol=1e-6)  # SGD's direction
    np.testing.assert_allclose(stats["update_param_ratio"], 2.5 / 10.0, rtol=1e-6)
    ortho = la.update_statistics(g, {"a": jnp.asarray([4.0, -3.0]), "b": jnp.asarray([0.0])}, p)
    np.testing.assert_allclose(ortho["update_grad_cosine"], 0.0, atol=1e-7)
    # in PPO: SGD steps along the (clipped) negative gradient, so its cosine is 1
    env, params = la.make_env("CartPole-v1")
    config = dataclasses.replace(TINY, update_statistics=True)
    result = la.PPO(config).train(env, params, optax.sgd(0.01), key=jax.random.key(0))
    np.testing.assert_allclose(result.metrics["update_grad_cosine"], 1.0, rtol=1e-4)
    assert np.all(np.asarray(result.metrics["update_param_ratio"]) > 0)
    adam = la.PPO(config).train(env, params, optax.adam(1e-3), key=jax.random.key(0))
    assert np.all(np.asarray(adam.metrics["update_grad_cosine"]) < 0.999)


def test_noise_statistics_by_hand():
    """`|delta_actor| / |params_actor|` over the actor's leaves only; nothing for an
    optimizer without learned noise."""

    class Noisy:
        use_stochasticity = True

        def noise_weights(self, grads, state, params, **context):
            assert set(context) == {"training_proportion"}
            return {"a": jnp.asarray([3.0, 4.0]), "c": jnp.asarray([100.0])}

    p = {"a": jnp.asarray([0.0, 10.0]), "c": jnp.asarray([1.0])}
    mask = {"a": jnp.asarray(True), "c": jnp.asarray(False)}
    ctx = {"training_proportion": jnp.asarray(0.5)}
    out = la.noise_statistics(Noisy(), p, None, p, mask, ctx)
    np.testing.assert_allclose(float(out["noise_param_ratio"]), 5.0 / 10.0, rtol=1e-6)
    assert la.noise_statistics(optax.adam(1e-3), p, None, p, mask, ctx) == {}


def test_momentum_probe_by_hand():
    """m <- beta m + (1 - beta) g from zero; cos(update, -m) per beta; the wrapped
    optimizer's updates pass through unchanged."""
    probe = la.MomentumProbe(optax.sgd(1.0), betas=(0.0, 0.5))
    p = {"w": jnp.asarray([0.0, 0.0])}
    state = probe.init(p)
    g1, g2 = {"w": jnp.asarray([1.0, 0.0])}, {"w": jnp.asarray([0.0, 1.0])}
    _, state = probe.update(g1, state, p)
    u2, state = probe.update(g2, state, p)
    np.testing.assert_allclose(u2["w"], [0.0, -1.0])  # SGD's update, untouched
    # beta 0.5: m = 0.5 * (0.5 * g1) + 0.5 * g2 = (0.25, 0.5); beta 0: m = g2
    np.testing.assert_allclose(state.momenta[1]["w"], [0.25, 0.5])
    cos = probe.momentum_cosines(state, u2)
    np.testing.assert_allclose(float(cos["update_momentum_cosine_0"]), 1.0, rtol=1e-6)
    np.testing.assert_allclose(
        float(cos["update_momentum_cosine_0.5"]), 0.5 / np.hypot(0.25, 0.5), rtol=1e-6
    )
    assert la.momentum_statistics(optax.sgd(1.0), None, u2) == {}
    with pytest.raises(ValueError, match="betas"):
        la.MomentumProbe(optax.sgd(1.0), betas=(1.0,))


def test_momentum_probe_in_ppo_changes_nothing_and_tracks_adams_momentum():
    """Wrapped in the probe, Adam trains as without it; the probe's momentum at
    beta = 0.9 is Adam's first moment (the same recursion from zero); PPO records one cosine
    per timescale."""
    env, params = la.make_env("CartPole-v1")
    config = dataclasses.replace(TINY, update_statistics=True)
    agent, adam = la.PPO(config), optax.adam(1e-3)
    probe = la.MomentumProbe(adam)
    plain = agent.train(env, params, adam, key=jax.random.key(0))
    probed = agent.train(env, params, probe, key=jax.random.key(0))
    # the same updates; the larger program may round differently (measured: 1e-7 relative)
    for a, b in zip(jax.tree.leaves(plain.network), jax.tree.leaves(probed.network), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(
        plain.metrics["episode_return"], probed.metrics["episode_return"], rtol=1e-5
    )
    for b in la.MOMENTUM_BETAS:
        c = np.asarray(probed.metrics[f"update_momentum_cosine_{b:g}"])
        assert c.shape == plain.metrics["update_grad_cosine"].shape
        assert np.all(np.abs(c) <= 1.0 + 1e-6)
    assert not any(k.startswith("update_momentum") for k in plain.metrics)
    # heavy-ball SGD steps along sum_k 0.9^k g_{t-k}, proportional to the probe's
    # momentum at beta = 0.9: cosine 1 there, less at the other timescales
    heavy = agent.train(
        env, params, la.MomentumProbe(optax.sgd(0.01, momentum=0.9)), key=jax.random.key(0)
    )
    np.testing.assert_allclose(heavy.metrics["update_momentum_cosine_0.9"], 1.0, rtol=1e-4)
    assert np.all(np.asarray(heavy.metrics["update_momentum_cosine_0.1"]) < 0.99)
    state = agent.init(env, params, probe, key=jax.random.key(1))
    for _ in range(2):
        state, _ = agent.step(state, env, params, probe)
    mu = state.opt_state.inner[0].mu
    for a, b in zip(jax.tree.leaves(mu), jax.tree.leaves(state.opt_state.momenta[2]), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-9)
