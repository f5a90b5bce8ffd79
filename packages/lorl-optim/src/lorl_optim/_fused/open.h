// OPEN's per-parameter network and update, W (or Q x W) columns at a time.
// Part of the fused kernels (one translation unit with kernels.cc; see its header).

#pragma once

#include "random.h"
#include "threads.h"

namespace {

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

}  // namespace
