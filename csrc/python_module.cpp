// pybind11 module symgnn_ase._core: the C++ neighbor list for Python.
#include "symgnn_nl.h"

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <memory>
#include <string>

namespace py = pybind11;

namespace {

std::string shape_of(const py::array &a) {
  std::string s = "(";
  for (py::ssize_t k = 0; k < a.ndim(); ++k) {
    if (k > 0)
      s += ", ";
    s += std::to_string(a.shape(k));
  }
  if (a.ndim() == 1)
    s += ",";
  return s + ")";
}

std::string dtype_of(const py::array &a) { return py::str(a.dtype()).cast<std::string>(); }

void check_array(const py::array &a, const char *name, char kind, int itemsize, int ndim,
                 py::ssize_t dim0, py::ssize_t dim1, const char *expect) {
  if (a.dtype().kind() != kind || a.dtype().itemsize() != itemsize)
    throw py::value_error(std::string(name) + " must have dtype " +
                          (kind == 'f' ? "float64" : "bool") + ", got " + dtype_of(a));
  bool ok = a.ndim() == ndim && (dim0 < 0 || a.shape(0) == dim0) &&
            (ndim < 2 || dim1 < 0 || a.shape(1) == dim1);
  if (!ok)
    throw py::value_error(std::string(name) + " must have shape " + expect + ", got shape " +
                          shape_of(a));
  if (!(a.flags() & py::array::c_style))
    throw py::value_error(std::string(name) + " must be C-contiguous");
}

// A result and its arrays, freed together.
struct NeighborsDeleter {
  void operator()(SymgnnNeighbors *p) const {
    symgnn_neighbors_free(p);
    delete p;
  }
};
using NeighborsPtr = std::unique_ptr<SymgnnNeighbors, NeighborsDeleter>;

py::tuple neighbors(const py::array &positions, const py::object &cell_obj, const py::array &pbc,
                    double cutoff, int64_t n_receivers, int n_threads) {
  check_array(positions, "positions", 'f', 8, 2, -1, 3, "(n_atoms, 3)");
  check_array(pbc, "pbc", 'b', 1, 1, 3, -1, "(3,)");
  const double *cell_ptr = nullptr;
  py::array cell;
  if (!cell_obj.is_none()) {
    if (!py::isinstance<py::array>(cell_obj))
      throw py::type_error("cell must be a numpy array or None");
    cell = py::reinterpret_borrow<py::array>(cell_obj);
    check_array(cell, "cell", 'f', 8, 2, 3, 3, "(3, 3)");
    cell_ptr = static_cast<const double *>(cell.data());
  }
  const int64_t n_atoms = positions.shape(0);
  const double *pos_ptr = static_cast<const double *>(positions.data());
  const bool *pbc_ptr = static_cast<const bool *>(pbc.data());

  NeighborsPtr result(new SymgnnNeighbors{});
  const char *error = nullptr;
  int rc;
  {
    py::gil_scoped_release release;
    rc = symgnn_neighbors_cpu(pos_ptr, n_atoms, cell_ptr, pbc_ptr, cutoff, n_receivers, n_threads,
                              result.get(), &error);
  }
  if (rc != 0)
    throw py::value_error(error != nullptr ? error : "symgnn neighbors failed");
  // one owner for the four arrays: the block is freed when the last one dies
  SymgnnNeighbors *nl = result.get();
  py::capsule owner(nl, [](void *p) { NeighborsDeleter()(static_cast<SymgnnNeighbors *>(p)); });
  result.release(); // the capsule owns it now
  const py::ssize_t E = static_cast<py::ssize_t>(nl->length);
  py::array_t<int64_t> i({E}, {py::ssize_t(8)}, nl->receivers, owner);
  py::array_t<int64_t> j({E}, {py::ssize_t(8)}, nl->senders, owner);
  py::array_t<int32_t> S({E, py::ssize_t(3)}, {py::ssize_t(12), py::ssize_t(4)}, nl->shifts, owner);
  py::array_t<double> D({E, py::ssize_t(3)}, {py::ssize_t(24), py::ssize_t(8)}, nl->vectors, owner);
  return py::make_tuple(i, j, S, D);
}

} // namespace

PYBIND11_MODULE(_core, m) {
  m.doc() = "symgnn C++ core: neighbor list";
  m.def("neighbors", &neighbors, py::arg("positions"), py::arg("cell"), py::arg("pbc"),
        py::arg("cutoff"), py::arg("n_receivers") = -1, py::arg("n_threads") = 0,
        R"doc(Full directed neighbor list (see symgnn_ase.neighbors).

positions: float64 (n_atoms, 3) C-contiguous; cell: float64 (3, 3) or None
(rows are lattice vectors); pbc: bool (3,); cutoff: float > 0;
n_receivers: -1 for all atoms; n_threads: 0 for the default.
Returns (i int64 [E], j int64 [E], S int32 [E, 3], D float64 [E, 3]),
sorted by (i, j, S), with D = positions[j] - positions[i] + S @ cell.)doc");
  m.def(
      "release_memory", []() { symgnn_neighbors_release_memory(); },
      "Returns the blocks the neighbor list keeps for reuse to the system.");
  m.def(
      "cuda_available", []() { return symgnn_cuda_available() != 0; },
      "True if this build has CUDA support and a CUDA device is visible.");
}
