"""The published OPEN meta-parameters, and saving/loading meta-parameters."""

import importlib.resources
import os
import pathlib
from typing import TypeVar

import equinox as eqx
import jax
import numpy as np

from ._base import AbstractLearnedOptimizer
from ._baselines import ENV_ALIASES
from ._open import DEFAULT_CHUNK, OPEN

_T = TypeVar("_T", bound=AbstractLearnedOptimizer)

# Published OPEN weights (Goldie et al. 2024; Apache-2.0, see weights/NOTICE):
# name -> (file, size). "multi" is the larger multi-task optimizer (F = 16, H = 32).
PRETRAINED_OPEN = {
    "ant": ("ant_OPEN.npy", "default"),
    "asterix": ("asterix_OPEN.npy", "default"),
    "breakout": ("breakout_OPEN.npy", "default"),
    "freeway": ("freeway_OPEN.npy", "default"),
    "gridworld": ("gridworld_OPEN.npy", "default"),
    "spaceinvaders": ("spaceinvaders_OPEN.npy", "default"),
    "multi": ("multi_OPEN.npy", "larger"),
}


#: Environment spellings -> the published file's name. lorl's canonical environment name is
#: `space_invaders` (gymnax: `SpaceInvaders-MinAtar`); the authors' file is `spaceinvaders`.
_PUBLISHED_ALIASES = {"space_invaders": "spaceinvaders"}


def pretrained_open_names() -> tuple[str, ...]:
    """The published optimizers' own names (`load_open` also takes each environment's other
    spellings: `space_invaders`, `Breakout-MinAtar`, ...)."""
    return tuple(PRETRAINED_OPEN)


def pretrained_open_name(name: str) -> str:
    """The published optimizer's own name for `name`, any spelling of its environment
    (`"space_invaders"`, `"spaceinvaders"` and `"SpaceInvaders-MinAtar"` all give
    `"spaceinvaders"`).

    **Raises:**

    `ValueError` naming the available optimizers.
    """
    key = ENV_ALIASES.get(name, name) if isinstance(name, str) else name
    key = _PUBLISHED_ALIASES.get(key, key)
    if key not in PRETRAINED_OPEN:
        raise ValueError(
            f"No published OPEN weights named {name!r}; available: {', '.join(PRETRAINED_OPEN)} "
            "(or an environment's other spelling, e.g. space_invaders, Breakout-MinAtar)."
        )
    return key


def load_open(name: str, *, chunk_size: int | None = None) -> OPEN:
    """The published OPEN optimizer trained on environment `name`.

    **Arguments:**

    - `name`: one of `ant`, `asterix`, `breakout`, `freeway`, `gridworld`,
      `spaceinvaders` (default size, 1,211 meta-parameters) or `multi` (the larger
      multi-task optimizer, 3,571 meta-parameters); an environment's other spellings
      work too (`space_invaders`, `SpaceInvaders-MinAtar`; `pretrained_open_name`).
    - `chunk_size`: optional column chunk of the flat computation (speed only).

    **Returns:**

    An `OPEN` (all features and stochasticity on, shared actor/critic meta-parameters).
    """
    filename, size = PRETRAINED_OPEN[pretrained_open_name(name)]
    with (importlib.resources.files("lorl_optim") / "weights" / filename).open("rb") as f:
        vector = np.load(f)
    hidden_size, mlp_width = (16, 32) if size == "larger" else (8, 16)  # Appendix B.4/B.5
    # Placeholder meta-parameters from a fixed key; `from_flat` replaces all of them.
    template = OPEN(
        hidden_size=hidden_size,
        mlp_width=mlp_width,
        chunk_size=DEFAULT_CHUNK if chunk_size is None else chunk_size,
        key=jax.random.key(0),
    )
    return template.from_flat(vector)


def save_meta_parameters(path: str | os.PathLike[str], optimizer: AbstractLearnedOptimizer) -> None:
    """Write the meta-parameters (array fields) of `optimizer` to `path`.

    Uses `eqx.tree_serialise_leaves`; read back with `load_meta_parameters` given an
    optimizer of the same configuration. (For OPEN, `OPEN.to_flat` gives the published
    flat layout instead.)

    **Arguments:**

    - `path`: file to write.
    - `optimizer`: any learned optimizer.
    """
    eqx.tree_serialise_leaves(pathlib.Path(path), optimizer)


def load_meta_parameters(path: str | os.PathLike[str], like: _T) -> _T:
    """Read meta-parameters written by `save_meta_parameters`.

    **Arguments:**

    - `path`: file written by `save_meta_parameters`.
    - `like`: an optimizer of the same class and configuration (its values are replaced).

    **Returns:**

    `like` with the saved meta-parameters. Raises `ValueError` if they contain NaN/inf.
    """
    loaded = eqx.tree_deserialise_leaves(pathlib.Path(path), like)
    for leaf in jax.tree.leaves(eqx.filter(loaded, eqx.is_array)):
        if not np.all(np.isfinite(np.asarray(leaf))):
            raise ValueError(f"Meta-parameters in {os.fspath(path)!r} contain NaN or inf.")
    return loaded
