"""Interleaved A/B benchmark of OPEN's LayerNorm: the feature-axis means as `jnp.mean` over
axis 0 (the previous implementation, "old") against products with a row of 1/k (the
current `lorl_optim._nn.LayerNorm`, "new"), one jitted OPEN update on the agents of
`bench_optim.py`. Rounds alternate old/new in one process; prints a table, writes JSON.

    python tools/bench_optim_layernorm.py --rounds 5 --out bench_out/layernorm.json
"""

import argparse
import json
import pathlib
import statistics

import equinox as eqx
import jax
import jax.numpy as jnp

import lorl_optim as lo
from lorl._bench import synthetic_agent_params, synthetic_context, time_step
from lorl_optim import _nn

new = _nn.LayerNorm.__call__


def old(self, x):
    mean = jnp.mean(x, axis=0, keepdims=True)
    c = x - mean
    var = jnp.mean(c * c, axis=0, keepdims=True)
    return c * jax.lax.rsqrt(var + self.eps) * self.scale[:, None] + self.bias[:, None]


parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--rounds", type=int, default=5)
parser.add_argument("--out", type=pathlib.Path, default=None)
cli = parser.parse_args()
rows = []
for width, label in ((64, "MinAtar 60k"), (544, "1M")):
    params = synthetic_agent_params(width, jax.random.key(1))
    grads = jax.tree.map(lambda x: 0.01 * jnp.ones_like(x), params)
    ctx = synthetic_context(params)
    for name in ("breakout", "multi"):
        opt = lo.load_open(name)
        arrays, static = eqx.partition(opt, eqx.is_array)
        steps = {}
        for variant, fn in (("old", old), ("new", new)):
            _nn.LayerNorm.__call__ = fn
            steps[variant] = jax.jit(
                lambda a, g, p, c, k, s, static=static: eqx.combine(a, static).update(
                    g, s, p, **c, key=k
                )
            )
            steps[variant](
                arrays, grads, params, ctx, jax.random.key(2), opt.init(params)
            )  # compile under this variant
        args = (arrays, grads, params, ctx, jax.random.key(2))
        ratios, times = [], {"old": [], "new": []}
        for _ in range(cli.rounds):
            for v in ("old", "new"):
                times[v].append(time_step(steps[v], args, opt.init(params), 5))
            ratios.append(times["new"][-1] / times["old"][-1])
        rows.append(
            {
                "agent": label,
                "optimizer": f"OPEN {name}",
                "old_ms": [1e3 * t for t in times["old"]],
                "new_ms": [1e3 * t for t in times["new"]],
                "median_ratio_new_over_old": statistics.median(ratios),
            }
        )
        med = {v: 1e3 * statistics.median(times[v]) for v in times}
        print(
            f"{label:12s} OPEN {name:8s} old {med['old']:8.2f} ms  new {med['new']:8.2f} ms  "
            f"new/old {statistics.median(ratios):.2f} (rounds {[round(x, 2) for x in ratios]})",
            flush=True,
        )
if cli.out is not None:
    cli.out.parent.mkdir(parents=True, exist_ok=True)
    cli.out.write_text(json.dumps(rows, indent=1))
