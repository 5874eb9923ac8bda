// Host-side set-up shared by the CPU and CUDA neighbor lists (internal header):
// input validation, the binning box and the grid of bins. The per-atom walk
// both run on it is in nl_walk.h.
//
// Both implementations bin atoms in the same "binning box" B: on periodic axes
// its rows are the lattice vectors, on non-periodic axes unit vectors
// orthogonal to the periodic ones (the user's cell is ignored there).
// Fractional coordinates f = r . B^-1 are wrapped into [0, 1) on periodic axes,
// remembering the integer image n = floor(f) of every atom; on non-periodic
// axes the bounding box of the atoms is binned.
//
// Candidates are screened with wrapped positions p = r - n . B: a pair with
// wrapped distance squared d2 < lo is in, d2 >= hi is out, and in the thin band
// between (width about 1e-13 of the coordinates' magnitude) the exact vector
// D = (r_j - r_i) + S . cell decides. So the result is exactly "|D|^2 < cutoff^2
// computed from the user's positions", for any wrapping of the input.
#ifndef SYMGNN_NL_DETAIL_H
#define SYMGNN_NL_DETAIL_H

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <string>
#include <vector>

#include "nl_walk.h"

namespace symgnn_nl {

struct NlError {
  std::string message;
};

[[noreturn]] inline void fail(const std::string &msg) { throw NlError{msg}; }

inline std::string fmt(double v) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.17g", v);
  return buf;
}

inline std::string fmt3(const double *v) {
  return "(" + fmt(v[0]) + ", " + fmt(v[1]) + ", " + fmt(v[2]) + ")";
}

using Vec3 = std::array<double, 3>;
using Mat3 = std::array<Vec3, 3>;

inline double dot(const Vec3 &a, const Vec3 &b) { return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]; }
inline Vec3 cross(const Vec3 &a, const Vec3 &b) {
  return {a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]};
}
inline double norm(const Vec3 &a) { return std::sqrt(dot(a, a)); }

// Largest |floor(f)| accepted on a periodic axis, so that S stays in int32.
constexpr double kMaxImage = 536870912.0; // 2^29
// Most bin offsets (periodic images) one atom may scan.
constexpr double kMaxOffsets = 2e7;

// Cell, pbc and cutoff, validated, and the binning box.
struct Geometry {
  bool pbc[3];
  int n_periodic;
  Mat3 cell; // user's cell, rows of non-periodic axes zeroed
  Mat3 B;    // binning box
  Mat3 Binv; // B^-1 (columns are reciprocal vectors)
  double h[3];
  double cutoff;
  double cell_scale; // sum of |lattice vectors| on periodic axes
};

inline Geometry make_geometry(const double *cell_in, const bool *pbc_in, double cutoff,
                              int64_t n_atoms, int64_t n_receivers) {
  Geometry g{};
  if (n_atoms < 0)
    fail("n_atoms must be >= 0, got " + std::to_string(n_atoms));
  if (pbc_in == nullptr)
    fail("pbc is NULL: pass three booleans");
  if (!std::isfinite(cutoff) || !(cutoff > 0.0))
    fail("cutoff must be a finite number > 0, got " + fmt(cutoff));
  if (n_receivers > n_atoms)
    fail("n_receivers (" + std::to_string(n_receivers) + ") must be <= n_atoms (" +
         std::to_string(n_atoms) + ")");
  g.cutoff = cutoff;
  g.n_periodic = 0;
  for (int k = 0; k < 3; ++k) {
    g.pbc[k] = pbc_in[k];
    g.n_periodic += g.pbc[k] ? 1 : 0;
  }
  if (g.n_periodic > 0 && cell_in == nullptr)
    fail("cell is NULL but pbc has a periodic axis");
  for (int k = 0; k < 3; ++k) {
    if (!g.pbc[k])
      continue;
    for (int a = 0; a < 3; ++a)
      g.cell[k][a] = cell_in[3 * k + a];
    if (!std::isfinite(g.cell[k][0]) || !std::isfinite(g.cell[k][1]) ||
        !std::isfinite(g.cell[k][2]))
      fail("cell row " + std::to_string(k) +
           " (a periodic axis) is not finite: " + fmt3(g.cell[k].data()));
  }
  int per[3], np = 0, nonper[3], nn = 0;
  for (int k = 0; k < 3; ++k) {
    if (g.pbc[k])
      per[np++] = k;
    else
      nonper[nn++] = k;
  }
  Mat3 &B = g.B;
  for (int p = 0; p < np; ++p)
    B[per[p]] = g.cell[per[p]];
  auto degenerate = [&](const std::string &what) {
    std::string rows;
    for (int p = 0; p < np; ++p)
      rows += " cell[" + std::to_string(per[p]) + "] = " + fmt3(g.cell[per[p]].data()) + ";";
    fail("cell is singular on the periodic axes (" + what + "):" + rows +
         " periodic lattice vectors must be non-zero and linearly independent");
  };
  if (np == 1) {
    Vec3 a = B[per[0]];
    double la = norm(a);
    if (!(la > 0.0) || !std::isfinite(la))
      degenerate("zero-length lattice vector");
    Vec3 u = {a[0] / la, a[1] / la, a[2] / la};
    Vec3 t = std::fabs(u[0]) < 0.9 ? Vec3{1, 0, 0} : Vec3{0, 1, 0};
    Vec3 e1 = cross(u, t);
    double l1 = norm(e1);
    e1 = {e1[0] / l1, e1[1] / l1, e1[2] / l1};
    B[nonper[0]] = e1;
    B[nonper[1]] = cross(u, e1);
  } else if (np == 2) {
    Vec3 a = B[per[0]], b = B[per[1]];
    Vec3 c = cross(a, b);
    double lc = norm(c);
    if (!(lc > 1e-12 * norm(a) * norm(b)) || !(lc > 0.0) || !std::isfinite(lc))
      degenerate("the two periodic lattice vectors are parallel or zero, |a x b| = " + fmt(lc));
    B[nonper[0]] = {c[0] / lc, c[1] / lc, c[2] / lc};
  } else if (np == 3) {
    double det = dot(B[0], cross(B[1], B[2]));
    double scale = norm(B[0]) * norm(B[1]) * norm(B[2]);
    if (!(std::fabs(det) > 1e-12 * scale) || !(scale > 0.0) || !std::isfinite(det))
      degenerate("volume " + fmt(det));
  } else {
    B[0] = {1, 0, 0};
    B[1] = {0, 1, 0};
    B[2] = {0, 0, 1};
  }
  Vec3 c0 = cross(B[1], B[2]), c1 = cross(B[2], B[0]), c2 = cross(B[0], B[1]);
  double det = dot(B[0], c0);
  for (int a = 0; a < 3; ++a) {
    g.Binv[a][0] = c0[a] / det;
    g.Binv[a][1] = c1[a] / det;
    g.Binv[a][2] = c2[a] / det;
  }
  g.cell_scale = 0.0;
  for (int k = 0; k < 3; ++k) {
    Vec3 rk = {g.Binv[0][k], g.Binv[1][k], g.Binv[2][k]};
    g.h[k] = 1.0 / norm(rk);
    g.cell_scale += norm(g.cell[k]);
  }
  return g;
}

// Minimum of |sum_k (d_k + t_k) g_k| over t in [-1, 1]^3: the smallest
// distance between a point of one bin and a point of a bin offset by d. Exact,
// by enumerating the 27 faces of the box of t (the problem is convex).
inline double min_bin_distance(const std::array<int64_t, 3> &d, const Mat3 &g) {
  double best = std::numeric_limits<double>::infinity();
  for (int face = 0; face < 27; ++face) {
    int code[3] = {face % 3, (face / 3) % 3, face / 9}; // 0: free, 1: t=-1, 2: t=+1
    Vec3 v0 = {0, 0, 0};
    int free_axes[3];
    int nfree = 0;
    for (int k = 0; k < 3; ++k) {
      double c = static_cast<double>(d[k]);
      if (code[k] == 0)
        free_axes[nfree++] = k;
      else
        c += code[k] == 1 ? -1.0 : 1.0;
      for (int a = 0; a < 3; ++a)
        v0[a] += c * g[k][a];
    }
    double u[3] = {0, 0, 0};
    if (nfree > 0) {
      double A[3][3], b[3];
      for (int p = 0; p < nfree; ++p) {
        for (int q = 0; q < nfree; ++q)
          A[p][q] = dot(g[free_axes[p]], g[free_axes[q]]);
        b[p] = -dot(g[free_axes[p]], v0);
      }
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
inline bool offset_within(const std::array<int64_t, 3> &d, const Mat3 &g, double cut) {
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

// A row of bin offsets: dy, dz fixed, dx from xlo to xhi.
struct Row {
  int64_t dy, dz, xlo, xhi;
};

// What the atoms' coordinates tell about the system (from a pass over them).
struct AtomStats {
  double fmin[3], fmax[3]; // fractional range on non-periodic axes
  double max_abs;          // largest |coordinate|
  double max_image;        // largest |floor(f)| on periodic axes
};

struct Grid {
  int64_t nb[3];
  int64_t nbins;
  int64_t range[3];
  double fmin[3], span[3]; // bin index = floor((f - fmin) / span * nb)
  Mat3 g;                  // bin vectors
  double lo, hi, c2;       // screening thresholds on d2 (see top)
  std::vector<Row> rows;
};

// bins of about cutoff / subdivisions (1 on the CPU and on CUDA).
inline Grid make_grid(const Geometry &geo, int64_t n_atoms, int64_t n_receivers,
                      const AtomStats &st, double subdivisions, double max_bins_per_atom) {
  Grid G{};
  const double cutoff = geo.cutoff;
  double max_range_guess = 0.0;
  for (int k = 0; k < 3; ++k) {
    if (geo.pbc[k]) {
      G.fmin[k] = 0.0;
      G.span[k] = 1.0;
      max_range_guess = std::max(max_range_guess, cutoff / geo.h[k] + 2.0);
    } else {
      G.fmin[k] = st.fmin[k];
      G.span[k] = st.fmax[k] - st.fmin[k];
    }
  }
  // rounding of wrapped vs exact vectors is far below delta
  const double scale =
      cutoff + st.max_abs + geo.cell_scale * (st.max_image + max_range_guess + 1.0);
  const double delta = 1e-13 * scale;
  const double lo_cut = cutoff - delta;
  G.lo = lo_cut > 0.0 ? lo_cut * lo_cut : 0.0;
  G.hi = (cutoff + delta) * (cutoff + delta);
  G.c2 = cutoff * cutoff;
  const double search = cutoff + 2.0 * delta;

  double width = search / subdivisions;
  const double max_bins =
      std::max(64.0, max_bins_per_atom * static_cast<double>(std::max<int64_t>(n_atoms, 1)));
  for (int iter = 0; iter < 1000; ++iter) {
    double total = 1.0;
    for (int k = 0; k < 3; ++k) {
      double ext = G.span[k] * geo.h[k]; // extent along the face normal
      double n = std::floor(ext / width);
      if (!(n >= 1.0))
        n = 1.0;
      if (n > 1e7)
        n = 1e7;
      G.nb[k] = static_cast<int64_t>(n);
      total *= n;
    }
    if (total <= max_bins)
      break;
    width *= 1.25;
  }
  G.nbins = G.nb[0] * G.nb[1] * G.nb[2];
  for (int k = 0; k < 3; ++k) {
    double ext = G.span[k] * geo.h[k];
    double r = ext > 0.0 ? std::ceil(search * static_cast<double>(G.nb[k]) / ext) : 0.0;
    if (!geo.pbc[k])
      r = std::min(r, static_cast<double>(G.nb[k] - 1));
    r = std::min(r, 1e9);
    G.range[k] = static_cast<int64_t>(r);
    if (G.span[k] > 0.0) {
      for (int a = 0; a < 3; ++a)
        G.g[k][a] = geo.B[k][a] * G.span[k] / static_cast<double>(G.nb[k]);
    } else {
      // all atoms share this coordinate: one flat bin, offset always 0
      for (int a = 0; a < 3; ++a)
        G.g[k][a] = geo.B[k][a] * search * 1e-6;
    }
  }
  double n_offsets =
      double(2 * G.range[0] + 1) * double(2 * G.range[1] + 1) * double(2 * G.range[2] + 1);
  if (n_offsets > kMaxOffsets) {
    std::string hs = fmt(geo.h[0]) + ", " + fmt(geo.h[1]) + ", " + fmt(geo.h[2]);
    fail("cutoff " + fmt(cutoff) + " is too large for the cell (face-to-face distances " + hs +
         "): every atom would scan about " + fmt(n_offsets) + " periodic images/bins (limit " +
         fmt(kMaxOffsets) + "); reduce the cutoff or use a larger cell");
  }
  if (geo.n_periodic == 3 && n_receivers > 0) {
    double vol = std::fabs(dot(geo.B[0], cross(geo.B[1], geo.B[2])));
    double est = double(n_receivers) * double(n_atoms) * (4.0 / 3.0) * 3.14159265358979323846 *
                 cutoff * cutoff * cutoff / vol;
    if (est > 4e9) {
      fail("the neighbor list would hold about " + fmt(std::round(est)) + " edges (" +
           fmt(std::round(est * 52.0 / 1073741824.0)) + " GiB) for " + std::to_string(n_atoms) +
           " atoms, cutoff " + fmt(cutoff) + " and cell volume " + fmt(vol) +
           "; reduce the cutoff");
    }
  }
  for (int64_t dz = -G.range[2]; dz <= G.range[2]; ++dz) {
    for (int64_t dy = -G.range[1]; dy <= G.range[1]; ++dy) {
      int64_t lo = 1, hi = 0;
      bool found = false;
      for (int64_t dx = -G.range[0]; dx <= G.range[0]; ++dx) {
        if (offset_within({dx, dy, dz}, G.g, search)) {
          if (!found) {
            lo = dx;
            found = true;
          }
          hi = dx;
        }
      }
      if (found)
        G.rows.push_back({dy, dz, lo, hi});
    }
  }
  return G;
}

// Bin index of fractional coordinate f along axis k.
inline int64_t bin_index(double f, const Grid &G, int k) {
  return bin_coord(f, G.fmin[k], G.span[k], G.nb[k]);
}

} // namespace symgnn_nl

#endif
