// compute symgnn: per-atom energy barriers (eV) predicted by an exported
// symgnn model, exact under MPI domain decomposition.
//
//   compute ID group-ID symgnn MODEL TYPE1 ... TYPEn [device cpu|cuda] [std yes|no]
//           [relax_steps N] [relax_alpha A] [relax_cap C]
//
// MODEL is a path to an exported model (.pt) or `default` (the model bundled
// with the symgnn Python package); TYPEk names the model species of LAMMPS
// atom type k, like `pair_coeff * * Cu Zr`. The result is a per-atom vector,
// 0 for atoms outside the group. With `std yes` (MODEL an ensemble file, made by
// `symgnn ensemble`) it is a per-atom array: c_ID[1] the members' mean, c_ID[2]
// their standard deviation. relax_*: the relax protocol (relax.h), defaults from the
// model file's `relax` metadata; `relax_steps 0` turns it off. A model whose file declares
// per-atom inputs (metadata `node_inputs`: `pe`) gets the pair style's per-atom energies on
// the positions it sees (node_inputs.h), local and ghost atoms alike.
//
// Parallel scheme: the graph is built over local and ghost atoms (ghosts are
// explicit periodic images, so no periodicity is needed), only local atoms
// receive edges, and after `embed` and after every layer but the last the
// node features of ghost atoms are refreshed from their owners through
// comm->forward_comm(this). So the ghost cutoff only needs r_max + skin, and
// any number of ranks gives the numbers of one rank.
//
// This header names no torch type: the torch side lives in symgnn_model.cpp.
#ifndef LMP_COMPUTE_SYMGNN_H
#define LMP_COMPUTE_SYMGNN_H

#include "compute.h"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace symgnn {
class Model;
}

namespace LAMMPS_NS {

class ComputeSymGNN : public Compute {
public:
  ComputeSymGNN(class LAMMPS *, int, char **);
  ~ComputeSymGNN() override;
  void init() override;
  void setup() override;
  void compute_peratom() override;
  int pack_forward_comm(int, int *, double *, int, int *) override;
  void unpack_forward_comm(int, int, double *) override;
  int pack_reverse_comm(int, int, double *) override;
  void unpack_reverse_comm(int, int *, double *) override;
  double memory_usage() override;

private:
  std::unique_ptr<symgnn::Model> model_;
  std::unique_ptr<class SymGNNRelax> relax_;
  std::unique_ptr<class SymGNNNodeInputs> inputs_;
  bool forward_inputs_ = false; // forward comm carries the node inputs, not the features
  bool reverse_inputs_ = false; // reverse comm carries per-atom energies, not relax forces
  std::string device_;
  std::vector<std::string> type_args_;   // TYPEk, k = 1..ntypes
  std::vector<int64_t> species_of_type_; // [ntypes + 1]: LAMMPS type -> model species
  std::vector<int64_t> species_;         // per local + ghost atom
  int feature_dim_ = 0;
  int n_layers_ = 0;
  double r_max_ = 0.0;
  int nmax_ = 0;
  bool std_ = false;            // `std yes`: per-atom array (mean, std) of an ensemble
  double *barrier_ = nullptr;   // [nmax] the per-atom vector (the mean with `std yes`)
  double *stddev_ = nullptr;    // [nmax] `std yes`: the members' standard deviation
  double **values_ = nullptr;   // [nmax][2] `std yes`: the per-atom array (mean, std)
  double **features_ = nullptr; // [nmax][feature_dim] exchanged node features
  bigint cached_step_ = -1;     // timestep of the values in barrier_
  bigint cached_builds_ = -1;   // neighbor->ncalls at that time
  bool debug_ = false;          // SYMGNN_LAMMPS_DEBUG=1: log every evaluation
  bigint n_evaluations_ = 0;

  void grow();
  void exchange_features(int nlocal);
  // Unphysical input and non-finite output: error->all (density) or a thrown problem that
  // compute_peratom reports with error->one, naming the atom ids.
  void check_density();
  void check_geometry() const;
  void check_finite(int nlocal) const;
  std::string atom_name(int i) const;
  void print_model_info() const;
};

} // namespace LAMMPS_NS

#endif
