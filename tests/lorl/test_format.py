"""`lorl._format.fmt`, the one number formatter of the reports: hand-written expectations."""

import math

import numpy as np

from lorl._format import fmt


def test_decimals_and_significant_digits():
    assert fmt(3.14159) == "3.142"
    assert fmt(3.14159, 2) == "3.14"
    assert fmt(np.float32(0.5), 1) == "0.5"
    assert fmt(np.asarray(2.0)) == "2.000"
    assert fmt(7.1583e-4, 3, significant=True) == "0.000716"
    assert fmt(12345.0, 2, significant=True) == "1.2e+04"


def test_missing_non_finite_and_text():
    assert fmt(None) == "–"
    assert fmt(math.nan) == "nan"
    assert fmt(float("inf")) == "inf"
    assert fmt(-math.inf, 2) == "-inf"
    assert fmt("n/a") == "n/a"
    assert fmt([1, 2]) == "[1, 2]"
