// The per-receiver walk of the neighbor list, shared by the CPU (nl_kernels.cpp)
// and the CUDA (cuda/neighbors.cu) versions (internal header).
//
// Inline functions that compile for the host and, under nvcc, for the device
// too: the fractional coordinates and wrapping of an atom, its bin, the walk
// over one row of bin offsets (cut into pieces where it wraps around a
// periodic boundary, each with its image shift), and the decision for one
// candidate. Both versions evaluate these very expressions, in this order, and
// neither contracts them into FMA (see the build flags), so their lists agree
// bit for bit.
//
// for_each_edge() is the whole walk for one receiver: the CUDA kernels run it
// per thread, and the CPU runs it in its fallback mode (see nl_driver.cpp), so
// the CPU tests exercise the CUDA decision rule too.
#ifndef SYMGNN_NL_WALK_H
#define SYMGNN_NL_WALK_H

#include <cmath>
#include <cstdint>

#if defined(__CUDACC__)
#define SYMGNN_HD __host__ __device__ __forceinline__
#else
#define SYMGNN_HD inline
#endif

namespace symgnn_nl {

SYMGNN_HD int64_t floordiv(int64_t a, int64_t b) {
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0)))
    --q;
  return q;
}

// Fractional coordinate of position p along axis k: p . Binv[:, k].
template <typename M> SYMGNN_HD double fractional(const double *p, const M &Binv, int k) {
  return p[0] * Binv[0][k] + p[1] * Binv[1][k] + p[2] * Binv[2][k];
}

// Component c of s . M for an integer shift s and the rows of M.
template <typename M> SYMGNN_HD double shift_component(const int32_t *s, const M &m, int c) {
  return static_cast<double>(s[0]) * m[0][c] + static_cast<double>(s[1]) * m[1][c] +
         static_cast<double>(s[2]) * m[2][c];
}

// Wrapped position w = p - n . B of an atom with image n.
template <typename M>
SYMGNN_HD void wrap_position(const double *p, const int32_t *n, const M &B, double *w) {
  w[0] = p[0];
  w[1] = p[1];
  w[2] = p[2];
  for (int q = 0; q < 3; ++q)
    if (n[q] != 0)
      for (int c = 0; c < 3; ++c)
        w[c] -= static_cast<double>(n[q]) * B[q][c];
}

// Bin of fractional coordinate f along an axis binned from fmin over span in
// nb bins (a flat axis, span 0, has one bin).
SYMGNN_HD int64_t bin_coord(double f, double fmin, double span, int64_t nb) {
  using std::floor;
  const double x = span > 0.0 ? (f - fmin) / span * static_cast<double>(nb) : 0.0;
  const int64_t b = static_cast<int64_t>(floor(x));
  return b < 0 ? 0 : (b > nb - 1 ? nb - 1 : b);
}

// Squared wrapped distance: (dx*dx + dy*dy) + dz*dz.
SYMGNN_HD double dist2(double dx, double dy, double dz) { return dx * dx + dy * dy + dz * dz; }

// Image shift of the edge i <- j found in a piece with shift s: S = s + n_i - n_j.
SYMGNN_HD void edge_shift(const int32_t *s, const int32_t *ni, const int32_t *nj, int32_t *S) {
  for (int c = 0; c < 3; ++c)
    S[c] = s[c] + ni[c] - nj[c];
}

// The exact vector D = (r_j - r_i) + S . cell; returns |D|^2.
template <typename M>
SYMGNN_HD double exact_vector(const double *ri, const double *rj, const int32_t *S, const M &cell,
                              double *D) {
  double e2 = 0.0;
  for (int c = 0; c < 3; ++c) {
    D[c] = (rj[c] - ri[c]) + shift_component(S, cell, c);
    e2 += D[c] * D[c];
  }
  return e2;
}

// The decision for a candidate with wrapped distance squared d2 < hi: in below
// lo; in the rounding band [lo, hi) the exact |D|^2 = e2 decides.
SYMGNN_HD bool accept(double d2, double e2, double lo, double c2) { return d2 < lo || e2 < c2; }

// The pieces of one row of bin offsets (dy, dz fixed, dx from xlo to xhi) seen
// from bin (bx, by, bz) of a grid of nb bins: f(first, end, s) gets each piece
// as the linear bins [first, end) and its image shift s. Non-periodic axes clip
// the row; periodic ones wrap it, a new piece at each boundary.
template <typename P, typename F>
SYMGNN_HD void walk_row(const int64_t *nb, const P *pbc, int64_t bx, int64_t by, int64_t bz,
                        int64_t dy, int64_t dz, int64_t xlo, int64_t xhi, F &&f) {
  const int64_t nx = nb[0], ny = nb[1], nz = nb[2];
  int64_t ty = by + dy, tz = bz + dz, sy = 0, sz = 0;
  if (pbc[1]) {
    sy = floordiv(ty, ny);
    ty -= sy * ny;
  } else if (ty < 0 || ty >= ny) {
    return;
  }
  if (pbc[2]) {
    sz = floordiv(tz, nz);
    tz -= sz * nz;
  } else if (tz < 0 || tz >= nz) {
    return;
  }
  int64_t xa = bx + xlo, xb = bx + xhi;
  if (!pbc[0]) {
    xa = xa < 0 ? 0 : xa;
    xb = xb > nx - 1 ? nx - 1 : xb;
  }
  const int64_t base = nx * (ty + ny * tz);
  int64_t x = xa;
  while (x <= xb) {
    const int64_t sx = pbc[0] ? floordiv(x, nx) : 0;
    const int64_t xw = x - sx * nx;
    const int64_t last = (sx + 1) * nx - 1;
    const int64_t xe = xb < last ? xb : last;
    const int32_t s[3] = {static_cast<int32_t>(sx), static_cast<int32_t>(sy),
                          static_cast<int32_t>(sz)};
    f(base + xw, base + xw + (xe - x) + 1, s);
    x = xe + 1;
  }
}

// Every edge of the receiver at bin-sorted position k (in bin b), in walk
// order: f(m, S, D) for each accepted sender m (bin-sorted).
//   grid:  nb[3], pbc[3], B and cell (rows), lo, hi, c2 (the thresholds on d2
//          of nl_detail.h), rows[n_rows] (each with dy, dz, xlo, xhi);
//   atoms: start(b) (first bin-sorted atom of bin b), and for bin-sorted atom
//          m wrapped(m, c), position(m) and image(m) (pointers to 3 values).
template <typename GridT, typename Atoms, typename F>
SYMGNN_HD void for_each_edge(const GridT &grid, const Atoms &atoms, int64_t k, int64_t b, F &&f) {
  const int64_t nx = grid.nb[0], ny = grid.nb[1];
  const int64_t bx = b % nx, by = (b / nx) % ny, bz = b / (nx * ny);
  const double xi = atoms.wrapped(k, 0), yi = atoms.wrapped(k, 1), zi = atoms.wrapped(k, 2);
  const double *ri = atoms.position(k);
  const int32_t *ni = atoms.image(k);
  for (int64_t r = 0; r < static_cast<int64_t>(grid.n_rows); ++r) {
    const auto &row = grid.rows[r];
    walk_row(grid.nb, grid.pbc, bx, by, bz, row.dy, row.dz, row.xlo, row.xhi,
             [&](int64_t first, int64_t end, const int32_t *s) {
               const int64_t begin = atoms.start(first), stop = atoms.start(end);
               if (begin >= stop)
                 return;
               const bool zero_shift = s[0] == 0 && s[1] == 0 && s[2] == 0;
               const double sv[3] = {shift_component(s, grid.B, 0), shift_component(s, grid.B, 1),
                                     shift_component(s, grid.B, 2)};
               for (int64_t m = begin; m < stop; ++m) {
                 const double d2 =
                     dist2((atoms.wrapped(m, 0) + sv[0]) - xi, (atoms.wrapped(m, 1) + sv[1]) - yi,
                           (atoms.wrapped(m, 2) + sv[2]) - zi);
                 if (!(d2 < grid.hi))
                   continue;
                 if (m == k && zero_shift)
                   continue; // the receiver itself
                 int32_t S[3];
                 edge_shift(s, ni, atoms.image(m), S);
                 double D[3];
                 const double e2 = exact_vector(ri, atoms.position(m), S, grid.cell, D);
                 if (accept(d2, e2, grid.lo, grid.c2))
                   f(m, S, D);
               }
             });
  }
}

} // namespace symgnn_nl

#endif
