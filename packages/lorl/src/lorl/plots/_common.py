"""Shared plotting helpers: figures without pyplot (no GUI backend, no windows)."""

import os
import pathlib
from typing import Any

from ..runs import ConfigError

_FORMATS = (".png", ".pdf", ".svg", ".jpg", ".jpeg")


def output_path(path: str | os.PathLike[str]) -> pathlib.Path:
    """Check the file suffix and create the parent folders."""
    out = pathlib.Path(path)
    if out.suffix.lower() not in _FORMATS:
        raise ConfigError(
            f"plot path {str(out)!r} must end in one of {', '.join(_FORMATS)} "
            "(the suffix selects the format)"
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    return out


def new_figure(width: float, height: float) -> Any:
    """A Matplotlib `Figure` drawn by the Agg canvas, independent of pyplot's state (so
    no window ever opens and the user's backend is untouched)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def colours(n: int) -> list[Any]:
    """`n` distinct colours: tab10, then tab20 beyond ten algorithms."""
    from matplotlib import colormaps

    cmap = colormaps["tab10"] if n <= 10 else colormaps["tab20"]
    return [cmap(i % cmap.N) for i in range(n)]
