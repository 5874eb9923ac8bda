// placeholder, replaced by the CUDA implementation
#include "symgnn_nl.h"

#include <cstring>

void symgnn_cuda_free_storage(void *) {}

extern "C" int symgnn_neighbors_cuda(const double *, int64_t, const double *, const bool *, double,
                                     int64_t, void *, SymgnnNeighbors *out, const char **error) {
  if (out != nullptr)
    std::memset(out, 0, sizeof(*out));
  if (error != nullptr)
    *error = "symgnn CUDA neighbor list: not implemented yet";
  return 1;
}

extern "C" int symgnn_cuda_available(void) { return 0; }
