// symgnn neighbor list on a CUDA device: same semantics and the same output
// (bit for bit) as the CPU version in ../nl_driver.cpp.
//
// 1. prep kernel: fractional coordinates, images n = floor(f) on periodic
//    axes, wrapped positions p = r - n . B, and order-independent reductions
//    (bounding box on non-periodic axes, largest |r| and |n|, the first bad
//    atom). The host then builds the same grid as the CPU (nl_detail.h).
// 2. Atoms are sorted by bin with a stable radix sort (inside a bin by index).
// 3. count kernel: one thread per bin-sorted atom; for a receiver it walks the
//    rows of neighboring bins and counts edges: for_each_edge of ../nl_walk.h,
//    the walk and decision rule the CPU version shares.
// 4. exclusive prefix sum of the counts gives each receiver's slice; the fill
//    kernel writes the receiver's edges there and insertion-sorts the slice by
//    (j, S). No atomics decide any order; no neighbor cap.
// Compiled with --fmad=false (see CMakeLists.txt) so that every distance is
// rounded exactly like on the CPU.
#include "nl_detail.h"
#include "nl_walk.h"
#include "symgnn_nl.h"

#include <cub/cub.cuh>
#include <cuda_runtime.h>

#include <cstring>
#include <exception>
#include <memory>
#include <string>
#include <vector>

using namespace symgnn_nl;

namespace {

thread_local std::string g_cuda_error;

// Owned storage of a CUDA result (SymgnnNeighbors::opaque).
struct CudaStorage {
  void *block = nullptr;
  CudaStorage() = default;
  CudaStorage(const CudaStorage &) = delete;
  CudaStorage &operator=(const CudaStorage &) = delete;
  ~CudaStorage() {
    if (block != nullptr)
      cudaFree(block);
  }
};

struct CudaFail {
  std::string message;
};

void check(cudaError_t err, const char *what) {
  if (err != cudaSuccess)
    throw CudaFail{std::string("CUDA error in ") + what + ": " + cudaGetErrorString(err)};
}

// device buffer freed on scope exit
template <typename T> struct DevBuf {
  T *ptr = nullptr;
  size_t n = 0;
  DevBuf() = default;
  explicit DevBuf(size_t count) { alloc(count); }
  void alloc(size_t count) {
    n = count;
    check(cudaMalloc(reinterpret_cast<void **>(&ptr), std::max<size_t>(count, 1) * sizeof(T)),
          "cudaMalloc");
  }
  ~DevBuf() {
    if (ptr != nullptr)
      cudaFree(ptr);
  }
  DevBuf(const DevBuf &) = delete;
  DevBuf &operator=(const DevBuf &) = delete;
};

struct DevStats {
  unsigned long long fmin[3], fmax[3]; // ordered-bit encodings of doubles
  unsigned long long max_abs, max_image;
  unsigned long long bad_atom, far_atom; // first non-finite / too far atom
};

// Monotonic map double -> uint64 so that integer min/max == double min/max.
__device__ __forceinline__ unsigned long long enc(double v) {
  unsigned long long u = static_cast<unsigned long long>(__double_as_longlong(v));
  return (u & 0x8000000000000000ull) ? ~u : (u | 0x8000000000000000ull);
}
double dec(unsigned long long u) {
  u = (u & 0x8000000000000000ull) ? (u & 0x7fffffffffffffffull) : ~u;
  double v;
  std::memcpy(&v, &u, sizeof(v));
  return v;
}
unsigned long long enc_host(double v) {
  unsigned long long u;
  std::memcpy(&u, &v, sizeof(u));
  return (u & 0x8000000000000000ull) ? ~u : (u | 0x8000000000000000ull);
}

struct DevRow {
  int dy, dz, xlo, xhi;
};

// The grid, as for_each_edge (../nl_walk.h) reads it, and the sizes.
struct Params {
  double B[3][3];
  double Binv[3][3];
  double cell[3][3];
  int pbc[3];
  double fmin[3], span[3];
  int64_t nb[3];
  double lo, hi, c2;
  long long n_atoms, n_receivers;
  const DevRow *rows;
  int n_rows;
};

// The bin-sorted atoms, as for_each_edge reads them.
struct DevAtoms {
  const unsigned int *__restrict__ bin_start;
  const double *__restrict__ sp;    // wrapped positions [3N]
  const double *__restrict__ sr;    // user positions [3N]
  const int32_t *__restrict__ simg; // images [3N]
  __device__ __forceinline__ int64_t start(int64_t b) const { return bin_start[b]; }
  __device__ __forceinline__ double wrapped(int64_t m, int c) const { return sp[3 * m + c]; }
  __device__ __forceinline__ const double *position(int64_t m) const { return sr + 3 * m; }
  __device__ __forceinline__ const int32_t *image(int64_t m) const { return simg + 3 * m; }
};

__global__ void prep_kernel(const double *__restrict__ pos, Params P, double *frac,
                            int *__restrict__ img, double *__restrict__ wpos, DevStats *stats) {
  const long long a = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x;
  if (a >= P.n_atoms)
    return;
  const double p[3] = {pos[3 * a], pos[3 * a + 1], pos[3 * a + 2]};
  if (!isfinite(p[0]) || !isfinite(p[1]) || !isfinite(p[2])) {
    atomicMin(&stats->bad_atom, static_cast<unsigned long long>(a));
    return;
  }
  double maxabs = fmax(fabs(p[0]), fmax(fabs(p[1]), fabs(p[2])));
  atomicMax(&stats->max_abs, enc(maxabs));
  int32_t n[3] = {0, 0, 0};
  for (int k = 0; k < 3; ++k) {
    double f = fractional(p, P.Binv, k);
    if (P.pbc[k]) {
      const double fl = floor(f);
      if (!(fabs(fl) <= kMaxImage)) {
        atomicMin(&stats->far_atom, static_cast<unsigned long long>(a));
        return;
      }
      n[k] = static_cast<int>(fl);
      atomicMax(&stats->max_image, enc(fabs(fl)));
      f -= fl;
    } else {
      atomicMin(&stats->fmin[k], enc(f));
      atomicMax(&stats->fmax[k], enc(f));
    }
    frac[3 * a + k] = f;
    img[3 * a + k] = n[k];
  }
  double w[3];
  wrap_position(p, n, P.B, w);
  for (int c = 0; c < 3; ++c)
    wpos[3 * a + c] = w[c];
}

__device__ __forceinline__ long long bin_index_d(double f, const Params &P, int k) {
  return bin_coord(f, P.fmin[k], P.span[k], P.nb[k]);
}

__global__ void bin_kernel(const double *__restrict__ frac, Params P, unsigned int *bins,
                           int *__restrict__ idx, unsigned int *__restrict__ bin_count) {
  const long long a = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x;
  if (a >= P.n_atoms)
    return;
  const long long lin =
      bin_index_d(frac[3 * a], P, 0) +
      P.nb[0] * (bin_index_d(frac[3 * a + 1], P, 1) + P.nb[1] * bin_index_d(frac[3 * a + 2], P, 2));
  bins[a] = static_cast<unsigned int>(lin);
  idx[a] = static_cast<int>(a);
  atomicAdd(&bin_count[lin], 1u); // counts only: order-independent
}

// bin-sorted copies
__global__ void gather_kernel(const int *__restrict__ order, const double *__restrict__ pos,
                              const double *__restrict__ wpos, const int *__restrict__ img,
                              long long n, double *__restrict__ sp, double *__restrict__ sr,
                              int *__restrict__ simg) {
  const long long k = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x;
  if (k >= n)
    return;
  const long long a = order[k];
  for (int c = 0; c < 3; ++c) {
    sp[3 * k + c] = wpos[3 * a + c];
    sr[3 * k + c] = pos[3 * a + c];
    simg[3 * k + c] = img[3 * a + c];
  }
}

// This thread's bin-sorted atom k and its index i; false unless it is a receiver.
__device__ __forceinline__ bool thread_receiver(const Params &P, const int *__restrict__ order,
                                                long long *k, long long *i) {
  *k = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x;
  if (*k >= P.n_atoms)
    return false;
  *i = order[*k];
  return *i < P.n_receivers;
}

__global__ void count_kernel(Params P, DevAtoms atoms, const unsigned int *__restrict__ bins,
                             const int *__restrict__ order, long long *__restrict__ counts) {
  long long k, i;
  if (!thread_receiver(P, order, &k, &i))
    return;
  long long c = 0;
  for_each_edge(P, atoms, k, bins[k], [&](int64_t, const int32_t *, const double *) { ++c; });
  counts[i] = c;
}

__device__ __forceinline__ bool edge_less(long long ja, const int *sa, long long jb,
                                          const int *sb) {
  if (ja != jb)
    return ja < jb;
  if (sa[0] != sb[0])
    return sa[0] < sb[0];
  if (sa[1] != sb[1])
    return sa[1] < sb[1];
  return sa[2] < sb[2];
}

__global__ void fill_kernel(Params P, DevAtoms atoms, const unsigned int *__restrict__ bins,
                            const int *__restrict__ order, const long long *__restrict__ offsets,
                            const long long *__restrict__ counts, long long *recv, long long *send,
                            int *shift, double *vec, int *overflow) {
  long long k, i;
  if (!thread_receiver(P, order, &k, &i))
    return;
  const long long start = offsets[i];
  const long long cap = counts[i];
  long long n = 0;
  for_each_edge(P, atoms, k, bins[k], [&](int64_t m, const int32_t *S, const double *D) {
    if (n < cap) {
      const long long e = start + n;
      recv[e] = i;
      send[e] = order[m];
      for (int c = 0; c < 3; ++c) {
        shift[3 * e + c] = S[c];
        vec[3 * e + c] = D[c];
      }
    }
    ++n;
  });
  if (n != cap) {
    atomicExch(overflow, 1);
    return;
  }
  // insertion sort of the slice by (j, S)
  for (long long a = start + 1; a < start + n; ++a) {
    const long long jk = send[a];
    const int sk[3] = {shift[3 * a], shift[3 * a + 1], shift[3 * a + 2]};
    const double dk[3] = {vec[3 * a], vec[3 * a + 1], vec[3 * a + 2]};
    long long b = a - 1;
    while (b >= start && edge_less(jk, sk, send[b], &shift[3 * b])) {
      send[b + 1] = send[b];
      for (int c = 0; c < 3; ++c) {
        shift[3 * (b + 1) + c] = shift[3 * b + c];
        vec[3 * (b + 1) + c] = vec[3 * b + c];
      }
      --b;
    }
    send[b + 1] = jk;
    for (int c = 0; c < 3; ++c) {
      shift[3 * (b + 1) + c] = sk[c];
      vec[3 * (b + 1) + c] = dk[c];
    }
  }
}

// Allocates the four output arrays of E edges in one device block, owned
// through out->opaque until symgnn_neighbors_free.
void set_device_output(SymgnnNeighbors *out, long long E) {
  auto storage = std::make_unique<CudaStorage>();
  const size_t e = static_cast<size_t>(E);
  check(cudaMalloc(&storage->block, std::max<size_t>(52 * e, 64)), "cudaMalloc (output)");
  char *base = static_cast<char *>(storage->block);
  out->length = E;
  out->receivers = reinterpret_cast<int64_t *>(base);
  out->senders = reinterpret_cast<int64_t *>(base + 8 * e);
  out->vectors = reinterpret_cast<double *>(base + 16 * e);
  out->shifts = reinterpret_cast<int32_t *>(base + 40 * e);
  out->device = SYMGNN_CUDA;
  out->opaque = storage.release();
}

unsigned int blocks_for(long long n, int threads) {
  return static_cast<unsigned int>((n + threads - 1) / threads);
}

void compute_cuda(const double *positions, int64_t n_atoms, const double *cell_in,
                  const bool *pbc_in, double cutoff, int64_t n_receivers, cudaStream_t stream,
                  SymgnnNeighbors *out) {
  if (out == nullptr)
    fail("out is NULL: pass a pointer to a SymgnnNeighbors struct");
  if (n_atoms > 0 && positions == nullptr)
    fail("positions is NULL but n_atoms = " + std::to_string(n_atoms));
  if (n_receivers < 0)
    n_receivers = n_atoms;
  const Geometry geo = make_geometry(cell_in, pbc_in, cutoff, n_atoms, n_receivers);
  if (n_atoms >= (int64_t(1) << 31) - 1)
    fail("n_atoms = " + std::to_string(n_atoms) +
         " is too large for the CUDA neighbor list (< 2^31)");
  int device_count = 0;
  if (cudaGetDeviceCount(&device_count) != cudaSuccess || device_count == 0)
    fail("no CUDA device is visible (cudaGetDeviceCount)");
  {
    cudaPointerAttributes attr;
    if (n_atoms > 0 &&
        (cudaPointerGetAttributes(&attr, positions) != cudaSuccess ||
         (attr.type != cudaMemoryTypeDevice && attr.type != cudaMemoryTypeManaged))) {
      cudaGetLastError();
      fail("positions must be a CUDA device pointer");
    }
  }
  const long long N = n_atoms;
  Params P{};
  for (int a = 0; a < 3; ++a)
    for (int c = 0; c < 3; ++c) {
      P.B[a][c] = geo.B[a][c];
      P.Binv[a][c] = geo.Binv[a][c];
      P.cell[a][c] = geo.cell[a][c];
    }
  for (int k = 0; k < 3; ++k)
    P.pbc[k] = geo.pbc[k] ? 1 : 0;
  P.n_atoms = N;
  P.n_receivers = n_receivers;

  if (N == 0) {
    set_device_output(out, 0);
    return;
  }
  const int T = 256;
  DevBuf<double> frac(3 * N), wpos(3 * N);
  DevBuf<int> img(3 * N);
  DevBuf<DevStats> dstats(1);
  DevStats hs;
  for (int k = 0; k < 3; ++k) {
    hs.fmin[k] = ~0ull;
    hs.fmax[k] = 0ull;
  }
  hs.max_abs = enc_host(0.0);
  hs.max_image = enc_host(0.0);
  hs.bad_atom = ~0ull;
  hs.far_atom = ~0ull;
  check(cudaMemcpyAsync(dstats.ptr, &hs, sizeof(hs), cudaMemcpyHostToDevice, stream), "memcpy");
  prep_kernel<<<blocks_for(N, T), T, 0, stream>>>(positions, P, frac.ptr, img.ptr, wpos.ptr,
                                                  dstats.ptr);
  check(cudaGetLastError(), "prep kernel launch");
  check(cudaMemcpyAsync(&hs, dstats.ptr, sizeof(hs), cudaMemcpyDeviceToHost, stream), "memcpy");
  check(cudaStreamSynchronize(stream), "prep kernel");
  auto position_of = [&](unsigned long long a) {
    double p[3];
    check(cudaMemcpy(p, positions + 3 * a, sizeof(p), cudaMemcpyDeviceToHost), "memcpy");
    return fmt3(p);
  };
  if (hs.bad_atom != ~0ull)
    fail("positions[" + std::to_string(hs.bad_atom) +
         "] is not finite: " + position_of(hs.bad_atom));
  if (hs.far_atom != ~0ull)
    fail("positions[" + std::to_string(hs.far_atom) + "] = " + position_of(hs.far_atom) +
         " is too far from the cell (more than 2^29 periods)");
  if (n_receivers == 0) {
    set_device_output(out, 0);
    return;
  }
  AtomStats st;
  for (int k = 0; k < 3; ++k) {
    st.fmin[k] = geo.pbc[k] ? 0.0 : dec(hs.fmin[k]);
    st.fmax[k] = geo.pbc[k] ? 0.0 : dec(hs.fmax[k]);
  }
  st.max_abs = dec(hs.max_abs);
  st.max_image = dec(hs.max_image);
  const Grid G = make_grid(geo, n_atoms, n_receivers, st, 1.0, 1.0);
  if (G.nbins >= (int64_t(1) << 32) - 1)
    fail("too many bins for the CUDA neighbor list");
  for (int k = 0; k < 3; ++k) {
    P.fmin[k] = G.fmin[k];
    P.span[k] = G.span[k];
    P.nb[k] = G.nb[k];
  }
  P.lo = G.lo;
  P.hi = G.hi;
  P.c2 = G.c2;
  P.n_rows = static_cast<int>(G.rows.size());
  // (P.rows is set below, once the rows are on the device)
  std::vector<DevRow> hrows(G.rows.size());
  for (size_t r = 0; r < G.rows.size(); ++r)
    hrows[r] = {static_cast<int>(G.rows[r].dy), static_cast<int>(G.rows[r].dz),
                static_cast<int>(G.rows[r].xlo), static_cast<int>(G.rows[r].xhi)};
  DevBuf<DevRow> rows(hrows.size());
  check(cudaMemcpyAsync(rows.ptr, hrows.data(), hrows.size() * sizeof(DevRow),
                        cudaMemcpyHostToDevice, stream),
        "memcpy");
  P.rows = rows.ptr;

  // ---------------------------------------------------------------- binning
  const long long nbins = G.nbins;
  DevBuf<unsigned int> bins(N), bins_sorted(N), bin_count(nbins + 1), bin_start(nbins + 1);
  DevBuf<int> idx(N), order(N);
  check(cudaMemsetAsync(bin_count.ptr, 0, (nbins + 1) * sizeof(unsigned int), stream), "memset");
  bin_kernel<<<blocks_for(N, T), T, 0, stream>>>(frac.ptr, P, bins.ptr, idx.ptr, bin_count.ptr);
  check(cudaGetLastError(), "bin kernel launch");
  {
    size_t tmp_bytes = 0, scan_bytes = 0;
    int end_bit = 1;
    while (end_bit < 32 && (1ull << end_bit) <= static_cast<unsigned long long>(nbins))
      ++end_bit;
    check(cub::DeviceRadixSort::SortPairs(nullptr, tmp_bytes, bins.ptr, bins_sorted.ptr, idx.ptr,
                                          order.ptr, static_cast<int>(N), 0, end_bit, stream),
          "radix sort");
    check(cub::DeviceScan::ExclusiveSum(nullptr, scan_bytes, bin_count.ptr, bin_start.ptr,
                                        static_cast<int>(nbins + 1), stream),
          "scan");
    DevBuf<char> tmp(std::max(tmp_bytes, scan_bytes));
    check(cub::DeviceRadixSort::SortPairs(tmp.ptr, tmp_bytes, bins.ptr, bins_sorted.ptr, idx.ptr,
                                          order.ptr, static_cast<int>(N), 0, end_bit, stream),
          "radix sort");
    check(cub::DeviceScan::ExclusiveSum(tmp.ptr, scan_bytes, bin_count.ptr, bin_start.ptr,
                                        static_cast<int>(nbins + 1), stream),
          "scan");
    check(cudaStreamSynchronize(stream), "binning");
  }
  DevBuf<double> sp(3 * N), sr(3 * N);
  DevBuf<int> simg(3 * N);
  gather_kernel<<<blocks_for(N, T), T, 0, stream>>>(order.ptr, positions, wpos.ptr, img.ptr, N,
                                                    sp.ptr, sr.ptr, simg.ptr);
  check(cudaGetLastError(), "gather kernel launch");

  // ---------------------------------------------------------------- count, scan
  DevBuf<long long> counts(n_receivers + 1), offsets(n_receivers + 1);
  check(cudaMemsetAsync(counts.ptr, 0, (n_receivers + 1) * sizeof(long long), stream), "memset");
  const DevAtoms atoms{bin_start.ptr, sp.ptr, sr.ptr, simg.ptr};
  count_kernel<<<blocks_for(N, T), T, 0, stream>>>(P, atoms, bins_sorted.ptr, order.ptr,
                                                   counts.ptr);
  check(cudaGetLastError(), "count kernel launch");
  {
    size_t scan_bytes = 0;
    check(cub::DeviceScan::ExclusiveSum(nullptr, scan_bytes, counts.ptr, offsets.ptr,
                                        static_cast<int>(n_receivers + 1), stream),
          "scan");
    DevBuf<char> tmp(scan_bytes);
    check(cub::DeviceScan::ExclusiveSum(tmp.ptr, scan_bytes, counts.ptr, offsets.ptr,
                                        static_cast<int>(n_receivers + 1), stream),
          "scan");
    check(cudaStreamSynchronize(stream), "count kernel");
  }
  long long E = 0;
  check(cudaMemcpy(&E, offsets.ptr + n_receivers, sizeof(E), cudaMemcpyDeviceToHost), "memcpy");
  {
    size_t free_b = 0, total_b = 0;
    if (cudaMemGetInfo(&free_b, &total_b) == cudaSuccess &&
        52.0 * static_cast<double>(E) > 0.95 * static_cast<double>(free_b))
      fail("the neighbor list has " + std::to_string(E) + " edges (" +
           fmt(std::round(52.0 * E / 1073741824.0 * 10) / 10) + " GiB), more than the " +
           fmt(std::round(free_b / 1073741824.0 * 10) / 10) +
           " GiB free on the CUDA device; reduce the cutoff");
  }

  // ---------------------------------------------------------------- fill
  set_device_output(out, E);
  DevBuf<int> overflow(1);
  check(cudaMemsetAsync(overflow.ptr, 0, sizeof(int), stream), "memset");
  fill_kernel<<<blocks_for(N, T), T, 0, stream>>>(
      P, atoms, bins_sorted.ptr, order.ptr, offsets.ptr, counts.ptr,
      reinterpret_cast<long long *>(out->receivers), reinterpret_cast<long long *>(out->senders),
      out->shifts, out->vectors, overflow.ptr);
  check(cudaGetLastError(), "fill kernel launch");
  int hover = 0;
  check(cudaMemcpyAsync(&hover, overflow.ptr, sizeof(int), cudaMemcpyDeviceToHost, stream),
        "memcpy");
  check(cudaStreamSynchronize(stream), "fill kernel");
  if (hover != 0)
    fail("internal error: count and fill passes disagree");
}

// The message for a failed call (owned by this thread's g_cuda_error, or static).
const char *error_message(const std::exception_ptr &failure) noexcept {
  try {
    try {
      std::rethrow_exception(failure);
    } catch (const NlError &e) {
      g_cuda_error = "symgnn neighbors (CUDA): " + e.message;
    } catch (const CudaFail &e) {
      g_cuda_error = "symgnn neighbors (CUDA): " + e.message;
    } catch (const std::bad_alloc &) {
      g_cuda_error = "symgnn neighbors (CUDA): out of host memory";
    } catch (const std::exception &e) {
      g_cuda_error = std::string("symgnn neighbors (CUDA): internal error: ") + e.what();
    } catch (...) {
      g_cuda_error =
          "symgnn neighbors (CUDA): internal error: an exception that is not a std::exception";
    }
    return g_cuda_error.c_str();
  } catch (...) {
    return "symgnn neighbors (CUDA): out of host memory while reporting an error";
  }
}

} // namespace

void symgnn_cuda_free_storage(void *opaque) { delete static_cast<CudaStorage *>(opaque); }

extern "C" int symgnn_neighbors_cuda(const double *positions, int64_t n_atoms, const double *cell,
                                     const bool *pbc, double cutoff, int64_t n_receivers,
                                     void *stream, SymgnnNeighbors *out, const char **error) {
  std::exception_ptr failure;
  g_cuda_error.clear();
  if (out != nullptr)
    std::memset(out, 0, sizeof(*out));
  try {
    compute_cuda(positions, n_atoms, cell, pbc, cutoff, n_receivers,
                 static_cast<cudaStream_t>(stream), out);
    return 0;
  } catch (...) {
    failure = std::current_exception();
  }
  symgnn_neighbors_free(out);
  const char *message = error_message(failure);
  if (error != nullptr)
    *error = message;
  return 1;
}

extern "C" int symgnn_cuda_available(void) {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return n > 0 ? 1 : 0;
}
