"""Action and observation spaces.

When gymnax is installed its own `Discrete` and `Box` classes are used, so gymnax's
wrappers (which check `isinstance(space, gymnax.environments.spaces.Box)`) accept our
environments unchanged. Without gymnax, equivalent minimal classes with the same
attributes (`n`, `shape`, `dtype`, `low`, `high`) and methods (`sample`, `contains`)
are used, so this package does not depend on gymnax.
"""

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._fallback_spaces import Box as Box, Discrete as Discrete
else:
    try:  # gymnax's classes, so that gymnax's wrappers accept our spaces
        from gymnax.environments.spaces import Box as Box, Discrete as Discrete
    except ImportError:  # pragma: no cover - depends on the environment
        from ._fallback_spaces import Box as Box, Discrete as Discrete

__all__ = ["Box", "Discrete"]
