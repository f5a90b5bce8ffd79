"""The ES trainer: estimator direction on a quadratic, learning, NaN ranking, antithetic
task sampling, input validation."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import lorl_meta as lm

from .common import TARGET, Quadratic, quadratic_fitness, quadratic_trainer


def _one_generation(trainer, optimizer, seed=0):
    strategy = trainer.strategy(optimizer)
    static = eqx.partition(optimizer, eqx.is_inexact_array)[1]
    state = trainer.init(optimizer, strategy, key=jax.random.key(seed))
    from lorl_meta._es import _generation

    new, metrics = _generation(trainer, strategy, static, state, jax.random.PRNGKey(1), False)
    before = np.asarray(state.es_state.mean)
    after = np.asarray(new.es_state.mean)
    return before, after, metrics


def test_es_step_on_a_quadratic_points_towards_the_optimum():
    config = lm.ESConfig(n_generations=1, population_size=256, sigma_init=0.05, lr=0.01)
    trainer = lm.ESTrainer(config, lm.ESTask("quadratic", quadratic_fitness))
    before, after, metrics = _one_generation(trainer, Quadratic(jnp.zeros(5, jnp.float32)))
    step = after - before
    # Adam's first step has size lr in every coordinate, with the sign of the estimate.
    np.testing.assert_array_equal(np.sign(step), np.sign(np.asarray(TARGET)))
    np.testing.assert_allclose(np.abs(step), 0.01, rtol=1e-3)
    assert int(metrics["n_nonfinite"]) == 0


def test_es_raises_the_fitness_of_its_mean():
    trainer = quadratic_trainer(24)
    start = Quadratic(jnp.zeros(5, jnp.float32))
    result = trainer.train(start, seed=0, progress=False)
    first = quadratic_fitness(start, None, None)
    assert result.best_score > float(first) * 0.25  # -2.875 -> better than -0.72
    mean_scores = [row["mean_score"] for row in result.history]
    assert np.mean(mean_scores[-3:]) > np.mean(mean_scores[:3]) + 1.0
    # Best-generation selection: the returned optimizer is the validated best mean.
    val = [row.get("validation_score") for row in result.history]
    best_gen = int(np.nanargmax([np.nan if v is None else v for v in val])) + 1
    assert result.best_generation == best_gen
    np.testing.assert_allclose(
        float(quadratic_fitness(result.optimizer, None, None)), result.best_score, rtol=1e-6
    )


def test_nonfinite_members_rank_last_and_the_generation_goes_on():
    def fitness(opt, env_params, key):
        value = -jnp.sum((opt.w - TARGET) ** 2)
        return jnp.where(opt.w[0] > 0, jnp.nan, value)

    config = lm.ESConfig(n_generations=1, population_size=32, sigma_init=0.1, lr=0.01)
    trainer = lm.ESTrainer(config, lm.ESTask("nan", fitness))
    before, after, metrics = _one_generation(trainer, Quadratic(jnp.zeros(5, jnp.float32)))
    # The mean is 0, so exactly one member of each antithetic pair has w[0] > 0.
    assert int(metrics["n_nonfinite"]) == 16
    assert np.all(np.isfinite(after))
    # The NaN members rank last: the mean moves away from w[0] > 0, although the
    # quadratic alone would pull it towards TARGET[0] = +1.
    assert after[0] < before[0]


def test_antithetic_task_sampling_evaluates_each_pair_on_one_level_and_seed():
    # Fitness depends only on the level and the agent seed: if both members of every pair
    # share them, every pair ties, every utility is 0 and the mean does not move at all.
    def sampler(key):
        return jax.random.normal(key, ()) * 100.0

    def fitness(opt, level, key):
        return level + jax.random.normal(key, ()) + 0.0 * jnp.sum(opt.w)

    config = lm.ESConfig(n_generations=1, population_size=16, sigma_init=0.1, lr=0.01)
    trainer = lm.ESTrainer(config, lm.ESTask("levels", fitness, level_sampler=sampler))
    before, after, _ = _one_generation(trainer, Quadratic(jnp.zeros(5, jnp.float32)))
    np.testing.assert_array_equal(before, after)


def test_antithetic_task_sampling_learns_despite_level_noise():
    # Level offsets 100x larger than the quadratic: a global rank would be noise; the
    # pairwise comparison cancels the level.
    def sampler(key):
        return jax.random.normal(key, ()) * 100.0

    def fitness(opt, level, key):
        return level - jnp.sum((opt.w - TARGET) ** 2)

    config = lm.ESConfig(
        n_generations=20, population_size=32, sigma_init=0.1, lr=0.05, lr_decay=0.999,
        eval_every=5, n_validation=2,
    )  # fmt: skip
    trainer = lm.ESTrainer(config, lm.ESTask("levels", fitness, level_sampler=sampler))
    result = trainer.train(Quadratic(jnp.zeros(5, jnp.float32)), seed=0, progress=False)
    before = float(quadratic_fitness(Quadratic(jnp.zeros(5, jnp.float32)), None, None))
    after = float(quadratic_fitness(result.final_optimizer, None, None))
    assert after > before * 0.3


def test_multitask_fitness_is_normalised_by_adam():
    # Task b's returns are 1000x larger; normalised by its Adam return they weigh equally.
    def fa(opt, p, key):
        return -jnp.sum((opt.w[:2] - TARGET[:2]) ** 2)

    def fb(opt, p, key):
        return -1000.0 * jnp.sum((opt.w[2:] - TARGET[2:]) ** 2)

    config = lm.ESConfig(n_generations=1, population_size=8, sigma_init=0.1, lr=0.01)
    tasks = (lm.ESTask("a", fa, normaliser=1.0), lm.ESTask("b", fb, normaliser=1000.0))
    trainer = lm.ESTrainer(config, tasks)
    optimizer = Quadratic(jnp.zeros(5, jnp.float32))
    strategy = trainer.strategy(optimizer)
    static = eqx.partition(optimizer, eqx.is_inexact_array)[1]
    state = trainer.init(optimizer, strategy, key=jax.random.key(0))
    with jax.numpy_dtype_promotion("standard"), jax.numpy_rank_promotion("allow"):
        population, _ = strategy.ask(jax.random.PRNGKey(3), state.es_state, strategy.default_params)
    score, utility, metrics = trainer.population_fitness(population, static, key=jax.random.key(1))
    w = np.asarray(population.w)
    t = np.asarray(TARGET)
    expected = (
        -np.sum((w[:, :2] - t[:2]) ** 2, axis=1) - np.sum((w[:, 2:] - t[2:]) ** 2, axis=1)
    ) / 2
    np.testing.assert_allclose(np.asarray(score), expected, rtol=1e-5)
    np.testing.assert_allclose(
        np.asarray(utility), np.argsort(np.argsort(expected)) / 7 - 0.5, atol=1e-6
    )


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"population_size": 15}, "even"),
        ({"population_size": 0}, "population_size"),
        ({"eval_every": 0}, "eval_every"),
        ({"sigma_decay": 1.5}, "sigma_decay"),
        ({"lr": 0.0}, "lr"),
    ],
)
def test_bad_es_config_is_rejected(kwargs, match):
    with pytest.raises(ValueError, match=match):
        lm.ESConfig(n_generations=3, **kwargs)


def test_nan_meta_parameters_are_rejected_before_compute():
    trainer = quadratic_trainer(24)
    with pytest.raises(ValueError, match="NaN"):
        trainer.train(Quadratic(jnp.full((5,), jnp.nan, jnp.float32)), seed=0, progress=False)


def test_distribution_task_must_be_alone():
    t1 = lm.ESTask("a", quadratic_fitness, level_sampler=lambda k: k)
    t2 = lm.ESTask("b", quadratic_fitness)
    with pytest.raises(ValueError, match="only task"):
        lm.ESTrainer(lm.ESConfig(n_generations=1), (t1, t2))


def test_a_generation_keeps_the_state_types_so_it_compiles_once():
    # evosax's init leaves some entries weakly typed; a generation returns them strongly
    # typed. Any change of type re-traces the whole generation (an ES run's most expensive
    # compile) in the second generation, so the trainer's state must keep its types.
    config = lm.ESConfig(n_generations=1, population_size=8, sigma_init=0.05, lr=0.01)
    trainer = lm.ESTrainer(config, lm.ESTask("quadratic", quadratic_fitness))
    optimizer = Quadratic(jnp.zeros(5, jnp.float32))
    strategy = trainer.strategy(optimizer)
    static = eqx.partition(optimizer, eqx.is_inexact_array)[1]
    state = trainer.init(optimizer, strategy, key=jax.random.key(0))
    from lorl_meta._es import _generation

    new, _ = _generation(trainer, strategy, static, state, jax.random.PRNGKey(1), False)

    def types(tree):
        return [(t.shape, t.dtype, t.weak_type) for t in map(jax.typeof, jax.tree.leaves(tree))]

    assert types(new) == types(state)
