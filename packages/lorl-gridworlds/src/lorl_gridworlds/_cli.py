"""`lorl-gridworlds`: the quickstart demo and the throughput benchmark."""

import argparse
import dataclasses
import json
import platform
import sys
from pathlib import Path

import jax


def _demo(args: argparse.Namespace) -> None:
    from ._benchmark import REFERENCE, benchmark_suite, format_table
    from ._registry import make, registered_names
    from ._render import rollout_frames, save_frames

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    key = jax.random.key(args.seed)
    print(f"Rendering a {args.frames}-step random rollout of every gridworld to {out}/ ...")
    for i, name in enumerate(registered_names()):
        env, params = make(name)
        frames = rollout_frames(env, params, args.frames, key=jax.random.fold_in(key, i))
        gif = save_frames(out / f"{name}.gif", frames)
        save_frames(out / f"{name}.png", frames[: min(len(frames), 6)], columns=6)
        print(f"  {name:<18} {frames.shape[1]}x{frames.shape[2]} px  -> {gif.name}")
    if args.no_bench:
        return
    print(
        f"\nThroughput ({args.envs} parallel environments x {args.steps} steps, "
        f"random actions, jit + vmap + lax.scan):"
    )
    rows = benchmark_suite(
        num_envs=args.envs,
        num_steps=args.steps,
        repeats=args.repeats,
        key=jax.random.fold_in(key, 999),
    )
    print(format_table(rows, REFERENCE if rows and rows[0].name == REFERENCE else None))
    _write_json(out / "throughput.json", rows, args)
    print(f"\nWrote {out / 'throughput.json'}")


def _write_json(path: Path, rows: list, args: argparse.Namespace) -> None:
    payload = {
        "command": " ".join(sys.argv),
        "jax": jax.__version__,
        "backend": jax.default_backend(),
        "devices": [str(d) for d in jax.devices()],
        "python": platform.python_version(),
        "machine": platform.machine(),
        "num_envs": args.envs,
        "num_steps": args.steps,
        "repeats": args.repeats,
        "rows": [dataclasses.asdict(r) for r in rows],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2))


def _bench(args: argparse.Namespace) -> None:
    from ._benchmark import REFERENCE, benchmark_suite, format_table

    names = tuple(args.names) if args.names else None
    rows = benchmark_suite(
        names,
        num_envs=args.envs,
        num_steps=args.steps,
        repeats=args.repeats,
        progress=lambda line: print(f"  {line}", flush=True),
        key=jax.random.key(args.seed),
    )
    print(format_table(rows, REFERENCE if rows and rows[0].name == REFERENCE else None))
    _write_json(Path(args.json), rows, args)
    print(f"Wrote {args.json}")


def main(argv: list[str] | None = None) -> None:
    """Entry point of the `lorl-gridworlds` command."""
    parser = argparse.ArgumentParser(prog="lorl-gridworlds", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="render every gridworld and print the throughput table")
    demo.add_argument("--out", default="lorl_gridworlds_demo", help="output folder")
    demo.add_argument("--frames", type=int, default=40, help="steps per rendered rollout")
    demo.add_argument("--envs", type=int, default=1024, help="parallel environments")
    demo.add_argument("--steps", type=int, default=200, help="steps per environment")
    demo.add_argument("--repeats", type=int, default=2, help="timed repeats")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--no-bench", action="store_true", help="only render, skip throughput")
    demo.set_defaults(func=_demo)
    bench = sub.add_parser("bench", help="throughput benchmark (prints a table, writes JSON)")
    bench.add_argument("names", nargs="*", help="gridworlds (default: the six LPG and all)")
    bench.add_argument("--envs", type=int, default=1024)
    bench.add_argument("--steps", type=int, default=1000)
    bench.add_argument("--repeats", type=int, default=3)
    bench.add_argument("--seed", type=int, default=0)
    bench.add_argument("--json", default="bench_out/gridworlds.json")
    bench.set_defaults(func=_bench)
    args = parser.parse_args(argv)
    for value, what in (
        (getattr(args, "envs", 1), "--envs"),
        (getattr(args, "steps", 1), "--steps"),
    ):
        if value < 1:
            parser.error(f"--{what} must be >= 1")
    args.func(args)


if __name__ == "__main__":
    main()
