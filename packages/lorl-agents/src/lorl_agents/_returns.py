"""Generalised advantage estimation and lambda-returns, by reverse scan."""

import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float


def gae(
    rewards: Float[Array, " time *batch"],
    values: Float[Array, " time *batch"],
    dones: Bool[Array, " time *batch"],
    last_value: Float[Array, "*batch"],
    gamma: float | Float[Array, ""],
    lam: float | Float[Array, ""],
) -> tuple[Float[Array, " time *batch"], Float[Array, " time *batch"]]:
    """Generalised advantage estimation (Schulman et al. 2016).

    `dones[t]` says that the transition taken at time `t` ended its episode, so the value of
    the next observation is not bootstrapped and the trace is cut:

    `delta_t = r_t + gamma * (1 - d_t) * V_{t+1} - V_t`,
    `A_t = delta_t + gamma * lam * (1 - d_t) * A_{t+1}`,

    with `V_T = last_value` and `A_T = 0`.

    **Arguments:**

    - `rewards`: rewards `r_t`.
    - `values`: value estimates `V(s_t)` of the observations the actions were taken in.
    - `dones`: episode-end flags of each transition.
    - `last_value`: value estimate of the observation after the last transition.
    - `gamma`: discount factor.
    - `lam`: GAE lambda.

    **Returns:**

    `(advantages, targets)` where `targets = advantages + values` are the value targets
    (the lambda-returns).
    """
    not_done = 1.0 - dones.astype(rewards.dtype)
    next_values = jnp.concatenate([values[1:], last_value[None]], axis=0)
    deltas = rewards + gamma * not_done * next_values - values

    def backward(carry, inputs):
        delta, nd = inputs
        advantage = delta + gamma * lam * nd * carry
        return advantage, advantage

    _, advantages = jax.lax.scan(
        backward, jnp.zeros_like(last_value), (deltas, not_done), reverse=True
    )
    return advantages, advantages + values


def lambda_returns(
    rewards: Float[Array, " time *batch"],
    values: Float[Array, " time *batch"],
    dones: Bool[Array, " time *batch"],
    last_value: Float[Array, "*batch"],
    gamma: float | Float[Array, ""],
    lam: float | Float[Array, ""],
) -> Float[Array, " time *batch"]:
    """Lambda-returns (Sutton and Barto 2018, Section 12.1), the A2C targets.

    `G_t = r_t + gamma * (1 - d_t) * ((1 - lam) * V_{t+1} + lam * G_{t+1})`, with
    `V_T = G_T = last_value`. Computed directly by this recursion (not via GAE), so the two
    can be checked against each other.

    **Arguments:**

    - `rewards`: rewards `r_t`.
    - `values`: value estimates `V(s_t)`.
    - `dones`: episode-end flags of each transition.
    - `last_value`: value estimate of the observation after the last transition.
    - `gamma`: discount factor.
    - `lam`: lambda.

    **Returns:**

    The lambda-returns `G_t`, one per transition.
    """
    not_done = 1.0 - dones.astype(rewards.dtype)
    next_values = jnp.concatenate([values[1:], last_value[None]], axis=0)

    def backward(next_return, inputs):
        reward, nd, next_value = inputs
        g = reward + gamma * nd * ((1.0 - lam) * next_value + lam * next_return)
        return g, g

    _, returns = jax.lax.scan(backward, last_value, (rewards, not_done, next_values), reverse=True)
    return returns
