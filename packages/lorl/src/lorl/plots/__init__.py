"""Plots of RL results with Matplotlib (Agg canvas; never opens a window): return curves
with standard-error bands, rliable-style interval estimates and performance profiles."""

from ._curves import curve_statistics as curve_statistics, return_curves as return_curves
from ._heatmap import heatmap as heatmap
from ._intervals import interval_estimates as interval_estimates
from ._profiles import performance_profiles as performance_profiles
