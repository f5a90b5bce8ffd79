"""Named experiment presets: what each reproduces, its typed config per scale, and how it
runs inside a [`lorl.runs.RunDir`][]."""

import dataclasses
import difflib
from collections.abc import Callable, Mapping
from typing import Any

from ..runs import RunDir, UnknownExperimentError
from ..runs._errors import ConfigError

#: Scales every experiment offers: `cpu` runs on this kind of machine (2 CPU cores, minutes
#: to tens of minutes), `paper` is the papers' budget (GPUs, hours to days).
SCALES = ("cpu", "paper")


@dataclasses.dataclass(frozen=True, kw_only=True)
class Experiment:
    """One experiment of the Optim4RL or OPEN paper (or an analysis), as a named preset.

    **Fields:**

    - `name`: `"<paper>/<short-name>"`, e.g. `"optim4rl/pipeline-ablation"`.
    - `summary`: one line for `lorl list`.
    - `reproduces`: the figure/table it reproduces, e.g. `"Optim4RL Table 1"`.
    - `scales`: scale name (`"cpu"`, `"paper"`) -> a function returning that scale's
      config (a frozen dataclass; its fields document their defaults and sources).
    - `run`: `run(config, run_dir) -> results` does the work inside the run folder: long
      stages go through `run_dir.stage(...)` and checkpoint to `run_dir.checkpoint_dir(...)`
      so that [`lorl.runs.RunDir`][]-based resumption repeats nothing that finished; the
      returned dict (JSON-convertible) becomes `results.json`.
    - `report`: `report(run_dir) -> markdown` writes plots to `run_dir.plots_dir` and returns
      the Markdown report built from `results.json` (tables with the papers' numbers beside
      ours). `lorl report` calls it; `lorl run` calls it at the end.
    - `validate`: `validate(config)` raises [`lorl.runs.ConfigError`][] for a config that
      cannot run here (e.g. a population not divisible by the device count), before any
      compute. Optional.
    """

    name: str
    summary: str
    reproduces: str
    scales: Mapping[str, Callable[[], Any]]
    run: Callable[[Any, RunDir], Mapping[str, Any]]
    report: Callable[[RunDir], str]
    validate: Callable[[Any], None] | None = None

    def __post_init__(self):
        if "cpu" not in self.scales:
            raise ValueError(f"experiment {self.name!r} must define a 'cpu' scale")
        unknown = set(self.scales) - set(SCALES)
        if unknown:
            raise ValueError(f"experiment {self.name!r}: unknown scales {sorted(unknown)}")

    def config(self, scale: str = "cpu") -> Any:
        """The default config at `scale`.

        **Raises:**

        [`lorl.runs.ConfigError`][] if this experiment has no such scale.
        """
        if scale not in self.scales:
            raise ConfigError(
                f"experiment {self.name!r} has no scale {scale!r}; "
                f"available: {', '.join(self.scales)}"
            )
        return self.scales[scale]()

    @property
    def config_class(self) -> type:
        return type(self.scales["cpu"]())


_REGISTRY: dict[str, Experiment] = {}


def register(experiment: Experiment) -> Experiment:
    """Add `experiment` to the registry (its name must be new).

    **Returns:**

    `experiment`, so modules can write `FOO = register(Experiment(...))`.
    """
    if experiment.name in _REGISTRY:
        raise ValueError(f"experiment {experiment.name!r} is registered twice")
    _REGISTRY[experiment.name] = experiment
    return experiment


def get_experiment(name: str) -> Experiment:
    """The experiment called `name`.

    **Raises:**

    [`lorl.runs.UnknownExperimentError`][] naming the closest registered names.
    """
    _load_catalogue()
    if name not in _REGISTRY:
        close = difflib.get_close_matches(name, list(_REGISTRY), n=3, cutoff=0.4)
        close += [n for n in _REGISTRY if name and name in n and n not in close][:3]
        hint = f" Did you mean {' or '.join(close)}?" if close else ""
        raise UnknownExperimentError(
            f"unknown experiment {name!r}.{hint} `lorl list` shows all {len(_REGISTRY)}."
        )
    return _REGISTRY[name]


def experiments() -> list[Experiment]:
    """All registered experiments, sorted by name."""
    _load_catalogue()
    return [_REGISTRY[n] for n in sorted(_REGISTRY)]


#: Every module of `lorl.experiments` that defines experiments, in `lorl list`'s source
#: order. A module left out here would silently drop its experiments: a test walks the
#: package and fails on any module that defines an `Experiment` and is not listed.
CATALOGUE = (
    "optim4rl._from_scratch",
    "optim4rl._pipeline_ablation",
    "optim4rl._generalisation",
    "optim4rl._robustness",
    "optim4rl._brax",
    "open._single_task",
    "open._multi_task",
    "open._gridworld",
    "open._feature_ablations",
    "open._deep_sea",
    "open._published",
    "analysis._gradient_distributions",
    "analysis._wasserstein",
    "analysis._identity",
    "_quickstart",
    "analysis._open_behaviour",
    "study._comparison",
    "study._sensitivity",
    "study._sensitivity_ant",
    "study._collapse",
)


def _load_catalogue() -> None:
    # The catalogue modules register on import; importing them lazily keeps `import lorl`
    # light and lets them import the registry without a cycle.
    import importlib

    for module in CATALOGUE:
        importlib.import_module(f"{__package__}.{module}")
