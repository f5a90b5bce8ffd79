// Optim4RL's two GRUs and update, W columns at a time.
// Part of the fused kernels (one translation unit with kernels.cc; see its header).

#pragma once

#include "threads.h"

namespace {

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

}  // namespace
