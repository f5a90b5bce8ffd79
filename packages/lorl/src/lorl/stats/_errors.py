"""The error raised for scores that cannot be aggregated."""

from ..runs import LorlError


class ScoreError(LorlError, ValueError):
    """Scores are malformed: NaN or infinite values, wrong rank, mismatched task counts,
    or too few runs. NaN scores are never dropped silently: a diverged run must be
    reported, not averaged away."""
