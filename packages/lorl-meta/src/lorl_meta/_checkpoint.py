"""Resumable runs: snapshots of a trainer's state, with a config fingerprint that is
checked before any compute is spent.

Storage: one directory per snapshot, written under a temporary name and renamed when
complete, holding JSON files (layout, extras) and the arrays:

- in a single-process job (the usual case), an orbax-checkpoint snapshot
  (`StandardCheckpointHandler`) of every non-empty leaf; zero-size leaves (orbax refuses
  them; Brax environment states hold some) are recorded by shape and dtype in the layout;
- in a multi-process job (`jax.distributed`), every process keeps a full copy of the
  state in its own directory: `Checkpointer.save` gathers arrays that span several
  processes to every process (`jax.experimental.multihost_utils.process_allgather`, a
  collective: every process must save the same steps) and writes their raw bytes to
  `arrays.npz`. orbax-checkpoint cannot write such per-process copies: its multi-process
  mode writes one shared checkpoint collectively (process 0 writes host arrays; tried with
  orbax 0.12.8 and per-process `MultiprocessingOptions`: process 1 wrote no array data,
  and process-local `jax.Array`s are refused).

`Checkpointer.restore` reads either format and places every leaf back with the sharding
of the template (`jax.make_array_from_callback`).
"""

import dataclasses
import json
import os
import pathlib
import shutil
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
from jax.experimental import multihost_utils
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


def _is_speed_only(field: dataclasses.Field) -> bool:
    return bool(field.metadata.get("speed_only", False))


def describe_static(tree: PyTree) -> str:
    """Everything in `tree` that is not an array, as a deterministic string for a
    fingerprint (array leaves print as `array`; their shapes are in
    [`describe_tree`][lorl_meta._checkpoint.describe_tree]).

    Fields of `eqx.Module`s declared with
    `eqx.field(static=True, metadata={"speed_only": True})` (settings that change speed,
    never results, e.g. a chunk size) are left out, at any depth, so a run can be resumed
    after a pure speed change of its optimizer.

    **Arguments:**

    - `tree`: a pytree (e.g. a learned optimizer).

    **Returns:**

    A string such as `"Optim4RL(learning_rate=0.001, gru1=GRU(...))"`.
    """
    if eqx.is_array(tree):
        return "array"
    if isinstance(tree, eqx.Module):
        parts = [
            f"{f.name}={describe_static(getattr(tree, f.name))}"
            for f in dataclasses.fields(tree)
            if not _is_speed_only(f)
        ]
        return f"{type(tree).__qualname__}({', '.join(parts)})"
    if isinstance(tree, list | tuple) and not hasattr(tree, "_fields"):
        inner = ", ".join(describe_static(v) for v in tree)
        return f"[{inner}]" if isinstance(tree, list) else f"({inner})"
    if isinstance(tree, dict):
        inner = ", ".join(f"{k!r}: {describe_static(v)}" for k, v in tree.items())
        return "{" + inner + "}"
    return eqx.tree_pformat(tree, width=10_000)


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


def _is_key(x: Any) -> bool:
    return jnp.issubdtype(x.dtype, jax.dtypes.prng_key)


def to_host(x: Any) -> np.ndarray:
    """The full value of array `x` as NumPy on this process (PRNG keys as their key
    data). Arrays spanning several processes are gathered (a collective)."""
    if _is_key(x):
        x = jax.random.key_data(x)
    if isinstance(x, jax.Array) and not x.is_fully_addressable:
        if x.is_fully_replicated:
            return np.asarray(x.addressable_data(0))
        return np.asarray(multihost_utils.process_allgather(x, tiled=True))
    return np.asarray(x)


def _layout(x: Any) -> list[Any]:
    """`[shape, dtype]` of a leaf as stored (PRNG keys as key data)."""
    data = jax.random.key_data(x) if _is_key(x) else x
    return [list(np.shape(data)), str(np.dtype(data.dtype))]


def _place(value: np.ndarray, template: Any) -> Any:
    """`value` as an array like `template`: the template's sharding if it spans several
    devices, PRNG keys re-wrapped with the template's implementation."""
    if _is_key(template):
        data = _place(value, jax.random.key_data(template))
        return jax.random.wrap_key_data(data, impl=jax.random.key_impl(template))
    if isinstance(template, jax.Array) and len(template.sharding.device_set) > 1:
        return jax.make_array_from_callback(value.shape, template.sharding, lambda i: value[i])
    # One device: uncommitted, like a freshly created array (it may meet arrays of a
    # multi-device mesh inside a jitted step).
    return jnp.asarray(value)


def _storage_format() -> str:
    """ "orbax" in a single-process job, "npz" (per-process full copies) otherwise."""
    return "orbax" if jax.process_count() == 1 else "npz"


class Checkpointer:
    """Snapshots of a pytree of arrays plus JSON-serialisable extras in `directory`
    (synchronous saves; the newest `keep` snapshots are kept).

    The run's `fingerprint` (a JSON-serialisable dict: configuration, seed, shapes of the
    meta-parameters, ...) is written once to `directory/fingerprint.json`; opening the
    directory again with a different fingerprint raises
    [`lorl_meta.CheckpointMismatchError`][] (listing the differing entries) before
    anything else happens.

    Every array leaf is stored exactly, whatever its dtype: zero-size leaves (Brax
    environment states hold some) and PRNG key arrays (as their key data) included. The
    arrays are an orbax-checkpoint snapshot in single-process jobs and per-process NumPy
    copies in multi-process jobs (module docstring).

    Each snapshot is written to a temporary directory and renamed when complete, so a run
    killed while saving leaves the previous snapshot intact.

    In a multi-process JAX job every process must open its own directory (e.g. the
    `-process<i>` run folders of `lorl`) and call `latest_step`, `save` and `restore`
    for the same steps: each process writes a full copy of the state (see the module
    docstring).
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
        self._steps = self.directory / "steps"
        self._steps.mkdir(exist_ok=True)
        self._keep = keep
        self._ocp: ocp.Checkpointer | None = None

    def _orbax(self) -> ocp.Checkpointer:
        if self._ocp is None:
            self._ocp = ocp.Checkpointer(ocp.StandardCheckpointHandler())
        return self._ocp

    def _all_steps(self) -> list[int]:
        return sorted(int(p.name) for p in self._steps.iterdir() if p.name.isdigit())

    def latest_step(self) -> int | None:
        """The step of the newest complete snapshot, or `None`.

        In a multi-process job (a collective: call it on every process), the newest step
        that every process holds, so a job killed while some processes had saved a
        snapshot and others had not resumes consistently.
        """
        steps = set(self._all_steps())
        if jax.process_count() == 1:
            return max(steps) if steps else None
        # Candidate: the smallest per-process newest step; every process must hold it.
        newest = max(steps) if steps else -1
        candidate = int(np.min(multihost_utils.process_allgather(np.int64(newest))))
        if candidate < 0:
            return None
        held = multihost_utils.process_allgather(np.int64(candidate in steps))
        if not np.all(held):
            raise CheckpointMismatchError(
                f"the processes of this job hold different checkpoint steps (process "
                f"{jax.process_index()}: {sorted(steps)} in {self.directory}); no step is "
                "held by all of them"
            )
        return candidate

    def save(self, step: int, tree: PyTree, extras: dict[str, Any]) -> None:
        """Save the array leaves of `tree` and the JSON `extras` as snapshot `step`."""
        leaves = jax.tree.leaves(eqx.filter(tree, eqx.is_array))
        layout = [_layout(x) for x in leaves]
        host = [to_host(x) for x in leaves]
        final = self._steps / str(int(step))
        tmp = self._steps / f".tmp-{int(step)}-{os.getpid()}"
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir()
        fmt = _storage_format()
        if fmt == "orbax":
            payload = {f"{i:05d}": x for i, x in enumerate(host) if x.size}
            if payload:
                self._orbax().save(tmp / "state", args=ocp.args.StandardSave(payload))
        else:
            # Raw bytes: exact for every dtype (bfloat16 too); zero-size leaves are empty.
            raw = {
                f"{i:05d}": np.ascontiguousarray(x).reshape(-1).view(np.uint8)
                for i, x in enumerate(host)
            }
            with open(tmp / "arrays.npz", "wb") as f:
                np.savez(f, **raw)  # pyright: ignore[reportArgumentType]
                f.flush()
                os.fsync(f.fileno())
        for name, value in (
            ("layout.json", {"leaves": layout, "format": fmt}),
            ("extras.json", extras),
        ):
            with open(tmp / name, "w") as f:
                json.dump(value, f)
                f.flush()
                os.fsync(f.fileno())
        if final.exists():
            old = self._steps / f".old-{int(step)}-{os.getpid()}"
            final.replace(old)
            tmp.replace(final)
            shutil.rmtree(old)
        else:
            tmp.replace(final)
        for s in self._all_steps()[: -self._keep]:
            shutil.rmtree(self._steps / str(s), ignore_errors=True)

    def restore(self, step: int, template: PyTree) -> tuple[PyTree, dict[str, Any]]:
        """Snapshot `step`, with the array leaves put back into `template` (a tree of the
        same structure, shapes and dtypes; its non-array leaves are kept, and each array
        leaf comes back with the template leaf's sharding).

        **Returns:**

        `(tree, extras)`.
        """
        arrays_t, static = eqx.partition(template, eqx.is_array)
        leaves, treedef = jax.tree.flatten(arrays_t)
        layout = [_layout(x) for x in leaves]
        folder = self._steps / str(int(step))
        if not folder.is_dir():
            raise FileNotFoundError(f"no checkpoint step {step} in {self._steps}")
        stored_layout = json.loads((folder / "layout.json").read_text())
        stored = stored_layout["leaves"]
        extras = json.loads((folder / "extras.json").read_text())
        if len(stored) != len(leaves):
            raise CheckpointMismatchError(
                f"checkpoint step {step} holds {len(stored)} arrays, expected {len(leaves)}"
            )
        for i, (want, have) in enumerate(zip(layout, stored, strict=True)):
            if [list(have[0]), have[1]] != want:
                raise CheckpointMismatchError(
                    f"checkpoint leaf {i} has shape {tuple(have[0])} {have[1]}, expected "
                    f"{tuple(want[0])} {want[1]}"
                )
        stored_format = stored_layout.get("format", "npz")
        if stored_format == "orbax":
            want_arrays = {
                f"{i:05d}": np.zeros(w[0], np.dtype(jnp.dtype(w[1])))
                for i, w in enumerate(layout)
                if int(np.prod(w[0])) > 0
            }
            got = (
                self._orbax().restore(folder / "state", args=ocp.args.StandardRestore(want_arrays))
                if want_arrays
                else {}
            )
            got = {k: np.asarray(v).reshape(-1).view(np.uint8) for k, v in got.items()}
        else:
            with np.load(folder / "arrays.npz", allow_pickle=False) as npz:
                got = {k: npz[k] for k in npz.files}
        new_leaves = []
        for i, (x, want) in enumerate(zip(leaves, layout, strict=True)):
            raw = got.get(f"{i:05d}", np.zeros((0,), np.uint8))
            y = raw.view(np.dtype(jnp.dtype(want[1]))).reshape(want[0])
            new_leaves.append(_place(y, x))
        tree = eqx.combine(jax.tree.unflatten(treedef, new_leaves), static)
        return tree, extras

    def close(self) -> None:
        """Release orbax's resources (snapshots are complete when `save` returns); a
        trainer can close its checkpointer unconditionally."""
        if self._ocp is not None:
            self._ocp.close()
            self._ocp = None
