"""The self-describing run folder every `lorl run` writes (and `lorl resume` continues)."""

import datetime
import importlib.metadata
import json
import os
import pathlib
import platform
import re
from collections.abc import Callable
from typing import Any, TypeVar

from ._config import config_to_dict
from ._errors import RunDirError
from ._jsonable import to_jsonable

T = TypeVar("T")

#: Layout version of run folders; a folder with another version cannot be resumed.
RUN_FORMAT = 1
MANIFEST = "run.json"
_DISTRIBUTIONS = ("lorl", "lorl-gridworlds", "lorl-optim", "lorl-agents", "lorl-meta", "jax")


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def lorl_version() -> str:
    """The installed version of the `lorl` distribution (`"unknown"` if not installed)."""
    return _version("lorl") or "unknown"


def _atomic_write(path: pathlib.Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


class RunDir:
    """One run of one experiment: a folder that describes itself.

    ```
    RUN_DIR/
      run.json          experiment, scale, overrides, resolved config, versions, devices, status
      results/<stage>.json   each finished stage's results (a resumed run skips these stages)
      results.json      the experiment's final results
      metrics/<stage>/  per-stage metrics (JSONL/CSV)
      checkpoints/<stage>/   orbax checkpoints of long stages
      plots/*.png
      report.md         tables and plots (`lorl report RUN_DIR` rewrites it)
    ```

    Create one with [`lorl.runs.RunDir.create`][], reopen it with
    [`lorl.runs.RunDir.open`][] (which refuses folders written by another lorl version).
    """

    def __init__(self, path: pathlib.Path, manifest: dict[str, Any]):
        self.path = path
        self.manifest = manifest

    # -- creation and opening -------------------------------------------------------

    @classmethod
    def create(
        cls,
        root: str | os.PathLike[str],
        *,
        experiment: str,
        scale: str,
        config: Any,
        overrides: list[str] | tuple[str, ...] = (),
        name: str | None = None,
    ) -> "RunDir":
        """Make a new run folder under `root` and write its `run.json`.

        **Arguments:**

        - `root`: the parent folder (created if missing).
        - `experiment`, `scale`: the registered experiment and scale being run.
        - `config`: the resolved dataclass config (after overrides).
        - `overrides`: the `key=value` strings the user gave, kept for the record.
        - `name`: folder name; default `<experiment>-<scale>-<UTC timestamp>`, with
          `-process<i>` appended in a multi-process job.

        **Returns:**

        The new [`lorl.runs.RunDir`][].

        **Raises:**

        [`lorl.runs.RunDirError`][] if the folder exists already.
        """
        import jax

        root = pathlib.Path(root)
        stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%d-%H%M%S")
        if name is None:
            name = f"{re.sub(r'[^A-Za-z0-9_.-]+', '-', experiment)}-{scale}-{stamp}"
            if jax.process_count() > 1:
                # Every process of a multi-process job writes its own copy of the run (the
                # processes compute the same results): distinct names keep them apart on
                # a shared filesystem.
                name += f"-process{jax.process_index()}"
        path = root / name
        if path.exists():
            raise RunDirError(f"run folder {path} exists already; choose another name")
        path.mkdir(parents=True)
        manifest = {
            "format": RUN_FORMAT,
            "experiment": experiment,
            "scale": scale,
            "overrides": list(overrides),
            "config": config_to_dict(config),
            "created": stamp,
            "status": "created",
            "versions": {d: _version(d) for d in _DISTRIBUTIONS},
            "python": platform.python_version(),
            "devices": [str(d) for d in jax.devices()],
            "process_count": jax.process_count(),
        }
        run = cls(path, manifest)
        run._write_manifest()
        return run

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> "RunDir":
        """Open an existing run folder.

        **Raises:**

        [`lorl.runs.RunDirError`][] if `path` is not a run folder, or was written by a
        different run-folder format or lorl version (resuming it could mix results of two
        implementations); the message says which versions differ.
        """
        path = pathlib.Path(path)
        manifest_path = path / MANIFEST
        if not manifest_path.is_file():
            raise RunDirError(f"{path} is not a lorl run folder (no {MANIFEST})")
        try:
            manifest = json.loads(manifest_path.read_text())
        except json.JSONDecodeError as e:
            raise RunDirError(f"{manifest_path} is not valid JSON: {e}") from None
        if manifest.get("format") != RUN_FORMAT:
            raise RunDirError(
                f"{path} has run-folder format {manifest.get('format')!r}; this lorl "
                f"({lorl_version()}) reads format {RUN_FORMAT}"
            )
        written_by = manifest.get("versions", {}).get("lorl")
        if written_by != lorl_version():
            raise RunDirError(
                f"{path} was written by lorl {written_by}, this is lorl {lorl_version()}; "
                "resume it with the version that started it, or start a new run"
            )
        return cls(path, manifest)

    # -- manifest ---------------------------------------------------------------------

    @property
    def experiment(self) -> str:
        return self.manifest["experiment"]

    @property
    def scale(self) -> str:
        return self.manifest["scale"]

    @property
    def config_dict(self) -> dict[str, Any]:
        return self.manifest["config"]

    @property
    def status(self) -> str:
        return self.manifest["status"]

    def set_status(self, status: str, **extra: Any) -> None:
        """Record `status` (`"running"`, `"complete"`, `"failed"`, ...) in `run.json`."""
        self.manifest["status"] = status
        self.manifest.update(to_jsonable(extra))
        self._write_manifest()

    def _write_manifest(self) -> None:
        _atomic_write(self.path / MANIFEST, json.dumps(self.manifest, indent=2))

    # -- folders ----------------------------------------------------------------------

    def _sub(self, *parts: str) -> pathlib.Path:
        p = self.path.joinpath(*parts)
        p.mkdir(parents=True, exist_ok=True)
        return p

    def checkpoint_dir(self, stage: str) -> pathlib.Path:
        """Folder for the orbax checkpoints of `stage` (created)."""
        return self._sub("checkpoints", stage)

    def metrics_dir(self, stage: str) -> pathlib.Path:
        """Folder for the metrics of `stage` (created)."""
        return self._sub("metrics", stage)

    @property
    def plots_dir(self) -> pathlib.Path:
        return self._sub("plots")

    # -- stage results ----------------------------------------------------------------

    def _result_path(self, stage: str) -> pathlib.Path:
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", stage):
            raise ValueError(f"stage names use letters, digits, '_', '.', '-'; got {stage!r}")
        return self._sub("results") / f"{stage}.json"

    def has_result(self, stage: str) -> bool:
        return self._result_path(stage).is_file()

    def save_result(self, stage: str, result: Any) -> None:
        """Write `stage`'s result (converted by [`lorl.runs.to_jsonable`][]) atomically."""
        _atomic_write(self._result_path(stage), json.dumps(to_jsonable(result), indent=1))

    def load_result(self, stage: str) -> Any:
        return json.loads(self._result_path(stage).read_text())

    def stage(self, stage: str, compute: Callable[[], T]) -> Any:
        """Run `compute()` once for this run: if `stage` finished before (in this or a
        killed earlier process) its saved result is loaded instead.

        **Arguments:**

        - `stage`: a name unique within the experiment.
        - `compute`: returns a JSON-convertible result (dicts, lists, numbers, arrays).

        **Returns:**

        The result as stored (JSON types: arrays come back as lists), so a fresh and a
        resumed run continue with identical values.
        """
        if not self.has_result(stage):
            self.save_result(stage, compute())
        return self.load_result(stage)

    # -- final outputs ----------------------------------------------------------------

    def write_results(self, results: Any) -> pathlib.Path:
        """Write the experiment's final `results.json`."""
        path = self.path / "results.json"
        _atomic_write(path, json.dumps(to_jsonable(results), indent=1))
        return path

    def load_results(self) -> Any:
        path = self.path / "results.json"
        if not path.is_file():
            raise RunDirError(f"{self.path} has no results.json yet (status: {self.status})")
        return json.loads(path.read_text())

    def write_report(self, markdown: str) -> pathlib.Path:
        """Write `report.md`."""
        path = self.path / "report.md"
        _atomic_write(path, markdown)
        return path

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r}, experiment={self.experiment!r}, scale={self.scale!r})"
