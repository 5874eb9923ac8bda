// Per-atom inputs of `compute symgnn` from the simulation's potential (docs/contracts.md,
// issue 27). A model file whose optional metadata `node_inputs` is set, e.g.
//
//   {"names": ["pe"], "potential": "CuZr_mm.eam.fs", "pair_style": "eam/fs",
//    "stats": {"pe": {"Cu": [mean, std], "Zr": [mean, std]}}}
//
// takes one float64 value per atom and input in its `embed(species, edge_index, edge_vec,
// node_inputs)`, for local and ghost atoms. The one input known is `pe`, the per-atom
// potential energy of the pair style (what `compute pe/atom` reports for a pair-only
// simulation), evaluated on the positions the model sees: the relax protocol's moved copy
// (relax.h), else the step's positions.
//
// evaluate() calls force->pair->compute(ENERGY_ATOM, 0) with the pair's per-atom energy array
// swapped for a private one (so the pair's eatom, which `compute pe/atom` reads later in the
// step, is never written), its global accumulators saved and put back, and pair tally
// computes muted; with newton_pair on, the ghost atoms' shares come back to their owners by
// reverse communication, like compute pe/atom. The caller (SymGNNRelax::run) restores
// positions, forces, the pair's flags and per-atom state afterwards. Ghost values are
// filled by the compute's forward communication.
#ifndef LMP_SYMGNN_NODE_INPUTS_H
#define LMP_SYMGNN_NODE_INPUTS_H

#include "pointers.h"

#include <cstdint>
#include <string>
#include <vector>

namespace LAMMPS_NS {

class Compute;

class SymGNNNodeInputs : protected Pointers {
public:
  SymGNNNodeInputs(LAMMPS *lmp, const std::string &compute_id);

  // the model file's `node_inputs` metadata ("" = none); error->all for a malformed value
  // or an input name this plugin cannot compute
  void configure(const std::string &metadata, const std::string &model_path,
                 const std::vector<std::string> &type_names);
  bool active() const { return !names_.empty(); }
  int count() const { return static_cast<int>(names_.size()); }
  std::string describe() const;
  // checks that the pair style can give per-atom energies (error->all); from init()
  void init();
  // per-atom energies of the pair style at the current positions into values() for the
  // local atoms; `owner` dispatches pack/unpack_reverse_comm to reverse_pack/unpack
  void evaluate(Compute *owner);
  // [nall * count()] row-major; local rows set by evaluate(), ghost rows by the caller
  double *values() { return values_.data(); }
  // once per compute: a warning when a per-species mean is > kOutOfRangeStd training std
  // away from the model's training data (collective: every rank calls it)
  void check_range(const int64_t *species, int nlocal);

  // ghost rows of values() from their owners (the compute's forward_comm)
  int forward_pack(int n, const int *list, double *buf) const;
  void forward_unpack(int n, int first, const double *buf);
  // the ghosts' shares of the per-atom energies (reverse_comm, newton_pair on)
  int reverse_pack(int n, int first, double *buf) const;
  void reverse_unpack(int n, const int *list, const double *buf);
  double memory_usage() const;

private:
  struct Stat {
    std::string species;
    double mean, std;
  };
  std::string id_;
  std::vector<std::string> names_;
  std::vector<std::string> type_names_;  // the model's species names
  std::vector<std::vector<Stat>> stats_; // per input
  std::string potential_, pair_style_;   // where the training values came from
  std::vector<double> eatom_;            // the pair's per-atom energies (private array)
  std::vector<double> values_;           // [nall * count()]
  bool warned_ = false;
};

} // namespace LAMMPS_NS

#endif
