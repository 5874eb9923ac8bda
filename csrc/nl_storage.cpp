// Memory of the CPU neighbor list: output blocks (large ones mapped with huge
// pages and pooled for the next call), pass-1 record arenas, and the C API
// functions that free results and release the pool.
#include "nl_cpu.h"

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <new>
#include <utility>
#include <vector>

#include <sys/mman.h>
#include <unistd.h>

#ifdef SYMGNN_WITH_CUDA
// defined in cuda/neighbors.cu: releases the device storage of a CUDA result
void symgnn_cuda_free_storage(void *opaque);
#endif

namespace symgnn_nl {

namespace {

constexpr size_t kHuge = size_t(2) << 20;
// blocks this large are mapped (and pooled)
constexpr size_t kMapped = 4 * kHuge;

// The pool of freed mapped blocks, oldest first: at most kPoolBlocks blocks
// and 1/8 of the physical memory (capped at 4 GiB).
constexpr size_t kPoolBlocks = 24;
std::mutex g_pool_mutex;
std::vector<std::pair<void *, size_t>> g_pool;

size_t pool_limit() {
  return static_cast<size_t>(std::min(physical_memory_bytes() / 8.0, 4.0 * 1073741824.0));
}

// Takes the smallest pooled block that fits without wasting more than a third.
bool take_pooled(size_t bytes, void **base, size_t *size) {
  std::lock_guard<std::mutex> lock(g_pool_mutex);
  size_t best = g_pool.size();
  for (size_t q = 0; q < g_pool.size(); ++q)
    if (g_pool[q].second >= bytes && g_pool[q].second <= bytes + bytes / 2 + kHuge &&
        (best == g_pool.size() || g_pool[q].second < g_pool[best].second))
      best = q;
  if (best == g_pool.size())
    return false;
  *base = g_pool[best].first;
  *size = g_pool[best].second;
  g_pool.erase(g_pool.begin() + static_cast<std::ptrdiff_t>(best));
  return true;
}

// A 2 MiB aligned mapping of at least `bytes`, or nullptr.
void *map_aligned(size_t bytes, size_t *size) {
  const size_t len = (bytes + kHuge - 1) / kHuge * kHuge + kHuge;
  void *p = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED)
    return nullptr;
  // keep a 2 MiB aligned window, unmap the rest
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  const uintptr_t aligned = (a + kHuge - 1) / kHuge * kHuge;
  const size_t head = aligned - a;
  const size_t used = (bytes + kHuge - 1) / kHuge * kHuge;
  if (head > 0)
    munmap(p, head);
  const size_t tail = len - head - used;
  if (tail > 0)
    munmap(reinterpret_cast<void *>(aligned + used), tail);
#ifdef MADV_HUGEPAGE
  madvise(reinterpret_cast<void *>(aligned), used, MADV_HUGEPAGE);
#endif
  *size = used;
  return reinterpret_cast<void *>(aligned);
}

// Gives a mapped block back to the pool, unmapping what falls out of it.
void return_to_pool(void *base, size_t size) {
  std::vector<std::pair<void *, size_t>> drop;
  {
    std::lock_guard<std::mutex> lock(g_pool_mutex);
    g_pool.emplace_back(base, size);
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
}

} // namespace

double physical_memory_bytes() {
  const long pages = sysconf(_SC_PHYS_PAGES);
  const long page = sysconf(_SC_PAGE_SIZE);
  if (pages <= 0 || page <= 0)
    return 64.0 * 1073741824.0;
  return static_cast<double>(pages) * static_cast<double>(page);
}

Block::Block(size_t bytes) : bytes_(bytes) {
  if (bytes >= kMapped) {
    if (take_pooled(bytes, &base_, &bytes_)) {
      mapped_ = true;
      return;
    }
    base_ = map_aligned(bytes, &bytes_);
    if (base_ != nullptr) {
      mapped_ = true;
      return;
    }
    bytes_ = bytes;
  }
  base_ = std::malloc(std::max<size_t>(bytes, 64));
  if (base_ == nullptr)
    throw std::bad_alloc();
}

Block::~Block() {
  if (mapped_)
    return_to_pool(base_, bytes_);
  else
    std::free(base_);
}

void set_output(SymgnnNeighbors *out, int64_t n_edges) {
  const size_t e = static_cast<size_t>(n_edges);
  // receivers, senders (8 B), vectors (24 B), shifts (12 B): all aligned
  const size_t off_send = 8 * e, off_vec = 16 * e, off_shift = 40 * e;
  auto block = std::make_unique<Block>(52 * e);
  char *base = static_cast<char *>(block->data());
  out->length = n_edges;
  out->receivers = reinterpret_cast<int64_t *>(base);
  out->senders = reinterpret_cast<int64_t *>(base + off_send);
  out->vectors = reinterpret_cast<double *>(base + off_vec);
  out->shifts = reinterpret_cast<int32_t *>(base + off_shift);
  out->device = SYMGNN_CPU;
  out->opaque = block.release();
}

void RecordArena::grow(size_t n) {
  constexpr size_t kBlockRecords = size_t(4) << 20; // 32 MiB
  const size_t records = std::max(kBlockRecords, n);
  blocks_.push_back(std::make_unique<Block>(records * sizeof(uint64_t)));
  cursor_ = static_cast<uint64_t *>(blocks_.back()->data());
  room_ = blocks_.back()->size() / sizeof(uint64_t);
}

} // namespace symgnn_nl

extern "C" void symgnn_neighbors_free(SymgnnNeighbors *out) {
  if (out == nullptr)
    return;
  if (out->opaque != nullptr) {
    if (out->device == SYMGNN_CPU) {
      delete static_cast<symgnn_nl::Block *>(out->opaque);
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
    std::lock_guard<std::mutex> lock(symgnn_nl::g_pool_mutex);
    drop.swap(symgnn_nl::g_pool);
  }
  for (const auto &b : drop)
    munmap(b.first, b.second);
}
