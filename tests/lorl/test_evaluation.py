"""`lorl.evaluation`: equality with direct `lorl_agents` training, the learned-optimizer
path, NaN reporting, PPO, and clear errors before compute."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import lorl_agents as la
import lorl_gridworlds as lg
import lorl_optim as lo
from lorl import evaluation as ev, runs

# A2C on small_dense_short, tiny: 4 envs x 20 steps x 6 updates.
A2C_SMALL = {"n_envs": 4, "final_return_window": 3}
A2C_STEPS = 4 * 20 * 6


@pytest.fixture(scope="module")
def adam_eval():
    return ev.evaluate(
        "adam",
        "small_dense_short",
        seeds=[3, 7],
        timesteps=A2C_STEPS,
        agent_overrides=A2C_SMALL,
    )


def _direct(opt, seed):
    config = la.A2CConfig.small_gridworld(total_timesteps=A2C_STEPS, **A2C_SMALL)
    env, params = lg.make("small_dense_short")
    with jax.numpy_dtype_promotion("standard"):
        return la.A2C(config).train(env, params, opt, key=jax.random.key(seed))


def test_evaluate_equals_direct_training(adam_eval):
    r = adam_eval
    assert r.env == "small_dense_short" and r.agent == "a2c"
    assert r.tuning is not None
    best = r.tuning["best_lr"]
    assert r.optimizer == f"adam (lr {best:g}, tuned)" and r.seeds == (3, 7)
    assert r.final_returns.shape == (2,) and r.returns.shape == (2, 6)
    np.testing.assert_array_equal(r.steps, np.arange(1, 7) * 80)
    assert r.timesteps == A2C_STEPS
    # The same run by hand: A2C with the paper's small-grid settings, Adam at the
    # learning rate the search picked, key = jax.random.key(seed).
    direct = _direct(optax.adam(best), 7)
    np.testing.assert_allclose(r.final_returns[1], float(direct.final_return), rtol=1e-5)
    np.testing.assert_allclose(
        r.returns[1], np.asarray(direct.metrics["episode_return"]), rtol=1e-5, atol=1e-6
    )
    # Different seeds give different runs.
    assert not np.allclose(r.returns[0], r.returns[1], equal_nan=True)


def test_a2c_baseline_is_tuned_on_the_paper_grid(adam_eval):
    """Optim4RL Appendix C.3: Adam's lr is the best of {3e-2, ..., 1e-4}; here on 4 tuning
    seeds disjoint from the evaluation seeds, at the evaluation's own budget."""
    t = ev.TuningResult.from_dict(json.loads(json.dumps(runs.to_jsonable(adam_eval.tuning))))
    assert t.kind == "adam" and t.env == "small_dense_short" and t.timesteps == A2C_STEPS
    assert t.grid == (3e-2, 1e-2, 3e-3, 1e-3, 3e-4, 1e-4) == ev.OPTIM4RL_LR_GRID
    assert t.seeds == tuple(ev.TUNING_SEED_OFFSET + i for i in range(4))
    assert t.final_returns.shape == (6, 4) and np.all(np.isfinite(t.final_returns))
    assert t.best_lr == t.grid[int(np.argmax(t.final_returns.mean(axis=1)))]
    # One tuning run recomputed by hand: lr 1e-3 on the third tuning seed.
    direct = _direct(optax.adam(1e-3), ev.TUNING_SEED_OFFSET + 2)
    np.testing.assert_allclose(t.final_returns[3, 2], float(direct.final_return), rtol=1e-5)


def test_best_learning_rate_by_hand():
    grid = (1.0, 0.1, 0.01)
    returns = np.array([[5.0, np.nan], [2.0, 3.0], [2.0, 3.0]])
    assert ev.best_learning_rate(grid, returns) == 0.1  # a diverged point loses; ties: first
    assert ev.best_learning_rate(grid, np.array([[1.0], [4.0], [4.5]])) == 0.01
    with pytest.raises(runs.ConfigError, match="every learning rate"):
        ev.best_learning_rate(grid, np.full((3, 2), np.nan))
    with pytest.raises(runs.ConfigError, match=r"\(len\(grid\), seeds\)"):
        ev.best_learning_rate(grid, np.zeros((2, 2)))


def test_tuning_errors_before_compute():
    with pytest.raises(runs.ConfigError, match="also evaluation seeds"):
        ev.evaluate("adam", "small_dense_short", seeds=[0, 1], tuning_seeds=[1, 2])
    with pytest.raises(runs.ConfigError, match="cannot tune 'open'"):
        ev.tune_learning_rate("open", "small_dense_short")
    with pytest.raises(runs.ConfigError, match="grid must be non-empty"):
        ev.tune_learning_rate("adam", "small_dense_short", grid=[])
    with pytest.raises(runs.ConfigError, match="no tuned lion for A2C"):
        ev.evaluate("lion", "small_dense_short", seeds=1)
    spec, config = ev.agent_config_for("small_dense_short")
    opt, label = ev.resolve_optimizer("rmsprop", spec, config)
    assert opt == ev.LearningRateSearch("rmsprop") and label == "rmsprop (tuned)"
    opt, label = ev.resolve_optimizer("lion:tuned", spec, config)
    assert opt == ev.LearningRateSearch("lion")


def test_result_json_round_trip(adam_eval):
    data = json.loads(json.dumps(runs.to_jsonable(adam_eval.to_dict())))
    back = ev.EvaluationResult.from_dict(data)
    np.testing.assert_array_equal(back.returns, adam_eval.returns)  # NaNs survive
    np.testing.assert_array_equal(back.final_returns, adam_eval.final_returns)
    assert back.seeds == adam_eval.seeds and back.agent_config == adam_eval.agent_config


def test_learned_optimizer_saved_and_loaded(tmp_path):
    opt = lo.Optim4RL(1e-2, key=jax.random.key(1))
    path = ev.save_optimizer(tmp_path / "run" / "optimizers" / "o.eqx", opt, learning_rate=1e-2)
    loaded = ev.load_optimizer(tmp_path / "run")  # a folder holding exactly one
    for a, b in zip(jax.tree.leaves(opt), jax.tree.leaves(loaded), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    r = ev.evaluate(
        str(path), "small_dense_short", seeds=1, timesteps=A2C_STEPS, agent_overrides=A2C_SMALL
    )
    assert r.optimizer == "Optim4RL (o.eqx)"
    config = la.A2CConfig.small_gridworld(total_timesteps=A2C_STEPS, **A2C_SMALL)
    env, params = lg.make("small_dense_short")
    direct = la.A2C(config).train(env, params, opt, key=jax.random.key(0))
    np.testing.assert_allclose(r.final_returns[0], float(direct.final_return), rtol=1e-5)
    ev.save_optimizer(tmp_path / "run" / "optimizers" / "p.eqx", opt, learning_rate=1e-2)
    with pytest.raises(runs.ConfigError, match="2 learned optimizers"):
        ev.load_optimizer(tmp_path / "run")


def test_optimizers_saved_in_the_previous_format_still_load(tmp_path):
    # arrays only (lorl_optim.save_meta_parameters) plus a JSON sidecar with the class name
    opt = lo.Optim4RL(3e-3, hidden_size=4, key=jax.random.key(2))
    lo.save_meta_parameters(tmp_path / "old.eqx", opt)
    sidecar = {"class": "Optim4RL", "kwargs": {"learning_rate": 3e-3, "hidden_size": 4}}
    (tmp_path / "old.eqx.json").write_text(json.dumps(sidecar))
    loaded = ev.load_optimizer(tmp_path)
    assert loaded.config() == opt.config()
    for a, b in zip(jax.tree.leaves(opt), jax.tree.leaves(loaded), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    # the current format: one file, no sidecar; kwargs that disagree are refused
    new = ev.save_optimizer(tmp_path / "new" / "n.eqx", opt)
    assert lo.is_saved_optimizer(new) and not new.with_name("n.eqx.json").exists()
    with pytest.raises(runs.ConfigError, match="disagree"):
        ev.save_optimizer(tmp_path / "bad.eqx", opt, learning_rate=1e-2)


def test_nonfinite_updates_name_env_optimizer_and_seed():
    def nan_updates(updates, state, params=None):
        del params
        return jax.tree.map(lambda g: g * jnp.nan, updates), state

    broken = optax.GradientTransformation(lambda params: optax.EmptyState(), nan_updates)

    def run(on_nonfinite):
        return ev.evaluate(
            broken,
            "small_dense_short",
            seeds=[5],
            timesteps=4 * 20 * 2,
            agent_overrides=A2C_SMALL,
            label="broken",
            on_nonfinite=on_nonfinite,
        )

    with pytest.raises(la.NonFiniteUpdateError, match=r"broken .*small_dense_short.*seed 5"):
        run("raise")
    r = run("record")
    assert r.first_nonfinite_update.tolist() == [0]


def test_ppo_on_cartpole():
    r = ev.evaluate(
        "adam",
        "cartpole",
        seeds=2,
        timesteps=4 * 32 * 3,
        agent_overrides={"n_envs": 4, "n_steps": 32, "n_minibatches": 2, "n_epochs": 1},
    )
    assert r.env == "CartPole-v1" and r.agent == "ppo"
    assert r.returns.shape == (2, 3) and r.final_returns.shape == (2,)
    np.testing.assert_array_equal(r.steps, [128, 256, 384])
    # CartPole gives +1 per step: any finished episode has a return >= 1 (a random policy
    # lasts ~20 steps); unfinished environments count 0.
    assert np.all(r.final_returns > 1.0) and np.all(r.final_returns < 200.0)


def test_regularised_optimizer_names_train():
    # `+wd=` / `+l2=` wrap any optimizer name with lorl_optim.regularised (here a huge
    # decay, so the decayed run differs from the plain one)
    small = {"n_envs": 4, "n_steps": 32, "n_minibatches": 2, "n_epochs": 1}
    kw = {"seeds": 1, "timesteps": 4 * 32 * 6, "agent_overrides": small}
    plain = ev.evaluate("adam:1e-3", "cartpole", **kw)
    decayed = ev.evaluate("adam:1e-3+wd=0.5", "cartpole", **kw)
    assert decayed.optimizer == "adam (lr 0.001) + weight_decay 0.5"
    assert np.all(np.isfinite(decayed.returns[:, -1]))
    assert not np.array_equal(plain.returns, decayed.returns)


@pytest.mark.parametrize(
    ("optimizer", "env", "match"),
    [
        ("adamm", "small_dense_short", "Did you mean 'adam'"),
        ("adam", "small_dense_shrt", "Did you mean 'small_dense_short'"),
        ("open:brekout", "breakout", "Did you mean 'breakout'"),
        ("sgd", "breakout", "sgd:0.01"),
        ("lion", "small_dense_short", "lion:3e-3"),
        ("lion", "CartPole-v1", "no tuned lion"),
        ("adam:x", "breakout", "not a learning rate"),
        ("/no/such/file.eqx", "breakout", "unknown optimizer"),
        ("adam+xx=1", "breakout", "unknown regulariser 'xx'"),
        ("adam+wd=abc", "breakout", "not a number"),
        ("adam+l2=-1", "breakout", "l2 must be >= 0"),
        ("adam:tuned+l2=1e-3", "breakout", "needs a fixed learning rate"),
    ],
)
def test_bad_names_fail_before_compute(optimizer, env, match):
    with pytest.raises(runs.ConfigError, match=match):
        ev.evaluate(optimizer, env, seeds=1)


def test_bad_agent_settings_fail_before_compute():
    with pytest.raises(runs.ConfigError, match="Optim4RL gridworlds only"):
        ev.evaluate("adam", "breakout", seeds=1, agent="a2c")
    with pytest.raises(runs.ConfigError, match="no field"):
        ev.evaluate("adam", "breakout", seeds=1, agent_overrides={"gama": 0.9})
    with pytest.raises(runs.ConfigError, match="less than one update"):
        ev.evaluate("adam", "breakout", seeds=1, timesteps=10)
    with pytest.raises(runs.ConfigError, match="seeds"):
        ev.evaluate("adam", "breakout", seeds=0)


def test_default_agents_follow_the_papers():
    spec, c = ev.agent_config_for("big_dense_long")
    assert spec.agent == "a2c" and c.torso == "cnn" and c.n_envs == 512  # Optim4RL App. C
    _, c = ev.agent_config_for("small_dense_short")
    assert c.torso == "mlp" and c.total_timesteps == 30_000_000
    spec, c = ev.agent_config_for("breakout")
    assert spec.name == "Breakout-MinAtar" and (c.n_envs, c.n_steps) == (64, 128)  # OPEN T3
    spec, c = ev.agent_config_for("rand_dense")
    assert spec.family == "levels" and (c.n_envs, c.width) == (1024, 16)  # OPEN Table 3


def test_optax_actor_critic_clip_matches_the_agents_own():
    # lorl_optim's optax transformation and lorl_agents' learner helper are written apart
    # (the packages do not import each other); they must clip alike
    grads = {"a": jnp.asarray([3.0, -4.0]), "c": jnp.asarray([[0.1, 2.0]]), "d": jnp.ones(3)}
    mask = {"a": True, "c": False, "d": False}
    ours, _ = la.clip_by_group_norm(grads, mask, 0.5, True)
    tx = lo.clip_by_actor_critic_norm(0.5)
    theirs, _ = tx.update(grads, tx.init(grads), actor_mask=mask)
    for x, y in zip(jax.tree.leaves(ours), jax.tree.leaves(theirs), strict=True):
        np.testing.assert_allclose(x, y, rtol=1e-6)


def test_published_open_accepts_every_spelling_of_its_environment():
    spec, config = ev.agent_config_for("space_invaders")
    labels = set()
    for name in ("open:space_invaders", "open:spaceinvaders", "open:SpaceInvaders-MinAtar"):
        opt, label = ev.resolve_optimizer(name, spec, config)
        assert isinstance(opt, lo.OPEN)
        labels.add(label)
    assert labels == {"OPEN (spaceinvaders)"}
    with pytest.raises(runs.ConfigError, match="no published OPEN optimizer 'pong'"):
        ev.resolve_optimizer("open:pong", spec, config)
