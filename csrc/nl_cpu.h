// CPU neighbor list internals (internal header), shared by its three parts:
// nl_storage.cpp (memory: output blocks, their pool, pass-1 record arenas),
// nl_kernels.cpp (the work of the two passes on one bin) and nl_driver.cpp
// (the C API and compute(), the sequence of passes).
#ifndef SYMGNN_NL_CPU_H
#define SYMGNN_NL_CPU_H

#include "nl_detail.h"
#include "symgnn_nl.h"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

namespace symgnn_nl {

// ---------------------------------------------------------------- memory (nl_storage.cpp)

double physical_memory_bytes();

// One block of memory. Large blocks are mapped directly, 2 MiB aligned and
// asked for transparent huge pages (far fewer page faults while filling), and
// go back to a small pool when freed: an MD loop asks for about the same size
// every step, and reusing a block skips the kernel's page clearing, a large
// part of the cost. Small blocks come from malloc.
class Block {
public:
  explicit Block(size_t bytes); // throws std::bad_alloc
  ~Block();
  Block(const Block &) = delete;
  Block &operator=(const Block &) = delete;
  void *data() const { return base_; }
  size_t size() const { return bytes_; }

private:
  void *base_ = nullptr;
  size_t bytes_ = 0;
  bool mapped_ = false;
};

// Points the four arrays of out into one new Block with room for n_edges
// edges, owned through out->opaque until symgnn_neighbors_free.
void set_output(SymgnnNeighbors *out, int64_t n_edges);

// Per-thread storage of pass-1 records (8 bytes per edge) in large blocks.
class RecordArena {
public:
  // room for n records; commit(used) afterwards
  uint64_t *reserve(size_t n) {
    if (room_ < n)
      grow(n);
    return cursor_;
  }
  void commit(size_t used) {
    cursor_ += used;
    room_ -= used;
  }

private:
  void grow(size_t n);
  std::vector<std::unique_ptr<Block>> blocks_;
  uint64_t *cursor_ = nullptr;
  size_t room_ = 0;
};

// ---------------------------------------------------------------- passes (nl_kernels.cpp)

// Everything the passes read: the set-up and the atoms sorted by bin.
struct Binned {
  const Geometry *geo = nullptr;
  const Grid *G = nullptr;
  int64_t n_atoms = 0, n_receivers = 0;
  std::vector<int64_t> bin_start; // [nbins + 1]
  std::vector<int64_t> order;     // bin-sorted position -> atom index
  std::vector<double> px, py, pz; // wrapped positions, bin-sorted
  std::vector<double> r;          // user positions, bin-sorted [3N]
  std::vector<int32_t> img;       // images n, bin-sorted [3N]
};

// A receiver's slice of the output, and its pass-1 records.
struct Slot {
  int64_t offset, count;
  const uint64_t *rec;
};

// A record is one edge in 8 bytes: (bin-sorted sender m) << kSegBits | segment.
constexpr int kSegBits = 20;

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
  void gather(const Binned &bd, const std::vector<Segment> &segs);
};

// What a worker reuses from bin to bin.
struct Scratch {
  std::vector<Segment> segs;
  Candidates cand;
  std::vector<uint64_t> keys;
};

// Pass 1 on the receivers of bin b: their edge counts (counts[i]), and in
// records mode their edges as records in the arena (slots[k]). Without records
// (the fallback) it only counts, with the walk of nl_walk.h.
void decide_bin(const Binned &bd, int64_t b, bool records, Scratch &scratch, RecordArena &arena,
                Slot *slots, int64_t *counts);

// Pass 2 on the receivers of bin b: their edges, sorted by (j, S), written to
// their slices of out (slots[k].offset). Without records the walk finds them
// again and must find as many as pass 1 did.
void fill_bin(const Binned &bd, int64_t b, bool records, Scratch &scratch, const Slot *slots,
              SymgnnNeighbors *out);

// Orders a worker's streaming stores of pass 2 before it finishes.
void stream_fence();

} // namespace symgnn_nl

#endif
