"""The fused CPU kernels of OPEN and Optim4RL.

- `_compile`: compiling the C++ source (`kernels.cc` and its parts `simd_math.h`,
  `random.h`, `threads.h`, `open.h`, `optim4rl.h`), caching, locking, loading;
- `_calls`: the FFI calls and the choice between the kernels and the XLA
  implementations.

The weights each kernel reads are packed next to the optimizer they come from
(`lorl_optim._open`, `lorl_optim._optim4rl`). See docs/optim/fused.md.
"""

from ._calls import (
    BACKENDS as BACKENDS,
    NOISE_GIVEN as NOISE_GIVEN,
    NOISE_KEY as NOISE_KEY,
    NOISE_KEY_MASK as NOISE_KEY_MASK,
    NOISE_NONE as NOISE_NONE,
    fused_wanted as fused_wanted,
    kernel_noise_key as kernel_noise_key,
    math_op as math_op,
    normal as normal,
    offsets_array as offsets_array,
    open_step as open_step,
    optim4rl_step as optim4rl_step,
    run_core as run_core,
)
from ._compile import (
    FLAGS as FLAGS,
    SOURCE as SOURCE,
    SOURCES as SOURCES,
    STALE_DAYS as STALE_DAYS,
    STALE_TMP_HOURS as STALE_TMP_HOURS,
    TARGETS as TARGETS,
    FusedKernelWarning as FusedKernelWarning,
    available as available,
    error as error,
    remove_stale_builds as remove_stale_builds,
)
