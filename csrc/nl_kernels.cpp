// The work of the CPU neighbor list's two passes on one bin: the bin's
// candidates (its row segments, gathered once for all its receivers), the
// distance kernels (AVX2 and baseline), the decision for each hit, and the
// sorted, streamed output of each receiver.
#include "nl_cpu.h"
#include "nl_walk.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#if defined(__SSE2__)
#include <immintrin.h>
#endif

namespace symgnn_nl {

namespace {

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
#else
template <typename T> inline void stream_store(T *p, T v) { *p = v; }
#endif

bool has_receiver(const Binned &bd, int64_t first, int64_t last) {
  for (int64_t k = first; k < last; ++k)
    if (bd.order[static_cast<size_t>(k)] < bd.n_receivers)
      return true;
  return false;
}

// The segments of bin b: every row of bin offsets, cut where it wraps.
void build_segments(const Binned &bd, int64_t b, std::vector<Segment> &segs) {
  const Grid &G = *bd.G;
  const Geometry &geo = *bd.geo;
  const int64_t nx = G.nb[0], ny = G.nb[1];
  const int64_t bx = b % nx, by = (b / nx) % ny, bz = b / (nx * ny);
  segs.clear();
  for (const Row &row : G.rows) {
    walk_row(G.nb, geo.pbc, bx, by, bz, row.dy, row.dz, row.xlo, row.xhi,
             [&](int64_t first, int64_t end, const int32_t *s) {
               Segment sg;
               sg.begin = bd.bin_start[static_cast<size_t>(first)];
               sg.end = bd.bin_start[static_cast<size_t>(end)];
               if (sg.begin >= sg.end)
                 return;
               for (int c = 0; c < 3; ++c)
                 sg.s[c] = s[c];
               sg.zero_shift = s[0] == 0 && s[1] == 0 && s[2] == 0;
               for (int c = 0; c < 3; ++c) {
                 sg.sv[c] = shift_component(sg.s, geo.B, c);
                 sg.svc[c] = shift_component(sg.s, geo.cell, c);
               }
               segs.push_back(sg);
             });
  }
}

// Candidates q0 .. size-1 with d2 < hi for a receiver at (xi, yi, zi), appended
// to the nh hits found so far (positions in cand.hit, every d2 in cand.d2);
// returns the new count.
inline size_t hits_from(Candidates &cand, size_t q0, size_t nh, double xi, double yi, double zi,
                        double hi) {
  const double *__restrict x = cand.x.data();
  const double *__restrict y = cand.y.data();
  const double *__restrict z = cand.z.data();
  double *__restrict d2s = cand.d2.data();
  uint32_t *__restrict hit = cand.hit.data();
  for (size_t q = q0; q < cand.size; ++q) {
    const double d2 = dist2(x[q] - xi, y[q] - yi, z[q] - zi);
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
    // (dx*dx + dy*dy) + dz*dz, no FMA: the same rounding as dist2
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

bool edge_less(const Edge &x, const Edge &y) {
  if (x.j != y.j)
    return x.j < y.j;
  if (x.s[0] != y.s[0])
    return x.s[0] < y.s[0];
  if (x.s[1] != y.s[1])
    return x.s[1] < y.s[1];
  return x.s[2] < y.s[2];
}

// Writes the ne edges of receiver i, sorted by (j, S), at out[offset...].
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

// The grid and the bin-sorted atoms as for_each_edge (nl_walk.h) reads them.
struct HostGrid {
  const int64_t *nb;
  const bool *pbc;
  const Mat3 &B, &cell;
  double lo, hi, c2;
  const Row *rows;
  size_t n_rows;
  explicit HostGrid(const Binned &bd)
      : nb(bd.G->nb), pbc(bd.geo->pbc), B(bd.geo->B), cell(bd.geo->cell), lo(bd.G->lo),
        hi(bd.G->hi), c2(bd.G->c2), rows(bd.G->rows.data()), n_rows(bd.G->rows.size()) {}
};

struct HostAtoms {
  const Binned &bd;
  int64_t start(int64_t bin) const { return bd.bin_start[static_cast<size_t>(bin)]; }
  double wrapped(int64_t m, int c) const {
    const size_t ms = static_cast<size_t>(m);
    return c == 0 ? bd.px[ms] : (c == 1 ? bd.py[ms] : bd.pz[ms]);
  }
  const double *position(int64_t m) const { return &bd.r[3 * static_cast<size_t>(m)]; }
  const int32_t *image(int64_t m) const { return &bd.img[3 * static_cast<size_t>(m)]; }
};

} // namespace

void Candidates::gather(const Binned &bd, const std::vector<Segment> &segs) {
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

void decide_bin(const Binned &bd, int64_t b, bool records, Scratch &sc, RecordArena &arena,
                Slot *slots, int64_t *counts) {
  const int64_t first = bd.bin_start[static_cast<size_t>(b)];
  const int64_t last = bd.bin_start[static_cast<size_t>(b) + 1];
  if (!has_receiver(bd, first, last))
    return;
  if (!records) {
    const HostGrid grid(bd);
    const HostAtoms atoms{bd};
    for (int64_t k = first; k < last; ++k) {
      const int64_t i = bd.order[static_cast<size_t>(k)];
      if (i >= bd.n_receivers)
        continue;
      int64_t c = 0;
      for_each_edge(grid, atoms, k, b, [&](int64_t, const int32_t *, const double *) { ++c; });
      counts[static_cast<size_t>(i)] = c;
    }
    return;
  }
  const Grid &G = *bd.G;
  const Mat3 &cl = bd.geo->cell;
  const double lo = G.lo, c2 = G.c2;
  build_segments(bd, b, sc.segs);
  Candidates &cand = sc.cand;
  cand.gather(bd, sc.segs);
  for (int64_t k = first; k < last; ++k) {
    const size_t ks = static_cast<size_t>(k);
    const int64_t i = bd.order[ks];
    if (i >= bd.n_receivers)
      continue;
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
      const Segment &sg = sc.segs[static_cast<size_t>(t)];
      if (m == k && sg.zero_shift)
        continue; // the receiver itself
      const double d2 = cand.d2[q];
      if (!(d2 < lo)) {
        // in the rounding band: the exact vector decides
        const size_t ms = static_cast<size_t>(m);
        int32_t S[3];
        edge_shift(sg.s, ni, &bd.img[3 * ms], S);
        double D[3];
        if (!accept(d2, exact_vector(ri, &bd.r[3 * ms], S, cl, D), lo, c2))
          continue;
      }
      rec[n++] = (static_cast<uint64_t>(m) << kSegBits) | static_cast<uint64_t>(t);
    }
    arena.commit(n);
    slots[ks].rec = rec;
    slots[ks].count = static_cast<int64_t>(n);
    counts[static_cast<size_t>(i)] = static_cast<int64_t>(n);
  }
}

void fill_bin(const Binned &bd, int64_t b, bool records, Scratch &sc, const Slot *slots,
              SymgnnNeighbors *out) {
  const int64_t first = bd.bin_start[static_cast<size_t>(b)];
  const int64_t last = bd.bin_start[static_cast<size_t>(b) + 1];
  if (!has_receiver(bd, first, last))
    return;
  const Mat3 &cl = bd.geo->cell;
  const HostGrid grid(bd);
  const HostAtoms atoms{bd};
  if (records)
    build_segments(bd, b, sc.segs);
  for (int64_t k = first; k < last; ++k) {
    const size_t ks = static_cast<size_t>(k);
    const int64_t i = bd.order[ks];
    if (i >= bd.n_receivers)
      continue;
    const Slot slot = slots[ks];
    const size_t ne = static_cast<size_t>(slot.count);
    sc.cand.reserve_edges(ne);
    Edge *edges = sc.cand.edges.data();
    if (records) {
      const int32_t *ni = &bd.img[3 * ks];
      const double *ri = &bd.r[3 * ks];
      for (size_t q = 0; q < ne; ++q) {
        const uint64_t r = slot.rec[q];
        const size_t ms = static_cast<size_t>(r >> kSegBits);
        const Segment &sg = sc.segs[static_cast<size_t>(r & ((uint64_t(1) << kSegBits) - 1))];
        const double *rj = &bd.r[3 * ms];
        Edge &e = edges[q];
        e.j = bd.order[ms];
        edge_shift(sg.s, ni, &bd.img[3 * ms], e.s);
        if (e.s[0] == sg.s[0] && e.s[1] == sg.s[1] && e.s[2] == sg.s[2]) {
          for (int c = 0; c < 3; ++c)
            e.d[c] = (rj[c] - ri[c]) + sg.svc[c]; // svc = shift_component(sg.s, cell, c)
        } else {
          exact_vector(ri, rj, e.s, cl, e.d);
        }
      }
    } else {
      size_t n = 0;
      for_each_edge(grid, atoms, k, b, [&](int64_t m, const int32_t *S, const double *D) {
        if (n < ne) {
          Edge &e = edges[n];
          e.j = bd.order[static_cast<size_t>(m)];
          for (int c = 0; c < 3; ++c) {
            e.s[c] = S[c];
            e.d[c] = D[c];
          }
        }
        ++n;
      });
      if (n != ne)
        fail("internal error: receiver " + std::to_string(i) + " has " + std::to_string(n) +
             " edges in pass 2 but " + std::to_string(ne) + " in pass 1");
    }
    write_sorted(edges, ne, i, bd.n_atoms, sc.keys, out, slot.offset);
  }
}

void stream_fence() {
#if defined(__SSE2__)
  _mm_sfence();
#endif
}

} // namespace symgnn_nl
