"""The learned-optimizer registry (name -> class) and one self-describing, versioned file
format for a learned optimizer: its class, its constructor configuration and its
meta-parameters, so that `load(path)` rebuilds it with no class argument and no sidecar."""

import json
import os
import pathlib
from typing import Any, BinaryIO

import equinox as eqx
import jax
import numpy as np

from ._base import AbstractLearnedOptimizer

#: First bytes of a file written by `save` (the format's name and major version).
MAGIC = b"LORLOPT1\n"
#: Version of the header written by `save`; `load` reads this version and older ones.
FORMAT_VERSION = 1

_REGISTRY: dict[str, type[AbstractLearnedOptimizer]] = {}


def register(name: str, cls: type[AbstractLearnedOptimizer]) -> type[AbstractLearnedOptimizer]:
    """Register a learned-optimizer class under `name`, so `save`/`load`, `lorl evaluate`
    and the experiments can name it.

    **Arguments:**

    - `name`: a short lower-case name (`"optim4rl"`); unique.
    - `cls`: a subclass of [`lorl_optim.AbstractLearnedOptimizer`][] whose `config()`
      returns its constructor's keyword arguments (all but `key`).

    **Returns:**

    `cls` (so it can be used as `register("mine", Mine)` after the class).

    **Raises:**

    `ValueError` for a taken name (or class under another name), `TypeError` for a class
    that is not a learned optimizer.
    """
    if not (isinstance(cls, type) and issubclass(cls, AbstractLearnedOptimizer)):
        raise TypeError(f"register needs an AbstractLearnedOptimizer subclass, got {cls!r}")
    if not name or name != name.strip().lower():
        raise ValueError(f"optimizer names are non-empty lower-case strings, got {name!r}")
    if name in _REGISTRY and _REGISTRY[name] is not cls:
        raise ValueError(f"{name!r} is already registered for {_REGISTRY[name].__name__}")
    for other, c in _REGISTRY.items():
        if c is cls and other != name:
            raise ValueError(f"{cls.__name__} is already registered as {other!r}")
    _REGISTRY[name] = cls
    return cls


def registered_optimizers() -> dict[str, type[AbstractLearnedOptimizer]]:
    """Every registered learned optimizer: name -> class (a copy)."""
    return dict(_REGISTRY)


def optimizer_class(name: str) -> type[AbstractLearnedOptimizer]:
    """The class registered as `name` (also accepted: the class's own name, e.g.
    `"Optim4RL"`, as older files record it).

    **Raises:**

    `KeyError` naming the registered optimizers.
    """
    if name in _REGISTRY:
        return _REGISTRY[name]
    for cls in _REGISTRY.values():
        if cls.__name__ == name:
            return cls
    raise KeyError(f"no learned optimizer {name!r}; registered: {', '.join(sorted(_REGISTRY))}")


def optimizer_name(optimizer: AbstractLearnedOptimizer) -> str:
    """The registered name of `optimizer`'s class.

    **Raises:**

    `KeyError` if the class is not registered.
    """
    for name, cls in _REGISTRY.items():
        if type(optimizer) is cls:
            return name
    raise KeyError(
        f"{type(optimizer).__name__} is not registered; use lorl_optim.register(name, cls)"
    )


def _plain(value: Any) -> Any:
    """A configuration value as JSON (tuples as lists, NumPy scalars as Python numbers)."""
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise TypeError(f"configuration value {value!r} cannot be saved (not JSON)")


def _header(optimizer: AbstractLearnedOptimizer) -> dict[str, Any]:
    from . import __version__

    return {
        "format": "lorl_optim learned optimizer",
        "version": FORMAT_VERSION,
        "class": optimizer_name(optimizer),
        "config": {k: _plain(v) for k, v in optimizer.config().items()},
        "lorl_optim": __version__,
    }


def save(path: str | os.PathLike[str], optimizer: AbstractLearnedOptimizer) -> pathlib.Path:
    """Write `optimizer` to one self-describing file: its registered class name, its
    constructor configuration (`optimizer.config()`) and its meta-parameters.

    **Arguments:**

    - `path`: the file to write (conventionally `*.eqx`); parent folders are created.
    - `optimizer`: a registered learned optimizer (one, not a vmapped population).

    **Returns:**

    The path written.

    **Raises:**

    `KeyError` for an unregistered class; `ValueError` for non-finite meta-parameters
    (a diverged meta-training must not be saved as if it were an optimizer) or a
    learning-rate schedule (code, not data).
    """
    if callable(getattr(optimizer, "learning_rate", None)):
        raise ValueError(
            "a learning-rate schedule (a Python callable) cannot be saved; save the optimizer "
            "with a float learning rate and apply the schedule after loading "
            "(optimizer.with_learning_rate(schedule))"
        )
    for leaf in jax.tree.leaves(eqx.filter(optimizer, eqx.is_array)):
        if not np.all(np.isfinite(np.asarray(leaf))):
            raise ValueError("the optimizer's meta-parameters contain NaN or inf; not saved")
    header = json.dumps(_header(optimizer), sort_keys=True).encode()
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(MAGIC)
        f.write(len(header).to_bytes(8, "little"))
        f.write(header)
        eqx.tree_serialise_leaves(f, optimizer)
    os.replace(tmp, path)  # atomic: a killed save leaves the old file or none
    return path


def is_saved_optimizer(path: str | os.PathLike[str]) -> bool:
    """Whether `path` is a file written by `save` (checks its first bytes only)."""
    try:
        with open(path, "rb") as f:
            return f.read(len(MAGIC)) == MAGIC
    except (OSError, IsADirectoryError):
        return False


def _read_header(f: BinaryIO, path: Any) -> dict[str, Any]:
    if f.read(len(MAGIC)) != MAGIC:
        raise ValueError(f"{os.fspath(path)!r} was not written by lorl_optim.save")
    size = int.from_bytes(f.read(8), "little")
    header = json.loads(f.read(size).decode())
    if int(header.get("version", 0)) > FORMAT_VERSION:
        raise ValueError(
            f"{os.fspath(path)!r} has format version {header['version']}; this lorl_optim "
            f"reads up to {FORMAT_VERSION} (upgrade lorl-optim)"
        )
    return header


def build(name: str, config: dict[str, Any], *, key: Any = None) -> AbstractLearnedOptimizer:
    """A fresh optimizer of the registered class `name` with constructor configuration
    `config` (lists become tuples, as JSON stores them).

    **Arguments:**

    - `name`: a registered name (or class name, see `optimizer_class`).
    - `config`: constructor keyword arguments except `key`.
    - `key`: the PRNG key of its initial meta-parameters (default `jax.random.key(0)`).

    **Returns:**

    The optimizer.
    """
    kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in config.items()}
    cls: Any = optimizer_class(name)  # every registered class takes a keyword-only key
    return cls(**kwargs, key=jax.random.key(0) if key is None else key)


def load(path: str | os.PathLike[str]) -> AbstractLearnedOptimizer:
    """Read a learned optimizer written by `save`: no class argument, no sidecar file.

    **Arguments:**

    - `path`: the file.

    **Returns:**

    The optimizer, of its saved class and configuration, with its saved meta-parameters.

    **Raises:**

    `ValueError` for a file of another format or a newer version, or non-finite
    meta-parameters; `KeyError` for a class that is not registered here.
    """
    with open(path, "rb") as f:
        header = _read_header(f, path)
        like = build(header["class"], header["config"])
        loaded = eqx.tree_deserialise_leaves(f, like)
    for leaf in jax.tree.leaves(eqx.filter(loaded, eqx.is_array)):
        if not np.all(np.isfinite(np.asarray(leaf))):
            raise ValueError(f"Meta-parameters in {os.fspath(path)!r} contain NaN or inf.")
    return loaded


def read_header(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The header of a file written by `save`: `format`, `version`, `class`, `config`,
    `lorl_optim` (the version that wrote it)."""
    with open(path, "rb") as f:
        return _read_header(f, path)
