"""`sharded_vmap`: `jax.vmap` whose batch axis is split over the devices of a mesh."""

import functools
from collections.abc import Callable, Sequence
from typing import Any

import equinox as eqx
import jax
from jax.sharding import Mesh

from ..runs import ConfigError
from ._mesh import (
    _leading_size,
    _mesh,
    check_divisible,
    leading_sharding,
    place,
    replicated_sharding,
)


def _normalise_in_axes(in_axes: int | Sequence[int | None] | None, n_args: int) -> tuple:
    if in_axes is None or isinstance(in_axes, int):
        axes = (in_axes,) * n_args
    else:
        axes = tuple(in_axes)
        if len(axes) != n_args:
            raise ConfigError(
                f"in_axes has {len(axes)} entries but the function got {n_args} arguments"
            )
    for axis in axes:
        if axis not in (0, None):
            raise ConfigError(
                f"in_axes entries must be 0 (batched over the leading axis, sharded) or None "
                f"(shared, replicated); got {axis!r}"
            )
    if all(axis is None for axis in axes):
        raise ConfigError("in_axes marks no argument as batched (0)")
    return axes


def sharded_vmap(
    fn: Callable[..., Any],
    *,
    mesh: Mesh | None = None,
    in_axes: int | Sequence[int | None] | None = 0,
    what: str = "batch",
    gather: bool | None = None,
) -> Callable[..., Any]:
    """`jax.vmap(fn)` with the batch axis split over every device of a mesh, jitted.

    The returned function takes the same positional arguments as `fn`, each a pytree
    whose array leaves have a leading batch axis of size `n` (or, with `in_axes=None`
    for that argument, a pytree shared by every batch element). Batched inputs are
    placed with `NamedSharding(mesh, PartitionSpec(axis))`, shared inputs are
    replicated, and array outputs are constrained to `NamedSharding(mesh,
    PartitionSpec(axis))`, so each device computes `n / n_devices` batch elements with
    no communication. When the mesh spans several processes (a multi-host run), the
    outputs are then gathered (replicated on every device, one all-gather inside the
    jitted program), so every process can read the whole result, e.g. with
    `numpy.asarray`; a sharded output of a multi-process mesh could not be fetched by any
    one process. Results equal `jax.vmap(fn)(*args)` on one device (up to
    floating-point reassociation by XLA, which we have not observed for per-element
    computations: see `tests/multidevice`).

    Non-array leaves (e.g. activation functions or static fields of Equinox modules) are
    treated as static, as in `equinox.filter_jit`; Python scalars are static too, so pass
    numbers that change between calls as arrays to avoid recompiling.

    **Arguments:**

    - `fn`: the per-element function (positional arguments only).
    - `mesh`: the mesh; default [`lorl.sharding.local_mesh`][] (all devices, including
      those of other processes in a multi-host run).
    - `in_axes`: `0` (every argument batched), or one entry per positional argument,
      each `0` (batched) or `None` (shared).
    - `what`: what the batch axis counts (e.g. `"seeds"`), for error messages.
    - `gather`: replicate the outputs on every device after computing them sharded;
      default (`None`): only when the mesh spans several processes.

    **Returns:**

    A function with the signature of `fn` returning `fn`'s outputs stacked along a new
    leading axis of size `n` (sharded over the mesh, or replicated if gathered).

    **Raises:**

    (when called) `lorl.runs.ConfigError` before any compute if `n` is not
    divisible by the number of devices or the batched leaves disagree on `n`.
    """
    mesh = _mesh(mesh)
    batch = leading_sharding(mesh)
    shared = replicated_sharding(mesh)
    if gather is None:
        gather = bool(mesh.is_multi_process)

    def constrain(tree: Any, sharding: jax.sharding.Sharding) -> Any:
        return jax.tree_util.tree_map(
            lambda x: jax.lax.with_sharding_constraint(x, sharding) if eqx.is_array(x) else x,
            tree,
        )

    @functools.cache
    def compiled(axes: tuple) -> Callable[..., Any]:
        vmapped = eqx.filter_vmap(fn, in_axes=axes)

        @eqx.filter_jit
        def run(*args: Any) -> Any:
            args = tuple(
                constrain(arg, batch if axis == 0 else shared)
                for arg, axis in zip(args, axes, strict=True)
            )
            out = constrain(vmapped(*args), batch)
            return constrain(out, shared) if gather else out

        return run

    @functools.wraps(fn)
    def wrapped(*args: Any) -> Any:
        axes = _normalise_in_axes(in_axes, len(args))
        batched = tuple(arg for arg, axis in zip(args, axes, strict=True) if axis == 0)
        n = _leading_size(batched, what)
        if n is None:
            raise ConfigError(f"{what}: the batched arguments hold no arrays to vmap over")
        check_divisible(n, what, mesh)
        placed = tuple(
            jax.tree_util.tree_map(
                lambda x, s=(batch if axis == 0 else shared): place(x, s) if eqx.is_array(x) else x,
                arg,
            )
            for arg, axis in zip(args, axes, strict=True)
        )
        return compiled(axes)(*placed)

    return wrapped
