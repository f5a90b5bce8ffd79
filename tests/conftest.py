"""Shared test configuration for every lorl package.

Strict dtype and rank promotion catch silent up-casts and accidental broadcasting in our
code (the house style asks for it). Tests that drive third-party code which relies on
implicit promotion (e.g. gymnax's own wrappers) wrap that code in
`jax.numpy_dtype_promotion("standard")` locally.
"""

import jax

jax.config.update("jax_numpy_dtype_promotion", "strict")
jax.config.update("jax_numpy_rank_promotion", "raise")
