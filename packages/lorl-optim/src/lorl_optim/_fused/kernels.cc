// Fused CPU kernels for the per-parameter networks of lorl_optim (OPEN and Optim4RL),
// called from JAX through the XLA FFI (see lorl_optim/_fused/_calls.py and
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
// (fast_exp, fast_log, fast_rsqrt in simd_math.h); their maximal errors are measured against
// float64 in tests/lorl_optim/test_optim_fused.py and documented in docs/optim/fused.md.
//
// Parts: simd_math.h (vector math), random.h (random numbers), threads.h (thread pool
// and column pieces), open.h (OPEN), optim4rl.h (Optim4RL); this file holds the FFI
// bindings. All of it is one translation unit, compiled by lorl_optim/_fused/_compile.py.

#include "common.h"
#include "open.h"
#include "optim4rl.h"
#include "random.h"
#include "simd_math.h"
#include "threads.h"

namespace {

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
