// Used when symgnn is built without nvcc: the CUDA entry points exist but say
// how to get CUDA support.
#include "symgnn_nl.h"

#include <cstring>

namespace {
const char kNoCuda[] =
    "symgnn was built without CUDA support: rebuild with nvcc on PATH (CMake option "
    "SYMGNN_CUDA=ON), e.g. `CMAKE_ARGS=-DSYMGNN_CUDA=ON pip install --no-build-isolation -e .`, "
    "or use the CPU neighbor list (symgnn_neighbors_cpu)";
} // namespace

extern "C" int symgnn_neighbors_cuda(const double * /*positions*/, int64_t /*n_atoms*/,
                                     const double * /*cell*/, const bool * /*pbc*/,
                                     double /*cutoff*/, int64_t /*n_receivers*/, void * /*stream*/,
                                     SymgnnNeighbors *out, const char **error) {
  if (out != nullptr)
    std::memset(out, 0, sizeof(*out));
  if (error != nullptr)
    *error = kNoCuda;
  return 1;
}

extern "C" int symgnn_cuda_available(void) { return 0; }
