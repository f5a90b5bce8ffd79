// The standard and XLA FFI headers every part of the fused kernels uses.
// Part of the fused kernels (one translation unit with kernels.cc; see its header).

#pragma once

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

#include "xla/ffi/api/ffi.h"

#if defined(__SSE__)
#include <immintrin.h>
#endif

namespace ffi = xla::ffi;
