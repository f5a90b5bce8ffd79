"""Sharding of the population / training-unit axis over devices with `jax.sharding`
(Mesh + NamedSharding, `jax.lax.with_sharding_constraint` inside the jitted steps; no
`pmap`)."""

from typing import Any

import equinox as eqx
import jax
from jax.sharding import Mesh, NamedSharding, PartitionSpec
from jaxtyping import PyTree


class BatchSharding(eqx.Module):
    """Where the leading (population or unit) axis of the trainers' batched arrays lives:
    split over the mesh axes `axes` of `mesh`, every other axis replicated.

    Built from what a user passes as `mesh=` to the trainers:

    - a `jax.sharding.Mesh`: the leading axis is split over all of its axes (their sizes
      multiply);
    - a `jax.sharding.NamedSharding`: its mesh, and the mesh axes of the first entry of its
      `PartitionSpec` (e.g. `NamedSharding(mesh, PartitionSpec("pop"))`).
    """

    mesh: Mesh = eqx.field(static=True)
    axes: tuple[str, ...] = eqx.field(static=True)

    @property
    def n_shards(self) -> int:
        """How many pieces the leading axis is cut into (product of the axes' sizes)."""
        n = 1
        for a in self.axes:
            n *= int(self.mesh.shape[a])
        return n

    def sharding(self) -> NamedSharding:
        """The `NamedSharding` of an array whose leading axis is the batch axis."""
        return NamedSharding(self.mesh, PartitionSpec(self.axes))

    def replicate(self, tree: PyTree) -> PyTree:
        """`tree`'s arrays placed on every device of the mesh, replicated (how a jitted
        step returns state without a batch axis; placing it so from the start keeps the
        first step's input sharding equal to later steps', so it compiles once).
        Multi-process meshes are left as they are (each process holds its own copy)."""
        if jax.process_count() > 1:
            return tree
        replicated = NamedSharding(self.mesh, PartitionSpec())
        return jax.tree.map(
            lambda x: jax.device_put(x, replicated) if isinstance(x, jax.Array) else x, tree
        )

    def constrain(self, tree: PyTree) -> PyTree:
        """`jax.lax.with_sharding_constraint` on every array leaf of `tree` (leading axis
        split, the rest replicated); non-array leaves are left alone."""
        sharding = self.sharding()

        def one(x: Any) -> Any:
            if eqx.is_array(x) and x.ndim >= 1:
                return jax.lax.with_sharding_constraint(x, sharding)
            return x

        return jax.tree.map(one, tree)


def as_batch_sharding(mesh: Any, what: str) -> BatchSharding | None:
    """Normalise a trainer's `mesh=` argument (None, a `Mesh` or a `NamedSharding`),
    raising a clear error for anything else."""
    if mesh is None:
        return None
    if isinstance(mesh, Mesh):
        axes = tuple(str(a) for a in mesh.axis_names)
        return BatchSharding(mesh, axes)
    if isinstance(mesh, NamedSharding):
        spec = tuple(mesh.spec)
        first = spec[0] if spec else None
        if first is None:
            raise ValueError(
                f"{what}: the NamedSharding's PartitionSpec must name the mesh axes of the "
                f"leading (batch) axis, e.g. PartitionSpec('batch'); got {mesh.spec}"
            )
        if any(s is not None for s in spec[1:]):
            raise ValueError(
                f"{what}: only the leading (batch) axis can be sharded; got {mesh.spec}"
            )
        axes = (first,) if isinstance(first, str) else tuple(first)
        return BatchSharding(mesh.mesh, tuple(str(a) for a in axes))  # pyright: ignore[reportArgumentType]
    raise TypeError(
        f"{what}: mesh must be a jax.sharding.Mesh, a jax.sharding.NamedSharding or None, "
        f"got {type(mesh).__name__}"
    )


def check_divisible(batch: BatchSharding | None, size: int, what: str) -> None:
    """Raise before any compute if a batch axis of `size` cannot be split evenly."""
    if batch is None:
        return
    n = batch.n_shards
    if size % n != 0:
        raise ValueError(
            f"{what} = {size} is not divisible by the {n} devices of the mesh axes "
            f"{batch.axes} (mesh shape {dict(batch.mesh.shape)}); use a multiple of {n} "
            f"(e.g. {-(-size // n) * n}) or a smaller mesh"
        )
