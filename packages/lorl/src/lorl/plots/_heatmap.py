"""A labelled heatmap of a grid of values (e.g. a hyperparameter sensitivity grid)."""

import os
import pathlib
from collections.abc import Sequence

import numpy as np
from jaxtyping import ArrayLike

from ..runs import ConfigError
from ._common import new_figure, output_path


def heatmap(
    values: ArrayLike,
    row_labels: Sequence[str],
    col_labels: Sequence[str],
    path: str | os.PathLike[str],
    *,
    xlabel: str = "",
    ylabel: str = "",
    title: str = "",
    annotations: Sequence[Sequence[str]] | None = None,
) -> pathlib.Path:
    """Plot `values[i, j]` as a coloured grid with the value written in each cell (NaN
    cells are left blank and marked "n/a").

    **Arguments:**

    - `values`: shape `(len(row_labels), len(col_labels))`.
    - `row_labels`, `col_labels`: tick labels.
    - `path`: the image file to write; parent folders are created.
    - `xlabel`, `ylabel`, `title`: labels.
    - `annotations`: the text of each cell, same shape as `values` (default: the value
      to two decimals), e.g. a mean with its confidence interval.

    **Returns:**

    The path of the written file.
    """
    grid = np.asarray(values, np.float64)
    if grid.ndim != 2 or grid.shape != (len(row_labels), len(col_labels)):
        raise ConfigError(
            f"values of shape {grid.shape} do not match {len(row_labels)} row and "
            f"{len(col_labels)} column labels"
        )
    if annotations is not None and (
        len(annotations) != grid.shape[0] or any(len(r) != grid.shape[1] for r in annotations)
    ):
        raise ConfigError(f"annotations do not match the values' shape {grid.shape}")
    out = output_path(path)
    figure = new_figure(1.2 * grid.shape[1] + 2.4, 0.6 * grid.shape[0] + 1.6)
    ax = figure.subplots()
    image = ax.imshow(np.ma.masked_invalid(grid), cmap="viridis", aspect="auto")
    figure.colorbar(image, ax=ax)
    for i in range(grid.shape[0]):
        for j in range(grid.shape[1]):
            if annotations is not None:
                text = annotations[i][j]
            else:
                text = "n/a" if not np.isfinite(grid[i, j]) else f"{grid[i, j]:.2f}"
            ax.text(j, i, text, ha="center", va="center", color="w", fontsize=8)
    ax.set_xticks(range(grid.shape[1]), list(col_labels))
    ax.set_yticks(range(grid.shape[0]), list(row_labels))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    figure.savefig(out, dpi=110)
    return out
