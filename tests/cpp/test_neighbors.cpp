// C++ tests of the neighbor list C API:
// - CPU result against a brute-force reference (small systems),
// - CPU result bit-identical for 1, 2, 3 and 8 threads,
// - CUDA against CPU, bit for bit, when a CUDA device is visible,
// - error messages for bad input,
// - faults in the worker threads come back as errors (never std::terminate).
// Prints one line per check and exits non-zero on the first failure.
#include "nl_parallel.h" // internal: the worker threads' fault-injection hooks
#include "symgnn_nl.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#ifdef SYMGNN_WITH_CUDA
#include <cuda_runtime.h>
#endif

namespace {

int g_failures = 0;

void expect(bool ok, const std::string &what) {
  std::printf("%s: %s\n", ok ? "ok" : "FAIL", what.c_str());
  if (!ok)
    ++g_failures;
}

struct System {
  std::string name;
  std::vector<double> pos;
  double cell[9];
  bool pbc[3];
  double cutoff;
  int64_t n_receivers;
  int64_t n() const { return static_cast<int64_t>(pos.size() / 3); }
};

struct Result {
  std::vector<int64_t> i, j;
  std::vector<int32_t> S;
  std::vector<double> D;
  bool operator==(const Result &o) const {
    return i == o.i && j == o.j && S == o.S && D.size() == o.D.size() &&
           (D.empty() || std::memcmp(D.data(), o.D.data(), D.size() * sizeof(double)) == 0);
  }
};

Result from(const SymgnnNeighbors &nl) {
  Result r;
  const size_t E = static_cast<size_t>(nl.length);
  r.i.assign(nl.receivers, nl.receivers + E);
  r.j.assign(nl.senders, nl.senders + E);
  r.S.assign(nl.shifts, nl.shifts + 3 * E);
  r.D.assign(nl.vectors, nl.vectors + 3 * E);
  return r;
}

bool run_cpu(const System &s, int threads, Result *r, std::string *err = nullptr) {
  SymgnnNeighbors nl;
  const char *msg = nullptr;
  int rc = symgnn_neighbors_cpu(s.pos.data(), s.n(), s.cell, s.pbc, s.cutoff, s.n_receivers,
                                threads, &nl, &msg);
  if (rc != 0) {
    if (err)
      *err = msg ? msg : "";
    return false;
  }
  *r = from(nl);
  symgnn_neighbors_free(&nl);
  return true;
}

// O(N^2 * images) reference: the (i, j, S) set. For each pair only the shifts
// that can bring it within the cutoff are tried (needs an invertible cell).
std::vector<std::tuple<int64_t, int64_t, int, int, int>> brute(const System &s) {
  std::vector<std::tuple<int64_t, int64_t, int, int, int>> out;
  const double *c = s.cell;
  double inv[9]; // columns: reciprocal vectors, inv[3 * a + k]
  double h[3];
  {
    double cof[3][3];
    for (int k = 0; k < 3; ++k) {
      const double *a = c + 3 * ((k + 1) % 3), *b = c + 3 * ((k + 2) % 3);
      cof[k][0] = a[1] * b[2] - a[2] * b[1];
      cof[k][1] = a[2] * b[0] - a[0] * b[2];
      cof[k][2] = a[0] * b[1] - a[1] * b[0];
    }
    double det = c[0] * cof[0][0] + c[1] * cof[0][1] + c[2] * cof[0][2];
    for (int k = 0; k < 3; ++k) {
      for (int a = 0; a < 3; ++a)
        inv[3 * a + k] = cof[k][a] / det;
      h[k] = std::fabs(det) /
             std::sqrt(cof[k][0] * cof[k][0] + cof[k][1] * cof[k][1] + cof[k][2] * cof[k][2]);
    }
  }
  for (int64_t i = 0; i < s.n_receivers; ++i)
    for (int64_t j = 0; j < s.n(); ++j) {
      double d0[3];
      for (int k = 0; k < 3; ++k)
        d0[k] = s.pos[3 * j + k] - s.pos[3 * i + k];
      int lo[3], hi[3];
      for (int k = 0; k < 3; ++k) {
        double f = d0[0] * inv[k] + d0[1] * inv[3 + k] + d0[2] * inv[6 + k];
        double w = s.cutoff / h[k];
        lo[k] = s.pbc[k] ? static_cast<int>(std::floor(-f - w)) - 1 : 0;
        hi[k] = s.pbc[k] ? static_cast<int>(std::ceil(-f + w)) + 1 : 0;
      }
      for (int x = lo[0]; x <= hi[0]; ++x)
        for (int y = lo[1]; y <= hi[1]; ++y)
          for (int z = lo[2]; z <= hi[2]; ++z) {
            if (i == j && x == 0 && y == 0 && z == 0)
              continue;
            double d2 = 0;
            for (int k = 0; k < 3; ++k) {
              double d = d0[k] + (x * c[k] + y * c[3 + k] + z * c[6 + k]);
              d2 += d * d;
            }
            if (d2 < s.cutoff * s.cutoff)
              out.emplace_back(i, j, x, y, z);
          }
    }
  std::sort(out.begin(), out.end());
  return out;
}

System random_system(const std::string &name, int n, const double cell[9], bool px, bool py,
                     bool pz, double cutoff, double frac_lo, double frac_hi, unsigned seed,
                     int64_t n_receivers = -1) {
  System s;
  s.name = name;
  std::memcpy(s.cell, cell, sizeof(s.cell));
  s.pbc[0] = px;
  s.pbc[1] = py;
  s.pbc[2] = pz;
  s.cutoff = cutoff;
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(frac_lo, frac_hi);
  for (int a = 0; a < n; ++a) {
    double f[3] = {u(rng), u(rng), u(rng)};
    for (int k = 0; k < 3; ++k)
      s.pos.push_back(f[0] * cell[k] + f[1] * cell[3 + k] + f[2] * cell[6 + k]);
  }
  s.n_receivers = n_receivers < 0 ? n : n_receivers;
  return s;
}

std::vector<System> systems() {
  std::vector<System> v;
  const double cubic[9] = {12, 0, 0, 0, 12, 0, 0, 0, 12};
  const double skew[9] = {7, 0, 0, 4.5, 6, 0, -3, 2.5, 5};
  const double tiny[9] = {1.3, 0, 0, 0.4, 1.1, 0, 0.2, -0.3, 0.9};
  const double glass[9] = {30, 0, 0, 0, 30, 0, 0, 0, 30};
  v.push_back(random_system("cubic wrapped", 150, cubic, true, true, true, 3.7, 0, 1, 1));
  v.push_back(random_system("cubic unwrapped", 150, cubic, true, true, true, 3.7, -2.5, 3.5, 2));
  v.push_back(random_system("skewed triclinic", 60, skew, true, true, true, 6.3, -1, 2, 3));
  v.push_back(random_system("tiny cell, cutoff 5x", 1, tiny, true, true, true, 4.8, 0, 1, 4));
  v.push_back(random_system("tiny cell, 3 atoms", 3, tiny, true, true, true, 2.9, -3, 3, 5));
  v.push_back(random_system("partial pbc (T F T)", 80, skew, true, false, true, 4.1, -1, 2, 6));
  v.push_back(random_system("partial pbc (F F T)", 80, skew, false, false, true, 4.1, 0, 1, 7));
  v.push_back(random_system("cluster (no pbc)", 100, cubic, false, false, false, 3.0, 0, 1, 8));
  v.push_back(random_system("n_receivers = 37", 120, cubic, true, true, true, 3.9, 0, 1, 9, 37));
  v.push_back(
      random_system("glass density 1600 atoms", 1600, glass, true, true, true, 5.0, 0, 1, 10));
  // atoms exactly on faces and corners
  System faces;
  faces.name = "atoms on cell faces";
  const double box[9] = {4, 0, 0, 0, 4, 0, 0, 0, 4};
  std::memcpy(faces.cell, box, sizeof(box));
  for (double x : {0.0, 2.0, 4.0})
    for (double y : {0.0, 4.0})
      for (double z : {0.0, 1.0, 4.0}) {
        faces.pos.push_back(x);
        faces.pos.push_back(y);
        faces.pos.push_back(z);
      }
  faces.pbc[0] = faces.pbc[1] = faces.pbc[2] = true;
  faces.cutoff = 4.5;
  faces.n_receivers = faces.n();
  v.push_back(faces);
  return v;
}

bool check_sorted_and_symmetric(const Result &r) {
  const size_t E = r.i.size();
  for (size_t e = 1; e < E; ++e) {
    auto a =
        std::make_tuple(r.i[e - 1], r.j[e - 1], r.S[3 * e - 3], r.S[3 * e - 2], r.S[3 * e - 1]);
    auto b = std::make_tuple(r.i[e], r.j[e], r.S[3 * e], r.S[3 * e + 1], r.S[3 * e + 2]);
    if (!(a < b))
      return false;
  }
  return true;
}

void test_cpu() {
  for (const System &s : systems()) {
    Result ref;
    std::string err;
    if (!run_cpu(s, 1, &ref, &err)) {
      expect(false, s.name + ": " + err);
      continue;
    }
    auto want = brute(s);
    std::vector<std::tuple<int64_t, int64_t, int, int, int>> got;
    for (size_t e = 0; e < ref.i.size(); ++e)
      got.emplace_back(ref.i[e], ref.j[e], ref.S[3 * e], ref.S[3 * e + 1], ref.S[3 * e + 2]);
    expect(got == want, s.name + ": " + std::to_string(got.size()) + " edges, brute force " +
                            std::to_string(want.size()));
    expect(check_sorted_and_symmetric(ref), s.name + ": sorted by (i, j, S)");
    for (int t : {2, 3, 8}) {
      Result other;
      bool ok = run_cpu(s, t, &other) && other == ref;
      expect(ok, s.name + ": bit-identical with " + std::to_string(t) + " threads");
    }
    // the fallback that counts, then searches again
    setenv("SYMGNN_NL_RECOUNT", "1", 1);
    Result recount;
    bool ok = run_cpu(s, 2, &recount) && recount == ref;
    unsetenv("SYMGNN_NL_RECOUNT");
    expect(ok, s.name + ": bit-identical in the recount fallback");
  }
}

void expect_error(const char *what, int rc, const char *msg, const char *needle) {
  bool ok = rc != 0 && msg != nullptr && std::strstr(msg, needle) != nullptr;
  expect(ok, std::string("error for ") + what + ": " + (msg ? msg : "(no message)"));
}

void test_errors() {
  std::vector<double> pos = {0, 0, 0, 1, 1, 1};
  double cell[9] = {5, 0, 0, 0, 5, 0, 0, 0, 5};
  bool pbc[3] = {true, true, true};
  SymgnnNeighbors nl;
  const char *msg = nullptr;
  int rc;
  std::vector<double> bad = pos;
  bad[4] = NAN;
  rc = symgnn_neighbors_cpu(bad.data(), 2, cell, pbc, 3.0, -1, 1, &nl, &msg);
  expect_error("NaN position", rc, msg, "positions[1]");
  rc = symgnn_neighbors_cpu(pos.data(), 2, cell, pbc, -1.0, -1, 1, &nl, &msg);
  expect_error("negative cutoff", rc, msg, "cutoff");
  rc = symgnn_neighbors_cpu(pos.data(), 2, cell, pbc, INFINITY, -1, 1, &nl, &msg);
  expect_error("infinite cutoff", rc, msg, "cutoff");
  double flat[9] = {5, 0, 0, 10, 0, 0, 0, 0, 5};
  rc = symgnn_neighbors_cpu(pos.data(), 2, flat, pbc, 3.0, -1, 1, &nl, &msg);
  expect_error("singular cell", rc, msg, "singular");
  rc = symgnn_neighbors_cpu(pos.data(), 2, cell, pbc, 3.0, 3, 1, &nl, &msg);
  expect_error("n_receivers > n_atoms", rc, msg, "n_receivers");
  rc = symgnn_neighbors_cpu(nullptr, 2, cell, pbc, 3.0, -1, 1, &nl, &msg);
  expect_error("NULL positions", rc, msg, "positions");
  rc = symgnn_neighbors_cpu(pos.data(), 2, nullptr, pbc, 3.0, -1, 1, &nl, &msg);
  expect_error("NULL cell with pbc", rc, msg, "cell");
  double small[9] = {0.01, 0, 0, 0, 0.01, 0, 0, 0, 0.01};
  rc = symgnn_neighbors_cpu(pos.data(), 2, small, pbc, 10.0, -1, 1, &nl, &msg);
  expect_error("image explosion", rc, msg, "too large for the cell");
  expect(nl.length == 0 && nl.receivers == nullptr, "output zeroed after an error");
  // a flat cell is fine on a non-periodic axis
  bool pbc_xy[3] = {true, true, false};
  double flat_z[9] = {5, 0, 0, 0, 5, 0, 0, 0, 0};
  rc = symgnn_neighbors_cpu(pos.data(), 2, flat_z, pbc_xy, 3.0, -1, 1, &nl, &msg);
  expect(rc == 0 && nl.length == 2, "zero cell row on a non-periodic axis");
  symgnn_neighbors_free(&nl);
  symgnn_neighbors_free(&nl); // safe on a zeroed struct
}

// An exception thrown inside a worker thread, of any type, is returned as an
// error; a thread that cannot be started is done without.
void test_worker_faults() {
  const double glass[9] = {30, 0, 0, 0, 30, 0, 0, 0, 30};
  const System s = random_system("glass", 1600, glass, true, true, true, 5.0, 0, 1, 10);
  Result ref;
  if (!run_cpu(s, 1, &ref)) {
    expect(false, "worker faults: reference run");
    return;
  }
  namespace t = symgnn_nl::testing;
  std::string err;
  Result r;
  t::fault = t::kThrowInWorker;
  bool ok = run_cpu(s, 8, &r, &err);
  expect(!ok && err.find("internal error: injected fault in worker") != std::string::npos,
         "a std::exception in a worker thread is returned as an error: " + err);
  t::fault = t::kThrowNonStd;
  err.clear();
  ok = run_cpu(s, 8, &r, &err);
  expect(!ok && err.find("not a std::exception") != std::string::npos,
         "a non-std exception in a worker thread is returned as an error: " + err);
  t::fault = t::kNoThreads;
  ok = run_cpu(s, 8, &r) && r == ref;
  expect(ok, "threads that cannot be started: the calling thread does the work, bit-identical");
  t::fault = t::kNoFault;
  ok = run_cpu(s, 8, &r) && r == ref;
  expect(ok, "after the faults: bit-identical with 8 threads");
}

void test_cuda() {
  if (!symgnn_cuda_available()) {
#ifdef SYMGNN_WITH_CUDA
    std::printf("SKIPPED: no CUDA device\n");
#else
    SymgnnNeighbors nl;
    const char *msg = nullptr;
    double p[3] = {0, 0, 0};
    bool pbc[3] = {false, false, false};
    int rc = symgnn_neighbors_cuda(p, 1, nullptr, pbc, 1.0, -1, nullptr, &nl, &msg);
    expect_error("CUDA without CUDA support", rc, msg, "without CUDA support");
    std::printf("SKIPPED: no CUDA device (built without CUDA support)\n");
#endif
    return;
  }
#ifdef SYMGNN_WITH_CUDA
  for (const System &s : systems()) {
    Result cpu;
    run_cpu(s, 0, &cpu);
    double *dpos = nullptr;
    cudaMalloc(&dpos, s.pos.size() * sizeof(double));
    cudaMemcpy(dpos, s.pos.data(), s.pos.size() * sizeof(double), cudaMemcpyHostToDevice);
    SymgnnNeighbors nl;
    const char *msg = nullptr;
    int rc = symgnn_neighbors_cuda(dpos, s.n(), s.cell, s.pbc, s.cutoff, s.n_receivers, nullptr,
                                   &nl, &msg);
    if (rc != 0) {
      expect(false, s.name + " (CUDA): " + (msg ? msg : ""));
      cudaFree(dpos);
      continue;
    }
    Result gpu;
    const size_t E = static_cast<size_t>(nl.length);
    gpu.i.resize(E);
    gpu.j.resize(E);
    gpu.S.resize(3 * E);
    gpu.D.resize(3 * E);
    cudaMemcpy(gpu.i.data(), nl.receivers, E * 8, cudaMemcpyDeviceToHost);
    cudaMemcpy(gpu.j.data(), nl.senders, E * 8, cudaMemcpyDeviceToHost);
    cudaMemcpy(gpu.S.data(), nl.shifts, E * 12, cudaMemcpyDeviceToHost);
    cudaMemcpy(gpu.D.data(), nl.vectors, E * 24, cudaMemcpyDeviceToHost);
    symgnn_neighbors_free(&nl);
    cudaFree(dpos);
    expect(gpu == cpu, s.name + ": CUDA bit-identical to CPU (" + std::to_string(E) + " edges)");
  }
  // bad input on the GPU path
  std::vector<double> pos = {0, 0, 0, 1, NAN, 1};
  double *dpos = nullptr;
  cudaMalloc(&dpos, pos.size() * sizeof(double));
  cudaMemcpy(dpos, pos.data(), pos.size() * sizeof(double), cudaMemcpyHostToDevice);
  double cell[9] = {5, 0, 0, 0, 5, 0, 0, 0, 5};
  bool pbc[3] = {true, true, true};
  SymgnnNeighbors nl;
  const char *msg = nullptr;
  int rc = symgnn_neighbors_cuda(dpos, 2, cell, pbc, 3.0, -1, nullptr, &nl, &msg);
  expect_error("NaN position (CUDA)", rc, msg, "positions[1]");
  cudaFree(dpos);
#endif
}

} // namespace

int main() {
  test_cpu();
  test_errors();
  test_worker_faults();
  test_cuda();
  if (g_failures != 0) {
    std::printf("%d check(s) FAILED\n", g_failures);
    return 1;
  }
  std::printf("all checks passed\n");
  return 0;
}
