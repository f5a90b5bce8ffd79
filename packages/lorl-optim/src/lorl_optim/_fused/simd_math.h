// Vector types and math: loads/stores, polynomial exp/log/rcp/rsqrt, relu, dense layers.
// Part of the fused kernels (one translation unit with kernels.cc; see its header).

#pragma once

#include "common.h"

namespace {

// Columns per vector: one AVX-512 register (16 floats; 32 vector registers), else one
// 256-bit register (8 floats; 16 registers). 64-byte vectors without AVX-512 made GCC
// spill so much that the kernels ran ~10x slower.
#ifdef __AVX512F__
constexpr int W = 16;
constexpr int NREGS = 32;
#else
constexpr int W = 8;
constexpr int NREGS = 16;
#endif
constexpr int VBYTES = 4 * W;
typedef float V __attribute__((vector_size(VBYTES)));
typedef float Vu __attribute__((vector_size(VBYTES), aligned(4)));
typedef int32_t VI __attribute__((vector_size(VBYTES)));

// x in every lane: a broadcast (from memory a pure load), where `V{} + x` made GCC add
// 0.0f as a scalar and then broadcast from a register, two vector-port operations.
inline V splat(float x) {
#ifdef __AVX512F__
  return reinterpret_cast<V>(_mm512_set1_ps(x));
#else
  return reinterpret_cast<V>(_mm256_set1_ps(x));
#endif
}

// Load `count` (<= W) floats; missing lanes are zero.
inline V load(const float* p, int count) {
  if (count == W) return *reinterpret_cast<const Vu*>(p);
  V v = {};
  for (int i = 0; i < count; ++i) v[i] = p[i];
  return v;
}

inline void store(float* p, V v, int count) {
  if (count == W) {
    *reinterpret_cast<Vu*>(p) = v;
    return;
  }
  for (int i = 0; i < count; ++i) p[i] = v[i];
}

inline V bits_to_float(VI b) {
  V v;
  std::memcpy(&v, &b, sizeof(v));
  return v;
}

inline VI float_to_bits(V v) {
  VI b;
  std::memcpy(&b, &v, sizeof(b));
  return b;
}

// max/min that return `a` when it is NaN (NaN propagates as through XLA's ops).
inline V vmax(V a, V b) { return a < b ? b : a; }
inline V vmin(V a, V b) { return a > b ? b : a; }
inline V vabs(V x) { return bits_to_float(float_to_bits(x) & 0x7fffffff); }

// sign(x): -1, 0 or 1 (comparisons give -1 for true).
inline V vsign(V x) {
  VI neg = x < 0.0f;
  VI pos = x > 0.0f;
  return __builtin_convertvector(neg - pos, V);
}

// exp(x) = 2^k p(r), k = round(x / ln2), r = x - k ln2 (Cody-Waite split of ln2), p the
// degree-6 Taylor polynomial (|r| <= ln2/2: truncation < 2e-8 relative). With AVX-512 the
// rounding and the scaling by 2^k are single instructions (vrndscaleps, vscalefps), which
// also give XLA's limits (x is first clamped to [-104, 89]): inf above ~88.72, 0 below
// ~-87.3 (denormal results are flushed, see DenormalsAreZero), NaN for NaN. Elsewhere x is clamped to [-87.3, 88.37] so 2^k
// stays a normal float built from its bits (saturating at exp(88.37) instead of inf).
inline V fast_exp(V x) {
#ifdef __AVX512F__
  // Clamp (NaN passes: vmaxps/vminps return their second operand if either is NaN) so
  // that k stays finite: exp(-104) underflows to 0 and exp(89) overflows to inf anyway.
  __m512 xc = _mm512_max_ps(_mm512_set1_ps(-104.0f), reinterpret_cast<__m512>(x));
  x = reinterpret_cast<V>(_mm512_min_ps(_mm512_set1_ps(89.0f), xc));
  V k = reinterpret_cast<V>(_mm512_roundscale_ps(
      reinterpret_cast<__m512>(x * 1.44269504088896341f), _MM_FROUND_TO_NEAREST_INT));
#else
  x = vmin(vmax(x, splat(-87.3f)), splat(88.37f));
  const float magic = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer
  V k = (x * 1.44269504088896341f + magic) - magic;
#endif
  V r = x - k * 0.693145751953125f;
  r = r - k * 1.428606765330187e-06f;
  V p = splat(1.0f / 720.0f);
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
#ifdef __AVX512F__
  return reinterpret_cast<V>(
      _mm512_scalef_ps(reinterpret_cast<__m512>(p), reinterpret_cast<__m512>(k)));
#else
  VI e = (__builtin_convertvector(k, VI) + 127) << 23;
  return p * bits_to_float(e);
#endif
}

// log(x) for finite x > 0 (normal floats): x = 2^e m with m in [sqrt(1/2), sqrt(2)),
// log(m) = 2 atanh(s), s = (m - 1) / (m + 1), |s| <= 0.1716, series to s^9
// (truncation < 3e-9).
inline V fast_log(V x) {
  VI b = float_to_bits(x);
  VI e = ((b >> 23) & 0xff) - 127;
  V m = bits_to_float((b & 0x7fffff) | 0x3f800000);
  VI big = m > 1.41421356f;
  m = big ? m * 0.5f : m;
  e = e - big;  // big is -1 where true
  V s = (m - 1.0f) / (m + 1.0f);
  V s2 = s * s;
  V p = splat(2.0f / 9.0f);
  p = p * s2 + 2.0f / 7.0f;
  p = p * s2 + 2.0f / 5.0f;
  p = p * s2 + 2.0f / 3.0f;
  p = p * s2 + 2.0f;
  V r = __builtin_convertvector(e, V) * 0.693147180559945309f + p * s;
  return x == x ? r : x;  // NaN in, NaN out
}

// 1/x for x >= 1 (the gates' 1 + exp(-x)): vrcp14ps (relative error < 2^-14) refined by
// one Newton step in FMA form, as accurate here as a division (errors in docs/optim/fused.md)
// and cheaper; 1/inf is 0 as in a division (the Newton step alone would give NaN).
inline V fast_rcp(V x) {
#ifdef __AVX512F__
  V y = reinterpret_cast<V>(_mm512_rcp14_ps(reinterpret_cast<__m512>(x)));
  V r = y + y * (1.0f - x * y);
  return x == __builtin_inff() ? V{} : r;
#else
  return 1.0f / x;
#endif
}

inline V fast_sigmoid(V x) { return fast_rcp(1.0f + fast_exp(-x)); }
inline V fast_tanh(V x) { return 2.0f * fast_rcp(1.0f + fast_exp(-2.0f * x)) - 1.0f; }

// 1/sqrt(x) for normal x > 0: bit-trick start and three Newton steps.
inline V fast_rsqrt(V x) {
  V y = bits_to_float(0x5f3759df - (float_to_bits(x) >> 1));
  V h = 0.5f * x;
  y = y * (1.5f - h * y * y);
  y = y * (1.5f - h * y * y);
  y = y * (1.5f - h * y * y);
  return y;
}

inline V relu(V x) {
#ifdef __AVX512F__
  return reinterpret_cast<V>(_mm512_max_ps(_mm512_setzero_ps(), reinterpret_cast<__m512>(x)));
#else
  return x < 0.0f ? V{} : x;
#endif
}

// y[j] = b[j] + sum_k wt[k * OUT + j] x[k] for j < OUT (`wt` is the transposed weight,
// `(in, OUT)` row-major). Outputs in register blocks of BLK accumulators, inputs
// streamed: one vector load of x[k] per BLK fused multiply-adds.
template <int OUT>
inline void dense(const float* wt, const float* b, const V* x, int in, V* y) {
  // Output accumulators per block: as many as leave registers for the inputs.
  constexpr int BLK = NREGS >= 32 ? (OUT <= 24 ? OUT : (OUT % 24 == 0 ? 24 : 16)) : 8;
  static_assert(OUT % BLK == 0, "unsupported layer width");
  for (int jb = 0; jb < OUT; jb += BLK) {
    V acc[BLK];
    for (int j = 0; j < BLK; ++j) acc[j] = splat(b[jb + j]);
    for (int k = 0; k < in; ++k) {
      V xk = x[k];
      const float* w = wt + k * OUT + jb;
#pragma GCC unroll 48
      for (int j = 0; j < BLK; ++j) acc[j] += w[j] * xk;
    }
    for (int j = 0; j < BLK; ++j) y[jb + j] = acc[j];
  }
}

// GRU step (flax convention, gates [r, z, n]):
//   r = sigmoid(Wi_r x + bi_r + Wh_r h), z = sigmoid(Wi_z x + bi_z + Wh_z h),
//   n = tanh(Wi_n x + bi_n + r (Wh_n h + bhn)), h' = (1 - z) n + z h,
// with `wi` (in, 3F) and `wh` (F, 3F) transposed and gate-major. U units at a time: the
// 4U pre-activations stay in registers (r and z sum both products in one accumulator),
// inputs and state are streamed, and the gates are applied before the next block; the
// new state goes to `hn` (the old one is read by every block).
template <int F, int U = NREGS / 8>
inline void gru(const float* wi, const float* bi, const V* x, int in, const float* wh,
                const float* bhn, const V* h, V* hn) {
  static_assert(F % U == 0, "unsupported GRU size");
  for (int u = 0; u < F; u += U) {
    V r[U], z[U], xn[U], hh[U];
    for (int j = 0; j < U; ++j) {
      r[j] = splat(bi[u + j]);
      z[j] = splat(bi[F + u + j]);
      xn[j] = splat(bi[2 * F + u + j]);
      hh[j] = splat(bhn[u + j]);
    }
    for (int k = 0; k < in; ++k) {
      const V xk = x[k];
      const float* w = wi + k * 3 * F + u;
      for (int j = 0; j < U; ++j) {
        r[j] += w[j] * xk;
        z[j] += w[F + j] * xk;
        xn[j] += w[2 * F + j] * xk;
      }
    }
    for (int k = 0; k < F; ++k) {
      const V hk = h[k];
      const float* w = wh + k * 3 * F + u;
      for (int j = 0; j < U; ++j) {
        r[j] += w[j] * hk;
        z[j] += w[F + j] * hk;
        hh[j] += w[2 * F + j] * hk;
      }
    }
    for (int j = 0; j < U; ++j) {
      V rg = fast_sigmoid(r[j]);
      V zg = fast_sigmoid(z[j]);
      V ng = fast_tanh(xn[j] + rg * hh[j]);
      hn[u + j] = (1.0f - zg) * ng + zg * h[u + j];
    }
  }
}

}  // namespace
