// Fused CPU kernels for the per-parameter networks of lorl_optim (OPEN and Optim4RL),
// called from JAX through the XLA FFI (see lorl_optim/_fused/__init__.py and
// docs/optim/fused.md).
//
// Layout: every per-parameter quantity is a row of a features-major (rows, n) float32
// array, one column per agent parameter. The kernels process W columns at a time as one
// GCC/Clang vector (`V`: 16 floats in one AVX-512 register, else 8 floats); weights are
// scalars broadcast into the fused multiply-adds. Every intermediate of the network stays
// in registers or on the stack (L1). Each column is independent, so the result does not
// depend on how the columns are split between threads (XLA's own thread pool, see
// `parallel_for`).
//
// Transcendental functions are polynomial approximations written with vector operations
// (fast_exp, fast_log, fast_rsqrt below); their maximal errors are measured against
// float64 in tests/lorl_optim/test_optim_fused.py and documented in docs/optim/fused.md.

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

// Flush denormal results to zero and read denormal inputs as zero while alive (as XLA:CPU
// does in its own computations). Denormals otherwise take microcode assists that slowed
// the kernels about 2x (e.g. exp(x) near its lower clamp times a polynomial below 1).
// Every thread that works on a job sets them for the duration of its work (and restores
// its own flags after).
struct DenormalsAreZero {
#if defined(__SSE__)
  unsigned int saved = _mm_getcsr();
  DenormalsAreZero() { _mm_setcsr(saved | 0x8040); }  // FTZ (bit 15) | DAZ (bit 6)
  ~DenormalsAreZero() { _mm_setcsr(saved); }
#endif
};

// Threads per call: every core, or at most LORL_OPTIM_FUSED_THREADS (>= 1) if it is set.
int call_threads() {
  int threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  const char* s = std::getenv("LORL_OPTIM_FUSED_THREADS");
  if (s == nullptr || *s == '\0') return threads;
  return std::min(threads, std::max(1, std::atoi(s)));
}

// A parallel loop over pieces of work 0..count-1 on XLA's own intra-op thread pool
// (`ffi::ThreadPool`, persistent threads): the calling thread and up to `helpers` tasks
// scheduled on the pool claim pieces (see below) until none is left. What a
// piece computes depends only on its number, never on the thread that runs it, so the
// results do not depend on the number of threads.
//
// The job's control block is shared with the tasks (std::shared_ptr). The caller waits
// for every piece to be done, closes the job, then waits until no task is inside it; a
// task announces itself (`inside`) before it checks that the job is still open
// (sequentially consistent atomics: Dekker's protocol). So the caller never waits for a
// task that has not started (no deadlock when every thread of XLA's pool is busy, e.g.
// with two custom calls at once), and a task that starts late never touches the
// caller's data, which is gone by then.
//
// Using XLA's pool rather than threads of our own: XLA's threads are awake or spinning
// right after XLA's own parallel work, where sleeping threads of a private pool had to
// be woken and scheduled first; in PPO on this 2-vCPU machine our own persistent pool
// gave 1.67x PPO + Adam's time against 1.40x with XLA's pool, in the same conditions
// (docs/agents/benchmarks.md, Speed). Threads are XLA's business at fork() and exit.
//
// Pieces are claimed from both ends: the calling thread takes 0, 1, 2, ... and the pool's
// tasks take count - 1, count - 2, ... (one packed counter pair, compare-and-swap), so with
// two threads each one works on the same side of the columns in consecutive calls of
// `parallel_for` (OPEN's two phases) and finds there the data it has just read in its
// own cache. Which thread computes a piece never changes what the piece computes.
struct Job {
  using Fn = void (*)(void*, int64_t);
  std::atomic<bool> open{true};
  std::atomic<int> inside{0};
  // Next piece from the front (low 32 bits) and one past the last unclaimed piece (high
  // 32 bits).
  std::atomic<uint64_t> range{0};
  std::atomic<int64_t> done{0};
  int64_t count = 0;
  Fn fn = nullptr;
  void* ctx = nullptr;

  // Claims a piece from the front or the back; -1 when none is left.
  int64_t claim(bool front) {
    uint64_t r = range.load();
    for (;;) {
      const uint32_t lo = static_cast<uint32_t>(r), hi = static_cast<uint32_t>(r >> 32);
      if (lo >= hi) return -1;
      const uint64_t next = front ? (r + 1) : (r - (uint64_t{1} << 32));
      if (range.compare_exchange_weak(r, next)) return front ? lo : hi - 1;
    }
  }

  void work(bool front) {
    DenormalsAreZero daz;
    for (;;) {
      const int64_t i = claim(front);
      if (i < 0) return;
      fn(ctx, i);
      done.fetch_add(1);
    }
  }
};

inline void spin_pause() {
#if defined(__SSE__)
  _mm_pause();
#endif
}

// Run `body(i)` for i in 0..count-1 on the calling thread plus XLA's pool (serially if
// there is no pool, one piece, or one thread allowed).
template <typename Body>
void parallel_for(int64_t count, Body& body, ffi::ThreadPool* pool) {
  auto job = std::make_shared<Job>();
  job->count = count;
  job->range.store(static_cast<uint64_t>(count) << 32);
  job->fn = [](void* ctx, int64_t i) { (*static_cast<Body*>(ctx))(i); };
  job->ctx = &body;
  int64_t helpers = std::min<int64_t>(call_threads() - 1, count - 1);
  if (pool != nullptr) {
    helpers = std::min<int64_t>(helpers, pool->num_threads());
  } else {
    helpers = 0;
  }
  for (int64_t h = 0; h < helpers; ++h) {
    pool->Schedule([job] {
      job->inside.fetch_add(1);
      if (job->open.load()) job->work(false);
      job->inside.fetch_sub(1);
    });
  }
  job->work(true);
  while (job->done.load() < count) spin_pause();
  job->open.store(false);
  while (job->inside.load() > 0) spin_pause();
}

// Pieces of work: every leaf's columns in consecutive runs of `task` columns (a piece
// never crosses a leaf), numbered leaf by leaf.
struct Piece {
  int64_t leaf, start, stop;
};

std::vector<Piece> column_pieces(const int32_t* offsets, int64_t n_leaves, int64_t task) {
  std::vector<Piece> pieces;
  for (int64_t l = 0; l < n_leaves; ++l) {
    for (int64_t s = offsets[l]; s < offsets[l + 1]; s += task) {
      pieces.push_back({l, s, std::min<int64_t>(s + task, offsets[l + 1])});
    }
  }
  return pieces;
}

// Run `body(start, stop, leaf)` over the columns of every leaf, in pieces of `task`
// columns, with `parallel_for`. Every column is independent, so the result does not depend on
// the number of threads. `offsets` has n_leaves + 1 entries.
template <typename Body>
void parallel_columns(const int32_t* offsets, int64_t n_leaves, int64_t task,
                      ffi::ThreadPool* pool, Body body) {
  const std::vector<Piece> pieces = column_pieces(offsets, n_leaves, task);
  auto run = [&](int64_t i) { body(pieces[i].start, pieces[i].stop, pieces[i].leaf); };
  parallel_for(static_cast<int64_t>(pieces.size()), run, pool);
}

// Pieces of the network phase (phase 2 of `lorl_open_step`), where every column is
// computed alone, so the split cannot change any result: decreasing ("guided") sizes,
// 1/8 of the segment's columns not yet handed out, between 256 and 4,096 columns (multiples of
// 32, two vectors), never across a leaf. Long pieces keep the ~17 rows each piece streams
// through in the hardware prefetchers' stride (256-column pieces everywhere made the
// 60k update ~15% slower); the short ones at the end keep both threads busy until the
// last columns.
std::vector<Piece> network_pieces(const int32_t* offsets, int64_t l0, int64_t l1) {
  std::vector<Piece> pieces;
  int64_t remaining = offsets[l1] - offsets[l0];
  for (int64_t l = l0; l < l1; ++l) {
    for (int64_t s = offsets[l]; s < offsets[l + 1];) {
      const int64_t size = (std::clamp<int64_t>(remaining / 8, 256, 4096) + 31) / 32 * 32;
      const int64_t e = std::min<int64_t>(s + size, offsets[l + 1]);
      pieces.push_back({l, s, e});
      remaining -= e - s;
      s = e;
    }
  }
  return pieces;
}

constexpr float BETAS[6] = {0.1f, 0.5f, 0.9f, 0.99f, 0.999f, 0.9999f};
// Columns per segment of `lorl_open_step` (both phases run segment by segment): a 64 x
// 400 kernel (25,600 columns) is one segment; per core its phase-1 rows and log
// features (15 floats per column) then take ~0.8 MB, within the 2 MB L2 of the machine
// of docs/optim/benchmark.md.
constexpr int64_t SEGMENT_COLUMNS = 8192;
// Columns per piece of work, a function of the number of parameters only (so results do
// not depend on the thread count). With dynamic claiming the threads finish at most one
// piece apart: 1,024 columns (~40 us of OPEN) balance PPO's 60k parameters; from 256k
// parameters on, 4,096-column pieces are faster (1M parameters: OPEN 25.8 against 31.6
// ms, Optim4RL 26.6 against 32.5 ms with 1,024; docs/optim/benchmark.md).
int64_t piece_columns(int64_t n) { return n >= (int64_t{1} << 18) ? 4096 : 1024; }

// ------------------------------------------------------------------------------ OPEN

// Packed network weights (one row per network), all transposed to (in, out):
//   whh (F, 3F), bhn (F), w0 (F, H) row-centred, b0 (H) centred, s1 (H), c1 (H),
//   w1 (H, H) row-centred, b1 (H) centred, s2 (H), c2 (H), w2 (H, O), b2 (O).
template <int F, int H>
struct OpenNet {
  const float *whh, *bhn, *w0, *b0, *s1, *c1, *w1, *b1, *s2, *c2, *w2, *b2;
  static int64_t size(int o) { return 3 * F * F + F + F * H + H * H + 6 * H + H * o + o; }
  OpenNet(const float* p, int o) {
    whh = p; p += 3 * F * F;
    bhn = p; p += F;
    w0 = p; p += F * H;
    b0 = p; p += H;
    s1 = p; p += H;
    c1 = p; p += H;
    w1 = p; p += H * H;
    b1 = p; p += H;
    s2 = p; p += H;
    c2 = p; p += H;
    w2 = p; p += H * o;
    b2 = p;
  }
};

template <int H>
inline void layer_norm_relu(V* a, const float* s, const float* c, float eps) {
  V part[4] = {};  // independent partial sums: a chain of H dependent FMAs is slow
  for (int j = 0; j < H; ++j) part[j % 4] += a[j] * a[j];
  V var = (part[0] + part[1]) + (part[2] + part[3]);
  V inv = fast_rsqrt(var * (1.0f / H) + eps);
  for (int j = 0; j < H; ++j) a[j] = relu(a[j] * inv * s[j] + c[j]);
}

// Actor-noise modes (attribute `noise`): none; `eps` holds the noise (drawn by JAX);
// the kernel draws it from `key` (times `eps`, a per-element actor mask, in mode
// NOISE_KEY_MASK).
enum NoiseMode { NOISE_NONE = 0, NOISE_GIVEN = 1, NOISE_KEY = 2, NOISE_KEY_MASK = 3 };

// o[j] = b[j] + sum_i w[i * OUT + j] x[i] for the few outputs of a network, with
// independent partial sums (even and odd i) so that the FMAs do not form one long chain.
template <int H, int OUT>
inline void output_layer(const float* w, const float* b, const V* x, V* o) {
  V even[OUT], odd[OUT];
  for (int j = 0; j < OUT; ++j) {
    even[j] = splat(b[j]);
    odd[j] = V{};
  }
  for (int i = 0; i < H; i += 2) {
    for (int j = 0; j < OUT; ++j) {
      even[j] += w[i * OUT + j] * x[i];
      odd[j] += w[(i + 1) * OUT + j] * x[i + 1];
    }
  }
  for (int j = 0; j < OUT; ++j) o[j] = even[j] + odd[j];
}

// ------------------------------------------------ OPEN's network, Q vectors at a time
//
// OPEN's per-column work is one long chain of dependent steps (features, the GRU's
// 24-term sums, the gates' exp polynomials, two layers, two LayerNorms, the output). OPEN
// processes Q independent column vectors together: every weight broadcast feeds Q
// multiply-adds, and the Q chains fill each other's latency. Arrays hold Q vectors per
// entry (`x[i * Q + q]`); each vector's arithmetic is exactly the Q = 1 arithmetic, so
// results are bit-identical to one vector at a time. Worth 3-5% at 60k parameters in a
// one-thread C++ harness (the network is then close to the machine's multiply-add
// throughput: ~1,100 multiply-adds per column).
#ifdef __AVX512F__
constexpr int Q = 2;
#else
constexpr int Q = 1;
#endif

// GRU step as `gru` for Q vectors; U units per block (4 U Q accumulators).
template <int F, int U = (NREGS >= 32 ? 4 : 2) / Q>
inline void gru_q(const float* wi, const float* bi, const V* x, int in, const float* wh,
                  const float* bhn, const V* h, V* hn) {
  static_assert(F % U == 0, "unsupported GRU size");
  V pr[F * Q], pz[F * Q], pn[F * Q], ph[F * Q];
  for (int u = 0; u < F; u += U) {
    V r[U * Q], z[U * Q], xn[U * Q], hh[U * Q];
    for (int j = 0; j < U; ++j) {
      for (int q = 0; q < Q; ++q) {
        r[j * Q + q] = splat(bi[u + j]);
        z[j * Q + q] = splat(bi[F + u + j]);
        xn[j * Q + q] = splat(bi[2 * F + u + j]);
        hh[j * Q + q] = splat(bhn[u + j]);
      }
    }
    for (int k = 0; k < in; ++k) {
      const float* w = wi + k * 3 * F + u;
      for (int j = 0; j < U; ++j) {
        const V wr = splat(w[j]), wz = splat(w[F + j]), wn = splat(w[2 * F + j]);
        for (int q = 0; q < Q; ++q) {
          const V xk = x[k * Q + q];
          r[j * Q + q] += wr * xk;
          z[j * Q + q] += wz * xk;
          xn[j * Q + q] += wn * xk;
        }
      }
    }
    for (int k = 0; k < F; ++k) {
      const float* w = wh + k * 3 * F + u;
      for (int j = 0; j < U; ++j) {
        const V wr = splat(w[j]), wz = splat(w[F + j]), wn = splat(w[2 * F + j]);
        for (int q = 0; q < Q; ++q) {
          const V hk = h[k * Q + q];
          r[j * Q + q] += wr * hk;
          z[j * Q + q] += wz * hk;
          hh[j * Q + q] += wn * hk;
        }
      }
    }
    for (int i = 0; i < U * Q; ++i) {
      pr[u * Q + i] = r[i];
      pz[u * Q + i] = z[i];
      pn[u * Q + i] = xn[i];
      ph[u * Q + i] = hh[i];
    }
  }
  // The gates of every unit after all sums: F Q independent chains.
  for (int i = 0; i < F * Q; ++i) {
    V rg = fast_sigmoid(pr[i]);
    V zg = fast_sigmoid(pz[i]);
    V ng = fast_tanh(pn[i] + rg * ph[i]);
    hn[i] = (1.0f - zg) * ng + zg * h[i];
  }
}

// `dense` for Q vectors.
template <int OUT>
inline void dense_q(const float* wt, const float* b, const V* x, int in, V* y) {
  constexpr int BLK = (NREGS >= 32 ? 16 : 8) / Q;
  static_assert(OUT % BLK == 0, "unsupported layer width");
  for (int jb = 0; jb < OUT; jb += BLK) {
    V acc[BLK * Q];
    for (int j = 0; j < BLK; ++j) {
      for (int q = 0; q < Q; ++q) acc[j * Q + q] = splat(b[jb + j]);
    }
    for (int k = 0; k < in; ++k) {
      const float* w = wt + k * OUT + jb;
#pragma GCC unroll 48
      for (int j = 0; j < BLK; ++j) {
        const V wj = splat(w[j]);
        for (int q = 0; q < Q; ++q) acc[j * Q + q] += wj * x[k * Q + q];
      }
    }
    for (int j = 0; j < BLK; ++j) {
      for (int q = 0; q < Q; ++q) y[(jb + j) * Q + q] = acc[j * Q + q];
    }
  }
}

// `layer_norm_relu` for Q vectors.
template <int H>
inline void layer_norm_relu_q(V* a, const float* s, const float* c, float eps) {
  for (int q = 0; q < Q; ++q) {
    V part[4] = {};
    for (int j = 0; j < H; ++j) part[j % 4] += a[j * Q + q] * a[j * Q + q];
    V var = (part[0] + part[1]) + (part[2] + part[3]);
    V inv = fast_rsqrt(var * (1.0f / H) + eps);
    for (int j = 0; j < H; ++j) a[j * Q + q] = relu(a[j * Q + q] * inv * s[j] + c[j]);
  }
}

// `output_layer` for Q vectors.
template <int H, int OUT>
inline void output_layer_q(const float* w, const float* b, const V* x, V* o) {
  V even[OUT * Q], odd[OUT * Q];
  for (int j = 0; j < OUT * Q; ++j) {
    even[j] = splat(b[j / Q]);
    odd[j] = V{};
  }
  for (int i = 0; i < H; i += 2) {
    for (int j = 0; j < OUT; ++j) {
      const V we = splat(w[i * OUT + j]), wo = splat(w[(i + 1) * OUT + j]);
      for (int q = 0; q < Q; ++q) {
        even[j * Q + q] += we * x[i * Q + q];
        odd[j * Q + q] += wo * x[(i + 1) * Q + q];
      }
    }
  }
  for (int j = 0; j < OUT * Q; ++j) o[j] = even[j] + odd[j];
}

struct OpenArgs {
  const float *g, *p, *slots, *rows, *eps, *leaf_noise, *wi, *bi, *nets;
  // Phase 1's log features (log|m_b| x 6, log|g|; rows of n), or nullptr: recomputed.
  const float* logs;
  const int32_t* leaf_net;
  const uint32_t* key;
  float *slots_out, *u_out;
  int64_t n, n_rows, n_in, n_out, net_size;
  bool has_p;
  int noise;
  float a1, a2, a3, log_eps, ln_eps;
};

// `LOGS`: load phase 1's log features from `A.logs` (else recompute them). Two
// instantiations rather than a runtime test: the unused `fast_log` inlined into the
// network loop cost ~4% there (more live constants in this register-bound code).
template <int F, int H, bool LOGS>
void open_columns(const OpenArgs& A, int64_t start, int64_t stop, int64_t leaf) {
  const int64_t n = A.n;
  const int nin = static_cast<int>(A.n_in);
  const float* wi = A.wi + leaf * nin * 3 * F;  // (n_in, 3F)
  const float* bi = A.bi + leaf * 3 * F;
  OpenNet<F, H> net(A.nets + A.leaf_net[leaf] * A.net_size, static_cast<int>(A.n_out));
  const float noise_scale = A.noise != NOISE_NONE ? A.a3 * A.leaf_noise[leaf] : 0.0f;
  for (int64_t c0 = start; c0 < stop; c0 += W * Q) {
    int cnts[Q];
    for (int q = 0; q < Q; ++q) {
      cnts[q] = static_cast<int>(std::clamp<int64_t>(stop - c0 - q * W, 0, W));
    }
    V x[24 * Q], h[F * Q], h_old[F * Q], m[6 * Q];
    for (int q = 0; q < Q; ++q) {
      const int64_t c = c0 + q * W;
      const int cnt = cnts[q];
      int k = 0;
      V g = load(A.g + c, cnt);
      if (A.has_p) x[(k++) * Q + q] = load(A.p + c, cnt);
      for (int b = 0; b < 6; ++b) {
        V mb = BETAS[b] * load(A.slots + b * n + c, cnt) + (1.0f - BETAS[b]) * g;
        m[b * Q + q] = mb;
        x[(k + b) * Q + q] = vsign(mb);
        x[(k + 6 + b) * Q + q] =
            LOGS ? load(A.logs + b * n + c, cnt) : fast_log(vabs(mb) + A.log_eps);
      }
      k += 12;
      x[(k++) * Q + q] = vsign(g);
      x[(k++) * Q + q] = LOGS ? load(A.logs + 6 * n + c, cnt) : fast_log(vabs(g) + A.log_eps);
      for (int r = 0; r < A.n_rows; ++r) x[(k++) * Q + q] = load(A.rows + r * n + c, cnt);
      for (int j = 0; j < F; ++j) h_old[j * Q + q] = load(A.slots + (6 + j) * n + c, cnt);
    }
    gru_q<F>(wi, bi, x, nin, net.whh, net.bhn, h_old, h);
    V a[H * Q], b2[H * Q];
    dense_q<H>(net.w0, net.b0, h, F, a);
    layer_norm_relu_q<H>(a, net.s1, net.c1, A.ln_eps);
    dense_q<H>(net.w1, net.b1, a, H, b2);
    layer_norm_relu_q<H>(b2, net.s2, net.c2, A.ln_eps);
    V o[3 * Q];
    if (A.n_out == 3) {
      output_layer_q<H, 3>(net.w2, net.b2, b2, o);
    } else {
      output_layer_q<H, 2>(net.w2, net.b2, b2, o);
    }
    for (int q = 0; q < Q; ++q) {
      const int64_t c = c0 + q * W;
      const int cnt = cnts[q];
      V u = A.a1 * o[q] * fast_exp(A.a2 * o[Q + q]);
      if (noise_scale != 0.0f) {
        V eps;
        if (A.noise == NOISE_GIVEN) {
          eps = load(A.eps + c, cnt);
        } else {
          eps = normal_from_bits(random_bits(A.key, c));
          if (A.noise == NOISE_KEY_MASK) eps *= load(A.eps + c, cnt);
        }
        u += noise_scale * o[2 * Q + q] * eps;
      }
      for (int b = 0; b < 6; ++b) store(A.slots_out + b * n + c, m[b * Q + q], cnt);
      for (int j = 0; j < F; ++j) store(A.slots_out + (6 + j) * n + c, h[j * Q + q], cnt);
      store(A.u_out + c, u, cnt);
    }
  }
}

// Sums of squares of the raw OPEN features ([p], sign(m_b) x 6, log|m_b| x 6, sign(g),
// log|g|) over the columns start..stop-1 of one piece (`out`: 15 floats, 14 used
// without p). If `logs` is not null, the log features (log|m_b| x 6, log|g|) are also
// stored there (rows of n) for phase 2, which then loads them instead of recomputing
// exactly the same values.
void open_moment_columns(const float* g, const float* p, const float* slots, int64_t n,
                         bool has_p, float log_eps, int64_t start, int64_t stop, float* out,
                         float* logs) {
  V acc[15] = {};
  for (int64_t c = start; c < stop; c += W) {
    const int cnt = static_cast<int>(std::min<int64_t>(W, stop - c));
    V gv = load(g + c, cnt);
    int k = 0;
    if (has_p) {
      V pv = load(p + c, cnt);
      acc[k++] += pv * pv;
    }
    V mask = cnt == W ? splat(1.0f) : V{};
    if (cnt != W) {
      for (int i = 0; i < cnt; ++i) mask[i] = 1.0f;
    }
    for (int b = 0; b < 6; ++b) {
      V m = BETAS[b] * load(slots + b * n + c, cnt) + (1.0f - BETAS[b]) * gv;
      V s = vsign(m);
      V l = fast_log(vabs(m) + log_eps);
      if (logs != nullptr) store(logs + b * n + c, l, cnt);
      l *= mask;
      acc[k + b] += s * s;
      acc[k + 6 + b] += l * l;
    }
    k += 12;
    V s = vsign(gv);
    V l = fast_log(vabs(gv) + log_eps);
    if (logs != nullptr) store(logs + 6 * n + c, l, cnt);
    l *= mask;
    acc[k++] += s * s;
    acc[k++] += l * l;
  }
  const int nf = has_p ? 15 : 14;
  for (int f = 0; f < nf; ++f) {
    double t = 0.0;
    for (int i = 0; i < W; ++i) t += acc[f][i];
    out[f] = static_cast<float>(t);
  }
}

// One OPEN step in one call, in two phases run segment by segment (`SEGMENT_COLUMNS`):
// 1. over pieces of `piece_columns` columns (never across a leaf), the per-piece sums of
//    squares of the raw features (`open_moment_columns`, which also keeps the log
//    features for phase 2); the caller then adds each leaf's pieces in order (in double,
//    so the sums do not depend on the thread count), takes
//    inv_rms = 1 / sqrt(norm_eps + mean) per feature and scales the raw-feature rows of
//    the leaf's GRU input weights by it;
// 2. over `network_pieces`, the network and u_hat (`open_columns`), writing the new state
//    in place.
// `wi` is (n_nets, n_in, 3F): each network's GRU input weights, transposed, with the
// per-leaf constant inputs already folded into `bi` (n_leaves, 3F) by the caller.
ffi::Error OpenStepImpl(ffi::Buffer<ffi::F32> g, ffi::Buffer<ffi::F32> p,
                        ffi::Buffer<ffi::F32> slots, ffi::Buffer<ffi::F32> rows,
                        ffi::Buffer<ffi::F32> eps, ffi::Buffer<ffi::U32> key,
                        ffi::Buffer<ffi::F32> leaf_noise,
                        ffi::Buffer<ffi::F32> wi, ffi::Buffer<ffi::F32> bi,
                        ffi::Buffer<ffi::F32> nets, ffi::Buffer<ffi::S32> leaf_net,
                        ffi::Buffer<ffi::S32> offsets, ffi::ResultBuffer<ffi::F32> slots_out,
                        ffi::ResultBuffer<ffi::F32> u_out, int64_t hidden, int64_t width,
                        int64_t n_out, bool has_p, int64_t noise, float a1, float a2,
                        float a3, float log_eps, float ln_eps, float norm_eps,
                        bool cache_logs, ffi::ThreadPool xla_pool) {
  OpenArgs A;
  A.n = static_cast<int64_t>(g.element_count());
  A.g = g.typed_data();
  A.p = p.typed_data();
  A.slots = slots.typed_data();
  A.rows = rows.typed_data();
  A.n_rows = A.n == 0 ? 0 : static_cast<int64_t>(rows.element_count()) / A.n;
  A.eps = eps.typed_data();
  A.key = key.typed_data();
  A.leaf_noise = leaf_noise.typed_data();
  A.bi = bi.typed_data();
  A.nets = nets.typed_data();
  A.leaf_net = leaf_net.typed_data();
  A.slots_out = slots_out->typed_data();
  A.u_out = u_out->typed_data();
  A.n_in = (has_p ? 1 : 0) + 14 + A.n_rows;
  A.n_out = n_out;
  A.has_p = has_p;
  A.noise = static_cast<int>(noise);
  A.a1 = a1;
  A.a2 = a2;
  A.a3 = a3;
  A.log_eps = log_eps;
  A.ln_eps = ln_eps;
  const int64_t n_leaves = static_cast<int64_t>(offsets.element_count()) - 1;
  const int64_t n_nets = nets.dimensions().size() == 2 ? nets.dimensions()[0] : 0;
  const bool stochastic = noise != NOISE_NONE;
  if (A.n_in > 24 || n_out < 2 || n_out > 3 || (stochastic && n_out != 3)) {
    return ffi::Error::InvalidArgument("lorl_open_step: unsupported input/output sizes");
  }
  if (noise < NOISE_NONE || noise > NOISE_KEY_MASK ||
      ((noise == NOISE_KEY || noise == NOISE_KEY_MASK) && key.element_count() != 2) ||
      ((noise == NOISE_GIVEN || noise == NOISE_KEY_MASK) &&
       static_cast<int64_t>(eps.element_count()) != A.n)) {
    return ffi::Error::InvalidArgument("lorl_open_step: bad noise mode or noise inputs");
  }
  const int64_t gates = 3 * hidden;
  if (static_cast<int64_t>(bi.element_count()) != n_leaves * gates ||
      static_cast<int64_t>(wi.element_count()) != n_nets * A.n_in * gates ||
      static_cast<int64_t>(leaf_net.element_count()) != n_leaves) {
    return ffi::Error::InvalidArgument("lorl_open_step: wi, bi or leaf_net has the wrong size");
  }
  const int32_t* off = offsets.typed_data();
  for (int64_t l = 0; l < n_leaves; ++l) {
    if (off[l] > off[l + 1] || A.leaf_net[l] < 0 || A.leaf_net[l] >= n_nets) {
      return ffi::Error::InvalidArgument("lorl_open_step: bad offsets or leaf_net");
    }
  }
  if (n_leaves < 1 || off[0] != 0 || off[n_leaves] != A.n) {
    return ffi::Error::InvalidArgument("lorl_open_step: offsets do not cover the parameters");
  }
  if (hidden == 8 && width == 16) {
    A.net_size = OpenNet<8, 16>::size(static_cast<int>(n_out));
  } else if (hidden == 16 && width == 32) {
    A.net_size = OpenNet<16, 32>::size(static_cast<int>(n_out));
  } else {
    return ffi::Error::InvalidArgument("lorl_open_step: unsupported (hidden, width)");
  }
  if (nets.dimensions().size() != 2 || nets.dimensions()[1] != A.net_size) {
    return ffi::Error::InvalidArgument("lorl_open_step: nets has the wrong size");
  }
  const std::vector<Piece> pieces = column_pieces(off, n_leaves, piece_columns(A.n));
  const int64_t n_pieces = static_cast<int64_t>(pieces.size());
  std::vector<float> sums(n_pieces * 15, 0.0f);
  // With `cache_logs`, the log features of phase 1 are kept for phase 2 in a
  // per-calling-thread buffer (7 floats per column, reused by later calls).
  float* logs = nullptr;
  if (cache_logs) {
    thread_local std::vector<float> logs_buffer;
    if (static_cast<int64_t>(logs_buffer.size()) < 7 * A.n) logs_buffer.resize(7 * A.n);
    logs = logs_buffer.data();
  }
  A.logs = logs;
  const int n_raw = has_p ? 15 : 14;
  std::vector<float> wl(n_leaves * A.n_in * gates);
  A.wi = wl.data();

  // Both phases segment by segment (consecutive leaves, at least SEGMENT_COLUMNS columns
  // or the last ones), so that phase 2 finds the rows phase 1 has just read, and the
  // log features it wrote, in the same core's cache (`parallel_for` claims pieces from
  // both ends). Every piece computes the same numbers whatever the segments.
  int64_t piece = 0;  // first phase-1 piece of the segment
  for (int64_t l0 = 0; l0 < n_leaves;) {
    int64_t l1 = l0;
    while (l1 < n_leaves && (off[l1] - off[l0] < SEGMENT_COLUMNS)) ++l1;
    int64_t piece_end = piece;
    while (piece_end < n_pieces && pieces[piece_end].leaf < l1) ++piece_end;

    // Phase 1: per-piece sums of squares of the raw features.
    {
      float* out = sums.data();
      const Piece* seg = pieces.data() + piece;
      auto body = [&](int64_t i) {
        const Piece& q = seg[i];
        open_moment_columns(A.g, A.p, A.slots, A.n, has_p, log_eps, q.start, q.stop,
                            out + (piece + i) * 15, logs);
      };
      parallel_for(piece_end - piece, body, &xla_pool);
    }
    // Per leaf: inv_rms of every raw feature (the leaf's pieces added in order, in
    // double), folded into that leaf's GRU input weights.
    for (int64_t l = l0; l < l1; ++l) {
      double total[15] = {};
      for (; piece < piece_end && pieces[piece].leaf == l; ++piece) {
        for (int f = 0; f < n_raw; ++f) total[f] += sums[piece * 15 + f];
      }
      const float count = static_cast<float>(std::max<int64_t>(1, off[l + 1] - off[l]));
      const float* w = wi.typed_data() + A.leaf_net[l] * A.n_in * gates;
      float* dst = wl.data() + l * A.n_in * gates;
      for (int64_t r = 0; r < A.n_in; ++r) {
        float scale = 1.0f;
        if (r < n_raw) scale = 1.0f / std::sqrt(norm_eps + static_cast<float>(total[r]) / count);
        for (int64_t j = 0; j < gates; ++j) dst[r * gates + j] = w[r * gates + j] * scale;
      }
    }

    // Phase 2: network and u_hat, the state updated in place.
    const std::vector<Piece> net_pieces = network_pieces(off, l0, l1);
    auto step = [&](int64_t i) {
      const Piece& q = net_pieces[i];
      if (hidden == 8) {
        if (logs) {
          open_columns<8, 16, true>(A, q.start, q.stop, q.leaf);
        } else {
          open_columns<8, 16, false>(A, q.start, q.stop, q.leaf);
        }
      } else if (logs) {
        open_columns<16, 32, true>(A, q.start, q.stop, q.leaf);
      } else {
        open_columns<16, 32, false>(A, q.start, q.stop, q.leaf);
      }
    };
    parallel_for(static_cast<int64_t>(net_pieces.size()), step, &xla_pool);
    l0 = l1;
  }
  return ffi::Error::Success();
}

// -------------------------------------------------------------------------- Optim4RL

// Packed weights, transposed to (in, out): gru1 wi (2, 3F), bi (3F), whh (F, 3F), bhn (F),
// mlp1 w0 (F, H1), b0, w1 (H1, H2), b1, w2 (H2, 2), b2 (2); gru2 wi (1, 3F), bi, whh, bhn;
// mlp2 w0 (F, H1), b0, w1 (H1, H2), b1, w2 (H2, 1), b2 (1).
template <int F, int H1, int H2>
struct O4Net {
  const float *wi1, *bi1, *wh1, *bn1, *a0, *c0, *a1, *c1, *a2, *c2;
  const float *wi2, *bi2, *wh2, *bn2, *d0, *e0, *d1, *e1, *d2, *e2;
  static int64_t size() {
    return (2 * 3 * F + 3 * F + 3 * F * F + F) + (F * H1 + H1 + H1 * H2 + H2 + H2 * 2 + 2) +
           (3 * F + 3 * F + 3 * F * F + F) + (F * H1 + H1 + H1 * H2 + H2 + H2 + 1);
  }
  explicit O4Net(const float* p) {
    wi1 = p; p += 6 * F;
    bi1 = p; p += 3 * F;
    wh1 = p; p += 3 * F * F;
    bn1 = p; p += F;
    a0 = p; p += F * H1;
    c0 = p; p += H1;
    a1 = p; p += H1 * H2;
    c1 = p; p += H2;
    a2 = p; p += 2 * H2;
    c2 = p; p += 2;
    wi2 = p; p += 3 * F;
    bi2 = p; p += 3 * F;
    wh2 = p; p += 3 * F * F;
    bn2 = p; p += F;
    d0 = p; p += F * H1;
    e0 = p; p += H1;
    d1 = p; p += H1 * H2;
    e1 = p; p += H2;
    d2 = p; p += H2;
    e2 = p;
  }
};

struct O4Args {
  const float *g, *slots, *net;
  float *slots_out, *out;
  int64_t n;
  float lr, clip, sign_bias, eps1, eps2;
};

template <int F, int H1, int H2>
void optim4rl_columns(const O4Args& A, int64_t start, int64_t stop) {
  const O4Net<F, H1, H2> net(A.net);
  const int64_t n = A.n;
  for (int64_t c = start; c < stop; c += W) {
    const int cnt = static_cast<int>(std::min<int64_t>(W, stop - c));
    V g = load(A.g + c, cnt);
    if (A.clip > 0) g = vmin(vmax(g, splat(-A.clip)), splat(A.clip));
    V x[2] = {vsign(g), fast_log(vabs(g) + A.eps1)};
    V h_old[F], h1[F], h2[F];
    for (int j = 0; j < F; ++j) h_old[j] = load(A.slots + j * n + c, cnt);
    gru<F>(net.wi1, net.bi1, x, 2, net.wh1, net.bn1, h_old, h1);
    V a[H1], b[H2];
    dense<H1>(net.a0, net.c0, h1, F, a);
    for (int j = 0; j < H1; ++j) a[j] = relu(a[j]);
    dense<H2>(net.a1, net.c1, a, H1, b);
    for (int j = 0; j < H2; ++j) b[j] = relu(b[j]);
    V o01[2];
    output_layer<H2, 2>(net.a2, net.c2, b, o01);
    V o0 = o01[0], o1 = o01[1];
    // straight_through_sign(tanh(o0 + b)) is 1 where tanh(o0 + b) >= 0, i.e. o0 + b >= 0.
    V msign = (o0 + A.sign_bias) >= 0.0f ? splat(1.0f) : splat(-1.0f);
    V mom = x[0] * msign * fast_exp(o1);
    V x2[1] = {2.0f * x[1]};
    for (int j = 0; j < F; ++j) h_old[j] = load(A.slots + (F + j) * n + c, cnt);
    gru<F>(net.wi2, net.bi2, x2, 1, net.wh2, net.bn2, h_old, h2);
    dense<H1>(net.d0, net.e0, h2, F, a);
    for (int j = 0; j < H1; ++j) a[j] = relu(a[j]);
    dense<H2>(net.d1, net.e1, a, H1, b);
    for (int j = 0; j < H2; ++j) b[j] = relu(b[j]);
    V o3;
    output_layer<H2, 1>(net.d2, net.e2, b, &o3);
    V v = fast_exp(o3);
    V delta = -A.lr * mom * fast_rsqrt(v + A.eps2);
    for (int j = 0; j < F; ++j) store(A.slots_out + j * n + c, h1[j], cnt);
    for (int j = 0; j < F; ++j) store(A.slots_out + (F + j) * n + c, h2[j], cnt);
    store(A.out + c, delta, cnt);
  }
}

ffi::Error Optim4RLStepImpl(ffi::Buffer<ffi::F32> g,
                            ffi::Buffer<ffi::F32> slots, ffi::Buffer<ffi::F32> net,
                            ffi::ResultBuffer<ffi::F32> slots_out,
                            ffi::ResultBuffer<ffi::F32> out, int64_t hidden, int64_t width1,
                            int64_t width2, float lr, float clip, float sign_bias, float eps1,
                            float eps2, ffi::ThreadPool xla_pool) {
  O4Args A;
  A.n = static_cast<int64_t>(g.element_count());
  A.g = g.typed_data();
  A.slots = slots.typed_data();
  A.net = net.typed_data();
  A.slots_out = slots_out->typed_data();
  A.out = out->typed_data();
  A.lr = lr;
  A.clip = clip;
  A.sign_bias = sign_bias;
  A.eps1 = eps1;
  A.eps2 = eps2;
  int32_t off[2] = {0, static_cast<int32_t>(A.n)};
  if (hidden == 8 && width1 == 16 && width2 == 16) {
    if (static_cast<int64_t>(net.element_count()) != O4Net<8, 16, 16>::size()) {
      return ffi::Error::InvalidArgument("lorl_optim4rl_step: weights have the wrong size");
    }
    parallel_columns(off, 1, piece_columns(A.n), &xla_pool, [&A](int64_t s, int64_t e, int64_t) {
      optim4rl_columns<8, 16, 16>(A, s, e);
    });
  } else if (hidden == 16 && width1 == 32 && width2 == 32) {
    if (static_cast<int64_t>(net.element_count()) != O4Net<16, 32, 32>::size()) {
      return ffi::Error::InvalidArgument("lorl_optim4rl_step: weights have the wrong size");
    }
    parallel_columns(off, 1, piece_columns(A.n), &xla_pool, [&A](int64_t s, int64_t e, int64_t) {
      optim4rl_columns<16, 32, 32>(A, s, e);
    });
  } else {
    return ffi::Error::InvalidArgument("lorl_optim4rl_step: unsupported sizes");
  }
  return ffi::Error::Success();
}

// Elementwise check of the approximations (used by the tests): op 0 exp, 1 log,
// 2 sigmoid, 3 tanh, 4 rsqrt.
ffi::Error MathImpl(ffi::Buffer<ffi::F32> x, ffi::ResultBuffer<ffi::F32> y, int64_t op) {
  const int64_t n = static_cast<int64_t>(x.element_count());
  const float* xp = x.typed_data();
  float* yp = y->typed_data();
  for (int64_t c = 0; c < n; c += W) {
    const int cnt = static_cast<int>(std::min<int64_t>(W, n - c));
    V v = load(xp + c, cnt);
    V r;
    switch (op) {
      case 0: r = fast_exp(v); break;
      case 1: r = fast_log(v); break;
      case 2: r = fast_sigmoid(v); break;
      case 3: r = fast_tanh(v); break;
      default: r = fast_rsqrt(v); break;
    }
    store(yp + c, r, cnt);
  }
  return ffi::Error::Success();
}

// The kernel's actor-noise draw for flat indices 0..n-1 (used by the tests): the random
// bits and the standard normal values.
ffi::Error NormalImpl(ffi::Buffer<ffi::U32> key, ffi::ResultBuffer<ffi::U32> bits,
                      ffi::ResultBuffer<ffi::F32> normal) {
  if (key.element_count() != 2) {
    return ffi::Error::InvalidArgument("lorl_normal: the key must have 2 words");
  }
  DenormalsAreZero daz;  // as in the kernels' workers
  const int64_t n = static_cast<int64_t>(bits->element_count());
  uint32_t* bp = bits->typed_data();
  float* np_ = normal->typed_data();
  for (int64_t c = 0; c < n; c += W) {
    const int cnt = static_cast<int>(std::min<int64_t>(W, n - c));
    VU b = random_bits(key.typed_data(), c);
    V z = normal_from_bits(b);
    for (int i = 0; i < cnt; ++i) {
      bp[c + i] = b[i];
      np_[c + i] = z[i];
    }
  }
  return ffi::Error::Success();
}

}  // namespace

XLA_FFI_DEFINE_HANDLER_SYMBOL(LorlNormal, NormalImpl,
                              ffi::Ffi::Bind()
                                  .Arg<ffi::Buffer<ffi::U32>>()  // key
                                  .Ret<ffi::Buffer<ffi::U32>>()  // bits
                                  .Ret<ffi::Buffer<ffi::F32>>());  // normal

XLA_FFI_DEFINE_HANDLER_SYMBOL(LorlOpenStep, OpenStepImpl,
                              ffi::Ffi::Bind()
                                  .Arg<ffi::Buffer<ffi::F32>>()  // g
                                  .Arg<ffi::Buffer<ffi::F32>>()  // p
                                  .Arg<ffi::Buffer<ffi::F32>>()  // slots
                                  .Arg<ffi::Buffer<ffi::F32>>()  // rows
                                  .Arg<ffi::Buffer<ffi::F32>>()  // eps
                                  .Arg<ffi::Buffer<ffi::U32>>()  // key
                                  .Arg<ffi::Buffer<ffi::F32>>()  // leaf_noise
                                  .Arg<ffi::Buffer<ffi::F32>>()  // wi
                                  .Arg<ffi::Buffer<ffi::F32>>()  // bi
                                  .Arg<ffi::Buffer<ffi::F32>>()  // nets
                                  .Arg<ffi::Buffer<ffi::S32>>()  // leaf_net
                                  .Arg<ffi::Buffer<ffi::S32>>()  // offsets
                                  .Ret<ffi::Buffer<ffi::F32>>()  // slots_out
                                  .Ret<ffi::Buffer<ffi::F32>>()  // u_hat
                                  .Attr<int64_t>("hidden")
                                  .Attr<int64_t>("width")
                                  .Attr<int64_t>("n_out")
                                  .Attr<bool>("has_p")
                                  .Attr<int64_t>("noise")
                                  .Attr<float>("a1")
                                  .Attr<float>("a2")
                                  .Attr<float>("a3")
                                  .Attr<float>("log_eps")
                                  .Attr<float>("ln_eps")
                                  .Attr<float>("norm_eps")
                                  .Attr<bool>("cache_logs")
                                  .Ctx<ffi::ThreadPool>());

XLA_FFI_DEFINE_HANDLER_SYMBOL(LorlOptim4RLStep, Optim4RLStepImpl,
                              ffi::Ffi::Bind()
                                  .Arg<ffi::Buffer<ffi::F32>>()  // g
                                  .Arg<ffi::Buffer<ffi::F32>>()  // slots
                                  .Arg<ffi::Buffer<ffi::F32>>()  // net
                                  .Ret<ffi::Buffer<ffi::F32>>()  // slots_out
                                  .Ret<ffi::Buffer<ffi::F32>>()  // delta
                                  .Attr<int64_t>("hidden")
                                  .Attr<int64_t>("width1")
                                  .Attr<int64_t>("width2")
                                  .Attr<float>("lr")
                                  .Attr<float>("clip")
                                  .Attr<float>("sign_bias")
                                  .Attr<float>("eps1")
                                  .Attr<float>("eps2")
                                  .Ctx<ffi::ThreadPool>());

XLA_FFI_DEFINE_HANDLER_SYMBOL(LorlMath, MathImpl,
                              ffi::Ffi::Bind()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>()
                                  .Attr<int64_t>("op"));
