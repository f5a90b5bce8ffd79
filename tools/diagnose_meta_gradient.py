"""Why a meta-gradient-trained Optim4RL ends where it does (issue 19, item 6): measurements
of the meta-gradient at a checkpoint of a `lorl run` meta-training stage, for the
meta-trained meta-parameters and for the untrained initialisation the stage started from,
on the same units (the checkpoint's: every phase of the pipeline schedule) and the same
randomness. Not a test: prints a table and writes JSON.

For each of the two optimizers:

1. **Signal-to-noise ratio over units**: each of the units' own meta-gradients
   (`MetaGradientTrainer.unit_meta_gradients`), summarised by `lorl.analysis.gradient_snr`
   overall and per part (`gru1`, `mlp1`, `gru2`, `mlp2`).
2. **Finite differences**: central differences of the meta-objective along the mean
   meta-gradient and along a random direction (`lorl.analysis.directional_derivatives`)
   beside the autodiff slopes.
3. **The step size the meta-objective prefers**: the meta-loss at the agent learning rate
   scaled by each of `--lr-scales` (common random numbers): a meta-objective that prefers
   smaller steps than the long run needs is the short-horizon bias.
4. **Saturation of the GRUs' gates** on gradient streams of the probe's scale
   (`lorl.analysis.gru_saturation`), and the step-size probe (`lorl.analysis.step_size_probe`).

    python tools/diagnose_meta_gradient.py --run /work/runs/optim4rl-paper-sds \\
        --stage meta-small_dense_short-pipeline --step 733 \\
        --out docs/data/meta/optim4rl-paper-sds/diagnosis.json
"""

import argparse
import json
import pathlib
import sys
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from lorl.analysis import (
    PROBE_SCALE,
    directional_derivatives,
    gradient_snr,
    gru_saturation,
    step_size_probe,
)
from lorl.experiments.optim4rl._settings import MetaConfig, meta_trainer

PARTS = ("gru1", "mlp1", "gru2", "mlp2")


def _restore(run: pathlib.Path, stage: str, step: int):
    config = json.loads((run / "run.json").read_text())["config"]
    fields = {k: v for k, v in config["meta"].items() if k in MetaConfig.__dataclass_fields__}
    meta = MetaConfig(**{**fields, "pipeline": not stage.endswith("-no-pipeline")})
    env = stage.removeprefix("meta-").removesuffix("-no-pipeline").removesuffix("-pipeline")
    trainer, optimizer, seed, _ = meta_trainer(kind="optim4rl", envs=[env], meta=meta)
    state = trainer.restore(
        optimizer, seed=seed, checkpoint_dir=run / "checkpoints" / stage, step=step
    )
    return trainer._core(), optimizer, state, env


def _measure(trainer, state, static, nondiff, eps, scales, lr, n_random, random_eps):
    t0 = time.perf_counter()
    ((losses, grads),) = trainer.unit_meta_gradients(state, static)
    snr = gradient_snr(grads, PARTS)
    mean = jax.tree.map(lambda g: jnp.mean(g, axis=0), grads)
    diff = eqx.filter(state.meta_params, eqx.is_inexact_array)

    def f(d):
        return trainer.meta_objective(state, static, eqx.combine(d, nondiff))

    flat_mean = np.concatenate([np.ravel(x) for x in jax.tree.leaves(mean)])
    leaves, treedef = jax.tree.flatten(mean)
    along_mean = directional_derivatives(f, diff, mean, eps)
    print(f"  along the mean ({time.perf_counter() - t0:.0f} s)", flush=True)
    # Random unit directions r_k: the true gradient's projections (finite differences)
    # estimate its norm, |grad|^2 ~ d * mean_k (grad . r_k)^2, and so the cosine between
    # the true gradient and the meta-gradient (first order: agent gradients enter the
    # optimizer as stop-gradient inputs, and Optim4RL's sign is straight-through).
    random_fd, random_ad = [], []
    for k in range(n_random):
        keys = jax.random.split(jax.random.key(100 + k), len(leaves))
        r = [jax.random.normal(kk, x.shape, x.dtype) for kk, x in zip(keys, leaves, strict=True)]
        flat_r = np.concatenate([np.ravel(x) for x in r])
        random_ad.append(float(flat_mean @ flat_r / np.linalg.norm(flat_r)))
        random_fd.append(
            directional_derivatives(f, diff, jax.tree.unflatten(treedef, r), [random_eps])[0]
        )
    d = flat_mean.size
    true_norm = float(np.sqrt(d * np.mean(np.square(random_fd))))
    fd = {
        "mean_gradient": {
            "autodiff": float(np.linalg.norm(flat_mean)),
            "finite_differences": dict(zip(map(str, eps), along_mean, strict=True)),
        },
        "random_directions": {
            "eps": random_eps,
            "autodiff": random_ad,
            "finite_differences": random_fd,
            "correlation": float(np.corrcoef(random_ad, random_fd)[0, 1]),
        },
        "true_gradient_norm_estimate": true_norm,
        "cosine_estimate": float(along_mean[-2 if len(along_mean) > 1 else 0] / true_norm)
        if true_norm > 0
        else float("nan"),
    }
    print(f"  random directions ({time.perf_counter() - t0:.0f} s)", flush=True)
    optimizer = eqx.combine(state.meta_params, static)
    scan = {}
    for s in scales:
        arrays, scaled = eqx.partition(optimizer.with_learning_rate(lr * s), eqx.is_array)
        at = eqx.tree_at(lambda x: x.meta_params, state, arrays)
        scan[str(s)] = float(trainer.meta_objective(at, scaled))
        print(f"  lr x {s}: {scan[str(s)]:.5f} ({time.perf_counter() - t0:.0f} s)", flush=True)
    return {
        "meta_loss": float(np.mean(np.asarray(losses))),
        "meta_loss_units_se": float(np.std(np.asarray(losses), ddof=1) / np.sqrt(losses.size)),
        "snr": snr,
        "directional_derivative": fd,
        "meta_loss_at_lr_scale": scan,
        "seconds": time.perf_counter() - t0,
    }


def _step_size_preference(trainer, state, static, iterations):
    """Each unit's meta-gradient along Optim4RL's log step size (the bias of `o2`, since
    `delta ~ exp(o2)`) over `iterations` meta-iterations that advance the units with the
    meta-parameters held fixed: its mean and standard error over all unit-iterations. A
    positive mean means the meta-objective asks for smaller steps."""
    params = state.meta_params
    values = []
    for _ in range(iterations):
        ((_, grads),) = trainer.unit_meta_gradients(state, static)
        values.append(np.asarray(grads.mlp1.layers[-1].bias[:, 1]))
        state, _ = trainer.step(state, static)
        state = eqx.tree_at(lambda x: x.meta_params, state, params)
    v = np.concatenate(values)
    per_iteration = [float(x.mean()) for x in values]
    return {
        "iterations": iterations,
        "mean": float(v.mean()),
        "standard_error": float(v.std(ddof=1) / np.sqrt(v.size)),
        "per_iteration_mean": per_iteration,
        "unit_sd": float(v.std(ddof=1)),
    }


def _gates(optimizer, steps=200, n=2000):
    out = {}
    for snr in (0.0, 1.0):
        g = PROBE_SCALE * (snr + jax.random.normal(jax.random.key(0), (steps, 1, n)))
        g = jnp.clip(g, -optimizer.clip, optimizer.clip)
        log = jnp.log(jnp.abs(g) + optimizer.eps1)
        out[f"snr {snr:g}"] = {
            "gru1": gru_saturation(optimizer.gru1, jnp.concatenate([jnp.sign(g), log], axis=1)),
            "gru2": gru_saturation(optimizer.gru2, 2.0 * log),
        }
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--run", type=pathlib.Path, required=True)
    p.add_argument("--stage", default="meta-small_dense_short-pipeline")
    p.add_argument("--step", type=int, required=True)
    p.add_argument("--eps", type=float, nargs="+", default=[1e-3, 1e-2, 1e-1])
    p.add_argument(
        "--iterations", type=int, default=8, help="meta-iterations for the step-size preference"
    )
    p.add_argument("--random", type=int, default=12, help="random directions")
    p.add_argument("--random-eps", type=float, default=1e-2)
    p.add_argument("--lr-scales", type=float, nargs="+", default=[0.5, 0.7, 1.0, 1.4])
    p.add_argument("--out", type=pathlib.Path, required=True)
    args = p.parse_args()

    trainer, init, state, env = _restore(args.run, args.stage, args.step)
    arrays_init, static = eqx.partition(init, eqx.is_array)
    nondiff = eqx.partition(state.meta_params, eqx.is_inexact_array)[1]

    lr = float(init.learning_rate)
    result = {
        "command": "python " + " ".join(sys.argv),
        "run": str(args.run),
        "stage": args.stage,
        "step": args.step,
        "env": env,
        "n_units": trainer.tasks[0].n_units,
        "agent_lr": lr,
        "optimizers": {},
    }
    for name, params in (("meta-trained", state.meta_params), ("initialisation", arrays_init)):
        s = eqx.tree_at(lambda x: x.meta_params, state, params)
        opt = eqx.combine(params, static)
        r = _measure(
            trainer, s, static, nondiff, args.eps, args.lr_scales, lr, args.random, args.random_eps
        )
        r["step_size_preference"] = _step_size_preference(trainer, s, static, args.iterations)
        r["gates"] = _gates(opt)
        r["step_size_probe"] = step_size_probe(opt, lr)
        result["optimizers"][name] = r
        print(f"== {name} ({r['seconds']:.0f} s)")
        print(f"  meta-loss {r['meta_loss']:.5f} +- {r['meta_loss_units_se']:.5f}")
        for part, st in r["snr"].items():
            print(
                f"  {part:5s} |mean| {st['mean_norm']:.2e} se {st['standard_error']:.2e} "
                f"snr {st['snr']:.2f} split-half cos {st['split_half_cosine']:+.3f}"
            )
        fd = r["directional_derivative"]
        m = fd["mean_gradient"]
        fds = ", ".join(f"{e}: {x:.2e}" for e, x in m["finite_differences"].items())
        print(f"  along the mean meta-gradient: autodiff {m['autodiff']:.2e} | FD {fds}")
        rd = fd["random_directions"]
        print(
            f"  random directions: corr(autodiff, FD) {rd['correlation']:+.2f}; "
            f"|true grad| ~ {fd['true_gradient_norm_estimate']:.2e}, "
            f"cosine ~ {fd['cosine_estimate']:+.2f}"
        )
        print(
            "  meta-loss at lr x", {k: round(v, 5) for k, v in r["meta_loss_at_lr_scale"].items()}
        )
        sp = r["step_size_preference"]
        print(
            f"  d meta-loss / d log step (o2 bias), {sp['iterations']} iterations x units: "
            f"{sp['mean']:+.2e} +- {sp['standard_error']:.2e} (unit sd {sp['unit_sd']:.2e})"
        )
        print("  gates", json.dumps(r["gates"]))
        print(
            "  probe",
            {
                k: (round(v["progress"], 3), round(v["size"], 3))
                for k, v in r["step_size_probe"].items()
            },
        )

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
