"""Helpers of the benchmark scripts in `tools/`: synthetic agents of OPEN's PPO shape, the
optimizer context they need, interleavable timers and a way to import an older revision
of `lorl_optim` beside the current one (A/B timings in one process).

Not part of the public API: the tools are its only users. It lives in the package so that
the tools stay thin command lines without `sys.path` edits.
"""

import importlib.util
import itertools
import pathlib
import re
import statistics
import subprocess
import sys
import tempfile
import time
import types
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

#: The benchmark agent's input (a MinAtar observation, 10 x 10 x 4, flattened) and its
#: action head (6 logits; the benchmarks' choice, the size of MinAtar's full action set).
OBSERVATION_SIZE = 400
N_ACTIONS = 6

#: Where `lorl_optim`'s sources live in the repository.
LORL_OPTIM_DIR = "packages/lorl-optim/src/lorl_optim"


def synthetic_agent_params(width: int, key: jax.Array) -> dict[str, Any]:
    """Parameters of OPEN's PPO actor-critic for MinAtar (two hidden layers of `width`,
    OPEN Table 3), as flax-style `{"kernel": (in, out), "bias": (out,)}` layers with
    scaled normal kernels.

    **Arguments:**

    - `width`: hidden width (64 in the paper; 544 gives about 1M parameters).
    - `key`: PRNG key of the kernels.

    **Returns:**

    `{"actor": {"layer_0": ..., "layer_1": ..., "layer_2": ...}, "critic": {...}}`.
    """
    if width < 1:
        raise ValueError(f"width must be >= 1, got {width}")
    sizes = {
        "actor": (OBSERVATION_SIZE, width, width, N_ACTIONS),
        "critic": (OBSERVATION_SIZE, width, width, 1),
    }
    params: dict[str, Any] = {}
    for net, dims in sizes.items():
        layers = {}
        for i, (a, b) in enumerate(itertools.pairwise(dims)):
            key, sub = jax.random.split(key)
            layers[f"layer_{i}"] = {
                "kernel": jax.random.normal(sub, (a, b)) / jnp.sqrt(float(a)),
                "bias": jnp.zeros((b,)),
            }
        params[net] = layers
    return params


def synthetic_context(params: dict[str, Any]) -> dict[str, Any]:
    """The keyword arguments a learned optimizer's `update` takes besides gradients, for
    `params` of `synthetic_agent_params`: unit dormancy, training proportion 0.3, batch
    proportion 0.5, layer proportions `i / 2` and the actor mask.

    **Arguments:**

    - `params`: a tree `{network: {layer: {leaf: array}}}`.

    **Returns:**

    `{"dormancy", "training_proportion", "batch_proportion", "layer_proportions",
    "actor_mask"}`.
    """

    def per_net(tree: dict[str, Any]) -> dict[str, Any]:
        n = len(tree)
        return {
            name: jax.tree.map(lambda _, i=i: jnp.asarray(i / max(n - 1, 1)), layer)
            for i, (name, layer) in enumerate(sorted(tree.items()))
        }

    return {
        "dormancy": jax.tree.map(lambda x: jnp.ones(x.shape[-1:]), params),
        "training_proportion": jnp.asarray(0.3),
        "batch_proportion": jnp.asarray(0.5),
        "layer_proportions": {k: per_net(v) for k, v in params.items()},
        "actor_mask": {
            k: jax.tree.map(lambda _, a=(k == "actor"): jnp.asarray(a), v)
            for k, v in params.items()
        },
    }


def time_step(
    step: Callable[..., Any],
    args: tuple[Any, ...],
    state: Any,
    reps: int,
    clock: Callable[[], float] = time.perf_counter,
) -> float:
    """Median `clock` time of `state = step(*args, state)[1]`, threading the (possibly
    donated) state as a training loop does; one untimed call first.

    **Arguments:**

    - `step`: a jitted `(*args, state) -> (output, state)`.
    - `args`, `state`: its arguments.
    - `reps`: timed calls (at least 1).
    - `clock`: `time.perf_counter` (wall) or `time.process_time` (CPU of this process).

    **Returns:**

    The median time of one call, in the clock's seconds.
    """
    if reps < 1:
        raise ValueError(f"reps must be >= 1, got {reps}")
    _, state = step(*args, state)
    jax.block_until_ready(state)
    times = []
    for _ in range(reps):
        t0 = clock()
        _, state = step(*args, state)
        jax.block_until_ready(state)
        times.append(clock() - t0)
    return statistics.median(times)


def time_fn(
    fn: Callable[..., Any],
    args: tuple[Any, ...],
    reps: int,
    clock: Callable[[], float] = time.perf_counter,
) -> float:
    """Median `clock` time of `fn(*args)` (blocked until ready); one untimed call first.

    **Arguments:**

    - `fn`: a (jitted) function; `args`: its arguments; `reps`: timed calls (>= 1);
      `clock`: as in `time_step`.

    **Returns:**

    The median time of one call.
    """
    if reps < 1:
        raise ValueError(f"reps must be >= 1, got {reps}")
    jax.block_until_ready(fn(*args))
    times = []
    for _ in range(reps):
        t0 = clock()
        jax.block_until_ready(fn(*args))
        times.append(clock() - t0)
    return statistics.median(times)


def _repo_root() -> pathlib.Path:
    out = subprocess.run(
        ["git", "rev-parse", "--show-toplevel"],
        cwd=pathlib.Path(__file__).parent,
        check=True,
        capture_output=True,
        text=True,
    )
    return pathlib.Path(out.stdout.strip())


def import_revision(
    rev: str, *, name: str = "lorl_optim_old", root: pathlib.Path | None = None
) -> types.ModuleType:
    """Import `lorl_optim` as it was at git revision `rev`, under the module name `name`,
    beside the installed one.

    The revision's files are copied into a temporary folder. Its fused-kernel FFI targets
    are renamed (`lorl_*` to `lorl_old_*`), since XLA refuses a second, different handler
    for a target name already registered.

    **Arguments:**

    - `rev`: a git revision of the repository holding this package.
    - `name`: the module name of the copy.
    - `root`: the repository (default: the one this file is in).

    **Returns:**

    The imported package.

    **Raises:**

    `subprocess.CalledProcessError` if `rev` is unknown or has no `lorl_optim`.
    """
    root = _repo_root() if root is None else root
    files = subprocess.run(
        ["git", "ls-tree", "-r", "--name-only", f"{rev}:{LORL_OPTIM_DIR}"],
        cwd=root,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    dest = pathlib.Path(tempfile.mkdtemp(prefix=f"{name}_")) / name
    dest.mkdir()
    for file in files:
        blob = subprocess.run(
            ["git", "show", f"{rev}:{LORL_OPTIM_DIR}/{file}"],
            cwd=root,
            check=True,
            capture_output=True,
        ).stdout
        if file.endswith(".py"):
            blob = re.sub(rb'"lorl_(open_step|optim4rl_step|math|normal)"', rb'"lorl_old_\1"', blob)
        (dest / file).parent.mkdir(parents=True, exist_ok=True)
        (dest / file).write_bytes(blob)
    spec = importlib.util.spec_from_file_location(
        name, dest / "__init__.py", submodule_search_locations=[str(dest)]
    )
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import the copy of lorl_optim at {dest}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
