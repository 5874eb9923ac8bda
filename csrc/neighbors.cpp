// symgnn neighbor list, CPU implementation (C++17, std::thread, no torch).
//
// Algorithm (set-up shared with the CUDA version in nl_detail.h)
// 1. Fractional coordinates in the binning box; periodic axes are wrapped into
//    [0, 1) and each atom's integer image n = floor(f) is kept, so shifts are
//    exact for positions outside the cell. Non-periodic axes: bounding box.
// 2. Atoms are counting-sorted into bins of about cutoff/2 (stable, so the
//    order inside a bin is by atom index). The bin offsets that can hold a
//    neighbor are found once, from the exact minimum distance between two
//    (triclinic) bins, and grouped into rows along x: for every bin, a row is
//    one contiguous range of bin-sorted atoms, split where it wraps around a
//    periodic boundary; each piece carries its integer image shift. A cell
//    smaller than the cutoff just gives offsets spanning several periods, so
//    every image within the cutoff is found.
// 3. Pass 1 counts each receiver's edges (vectorizable distance loop), a
//    prefix sum gives exact offsets, the output is allocated once (huge pages
//    when large), and pass 2 writes each receiver's edges, sorted by (j, S),
//    straight into place. Both passes run on std::threads over chunks of bins;
//    each receiver's slice depends only on the input, so the result is
//    bit-identical for any number of threads.
#include "nl_detail.h"
#include "symgnn_nl.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <new>
#include <string>
#include <thread>
#include <vector>

#include <sys/mman.h>
#if defined(__SSE2__)
#include <immintrin.h>
#endif
#include <unistd.h>

#ifdef SYMGNN_WITH_CUDA
// defined in cuda/neighbors.cu: releases the device storage of a CUDA result
void symgnn_cuda_free_storage(void *opaque);
#endif

using namespace symgnn_nl;

namespace {

thread_local std::string g_error;

// bins of about cutoff / kSubdivisions
constexpr double kSubdivisions = 1.0;

int default_threads() {
  for (const char *name : {"SYMGNN_NUM_THREADS", "OMP_NUM_THREADS"}) {
    const char *env = std::getenv(name);
    if (env != nullptr && *env != '\0') {
      char *end = nullptr;
      long v = std::strtol(env, &end, 10);
      if (end != env && v > 0)
        return static_cast<int>(std::min<long>(v, 1024));
    }
  }
  unsigned hc = std::thread::hardware_concurrency();
  return hc == 0 ? 1 : static_cast<int>(hc);
}

double physical_memory_bytes() {
  long pages = sysconf(_SC_PHYS_PAGES);
  long page = sysconf(_SC_PAGE_SIZE);
  if (pages <= 0 || page <= 0)
    return 64.0 * 1073741824.0;
  return static_cast<double>(pages) * static_cast<double>(page);
}

// Owned storage of a CPU result: one block for the four arrays; large blocks
// are mapped directly and asked for transparent huge pages (far fewer page
// faults while filling).
struct Storage {
  void *base;
  size_t bytes;
  bool mapped;
};

constexpr size_t kHuge = size_t(2) << 20;

// A few freed large blocks are kept for the next call (an MD loop asks for
// about the same size every step): reusing them skips the kernel's page
// clearing, a large part of the cost. At most kPoolBlocks blocks and 1/8 of
// the physical memory (capped at 4 GiB) are kept.
constexpr size_t kPoolBlocks = 24;
std::mutex g_pool_mutex;
std::vector<std::pair<void *, size_t>> g_pool; // oldest first

size_t pool_limit() {
  return static_cast<size_t>(std::min(physical_memory_bytes() / 8.0, 4.0 * 1073741824.0));
}

Storage *allocate_storage(size_t bytes) {
  Storage *s = static_cast<Storage *>(std::malloc(sizeof(Storage)));
  if (s == nullptr)
    throw std::bad_alloc();
  s->bytes = bytes;
  s->mapped = false;
  s->base = nullptr;
  if (bytes >= 4 * kHuge) {
    std::lock_guard<std::mutex> lock(g_pool_mutex);
    // smallest cached block that fits without wasting more than a third
    size_t best = g_pool.size();
    for (size_t q = 0; q < g_pool.size(); ++q)
      if (g_pool[q].second >= bytes && g_pool[q].second <= bytes + bytes / 2 + kHuge &&
          (best == g_pool.size() || g_pool[q].second < g_pool[best].second))
        best = q;
    if (best < g_pool.size()) {
      s->base = g_pool[best].first;
      s->bytes = g_pool[best].second;
      s->mapped = true;
      g_pool.erase(g_pool.begin() + static_cast<std::ptrdiff_t>(best));
      return s;
    }
  }
  if (bytes >= 4 * kHuge) {
    size_t len = (bytes + kHuge - 1) / kHuge * kHuge + kHuge;
    void *p = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p != MAP_FAILED) {
      // keep a 2 MiB aligned window, unmap the rest
      uintptr_t a = reinterpret_cast<uintptr_t>(p);
      uintptr_t aligned = (a + kHuge - 1) / kHuge * kHuge;
      size_t head = aligned - a;
      size_t used = (bytes + kHuge - 1) / kHuge * kHuge;
      if (head > 0)
        munmap(p, head);
      size_t tail = len - head - used;
      if (tail > 0)
        munmap(reinterpret_cast<void *>(aligned + used), tail);
#ifdef MADV_HUGEPAGE
      madvise(reinterpret_cast<void *>(aligned), used, MADV_HUGEPAGE);
#endif
      s->base = reinterpret_cast<void *>(aligned);
      s->bytes = used;
      s->mapped = true;
      return s;
    }
  }
  s->base = std::malloc(std::max<size_t>(bytes, 64));
  if (s->base == nullptr) {
    std::free(s);
    throw std::bad_alloc();
  }
  return s;
}

void free_storage(Storage *s) {
  if (s == nullptr)
    return;
  if (s->mapped) {
    std::vector<std::pair<void *, size_t>> drop;
    {
      std::lock_guard<std::mutex> lock(g_pool_mutex);
      g_pool.emplace_back(s->base, s->bytes);
      size_t total = 0;
      for (const auto &b : g_pool)
        total += b.second;
      const size_t limit = pool_limit();
      while (!g_pool.empty() && (g_pool.size() > kPoolBlocks || total > limit)) {
        total -= g_pool.front().second;
        drop.push_back(g_pool.front());
        g_pool.erase(g_pool.begin());
      }
    }
    for (const auto &b : drop)
      munmap(b.first, b.second);
  } else
    std::free(s->base);
  std::free(s);
}

// Per-thread storage of pass-1 records (8 bytes per edge) in large blocks
// taken from (and given back to) the pool.
class RecordArena {
public:
  RecordArena() = default;
  RecordArena(const RecordArena &) = delete;
  RecordArena &operator=(const RecordArena &) = delete;
  RecordArena(RecordArena &&o) noexcept
      : blocks_(std::move(o.blocks_)), cursor_(o.cursor_), room_(o.room_) {
    o.blocks_.clear();
    o.cursor_ = nullptr;
    o.room_ = 0;
  }
  ~RecordArena() {
    for (Storage *b : blocks_)
      free_storage(b);
  }
  // room for n records; commit(used) afterwards
  uint64_t *reserve(size_t n) {
    if (room_ < n) {
      const size_t records = std::max(kBlockRecords, n);
      Storage *b = allocate_storage(records * sizeof(uint64_t));
      blocks_.push_back(b);
      cursor_ = static_cast<uint64_t *>(b->base);
      room_ = b->bytes / sizeof(uint64_t);
    }
    return cursor_;
  }
  void commit(size_t used) {
    cursor_ += used;
    room_ -= used;
  }

private:
  static constexpr size_t kBlockRecords = size_t(4) << 20; // 32 MiB
  std::vector<Storage *> blocks_;
  uint64_t *cursor_ = nullptr;
  size_t room_ = 0;
};

void set_output(SymgnnNeighbors *out, int64_t n_edges) {
  const size_t e = static_cast<size_t>(n_edges);
  // receivers, senders (8 B), vectors (24 B), shifts (12 B): all aligned
  const size_t off_send = 8 * e, off_vec = 16 * e, off_shift = 40 * e;
  const size_t bytes = 52 * e;
  Storage *s = allocate_storage(bytes);
  char *base = static_cast<char *>(s->base);
  out->length = n_edges;
  out->receivers = reinterpret_cast<int64_t *>(base);
  out->senders = reinterpret_cast<int64_t *>(base + off_send);
  out->vectors = reinterpret_cast<double *>(base + off_vec);
  out->shifts = reinterpret_cast<int32_t *>(base + off_shift);
  out->device = SYMGNN_CPU;
  out->opaque = s;
}

// Output is written once and not read back here: non-temporal stores skip
// reading the destination lines into the cache.
#if defined(__SSE2__)
inline void stream_store(int64_t *p, int64_t v) {
  _mm_stream_si64(reinterpret_cast<long long *>(p), static_cast<long long>(v));
}
inline void stream_store(int32_t *p, int32_t v) { _mm_stream_si32(p, v); }
inline void stream_store(double *p, double v) {
  long long bits;
  std::memcpy(&bits, &v, sizeof(bits));
  _mm_stream_si64(reinterpret_cast<long long *>(p), bits);
}
inline void stream_fence() { _mm_sfence(); }
#else
template <typename T> inline void stream_store(T *p, T v) { *p = v; }
inline void stream_fence() {}
#endif

template <typename F> void run_parallel(int n_threads, F &&body) {
  if (n_threads <= 1) {
    body(0);
    return;
  }
  std::vector<std::thread> threads;
  threads.reserve(static_cast<size_t>(n_threads - 1));
  for (int t = 1; t < n_threads; ++t)
    threads.emplace_back([&body, t] { body(t); });
  body(0);
  for (auto &th : threads)
    th.join();
}

// A piece of a row: contiguous bin-sorted atoms sharing one image shift.
struct Segment {
  int64_t begin, end;
  int32_t s[3];
  bool zero_shift;
  double sv[3];  // s . B (binning box)
  double svc[3]; // s . cell, as in D = (r_j - r_i) + S . cell
};

struct Edge {
  int64_t j;
  int32_t s[3];
  double d[3];
};

// Everything the passes read.
struct Binned {
  const Geometry *geo;
  const Grid *G;
  std::vector<int64_t> bin_start; // [nbins + 1]
  std::vector<int64_t> order;     // bin-sorted position -> atom index
  std::vector<double> px, py, pz; // wrapped positions, bin-sorted
  std::vector<double> r;          // user positions, bin-sorted [3N]
  std::vector<int32_t> img;       // images n, bin-sorted [3N]
};

void build_segments(const Binned &bd, int64_t b, std::vector<Segment> &segs) {
  const Grid &G = *bd.G;
  const Geometry &geo = *bd.geo;
  const int64_t nx = G.nb[0], ny = G.nb[1], nz = G.nb[2];
  const int64_t bx = b % nx, by = (b / nx) % ny, bz = b / (nx * ny);
  segs.clear();
  for (const Row &row : G.rows) {
    int64_t ty = by + row.dy, tz = bz + row.dz, sy = 0, sz = 0;
    if (geo.pbc[1]) {
      sy = floordiv(ty, ny);
      ty -= sy * ny;
    } else if (ty < 0 || ty >= ny) {
      continue;
    }
    if (geo.pbc[2]) {
      sz = floordiv(tz, nz);
      tz -= sz * nz;
    } else if (tz < 0 || tz >= nz) {
      continue;
    }
    int64_t xa = bx + row.xlo, xb = bx + row.xhi;
    if (!geo.pbc[0]) {
      xa = std::max<int64_t>(xa, 0);
      xb = std::min<int64_t>(xb, nx - 1);
    }
    const int64_t base = nx * (ty + ny * tz);
    int64_t x = xa;
    while (x <= xb) {
      const int64_t sx = geo.pbc[0] ? floordiv(x, nx) : 0;
      const int64_t xw = x - sx * nx;
      const int64_t xe = std::min(xb, (sx + 1) * nx - 1);
      Segment sg;
      sg.begin = bd.bin_start[static_cast<size_t>(base + xw)];
      sg.end = bd.bin_start[static_cast<size_t>(base + xw + (xe - x) + 1)];
      if (sg.begin < sg.end) {
        sg.s[0] = static_cast<int32_t>(sx);
        sg.s[1] = static_cast<int32_t>(sy);
        sg.s[2] = static_cast<int32_t>(sz);
        sg.zero_shift = sx == 0 && sy == 0 && sz == 0;
        for (int c = 0; c < 3; ++c) {
          sg.sv[c] = static_cast<double>(sg.s[0]) * geo.B[0][c] +
                     static_cast<double>(sg.s[1]) * geo.B[1][c] +
                     static_cast<double>(sg.s[2]) * geo.B[2][c];
          sg.svc[c] = static_cast<double>(sg.s[0]) * geo.cell[0][c] +
                      static_cast<double>(sg.s[1]) * geo.cell[1][c] +
                      static_cast<double>(sg.s[2]) * geo.cell[2][c];
        }
        segs.push_back(sg);
      }
      x = xe + 1;
    }
  }
}

// Candidates of one bin: the atoms of all its segments, gathered once and
// shared by every receiver of the bin. x = p_m + s . B (wrapped position of the
// image), m = bin-sorted index, seg = segment.
struct Candidates {
  std::vector<double> x, y, z, d2;
  std::vector<int64_t> m;
  std::vector<int32_t> seg;
  std::vector<uint32_t> hit;
  std::vector<Edge> edges;
  size_t size = 0;

  void reserve_edges(size_t n) {
    if (edges.size() < n)
      edges.resize(n + 64);
  }

  void gather(const Binned &bd, const std::vector<Segment> &segs) {
    size_t n = 0;
    for (const Segment &sg : segs)
      n += static_cast<size_t>(sg.end - sg.begin);
    if (x.size() < n + 8) {
      const size_t cap = n + 64;
      x.resize(cap);
      y.resize(cap);
      z.resize(cap);
      d2.resize(cap);
      m.resize(cap);
      seg.resize(cap);
      hit.resize(cap);
      edges.resize(cap);
    }
    size_t q = 0;
    for (size_t t = 0; t < segs.size(); ++t) {
      const Segment &sg = segs[t];
      for (int64_t k = sg.begin; k < sg.end; ++k, ++q) {
        const size_t ks = static_cast<size_t>(k);
        x[q] = bd.px[ks] + sg.sv[0];
        y[q] = bd.py[ks] + sg.sv[1];
        z[q] = bd.pz[ks] + sg.sv[2];
        m[q] = k;
        seg[q] = static_cast<int32_t>(t);
      }
    }
    size = n;
  }
};

// d2 of n candidates to (xi, yi, zi); returns the number below lo and sets
// *band to the number in [lo, hi). Built for AVX2 and baseline x86-64.
#if defined(__GNUC__) && defined(__x86_64__) && !defined(__clang__)
#define SYMGNN_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define SYMGNN_CLONES
#endif

SYMGNN_CLONES
int64_t count_kernel(const double *__restrict x, const double *__restrict y,
                     const double *__restrict z, size_t n, double xi, double yi, double zi,
                     double lo, double hi, int64_t *band) {
  int64_t in = 0, b = 0;
  for (size_t q = 0; q < n; ++q) {
    const double dx = x[q] - xi, dy = y[q] - yi, dz = z[q] - zi;
    const double d2 = dx * dx + dy * dy + dz * dz;
    in += d2 < lo ? 1 : 0;
    b += (d2 >= lo) & (d2 < hi) ? 1 : 0;
  }
  *band = b;
  return in;
}

// Candidates with d2 < hi for a receiver at (xi, yi, zi): their positions go
// to cand.hit and every d2 to cand.d2 (same expression as count_kernel).
// Candidates q0 .. size-1, appended to the nh hits found so far; returns the new count.
inline size_t hits_from(Candidates &cand, size_t q0, size_t nh, double xi, double yi, double zi,
                        double hi) {
  const double *__restrict x = cand.x.data();
  const double *__restrict y = cand.y.data();
  const double *__restrict z = cand.z.data();
  double *__restrict d2s = cand.d2.data();
  uint32_t *__restrict hit = cand.hit.data();
  for (size_t q = q0; q < cand.size; ++q) {
    const double dx = x[q] - xi, dy = y[q] - yi, dz = z[q] - zi;
    const double d2 = dx * dx + dy * dy + dz * dz;
    d2s[q] = d2;
    hit[nh] = static_cast<uint32_t>(q);
    nh += d2 < hi ? 1 : 0;
  }
  return nh;
}

size_t hits_scalar(Candidates &cand, double xi, double yi, double zi, double hi) {
  return hits_from(cand, 0, 0, xi, yi, zi, hi);
}

#if defined(__GNUC__) && defined(__x86_64__)
__attribute__((target("avx2"))) size_t hits_avx2(Candidates &cand, double xi, double yi, double zi,
                                                 double hi) {
  const double *x = cand.x.data();
  const double *y = cand.y.data();
  const double *z = cand.z.data();
  double *d2s = cand.d2.data();
  uint32_t *hit = cand.hit.data();
  const size_t n = cand.size;
  const __m256d vx = _mm256_set1_pd(xi), vy = _mm256_set1_pd(yi), vz = _mm256_set1_pd(zi);
  const __m256d vh = _mm256_set1_pd(hi);
  size_t nh = 0, q = 0;
  for (; q + 4 <= n; q += 4) {
    const __m256d dx = _mm256_sub_pd(_mm256_loadu_pd(x + q), vx);
    const __m256d dy = _mm256_sub_pd(_mm256_loadu_pd(y + q), vy);
    const __m256d dz = _mm256_sub_pd(_mm256_loadu_pd(z + q), vz);
    // (dx*dx + dy*dy) + dz*dz, no FMA: the same rounding as the scalar code
    const __m256d d2 = _mm256_add_pd(_mm256_add_pd(_mm256_mul_pd(dx, dx), _mm256_mul_pd(dy, dy)),
                                     _mm256_mul_pd(dz, dz));
    _mm256_storeu_pd(d2s + q, d2);
    unsigned mask = static_cast<unsigned>(_mm256_movemask_pd(_mm256_cmp_pd(d2, vh, _CMP_LT_OQ)));
    while (mask != 0) {
      hit[nh++] = static_cast<uint32_t>(q + static_cast<size_t>(__builtin_ctz(mask)));
      mask &= mask - 1;
    }
  }
  return hits_from(cand, q, nh, xi, yi, zi, hi); // the last n % 4
}

size_t hits(Candidates &cand, double xi, double yi, double zi, double hi) {
  static const bool avx2 = __builtin_cpu_supports("avx2");
  return avx2 ? hits_avx2(cand, xi, yi, zi, hi) : hits_scalar(cand, xi, yi, zi, hi);
}
#else
size_t hits(Candidates &cand, double xi, double yi, double zi, double hi) {
  return hits_scalar(cand, xi, yi, zi, hi);
}
#endif

// The full decision for receiver k (bin-sorted) over the candidates whose d2
// was computed (in cand.d2). Fill: writes edges to `edges` (room for
// cand.size); returns the count.
template <bool Fill>
int64_t scan(const Binned &bd, int64_t k, Candidates &cand, const std::vector<Segment> &segs,
             Edge *edges) {
  const Grid &G = *bd.G;
  const Mat3 &cl = bd.geo->cell;
  const size_t ks = static_cast<size_t>(k);
  const int32_t *ni = &bd.img[3 * ks];
  const double *ri = &bd.r[3 * ks];
  const double lo = G.lo, hi = G.hi, c2 = G.c2;
  const size_t nh = hits(cand, bd.px[ks], bd.py[ks], bd.pz[ks], hi);
  const uint32_t *hit = cand.hit.data();
  const double *d2s = cand.d2.data();
  int64_t count = 0;
  for (size_t h = 0; h < nh; ++h) {
    const size_t q = hit[h];
    const double d2 = d2s[q];
    const Segment &sg = segs[static_cast<size_t>(cand.seg[q])];
    const int64_t m = cand.m[q];
    if (m == k && sg.zero_shift)
      continue;
    const size_t ms = static_cast<size_t>(m);
    const int32_t *nj = &bd.img[3 * ms];
    const int32_t S[3] = {sg.s[0] + ni[0] - nj[0], sg.s[1] + ni[1] - nj[1],
                          sg.s[2] + ni[2] - nj[2]};
    const double *rj = &bd.r[3 * ms];
    double D[3];
    double e2 = 0.0;
    if (S[0] == sg.s[0] && S[1] == sg.s[1] && S[2] == sg.s[2]) {
      for (int c = 0; c < 3; ++c) {
        D[c] = (rj[c] - ri[c]) + sg.svc[c];
        e2 += D[c] * D[c];
      }
    } else {
      for (int c = 0; c < 3; ++c) {
        D[c] = (rj[c] - ri[c]) +
               (static_cast<double>(S[0]) * cl[0][c] + static_cast<double>(S[1]) * cl[1][c] +
                static_cast<double>(S[2]) * cl[2][c]);
        e2 += D[c] * D[c];
      }
    }
    if (!(d2 < lo || e2 < c2))
      continue;
    if (Fill) {
      Edge &e = edges[count];
      e.j = bd.order[ms];
      for (int c = 0; c < 3; ++c) {
        e.s[c] = S[c];
        e.d[c] = D[c];
      }
    }
    ++count;
  }
  return count;
}

bool edge_less(const Edge &x, const Edge &y) {
  if (x.j != y.j)
    return x.j < y.j;
  if (x.s[0] != y.s[0])
    return x.s[0] < y.s[0];
  if (x.s[1] != y.s[1])
    return x.s[1] < y.s[1];
  return x.s[2] < y.s[2];
}

// Writes the ne edges of receiver i, sorted by (j, S), at out[dst...].
void write_sorted(Edge *edges, size_t ne, int64_t i, int64_t n_atoms, std::vector<uint64_t> &keys,
                  SymgnnNeighbors *out, int64_t offset) {
  const size_t dst = static_cast<size_t>(offset);
  int64_t *o_recv = out->receivers + dst;
  int64_t *o_send = out->senders + dst;
  int32_t *o_shift = out->shifts + 3 * dst;
  double *o_vec = out->vectors + 3 * dst;
  auto emit = [&](size_t q, const Edge &e) {
    stream_store(o_recv + q, i);
    stream_store(o_send + q, e.j);
    for (int c = 0; c < 3; ++c) {
      stream_store(o_shift + 3 * q + c, e.s[c]);
      stream_store(o_vec + 3 * q + c, e.d[c]);
    }
  };
  // one 64-bit key (j, shifts, position) when it fits
  bool packable = ne <= 256 && n_atoms <= (int64_t(1) << 32);
  if (packable) {
    keys.resize(ne);
    uint32_t out_of_range = 0;
    for (size_t q = 0; q < ne; ++q) {
      const Edge &e = edges[q];
      const uint32_t u0 = static_cast<uint32_t>(e.s[0] + 128);
      const uint32_t u1 = static_cast<uint32_t>(e.s[1] + 128);
      const uint32_t u2 = static_cast<uint32_t>(e.s[2] + 128);
      out_of_range |= (u0 | u1 | u2) & ~0xffu;
      keys[q] = (static_cast<uint64_t>(e.j) << 32) | (static_cast<uint64_t>(u0) << 24) |
                (static_cast<uint64_t>(u1) << 16) | (static_cast<uint64_t>(u2) << 8) |
                static_cast<uint64_t>(q);
    }
    packable = out_of_range == 0;
  }
  if (packable) {
    std::sort(keys.begin(), keys.end());
    for (size_t q = 0; q < ne; ++q)
      emit(q, edges[keys[q] & 0xff]);
  } else {
    std::sort(edges, edges + ne, edge_less);
    for (size_t q = 0; q < ne; ++q)
      emit(q, edges[q]);
  }
}

void compute(const double *positions, int64_t n_atoms, const double *cell_in, const bool *pbc_in,
             double cutoff, int64_t n_receivers, int n_threads, SymgnnNeighbors *out) {
  // ------------------------------------------------------------ validation
  if (out == nullptr)
    fail("out is NULL: pass a pointer to a SymgnnNeighbors struct");
  if (n_atoms > 0 && positions == nullptr)
    fail("positions is NULL but n_atoms = " + std::to_string(n_atoms));
  if (n_receivers < 0)
    n_receivers = n_atoms;
  const Geometry geo = make_geometry(cell_in, pbc_in, cutoff, n_atoms, n_receivers);
  const size_t N = static_cast<size_t>(n_atoms);
  for (size_t a = 0; a < N; ++a) {
    const double *p = positions + 3 * a;
    if (!std::isfinite(p[0]) || !std::isfinite(p[1]) || !std::isfinite(p[2]))
      fail("positions[" + std::to_string(a) + "] is not finite: " + fmt3(p));
  }
  if (n_atoms == 0 || n_receivers == 0) {
    set_output(out, 0);
    return;
  }

  // ------------------------------------------------------------ fractional coordinates
  std::vector<double> frac(3 * N);
  std::vector<int32_t> image(3 * N, 0);
  AtomStats st;
  st.max_abs = 0.0;
  st.max_image = 0.0;
  for (int k = 0; k < 3; ++k) {
    st.fmin[k] = std::numeric_limits<double>::infinity();
    st.fmax[k] = -std::numeric_limits<double>::infinity();
  }
  for (size_t a = 0; a < N; ++a) {
    const double *p = positions + 3 * a;
    for (int k = 0; k < 3; ++k) {
      double f = frac_of(p, geo.Binv, k);
      st.max_abs = std::max(st.max_abs, std::fabs(p[k]));
      if (geo.pbc[k]) {
        const double fl = std::floor(f);
        if (!(std::fabs(fl) <= kMaxImage))
          fail("positions[" + std::to_string(a) + "] = " + fmt3(p) +
               " is too far from the cell: fractional coordinate " + fmt(f) + " along axis " +
               std::to_string(k) + " (limit 2^29 periods)");
        image[3 * a + k] = static_cast<int32_t>(fl);
        st.max_image = std::max(st.max_image, std::fabs(fl));
        f -= fl;
      } else {
        st.fmin[k] = std::min(st.fmin[k], f);
        st.fmax[k] = std::max(st.fmax[k], f);
      }
      frac[3 * a + k] = f;
    }
  }
  const Grid G = make_grid(geo, n_atoms, n_receivers, st, kSubdivisions, 2.0);

  // ------------------------------------------------------------ bins (stable counting sort)
  Binned bd;
  bd.geo = &geo;
  bd.G = &G;
  const int64_t nbins = G.nbins;
  std::vector<int64_t> bin_of(N);
  bd.bin_start.assign(static_cast<size_t>(nbins) + 1, 0);
  for (size_t a = 0; a < N; ++a) {
    const int64_t lin =
        bin_index(frac[3 * a], G, 0) +
        G.nb[0] * (bin_index(frac[3 * a + 1], G, 1) + G.nb[1] * bin_index(frac[3 * a + 2], G, 2));
    bin_of[a] = lin;
    bd.bin_start[static_cast<size_t>(lin) + 1]++;
  }
  std::vector<double>().swap(frac);
  for (int64_t b = 0; b < nbins; ++b)
    bd.bin_start[static_cast<size_t>(b) + 1] += bd.bin_start[static_cast<size_t>(b)];
  bd.order.resize(N);
  bd.px.resize(N);
  bd.py.resize(N);
  bd.pz.resize(N);
  bd.r.resize(3 * N);
  bd.img.resize(3 * N);
  {
    std::vector<int64_t> fill(bd.bin_start.begin(), bd.bin_start.end() - 1);
    for (size_t a = 0; a < N; ++a)
      bd.order[static_cast<size_t>(fill[static_cast<size_t>(bin_of[a])]++)] =
          static_cast<int64_t>(a);
    for (size_t k = 0; k < N; ++k) {
      const size_t a = static_cast<size_t>(bd.order[k]);
      const double *p = positions + 3 * a;
      const int32_t *n = &image[3 * a];
      double w[3] = {p[0], p[1], p[2]};
      for (int q = 0; q < 3; ++q)
        if (n[q] != 0)
          for (int c = 0; c < 3; ++c)
            w[c] -= static_cast<double>(n[q]) * geo.B[q][c];
      bd.px[k] = w[0];
      bd.py[k] = w[1];
      bd.pz[k] = w[2];
      for (int c = 0; c < 3; ++c) {
        bd.r[3 * k + c] = p[c];
        bd.img[3 * k + c] = n[c];
      }
    }
  }

  // ------------------------------------------------------------ threads
  if (n_threads <= 0)
    n_threads = default_threads();
  {
    const int64_t work = n_receivers * static_cast<int64_t>(std::max<size_t>(G.rows.size(), 1));
    const int64_t useful = std::max<int64_t>(1, work / 4000); // ~1000 receivers a thread
    n_threads = static_cast<int>(std::min<int64_t>({n_threads, useful, 256}));
    n_threads = std::max(1, n_threads);
  }
  const int64_t chunk = std::max<int64_t>(1, nbins / (static_cast<int64_t>(n_threads) * 64));

  // Records mode (the usual case): pass 1 decides every edge and stores it as
  // one 8-byte record (bin-sorted sender m, segment index); pass 2 turns the
  // records into sorted output. Fallback (a segment index or m too large for
  // the record): pass 1 only counts and pass 2 searches again.
  size_t max_segments = 0;
  for (const Row &row : G.rows) {
    const int64_t width = row.xhi - row.xlo + 1;
    max_segments += static_cast<size_t>(width / G.nb[0] + 2);
  }
  constexpr int kSegBits = 20;
  // SYMGNN_NL_RECOUNT=1 forces the fallback (used by the tests)
  const char *recount_env = std::getenv("SYMGNN_NL_RECOUNT");
  const bool force_recount = recount_env != nullptr && recount_env[0] == '1';
  const bool records =
      !force_recount && max_segments < (size_t(1) << kSegBits) && n_atoms < (int64_t(1) << 43);

  // ------------------------------------------------------------ pass 1: decide and count
  std::vector<int64_t> counts(static_cast<size_t>(n_receivers), 0);
  struct Slot {
    int64_t offset, count;
    const uint64_t *rec;
  };
  std::vector<Slot> slots(N, Slot{0, 0, nullptr});
  std::vector<RecordArena> arenas(static_cast<size_t>(n_threads));
  std::atomic<int64_t> next{0};
  std::atomic<bool> failed{false};
  std::vector<std::string> errors(static_cast<size_t>(n_threads));
  auto guarded = [&](int tid, auto &&fn) {
    try {
      fn();
    } catch (const std::bad_alloc &) {
      errors[static_cast<size_t>(tid)] = "out of memory while building the neighbor list (" +
                                         std::to_string(n_atoms) + " atoms, cutoff " + fmt(cutoff) +
                                         ")";
      failed.store(true);
    } catch (const NlError &e) {
      errors[static_cast<size_t>(tid)] = e.message;
      failed.store(true);
    }
  };
  auto has_receiver = [&](int64_t first, int64_t last) {
    for (int64_t k = first; k < last; ++k)
      if (bd.order[static_cast<size_t>(k)] < n_receivers)
        return true;
    return false;
  };
  // calls fn(b, first, last) for the bins holding receivers, chunks of bins
  // shared out dynamically (the result does not depend on who does what)
  auto for_bins = [&](int tid, auto &&fn) {
    guarded(tid, [&] {
      while (!failed.load(std::memory_order_relaxed)) {
        const int64_t b0 = next.fetch_add(chunk);
        if (b0 >= nbins)
          break;
        const int64_t b1 = std::min(nbins, b0 + chunk);
        for (int64_t b = b0; b < b1; ++b) {
          const int64_t first = bd.bin_start[static_cast<size_t>(b)];
          const int64_t last = bd.bin_start[static_cast<size_t>(b) + 1];
          if (has_receiver(first, last))
            fn(b, first, last);
        }
      }
    });
  };
  const double lo = G.lo, c2 = G.c2;
  const Mat3 &cl = geo.cell;
  run_parallel(n_threads, [&](int tid) {
    std::vector<Segment> segs;
    Candidates cand;
    RecordArena &arena = arenas[static_cast<size_t>(tid)];
    for_bins(tid, [&](int64_t b, int64_t first, int64_t last) {
      build_segments(bd, b, segs);
      cand.gather(bd, segs);
      for (int64_t k = first; k < last; ++k) {
        const size_t ks = static_cast<size_t>(k);
        const int64_t i = bd.order[ks];
        if (i >= n_receivers)
          continue;
        if (!records) {
          int64_t band = 0;
          int64_t c = count_kernel(cand.x.data(), cand.y.data(), cand.z.data(), cand.size,
                                   bd.px[ks], bd.py[ks], bd.pz[ks], G.lo, G.hi, &band);
          if (band != 0)
            c = scan<false>(bd, k, cand, segs, nullptr);
          else if (0.0 < G.lo)
            --c; // the receiver itself (d2 = 0): no self pair
          counts[static_cast<size_t>(i)] = c;
          continue;
        }
        const size_t nh = hits(cand, bd.px[ks], bd.py[ks], bd.pz[ks], G.hi);
        uint64_t *rec = arena.reserve(nh);
        const uint32_t *hit = cand.hit.data();
        const int32_t *ni = &bd.img[3 * ks];
        const double *ri = &bd.r[3 * ks];
        size_t n = 0;
        for (size_t h = 0; h < nh; ++h) {
          const size_t q = hit[h];
          const int64_t m = cand.m[q];
          const int32_t t = cand.seg[q];
          const Segment &sg = segs[static_cast<size_t>(t)];
          if (m == k && sg.zero_shift)
            continue;
          if (!(cand.d2[q] < lo)) {
            // in the rounding band: the exact vector decides
            const size_t ms = static_cast<size_t>(m);
            const int32_t *nj = &bd.img[3 * ms];
            const double *rj = &bd.r[3 * ms];
            const int32_t S[3] = {sg.s[0] + ni[0] - nj[0], sg.s[1] + ni[1] - nj[1],
                                  sg.s[2] + ni[2] - nj[2]};
            double e2 = 0.0;
            for (int c = 0; c < 3; ++c) {
              const double d = (rj[c] - ri[c]) + (static_cast<double>(S[0]) * cl[0][c] +
                                                  static_cast<double>(S[1]) * cl[1][c] +
                                                  static_cast<double>(S[2]) * cl[2][c]);
              e2 += d * d;
            }
            if (!(e2 < c2))
              continue;
          }
          rec[n++] = (static_cast<uint64_t>(m) << kSegBits) | static_cast<uint64_t>(t);
        }
        arena.commit(n);
        slots[ks].rec = rec;
        slots[ks].count = static_cast<int64_t>(n);
        counts[static_cast<size_t>(i)] = static_cast<int64_t>(n);
      }
    });
  });
  for (auto &e : errors)
    if (!e.empty())
      fail(e);

  // ------------------------------------------------------------ offsets, output
  std::vector<int64_t> offsets(static_cast<size_t>(n_receivers) + 1, 0);
  for (int64_t i = 0; i < n_receivers; ++i)
    offsets[static_cast<size_t>(i) + 1] =
        offsets[static_cast<size_t>(i)] + counts[static_cast<size_t>(i)];
  const int64_t E = offsets[static_cast<size_t>(n_receivers)];
  {
    const double need = 52.0 * static_cast<double>(E);
    const double mem = physical_memory_bytes();
    if (need > 0.9 * mem)
      fail("the neighbor list has " + std::to_string(E) + " edges (" +
           fmt(std::round(need / 1073741824.0 * 10) / 10) + " GiB), more than this machine's " +
           fmt(std::round(mem / 1073741824.0 * 10) / 10) + " GiB of memory (cutoff " + fmt(cutoff) +
           ", " + std::to_string(n_atoms) + " atoms); reduce the cutoff");
  }
  set_output(out, E);
  for (size_t k = 0; k < N; ++k) {
    const int64_t i = bd.order[k];
    if (i < n_receivers) {
      slots[k].offset = offsets[static_cast<size_t>(i)];
      slots[k].count = counts[static_cast<size_t>(i)];
    }
  }

  // ------------------------------------------------------------ pass 2: fill
  next.store(0);
  run_parallel(n_threads, [&](int tid) {
    std::vector<Segment> segs;
    Candidates cand;
    std::vector<uint64_t> keys;
    for_bins(tid, [&](int64_t b, int64_t first, int64_t last) {
      build_segments(bd, b, segs);
      if (!records)
        cand.gather(bd, segs);
      for (int64_t k = first; k < last; ++k) {
        const size_t ks = static_cast<size_t>(k);
        const int64_t i = bd.order[ks];
        if (i >= n_receivers)
          continue;
        const Slot slot = slots[ks];
        size_t ne;
        if (records) {
          ne = static_cast<size_t>(slot.count);
          cand.reserve_edges(ne);
          const int32_t *ni = &bd.img[3 * ks];
          const double *ri = &bd.r[3 * ks];
          Edge *edges = cand.edges.data();
          for (size_t q = 0; q < ne; ++q) {
            const uint64_t r = slot.rec[q];
            const size_t ms = static_cast<size_t>(r >> kSegBits);
            const Segment &sg = segs[static_cast<size_t>(r & ((uint64_t(1) << kSegBits) - 1))];
            const int32_t *nj = &bd.img[3 * ms];
            const double *rj = &bd.r[3 * ms];
            Edge &e = edges[q];
            e.j = bd.order[ms];
            e.s[0] = sg.s[0] + ni[0] - nj[0];
            e.s[1] = sg.s[1] + ni[1] - nj[1];
            e.s[2] = sg.s[2] + ni[2] - nj[2];
            if (e.s[0] == sg.s[0] && e.s[1] == sg.s[1] && e.s[2] == sg.s[2]) {
              for (int c = 0; c < 3; ++c)
                e.d[c] = (rj[c] - ri[c]) + sg.svc[c];
            } else {
              for (int c = 0; c < 3; ++c)
                e.d[c] = (rj[c] - ri[c]) + (static_cast<double>(e.s[0]) * cl[0][c] +
                                            static_cast<double>(e.s[1]) * cl[1][c] +
                                            static_cast<double>(e.s[2]) * cl[2][c]);
            }
          }
        } else {
          ne = static_cast<size_t>(scan<true>(bd, k, cand, segs, cand.edges.data()));
          if (static_cast<int64_t>(ne) != slot.count)
            fail("internal error: receiver " + std::to_string(i) + " has " + std::to_string(ne) +
                 " edges in pass 2 but " + std::to_string(slot.count) + " in pass 1");
        }
        write_sorted(cand.edges.data(), ne, i, n_atoms, keys, out, slot.offset);
      }
    });
    stream_fence();
  });
  for (auto &e : errors)
    if (!e.empty())
      fail(e);
}

} // namespace

extern "C" int symgnn_neighbors_cpu(const double *positions, int64_t n_atoms, const double *cell,
                                    const bool *pbc, double cutoff, int64_t n_receivers,
                                    int n_threads, SymgnnNeighbors *out, const char **error) {
  g_error.clear();
  if (out != nullptr)
    std::memset(out, 0, sizeof(*out));
  try {
    compute(positions, n_atoms, cell, pbc, cutoff, n_receivers, n_threads, out);
    return 0;
  } catch (const NlError &e) {
    g_error = "symgnn neighbors: " + e.message;
  } catch (const std::bad_alloc &) {
    g_error = "symgnn neighbors: out of memory (n_atoms = " + std::to_string(n_atoms) +
              ", cutoff = " + fmt(cutoff) + ")";
  } catch (const std::exception &e) {
    g_error = std::string("symgnn neighbors: internal error: ") + e.what();
  }
  if (out != nullptr) {
    symgnn_neighbors_free(out);
  }
  if (error != nullptr)
    *error = g_error.c_str();
  return 1;
}

extern "C" void symgnn_neighbors_free(SymgnnNeighbors *out) {
  if (out == nullptr)
    return;
  if (out->opaque != nullptr) {
    if (out->device == SYMGNN_CPU) {
      free_storage(static_cast<Storage *>(out->opaque));
    }
#ifdef SYMGNN_WITH_CUDA
    else {
      symgnn_cuda_free_storage(out->opaque);
    }
#endif
  }
  std::memset(out, 0, sizeof(*out));
}

extern "C" void symgnn_neighbors_release_memory(void) {
  std::vector<std::pair<void *, size_t>> drop;
  {
    std::lock_guard<std::mutex> lock(g_pool_mutex);
    drop.swap(g_pool);
  }
  for (const auto &b : drop)
    munmap(b.first, b.second);
}
