"""Errors of the gradient analyses."""

from ..runs import LorlError


class AnalysisError(LorlError, ValueError):
    """Bad input to an analysis (empty samples, impossible sizes, unknown conditions)."""
