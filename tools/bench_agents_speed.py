"""Speed benchmark of lorl-agents PPO on Breakout-MinAtar (issue 4, item 9).

Measures, in one process and one after the other, environment steps per second of
1. raw environment stepping (64 vmapped envs, random actions, the same scan structure),
2. the fully jitted PPO run with Adam (OPEN's tuned values for Breakout),
3. the same PPO run with OPEN's published Breakout optimizer from `lorl-optim` (if that
   package is installed; otherwise the column is left out and said so), once with its XLA
   implementation and once with the default backend (the fused CPU kernel).

PPO settings: OPEN Table 3 MinAtar column (64 envs x 128 steps, 4 epochs x 8 minibatches,
width 64). Compilation is excluded: every program runs once to compile, then all
programs are timed in `--repeats` interleaved rounds (one run of each per round, fresh
keys), so a change of machine speed hits all of them alike; the median is reported, and
for the learned optimizer also the median over rounds of its time / Adam's time in the
same round.

    python tools/bench_agents_speed.py --updates 20 --repeats 3 \
        --out docs/data/agents/bench_speed.json

`--old-rev REV` adds PPO + OPEN with the fused kernel of lorl_optim at git revision REV
(imported side by side), so two kernels are compared in the same rounds.
"""

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp

import lorl_agents as la
import lorl_optim as lo


def _compile(fn) -> float:
    """Compile and run once; returns the seconds taken."""
    t0 = time.perf_counter()
    jax.block_until_ready(fn(jax.random.key(0)))
    return time.perf_counter() - t0


def _rounds(programs: dict, repeats: int) -> dict[str, list[float]]:
    """Seconds of every program in `repeats` interleaved rounds (round i uses key i + 1)."""
    times: dict[str, list[float]] = {name: [] for name in programs}
    for i in range(repeats):
        for name, fn in programs.items():
            t0 = time.perf_counter()
            jax.block_until_ready(fn(jax.random.key(i + 1)))
            times[name].append(time.perf_counter() - t0)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--updates", type=int, default=20, help="PPO updates per timed run")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default="docs/data/agents/bench_speed.json")
    parser.add_argument(
        "--open-backends",
        default="xla,auto",
        help="comma-separated backends of the PPO + OPEN runs (xla, auto, fused)",
    )
    parser.add_argument(
        "--old-rev",
        default=None,
        help="also time PPO + OPEN (fused) with lorl_optim as of this git revision "
        "(imported side by side, tools/bench_optim_ab.py), interleaved with the others",
    )
    args = parser.parse_args()

    env, env_params = la.make_env("Breakout-MinAtar")
    config = la.PPOConfig.minatar(total_timesteps=args.updates * 64 * 128)
    steps = config.steps_per_run
    agent = la.PPO(config)
    n_actions = la.action_spec(env, env_params).n_outputs
    venv = la.VecEnv(env, config.n_envs)

    @jax.jit
    def raw_env(key):
        _, state = venv.reset(env_params, key=key)

        def body(carry, _):
            state, key, total = carry
            key, a_key, s_key = jax.random.split(key, 3)
            action = jax.random.randint(a_key, (config.n_envs,), 0, n_actions)
            obs, state, reward, *_ = venv.step(state, action, env_params, key=s_key)
            # Use the observations so XLA cannot drop their computation.
            return (state, key, total + jnp.sum(reward) + jnp.sum(obs)), None

        (state, _, total), _ = jax.lax.scan(
            body, (state, key, jnp.asarray(0.0)), None, length=steps // config.n_envs
        )
        return total

    network = agent.make_network(env, env_params, key=jax.random.key(0))

    @jax.jit
    def rollout_only(key):
        """Environment stepping plus the policy's forward pass and sampling (no learning)."""
        obs, state = venv.reset(env_params, key=key)

        def body(carry, _):
            obs, state, key, total = carry
            key, a_key, s_key = jax.random.split(key, 3)
            logits, value, _ = jax.vmap(network)(obs)
            action = la.categorical_sample(logits, key=a_key)
            obs, state, reward, *_ = venv.step(state, action, env_params, key=s_key)
            return (obs, state, key, total + jnp.sum(reward) + jnp.sum(value)), None

        (_, _, _, total), _ = jax.lax.scan(
            body, (obs, state, key, jnp.asarray(0.0)), None, length=steps // config.n_envs
        )
        return total

    programs: dict[str, Callable[[jax.Array], jax.Array]] = {
        "raw env stepping (random actions)": raw_env,
        "rollout only (env + policy forward)": rollout_only,
    }

    adam = lo.baselines.adam(
        "breakout", total_steps=config.optimizer_steps, steps_per_update=config.steps_per_update
    )

    @eqx.filter_jit
    def ppo_adam(key):
        return agent.train(env, env_params, adam, key=key).final_return

    adam_name = "PPO + Adam (OPEN-tuned)"
    programs[adam_name] = ppo_adam

    learned_note = None
    try:
        import lorl_optim

        for backend in args.open_backends.split(","):
            # "auto" is the fused CPU kernel when it builds (docs/optim/fused.md).
            open_opt = lorl_optim.load_open("breakout").with_backend(backend)
            if backend == "auto":
                from lorl_optim import _fused

                backend = "auto: fused" if _fused.available() else "auto: xla fallback"

            @eqx.filter_jit
            def ppo_open(key, open_opt=open_opt):
                return agent.train(env, env_params, open_opt, key=key).final_return

            programs[f"PPO + OPEN (load_open('breakout'), {backend})"] = ppo_open
        if args.old_rev is not None:
            from lorl._bench import import_revision

            old_opt = import_revision(args.old_rev).load_open("breakout").with_backend("fused")

            @eqx.filter_jit
            def ppo_open_old(key, open_opt=old_opt):
                return agent.train(env, env_params, open_opt, key=key).final_return

            programs[f"PPO + OPEN (load_open('breakout'), fused, {args.old_rev})"] = ppo_open_old
    except ImportError:
        learned_note = "lorl_optim is not installed: learned-optimizer column left out"

    firsts = {name: _compile(fn) for name, fn in programs.items()}
    times = _rounds(programs, args.repeats)
    rows = [(name, firsts[name], statistics.median(times[name])) for name in programs]
    adam_s = statistics.median(times[adam_name])
    results = []
    print(
        f"Breakout-MinAtar, {steps} env steps per run ({args.updates} PPO updates), "
        f"median of {args.repeats}; {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}"
    )
    print(
        f"{'program':56s} {'compile+1st (s)':>16s} {'run (s)':>9s} {'steps/s':>10s} "
        f"{'x Adam time':>11s} {'per-round x Adam':>17s}"
    )
    for name, first, median in rows:
        sps = steps / median
        ratio = median / adam_s
        per_round = [t / a for t, a in zip(times[name], times[adam_name], strict=True)]
        print(
            f"{name:56s} {first:16.1f} {median:9.2f} {sps:10.0f} {ratio:11.2f} "
            f"{' '.join(f'{r:.2f}' for r in per_round):>17s}"
        )
        results.append(
            {
                "program": name,
                "compile_and_first_run_s": first,
                "run_s": median,
                "run_s_per_round": times[name],
                "env_steps_per_s": sps,
                "time_relative_to_adam": ratio,
                "time_relative_to_adam_per_round": per_round,
                "median_of_per_round_ratios": statistics.median(per_round),
            }
        )
    if learned_note:
        print(learned_note)
    with open(args.out, "w") as f:
        json.dump(
            {
                "env": "Breakout-MinAtar",
                "env_steps_per_run": steps,
                "ppo_updates_per_run": args.updates,
                "repeats": args.repeats,
                "jax": jax.__version__,
                "cpu_count": os.cpu_count(),
                "load_average_at_end": os.getloadavg()[0],
                "timing": "compiled first, then interleaved rounds (one run of each per round)",
                "note": learned_note,
                "results": results,
            },
            f,
            indent=2,
        )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
