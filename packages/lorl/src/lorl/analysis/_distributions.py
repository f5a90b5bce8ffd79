"""Gradient distributions: log-magnitude histograms (Optim4RL Figures 1, 5-6, 8) and the
Wasserstein distance of each training stage to the whole run (Appendix E, Table 11)."""

from collections.abc import Mapping, Sequence
from typing import Literal

import numpy as np
import scipy.stats
from jaxtyping import Float

from ._collect import GradientSample
from ._errors import AnalysisError

#: Optim4RL plots `log10(|g| + 1e-16)` (Figure 8 caption; Section 5.2 truncates at -16).
LOG_EPS = 1e-16
#: Histogram range of log10 magnitudes: -16 (zeros) to 1 (|g| = 10).
LOG_RANGE = (-16.0, 1.0)


def log10_magnitude(g: Float[np.ndarray, "..."], eps: float = LOG_EPS) -> Float[np.ndarray, "..."]:
    """`log10(|g| + eps)`, the x-axis of Optim4RL's gradient histograms (zeros map to
    `log10(eps)` = -16).

    **Arguments:**

    - `g`: gradient values.
    - `eps`: the offset (1e-16 in the paper).

    **Returns:**

    An array of the same shape (float64).
    """
    return np.log10(np.abs(np.asarray(g, np.float64)) + eps)


def histogram_mass(
    values: Float[np.ndarray, " n"],
    bins: int = 34,
    value_range: tuple[float, float] = LOG_RANGE,
    weights: Float[np.ndarray, " n"] | None = None,
) -> tuple[Float[np.ndarray, " bins"], Float[np.ndarray, " bins+1"]]:
    """The probability mass in each of `bins` equal bins over `value_range` (the y-axis of
    Optim4RL Figure 1). Values outside the range are counted in the first or last bin.

    **Arguments:**

    - `values`: e.g. [`lorl.analysis.log10_magnitude`][] of a stage sample.
    - `bins`: number of bins (default: half-decade bins over [-16, 1]).
    - `value_range`: `(low, high)`.
    - `weights`: optional non-negative weight per value.

    **Returns:**

    `(mass, edges)`: `mass` sums to 1; `edges` has `bins + 1` entries.
    """
    values = np.asarray(values, np.float64).ravel()
    if values.size == 0:
        raise AnalysisError("cannot histogram an empty sample")
    if bins < 1 or not value_range[0] < value_range[1]:
        raise AnalysisError(f"need bins >= 1 and low < high; got {bins}, {value_range}")
    low, high = value_range
    # Clip into the closed range; the top edge belongs to the last bin in np.histogram.
    clipped = np.clip(values, low, high)
    counts, edges = np.histogram(clipped, bins=bins, range=(low, high), weights=weights)
    total = counts.sum()
    if total <= 0:
        raise AnalysisError("the weights sum to zero")
    return counts / total, edges


def stage_indices(n_stages: int) -> dict[str, int]:
    """Beginning, middle and end stage of `n_stages` parts, as Optim4RL Appendix C.2
    picks them (first, sixteenth and last of 30 parts: `n_stages // 2`).

    **Returns:**

    `{"beginning": 0, "middle": n_stages // 2, "end": n_stages - 1}`.
    """
    if n_stages < 1:
        raise AnalysisError(f"n_stages must be >= 1, got {n_stages}")
    return {"beginning": 0, "middle": n_stages // 2, "end": n_stages - 1}


def wasserstein_to_whole(
    sample: GradientSample,
    transform: Literal["raw", "log10"] = "raw",
    stages: Mapping[str, int] | None = None,
) -> dict[str, float]:
    """Wasserstein-1 distance between each chosen stage's gradient distribution and the
    whole run's (`scipy.stats.wasserstein_distance`; the whole run is the union of the
    stage samples weighted by stage size, see [`lorl.analysis.GradientSample.whole_run`][]).

    **Arguments:**

    - `sample`: the collected gradients.
    - `transform`: `"raw"` compares the gradient values `g` themselves (the magnitudes of
      Optim4RL Table 11, ~1e-4, are those of raw gradients), `"log10"` compares
      `log10(|g| + 1e-16)` (the scale of the paper's histograms).
    - `stages`: names -> stage indices; default [`lorl.analysis.stage_indices`][].

    **Returns:**

    `{name: distance}`.
    """
    if transform not in ("raw", "log10"):
        raise AnalysisError(f"transform must be 'raw' or 'log10', got {transform!r}")
    f = (lambda x: np.asarray(x, np.float64)) if transform == "raw" else log10_magnitude
    if stages is None:
        stages = stage_indices(sample.n_stages)
    whole, weights = sample.whole_run()
    out = {}
    for name, index in stages.items():
        values = sample.stage(index)
        if values.size == 0:
            raise AnalysisError(f"stage {name!r} ({index}) has no collected gradients")
        out[name] = float(scipy.stats.wasserstein_distance(f(values), f(whole), None, weights))
    return out


def plot_stage_histograms(
    samples: Mapping[str, Float[np.ndarray, " n"]],
    path: str,
    title: str = "",
    bins: int = 34,
) -> None:
    """One panel per named sample: histogram (probability mass) of `log10(|g| + 1e-16)`,
    as Optim4RL Figure 1 (beginning, middle, end of training).

    **Arguments:**

    - `samples`: panel title -> gradient values.
    - `path`: PNG file to write.
    - `title`: figure title.
    - `bins`: bins over [-16, 1].
    """
    from matplotlib.figure import Figure

    n = len(samples)
    fig = Figure(figsize=(3.6 * n, 3.0))
    axes = fig.subplots(1, n, sharey=True, squeeze=False)
    for ax, (name, values) in zip(axes[0], samples.items(), strict=True):
        mass, edges = histogram_mass(log10_magnitude(values), bins)
        ax.bar(edges[:-1], mass, width=np.diff(edges), align="edge", color="tab:blue", alpha=0.8)
        ax.set_title(name)
        ax.set_xlabel(r"$\log_{10}(|g| + 10^{-16})$")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("probability mass")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def plot_overlay(
    reference: tuple[str, Float[np.ndarray, " n"]],
    others: Sequence[tuple[str, Float[np.ndarray, " n"], Float[np.ndarray, " n"] | None]],
    path: str,
    title: str = "",
    bins: int = 34,
) -> None:
    """Overlaid histograms of `log10(|g| + 1e-16)`: one task against others, as Optim4RL
    Figures 5-6 (a Brax task's agent-gradients against the gridworlds').

    **Arguments:**

    - `reference`: `(label, values)` of the task of interest.
    - `others`: `(label, values, weights or None)` per comparison distribution.
    - `path`: PNG file to write.
    - `title`: figure title.
    - `bins`: bins over [-16, 1].
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5.5, 3.4))
    ax = fig.subplots()
    label, values = reference
    mass, edges = histogram_mass(log10_magnitude(values), bins)
    ax.stairs(mass, edges, fill=True, alpha=0.45, label=label)
    for other_label, other_values, weights in others:
        mass, edges = histogram_mass(log10_magnitude(other_values), bins, weights=weights)
        ax.stairs(mass, edges, fill=True, alpha=0.45, label=other_label)
    ax.set_xlabel(r"$\log_{10}(|g| + 10^{-16})$")
    ax.set_ylabel("probability mass")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def overlap(
    a: Float[np.ndarray, " n"],
    b: Float[np.ndarray, " m"],
    bins: int = 34,
    b_weights: Float[np.ndarray, " m"] | None = None,
) -> float:
    """Overlap of two log-magnitude histograms, `sum(min(p_a, p_b))` in [0, 1] (1: the
    same histogram). A number for the "support overlap" Optim4RL Section 6.2 reads off
    Figures 5-6 by eye.

    **Arguments:**

    - `a`, `b`: gradient values (raw; the log10 magnitude is taken here).
    - `bins`: bins over [-16, 1].
    - `b_weights`: optional weights of `b`.

    **Returns:**

    The overlap.
    """
    pa, _ = histogram_mass(log10_magnitude(a), bins)
    pb, _ = histogram_mass(log10_magnitude(b), bins, weights=b_weights)
    return float(np.minimum(pa, pb).sum())
