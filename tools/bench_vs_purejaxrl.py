"""PPO of lorl-agents against PureJaxRL's `ppo.py`, in one process (issue 22, item 1).

PureJaxRL (Lu et al. 2022) is the PPO most JAX RL code is built on, and the OPEN paper's
PPO follows it. This script times, on the same machine and in interleaved rounds,

- lorl-agents PPO + Adam (`lorl_agents.PPO(config).train`), and
- PureJaxRL's own `make_train(config)` from `ppo.py`, jitted as its `__main__` does,

with the same settings, on

- `breakout`: Breakout-MinAtar, OPEN Table 3 MinAtar column (64 envs x 128 steps,
  4 epochs x 8 minibatches, width 64, relu);
- `cartpole`: CartPole-v1, PureJaxRL's CartPole defaults (4 x 128, 4 x 4, width 64, tanh);
- `gridworld`: lorl_gridworlds' `all` level distribution, OPEN Table 3 gridworld column
  (1024 x 20, 2 epochs x 16 minibatches, width 16, tanh). PureJaxRL's `make_train`
  builds its environment with `gymnax.make`; for this column that call is redirected to
  `lorl_gridworlds.make("all")` (our gridworld has the gymnax interface), nothing else.
  PureJaxRL's network has width 64 hard-coded; for this column it is replaced by a copy
  of its `ActorCritic` with width 16 (the only change), so both run the same network.

PureJaxRL is not part of lorl and is never imported by it: this script takes the folder
holding `ppo.py` and a `wrappers.py` as an argument. PureJaxRL's `wrappers.py` imports Brax
and navix at the top, for wrappers `ppo.py` does not use; the folder must hold a
`wrappers.py` with only `GymnaxWrapper`, `FlattenObservationWrapper` and `LogWrapper`
(the lines of PureJaxRL's file for these three classes, unchanged). `ppo.py` needs
`flax` (a Brax dependency, installed with `lorl[brax]`) and `distrax`; pass a folder with
`distrax` (and `chex`, `tfp-nightly`) installed via `--site` (e.g. `pip install --no-deps
--target DIR distrax chex toolz tfp-nightly dm-tree gast cloudpickle decorator`).

Compilation is excluded: every program runs once, then all are timed in `--repeats`
interleaved rounds (round i: key i + 1 for every program), so a change of machine speed
hits both alike. Reported: median seconds, env-steps/s, and the median over rounds of
PureJaxRL's time / lorl's time in the same round (> 1: lorl is faster).

    python tools/bench_vs_purejaxrl.py --purejaxrl /tmp/pjrl --site /tmp/pjrl/site \\
        --envs breakout,cartpole,gridworld --repeats 7 \\
        --out docs/data/agents/bench_vs_purejaxrl.json
"""

import argparse
import dataclasses
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax

import lorl_agents as la
import lorl_optim as lo

# Per environment: lorl's PPOConfig, the matching PureJaxRL config, the env factory and
# the OPEN-tuned Adam preset used by lorl (PureJaxRL's own Adam: eps 1e-5, default betas;
# the learning rate does not change the cost).
ENVS: dict[str, dict[str, Any]] = {
    "breakout": {
        "gymnax_name": "Breakout-MinAtar",
        "config": la.PPOConfig.minatar,
        "updates": 10,
        "adam": "breakout",
    },
    "cartpole": {
        "gymnax_name": "CartPole-v1",
        "config": la.PPOConfig.cartpole,
        "updates": 200,
        "adam": None,
    },
    "gridworld": {
        "gymnax_name": None,
        "config": la.PPOConfig.gridworld,
        "updates": 10,
        "adam": "gridworld",
    },
}


def _purejaxrl_config(cfg: la.PPOConfig, env_name: str, lr: float) -> dict[str, Any]:
    return {
        "LR": lr,
        "NUM_ENVS": cfg.n_envs,
        "NUM_STEPS": cfg.n_steps,
        "TOTAL_TIMESTEPS": cfg.steps_per_run,
        "UPDATE_EPOCHS": cfg.n_epochs,
        "NUM_MINIBATCHES": cfg.n_minibatches,
        "GAMMA": cfg.gamma,
        "GAE_LAMBDA": cfg.gae_lambda,
        "CLIP_EPS": cfg.clip_eps,
        "ENT_COEF": cfg.ent_coef,
        "VF_COEF": cfg.vf_coef,
        "MAX_GRAD_NORM": cfg.max_grad_norm,
        "ACTIVATION": cfg.activation,
        "ENV_NAME": env_name,
        "ANNEAL_LR": True,
        "DEBUG": False,
    }


def _narrow_actor_critic(ppo_module: Any, width: int) -> type:
    """PureJaxRL's `ActorCritic` with its hard-coded width 64 replaced by `width`."""
    import flax.linen as nn
    import numpy as np
    from flax.linen.initializers import constant, orthogonal

    distrax = ppo_module.distrax
    jnp = ppo_module.jnp

    class ActorCritic(nn.Module):
        action_dim: int
        activation: str = "tanh"

        @nn.compact
        def __call__(self, x):
            act = nn.relu if self.activation == "relu" else nn.tanh
            a = act(nn.Dense(width, kernel_init=orthogonal(np.sqrt(2)), bias_init=constant(0.0))(x))
            a = act(nn.Dense(width, kernel_init=orthogonal(np.sqrt(2)), bias_init=constant(0.0))(a))
            a = nn.Dense(self.action_dim, kernel_init=orthogonal(0.01), bias_init=constant(0.0))(a)
            c = act(nn.Dense(width, kernel_init=orthogonal(np.sqrt(2)), bias_init=constant(0.0))(x))
            c = act(nn.Dense(width, kernel_init=orthogonal(np.sqrt(2)), bias_init=constant(0.0))(c))
            c = nn.Dense(1, kernel_init=orthogonal(1.0), bias_init=constant(0.0))(c)
            return distrax.Categorical(logits=a), jnp.squeeze(c, axis=-1)

    return ActorCritic


def _programs(name: str, updates: int | None, ppo_module: Any) -> tuple[dict[str, Callable], int]:
    spec = ENVS[name]
    n_updates = updates or spec["updates"]
    base = spec["config"]()
    cfg = dataclasses.replace(base, total_timesteps=n_updates * base.batch_size)
    agent = la.PPO(cfg)
    if spec["gymnax_name"] is None:
        import lorl_gridworlds as lg

        env, env_params = lg.make("all")
    else:
        env, env_params = la.make_env(spec["gymnax_name"])
    if spec["adam"] is None:
        import optax

        lr = 2.5e-4  # PureJaxRL CartPole
        schedule = lo.baselines.linear_annealing(lr, cfg.optimizer_steps, cfg.steps_per_update)
        adam = optax.adam(schedule, eps=1e-5)
    else:
        lr = lo.baselines.ADAM[spec["adam"]].learning_rate
        adam = lo.baselines.adam(
            spec["adam"], total_steps=cfg.optimizer_steps, steps_per_update=cfg.steps_per_update
        )

    @eqx.filter_jit
    def lorl_ppo(key):
        return agent.train(env, env_params, adam, key=key).final_return

    pj_config = _purejaxrl_config(cfg, spec["gymnax_name"] or "lorl-gridworld", lr)
    original_make = ppo_module.gymnax.make
    original_ac = ppo_module.ActorCritic
    try:
        if spec["gymnax_name"] is None:
            ppo_module.gymnax.make = lambda _name: (env, env_params)
        if cfg.width != 64:
            ppo_module.ActorCritic = _narrow_actor_critic(ppo_module, cfg.width)
        pj_train = jax.jit(ppo_module.make_train(pj_config))
        # make_train builds its env now, the network at trace time: trace it here.
        pj_lowered = pj_train.lower(jax.random.key(0))
    finally:
        ppo_module.gymnax.make = original_make
        ppo_module.ActorCritic = original_ac
    pj_compiled = pj_lowered.compile()
    return {"lorl": lorl_ppo, "purejaxrl": pj_compiled}, cfg.steps_per_run


def _run(fn: Callable, key: jax.Array) -> float:
    t0 = time.perf_counter()
    jax.block_until_ready(fn(key))
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--purejaxrl", required=True, help="folder with ppo.py and wrappers.py")
    parser.add_argument("--site", default=None, help="folder with distrax & co. installed")
    parser.add_argument("--envs", default="breakout,cartpole,gridworld")
    parser.add_argument("--updates", type=int, default=None, help="PPO updates per timed run")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--out", default="docs/data/agents/bench_vs_purejaxrl.json")
    args = parser.parse_args()
    for path in (args.site, args.purejaxrl):
        if path is not None:
            sys.path.insert(0, os.path.abspath(path))
    import ppo as ppo_module  # pyright: ignore[reportMissingImports]  (PureJaxRL, --purejaxrl)

    out = {
        "purejaxrl_folder": os.path.abspath(args.purejaxrl),
        "jax": jax.__version__,
        "cpu_count": os.cpu_count(),
        "processor": platform.processor() or platform.machine(),
        "timing": "compiled first, then interleaved rounds (round i: key i + 1 for both)",
        "results": [],
    }
    print(
        f"{'env':10s} {'program':10s} {'compile (s)':>11s} {'run (s)':>8s} {'steps/s':>9s} "
        f"{'purejaxrl/lorl per round':>26s}"
    )
    for name in args.envs.split(","):
        if name not in ENVS:
            parser.error(f"unknown env {name!r}; choose from {', '.join(ENVS)}")
        programs, steps = _programs(name, args.updates, ppo_module)
        compile_s = {k: _run(fn, jax.random.key(0)) for k, fn in programs.items()}
        times: dict[str, list[float]] = {k: [] for k in programs}
        for i in range(args.repeats):
            for k, fn in programs.items():
                times[k].append(_run(fn, jax.random.key(i + 1)))
        ratios = [p / o for p, o in zip(times["purejaxrl"], times["lorl"], strict=True)]
        for k in programs:
            med = statistics.median(times[k])
            extra = f"{statistics.median(ratios):.3f} ({min(ratios):.2f}-{max(ratios):.2f})"
            print(
                f"{name:10s} {k:10s} {compile_s[k]:11.1f} {med:8.3f} {steps / med:9.0f} "
                f"{extra if k == 'lorl' else '':>26s}"
            )
        out["results"].append(
            {
                "env": name,
                "env_steps_per_run": steps,
                "repeats": args.repeats,
                "seconds": times,
                "env_steps_per_s": {k: steps / statistics.median(v) for k, v in times.items()},
                "purejaxrl_over_lorl_time_per_round": ratios,
                "median_speedup_of_lorl": statistics.median(ratios),
                "load_average": os.getloadavg()[0],
            }
        )
    with open(args.out, "w") as f:
        json.dump(out, f, indent=2)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
