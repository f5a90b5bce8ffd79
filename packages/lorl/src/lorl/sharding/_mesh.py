"""Device meshes and placement of arrays whose leading axis indexes independent units
(seeds, population members, training units)."""

from collections.abc import Sequence
from typing import Any

import equinox as eqx
import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from ..runs import ConfigError


def local_mesh(axis_name: str = "batch", devices: Sequence[Any] | None = None) -> Mesh:
    """A 1-D mesh over all devices: `jax.devices()` by default.

    In a multi-host run (after [`lorl.sharding.initialize_distributed`][]) `jax.devices()`
    lists every device of every process, so the mesh spans the whole job; on one machine
    it is every local GPU (or every CPU device, see `--xla_force_host_platform_device_count`).

    **Arguments:**

    - `axis_name`: the name of the mesh axis (the axis the leading dimension is sharded over).
    - `devices`: the devices to use, in order; default `jax.devices()`.

    **Returns:**

    A `jax.sharding.Mesh` of shape `(len(devices),)` with axis `axis_name`.
    """
    if not isinstance(axis_name, str) or not axis_name:
        raise ConfigError(f"axis_name must be a non-empty string, got {axis_name!r}")
    devices = list(jax.devices() if devices is None else devices)
    if not devices:
        raise ConfigError("a mesh needs at least one device, got an empty list")
    if len(set(devices)) != len(devices):
        raise ConfigError(f"devices are listed twice: {devices}")
    return Mesh(np.array(devices, dtype=object), (axis_name,))


def _mesh(mesh: Mesh | None) -> Mesh:
    if mesh is None:
        return local_mesh()
    if not isinstance(mesh, Mesh):
        raise ConfigError(f"mesh must be a jax.sharding.Mesh, got {type(mesh).__name__}")
    return mesh


def _axis(mesh: Mesh) -> str | tuple[str, ...]:
    """The mesh axes the leading dimension is split over: all of them (a 1-D mesh in
    the usual case, where this is its one axis name)."""
    names = tuple(mesh.axis_names)
    return names[0] if len(names) == 1 else names


def leading_sharding(mesh: Mesh | None = None) -> NamedSharding:
    """`NamedSharding(mesh, PartitionSpec(axis))`: the leading axis split over every
    device of `mesh` (default [`lorl.sharding.local_mesh`][]), other axes whole.

    **Arguments:**

    - `mesh`: the mesh; default `local_mesh()`.

    **Returns:**

    The `jax.sharding.NamedSharding`.
    """
    mesh = _mesh(mesh)
    return NamedSharding(mesh, PartitionSpec(_axis(mesh)))


def replicated_sharding(mesh: Mesh | None = None) -> NamedSharding:
    """`NamedSharding(mesh, PartitionSpec())`: a full copy on every device of `mesh`.

    **Arguments:**

    - `mesh`: the mesh; default [`lorl.sharding.local_mesh`][].

    **Returns:**

    The `jax.sharding.NamedSharding`.
    """
    return NamedSharding(_mesh(mesh), PartitionSpec())


def check_divisible(n: int, what: str, mesh: Mesh | None = None) -> None:
    """Raise a clear error, before any compute, if `n` units cannot be split evenly over
    the devices of `mesh`.

    **Arguments:**

    - `n`: the number of units along the sharded axis (seeds, population members, ...).
    - `what`: what they are, for the message (e.g. `"population"`, `"seeds"`).
    - `mesh`: the mesh; default [`lorl.sharding.local_mesh`][].

    **Returns:**

    Nothing.

    **Raises:**

    `lorl.runs.ConfigError`, e.g. "population 6 is not divisible by the 8 devices;
    use a multiple of 8 (e.g. 8)".
    """
    if isinstance(n, bool) or not isinstance(n, int | np.integer):
        raise ConfigError(f"{what} must be an integer count, got {n!r}")
    n = int(n)
    n_devices = _mesh(mesh).size
    if n < 1:
        raise ConfigError(f"{what} must be at least 1, got {n}")
    if n % n_devices:
        lower = (n // n_devices) * n_devices
        options = [m for m in (lower, lower + n_devices) if m > 0]
        suggestion = " or ".join(str(m) for m in options)
        raise ConfigError(
            f"{what} {n} is not divisible by the {n_devices} devices; use a multiple of "
            f"{n_devices} (e.g. {suggestion}), or run on fewer devices"
        )


def _leading_size(tree: Any, what: str) -> int | None:
    sizes = set()
    for path, leaf in jax.tree_util.tree_leaves_with_path(tree):
        if not eqx.is_array(leaf):
            continue
        if np.ndim(leaf) == 0:
            raise ConfigError(
                f"{what}: leaf {jax.tree_util.keystr(path) or '(root)'} is a scalar; every "
                "array to shard needs a leading axis of units (seeds, members, ...)"
            )
        sizes.add(int(np.shape(leaf)[0]))
    if len(sizes) > 1:
        raise ConfigError(f"{what}: array leaves have different leading sizes {sorted(sizes)}")
    return sizes.pop() if sizes else None


def place(leaf: Any, sharding: jax.sharding.Sharding) -> Any:
    """`jax.device_put(leaf, sharding)`, also when `sharding` spans devices of other
    processes (multi-host): then every process passes the same global value and keeps
    the shards of its own devices (`jax.make_array_from_callback`)."""
    if sharding.is_fully_addressable:
        return jax.device_put(leaf, sharding)
    if isinstance(leaf, jax.Array) and jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
        data = place(jax.random.key_data(leaf), sharding)
        return jax.random.wrap_key_data(data, impl=jax.random.key_impl(leaf))
    host = np.asarray(leaf)
    return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])


def shard_leading(tree: Any, mesh: Mesh | None = None, *, what: str = "leading axis") -> Any:
    """Place every array leaf of `tree` on the devices of `mesh`, its leading axis split
    evenly over them (`NamedSharding(mesh, PartitionSpec(axis))`).

    Non-array leaves (Python numbers, functions, static fields of Equinox modules) are
    left as they are.

    **Arguments:**

    - `tree`: any pytree; its array leaves all share the leading size `n`.
    - `mesh`: the mesh; default [`lorl.sharding.local_mesh`][].
    - `what`: what the leading axis counts, for error messages (e.g. `"seeds"`).

    **Returns:**

    The same pytree with its array leaves as sharded `jax.Array`s.

    **Raises:**

    `lorl.runs.ConfigError` if a leaf is a scalar, leading sizes differ, or `n` is not
    divisible by the number of devices.
    """
    mesh = _mesh(mesh)
    n = _leading_size(tree, what)
    if n is None:
        return tree
    check_divisible(n, what, mesh)
    sharding = leading_sharding(mesh)
    return jax.tree_util.tree_map(
        lambda leaf: place(leaf, sharding) if eqx.is_array(leaf) else leaf, tree
    )


def replicate(tree: Any, mesh: Mesh | None = None) -> Any:
    """Place a full copy of every array leaf of `tree` on every device of `mesh`.

    **Arguments:**

    - `tree`: any pytree (non-array leaves are left as they are).
    - `mesh`: the mesh; default [`lorl.sharding.local_mesh`][].

    **Returns:**

    The same pytree with replicated `jax.Array` leaves.
    """
    sharding = replicated_sharding(mesh)
    return jax.tree_util.tree_map(
        lambda leaf: place(leaf, sharding) if eqx.is_array(leaf) else leaf, tree
    )
