"""Optimizer names `lorl.evaluation` accepts: the papers' tuned baselines, published OPEN
weights, saved learned optimizers, and any optax transformation."""

import difflib
import json
import os
import pathlib
from collections.abc import Mapping
from typing import Any

import jax
import optax

import lorl_agents as la
import lorl_optim as lo

from ..runs import ConfigError
from ._envs import EnvSpec
from ._tuning import TUNABLE, LearningRateSearch

#: Adam for CartPole-v1 (no tuned values in either paper): PureJaxRL's lr 2.5e-4, annealed.
CARTPOLE_ADAM_LR = 2.5e-4

BASELINE_NAMES = ("adam", "rmsprop", "lion", "sgd")
#: The sidecar of the format before `lorl_optim.save` (arrays only, plus this JSON with
#: the class and constructor arguments); such files still load.
SIDECAR_SUFFIX = ".json"


def save_optimizer(
    path: str | os.PathLike[str], optimizer: lo.AbstractLearnedOptimizer, **kwargs: Any
) -> pathlib.Path:
    """Save a learned optimizer so that `lorl evaluate PATH` and
    [`lorl.evaluation.load_optimizer`][] can rebuild it: one self-describing file
    (`lorl_optim.save`: registered class, constructor configuration, meta-parameters).

    **Arguments:**

    - `path`: the file to write (conventionally `*.eqx`).
    - `optimizer`: a learned optimizer of a registered class
      (`lorl_optim.registered_optimizers()`).
    - `kwargs`: constructor arguments to check against `optimizer.config()` (optional;
      older callers passed them for the sidecar the previous format needed).

    **Returns:**

    The path of the file.

    **Raises:**

    [`lorl.runs.ConfigError`][] for an unregistered class or `kwargs` that disagree with
    the optimizer's own configuration.
    """
    try:
        lo.optimizer_name(optimizer)
    except KeyError:
        names = ", ".join(sorted(lo.registered_optimizers()))
        raise ConfigError(
            f"cannot save a {type(optimizer).__name__}; registered: {names}"
        ) from None
    config = optimizer.config()
    wrong = {k: v for k, v in kwargs.items() if k not in config or config[k] != v}
    if wrong:
        raise ConfigError(f"save_optimizer: {wrong} disagree with the optimizer's {config}")
    return lo.save(path, optimizer)


#: The file-name ending of an untrained initialisation an experiment saves beside its
#: meta-trained optimizer (the control); not counted when a run folder is the optimizer.
INIT_SUFFIX = "-init.eqx"


def _is_saved(path: pathlib.Path) -> bool:
    return lo.is_saved_optimizer(path) or path.with_name(path.name + SIDECAR_SUFFIX).is_file()


def _saved_files(folder: pathlib.Path) -> list[pathlib.Path]:
    return sorted(
        p for p in folder.rglob("*.eqx") if _is_saved(p) and not p.name.endswith(INIT_SUFFIX)
    )


def load_optimizer(path: str | os.PathLike[str]) -> lo.AbstractLearnedOptimizer:
    """Load a learned optimizer written by [`lorl.evaluation.save_optimizer`][].

    **Arguments:**

    - `path`: the meta-parameter file, or a run folder holding exactly one saved optimizer
      (a run folder with several names them in the error: pass one of their paths). The
      untrained initialisations experiments save as controls (`*-init.eqx`) are not
      counted; pass such a file by its path.

    **Returns:**

    The optimizer with the saved meta-parameters.

    **Raises:**

    [`lorl.runs.ConfigError`][] if nothing loadable is there.
    """
    path = pathlib.Path(path)
    if path.is_dir():
        found = _saved_files(path)
        if not found:
            raise ConfigError(f"{path} holds no saved learned optimizer (*.eqx with a .json)")
        if len(found) > 1:
            listing = ", ".join(str(p) for p in found)
            raise ConfigError(f"{path} holds {len(found)} learned optimizers; pick one: {listing}")
        path = found[0]
    if lo.is_saved_optimizer(path):
        try:
            return lo.load(path)
        except KeyError as e:
            raise ConfigError(f"{path}: {e.args[0]}") from None
    # the previous format: arrays only, the class and constructor arguments in a sidecar
    sidecar = path.with_name(path.name + SIDECAR_SUFFIX)
    if not path.is_file() or not sidecar.is_file():
        raise ConfigError(
            f"{path} is not a saved learned optimizer (neither a lorl_optim.save file nor "
            f"the previous format's file and {sidecar.name})"
        )
    meta = json.loads(sidecar.read_text())
    try:
        like = lo.build(meta.get("class", ""), dict(meta.get("kwargs", {})))
    except KeyError as e:
        raise ConfigError(f"{sidecar}: {e.args[0]}") from None
    return lo.load_meta_parameters(path, like)


def _closest(name: str, options: list[str]) -> str:
    close = difflib.get_close_matches(name, options, n=3, cutoff=0.5)
    return f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""


def _baseline(kind: str, spec: EnvSpec, config: Any) -> optax.GradientTransformation:
    """A tuned baseline (the OPEN paper's values) for one PPO environment."""
    if spec.name == "CartPole-v1" and kind == "adam":
        lr = lo.baselines.linear_annealing(
            CARTPOLE_ADAM_LR, config.optimizer_steps, config.steps_per_update
        )
        return optax.adam(lr, eps=1e-5)
    tables: dict[str, Mapping[str, Any]] = {
        "adam": lo.baselines.ADAM,
        "rmsprop": lo.baselines.RMSPROP,
        "lion": lo.baselines.LION,
    }
    if kind not in tables or spec.preset is None or spec.preset not in tables[kind]:
        have = ", ".join(tables[kind]) if kind in tables else "none"
        raise ConfigError(
            f"no tuned {kind} values for {spec.name!r} (the OPEN paper tunes: {have}); give a "
            f"learning rate instead, e.g. '{kind}:3e-4'"
        )
    build = {"adam": lo.baselines.adam, "rmsprop": lo.baselines.rmsprop, "lion": lo.baselines.lion}
    return build[kind](
        spec.preset, total_steps=config.optimizer_steps, steps_per_update=config.steps_per_update
    )


def _with_lr(kind: str, lr: "float | jax.Array") -> optax.GradientTransformation:
    """`kind` with learning rate `lr` (a number, or a traced scalar inside a vmapped search)."""
    return {
        "adam": optax.adam,
        "rmsprop": optax.rmsprop,
        "sgd": optax.sgd,
        "lion": optax.lion,
    }[kind](lr)


#: Regularisation suffixes of an optimizer name: `+l2=C` (L2 on the gradients) and
#: `+wd=D` (decoupled weight decay), see `lorl_optim.regularised`.
REGULARISERS = {"l2": "l2", "wd": "weight_decay"}


def _regularised(text: str, spec: EnvSpec, config: Any) -> tuple[Any, str]:
    """`NAME+l2=C+wd=D`: the optimizer `NAME` wrapped by `lorl_optim.regularised`."""
    base, *mods = (part.strip() for part in text.strip().split("+"))
    kwargs: dict[str, float] = {}
    for mod in mods:
        key, _, value = mod.partition("=")
        if key not in REGULARISERS:
            raise ConfigError(
                f"{text!r}: unknown regulariser {key!r}; use +l2=<c> (L2 on the gradients) "
                "or +wd=<d> (decoupled weight decay)"
            )
        try:
            kwargs[REGULARISERS[key]] = float(value)
        except ValueError:
            raise ConfigError(f"{text!r}: {value!r} is not a number") from None
        if not kwargs[REGULARISERS[key]] >= 0:
            raise ConfigError(f"{text!r}: {key} must be >= 0")
    opt, label = resolve_optimizer(base, spec, config)
    if isinstance(opt, LearningRateSearch):
        raise ConfigError(
            f"{text!r}: a regularised baseline needs a fixed learning rate (the grid search "
            f"tunes the plain one), e.g. '{opt.kind}:3e-4+{mods[0]}'"
        )
    suffix = ", ".join(f"{k} {v:g}" for k, v in kwargs.items())
    return lo.regularised(opt, **kwargs), f"{label} + {suffix}"


def resolve_optimizer(optimizer: Any, spec: EnvSpec, config: Any) -> tuple[Any, str]:
    """The optimizer object and its label for one environment (no compute).

    **Arguments:**

    - `optimizer`: a name (`"adam"`, `"rmsprop"`, `"lion"`: the papers' tuned baselines for
      the environment; `"adam:tuned"` etc.: a learning-rate grid search; `"adam:3e-4"`
      etc.: that constant learning rate; `"open:<name>"`: a published OPEN optimizer; a
      path: a saved learned optimizer; any of these followed by `+l2=C` and/or `+wd=D`:
      with L2 regularisation / decoupled weight decay, `lorl_optim.regularised`), a
      learned optimizer module, or an optax transformation.
    - `spec`: the environment.
    - `config`: the agent configuration (its schedule length anneals the presets).

    **Returns:**

    `(optimizer, label)`. A baseline that must be tuned by grid search first (`"<name>:tuned"`,
    and `"adam"` / `"rmsprop"` for A2C on the Optim4RL gridworlds) comes back as a
    [`lorl.evaluation.LearningRateSearch`][], which [`lorl.evaluation.evaluate`][] runs.
    """
    if isinstance(optimizer, lo.AbstractLearnedOptimizer):
        return optimizer, type(optimizer).__name__
    if isinstance(optimizer, optax.GradientTransformation):
        return optimizer, "optax"
    if isinstance(optimizer, os.PathLike):
        optimizer = os.fspath(optimizer)
    if not isinstance(optimizer, str):
        raise ConfigError(
            f"optimizer must be a name, a path, a lorl_optim learned optimizer or an optax "
            f"transformation; got {type(optimizer).__name__}"
        )
    if "+" in optimizer and not os.path.exists(optimizer.strip()):
        return _regularised(optimizer, spec, config)
    text = optimizer.strip()
    kind, _, arg = text.partition(":")
    kind = kind.lower()
    if kind == "open":
        names = list(lo.pretrained_open_names())
        try:
            name = lo.pretrained_open_name(arg)
        except ValueError:
            raise ConfigError(
                f"no published OPEN optimizer {arg!r}.{_closest(arg, names)} "
                f"Available: {', '.join('open:' + n for n in names)} (or an environment's "
                "other spelling: open:space_invaders, open:Breakout-MinAtar)"
            ) from None
        return lo.load_open(name), f"OPEN ({name})"
    if kind in BASELINE_NAMES:
        if arg.strip().lower() == "tuned":
            if kind not in TUNABLE:
                raise ConfigError(f"cannot tune {kind!r}; tunable: {', '.join(TUNABLE)}")
            return LearningRateSearch(kind), f"{kind} (tuned)"
        if arg:
            try:
                lr = float(arg)
            except ValueError:
                raise ConfigError(f"{text!r}: {arg!r} is not a learning rate") from None
            if not lr > 0:
                raise ConfigError(f"{text!r}: the learning rate must be > 0")
            return _with_lr(kind, lr), f"{kind} (lr {lr:g})"
        if kind == "sgd":
            raise ConfigError("neither paper tunes SGD; give a learning rate, e.g. 'sgd:0.01'")
        if isinstance(config, la.A2CConfig):
            if kind not in ("adam", "rmsprop"):
                raise ConfigError(
                    f"no tuned {kind} for A2C on the Optim4RL gridworlds (the paper tunes "
                    f"Adam and RMSProp only); use '{kind}:tuned' or a learning rate, e.g. "
                    f"'{kind}:3e-3'"
                )
            # Optim4RL Appendix C.3 tunes them per task by a grid search (winners not
            # printed): `evaluate` runs that search at the evaluation's own budget.
            return LearningRateSearch(kind), f"{kind} (tuned)"
        return _baseline(kind, spec, config), f"{kind} (tuned)"
    if os.path.exists(text):
        opt = load_optimizer(text)
        return opt, f"{type(opt).__name__} ({pathlib.Path(text).name})"
    options = [*BASELINE_NAMES, *("open:" + n for n in lo.pretrained_open_names())]
    raise ConfigError(
        f"unknown optimizer {text!r}.{_closest(text, options)} Use adam, rmsprop, lion "
        "(tuned), adam:tuned (grid search), adam:<lr> / rmsprop:<lr> / sgd:<lr> / lion:<lr>, "
        "open:<name> (published: "
        f"{', '.join(lo.pretrained_open_names())}), or the path of a saved learned optimizer "
        "(or of a run folder holding one)"
    )
