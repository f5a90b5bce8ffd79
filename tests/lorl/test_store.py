"""`lorl.evaluation.ResultStore` / `evaluate_with_store`: finished runs are reused, keyed
by optimizer identity, environment, agent configuration (budget included) and seed; only
missing seeds are trained."""

import shutil

import jax
import numpy as np
import optax
import pytest

import lorl_optim as lo
from lorl import evaluation as ev, runs
from lorl.evaluation import _store

SMALL = {"n_envs": 4, "n_steps": 32, "n_minibatches": 2, "n_epochs": 1}
KW = {"timesteps": 4 * 32 * 2, "agent_overrides": SMALL}


def test_optimizer_identity(tmp_path):
    assert ev.optimizer_identity(" adam:3e-4 ") == "name:adam:3e-4"
    opt = lo.Optim4RL(1e-2, key=jax.random.key(0))
    a = lo.save(tmp_path / "a.eqx", opt)
    shutil.copy(a, tmp_path / "b.eqx")
    ident = ev.optimizer_identity(str(a))
    assert ident.startswith("file:") and ident == ev.optimizer_identity(tmp_path / "b.eqx")
    assert ev.optimizer_identity(opt) == ident  # the object and its saved file agree
    other = lo.Optim4RL(1e-2, key=jax.random.key(1))
    assert ev.optimizer_identity(other) != ident
    with pytest.raises(runs.ConfigError, match="no stable identity"):
        ev.optimizer_identity(optax.adam(1e-3))


def test_only_missing_seeds_are_trained(tmp_path, monkeypatch):
    calls = []
    real = _store.evaluate

    def spy(optimizer, env, *, seeds, **kwargs):
        calls.append(tuple(seeds))
        return real(optimizer, env, seeds=seeds, **kwargs)

    monkeypatch.setattr(_store, "evaluate", spy)
    store = ev.ResultStore(tmp_path / "store")
    first = ev.evaluate_with_store(store, "adam:1e-3", "cartpole", seeds=[0, 1], **KW)
    assert calls == [(0, 1)] and len(store) == 2
    again = ev.evaluate_with_store(store, "adam:1e-3", "CartPole-v1", seeds=[1, 0, 2], **KW)
    assert calls == [(0, 1), (2,)]  # the alias names the same environment; only seed 2 is new
    assert again.seeds == (1, 0, 2) and len(store) == 3
    np.testing.assert_array_equal(again.final_returns[:2], first.final_returns[::-1])
    np.testing.assert_array_equal(again.returns[1], first.returns[0])
    assert again.optimizer == first.optimizer and again.timesteps == first.timesteps
    # another budget is another run
    ev.evaluate_with_store(store, "adam:1e-3", "cartpole", seeds=[0], timesteps=4 * 32 * 3,
                           agent_overrides=SMALL)  # fmt: skip
    assert calls[-1] == (0,) and len(store) == 4


def test_keys_cover_everything_that_determines_a_run():
    base = {"n_envs": 4, "total_timesteps": 256}
    k = ev.ResultStore.key("name:adam", "CartPole-v1", base, 0)
    assert k != ev.ResultStore.key("name:adam", "CartPole-v1", {**base, "total_timesteps": 512}, 0)
    assert k != ev.ResultStore.key("name:adam", "CartPole-v1", base, 1)
    assert k != ev.ResultStore.key("name:rmsprop", "CartPole-v1", base, 0)
    assert k != ev.ResultStore.key("name:adam", "CartPole-v1", base, 0, {"tuning_seeds": 4})
    assert k == ev.ResultStore.key("name:adam", "CartPole-v1", dict(reversed(base.items())), 0)


def test_finished_results_can_be_imported(tmp_path):
    result = ev.evaluate("adam:1e-3", "cartpole", seeds=[3, 4], **KW)
    store = ev.ResultStore(tmp_path)
    assert store.add(ev.optimizer_identity("adam:1e-3"), result) == 2
    back = ev.evaluate_with_store(store, "adam:1e-3", "cartpole", seeds=[4, 3], **KW)
    np.testing.assert_array_equal(back.final_returns, result.final_returns[::-1])


def test_an_environments_spellings_share_records(tmp_path, monkeypatch):
    """A result recorded under a short name ("breakout", as the published-OPEN pages
    record it) is found by a run that names the environment otherwise."""
    base = {"n_envs": 4, "total_timesteps": 256}
    k = ev.ResultStore.key("name:adam", "breakout", base, 0)
    assert k == ev.ResultStore.key("name:adam", "Breakout-MinAtar", base, 0)
    assert k != ev.ResultStore.key("name:adam", "asterix", base, 0)
    # names lorl.evaluation does not know are keyed as given
    assert ev.ResultStore.key("x", "no-such-env", base, 0) != ev.ResultStore.key(
        "x", "other", base, 0
    )
    result = ev.evaluate("adam:1e-3", "cartpole", seeds=[5], **KW)
    store = ev.ResultStore(tmp_path)
    store.add(
        "name:adam:1e-3", ev.EvaluationResult.from_dict({**result.to_dict(), "env": "cartpole"})
    )
    monkeypatch.setattr(_store, "evaluate", lambda *a, **k: pytest.fail("trained again"))
    back = ev.evaluate_with_store(store, "adam:1e-3", "CartPole-v1", seeds=[5], **KW)
    np.testing.assert_array_equal(back.final_returns, result.final_returns)
