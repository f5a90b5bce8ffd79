"""Resumable runs: orbax-checkpoint snapshots of a trainer's state, with a config
fingerprint that is checked before any compute is spent."""

import json
import pathlib
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
from jaxtyping import PyTree

FINGERPRINT_FILE = "fingerprint.json"


class CheckpointMismatchError(ValueError):
    """A checkpoint directory holds a run with a different configuration."""


def describe_tree(tree: PyTree) -> list[str]:
    """`"shape dtype"` of every array leaf of `tree`, in `jax.tree` order."""
    return [
        f"{tuple(np.shape(x))} {jnp.result_type(x)}"
        for x in jax.tree.leaves(eqx.filter(tree, eqx.is_array))
    ]


def _diff(stored: dict[str, Any], current: dict[str, Any]) -> str:
    lines = []
    for k in sorted(set(stored) | set(current)):
        a, b = stored.get(k, "<absent>"), current.get(k, "<absent>")
        if a != b:
            a_s, b_s = json.dumps(a), json.dumps(b)
            if len(a_s) > 200 or len(b_s) > 200:
                a_s, b_s = a_s[:200] + "...", b_s[:200] + "..."
            lines.append(f"  {k}: checkpoint {a_s} != this run {b_s}")
    return "\n".join(lines)


class Checkpointer:
    """Snapshots of a pytree of arrays plus JSON-serialisable extras, every `every`
    steps, in `directory` (an orbax `CheckpointManager`, synchronous saves).

    The run's `fingerprint` (a JSON-serialisable dict: configuration, seed, shapes of the
    meta-parameters, ...) is written once to `directory/fingerprint.json`; opening the
    directory again with a different fingerprint raises
    [`lorl_meta.CheckpointMismatchError`][] (listing the differing entries) before
    anything else happens.

    Orbax writes each step to a temporary directory and renames it when complete, so a
    run killed while saving leaves the previous snapshot intact.
    """

    def __init__(
        self, directory: str | pathlib.Path, fingerprint: dict[str, Any], *, keep: int = 2
    ):
        self.directory = pathlib.Path(directory).absolute()
        self.directory.mkdir(parents=True, exist_ok=True)
        current = json.loads(json.dumps(fingerprint))
        path = self.directory / FINGERPRINT_FILE
        if path.exists():
            stored = json.loads(path.read_text())
            if stored != current:
                raise CheckpointMismatchError(
                    f"the checkpoint directory {self.directory} holds a run with a different "
                    f"configuration; differing entries:\n{_diff(stored, current)}\n"
                    "Use a new directory, or the same configuration and seed to resume."
                )
        else:
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(current, indent=1, sort_keys=True))
            tmp.replace(path)
        self._manager = ocp.CheckpointManager(
            self.directory / "steps",
            options=ocp.CheckpointManagerOptions(
                max_to_keep=keep, enable_async_checkpointing=False, create=True
            ),
        )

    def latest_step(self) -> int | None:
        """The step of the newest complete snapshot, or `None`."""
        return self._manager.latest_step()

    def save(self, step: int, tree: PyTree, extras: dict[str, Any]) -> None:
        """Save the array leaves of `tree` and the JSON `extras` as snapshot `step`."""
        leaves = jax.tree.leaves(eqx.filter(tree, eqx.is_array))
        arrays = {f"{i:05d}": np.asarray(x) for i, x in enumerate(leaves)}
        self._manager.save(
            step,
            args=ocp.args.Composite(
                arrays=ocp.args.StandardSave(arrays), extras=ocp.args.JsonSave(extras)
            ),
            force=True,
        )
        self._manager.wait_until_finished()

    def restore(self, step: int, template: PyTree) -> tuple[PyTree, dict[str, Any]]:
        """Snapshot `step`, with the array leaves put back into `template` (a tree of the
        same structure, shapes and dtypes; its non-array leaves are kept).

        **Returns:**

        `(tree, extras)`.
        """
        arrays_t, static = eqx.partition(template, eqx.is_array)
        leaves, treedef = jax.tree.flatten(arrays_t)
        target = {f"{i:05d}": np.asarray(x) for i, x in enumerate(leaves)}
        restored = self._manager.restore(
            step,
            args=ocp.args.Composite(
                arrays=ocp.args.StandardRestore(target), extras=ocp.args.JsonRestore()
            ),
        )
        got = restored["arrays"]
        new_leaves = []
        for i, x in enumerate(leaves):
            y = np.asarray(got[f"{i:05d}"])
            if y.shape != np.shape(x) or y.dtype != np.asarray(x).dtype:
                raise CheckpointMismatchError(
                    f"checkpoint leaf {i} has shape {y.shape} {y.dtype}, expected "
                    f"{np.shape(x)} {np.asarray(x).dtype}"
                )
            new_leaves.append(jnp.asarray(y))
        tree = eqx.combine(jax.tree.unflatten(treedef, new_leaves), static)
        return tree, dict(restored["extras"])

    def close(self) -> None:
        self._manager.close()
