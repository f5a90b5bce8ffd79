"""lorl.plots: files are written with sane sizes and content, NaN gaps are handled, and
bad input gives clear errors."""

import sys

import numpy as np
import pytest

from lorl import plots, stats
from lorl.runs import ConfigError

TAB_BLUE = np.array([0x1F, 0x77, 0xB4]) / 255  # first colour of tab10
TAB_ORANGE = np.array([0xFF, 0x7F, 0x0E]) / 255


def _png_size(path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def _pixels_of(path, colour, tol=0.05) -> int:
    from matplotlib.image import imread

    image = imread(path)[..., :3]
    return int((np.abs(image - colour).max(axis=-1) < tol).sum())


@pytest.fixture(scope="module")
def curves():
    rng = np.random.default_rng(0)
    steps = np.linspace(0, 1e5, 40)
    adam = np.cumsum(rng.normal(0.1, 1, size=(6, 40)), axis=1)
    open_ = adam + 3
    open_[0, 5:15] = np.nan  # one run missing a stretch
    open_[:, 20:25] = np.nan  # every run missing: a gap in the line
    return {"adam": (steps, adam), "open": (steps[::2], open_[:, ::2])}


def test_return_curves_png(tmp_path, curves):
    path = plots.return_curves(curves, tmp_path / "sub" / "curves.png", title="CartPole")
    assert path == tmp_path / "sub" / "curves.png"
    width, height = _png_size(path)
    assert (width, height) == (768, 504)  # 6.4 x 4.2 inches at 120 dpi
    assert 10_000 < path.stat().st_size < 500_000
    # Both algorithms were drawn (lines and bands in their colours).
    assert _pixels_of(path, TAB_BLUE) > 200
    assert _pixels_of(path, TAB_ORANGE) > 200


@pytest.mark.parametrize("suffix", [".pdf", ".svg"])
def test_return_curves_other_formats(tmp_path, curves, suffix):
    path = plots.return_curves(curves, tmp_path / f"curves{suffix}")
    assert path.stat().st_size > 2_000
    expected = {".pdf": b"%PDF-", ".svg": b"<?xml"}[suffix]
    assert path.read_bytes()[:5] == expected


def test_all_nan_curve_is_drawn_without_error(tmp_path, curves):
    steps = np.arange(5.0)
    path = plots.return_curves(
        {**curves, "diverged": (steps, np.full((3, 5), np.nan))}, tmp_path / "c.png"
    )
    assert path.exists()


def test_curve_statistics_with_nan():
    returns = np.array(
        [
            [1.0, 2.0, np.nan, np.nan],
            [3.0, np.nan, np.nan, 5.0],
            [5.0, 4.0, np.nan, np.nan],
        ]
    )
    mean, stderr, count = plots.curve_statistics(returns)
    np.testing.assert_array_equal(count, [3, 2, 0, 1])
    np.testing.assert_allclose(mean[[0, 1, 3]], [3.0, 3.0, 5.0])
    assert np.isnan(mean[2]) and np.isnan(stderr[2])
    # step 0: std(1, 3, 5; ddof=1) = 2 -> 2 / sqrt(3); step 1: std(2, 4) = sqrt(2) -> 1
    np.testing.assert_allclose(stderr[[0, 1, 3]], [2 / np.sqrt(3), 1.0, 0.0])


def test_single_run_is_accepted(tmp_path):
    path = plots.return_curves(
        {"a": (np.arange(3.0), np.array([1.0, 2.0, 3.0]))}, tmp_path / "a.png"
    )
    assert path.exists()


def test_return_curve_errors(tmp_path, curves):
    with pytest.raises(ConfigError, match="suffix"):
        plots.return_curves(curves, tmp_path / "curves")
    with pytest.raises(ConfigError, match=r"shape \(n_runs, T\)"):
        plots.return_curves({"a": (np.arange(4.0), np.ones((2, 5)))}, tmp_path / "a.png")
    with pytest.raises(ConfigError, match="infinite"):
        plots.return_curves({"a": (np.arange(2.0), np.array([1.0, np.inf]))}, tmp_path / "a.png")
    with pytest.raises(ConfigError, match="non-empty"):
        plots.return_curves({}, tmp_path / "a.png")


@pytest.fixture(scope="module")
def aggregates():
    rng = np.random.default_rng(1)
    return stats.aggregate(
        {"adam": rng.normal(1, 0.2, (10, 3)), "open": rng.normal(1.3, 0.3, (10, 3))}, reps=100
    )


def test_interval_estimates(tmp_path, aggregates):
    path = plots.interval_estimates(aggregates, tmp_path / "iv.png", title="MinAtar")
    width, height = _png_size(path)
    # four panels of 2.6 inches + 1.2; 2 rows of 0.45 + 1.3 inches, at 120 dpi
    assert (width, height) == (1392, 264)
    # bars are drawn with alpha 0.75 over white
    assert _pixels_of(path, 0.75 * TAB_BLUE + 0.25) > 300
    assert _pixels_of(path, 0.75 * TAB_ORANGE + 0.25) > 300
    small = plots.interval_estimates(aggregates, tmp_path / "iqm.png", metrics=["iqm"])
    assert _png_size(small)[0] == int((2.6 + 1.2) * 120)


def test_interval_estimates_errors(tmp_path, aggregates):
    with pytest.raises(ConfigError, match="not in the aggregates"):
        plots.interval_estimates(aggregates, tmp_path / "iv.png", metrics=["probability"])
    with pytest.raises(ConfigError, match="non-empty"):
        plots.interval_estimates({}, tmp_path / "iv.png")


def test_no_pyplot_figures_left_open(tmp_path, curves):
    plots.return_curves(curves, tmp_path / "c.png")
    if "matplotlib.pyplot" in sys.modules:
        import matplotlib.pyplot as plt

        assert plt.get_fignums() == []


@pytest.mark.parametrize("n_points", [1, 2, 3])
def test_short_curves_are_drawn(tmp_path, n_points):
    # A run with one or two logged points (e.g. a tiny cpu-scale run) must still plot;
    # isolated finite points are drawn as markers.
    steps = np.arange(float(n_points))
    returns = np.arange(2.0 * n_points).reshape(2, n_points)
    path = plots.return_curves({"a": (steps, returns)}, tmp_path / "short.png")
    assert _pixels_of(path, TAB_BLUE) > 5


def test_heatmap_annotations(tmp_path):
    from matplotlib.image import imread

    grid = np.array([[1.0, 2.0], [np.nan, 4.0]])
    labels = (["a", "b"], ["x", "y"])
    plain = plots.heatmap(grid, *labels, tmp_path / "plain.png")
    notes = [["1.00\n[0.9, 1.1]", "2.00\n[1.5, 2.5]"], ["n/a", "4.00\n[3.0, 5.0]"]]
    annotated = plots.heatmap(grid, *labels, tmp_path / "ci.png", annotations=notes)
    assert _png_size(plain) == _png_size(annotated)
    # the interval text is drawn in place of the bare value
    assert not np.array_equal(imread(plain), imread(annotated))
    same = plots.heatmap(
        grid, *labels, tmp_path / "same.png", annotations=[["1.00", "2.00"], ["n/a", "4.00"]]
    )
    assert np.array_equal(imread(plain), imread(same))
    with pytest.raises(ConfigError, match="annotations do not match"):
        plots.heatmap(grid, *labels, tmp_path / "bad.png", annotations=[["1"]])
