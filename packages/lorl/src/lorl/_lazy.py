"""Modules imported on first use, so that the command line can check names and configs
before the JAX stacks load (`lorl run NAME bad.key=1` answers in well under a second)."""

import importlib.util
import sys
import types


def lazy_module(name: str) -> types.ModuleType:
    """The module `name`, executed when one of its attributes is first used.

    **Arguments:**

    - `name`: an importable module name, e.g. `"lorl_agents"`.

    **Returns:**

    The module (already loaded if it was; otherwise a module object that loads itself on
    first attribute access, through the standard library's `importlib.util.LazyLoader`).

    **Raises:**

    `ModuleNotFoundError` at once if `name` cannot be found.
    """
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None:
        raise ModuleNotFoundError(f"No module named {name!r}", name=name)
    loader = importlib.util.LazyLoader(spec.loader)
    spec.loader = loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    loader.exec_module(module)
    return module
