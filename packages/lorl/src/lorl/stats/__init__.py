"""Statistics of RL results after Agarwal et al. (2021) (rliable's method).

Interquartile mean (IQM), mean, median and optimality gap over runs and tasks, with
stratified bootstrap confidence intervals; normalised (e.g. Adam-normalised) scores;
probability of improvement; Markdown tables. See `docs/lorl/statistics.md`.
"""

from ._aggregate import (
    METRIC_LABELS as METRIC_LABELS,
    METRICS as METRICS,
    aggregate as aggregate,
    check_scores as check_scores,
    probability_of_improvement as probability_of_improvement,
)
from ._collapse import collapsed as collapsed
from ._errors import ScoreError as ScoreError
from ._interval import Interval as Interval
from ._normalise import normalise as normalise
from ._table import markdown_table as markdown_table
