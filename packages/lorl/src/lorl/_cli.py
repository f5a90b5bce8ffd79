"""The `lorl` command line: list, run, resume, evaluate, report, quickstart.

User errors (unknown experiment or override key, a run folder of another version, a
scale that does not fit the devices, unknown environment or optimizer names) end with a
one-line message and exit code 2 before any compute; a run that fails mid-way keeps its
folder (status `failed`) and can be continued with `lorl resume`.
"""

import os
import pathlib
import sys
from collections.abc import Mapping
from typing import Annotated, Any

import typer

from .runs import LorlError, RunDir, apply_overrides, config_from_dict

app = typer.Typer(
    name="lorl",
    help="Learned optimizers for RL: the Optim4RL and OPEN experiments behind one CLI.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

#: Exit code of user errors (bad names, overrides, run folders, scales).
USER_ERROR = 2


def _fail(message: str, code: int = USER_ERROR) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def _user_errors() -> tuple[type[BaseException], ...]:
    from lorl_agents import NonFiniteUpdateError
    from lorl_meta import CheckpointMismatchError

    return (LorlError, CheckpointMismatchError, NonFiniteUpdateError)


def _execute(experiment: Any, config: Any, run: RunDir) -> RunDir:
    """Run (or continue) `experiment` in `run`, then write results and report."""
    run.set_status("running")
    try:
        results = experiment.run(config, run)
    except KeyboardInterrupt:
        run.set_status("interrupted")
        typer.echo(f"interrupted; continue with: lorl resume {run.path}", err=True)
        raise typer.Exit(130) from None
    except BaseException as e:
        run.set_status("failed", error=f"{type(e).__name__}: {e}")
        if isinstance(e, _user_errors()):
            _fail(f"{e} (run folder kept: {run.path}; `lorl resume` continues it)")
        raise
    run.write_results(results)
    run.write_report(experiment.report(run))
    run.set_status("complete")
    return run


def _start(
    name: str, scale: str, out: pathlib.Path, overrides: list[str], folder: str | None = None
) -> RunDir:
    from .experiments import get_experiment

    experiment = get_experiment(name)
    config = apply_overrides(experiment.config(scale), overrides)
    if experiment.validate is not None:
        experiment.validate(config)
    run = RunDir.create(
        out, experiment=name, scale=scale, config=config, overrides=overrides, name=folder
    )
    typer.echo(f"run folder: {run.path}")
    _execute(experiment, config, run)
    typer.echo(f"done: {run.path / 'report.md'}")
    return run


def _guard(fn: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return fn(*args, **kwargs)
    except LorlError as e:  # checked first: a config error loads no JAX stack
        _fail(str(e))
    except Exception as e:
        if isinstance(e, _user_errors()):
            _fail(str(e))
        raise


def _value_text(value: Any) -> str:
    if isinstance(value, tuple):
        return ",".join(str(v) for v in value) or "(empty)"
    return (
        "none" if value is None else str(value).lower() if isinstance(value, bool) else str(value)
    )


def config_table(name: str) -> str:
    """Every config key of experiment `name` with its default at each scale (what
    `lorl list --keys NAME` prints)."""
    from .experiments import get_experiment
    from .runs import config_keys

    exp = get_experiment(name)
    configs = {scale: exp.config(scale) for scale in exp.scales}

    def get(config: Any, key: str) -> Any:
        for part in key.split("."):
            config = getattr(config, part)
        return config

    keys = config_keys(configs["cpu"])
    rows = [("key", *(f"{s} scale" for s in configs))]
    rows += [(k, *(_value_text(get(c, k)) for c in configs.values())) for k in keys]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [f"{exp.name}: {exp.summary}", f"reproduces: {exp.reproduces}", ""]
    lines += [
        "  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in rows
    ]
    lines += ["", f"override with key=value, e.g. lorl run {exp.name} {keys[0]}=..."]
    return "\n".join(lines)


@app.command("list")
def list_experiments(
    keys: Annotated[
        str | None,
        typer.Option("--keys", help="Show this experiment's config keys and their defaults."),
    ] = None,
) -> None:
    """List every experiment: name, what it reproduces, scales (or, with --keys NAME, one
    experiment's config keys with their defaults at each scale)."""
    from .experiments import experiments

    if keys is not None:
        _guard(lambda: typer.echo(config_table(keys)))
        return
    rows = [(e.name, e.reproduces, ", ".join(e.scales), e.summary) for e in experiments()]
    width = max(len(r[0]) for r in rows)
    for name, reproduces, scales, summary in rows:
        typer.echo(f"{name:<{width}}  [{scales}]  {summary}")
        typer.echo(f"{'':<{width}}  reproduces: {reproduces}")


@app.command()
def run(
    experiment: Annotated[str, typer.Argument(help="Experiment name (see `lorl list`).")],
    overrides: Annotated[
        list[str] | None, typer.Argument(help="Config overrides key=value (dotted keys).")
    ] = None,
    scale: Annotated[
        str, typer.Option(help="cpu (minutes) or paper (the paper's budget).")
    ] = "cpu",
    out: Annotated[
        pathlib.Path, typer.Option(help="Parent folder of the run folder.")
    ] = pathlib.Path("runs"),
    name: Annotated[
        str | None, typer.Option(help="Run folder name (default: timestamped).")
    ] = None,
) -> None:
    """Run an experiment in a new self-describing run folder (`lorl list --keys NAME`
    shows its config keys and their defaults at each scale)."""
    _guard(_start, experiment, scale, out, list(overrides or []), name)


@app.command()
def resume(
    run_dir: Annotated[pathlib.Path, typer.Argument(help="A run folder written by `lorl run`.")],
) -> None:
    """Continue a killed or failed run: finished stages are not repeated, meta-training
    continues from its last checkpoint."""

    def go() -> None:
        from .experiments import get_experiment

        run = RunDir.open(run_dir)
        experiment = get_experiment(run.experiment)
        config = config_from_dict(experiment.config_class, run.config_dict)
        if experiment.validate is not None:
            experiment.validate(config)
        typer.echo(f"resuming {run.experiment} ({run.status}) in {run.path}")
        _execute(experiment, config, run)
        typer.echo(f"done: {run.path / 'report.md'}")

    _guard(go)


@app.command()
def report(
    run_dir: Annotated[pathlib.Path, typer.Argument(help="A finished run folder.")],
) -> None:
    """Rewrite a run's report.md and plots from its results.json."""

    def go() -> None:
        from .experiments import get_experiment

        run = RunDir.open(run_dir)
        path = run.write_report(get_experiment(run.experiment).report(run))
        typer.echo(str(path))

    _guard(go)


@app.command()
def evaluate(
    optimizer: Annotated[
        str,
        typer.Argument(
            help="open:<name> (published OPEN), adam/rmsprop/lion (tuned), adam:<lr>, "
            "or a saved learned optimizer file / run folder."
        ),
    ],
    env: Annotated[list[str], typer.Option("--env", help="Environment (repeatable).")],
    seeds: Annotated[int, typer.Option(help="Seeds per optimizer and environment.")] = 16,
    timesteps: Annotated[int, typer.Option(help="Steps per run (0: the paper's).")] = 0,
    n_envs: Annotated[int, typer.Option(help="Environments per run (0: the paper's).")] = 0,
    baseline: Annotated[
        list[str] | None, typer.Option("--baseline", help="Baselines (repeatable; default adam).")
    ] = None,
    out: Annotated[
        pathlib.Path, typer.Option(help="Parent folder of the run folder.")
    ] = pathlib.Path("runs"),
    store: Annotated[
        pathlib.Path | None,
        typer.Option(help="Result-store folder: runs it holds are reused, new ones added."),
    ] = None,
) -> None:
    """Evaluate an optimizer against baselines on environments, in a run folder."""
    items = [f"optimizer={optimizer}", f"envs={','.join(env)}", f"seeds={seeds}"]
    items += [f"timesteps={timesteps}", f"n_envs={n_envs}"]
    items += [f"baselines={','.join(baseline or ['adam'])}"]
    if store is not None:
        items += [f"store={store.resolve()}"]
    _guard(_start, "evaluate", "cpu", out, items)


@app.command()
def quickstart(
    overrides: Annotated[
        list[str] | None, typer.Argument(help="Config overrides key=value.")
    ] = None,
    out: Annotated[
        pathlib.Path, typer.Option(help="Parent folder of the run folder.")
    ] = pathlib.Path("runs"),
) -> None:
    """Meta-train Optim4RL, evaluate it against Adam and RMSProp, evaluate a published
    OPEN optimizer against Adam on MinAtar, and write the report (about 10 minutes on 2
    CPU cores)."""
    _guard(_start, "quickstart", "cpu", out, list(overrides or []))


def _join_job() -> None:
    """Join a multi-process JAX job if the environment describes one (JAX_COORDINATOR_ADDRESS,
    JAX_NUM_PROCESSES, JAX_PROCESS_ID, or a multi-task SLURM / Open MPI job); a no-op
    otherwise. Runs before any lorl namespace is imported: importing them starts JAX's
    backend, after which a process can no longer join (docs/lorl/scaling.md)."""
    from ._distributed import initialize_distributed

    try:
        initialize_distributed()
    except LorlError as e:
        typer.echo(f"error: {e}", err=True)
        sys.exit(USER_ERROR)


#: Environment variable naming the persistent compilation cache folder of `lorl`
#: commands (`off`, `0` or an empty value: no cache).
CACHE_ENV = "LORL_COMPILATION_CACHE"


def compilation_cache_dir(environ: Mapping[str, str] | None = None) -> str | None:
    """The folder of JAX's persistent compilation cache for `lorl` commands.

    `LORL_COMPILATION_CACHE` if set (`off`, `0`, `false` or empty: none); else JAX's own
    `JAX_COMPILATION_CACHE_DIR` if set; else `$XDG_CACHE_HOME/lorl/jax` (default
    `~/.cache/lorl/jax`). Compiled programs stored there are reused by later processes
    (a repeated run, `lorl resume`), keyed by the program, the JAX version, the devices and
    the compiler flags; writes are atomic, so concurrent runs may share the folder.
    """
    env = os.environ if environ is None else environ
    value = env.get(CACHE_ENV)
    if value is not None:
        return None if value.strip().lower() in ("", "0", "off", "false", "no") else value
    if env.get("JAX_COMPILATION_CACHE_DIR"):
        return env["JAX_COMPILATION_CACHE_DIR"]
    base = env.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "lorl", "jax")


def _enable_compilation_cache() -> None:
    """Point JAX's persistent compilation cache at `compilation_cache_dir()` through its
    environment variables, read when JAX is first imported (so this imports nothing)."""
    folder = compilation_cache_dir()
    if folder is None:
        return
    os.environ["JAX_COMPILATION_CACHE_DIR"] = folder
    # JAX's defaults skip programs that compiled in under a second; lorl's small programs
    # (tiny runs, evaluation helpers) are worth keeping too.
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.5")


def main() -> None:
    """Entry point of the `lorl` script: enables the persistent compilation cache
    (`compilation_cache_dir`), joins a multi-process job described by the environment
    (see `_join_job`), then runs the command."""
    try:
        _enable_compilation_cache()
        _join_job()
        app()
    except KeyboardInterrupt:
        sys.exit(130)
