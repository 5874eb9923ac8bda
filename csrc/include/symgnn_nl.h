// symgnn neighbor list: plain C API, no torch dependency.
//
// Semantics: full directed list; for every pair closer than
// `cutoff` both i<-j and j<-i appear. D = r_j - r_i + S . cell (cell rows are
// lattice vectors). All periodic images within the cutoff are listed, so boxes
// smaller than 2*cutoff work. No self pair with zero shift. Only atoms
// i < n_receivers receive edges. Output sorted by (i, j, S) lexicographically.
#ifndef SYMGNN_NL_H
#define SYMGNN_NL_H

#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// Where the arrays of a SymgnnNeighbors live.
enum SymgnnDevice { SYMGNN_CPU = 0, SYMGNN_CUDA = 1 };

typedef struct SymgnnNeighbors {
  int64_t length;     // number of directed edges E
  int64_t *receivers; // [E] i
  int64_t *senders;   // [E] j
  int32_t *shifts;    // [E*3] S
  double *vectors;    // [E*3] D
  int device;         // SymgnnDevice of the arrays above
  void *opaque;       // owned storage, freed by symgnn_neighbors_free
} SymgnnNeighbors;

// Computes the neighbor list on the CPU. `positions` is [n_atoms*3] row-major,
// `cell` is [9] row-major (rows are lattice vectors; may be NULL when no axis
// is periodic), `pbc` is [3]. n_receivers < 0 means n_atoms. n_threads <= 0
// means the default (OMP_NUM_THREADS or hardware concurrency).
// Returns 0 on success. On failure returns non-zero, leaves `out` empty and
// sets *error (if not NULL) to a message owned by the library, valid until the
// next call on the same thread.
int symgnn_neighbors_cpu(const double *positions, int64_t n_atoms, const double *cell,
                         const bool *pbc, double cutoff, int64_t n_receivers, int n_threads,
                         SymgnnNeighbors *out, const char **error);

// Same on a CUDA device: `positions` is a device pointer [n_atoms*3]; `cell`
// and `pbc` are host pointers. The output arrays are device pointers (device =
// SYMGNN_CUDA), same order as the CPU version. `stream` is a cudaStream_t or
// NULL for the default stream. Without CUDA support this returns non-zero with
// a message that says how to build it.
int symgnn_neighbors_cuda(const double *positions, int64_t n_atoms, const double *cell,
                          const bool *pbc, double cutoff, int64_t n_receivers, void *stream,
                          SymgnnNeighbors *out, const char **error);

// 1 if this build has CUDA support and a device is visible, else 0.
int symgnn_cuda_available(void);

// Frees what a successful call stored in `out` and zeroes it. Safe on a
// zeroed struct.
void symgnn_neighbors_free(SymgnnNeighbors *out);

// The CPU version keeps a few freed large blocks (at most 1/8 of the physical
// memory, 4 GiB) to reuse on the next call, which saves the kernel's page
// clearing in loops. This returns them to the system now. Thread-safe.
void symgnn_neighbors_release_memory(void);

#ifdef __cplusplus
}
#endif

#endif
