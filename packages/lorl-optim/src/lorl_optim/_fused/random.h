// Random numbers: threefry2x32 bits and standard normals, as jax.random draws them.
// Part of the fused kernels (one translation unit with kernels.cc; see its header).

#pragma once

#include "simd_math.h"

namespace {

// ----------------------------------------------------------------- actor noise
//
// OPEN's actor noise is jax.random.normal(key, (1, n)) over the flat parameter vector.
// With JAX's default generator (threefry2x32, "partitionable" counters) the value at
// flat index i depends only on the key and i: 32 random bits are x0 ^ x1 of
// threefry2x32(key, (hi(i), lo(i))), turned into a float u uniform in [-1 + 2^-24, 1)
// and then into sqrt(2) erfinv(u). The kernel recomputes exactly these bits (tested
// equal to jax.random.bits) and the transform with the approximations below (tested
// against jax.random.normal), so only actor columns draw noise and none of it goes
// through memory.

typedef uint32_t VU __attribute__((vector_size(VBYTES)));

inline VU rotl(VU x, int r) { return (x << r) | (x >> (32 - r)); }

// Threefry-2x32 with 20 rounds (Salmon et al. 2011, "Parallel random numbers: as easy as
// 1, 2, 3"), the block function of JAX's default PRNG: rotation constants
// (13, 15, 26, 6) / (17, 29, 16, 24), a key injection after every 4 rounds with the
// parity word 0x1BD11BDA.
inline void threefry2x32(uint32_t k0, uint32_t k1, VU& x0, VU& x1) {
  const uint32_t ks[3] = {k0, k1, k0 ^ k1 ^ 0x1BD11BDAu};
  static constexpr int ROT[2][4] = {{13, 15, 26, 6}, {17, 29, 16, 24}};
  x0 += ks[0];
  x1 += ks[1];
  for (int i = 0; i < 5; ++i) {
    for (int r = 0; r < 4; ++r) {
      x0 += x1;
      x1 = rotl(x1, ROT[i % 2][r]);
      x1 ^= x0;
    }
    x0 += ks[(i + 1) % 3];
    x1 += ks[(i + 2) % 3] + static_cast<uint32_t>(i + 1);
  }
}

// The 32 random bits of jax.random.bits(key, (n,), uint32) at flat indices
// first, ..., first + 15 (n < 2^32, so the high counter word is 0).
inline VU random_bits(const uint32_t* key, int64_t first) {
  VU lo;
  for (int i = 0; i < W; ++i) lo[i] = static_cast<uint32_t>(first + i);
  VU hi = {};
  threefry2x32(key[0], key[1], hi, lo);
  return hi ^ lo;
}

// erfinv(x) for |x| < 1: Giles' single-precision approximation ("Approximating the
// erfinv function", GPU Computing Gems, 2011), w = -log(1 - x^2), a degree-8 polynomial
// in w - 2.5 for w < 5 and in sqrt(w) - 3 otherwise (the form XLA uses for float32).
inline V fast_erfinv(V x) {
  V w = -fast_log((1.0f - x) * (1.0f + x));
  VI small = w < 5.0f;
  V a = w - 2.5f;
  V b = w * fast_rsqrt(w) - 3.0f;  // sqrt(w) - 3; only used where w >= 5
  V p = splat(2.81022636e-08f);
  p = p * a + 3.43273939e-07f;
  p = p * a + -3.5233877e-06f;
  p = p * a + -4.39150654e-06f;
  p = p * a + 0.00021858087f;
  p = p * a + -0.00125372503f;
  p = p * a + -0.00417768164f;
  p = p * a + 0.246640727f;
  p = p * a + 1.50140941f;
  V q = splat(-0.000200214257f);
  q = q * b + 0.000100950558f;
  q = q * b + 0.00134934322f;
  q = q * b + -0.00367342844f;
  q = q * b + 0.00573950773f;
  q = q * b + -0.0076224613f;
  q = q * b + 0.00943887047f;
  q = q * b + 1.00167406f;
  q = q * b + 2.83297682f;
  return (small ? p : q) * x;
}

// Standard normal values from random bits as jax.random.normal does for float32: the
// top 23 bits as the mantissa of a float in [1, 2), minus 1, scaled to
// [-1 + 2^-24, 1) (exactly), then sqrt(2) erfinv.
inline V normal_from_bits(VU bits) {
  VU f = (bits >> 9) | 0x3f800000u;
  V unit;
  std::memcpy(&unit, &f, sizeof(unit));
  const float lo = -0.99999994f;  // nextafter(-1, 0)
  V u = vmax((unit - 1.0f) * 2.0f + lo, splat(lo));
  return 1.41421356f * fast_erfinv(u);
}

// max(0, x), NaN propagating: one vmaxps (it returns its second operand when either is
// NaN), where the select below is a compare and a blend.

}  // namespace
