"""Meta-gradients through PPO (lorl_meta.PPOMetaGradientTrainer): finite differences
through one inner PPO update, pipeline resets, learning on a toy task, resume equality,
bad input."""

import dataclasses
import functools

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jaxtyping import Array, Float

import lorl_agents as la
import lorl_meta as lm
import lorl_optim as lo

from .common import ContextBandit, meta_leaves, optim4rl

N_INNER = 2
RESET_INTERVAL = 3
N_UNITS = 4
PPO_TINY = la.PPOConfig(
    n_envs=8,
    n_steps=4,
    total_timesteps=8 * 4 * 64,
    n_minibatches=2,
    n_epochs=2,
    width=16,
    activation="tanh",
)


class BanditWithEmptyLeaf(ContextBandit):
    """The toy bandit with a zero-size array in its state, as Brax states have (the
    trainer's checkpoints must store and restore it)."""

    def reset(self, key, params=None):
        obs, context = super().reset(key, params)
        return obs, (context, jnp.zeros((0,), jnp.float32))

    def step(self, key, state, action, params=None):
        obs, context, *rest = super().step(key, state[0], action, params)
        return obs, (context, state[1]), *rest


@functools.cache
def ppo_task() -> lm.PPOMetaTask:
    env = BanditWithEmptyLeaf()
    return lm.PPOMetaTask("bandit", env, env.default_params, la.PPO(PPO_TINY), n_units=N_UNITS)


@functools.cache
def ppo_trainer(
    n_meta_steps: int = 6, pipeline: bool = True, checkpoint_every: int = 2
) -> lm.PPOMetaGradientTrainer:
    config = lm.PPOMetaGradientConfig(
        n_meta_steps=n_meta_steps,
        n_inner=N_INNER,
        reset_interval=RESET_INTERVAL,
        pipeline=pipeline,
        meta_lr=1e-2,
        checkpoint_every=checkpoint_every,
    )
    return lm.PPOMetaGradientTrainer(config, ppo_task())


class MomentumSGD(lo.AbstractLearnedOptimizer):
    """A two-parameter 'learned optimizer' with a recurrent state: heavy-ball momentum
    `v <- beta v + g`, update `-lr v`. Meta-gradients w.r.t. `beta` exist only through
    the optimizer state carried across the minibatch steps."""

    lr: Float[Array, ""]
    beta: Float[Array, ""]

    def init(self, params):  # pyright: ignore[reportIncompatibleMethodOverride]
        return jax.tree.map(jnp.zeros_like, params)

    def update(self, grads, state, params=None, **context):  # pyright: ignore[reportIncompatibleMethodOverride]
        v = jax.tree.map(lambda m, g: self.beta * m + g, state, grads)
        return jax.tree.map(lambda m: -self.lr * m, v), v


def test_config_defaults_follow_the_paper():
    cfg = lm.PPOMetaGradientConfig(n_meta_steps=1)
    assert cfg.outer_loss == "full"  # Optim4RL App. C: PPO's outer loss = PPO loss
    assert cfg.n_inner == 4  # Optim4RL App. C: M = 4
    assert cfg.reset_interval in (512, 1024)  # Optim4RL App. C.3, Ant


def test_meta_gradient_through_one_ppo_update_matches_finite_differences():
    # One inner PPO update (rollout, 2 epochs x 2 minibatches = 4 optimizer steps with
    # momentum) followed by the PPO loss of the new network on a fixed outer batch: a
    # smooth function of (lr, beta) at this scale (ratios stay inside the clip range).
    trainer = ppo_trainer()
    task = ppo_task()
    agent = task.agent
    unit = agent.init(task.env, task.env_params, MomentumSGD(0.0, 0.0), key=jax.random.key(3))  # pyright: ignore[reportArgumentType]
    _, outer_batch, _, _ = agent.rollout(
        agent.init(task.env, task.env_params, MomentumSGD(0.0, 0.0), key=jax.random.key(4)),  # pyright: ignore[reportArgumentType]
        task.env,
        task.env_params,
    )

    @jax.jit
    def objective(theta):
        opt = MomentumSGD(theta[0], theta[1])
        new, _ = trainer.inner_update(task, opt, unit)
        loss, _ = agent.loss(new.network, outer_batch)
        return loss

    theta = jnp.asarray([0.3, 0.6], jnp.float32)
    grad = np.asarray(jax.grad(objective)(theta))
    eps = 1e-2
    fd = [
        (float(objective(theta.at[i].add(eps))) - float(objective(theta.at[i].add(-eps))))
        / (2 * eps)
        for i in range(2)
    ]
    assert np.all(np.abs(grad) > 1e-4), grad  # both paths carry signal
    np.testing.assert_allclose(grad, fd, rtol=0.05, atol=1e-4)
    # The update is exactly PPO's: with the same training proportion, inner_update
    # equals PPO.step (which `train` runs).
    opt = MomentumSGD(jnp.asarray(0.3), jnp.asarray(0.6))
    a, _ = eqx.filter_jit(trainer.inner_update)(task, opt, unit)
    b, _ = eqx.filter_jit(agent.step)(unit, task.env, task.env_params, opt)
    a, b = (jax.tree.map(_raw, s) for s in (a, b))
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def _raw(x):
    is_key = isinstance(x, jax.Array) and jnp.issubdtype(x.dtype, jax.dtypes.prng_key)
    return jax.random.key_data(x) if is_key else x


def _run_steps(trainer, optimizer, n):
    state = trainer.init(optimizer, key=jax.random.key(0))
    static = eqx.partition(optimizer, eqx.is_array)[1]
    core = trainer._core()
    history = []
    for _ in range(n):
        state, metrics = core.step(state, static)
        history.append(metrics)
    return state, history


def test_pipeline_resets_follow_the_schedule_and_the_ablation_never_resets():
    n = 5
    state, history = _run_steps(ppo_trainer(), optim4rl(), n)
    offsets = lm.reset_offsets(N_UNITS, RESET_INTERVAL)
    age = np.zeros(N_UNITS, int)
    for t in range(n):
        reset = offsets == t % RESET_INTERVAL
        assert int(history[t]["n_reset"]) == reset.sum()
        assert np.isfinite(float(history[t]["meta_loss"]))
        assert float(history[t]["meta_grad_norm"]) > 0
        age = np.where(reset, 0, age) + 1
    # N_INNER PPO updates per meta-iteration; each makes n_epochs * n_minibatches steps.
    np.testing.assert_array_equal(np.asarray(state.units[0].update), N_INNER * age)
    np.testing.assert_array_equal(np.asarray(state.units[0].opt_step), N_INNER * age * 4)
    # The ablation: no unit is ever reset (checked on the reset step alone, so the test
    # does not compile a second meta-iteration).
    ablation = ppo_trainer(pipeline=False)
    for t in range(RESET_INTERVAL):
        units, n_reset = ablation._reset(optim4rl(), state.units, jnp.asarray(t), state.key)
        assert int(n_reset) == 0
        assert units is state.units


def test_meta_training_through_ppo_improves_the_inner_agents():
    # On a fresh rollout PPO's clipped surrogate equals -mean(normalised advantages) = 0,
    # so the outer loss's *value* (value term + entropy) is no progress measure; its
    # gradient is the policy gradient. What meta-training must raise is the return of
    # agents trained by the learned optimizer: measured 0.51 -> 0.73 (mean of 3 keys,
    # random play 0.25, optimum 1) after 40 meta-iterations.
    trainer = ppo_trainer(n_meta_steps=40)
    optimizer = optim4rl()
    keys = [jax.random.key(k) for k in (11, 12, 13)]

    def mean_return(opt):
        return np.mean([trainer.evaluate(opt, 3, key=k)["bandit/episode_return"] for k in keys])

    before = mean_return(optimizer)
    result = trainer.train(optimizer, seed=0, progress=False)
    after = mean_return(result.optimizer)
    assert len(result.history) == 40
    assert int(result.state.n_nonfinite) == 0
    for a, b in zip(meta_leaves(optimizer), meta_leaves(result.optimizer), strict=True):
        assert not np.allclose(np.asarray(a), np.asarray(b))
    assert after > before + 0.1, (before, after)


def test_resume_gives_the_same_meta_parameters(tmp_path):
    optimizer = optim4rl()
    full = ppo_trainer(n_meta_steps=4).train(optimizer, seed=1, progress=False)
    ckpt = tmp_path / "ckpt"
    ppo_trainer(n_meta_steps=2).train(optimizer, seed=1, checkpoint_dir=ckpt, progress=False)
    resumed = ppo_trainer(n_meta_steps=4).train(
        optimizer, seed=1, checkpoint_dir=ckpt, progress=False
    )
    assert len(resumed.history) == 4
    for a, b in zip(meta_leaves(full.optimizer), meta_leaves(resumed.optimizer), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    # The whole state, the units' zero-size environment leaf included, is bit-identical.
    full_leaves, resumed_leaves = jax.tree.leaves(full.state), jax.tree.leaves(resumed.state)
    assert any(np.size(x) == 0 for x in resumed_leaves)
    for a, b in zip(full_leaves, resumed_leaves, strict=True):
        assert a.shape == b.shape and a.dtype == b.dtype
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    # Another seed is another run: refused before compute.
    with pytest.raises(lm.CheckpointMismatchError):
        ppo_trainer(n_meta_steps=4).train(optimizer, seed=2, checkpoint_dir=ckpt, progress=False)


def test_bad_inputs_are_rejected_before_compute():
    env = ContextBandit()
    a2c = la.A2C(la.A2CConfig.small_gridworld(n_envs=2, n_steps=2, total_timesteps=2 * 2 * 4))
    # (The nox sessions' jaxtyping/beartype hook may raise its own TypeError first.)
    with pytest.raises(TypeError, match="PPO"):
        lm.PPOMetaTask("x", env, env.default_params, a2c)  # pyright: ignore[reportArgumentType]
    with pytest.raises((ValueError, TypeError), match="n_units"):
        lm.PPOMetaTask("x", env, env.default_params, la.PPO(PPO_TINY), n_units=0)
    config = lm.PPOMetaGradientConfig(n_meta_steps=1)
    a2c_task = lm.MetaTask("x", env, env.default_params, a2c, n_units=2)
    with pytest.raises(TypeError, match="PPOMetaTask"):
        lm.PPOMetaGradientTrainer(config, a2c_task)  # pyright: ignore[reportArgumentType]
    with pytest.raises(ValueError, match="unique"):
        lm.PPOMetaGradientTrainer(config, [ppo_task(), ppo_task()])
    with pytest.raises(ValueError, match="reset_interval"):
        lm.PPOMetaGradientConfig(n_meta_steps=1, reset_interval=0)
    with pytest.raises(TypeError, match="learned optimizer|AbstractLearnedOptimizer"):
        ppo_trainer().check_optimizer(object())  # pyright: ignore[reportArgumentType]
    # A network that does not fit the environment: the trainer checks shapes up front.
    other = lm.PPOMetaTask("cartpole", *la.make_env("CartPole-v1"), la.PPO(PPO_TINY), n_units=2)
    trainer = lm.PPOMetaGradientTrainer(dataclasses.replace(config, reset_interval=2), other)
    trainer.check_optimizer(optim4rl())  # fits: no error
    with pytest.raises(ValueError, match="n_iterations"):
        trainer.evaluate(optim4rl(), 0, key=jax.random.key(0))
