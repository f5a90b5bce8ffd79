"""Training runs that collect gradients: RL agents (A2C, PPO from `lorl_agents`) and a
supervised classifier on scikit-learn's digits (the stand-in for MNIST, Optim4RL
Appendix E)."""

from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array, Float, Int, PRNGKeyArray

from lorl_agents import AbstractAgent, conv_same_channels_last

from ._collect import GradientCollector, GradientSample
from ._errors import AnalysisError


def optimizer_calls(agent: AbstractAgent) -> int:
    """How many times `agent`'s training run calls its optimizer.

    **Arguments:**

    - `agent`: an A2C (one call per update) or PPO (`n_epochs * n_minibatches` per update).

    **Returns:**

    The number of optimizer calls of a whole run.
    """
    if not isinstance(agent, AbstractAgent):
        raise AnalysisError(f"expected an A2C or PPO agent, got {type(agent).__name__}")
    return agent.optimizer_calls


@eqx.filter_jit
def _run_agent(agent: Any, env: Any, env_params: Any, optimizer: Any, key: PRNGKeyArray):
    state = agent.init(env, env_params, optimizer, key=key)

    def body(state, _):
        state, metrics = agent.step(state, env, env_params, optimizer)
        return state, (metrics["episode_return"], metrics["nonfinite"])

    state, (returns, nonfinite) = jax.lax.scan(body, state, None, length=agent.config.n_updates)
    return state.opt_state, returns, nonfinite


def collect_rl_gradients(
    agent: AbstractAgent,
    env: Any,
    env_params: Any,
    optimizer: Any,
    *,
    n_stages: int = 30,
    per_stage: int = 10_000,
    n_traced: int = 0,
    key: PRNGKeyArray,
) -> tuple[GradientSample, dict[str, np.ndarray]]:
    """Train `agent` once (one jitted run) and collect the gradients its optimizer sees.

    The gradients are those passed to the optimizer, i.e. after the agent's clipping (A2C:
    element-wise at `max_grad_value`; PPO: global norm), which is what a learned optimizer
    receives as input.

    **Arguments:**

    - `agent`: a `lorl_agents.A2C` or `lorl_agents.PPO`.
    - `env`, `env_params`: the environment.
    - `optimizer`: the optimizer (optax or learned), e.g. `optax.rmsprop(3e-3)`.
    - `n_stages`, `per_stage`, `n_traced`: see [`lorl.analysis.GradientCollector`][].
    - `key`: PRNG key.

    **Returns:**

    `(sample, metrics)`: the [`lorl.analysis.GradientSample`][] and the per-update
    `episode_return` (NaN where no episode finished).
    """
    collect_key, run_key = jax.random.split(key)
    collector = GradientCollector(
        optimizer,
        optimizer_calls(agent),
        n_stages=n_stages,
        per_stage=per_stage,
        n_traced=n_traced,
        key=collect_key,
    )
    opt_state, returns, nonfinite = _run_agent(agent, env, env_params, collector, run_key)
    if bool(np.any(np.asarray(nonfinite))):
        raise AnalysisError("the training run produced non-finite updates")
    return GradientSample.from_state(opt_state), {"episode_return": np.asarray(returns)}


def load_digits_data() -> tuple[Float[np.ndarray, "n 8 8 1"], Int[np.ndarray, " n"]]:
    """scikit-learn's bundled digits (1,797 8x8 images, 10 classes; no download), pixels
    scaled to [0, 1], channels last.

    **Returns:**

    `(images, labels)`.
    """
    from sklearn.datasets import load_digits

    data: Any = load_digits()
    images = (np.asarray(data["images"], np.float32) / 16.0)[..., None]
    return images, np.asarray(data["target"], np.int32)


class DigitsCNN(eqx.Module):
    """The actor network of A2C on `big_dense_long` with a 10-class output (Optim4RL
    Appendix E uses "the same network as the actor network ... except for the output
    layer"): Conv(16, 2x2, SAME) -> ReLU -> Linear(32) -> ReLU -> Linear(10)."""

    conv: eqx.nn.Conv2d
    hidden: eqx.nn.Linear
    out: eqx.nn.Linear

    def __init__(self, shape: tuple[int, int, int] = (8, 8, 1), *, key: PRNGKeyArray):
        k1, k2, k3 = jax.random.split(key, 3)
        h, w, c = shape
        self.conv = eqx.nn.Conv2d(c, 16, kernel_size=2, padding="SAME", key=k1)  # Optim4RL App. C
        self.hidden = eqx.nn.Linear(h * w * 16, 32, key=k2)  # Optim4RL Appendix C: 32
        self.out = eqx.nn.Linear(32, 10, key=k3)

    def __call__(self, x: Float[Array, "h w c"]) -> Float[Array, " 10"]:
        y = jax.nn.relu(conv_same_channels_last(self.conv, x))
        y = jax.nn.relu(self.hidden(jnp.ravel(y)))
        return self.out(y)


@eqx.filter_jit
def _train_digits(model, collector, images, labels, perms):
    params, static = eqx.partition(model, eqx.is_inexact_array)
    opt_state = collector.init(params)

    def loss_fn(params, x, y):
        logits = jax.vmap(eqx.combine(params, static))(x)
        logp = jax.nn.log_softmax(logits)
        return -jnp.mean(jnp.take_along_axis(logp, y[:, None], axis=1)), logits

    def step(carry, idx):
        params, opt_state = carry
        (loss, logits), grads = jax.value_and_grad(loss_fn, has_aux=True)(
            params, images[idx], labels[idx]
        )
        updates, opt_state = collector.update(grads, opt_state, params)
        params = eqx.apply_updates(params, updates)
        acc = jnp.mean((jnp.argmax(logits, axis=1) == labels[idx]).astype(jnp.float32))
        return (params, opt_state), (loss, acc)

    (params, opt_state), (losses, accs) = jax.lax.scan(step, (params, opt_state), perms)
    return opt_state, losses, accs


def collect_supervised_gradients(
    *,
    epochs: int = 10,
    batch_size: int = 128,
    learning_rate: float = 3e-4,
    n_stages: int = 30,
    per_stage: int = 10_000,
    n_traced: int = 0,
    key: PRNGKeyArray,
) -> tuple[GradientSample, dict[str, np.ndarray]]:
    """Train [`lorl.analysis.DigitsCNN`][] on scikit-learn's digits with RMSProp and
    collect its gradients (the supervised reference of Optim4RL Appendix E, where MNIST,
    which cannot be downloaded here, is replaced by digits).

    **Arguments:**

    - `epochs`, `batch_size`, `learning_rate`: 10, 128 and 3e-4 in the Optim4RL public
      code's MNIST configuration (`configs/collect_mnist.json`).
    - `n_stages`, `per_stage`, `n_traced`: see [`lorl.analysis.GradientCollector`][].
    - `key`: PRNG key.

    **Returns:**

    `(sample, metrics)` with per-step `loss` and minibatch `accuracy`.
    """
    images, labels = load_digits_data()
    n = images.shape[0]
    steps_per_epoch = n // batch_size
    if steps_per_epoch < 1:
        raise AnalysisError(f"batch_size {batch_size} exceeds the {n} digits")
    model_key, perm_key, collect_key = jax.random.split(key, 3)
    perms = jnp.concatenate(
        [
            jax.random.permutation(k, n)[: steps_per_epoch * batch_size].reshape(
                steps_per_epoch, batch_size
            )
            for k in jax.random.split(perm_key, epochs)
        ]
    )
    collector = GradientCollector(
        optax.rmsprop(learning_rate),
        int(perms.shape[0]),
        n_stages=n_stages,
        per_stage=per_stage,
        n_traced=n_traced,
        key=collect_key,
    )
    model = DigitsCNN(key=model_key)
    opt_state, losses, accs = _train_digits(
        model, collector, jnp.asarray(images), jnp.asarray(labels), perms
    )
    return GradientSample.from_state(opt_state), {
        "loss": np.asarray(losses),
        "accuracy": np.asarray(accs),
    }
