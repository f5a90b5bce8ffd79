"""Metrics to JSONL and CSV (optionally TensorBoard and Weights & Biases), and a tqdm
progress bar."""

import csv
import json
import math
import pathlib
from typing import Any

from tqdm.auto import tqdm


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    return value


class MetricsLog:
    """Rows of scalar metrics, mirrored to `metrics.jsonl` and `metrics.csv` in `directory`
    (if given) and kept in memory (`rows`). Each file is rewritten from `rows` on
    [`lorl_meta.MetricsLog.reset`][] (used on resume, so a killed run's rows written after
    its last checkpoint disappear).

    With `tensorboard=True` and `tensorboardX` installed, scalars also go to TensorBoard
    event files in `directory/tb`.

    With `wandb` (a dict of `wandb.init` keyword arguments, e.g. `{"project": "lorl"}`),
    every appended row is also logged to a Weights & Biases run (needs the `wandb`
    package, not a dependency of lorl-meta), from process 0 of a multi-process job only.
    Rows restored by `reset` are not logged again: to continue the same W&B run after a
    resume, pass its `id` and `resume="allow"` in `wandb`.
    """

    def __init__(
        self,
        directory: str | pathlib.Path | None,
        *,
        tensorboard: bool = False,
        wandb: dict[str, Any] | None = None,
    ):
        """**Arguments:**

        - `directory`: where `metrics.jsonl` / `metrics.csv` go (`None`: memory only).
        - `tensorboard`: also write TensorBoard scalars to `directory/tb`.
        - `wandb`: `wandb.init` keyword arguments to also log to Weights & Biases
          (`None`: off).
        """
        self.rows: list[dict[str, Any]] = []
        self._wandb = None
        if wandb is not None:
            self._wandb = _wandb_run(wandb)
        self.directory = None if directory is None else pathlib.Path(directory)
        self._tb = None
        if self.directory is not None:
            self.directory.mkdir(parents=True, exist_ok=True)
            if tensorboard:
                try:
                    from tensorboardX import SummaryWriter  # pyright: ignore[reportMissingImports]

                    self._tb = SummaryWriter(str(self.directory / "tb"))
                except ImportError:
                    self._tb = None
        self._rewrite()

    def reset(self, rows: list[dict[str, Any]]) -> None:
        """Replace the history with `rows` and rewrite the files."""
        self.rows = [dict(r) for r in rows]
        self._rewrite()

    def _rewrite(self) -> None:
        if self.directory is None:
            return
        with open(self.directory / "metrics.jsonl", "w") as f:
            for row in self.rows:
                f.write(json.dumps(row) + "\n")
        self._write_csv()

    def _write_csv(self) -> None:
        if self.directory is None:
            return
        keys: list[str] = []
        for row in self.rows:
            keys += [k for k in row if k not in keys]
        with open(self.directory / "metrics.csv", "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=keys)
            writer.writeheader()
            for row in self.rows:
                writer.writerow(row)

    def append(self, row: dict[str, Any]) -> None:
        """Add one row (floats that are NaN become `null`, infinities strings)."""
        row = {k: _clean(v) for k, v in row.items()}
        self.rows.append(row)
        if self._wandb is not None:
            step = int(row.get("step", row.get("generation", len(self.rows))))
            self._wandb.log({k: v for k, v in row.items() if isinstance(v, int | float)}, step=step)
        if self.directory is None:
            return
        with open(self.directory / "metrics.jsonl", "a") as f:
            f.write(json.dumps(row) + "\n")
        self._write_csv()
        if self._tb is not None:
            step = int(row.get("step", len(self.rows)))
            for k, v in row.items():
                if isinstance(v, int | float) and k != "step":
                    self._tb.add_scalar(k, v, step)

    def close(self) -> None:
        """Close the TensorBoard writer and finish the W&B run (if any)."""
        if self._tb is not None:
            self._tb.close()
        if self._wandb is not None:
            self._wandb.finish()
            self._wandb = None


def _wandb_run(init_kwargs: dict[str, Any]) -> Any:
    """A started W&B run on process 0 (`None` on the other processes of a job)."""
    if not isinstance(init_kwargs, dict):
        raise TypeError(
            f"wandb must be a dict of wandb.init keyword arguments or None, got "
            f"{type(init_kwargs).__name__}"
        )
    try:
        import wandb  # pyright: ignore[reportMissingImports]
    except ImportError as err:
        raise ImportError(
            "logging to Weights & Biases needs the wandb package (pip install wandb)"
        ) from err
    import jax

    if jax.process_index() != 0:
        return None
    return wandb.init(**init_kwargs)


def progress_bar(total: int, initial: int, desc: str, enabled: bool) -> Any:
    """A tqdm bar (ETA included) over `total` steps starting at `initial`."""
    return tqdm(total=total, initial=initial, desc=desc, disable=not enabled, dynamic_ncols=True)
