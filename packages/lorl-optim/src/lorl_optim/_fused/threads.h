// Threads: denormal flushing, XLA's thread pool, splitting columns into pieces.
// Part of the fused kernels (one translation unit with kernels.cc; see its header).

#pragma once

#include "simd_math.h"

namespace {

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

}  // namespace
