// symgnn neighbor list, CPU implementation (C++17, std::thread, no torch).
//
// Algorithm
// ---------
// 1. A "binning box" B (rows b_0, b_1, b_2) is built: on periodic axes b_k is
//    the lattice vector; non-periodic axes get unit vectors orthogonal to the
//    periodic ones (so the user's cell is irrelevant there and may be NULL).
//    Fractional coordinates f = r . B^-1 are wrapped into [0, 1) on periodic
//    axes; the integer image n_a = floor(f) of each atom is remembered, so that
//    shifts are exact for positions outside the cell. On non-periodic axes the
//    bounding box of the atoms is used.
// 2. Atoms are sorted into bins (counting sort) of width about cutoff/2 along
//    each face normal. The set of bin offsets that can hold a neighbor is
//    computed once: for each offset, the exact minimum distance between two
//    bins (a small box-constrained QP) is compared with the cutoff. Offsets are
//    grouped into rows along x, so each (bin, row) is one contiguous range of
//    bin-sorted atoms (split where the row wraps around a periodic boundary;
//    each piece carries its integer image shift). Small cells simply produce
//    offsets spanning several periods, so every image within the cutoff is
//    listed.
// 3. Receivers are processed bin by bin (cache friendly) by a pool of
//    std::threads taking chunks of bins. Each receiver's edges are sorted by
//    (j, S) and appended to the worker's buffer; the final output is assembled
//    in receiver order. The result does not depend on the number of threads.
// 4. A candidate found with wrapped coordinates is re-evaluated exactly as
//    D = (r_j - r_i) + S . cell with the user's positions; an edge is kept when
//    |D|^2 < cutoff^2. So D and the inclusion test are consistent bit for bit.
#include "symgnn_nl.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <new>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

#ifdef SYMGNN_WITH_CUDA
// defined in cuda/neighbors.cu: releases the device storage of a CUDA result
void symgnn_cuda_free_storage(void *opaque);
#endif

namespace {

thread_local std::string g_error;

struct NlError {
  std::string message;
};

[[noreturn]] void fail(const std::string &msg) { throw NlError{msg}; }

std::string fmt(double v) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.17g", v);
  return buf;
}

std::string fmt3(const double *v) {
  return "(" + fmt(v[0]) + ", " + fmt(v[1]) + ", " + fmt(v[2]) + ")";
}

using Vec3 = std::array<double, 3>;
using Mat3 = std::array<Vec3, 3>;

double dot(const Vec3 &a, const Vec3 &b) { return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]; }
Vec3 cross(const Vec3 &a, const Vec3 &b) {
  return {a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]};
}
double norm(const Vec3 &a) { return std::sqrt(dot(a, a)); }

// Inverse of a 3x3 matrix M with rows m_k: returns R such that M R = I.
// Columns of R are the reciprocal vectors.
Mat3 inverse(const Mat3 &m) {
  Vec3 c0 = cross(m[1], m[2]);
  Vec3 c1 = cross(m[2], m[0]);
  Vec3 c2 = cross(m[0], m[1]);
  double det = dot(m[0], c0);
  Mat3 r;
  for (int a = 0; a < 3; ++a) {
    r[a][0] = c0[a] / det;
    r[a][1] = c1[a] / det;
    r[a][2] = c2[a] / det;
  }
  return r;
}

int64_t floordiv(int64_t a, int64_t b) {
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0)))
    --q;
  return q;
}

int default_threads() {
  const char *env = std::getenv("SYMGNN_NUM_THREADS");
  if (env == nullptr || *env == '\0')
    env = std::getenv("OMP_NUM_THREADS");
  if (env != nullptr && *env != '\0') {
    char *end = nullptr;
    long v = std::strtol(env, &end, 10);
    if (end != env && v > 0)
      return static_cast<int>(std::min<long>(v, 1024));
  }
  unsigned hc = std::thread::hardware_concurrency();
  return hc == 0 ? 1 : static_cast<int>(hc);
}

double physical_memory_bytes() {
  long pages = sysconf(_SC_PHYS_PAGES);
  long page = sysconf(_SC_PAGE_SIZE);
  if (pages <= 0 || page <= 0)
    return 64.0 * (1ull << 30);
  return static_cast<double>(pages) * static_cast<double>(page);
}

// Minimum of |sum_k (d_k + t_k) g_k| over t in [-1, 1]^3: the smallest
// distance between a point of one bin and a point of a bin offset by d. Exact,
// by enumerating the 27 faces of the box of t (the QP is convex).
double min_bin_distance(const std::array<int64_t, 3> &d, const Mat3 &g) {
  double best = std::numeric_limits<double>::infinity();
  for (int face = 0; face < 27; ++face) {
    int code[3] = {face % 3, (face / 3) % 3, face / 9}; // 0: free, 1: t=-1, 2: t=+1
    Vec3 v0 = {0, 0, 0};
    int free_axes[3];
    int nfree = 0;
    for (int k = 0; k < 3; ++k) {
      double t = code[k] == 0 ? 0.0 : (code[k] == 1 ? -1.0 : 1.0);
      double c = static_cast<double>(d[k]) + t;
      if (code[k] == 0) {
        c = static_cast<double>(d[k]);
        free_axes[nfree++] = k;
      }
      for (int a = 0; a < 3; ++a)
        v0[a] += c * g[k][a];
    }
    // minimize |v0 + sum_free u_f g_f|^2 with u_f = t_f unconstrained
    double u[3] = {0, 0, 0};
    if (nfree > 0) {
      double A[3][3], b[3];
      for (int p = 0; p < nfree; ++p) {
        for (int q = 0; q < nfree; ++q)
          A[p][q] = dot(g[free_axes[p]], g[free_axes[q]]);
        b[p] = -dot(g[free_axes[p]], v0);
      }
      // Gaussian elimination (Gram matrix of independent vectors: SPD)
      for (int p = 0; p < nfree; ++p) {
        for (int q = p + 1; q < nfree; ++q) {
          double f = A[q][p] / A[p][p];
          for (int r = p; r < nfree; ++r)
            A[q][r] -= f * A[p][r];
          b[q] -= f * b[p];
        }
      }
      for (int p = nfree - 1; p >= 0; --p) {
        double s = b[p];
        for (int r = p + 1; r < nfree; ++r)
          s -= A[p][r] * u[r];
        u[p] = s / A[p][p];
      }
      bool feasible = true;
      for (int p = 0; p < nfree; ++p)
        if (!(u[p] >= -1.0 && u[p] <= 1.0))
          feasible = false;
      if (!feasible)
        continue;
    }
    Vec3 v = v0;
    for (int p = 0; p < nfree; ++p)
      for (int a = 0; a < 3; ++a)
        v[a] += u[p] * g[free_axes[p]][a];
    best = std::min(best, norm(v));
  }
  return best;
}

// Whether two bins offset by d can hold points closer than cut.
bool offset_within(const std::array<int64_t, 3> &d, const Mat3 &g, double cut) {
  Vec3 center = {0, 0, 0};
  double radius = 0.0;
  for (int k = 0; k < 3; ++k) {
    radius += norm(g[k]);
    for (int a = 0; a < 3; ++a)
      center[a] += static_cast<double>(d[k]) * g[k][a];
  }
  double dc = norm(center);
  if (dc - radius > cut * (1.0 + 1e-12))
    return false;
  if (dc + radius < cut)
    return true;
  return min_bin_distance(d, g) <= cut * (1.0 + 1e-12);
}

struct Row {
  int64_t dy, dz, xlo, xhi;
};

struct Segment {
  int64_t begin, end; // range of bin-sorted atoms
  int32_t s[3];       // image shift in the binning frame
  double sv[3];       // s . cell
};

struct Edge {
  int64_t j;
  int32_t s[3];
  double d[3];
};

struct WorkerBuffer {
  std::vector<int64_t> j;
  std::vector<int32_t> s;
  std::vector<double> d;
  std::string error;
};

// One contiguous memory block holding the four output arrays.
struct Output {
  void *block = nullptr;
  int64_t *recv = nullptr;
  int64_t *send = nullptr;
  int32_t *shift = nullptr;
  double *vec = nullptr;
};

Output allocate_output(int64_t n_edges) {
  Output o;
  size_t e = static_cast<size_t>(n_edges);
  size_t bytes_i = 8 * e, bytes_s = 12 * e, bytes_d = 24 * e;
  size_t off_send = bytes_i;
  size_t off_vec = off_send + bytes_i;
  size_t off_shift = off_vec + bytes_d;
  size_t total = off_shift + bytes_s + 64;
  o.block = std::malloc(total);
  if (o.block == nullptr)
    fail("could not allocate " + std::to_string(total) + " bytes for " + std::to_string(n_edges) +
         " edges");
  char *base = static_cast<char *>(o.block);
  o.recv = reinterpret_cast<int64_t *>(base);
  o.send = reinterpret_cast<int64_t *>(base + off_send);
  o.vec = reinterpret_cast<double *>(base + off_vec);
  o.shift = reinterpret_cast<int32_t *>(base + off_shift);
  return o;
}

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

void compute(const double *positions, int64_t n_atoms, const double *cell_in, const bool *pbc_in,
             double cutoff, int64_t n_receivers, int n_threads, SymgnnNeighbors *out) {
  // ------------------------------------------------------------ validation
  if (out == nullptr)
    fail("out is NULL: pass a pointer to a SymgnnNeighbors struct");
  if (n_atoms < 0)
    fail("n_atoms must be >= 0, got " + std::to_string(n_atoms));
  if (n_atoms > 0 && positions == nullptr)
    fail("positions is NULL but n_atoms = " + std::to_string(n_atoms));
  if (pbc_in == nullptr)
    fail("pbc is NULL: pass three booleans");
  if (!std::isfinite(cutoff) || !(cutoff > 0.0))
    fail("cutoff must be a finite number > 0, got " + fmt(cutoff));
  if (n_receivers < 0)
    n_receivers = n_atoms;
  if (n_receivers > n_atoms)
    fail("n_receivers (" + std::to_string(n_receivers) + ") must be <= n_atoms (" +
         std::to_string(n_atoms) + ")");
  bool pbc[3] = {pbc_in[0], pbc_in[1], pbc_in[2]};
  int n_periodic = int(pbc[0]) + int(pbc[1]) + int(pbc[2]);
  if (n_periodic > 0 && cell_in == nullptr)
    fail("cell is NULL but pbc has a periodic axis");
  Mat3 cell{};
  for (int k = 0; k < 3; ++k) {
    if (!pbc[k])
      continue;
    for (int a = 0; a < 3; ++a)
      cell[k][a] = cell_in[3 * k + a];
    if (!std::isfinite(cell[k][0]) || !std::isfinite(cell[k][1]) || !std::isfinite(cell[k][2]))
      fail("cell row " + std::to_string(k) +
           " (periodic axis) is not finite: " + fmt3(cell[k].data()));
  }
  for (int64_t a = 0; a < n_atoms; ++a) {
    const double *p = positions + 3 * a;
    if (!std::isfinite(p[0]) || !std::isfinite(p[1]) || !std::isfinite(p[2]))
      fail("positions[" + std::to_string(a) + "] is not finite: " + fmt3(p));
  }

  // ------------------------------------------------------------ binning box
  // B rows: lattice vectors on periodic axes, orthonormal complement elsewhere.
  Mat3 B{};
  {
    int per[3], np = 0, nonper[3], nn = 0;
    for (int k = 0; k < 3; ++k) {
      if (pbc[k])
        per[np++] = k;
      else
        nonper[nn++] = k;
    }
    for (int p = 0; p < np; ++p)
      B[per[p]] = cell[per[p]];
    auto degenerate = [&](const std::string &what) {
      std::string rows;
      for (int p = 0; p < np; ++p)
        rows += " cell[" + std::to_string(per[p]) + "] = " + fmt3(cell[per[p]].data()) + ";";
      fail("cell is singular on the periodic axes (" + what + "):" + rows +
           " periodic lattice vectors must be non-zero and linearly independent");
    };
    if (np == 1) {
      Vec3 a = B[per[0]];
      double la = norm(a);
      if (!(la > 0.0))
        degenerate("zero-length lattice vector");
      Vec3 u = {a[0] / la, a[1] / la, a[2] / la};
      // any vector not parallel to u
      Vec3 t = std::fabs(u[0]) < 0.9 ? Vec3{1, 0, 0} : Vec3{0, 1, 0};
      Vec3 e1 = cross(u, t);
      double l1 = norm(e1);
      e1 = {e1[0] / l1, e1[1] / l1, e1[2] / l1};
      Vec3 e2 = cross(u, e1);
      B[nonper[0]] = e1;
      B[nonper[1]] = e2;
    } else if (np == 2) {
      Vec3 a = B[per[0]], b = B[per[1]];
      Vec3 c = cross(a, b);
      double lc = norm(c);
      if (!(lc > 1e-12 * norm(a) * norm(b)) || !(lc > 0.0))
        degenerate("the two periodic lattice vectors are parallel or zero");
      B[nonper[0]] = {c[0] / lc, c[1] / lc, c[2] / lc};
    } else if (np == 3) {
      double det = dot(B[0], cross(B[1], B[2]));
      double scale = norm(B[0]) * norm(B[1]) * norm(B[2]);
      if (!(std::fabs(det) > 1e-12 * scale) || !(scale > 0.0))
        degenerate("volume " + fmt(det));
    } else {
      B[0] = {1, 0, 0};
      B[1] = {0, 1, 0};
      B[2] = {0, 0, 1};
    }
    // keep a right-handed-or-not frame; only its invertibility matters
  }
  Mat3 Binv = inverse(B);
  // face-to-face distances of the binning box (1 on non-periodic axes)
  double h[3];
  for (int k = 0; k < 3; ++k) {
    Vec3 rk = {Binv[0][k], Binv[1][k], Binv[2][k]};
    h[k] = 1.0 / norm(rk);
  }

  out->length = 0;
  if (n_atoms == 0 || n_receivers == 0) {
    Output o = allocate_output(0);
    out->receivers = o.recv;
    out->senders = o.send;
    out->shifts = o.shift;
    out->vectors = o.vec;
    out->device = SYMGNN_CPU;
    out->opaque = o.block;
    return;
  }

  // ------------------------------------------------------------ fractional coordinates
  const size_t N = static_cast<size_t>(n_atoms);
  std::vector<double> frac(3 * N);
  std::vector<int32_t> image(3 * N, 0);
  double fmin[3] = {0, 0, 0}, fmax[3] = {0, 0, 0};
  double max_abs = 0.0;
  for (int k = 0; k < 3; ++k) {
    fmin[k] = std::numeric_limits<double>::infinity();
    fmax[k] = -std::numeric_limits<double>::infinity();
  }
  for (size_t a = 0; a < N; ++a) {
    const double *p = positions + 3 * a;
    for (int k = 0; k < 3; ++k) {
      double f = p[0] * Binv[0][k] + p[1] * Binv[1][k] + p[2] * Binv[2][k];
      max_abs = std::max(max_abs, std::fabs(p[k]));
      if (pbc[k]) {
        double fl = std::floor(f);
        if (!(std::fabs(fl) < 1073741824.0))
          fail("positions[" + std::to_string(a) + "] = " + fmt3(p) +
               " is too far from the cell: fractional coordinate " + fmt(f) + " along axis " +
               std::to_string(k) + " does not fit the int32 shifts");
        image[3 * a + k] = static_cast<int32_t>(fl);
        f -= fl;
        if (f >= 1.0)
          f = std::nextafter(1.0, 0.0);
        if (f < 0.0)
          f = 0.0;
      } else {
        fmin[k] = std::min(fmin[k], f);
        fmax[k] = std::max(fmax[k], f);
      }
      frac[3 * a + k] = f;
    }
  }
  double span[3]; // extent in fractional units
  for (int k = 0; k < 3; ++k) {
    if (pbc[k]) {
      fmin[k] = 0.0;
      span[k] = 1.0;
    } else {
      span[k] = fmax[k] - fmin[k];
    }
  }
  double cell_scale = 0.0;
  for (int k = 0; k < 3; ++k)
    cell_scale += norm(cell[k]);
  // candidates are screened with wrapped coordinates and a slightly larger
  // cutoff, then re-checked exactly
  const double cand_cut = cutoff * (1.0 + 1e-9) + 1e-12 * (max_abs + cell_scale * 4.0);
  const double cand_c2 = cand_cut * cand_cut;
  const double c2 = cutoff * cutoff;

  // ------------------------------------------------------------ bins
  int64_t nb[3];
  {
    double width = cand_cut / 2.0; // bins of about half the cutoff
    const double max_bins = std::max(64.0, 2.0 * static_cast<double>(N));
    for (int iter = 0; iter < 400; ++iter) {
      double total = 1.0;
      for (int k = 0; k < 3; ++k) {
        double ext = span[k] * h[k]; // physical extent along the face normal
        double n = std::floor(ext / width);
        if (!(n >= 1.0))
          n = 1.0;
        if (n > 1e7)
          n = 1e7;
        nb[k] = static_cast<int64_t>(n);
        total *= n;
      }
      if (total <= max_bins)
        break;
      width *= 1.25;
    }
  }
  // search range in bins along each axis
  int64_t range[3];
  Mat3 g; // bin vectors
  for (int k = 0; k < 3; ++k) {
    double ext = span[k] * h[k];
    double r = ext > 0.0 ? std::ceil(cand_cut * static_cast<double>(nb[k]) / ext) : 0.0;
    if (!pbc[k])
      r = std::min(r, static_cast<double>(nb[k] - 1));
    if (r > 1e8)
      r = 1e8;
    range[k] = static_cast<int64_t>(r);
    for (int a = 0; a < 3; ++a)
      g[k][a] = B[k][a] * span[k] / static_cast<double>(nb[k]);
    if (!(span[k] > 0.0)) {
      // all atoms share this coordinate: one flat bin; the offset along it is
      // always 0, so any small non-zero bin vector works
      for (int a = 0; a < 3; ++a)
        g[k][a] = B[k][a] * cand_cut * 1e-6;
    }
  }
  {
    double n_offsets =
        double(2 * range[0] + 1) * double(2 * range[1] + 1) * double(2 * range[2] + 1);
    if (n_offsets > 2e7) {
      std::string hs = fmt(h[0]) + ", " + fmt(h[1]) + ", " + fmt(h[2]);
      fail("cutoff " + fmt(cutoff) + " is too large for the cell (face-to-face distances " + hs +
           "): every atom would scan about " + fmt(n_offsets) +
           " periodic images/bins; reduce the cutoff or use a larger cell");
    }
  }
  // rough upper bound of the number of edges, to fail early instead of OOM
  {
    double mem = physical_memory_bytes();
    if (n_periodic == 3) {
      double vol = std::fabs(dot(B[0], cross(B[1], B[2])));
      double est = double(n_receivers) * double(n_atoms) * (4.0 / 3.0) * 3.14159265358979323846 *
                   cutoff * cutoff * cutoff / vol;
      if (est * 52.0 > mem) {
        fail("the neighbor list would hold about " + fmt(std::round(est)) + " edges (" +
             fmt(std::round(est * 52.0 / 1073741824.0)) + " GiB) for " + std::to_string(n_atoms) +
             " atoms, cutoff " + fmt(cutoff) + " and cell volume " + fmt(vol) +
             ", more than this machine's memory (" + fmt(std::round(mem / 1073741824.0)) +
             " GiB); reduce the cutoff");
      }
    }
  }

  const int64_t nbins = nb[0] * nb[1] * nb[2];
  std::vector<int64_t> bin_of(N);
  std::vector<int64_t> bin_start(static_cast<size_t>(nbins) + 1, 0);
  for (size_t a = 0; a < N; ++a) {
    int64_t idx[3];
    for (int k = 0; k < 3; ++k) {
      double f = frac[3 * a + k] - fmin[k];
      double x = span[k] > 0.0 ? f / span[k] * static_cast<double>(nb[k]) : 0.0;
      int64_t b = static_cast<int64_t>(std::floor(x));
      idx[k] = std::min<int64_t>(std::max<int64_t>(b, 0), nb[k] - 1);
    }
    int64_t lin = idx[0] + nb[0] * (idx[1] + nb[1] * idx[2]);
    bin_of[a] = lin;
    bin_start[static_cast<size_t>(lin) + 1]++;
  }
  for (int64_t b = 0; b < nbins; ++b)
    bin_start[static_cast<size_t>(b) + 1] += bin_start[static_cast<size_t>(b)];
  // bin-sorted arrays
  std::vector<int64_t> order(N);
  std::vector<double> px(N), py(N), pz(N); // wrapped positions
  std::vector<double> rpos(3 * N);         // original positions
  std::vector<int32_t> img(3 * N);
  {
    std::vector<int64_t> fill(bin_start.begin(), bin_start.end() - 1);
    for (size_t a = 0; a < N; ++a) {
      size_t k = static_cast<size_t>(fill[static_cast<size_t>(bin_of[a])]++);
      order[k] = static_cast<int64_t>(a);
    }
    for (size_t k = 0; k < N; ++k) {
      size_t a = static_cast<size_t>(order[k]);
      const double *p = positions + 3 * a;
      double w[3] = {p[0], p[1], p[2]};
      const int32_t *n = &image[3 * a];
      for (int q = 0; q < 3; ++q) {
        if (n[q] != 0)
          for (int c = 0; c < 3; ++c)
            w[c] -= static_cast<double>(n[q]) * B[q][c];
      }
      px[k] = w[0];
      py[k] = w[1];
      pz[k] = w[2];
      for (int c = 0; c < 3; ++c) {
        rpos[3 * k + c] = p[c];
        img[3 * k + c] = n[c];
      }
    }
  }
  std::vector<double>().swap(frac);

  // ------------------------------------------------------------ rows of bin offsets
  std::vector<Row> rows;
  for (int64_t dz = -range[2]; dz <= range[2]; ++dz) {
    for (int64_t dy = -range[1]; dy <= range[1]; ++dy) {
      int64_t lo = 1, hi = 0;
      bool found = false;
      for (int64_t dx = -range[0]; dx <= range[0]; ++dx) {
        if (offset_within({dx, dy, dz}, g, cand_cut)) {
          if (!found) {
            lo = dx;
            found = true;
          }
          hi = dx;
        }
      }
      if (found)
        rows.push_back({dy, dz, lo, hi});
    }
  }

  // ------------------------------------------------------------ threads
  if (n_threads <= 0)
    n_threads = default_threads();
  {
    // do not spawn threads for tiny jobs
    int64_t work = n_receivers * static_cast<int64_t>(std::max<size_t>(rows.size(), 1));
    int64_t max_useful = std::max<int64_t>(1, work / 20000);
    n_threads = static_cast<int>(std::min<int64_t>(n_threads, max_useful));
    n_threads = std::max(1, std::min(n_threads, 256));
  }

  const double mem_limit_edges = physical_memory_bytes() / 110.0;
  std::vector<int64_t> counts(static_cast<size_t>(n_receivers), 0);
  std::vector<int64_t> where(static_cast<size_t>(n_receivers), 0); // offset in worker buffer
  std::vector<int32_t> owner(static_cast<size_t>(n_receivers), 0);
  std::vector<WorkerBuffer> buffers(static_cast<size_t>(n_threads));
  std::atomic<int64_t> next_bin{0};
  std::atomic<int64_t> total_edges{0};
  std::atomic<bool> abort{false};
  const int64_t chunk = std::max<int64_t>(1, nbins / (static_cast<int64_t>(n_threads) * 32));
  const Mat3 &cl = cell; // non-periodic rows are zero

  auto worker = [&](int tid) {
    WorkerBuffer &buf = buffers[static_cast<size_t>(tid)];
    std::vector<Segment> segs;
    std::vector<Edge> edges;
    std::vector<std::pair<uint64_t, uint32_t>> keys;
    std::vector<uint32_t> perm;
    int64_t local_edges = 0;
    try {
      while (!abort.load(std::memory_order_relaxed)) {
        int64_t b0 = next_bin.fetch_add(chunk);
        if (b0 >= nbins)
          break;
        int64_t b1 = std::min(nbins, b0 + chunk);
        for (int64_t b = b0; b < b1; ++b) {
          int64_t first = bin_start[static_cast<size_t>(b)];
          int64_t last = bin_start[static_cast<size_t>(b) + 1];
          if (first == last)
            continue;
          bool any_receiver = false;
          for (int64_t k = first; k < last; ++k)
            if (order[static_cast<size_t>(k)] < n_receivers) {
              any_receiver = true;
              break;
            }
          if (!any_receiver)
            continue;
          int64_t bx = b % nb[0];
          int64_t by = (b / nb[0]) % nb[1];
          int64_t bz = b / (nb[0] * nb[1]);
          // segments of neighbor atoms for this bin
          segs.clear();
          for (const Row &row : rows) {
            int64_t ty = by + row.dy, tz = bz + row.dz, sy = 0, sz = 0;
            if (pbc[1]) {
              sy = floordiv(ty, nb[1]);
              ty -= sy * nb[1];
            } else if (ty < 0 || ty >= nb[1]) {
              continue;
            }
            if (pbc[2]) {
              sz = floordiv(tz, nb[2]);
              tz -= sz * nb[2];
            } else if (tz < 0 || tz >= nb[2]) {
              continue;
            }
            int64_t xa = bx + row.xlo, xb = bx + row.xhi;
            if (!pbc[0]) {
              xa = std::max<int64_t>(xa, 0);
              xb = std::min<int64_t>(xb, nb[0] - 1);
            }
            int64_t base = nb[0] * (ty + nb[1] * tz);
            int64_t x = xa;
            while (x <= xb) {
              int64_t sx = pbc[0] ? floordiv(x, nb[0]) : 0;
              int64_t xw = x - sx * nb[0];
              int64_t xe = std::min(xb, (sx + 1) * nb[0] - 1); // last x of this period
              int64_t len = xe - x + 1;
              Segment sg;
              sg.begin = bin_start[static_cast<size_t>(base + xw)];
              sg.end = bin_start[static_cast<size_t>(base + xw + len)];
              if (sg.begin < sg.end) {
                sg.s[0] = static_cast<int32_t>(sx);
                sg.s[1] = static_cast<int32_t>(sy);
                sg.s[2] = static_cast<int32_t>(sz);
                for (int c = 0; c < 3; ++c)
                  sg.sv[c] = static_cast<double>(sg.s[0]) * B[0][c] +
                             static_cast<double>(sg.s[1]) * B[1][c] +
                             static_cast<double>(sg.s[2]) * B[2][c];
                segs.push_back(sg);
              }
              x = xe + 1;
            }
          }
          for (int64_t k = first; k < last; ++k) {
            const int64_t i = order[static_cast<size_t>(k)];
            if (i >= n_receivers)
              continue;
            const double xi = px[static_cast<size_t>(k)], yi = py[static_cast<size_t>(k)],
                         zi = pz[static_cast<size_t>(k)];
            const int32_t *ni = &img[3 * static_cast<size_t>(k)];
            const double *ri = &rpos[3 * static_cast<size_t>(k)];
            edges.clear();
            for (const Segment &sg : segs) {
              const double ox = sg.sv[0] - xi, oy = sg.sv[1] - yi, oz = sg.sv[2] - zi;
              for (int64_t m = sg.begin; m < sg.end; ++m) {
                const double dx = px[static_cast<size_t>(m)] + ox;
                const double dy = py[static_cast<size_t>(m)] + oy;
                const double dz = pz[static_cast<size_t>(m)] + oz;
                const double d2 = dx * dx + dy * dy + dz * dz;
                if (d2 >= cand_c2)
                  continue;
                const int32_t *nj = &img[3 * static_cast<size_t>(m)];
                Edge e;
                e.s[0] = sg.s[0] + ni[0] - nj[0];
                e.s[1] = sg.s[1] + ni[1] - nj[1];
                e.s[2] = sg.s[2] + ni[2] - nj[2];
                e.j = order[static_cast<size_t>(m)];
                if (e.j == i && e.s[0] == 0 && e.s[1] == 0 && e.s[2] == 0)
                  continue;
                const double *rj = &rpos[3 * static_cast<size_t>(m)];
                const double s0 = e.s[0], s1 = e.s[1], s2 = e.s[2];
                double q2 = 0.0;
                for (int c = 0; c < 3; ++c) {
                  e.d[c] = (rj[c] - ri[c]) + (s0 * cl[0][c] + s1 * cl[1][c] + s2 * cl[2][c]);
                  q2 += e.d[c] * e.d[c];
                }
                if (q2 < c2)
                  edges.push_back(e);
              }
            }
            // sort by (j, S)
            const size_t ne = edges.size();
            bool packable = true;
            for (const Edge &e : edges)
              for (int c = 0; c < 3; ++c)
                if (e.s[c] < -128 || e.s[c] > 127)
                  packable = false;
            perm.resize(ne);
            if (packable && n_atoms < (int64_t(1) << 40)) {
              keys.resize(ne);
              for (size_t q = 0; q < ne; ++q) {
                const Edge &e = edges[q];
                uint64_t key = (static_cast<uint64_t>(e.j) << 24) |
                               (static_cast<uint64_t>(e.s[0] + 128) << 16) |
                               (static_cast<uint64_t>(e.s[1] + 128) << 8) |
                               static_cast<uint64_t>(e.s[2] + 128);
                keys[q] = {key, static_cast<uint32_t>(q)};
              }
              std::sort(keys.begin(), keys.end());
              for (size_t q = 0; q < ne; ++q)
                perm[q] = keys[q].second;
            } else {
              for (size_t q = 0; q < ne; ++q)
                perm[q] = static_cast<uint32_t>(q);
              std::sort(perm.begin(), perm.end(), [&edges](uint32_t a, uint32_t b) {
                const Edge &x = edges[a], &y = edges[b];
                if (x.j != y.j)
                  return x.j < y.j;
                if (x.s[0] != y.s[0])
                  return x.s[0] < y.s[0];
                if (x.s[1] != y.s[1])
                  return x.s[1] < y.s[1];
                return x.s[2] < y.s[2];
              });
            }
            const size_t start = buf.j.size();
            buf.j.resize(start + ne);
            buf.s.resize(3 * (start + ne));
            buf.d.resize(3 * (start + ne));
            for (size_t q = 0; q < ne; ++q) {
              const Edge &e = edges[perm[q]];
              buf.j[start + q] = e.j;
              for (int c = 0; c < 3; ++c) {
                buf.s[3 * (start + q) + c] = e.s[c];
                buf.d[3 * (start + q) + c] = e.d[c];
              }
            }
            counts[static_cast<size_t>(i)] = static_cast<int64_t>(ne);
            where[static_cast<size_t>(i)] = static_cast<int64_t>(start);
            owner[static_cast<size_t>(i)] = tid;
            local_edges += static_cast<int64_t>(ne);
            if (local_edges > 65536) {
              int64_t tot = total_edges.fetch_add(local_edges) + local_edges;
              local_edges = 0;
              if (static_cast<double>(tot) > mem_limit_edges) {
                buf.error = "the neighbor list grew past " + std::to_string(tot) +
                            " edges, more than this machine's memory can hold (cutoff " +
                            fmt(cutoff) + ", " + std::to_string(n_atoms) +
                            " atoms); reduce the cutoff";
                abort.store(true);
                return;
              }
            }
          }
        }
      }
    } catch (const std::bad_alloc &) {
      buf.error = "out of memory while building the neighbor list (cutoff " + fmt(cutoff) + ", " +
                  std::to_string(n_atoms) + " atoms)";
      abort.store(true);
    }
  };
  run_parallel(n_threads, worker);
  for (auto &buf : buffers)
    if (!buf.error.empty())
      fail(buf.error);

  // ------------------------------------------------------------ assemble in receiver order
  std::vector<int64_t> offsets(static_cast<size_t>(n_receivers) + 1, 0);
  for (int64_t i = 0; i < n_receivers; ++i)
    offsets[static_cast<size_t>(i) + 1] =
        offsets[static_cast<size_t>(i)] + counts[static_cast<size_t>(i)];
  const int64_t E = offsets[static_cast<size_t>(n_receivers)];
  Output o = allocate_output(E);
  run_parallel(n_threads, [&](int tid) {
    int64_t lo = n_receivers * tid / n_threads, hi = n_receivers * (tid + 1) / n_threads;
    for (int64_t i = lo; i < hi; ++i) {
      const int64_t n = counts[static_cast<size_t>(i)];
      if (n == 0)
        continue;
      const WorkerBuffer &buf = buffers[static_cast<size_t>(owner[static_cast<size_t>(i)])];
      const size_t src = static_cast<size_t>(where[static_cast<size_t>(i)]);
      const size_t dst = static_cast<size_t>(offsets[static_cast<size_t>(i)]);
      const size_t cnt = static_cast<size_t>(n);
      for (size_t q = 0; q < cnt; ++q)
        o.recv[dst + q] = i;
      std::memcpy(o.send + dst, buf.j.data() + src, cnt * sizeof(int64_t));
      std::memcpy(o.shift + 3 * dst, buf.s.data() + 3 * src, 3 * cnt * sizeof(int32_t));
      std::memcpy(o.vec + 3 * dst, buf.d.data() + 3 * src, 3 * cnt * sizeof(double));
    }
  });
  out->length = E;
  out->receivers = o.recv;
  out->senders = o.send;
  out->shifts = o.shift;
  out->vectors = o.vec;
  out->device = SYMGNN_CPU;
  out->opaque = o.block;
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
  if (out != nullptr)
    std::memset(out, 0, sizeof(*out));
  if (error != nullptr)
    *error = g_error.c_str();
  return 1;
}

extern "C" void symgnn_neighbors_free(SymgnnNeighbors *out) {
  if (out == nullptr)
    return;
  if (out->device == SYMGNN_CPU) {
    std::free(out->opaque);
  }
  // CUDA storage is released by the CUDA translation unit (see cuda/neighbors.cu)
#ifdef SYMGNN_WITH_CUDA
  else {
    symgnn_cuda_free_storage(out->opaque);
  }
#endif
  std::memset(out, 0, sizeof(*out));
}
