"""Wall time of tiny `lorl run`s with a cold and a warm persistent compilation cache.

Each round runs the same command twice into one fresh cache folder (cold: the cache is
empty; warm: the first run filled it), interleaved over rounds, and checks that both runs
give the same final returns. Prints a table and writes JSON:

    python tools/bench_compile_cache.py --rounds 2 --out docs/data/lorl/bench_compile_cache.json

Pause other jobs while it runs (kill -STOP / -CONT): it measures wall time.
"""

import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time

COMMANDS = {
    "open/published tiny": [
        "open/published", "envs=breakout", "multi=false", "evaluation.baselines=adam",
        "evaluation.n_seeds=2", "agent.n_envs=8", "agent.n_steps=16",
        "agent.total_timesteps=256", "agent.n_minibatches=2", "agent.n_epochs=1",
    ],
    "optim4rl/from-scratch tiny": [
        "optim4rl/from-scratch-small_dense_short", "meta.steps=2", "meta.units=2",
        "meta.reset_interval=2", "meta.checkpoint_every=1", "eval.seeds=2", "eval.n_envs=2",
        "eval.updates=3", "eval.baselines=adam",
    ],
}  # fmt: skip


def _run(args: list[str], out: pathlib.Path, name: str, cache: pathlib.Path) -> float:
    env = {**os.environ, "LORL_COMPILATION_CACHE": str(cache)}
    code = "import sys; from lorl._cli import main; sys.argv[0] = 'lorl'; main()"
    start = time.perf_counter()
    cmd = [sys.executable, "-c", code, "run", *args, "--out", str(out), "--name", name]
    subprocess.run(cmd, env=env, check=True, capture_output=True)
    return time.perf_counter() - start


def _finals(path: pathlib.Path) -> object:
    """Every final return in a run's results (wall times differ between runs)."""

    def walk(x: object) -> object:
        if isinstance(x, dict):
            return {k: walk(v) for k, v in x.items() if k in ("final_returns",) or
                    isinstance(v, dict)}  # fmt: skip
        return x

    return json.dumps(walk(json.loads((path / "results.json").read_text())), sort_keys=True)


def main() -> None:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--out", type=pathlib.Path, default=None)
    args = p.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = pathlib.Path(tmp)
        for r in range(args.rounds):
            for label, cmd in COMMANDS.items():
                cache = root / f"cache-{r}-{len(rows)}"
                cold = _run(cmd, root, f"cold-{r}-{len(rows)}", cache)
                warm = _run(cmd, root, f"warm-{r}-{len(rows)}", cache)
                same = _finals(root / f"cold-{r}-{len(rows)}") == _finals(
                    root / f"warm-{r}-{len(rows)}"
                )
                rows.append({"command": label, "round": r, "cold_s": cold, "warm_s": warm,
                             "cold_over_warm": cold / warm, "same_results": same})  # fmt: skip
    print(f"{'command':<28} {'round':>5} {'cold s':>8} {'warm s':>8} {'ratio':>6} same")
    for row in rows:
        print(
            f"{row['command']:<28} {row['round']:>5} {row['cold_s']:>8.1f} "
            f"{row['warm_s']:>8.1f} {row['cold_over_warm']:>6.2f} {row['same_results']}"
        )
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"rows": rows, "command": " ".join(sys.argv)}, indent=1))


if __name__ == "__main__":
    main()
