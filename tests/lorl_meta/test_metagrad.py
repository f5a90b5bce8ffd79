"""The meta-gradient trainer: pipeline resets inside the trainer, meta-gradients for
every Optim4RL-family optimizer, learning on a toy problem, input validation."""

import dataclasses

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import lorl_agents as la
import lorl_gridworlds as lg
import lorl_meta as lm
import lorl_optim as lo

from .common import N_INNER, N_UNITS, RESET_INTERVAL, meta_leaves, optim4rl, tiny_task, tiny_trainer


def _run_steps(trainer, optimizer, n):
    state = trainer.init(optimizer, key=jax.random.key(0))
    static = eqx.partition(optimizer, eqx.is_array)[1]
    core = trainer._core()
    history = []
    for _ in range(n):
        state, metrics = core.step(state, static)
        history.append(metrics)
    return state, history


def test_units_follow_the_pipeline_reset_schedule():
    n = 5
    state, history = _run_steps(tiny_trainer(), optim4rl(), n)
    offsets = lm.reset_offsets(N_UNITS, RESET_INTERVAL)
    # Independent bookkeeping: a unit's age in meta-iterations since its last reset.
    age = np.zeros(N_UNITS, int)
    for t in range(n):
        reset = offsets == t % RESET_INTERVAL
        assert int(history[t]["n_reset"]) == reset.sum()
        age = np.where(reset, 0, age) + 1
    # Each meta-iteration makes N_INNER inner updates (the update counter of A2C).
    np.testing.assert_array_equal(np.asarray(state.units[0].update), N_INNER * age)
    assert int(state.step) == n


@pytest.mark.parametrize(
    "make",
    [
        lambda: lo.LinearOptim(1e-2, key=jax.random.key(1)),
        lambda: lo.L2LGD2(1e-2, key=jax.random.key(2)),
    ],
    ids=["LinearOptim", "L2LGD2"],
)
def test_other_optimizers_and_the_no_pipeline_ablation(make):
    # LinearOptim and L2LGD2 (Optim4RL's ablations) get finite, non-zero meta-gradients;
    # without pipeline training no unit is ever reset.
    n = 2
    optimizer = make()
    state, history = _run_steps(tiny_trainer(pipeline=False), optimizer, n)
    for metrics in history:
        assert np.isfinite(float(metrics["meta_loss"]))
        assert float(metrics["meta_grad_norm"]) > 0
        assert not bool(metrics["nonfinite_meta_grad"])
        assert int(metrics["n_reset"]) == 0
    np.testing.assert_array_equal(np.asarray(state.units[0].update), [N_INNER * n] * N_UNITS)
    moved = eqx.combine(state.meta_params, eqx.partition(optimizer, eqx.is_array)[1])
    for a, b in zip(meta_leaves(optimizer), meta_leaves(moved), strict=True):
        assert not np.array_equal(np.asarray(a), np.asarray(b))


class ProportionProbe(lo.AbstractLearnedOptimizer):
    """SGD whose state is the last training proportion it was given."""

    lr: jax.Array

    def init(self, params):  # pyright: ignore[reportIncompatibleMethodOverride]
        return jnp.asarray(-1.0, jnp.float32)

    def update(self, grads, state, params=None, *, training_proportion=None, **context):  # pyright: ignore[reportIncompatibleMethodOverride]
        updates = jax.tree.map(lambda g: -self.lr * g, grads)
        return updates, jnp.asarray(training_proportion, jnp.float32)


def test_optimizer_sees_each_units_age_over_its_lifetime():
    # Pipeline training with n = 4 units, m = 3, M = 2: offsets r = [0, 1, 1, 2], so a
    # unit lives m * M = 6 updates and the proportion is age / 5. By hand, the units'
    # ages (updates since the last reset) after meta-iterations t = 0..4:
    #   t=0 (reset r=0): [2, 2, 2, 2]   t=1 (reset r=1): [4, 2, 2, 4]
    #   t=2 (reset r=2): [6, 4, 4, 2]   t=3 (reset r=0): [2, 6, 6, 4]
    #   t=4 (reset r=1): [4, 2, 2, 6]
    # so the last inner update of t=4 ran at ages [3, 1, 1, 5]: proportions
    # [0.6, 0.2, 0.2, 1.0] (the agent's own n_updates = 64 would give [3, 1, 1, 5] / 63).
    assert (N_UNITS, RESET_INTERVAL, N_INNER) == (4, 3, 2)
    trainer = tiny_trainer()
    probe = ProportionProbe(jnp.asarray(0.01, jnp.float32))
    state, _ = _run_steps(trainer, probe, 5)
    np.testing.assert_array_equal(np.asarray(state.units[0].update), [4, 2, 2, 6])
    np.testing.assert_allclose(np.asarray(state.units[0].opt_state), [0.6, 0.2, 0.2, 1.0])
    np.testing.assert_allclose(
        np.asarray(trainer.training_proportion(jnp.arange(8))),
        [0.0, 0.2, 0.4, 0.6, 0.8, 1.0, 1.0, 1.0],  # clipped at 1 beyond the lifetime
    )


def test_meta_gradient_training_lowers_the_meta_loss():
    trainer = tiny_trainer(n_meta_steps=40)
    optimizer = optim4rl()
    keys = [jax.random.key(k) for k in (11, 12, 13)]
    before = np.mean([trainer.evaluate(optimizer, 3, key=k)["meta_loss"] for k in keys])
    result = trainer.train(optimizer, seed=0, progress=False)
    after = np.mean([trainer.evaluate(result.optimizer, 3, key=k)["meta_loss"] for k in keys])
    assert len(result.history) == 40
    # Every meta-parameter leaf moved.
    for a, b in zip(meta_leaves(optimizer), meta_leaves(result.optimizer), strict=True):
        assert not np.allclose(np.asarray(a), np.asarray(b))
    # Toy problem (context bandit): the outer loss at fixed keys falls clearly (measured
    # 0.03 -> -0.41 for one key) and the inner agents' return rises with it.
    assert after < before - 0.1, (before, after)
    ret_before = trainer.evaluate(optimizer, 3, key=keys[0])["bandit/episode_return"]
    ret_after = trainer.evaluate(result.optimizer, 3, key=keys[0])["bandit/episode_return"]
    assert ret_after > ret_before + 0.05, (ret_before, ret_after)


def test_bad_meta_gradient_inputs_are_rejected():
    with pytest.raises(ValueError, match="n_inner"):
        lm.MetaGradientConfig(n_meta_steps=10, n_inner=0)
    with pytest.raises(ValueError, match="n_meta_steps"):
        lm.MetaGradientConfig(n_meta_steps=0)
    # (TypeError: the test-time jaxtyping/beartype hook checks the Literal first.)
    with pytest.raises((ValueError, TypeError), match="outer_loss"):
        lm.MetaGradientConfig(n_meta_steps=1, outer_loss="critic")  # pyright: ignore
    env, params = lg.make("small_dense_short")
    uneven = la.A2C(la.A2CConfig.small_gridworld(n_envs=2, n_steps=5, total_timesteps=105))
    with pytest.raises(ValueError, match="does not divide"):
        lm.MetaTask("x", env, params, uneven, n_units=2)
    with pytest.raises(ValueError, match="n_units"):
        lm.MetaTask("x", env, params, tiny_task().agent, n_units=0)
    # OPEN has no learning rate to rescale.
    task = dataclasses.replace(tiny_task(), agent_lr=3e-3)
    trainer = lm.MetaGradientTrainer(
        lm.MetaGradientConfig(n_meta_steps=1, reset_interval=N_UNITS), task
    )
    with pytest.raises(ValueError, match="learning_rate"):
        trainer.init(lo.OPEN(key=jax.random.key(0)), key=jax.random.key(0))
    with pytest.raises(TypeError, match="optimizer"):
        trainer.init(optax.adam(1e-3), key=jax.random.key(0))  # pyright: ignore


def test_reward_scale_and_agent_lr_of_a_task():
    env, params = lg.make("small_dense_short")
    task = dataclasses.replace(
        tiny_task("small_dense_short"), reward_scale=100.0, agent_lr=0.3 * 1e-2
    )

    def total_reward(env, params, steps=300):
        """Sum of rewards of a fixed random walk (same keys for every env)."""

        def body(state, key):
            k_act, k_step = jax.random.split(key)
            action = jax.random.randint(k_act, (), 0, 9)
            _, state, reward, *_ = env.step(k_step, state, action, params)
            return state, reward

        _, state = env.reset(jax.random.key(0), params)
        _, rewards = jax.lax.scan(body, state, jax.random.split(jax.random.key(1), steps))
        return np.asarray(rewards)

    r1 = total_reward(env, params)
    r2 = total_reward(task.train_env, task.env_params)
    assert np.abs(r1).sum() > 0  # the walk collects rewards
    np.testing.assert_allclose(r2, 100.0 * r1)
    # the generic wrapper on any gymnax environment
    cartpole, cp_params = la.make_env("CartPole-v1")
    wrapped = la.scale_rewards(cartpole, 100.0)
    assert isinstance(wrapped, la.RewardScaled) and la.scale_rewards(cartpole, 1.0) is cartpole
    key = jax.random.key(0)
    with jax.numpy_dtype_promotion("standard"):  # gymnax's CartPole relies on it
        _, cp_state = cartpole.reset(key, cp_params)
        _, _, r3, *_ = cartpole.step(key, cp_state, 1, cp_params)
        _, _, r4, *_ = wrapped.step(key, cp_state, 1, cp_params)
    np.testing.assert_allclose(float(r4), 100.0 * float(r3))
    opt = optim4rl()
    net = {"w": jax.numpy.ones((3,), jax.numpy.float32)}
    g = {"w": jax.numpy.asarray([0.1, -0.2, 0.3], jax.numpy.float32)}
    u1, _ = opt.update(g, opt.init(net))
    u2, _ = task.optimizer_for(opt).update(g, opt.init(net))
    np.testing.assert_allclose(np.asarray(u2["w"]), 0.3 * np.asarray(u1["w"]), rtol=1e-6)


def test_meta_gradients_pass_through_the_task_learning_rate():
    """The task's agent learning rate (`with_learning_rate`) keeps the meta-parameters
    differentiable: the meta-gradient of the summed update scales with the rate."""
    opt = optim4rl()
    net = {"w": jax.numpy.ones((3,), jax.numpy.float32)}
    g = {"w": jax.numpy.asarray([0.1, -0.2, 0.3], jax.numpy.float32)}
    arrays, static = eqx.partition(opt, eqx.is_array)

    def total(arrays, lr):
        o = lm.task_optimizer("t", eqx.combine(arrays, static), lr)
        u, _ = o.update(g, o.init(net))
        return jax.numpy.sum(u["w"])

    d1 = jax.grad(total)(arrays, 1e-2)
    d2 = jax.grad(total)(arrays, 3e-3)
    leaves1, leaves2 = jax.tree.leaves(d1), jax.tree.leaves(d2)
    assert any(float(jax.numpy.abs(x).max()) > 0 for x in leaves1)
    for a, b in zip(leaves1, leaves2, strict=True):
        np.testing.assert_allclose(np.asarray(b), 0.3 * np.asarray(a), rtol=1e-4, atol=1e-10)


class _StopStateGradient(lo.AbstractLearnedOptimizer):
    """`inner` with the gradient of its recurrent state cut between inner updates."""

    inner: lo.AbstractLearnedOptimizer

    def init(self, params):  # pyright: ignore[reportIncompatibleMethodOverride]
        return self.inner.init(params)

    def update(self, grads, state, params=None, **context):  # pyright: ignore[reportIncompatibleMethodOverride]
        return self.inner.update(grads, jax.lax.stop_gradient(state), params, **context)


def _first_meta_grads(optimizer):
    trainer = tiny_trainer()._core()
    state = trainer.init(optimizer, key=jax.random.key(0))
    static = eqx.partition(optimizer, eqx.is_array)[1]
    diff, nondiff = eqx.partition(state.meta_params, eqx.is_inexact_array)
    objective = lambda d: trainer._objective(eqx.combine(d, nondiff), static, state.units)[0]
    return eqx.filter_jit(jax.grad(objective))(diff)


def test_meta_gradient_per_part_norms_and_the_recurrent_path():
    # The per-part norms logged every meta-iteration add up to the global norm and cover
    # every part of Optim4RL.
    _, history = _run_steps(tiny_trainer(), optim4rl(), 1)
    parts = {k: float(v) for k, v in history[0].items() if k.startswith("meta_grad_norm/")}
    assert set(parts) == {f"meta_grad_norm/{f}" for f in ("gru1", "mlp1", "gru2", "mlp2")}
    assert all(v > 0 for v in parts.values())
    np.testing.assert_allclose(
        np.sqrt(sum(v**2 for v in parts.values())), float(history[0]["meta_grad_norm"]), rtol=1e-5
    )
    # The meta-gradient flows through the optimizer's recurrent state across the M inner
    # updates: cutting that path (same units, same randomness) changes the GRUs' part;
    # the MLP read-outs do not feed the state back, so theirs is unchanged.
    full = _first_meta_grads(optim4rl())
    cut = _first_meta_grads(_StopStateGradient(optim4rl())).inner
    for part in ("gru1", "gru2", "mlp1", "mlp2"):
        a, b = (
            float(optax.tree.norm(getattr(full, part))),
            float(optax.tree.norm(getattr(cut, part))),
        )
        assert a > 0 and b > 0
        if part.startswith("gru"):
            assert not np.isclose(a, b, rtol=1e-3), part
        else:
            np.testing.assert_allclose(a, b, rtol=1e-5, err_msg=part)


def test_pipeline_schedule_must_cover_every_phase():
    # Optim4RL Section 5.1 spreads n offsets over [0, m - 1]: n < m leaves phases empty.
    config = lm.MetaGradientConfig(n_meta_steps=1, n_inner=N_INNER, reset_interval=N_UNITS + 1)
    with pytest.raises(ValueError, match=r"n_units=4 < reset_interval=5"):
        lm.MetaGradientTrainer(config, tiny_task())
    # the no-pipeline ablation never resets, so nothing to cover; n = m is allowed
    lm.MetaGradientTrainer(dataclasses.replace(config, pipeline=False), tiny_task())
    lm.MetaGradientTrainer(dataclasses.replace(config, reset_interval=N_UNITS), tiny_task())


def test_unit_meta_gradients_and_the_meta_objective_match_the_step():
    """The diagnostics see the meta-iteration `step` computes: the mean of the per-unit
    meta-gradients is the step's meta-gradient (its norm and per-part norms), the mean
    of the units' losses and `meta_objective` are its meta-loss."""
    trainer = tiny_trainer()._core()
    optimizer = optim4rl()
    state, _ = _run_steps(tiny_trainer(), optimizer, 2)  # units of several ages
    static = eqx.partition(optimizer, eqx.is_array)[1]
    ((losses, grads),) = trainer.unit_meta_gradients(state, static)
    assert losses.shape == (N_UNITS,)
    assert all(x.shape[0] == N_UNITS for x in jax.tree.leaves(grads))
    _, metrics = trainer.step(state, static)
    mean = jax.tree.map(lambda g: jnp.mean(g, axis=0), grads)
    np.testing.assert_allclose(
        float(optax.tree.norm(mean)), float(metrics["meta_grad_norm"]), rtol=1e-4
    )
    for part in ("gru1", "mlp1", "gru2", "mlp2"):
        np.testing.assert_allclose(
            float(optax.tree.norm(getattr(mean, part))),
            float(metrics[f"meta_grad_norm/{part}"]),
            rtol=1e-4,
        )
    np.testing.assert_allclose(float(jnp.mean(losses)), float(metrics["meta_loss"]), rtol=1e-5)
    np.testing.assert_allclose(
        float(trainer.meta_objective(state, static)), float(metrics["meta_loss"]), rtol=1e-5
    )


def test_restore_reads_a_runs_snapshots_without_changing_them(tmp_path):
    trainer = tiny_trainer(n_meta_steps=4, checkpoint_every=2)
    optimizer = optim4rl()
    result = trainer.train(optimizer, seed=3, checkpoint_dir=tmp_path, progress=False)
    before = sorted(p.name for p in (tmp_path / "steps").iterdir())
    newest = trainer.restore(optimizer, seed=3, checkpoint_dir=tmp_path)
    for a, b in zip(
        meta_leaves(newest.meta_params), meta_leaves(result.state.meta_params), strict=True
    ):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert int(newest.step) == 4
    assert int(trainer.restore(optimizer, seed=3, checkpoint_dir=tmp_path, step=2).step) == 2
    assert sorted(p.name for p in (tmp_path / "steps").iterdir()) == before
    with pytest.raises(lm.CheckpointMismatchError, match="seed"):
        trainer.restore(optimizer, seed=4, checkpoint_dir=tmp_path)
    with pytest.raises(FileNotFoundError, match="no checkpointed run"):
        trainer.restore(optimizer, seed=3, checkpoint_dir=tmp_path / "nothing")
    with pytest.raises(FileNotFoundError, match="no checkpoint step 3"):
        trainer.restore(optimizer, seed=3, checkpoint_dir=tmp_path, step=3)


def test_unit_batch_gives_the_same_meta_iteration():
    """Units run 3 at a time under rematerialisation (4 units: a group of 3 and a
    remainder of 1) give the meta-iteration of one vmapped program, up to float32
    rounding: meta-loss, meta-gradient norm, new meta-parameters and new units; the
    setting is speed only, so it leaves the checkpoint fingerprint alone."""
    plain = tiny_trainer()
    grouped = lm.MetaGradientTrainer(dataclasses.replace(plain.config, unit_batch=3), tiny_task())
    optimizer = optim4rl()
    state, _ = _run_steps(plain, optimizer, 2)  # units of several ages
    static = eqx.partition(optimizer, eqx.is_array)[1]
    a_state, a = plain._core().step(state, static)
    b_state, b = grouped._core().step(state, static)
    for name in ("meta_loss", "meta_grad_norm", "bandit/episode_return"):
        np.testing.assert_allclose(float(b[name]), float(a[name]), rtol=1e-5, err_msg=name)
    new_a, new_b = meta_leaves(a_state.meta_params), meta_leaves(b_state.meta_params)
    for x, y in zip(new_b, new_a, strict=True):
        np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-7)

    def raw(x):
        return jax.random.key_data(x) if jnp.issubdtype(x.dtype, jax.dtypes.prng_key) else x

    for x, y in zip(jax.tree.leaves(b_state.units), jax.tree.leaves(a_state.units), strict=True):
        if jnp.issubdtype(x.dtype, jnp.inexact):
            np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6)
        else:  # counters, environment states, keys: exactly equal
            np.testing.assert_array_equal(raw(x), raw(y))
    assert grouped.fingerprint(optimizer, 0) == plain.fingerprint(optimizer, 0)
    with pytest.raises(ValueError, match="unit_batch"):
        lm.MetaGradientConfig(n_meta_steps=1, unit_batch=-1)
