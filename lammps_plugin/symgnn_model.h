// The torch side of `compute symgnn`: loads an exported symgnn model
// (docs/contracts.md) and runs it layer by layer on a graph of local + ghost atoms.
//
// This header names no torch and no LAMMPS types, so the LAMMPS side
// (compute_symgnn.cpp) and the torch side (symgnn_model.cpp) compile
// separately and never see each other's headers.
#ifndef SYMGNN_LAMMPS_MODEL_H
#define SYMGNN_LAMMPS_MODEL_H

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace symgnn {

// A problem with the model file or its use; the message is for the user.
class ModelError : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

// The model's metadata (`_extra_files` of the TorchScript archive).
struct ModelInfo {
  std::string path;
  std::string format; // symgnn_format
  double r_max = 0.0;
  int n_layers = 0;
  std::vector<std::string> type_names;
  int feature_dim = 0;
  std::string output;
  std::string unit;
  std::string dtype;
  std::string info;        // JSON text
  int ensemble_size = 1;   // optional `ensemble_size`: members of an ensemble file
  std::string relax;       // optional `relax`: JSON text of the relax protocol ("" = none),
                           // parsed and checked by the LAMMPS side (relax.cpp)
  std::string node_inputs; // optional `node_inputs`: JSON text of the per-atom inputs `embed`
                           // takes ("" = none), parsed by the LAMMPS side (node_inputs.cpp)
};

// What the last graph says about the structure, for the compute's checks of
// unphysical input: the local atom with the most neighbors, and the closest
// pair (receiver, sender: indices into the n_all atoms of begin()).
struct GraphStats {
  int64_t max_neighbors = 0;
  int64_t max_neighbors_atom = -1;
  double min_distance = -1.0; // -1: no edge
  int64_t closest_receiver = -1;
  int64_t closest_sender = -1;
};

// One loaded model on one device. Not thread-safe; one per compute.
class Model {
public:
  // Loads `path` on `device` ("cpu" or "cuda"). Throws ModelError with a
  // message naming the file and what is wrong with it.
  Model(const std::string &path, const std::string &device);
  ~Model();
  Model(const Model &) = delete;
  Model &operator=(const Model &) = delete;

  const ModelInfo &info() const;

  // Builds the radius graph (cutoff r_max, no periodicity: ghosts are
  // explicit images) of n_all atoms whose first n_local receive edges, and
  // runs `embed`. positions: host [n_all*3]; species: host [n_all], indices
  // into type_names. n_threads: CPU threads for the neighbor list (<= 0:
  // default). node_inputs: host [n_all*n_inputs] float64 (row-major), the per-atom inputs
  // of a model whose file declares them (nullptr, 0 for one that does not).
  void begin(const double *positions, int64_t n_all, int64_t n_local, const int64_t *species,
             int n_threads, const double *node_inputs = nullptr, int n_inputs = 0);
  // Runs `interact(layer, ...)`.
  void interact(int layer);
  // Copies the node features of the first n_local atoms to dst
  // [n_local*feature_dim] (row-major).
  void get_local_features(double *dst) const;
  // Overwrites the node features of the ghost atoms (n_local .. n_all-1) from
  // src [(n_all-n_local)*feature_dim].
  void set_ghost_features(const double *src);
  // Runs `readout` on the local atoms into out [n_local] (eV) and drops the
  // graph.
  void readout(double *out);
  // An ensemble file: runs `readout_std` on the local atoms, the members' mean into
  // mean [n_local] and their standard deviation into std [n_local] (eV), and drops the
  // graph. Throws ModelError for a single model.
  void readout_std(double *mean, double *std);

  // Edges of the last graph, and the seconds its neighbor list took.
  int64_t n_edges() const;
  // Neighbor counts and the closest pair of the last graph (set by begin()).
  const GraphStats &graph_stats() const;
  double neighbor_seconds() const;

  // Runtime facts, for messages.
  static std::string torch_version();
  static bool torch_has_cuda();      // a CUDA device usable by torch
  static bool neighbors_have_cuda(); // the neighbor list was built with CUDA

  // torch intra-op threads while this model runs (n <= 0: torch's setting).
  // torch's process-wide settings (intra-op threads, the TorchScript graph
  // executor's optimize flag) are changed only while a method of this model
  // runs and restored when it returns, so other torch users in the same
  // process (other styles) keep theirs.
  void set_num_threads(int n);
  int num_threads() const;

private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

} // namespace symgnn

#endif
