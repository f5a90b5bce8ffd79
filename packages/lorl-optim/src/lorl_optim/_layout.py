"""The static layout of an agent's parameter tree, and the flat features-major view of it.

Every learned optimizer in this package runs its per-parameter network once over the
concatenation of all leaves (`ravel` + `concatenate`), not leaf by leaf: the architecture
notes measured the leaf-by-leaf version 3.9x slower. The layout (tree structure, shapes,
sizes, offsets) is known at trace time, so per-tensor statistics use static slices.
"""

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PyTree


@dataclasses.dataclass(frozen=True)
class ParamLayout:
    """Static description of a parameter tree: structure, leaf shapes, sizes and offsets.

    Captured by `init(params)` and stored as a static field of the optimizer state, so
    `update` can check that the gradients have the tree the state was built for.
    """

    treedef: Any
    shapes: tuple[tuple[int, ...], ...]
    dtype: np.dtype

    @staticmethod
    def from_tree(tree: Any, what: str = "params") -> "ParamLayout":
        leaves, treedef = jax.tree.flatten(tree)
        if not leaves:
            raise ValueError(f"`{what}` has no array leaves; expected a pytree of float arrays.")
        dtypes = set()
        for leaf in leaves:
            dtype = np.dtype(jnp.result_type(leaf))
            if not jnp.issubdtype(dtype, jnp.floating):
                raise ValueError(
                    f"`{what}` has a leaf of dtype {dtype}; every leaf must be a floating array."
                )
            dtypes.add(dtype)
        if len(dtypes) != 1:
            raise ValueError(
                f"`{what}` mixes dtypes {sorted(str(d) for d in dtypes)}; learned optimizers "
                "process all parameters as one flat array and need a single float dtype."
            )
        shapes = tuple(tuple(int(s) for s in jnp.shape(leaf)) for leaf in leaves)
        return ParamLayout(treedef=treedef, shapes=shapes, dtype=dtypes.pop())

    @property
    def sizes(self) -> tuple[int, ...]:
        return tuple(int(np.prod(s, dtype=np.int64)) for s in self.shapes)

    @property
    def offsets(self) -> tuple[int, ...]:
        return tuple(int(o) for o in np.cumsum((0, *self.sizes))[:-1])

    @property
    def size(self) -> int:
        return sum(self.sizes)

    @property
    def n_leaves(self) -> int:
        return len(self.shapes)

    def check(self, tree: Any, what: str) -> list[Any]:
        """Leaves of `tree` after checking it has this layout's structure and shapes."""
        leaves, treedef = jax.tree.flatten(tree)
        if treedef != self.treedef:
            raise ValueError(
                f"`{what}` does not match the tree the optimizer state was initialised with.\n"
                f"expected structure: {self.treedef}\ngot: {treedef}"
            )
        for i, (leaf, shape) in enumerate(zip(leaves, self.shapes, strict=True)):
            if tuple(jnp.shape(leaf)) != shape:
                raise ValueError(
                    f"`{what}` leaf {i} has shape {tuple(jnp.shape(leaf))}; the optimizer "
                    f"state was initialised for shape {shape}."
                )
        return leaves

    def ravel(self, tree: Any, what: str) -> Float[Array, " n"]:
        """Check `tree` and concatenate its raveled leaves into one flat vector."""
        leaves = self.check(tree, what)
        flat = [jnp.ravel(jnp.asarray(leaf)) for leaf in leaves]
        dtypes = {x.dtype for x in flat}
        if len(dtypes) != 1:
            raise ValueError(f"`{what}` mixes dtypes {sorted(map(str, dtypes))}; use one dtype.")
        return flat[0] if len(flat) == 1 else jnp.concatenate(flat)

    def unravel(self, flat: Float[Array, " n"], dtypes: list[Any] | None = None) -> PyTree:
        """Split a flat vector back into a tree with this layout."""
        leaves = []
        for i, (offset, size, shape) in enumerate(
            zip(self.offsets, self.sizes, self.shapes, strict=True)
        ):
            leaf = jnp.reshape(flat[offset : offset + size], shape)
            if dtypes is not None:
                leaf = leaf.astype(dtypes[i])
            leaves.append(leaf)
        return jax.tree.unflatten(self.treedef, leaves)

    def broadcast_leaves(self, tree: Any, what: str, expected: str, dtype: Any) -> Array:
        """Flat vector from a tree whose leaves broadcast to the parameter leaves.

        Used for per-leaf context (layer proportion: a scalar per leaf; actor mask: a bool
        per leaf; dormancy: the downstream neuron's score, shape `(out,)` for a kernel
        `(in, out)` and for a bias `(out,)`).
        """
        leaves, treedef = jax.tree.flatten(tree)
        if treedef != self.treedef:
            raise ValueError(
                f"`{what}` must be a pytree with the same structure as the parameters "
                f"({expected}).\nexpected structure: {self.treedef}\ngot: {treedef}"
            )
        flat = []
        for i, (leaf, shape) in enumerate(zip(leaves, self.shapes, strict=True)):
            leaf = jnp.asarray(leaf)
            try:
                np.broadcast_shapes(leaf.shape, shape)
                ok = len(leaf.shape) <= len(shape)
            except ValueError:
                ok = False
            if not ok:
                raise ValueError(
                    f"`{what}` leaf {i} has shape {leaf.shape}, which does not broadcast to the "
                    f"parameter shape {shape} ({expected})."
                )
            flat.append(jnp.ravel(jnp.broadcast_to(leaf.astype(dtype), shape)))
        return flat[0] if len(flat) == 1 else jnp.concatenate(flat)

    def per_leaf(self, tree: Any, what: str, expected: str, dtype: Any) -> tuple[bool, Array]:
        """Per-leaf context as `(True, table (n_leaves,))` when every leaf is a scalar, else
        `(False, flat (n,))` via `broadcast_leaves`."""
        leaves, treedef = jax.tree.flatten(tree)
        if treedef == self.treedef and all(jnp.ndim(x) == 0 for x in leaves):
            return True, jnp.stack([jnp.asarray(x).astype(dtype) for x in leaves])
        return False, self.broadcast_leaves(tree, what, expected, dtype)
