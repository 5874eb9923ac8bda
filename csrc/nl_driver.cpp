// symgnn neighbor list on the CPU (C++17, std::thread, no torch): the C API
// entry point and compute(), the sequence of passes.
//
// Algorithm (set-up shared with the CUDA version in nl_detail.h, per-receiver
// walk in nl_walk.h)
// 1. validate: the arguments, the cell and the binning box.
// 2. fractional_coordinates: in the binning box; periodic axes are wrapped
//    into [0, 1) and each atom's integer image n = floor(f) is kept, so shifts
//    are exact for positions outside the cell. Non-periodic axes: bounding box.
// 3. make_grid, bin_atoms: atoms are counting-sorted into bins of about one
//    cutoff (stable, so the order inside a bin is by atom index). The bin
//    offsets that can hold a neighbor are found once, from the exact minimum
//    distance between two (triclinic) bins, and grouped into rows along x: for
//    every bin, a row is one contiguous range of bin-sorted atoms, split where
//    it wraps around a periodic boundary; each piece carries its integer image
//    shift. A cell smaller than the cutoff just gives offsets spanning several
//    periods, so every image within the cutoff is found.
// 4. decide_and_count (pass 1): each receiver's edges are decided and stored
//    as 8-byte records (nl_kernels.cpp: the bin's candidates gathered once, an
//    AVX2 distance kernel); allocate_output: a prefix sum of the counts gives
//    exact offsets, and the output is allocated once (huge pages when large);
//    fill (pass 2): each receiver's edges, sorted by (j, S), are written
//    straight into place. Both passes run on worker threads over chunks of
//    bins (nl_parallel.h); each receiver's slice depends only on the input, so
//    the result is bit-identical for any number of threads.
#include "nl_cpu.h"
#include "nl_parallel.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <limits>
#include <new>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace symgnn_nl {

namespace testing {
std::atomic<int> fault{kNoFault};
} // namespace testing

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

// The arguments of one call.
struct Request {
  const double *positions;
  int64_t n_atoms;
  const double *cell;
  const bool *pbc;
  double cutoff;
  int64_t n_receivers; // < 0: all atoms (validate sets it)
  int n_threads;       // <= 0: the default
};

// Checks the arguments and returns the geometry (cell, pbc, binning box).
Geometry validate(Request &rq, const SymgnnNeighbors *out) {
  if (out == nullptr)
    fail("out is NULL: pass a pointer to a SymgnnNeighbors struct");
  if (rq.n_atoms > 0 && rq.positions == nullptr)
    fail("positions is NULL but n_atoms = " + std::to_string(rq.n_atoms));
  if (rq.n_receivers < 0)
    rq.n_receivers = rq.n_atoms;
  const Geometry geo = make_geometry(rq.cell, rq.pbc, rq.cutoff, rq.n_atoms, rq.n_receivers);
  for (int64_t a = 0; a < rq.n_atoms; ++a) {
    const double *p = rq.positions + 3 * a;
    if (!std::isfinite(p[0]) || !std::isfinite(p[1]) || !std::isfinite(p[2]))
      fail("positions[" + std::to_string(a) + "] is not finite: " + fmt3(p));
  }
  return geo;
}

// Fractional coordinates of the atoms, wrapped on periodic axes, and the image
// n = floor(f) each was wrapped by.
struct Fractional {
  std::vector<double> f;      // [3N]
  std::vector<int32_t> image; // [3N]
  AtomStats stats;
};

Fractional fractional_coordinates(const Request &rq, const Geometry &geo) {
  const size_t N = static_cast<size_t>(rq.n_atoms);
  Fractional fr;
  fr.f.resize(3 * N);
  fr.image.assign(3 * N, 0);
  AtomStats &st = fr.stats;
  st.max_abs = 0.0;
  st.max_image = 0.0;
  for (int k = 0; k < 3; ++k) {
    st.fmin[k] = std::numeric_limits<double>::infinity();
    st.fmax[k] = -std::numeric_limits<double>::infinity();
  }
  for (size_t a = 0; a < N; ++a) {
    const double *p = rq.positions + 3 * a;
    for (int k = 0; k < 3; ++k) {
      double f = fractional(p, geo.Binv, k);
      st.max_abs = std::max(st.max_abs, std::fabs(p[k]));
      if (geo.pbc[k]) {
        const double fl = std::floor(f);
        if (!(std::fabs(fl) <= kMaxImage))
          fail("positions[" + std::to_string(a) + "] = " + fmt3(p) +
               " is too far from the cell: fractional coordinate " + fmt(f) + " along axis " +
               std::to_string(k) + " (limit 2^29 periods)");
        fr.image[3 * a + k] = static_cast<int32_t>(fl);
        st.max_image = std::max(st.max_image, std::fabs(fl));
        f -= fl;
      } else {
        st.fmin[k] = std::min(st.fmin[k], f);
        st.fmax[k] = std::max(st.fmax[k], f);
      }
      fr.f[3 * a + k] = f;
    }
  }
  return fr;
}

// Sorts the atoms into the bins of G (stable counting sort) and keeps, in that
// order, their wrapped and user positions and their images.
Binned bin_atoms(const Request &rq, const Geometry &geo, const Grid &G, Fractional &&fr) {
  const size_t N = static_cast<size_t>(rq.n_atoms);
  const int64_t nbins = G.nbins;
  Binned bd;
  bd.geo = &geo;
  bd.G = &G;
  bd.n_atoms = rq.n_atoms;
  bd.n_receivers = rq.n_receivers;
  std::vector<int64_t> bin_of(N);
  bd.bin_start.assign(static_cast<size_t>(nbins) + 1, 0);
  for (size_t a = 0; a < N; ++a) {
    const double *f = &fr.f[3 * a];
    const int64_t lin =
        bin_index(f[0], G, 0) + G.nb[0] * (bin_index(f[1], G, 1) + G.nb[1] * bin_index(f[2], G, 2));
    bin_of[a] = lin;
    bd.bin_start[static_cast<size_t>(lin) + 1]++;
  }
  std::vector<double>().swap(fr.f);
  for (int64_t b = 0; b < nbins; ++b)
    bd.bin_start[static_cast<size_t>(b) + 1] += bd.bin_start[static_cast<size_t>(b)];
  bd.order.resize(N);
  bd.px.resize(N);
  bd.py.resize(N);
  bd.pz.resize(N);
  bd.r.resize(3 * N);
  bd.img.resize(3 * N);
  std::vector<int64_t> fill(bd.bin_start.begin(), bd.bin_start.end() - 1);
  for (size_t a = 0; a < N; ++a)
    bd.order[static_cast<size_t>(fill[static_cast<size_t>(bin_of[a])]++)] = static_cast<int64_t>(a);
  for (size_t k = 0; k < N; ++k) {
    const size_t a = static_cast<size_t>(bd.order[k]);
    const double *p = rq.positions + 3 * a;
    const int32_t *n = &fr.image[3 * a];
    double w[3];
    wrap_position(p, n, geo.B, w);
    bd.px[k] = w[0];
    bd.py[k] = w[1];
    bd.pz[k] = w[2];
    for (int c = 0; c < 3; ++c) {
      bd.r[3 * k + c] = p[c];
      bd.img[3 * k + c] = n[c];
    }
  }
  return bd;
}

// How the two passes run.
struct Plan {
  int n_threads;
  int64_t chunk; // bins a worker takes at a time
  // Records mode (the usual case): pass 1 decides every edge and stores it as
  // one record; pass 2 turns the records into sorted output. The fallback (a
  // segment index or m too large for a record) walks each receiver in both
  // passes with for_each_edge (nl_walk.h), the walk of the CUDA version.
  bool records;
};

Plan plan_passes(const Request &rq, const Grid &G) {
  Plan plan{};
  int n_threads = rq.n_threads <= 0 ? default_threads() : rq.n_threads;
  const int64_t work = rq.n_receivers * static_cast<int64_t>(std::max<size_t>(G.rows.size(), 1));
  const int64_t useful = std::max<int64_t>(1, work / 4000); // ~1000 receivers a thread
  n_threads = static_cast<int>(std::min<int64_t>({n_threads, useful, 256}));
  plan.n_threads = std::max(1, n_threads);
  plan.chunk = std::max<int64_t>(1, G.nbins / (static_cast<int64_t>(plan.n_threads) * 64));
  size_t max_segments = 0;
  for (const Row &row : G.rows) {
    const int64_t width = row.xhi - row.xlo + 1;
    max_segments += static_cast<size_t>(width / G.nb[0] + 2);
  }
  // SYMGNN_NL_RECOUNT=1 forces the fallback (used by the tests)
  const char *recount_env = std::getenv("SYMGNN_NL_RECOUNT");
  const bool force_recount = recount_env != nullptr && recount_env[0] == '1';
  plan.records = !force_recount && max_segments < (size_t(1) << kSegBits) &&
                 rq.n_atoms < (int64_t(1) << (64 - kSegBits - 1));
  return plan;
}

// What pass 1 found.
struct Decisions {
  std::vector<int64_t> counts;     // [n_receivers] edges of each receiver
  std::vector<Slot> slots;         // [N] bin-sorted: records, then output slices
  std::vector<RecordArena> arenas; // one per worker: the records slots point into
};

Decisions decide_and_count(const Binned &bd, const Plan &plan) {
  Decisions d;
  d.counts.assign(static_cast<size_t>(bd.n_receivers), 0);
  d.slots.assign(static_cast<size_t>(bd.n_atoms), Slot{0, 0, nullptr});
  d.arenas.resize(static_cast<size_t>(plan.n_threads));
  Workers workers(plan.n_threads);
  BinQueue queue(bd.G->nbins, plan.chunk);
  workers.run([&](int tid) {
    Scratch scratch;
    RecordArena &arena = d.arenas[static_cast<size_t>(tid)];
    queue.drain(workers, [&](int64_t b) {
      decide_bin(bd, b, plan.records, scratch, arena, d.slots.data(), d.counts.data());
    });
  });
  return d;
}

// Gives each receiver its slice of the output (prefix sum of the counts) and
// allocates the output.
void allocate_output(const Binned &bd, Decisions &d, SymgnnNeighbors *out) {
  const size_t n_recv = static_cast<size_t>(bd.n_receivers);
  std::vector<int64_t> offsets(n_recv + 1, 0);
  for (size_t i = 0; i < n_recv; ++i)
    offsets[i + 1] = offsets[i] + d.counts[i];
  const int64_t E = offsets[n_recv];
  const double need = 52.0 * static_cast<double>(E);
  const double mem = physical_memory_bytes();
  if (need > 0.9 * mem)
    fail("the neighbor list has " + std::to_string(E) + " edges (" +
         fmt(std::round(need / 1073741824.0 * 10) / 10) + " GiB), more than this machine's " +
         fmt(std::round(mem / 1073741824.0 * 10) / 10) + " GiB of memory (cutoff " +
         fmt(bd.geo->cutoff) + ", " + std::to_string(bd.n_atoms) + " atoms); reduce the cutoff");
  set_output(out, E);
  for (size_t k = 0; k < d.slots.size(); ++k) {
    const int64_t i = bd.order[k];
    if (i < bd.n_receivers) {
      d.slots[k].offset = offsets[static_cast<size_t>(i)];
      d.slots[k].count = d.counts[static_cast<size_t>(i)];
    }
  }
}

void fill(const Binned &bd, const Plan &plan, const Decisions &d, SymgnnNeighbors *out) {
  Workers workers(plan.n_threads);
  BinQueue queue(bd.G->nbins, plan.chunk);
  workers.run([&](int) {
    Scratch scratch;
    queue.drain(workers,
                [&](int64_t b) { fill_bin(bd, b, plan.records, scratch, d.slots.data(), out); });
    stream_fence();
  });
}

void compute(Request rq, SymgnnNeighbors *out) {
  const Geometry geo = validate(rq, out);
  if (rq.n_atoms == 0 || rq.n_receivers == 0) {
    set_output(out, 0);
    return;
  }
  Fractional fr = fractional_coordinates(rq, geo);
  const Grid G = make_grid(geo, rq.n_atoms, rq.n_receivers, fr.stats, kSubdivisions, 2.0);
  const Binned bd = bin_atoms(rq, geo, G, std::move(fr));
  const Plan plan = plan_passes(rq, G);
  Decisions decisions = decide_and_count(bd, plan);
  allocate_output(bd, decisions, out);
  fill(bd, plan, decisions, out);
}

// The message for a failed call (owned by this thread's g_error, or static).
const char *error_message(const std::exception_ptr &failure, int64_t n_atoms,
                          double cutoff) noexcept {
  try {
    try {
      std::rethrow_exception(failure);
    } catch (const NlError &e) {
      g_error = "symgnn neighbors: " + e.message;
    } catch (const std::bad_alloc &) {
      g_error = "symgnn neighbors: out of memory while building the neighbor list (n_atoms = " +
                std::to_string(n_atoms) + ", cutoff = " + fmt(cutoff) + ")";
    } catch (const std::exception &e) {
      g_error = std::string("symgnn neighbors: internal error: ") + e.what();
    } catch (...) {
      g_error = "symgnn neighbors: internal error: an exception that is not a std::exception";
    }
    return g_error.c_str();
  } catch (...) {
    return "symgnn neighbors: out of memory while reporting an error";
  }
}

} // namespace

} // namespace symgnn_nl

extern "C" int symgnn_neighbors_cpu(const double *positions, int64_t n_atoms, const double *cell,
                                    const bool *pbc, double cutoff, int64_t n_receivers,
                                    int n_threads, SymgnnNeighbors *out, const char **error) {
  using namespace symgnn_nl;
  std::exception_ptr failure;
  g_error.clear();
  if (out != nullptr)
    std::memset(out, 0, sizeof(*out));
  try {
    compute(Request{positions, n_atoms, cell, pbc, cutoff, n_receivers, n_threads}, out);
    return 0;
  } catch (...) {
    failure = std::current_exception();
  }
  symgnn_neighbors_free(out);
  const char *message = error_message(failure, n_atoms, cutoff);
  if (error != nullptr)
    *error = message;
  return 1;
}
