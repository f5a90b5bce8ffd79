"""OPEN's behaviour analyses (Goldie et al., Appendix F) over a PPO training run: per
update, inside the jitted run, with bounded memory (a few scalars per update)."""

import dataclasses
from typing import Any

import numpy as np


def behaviour_curves(
    optimizer: Any, env: Any, params: Any, agent: Any, seeds: list[int], max_points: int
) -> dict[str, Any]:
    """Train PPO (`agent`, with `update_statistics` on) with `optimizer` wrapped in a
    `lorl_agents.MomentumProbe` on every seed (one vmapped program) and keep the behaviour
    metrics per update.

    **Arguments:**

    - `optimizer`: an optax transformation or learned optimizer.
    - `env`, `params`: the environment and its parameters.
    - `agent`: the `lorl_agents.PPOConfig`.
    - `seeds`: training seeds.
    - `max_points`: curves keep at most about this many updates (every k-th, and the last).

    **Returns:**

    Per metric a `(seeds, points)` list (`dormancy`: `(seeds, points, layers)`), the
    `steps` of the points and the `final_returns`. The metrics:
    `update_grad_cosine` and `update_param_ratio` (`lorl_agents.update_statistics`),
    `update_momentum_cosine_<beta>` at OPEN's six momentum timescales
    (`lorl_agents.MomentumProbe`), `noise_param_ratio` for an optimizer with learned
    noise (`lorl_agents.noise_statistics`), `dormancy` per layer and `return`.
    """
    import jax
    import jax.numpy as jnp

    import lorl_agents as la

    ppo = la.PPO(dataclasses.replace(agent, update_statistics=True))
    probe = la.MomentumProbe(optimizer)  # OPEN's momentum timescales, beside any optimizer

    def one(seed: Any) -> dict[str, Any]:
        r = ppo.train(env, params, probe, key=jax.random.key(seed))
        out = {m: r.metrics[m] for m in ("update_grad_cosine", "update_param_ratio")}
        out |= {k: v for k, v in r.metrics.items() if k.startswith("update_momentum_cosine_")}
        if "noise_param_ratio" in r.metrics:  # optimizers with learned noise (OPEN)
            out["noise_param_ratio"] = r.metrics["noise_param_ratio"]
        out["dormancy"] = r.metrics["dormancy"]  # (updates, layers)
        out["return"] = r.metrics["last_return"]
        out["final"] = r.final_return
        return out

    with jax.numpy_dtype_promotion("standard"):
        out = jax.jit(jax.vmap(one))(jnp.asarray(seeds, jnp.uint32))
    n = agent.n_updates
    keep = np.unique(np.r_[np.arange(0, n, max(1, n // max_points)), n - 1])
    record = {k: np.asarray(v)[:, keep].tolist() for k, v in out.items() if k != "final"}
    record["final_returns"] = np.asarray(out["final"]).tolist()
    record["steps"] = ((keep + 1) * agent.batch_size).tolist()
    return record
