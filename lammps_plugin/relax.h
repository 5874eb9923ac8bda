// The relax protocol of `compute symgnn` (docs/contracts.md, issue 25): before the model
// predicts, a private copy of the positions is moved K steps along the forces of the
// simulation's own pair style,
//
//   for k = 1..K: F = pair forces at the copy; d_i = alpha F_i; n = |d_i|;
//                 d_i *= (n > cap ? cap / n : 1); x_i += d_i     (positions not wrapped)
//
// K, alpha and cap come from the model file's optional `relax` metadata (a JSON object)
// and the compute's keywords `relax_steps N`, `relax_alpha A`, `relax_cap C`; K = 0 is off.
//
// The steps call force->pair->compute(0, 0) on the atoms of the simulation itself (eflag =
// vflag = 0: Pair::ev_init then only clears the pair's flags, the energy and virial
// accumulators and the per-atom energy/virial arrays are not touched), then put back x, f,
// torque and the pair's flags bit for bit, and call the pair once more on the restored
// positions so that the pair's own per-atom state (EAM's rho, fp, numforce, which
// Pair::single reads) is the step's again. The simulation after the compute is exactly as
// without it.
//
// Refused with an error naming what is wrong: no pair style, `pair_modify compute no`,
// accelerator variants whose compute only works inside the force cycle (/omp: per-thread
// force arrays cleared in FixOMP::pre_force; /gpu, /kk, /intel), pair styles with side
// effects (random numbers, contact history), kspace / bond / angle / dihedral / improper
// styles (their forces would be missing), atom styles whose pair styles write per-atom arrays
// other than f and torque, and a move that, with the atoms' motion since the last neighbor
// list build, could leave the neighbor skin (the lists would miss pairs).
#ifndef LMP_SYMGNN_RELAX_H
#define LMP_SYMGNN_RELAX_H

#include "pointers.h"

#include <functional>
#include <string>
#include <vector>

namespace LAMMPS_NS {

class Compute;

struct RelaxSettings {
  int steps = 0;                     // 0 = off
  double alpha = 0.0;                // A^2/eV
  double cap = 0.0;                  // A per atom and step
  std::string potential, pair_style; // what the model was trained with ("" = not known)
};

class SymGNNRelax : protected Pointers {
public:
  SymGNNRelax(LAMMPS *lmp, const std::string &compute_id);

  // `relax_steps`, `relax_alpha` or `relax_cap`
  static bool is_keyword(const std::string &key);
  // one keyword and its value (nullptr: missing); error->all on a bad value
  void set_keyword(const std::string &key, const char *value);
  // the model file's `relax` metadata ("" = none) with the keywords applied on top;
  // error->all for a malformed value or an incomplete protocol
  void configure(const std::string &metadata, const std::string &model_path);

  bool active() const { return settings_.steps > 0; }
  const RelaxSettings &settings() const { return settings_; }
  bool from_file() const { return from_file_; }
  // for the compute's log (print_model_info)
  std::string describe() const;

  // checks that the simulation can give forces (and, `energies`, per-atom energies: the
  // model's node inputs) on request (error->all); call from init()
  void init(bool energies = false);
  // moves the private copy and returns it: [nlocal + nghost][3], valid until the next call;
  // the simulation's state is restored before it returns. `owner` is the compute whose
  // pack/unpack_reverse_comm call reverse_pack/reverse_unpack (newton_pair on). `at_moved`
  // (if set) runs on the moved positions, after the K steps (K may be 0), before the restore.
  const double *run(Compute *owner, const std::function<void()> &at_moved = {});

  int reverse_pack(int n, int first, double *buf) const;
  void reverse_unpack(int n, const int *list, const double *buf);
  double memory_usage() const;
  double seconds() const { return seconds_; } // of the last run()

private:
  std::string id_;
  RelaxSettings settings_;
  bool from_file_ = false;
  int steps_kw_ = -1; // keyword values (< 0: not given)
  double alpha_kw_ = -1.0, cap_kw_ = -1.0;
  std::vector<double> x_save_, f_save_, t_save_, moved_, ref_;
  double seconds_ = 0.0;

  // reference positions (last neighbor build) into ref_ and the skin left for atom motion
  double reference(int nlocal, std::string &what);
  void check_moves(int step, int nlocal, double budget, const std::string &what);
};

} // namespace LAMMPS_NS

#endif
