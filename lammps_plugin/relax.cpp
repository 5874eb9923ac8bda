// The relax protocol of `compute symgnn` (see relax.h).
#include "relax.h"

#include "atom.h"
#include "comm.h"
#include "compute.h"
#include "domain.h"
#include "error.h"
#include "force.h"
#include "json.h"
#include "lammps.h"
#include "modify.h"
#include "neighbor.h"
#include "pair.h"
#include "update.h"
#include "utils.h"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <functional>

using namespace LAMMPS_NS;

namespace {

// the protocol of a file without `relax` metadata when only relax_steps is given (the same
// defaults as symgnn_ase.potential.relax.DEFAULT_ALPHA / DEFAULT_CAP)
constexpr double kDefaultAlpha = 0.12;
constexpr double kDefaultCap = 0.3;
const char *const kFields[] = {"steps", "alpha", "cap", "potential", "pair_style"};

// Neighbor and Pair keep what the skin check and the restore need in protected members;
// pointers to those members, formed through a derived class, read them without copying
// LAMMPS internals.
using Vec3 = double[3];
using Corners = double[8][3];
struct NeighborHold : Neighbor {
  static int Neighbor::*boxcheck_member() { return &NeighborHold::boxcheck; }
  static Vec3 Neighbor::*lo() { return &NeighborHold::boxlo_hold; }
  static Vec3 Neighbor::*hi() { return &NeighborHold::boxhi_hold; }
  static Corners Neighbor::*corners_member() { return &NeighborHold::corners_hold; }
};
struct PairHold : Pair {
  static int Pair::*fdotr() { return &PairHold::vflag_fdotr; }
};

// the pair's energy/virial flags, which Pair::ev_init(0, 0) clears
struct PairFlags {
  int v[9];
  static constexpr int Pair::*kMembers[8] = {
      &Pair::evflag,       &Pair::eflag_either, &Pair::eflag_global, &Pair::eflag_atom,
      &Pair::vflag_either, &Pair::vflag_global, &Pair::vflag_atom,   &Pair::cvflag_atom};
  explicit PairFlags(Pair *pair) {
    for (int k = 0; k < 8; ++k)
      v[k] = pair->*kMembers[k];
    v[8] = pair->*PairHold::fdotr();
  }
  void restore(Pair *pair) const {
    for (int k = 0; k < 8; ++k)
      pair->*kMembers[k] = v[k];
    pair->*PairHold::fdotr() = v[8];
  }
};

bool parse_int(const char *text, int &out) {
  if (text == nullptr || *text == '\0')
    return false;
  char *end = nullptr;
  errno = 0;
  long x = std::strtol(text, &end, 10);
  if (*end != '\0' || errno != 0 || x < 0 || x > 1000000)
    return false;
  out = static_cast<int>(x);
  return true;
}

bool parse_positive(const char *text, double &out) {
  if (text == nullptr || *text == '\0')
    return false;
  char *end = nullptr;
  double x = std::strtod(text, &end);
  if (*end != '\0' || !std::isfinite(x) || x <= 0.0)
    return false;
  out = x;
  return true;
}

} // namespace

/* ---------------------------------------------------------------------- */

SymGNNRelax::SymGNNRelax(LAMMPS *lmp, const std::string &compute_id)
    : Pointers(lmp), id_(compute_id) {}

bool SymGNNRelax::is_keyword(const std::string &key) {
  return key == "relax_steps" || key == "relax_alpha" || key == "relax_cap";
}

void SymGNNRelax::set_keyword(const std::string &key, const char *value) {
  const std::string got = value ? fmt::format("`{}`", value) : std::string("nothing");
  if (key == "relax_steps") {
    if (!parse_int(value, steps_kw_))
      error->all(FLERR,
                 "compute symgnn: relax_steps must be an integer >= 0 (0 turns the relax off), "
                 "got {}",
                 got);
  } else if (key == "relax_alpha") {
    if (!parse_positive(value, alpha_kw_))
      error->all(FLERR, "compute symgnn: relax_alpha must be a finite number > 0 (A^2/eV), got {}",
                 got);
  } else if (key == "relax_cap") {
    if (!parse_positive(value, cap_kw_))
      error->all(FLERR,
                 "compute symgnn: relax_cap must be a finite number > 0 (A per atom and step), "
                 "got {}",
                 got);
  }
}

/* ---------------------------------------------------------------------- */

void SymGNNRelax::configure(const std::string &metadata, const std::string &model_path) {
  settings_ = RelaxSettings();
  settings_.alpha = kDefaultAlpha;
  settings_.cap = kDefaultCap;
  from_file_ = metadata.find_first_not_of(" \t\r\n") != std::string::npos;
  if (from_file_) {
    const auto bad = [&](const std::string &why) {
      error->all(FLERR, "compute symgnn: `{}`: metadata `relax` {}, got `{}`", model_path, why,
                 metadata.substr(0, 300));
    };
    auto obj = json::parse(metadata, nullptr, false);
    if (obj.is_discarded() || !obj.is_object())
      bad("must be a JSON object like {\"steps\": 4, \"alpha\": 0.12, \"cap\": 0.3}");
    for (auto it = obj.begin(); it != obj.end(); ++it)
      if (std::find_if(std::begin(kFields), std::end(kFields),
                       [&](const char *f) { return it.key() == f; }) == std::end(kFields))
        bad(fmt::format("has an unknown entry `{}` (known: steps, alpha, cap, potential, "
                        "pair_style)",
                        it.key()));
    for (const char *key : {"steps", "alpha", "cap"})
      if (!obj.contains(key))
        bad(fmt::format("lacks `{}`", key));
    const auto &steps = obj["steps"];
    if (!steps.is_number_integer() || steps.get<long long>() < 0 ||
        steps.get<long long>() > 1000000)
      bad("entry `steps` must be an integer >= 0");
    settings_.steps = static_cast<int>(steps.get<long long>());
    for (const char *key : {"alpha", "cap"}) {
      const auto &v = obj[key];
      if (!v.is_number() || !std::isfinite(v.get<double>()) || v.get<double>() <= 0.0)
        bad(fmt::format("entry `{}` must be a finite number > 0", key));
      (std::strcmp(key, "alpha") == 0 ? settings_.alpha : settings_.cap) = v.get<double>();
    }
    for (const char *key : {"potential", "pair_style"}) {
      if (!obj.contains(key) || obj[key].is_null())
        continue;
      const auto &v = obj[key];
      if (!v.is_string() || v.get<std::string>().find_first_not_of(" \t") == std::string::npos ||
          v.get<std::string>().find('\n') != std::string::npos)
        bad(fmt::format("entry `{}` must be a non-empty string or null", key));
      (std::strcmp(key, "potential") == 0 ? settings_.potential : settings_.pair_style) =
          v.get<std::string>();
    }
  }
  if (steps_kw_ >= 0)
    settings_.steps = steps_kw_;
  if (alpha_kw_ > 0.0)
    settings_.alpha = alpha_kw_;
  if (cap_kw_ > 0.0)
    settings_.cap = cap_kw_;
}

/* ---------------------------------------------------------------------- */

std::string SymGNNRelax::describe() const {
  const RelaxSettings &s = settings_;
  std::string source = from_file_ ? "the model file" : "no relax metadata in the model file";
  if (steps_kw_ >= 0 || alpha_kw_ > 0.0 || cap_kw_ > 0.0)
    source += ", keywords";
  if (!active()) {
    if (steps_kw_ == 0)
      return "  relax: off (relax_steps 0)\n";
    return from_file_ ? "  relax: off (steps 0 in the model file)\n"
                      : "  relax: off (the model file has no relax metadata; relax_steps N turns "
                        "it on)\n";
  }
  std::string text = fmt::format("  relax: {} step(s) along the pair style's forces, alpha {} "
                                 "A^2/eV, cap {} A per step ({})\n",
                                 s.steps, s.alpha, s.cap, source);
  if (!s.potential.empty() || !s.pair_style.empty())
    text += fmt::format("  relax: the model was trained with potential {} (pair_style {})\n",
                        s.potential.empty() ? "?" : s.potential,
                        s.pair_style.empty() ? "?" : s.pair_style);
  return text;
}

/* ---------------------------------------------------------------------- */

void SymGNNRelax::init(bool energies) {
  if (!active() && !energies)
    return;
  const std::string head =
      active() ? fmt::format("compute {} symgnn: relax_steps {} moves the atoms along the pair "
                             "style's forces, but ",
                             id_, settings_.steps)
               : fmt::format("compute {} symgnn: the model takes per-atom energies from the "
                             "pair style (metadata node_inputs), but ",
                             id_);
  const std::string off = active() ? " (`relax_steps 0` turns the relax off)" : "";
  Pair *pair = force->pair;
  if (pair == nullptr)
    error->all(FLERR, "{}no pair style is defined (define one with pair_style/pair_coeff){}", head,
               off);
  const std::string style = force->pair_style;
  if (!pair->compute_flag)
    error->all(FLERR,
               "{}`pair_modify compute no` is set for pair style {}: it computes no forces{}", head,
               style, off);
  for (const char *suffix : {"/omp", "/gpu", "/kk", "/intel"}) {
    if (force->pair_match(suffix, 0, 1) != nullptr || lmp->kokkos != nullptr)
      error->all(FLERR,
                 "{}pair style {} is an accelerator variant ({}) whose forces can be computed "
                 "only inside the MD force cycle (its per-thread or device force arrays are "
                 "set up before each step's force call); use the plain pair style (no `-sf` "
                 "suffix, `suffix off`){}",
                 head, style, lmp->kokkos ? "kokkos" : suffix, off);
  }
  for (const char *name : {"dpd", "gran", "lubricate", "brownian"})
    if (force->pair_match(name, 0, 1) != nullptr)
      error->all(FLERR,
                 "{}pair style {} has side effects in its force call (random numbers or contact "
                 "history), so extra calls would change the trajectory{}",
                 head, style, off);
  if (!modify->get_fix_by_style("^NEIGH_HISTORY").empty())
    error->all(FLERR,
               "{}pair style {} keeps contact history, which extra force calls would change{}",
               head, style, off);
  const std::pair<const char *, const char *> others[] = {
      {"kspace", force->kspace ? force->kspace_style : nullptr},
      {"bond", force->bond ? force->bond_style : nullptr},
      {"angle", force->angle ? force->angle_style : nullptr},
      {"dihedral", force->dihedral ? force->dihedral_style : nullptr},
      {"improper", force->improper ? force->improper_style : nullptr}};
  for (const auto &other : others)
    if (other.second != nullptr)
      error->all(FLERR,
                 "{}this simulation also has {}_style {}, whose forces and energies would be "
                 "left out (it uses the pair style's forces only, and for node inputs its "
                 "per-atom energies){}",
                 head, other.first, other.second, off);
  const std::pair<const char *, int> fields[] = {
      {"spin", atom->sp_flag},         {"sph (rho)", atom->rho_flag},
      {"sph (esph)", atom->esph_flag}, {"electron", atom->erforce_flag},
      {"dpd", atom->dpd_flag},         {"edpd", atom->edpd_flag},
      {"tdpd", atom->tdpd_flag},       {"rheo", atom->rheo_status_flag}};
  for (const auto &field : fields)
    if (field.second)
      error->all(FLERR,
                 "{}atom style {} has {} per-atom arrays that its pair styles write besides f "
                 "and torque, which the relax would not restore{}",
                 head, atom->atom_style, field.first, off);
  if (active() && comm->me == 0 && !settings_.pair_style.empty() &&
      style.compare(0, settings_.pair_style.size(), settings_.pair_style) != 0)
    error->warning(FLERR,
                   "compute {} symgnn: the relax uses pair style {}, but the model's relax "
                   "protocol was chosen with pair_style {} (potential {}): barriers may be less "
                   "accurate",
                   id_, style, settings_.pair_style,
                   settings_.potential.empty() ? "?" : settings_.potential);
}

/* ---------------------------------------------------------------------- */

double SymGNNRelax::reference(int nlocal, std::string &what) {
  double **x = atom->x;
  ref_.resize(3 * static_cast<size_t>(nlocal));
  if (neighbor->dist_check) {
    double **xhold = neighbor->get_xhold();
    if (nlocal > 0 && xhold == nullptr)
      error->one(FLERR, "compute {} symgnn: relax: the neighbor-list build positions are missing",
                 id_);
    for (int i = 0; i < nlocal; ++i)
      std::copy(xhold[i], xhold[i] + 3, &ref_[3 * i]);
    what =
        fmt::format("its position at the last neighbor-list build (step {})", neighbor->lastcall);
    // a box that changed since the build shrinks the room, as in Neighbor::check_distance
    if (neighbor->*NeighborHold::boxcheck_member()) {
      double d1 = 0.0, d2 = 0.0;
      const auto dist = [](const double *a, const double *b) {
        const double dx = a[0] - b[0], dy = a[1] - b[1], dz = a[2] - b[2];
        return std::sqrt(dx * dx + dy * dy + dz * dz);
      };
      if (domain->triclinic == 0) {
        d1 = dist(neighbor->bboxlo, neighbor->*NeighborHold::lo());
        d2 = dist(neighbor->bboxhi, neighbor->*NeighborHold::hi());
      } else {
        double saved[8][3];
        std::memcpy(saved, domain->corners, sizeof(saved));
        domain->box_corners();
        for (int c = 0; c < 8; ++c) {
          const double d = dist(domain->corners[c], (neighbor->*NeighborHold::corners_member())[c]);
          if (d > d1) {
            d2 = d1;
            d1 = d;
          } else if (d > d2) {
            d2 = d;
          }
        }
        std::memcpy(domain->corners, saved, sizeof(saved));
      }
      return neighbor->skin - (d1 + d2);
    }
    return neighbor->skin;
  }
  // `neigh_modify check no`: no build positions are kept; only a build on this very step
  // (every 1) tells that the atoms have not moved since
  if (neighbor->lastcall != update->ntimestep || domain->box_change)
    error->all(FLERR,
               "compute {} symgnn: the relax needs to know how far the atoms moved since the "
               "last neighbor-list build, which LAMMPS keeps only with `neigh_modify check yes` "
               "(the default); this input has `check no` (the last build was at step {}, now "
               "step {}): use `neigh_modify every 1 delay 0 check yes`, or `relax_steps 0`",
               id_, neighbor->lastcall, update->ntimestep);
  for (int i = 0; i < nlocal; ++i)
    std::copy(x[i], x[i] + 3, &ref_[3 * i]);
  what =
      fmt::format("its position at the neighbor-list build of this step ({})", update->ntimestep);
  return neighbor->skin;
}

/* ---------------------------------------------------------------------- */

void SymGNNRelax::check_moves(int step, int nlocal, double budget, const std::string &what) {
  // the pair style's and the model's neighbor lists (and the ghost atoms) hold every pair
  // closer than the cutoff as long as no two atoms moved more than the skin together since
  // the build: largest + second largest displacement <= skin (less any box motion)
  double **x = atom->x;
  double top[2] = {0.0, 0.0};
  int worst = -1;
  for (int i = 0; i < nlocal; ++i) {
    const double dx = x[i][0] - ref_[3 * i], dy = x[i][1] - ref_[3 * i + 1],
                 dz = x[i][2] - ref_[3 * i + 2];
    const double d = std::sqrt(dx * dx + dy * dy + dz * dz);
    if (d > top[0]) {
      top[1] = top[0];
      top[0] = d;
      worst = i;
    } else if (d > top[1]) {
      top[1] = d;
    }
  }
  std::vector<double> all(2 * static_cast<size_t>(comm->nprocs));
  MPI_Allgather(top, 2, MPI_DOUBLE, all.data(), 2, MPI_DOUBLE, world);
  std::sort(all.begin(), all.end(), std::greater<double>());
  const double d1 = all[0], d2 = all.size() > 1 ? all[1] : 0.0;
  if (d1 + d2 <= budget)
    return;
  struct {
    double d;
    int rank;
  } mine{top[0], comm->me}, owner{0.0, 0};
  MPI_Allreduce(&mine, &owner, 1, MPI_DOUBLE_INT, MPI_MAXLOC, world);
  bigint tag = 0;
  if (comm->me == owner.rank && worst >= 0)
    tag = atom->tag_enable ? static_cast<bigint>(atom->tag[worst]) : worst;
  MPI_Bcast(&tag, 1, MPI_LMP_BIGINT, owner.rank, world);
  error->all(FLERR,
             "compute {} symgnn: after relax step {} of {} (alpha {}, cap {} A), atom {} is "
             "{:.4g} A from {}, and another atom {:.4g} A: together more than the neighbor "
             "skin allows ({:.4g} A: skin {} A less the box's motion since the build), so the "
             "neighbor lists would miss pairs. Use a larger "
             "skin (e.g. `neighbor 2.0 bin`), rebuild more often (`neigh_modify every 1 delay 0 "
             "check yes`), or move less (a smaller relax_cap or relax_steps)",
             id_, step, settings_.steps, settings_.alpha, settings_.cap, tag, d1, what, d2, budget,
             neighbor->skin);
}

/* ---------------------------------------------------------------------- */

const double *SymGNNRelax::run(Compute *owner, const std::function<void()> &at_moved) {
  const auto start = std::chrono::steady_clock::now();
  const int nlocal = atom->nlocal;
  const int nall = nlocal + atom->nghost;
  const size_t n3 = 3 * static_cast<size_t>(nall);
  double **x = atom->x;
  double **f = atom->f;
  Pair *pair = force->pair;
  const bool torque = atom->torque_flag && atom->torque != nullptr;

  x_save_.assign(nall ? x[0] : nullptr, nall ? x[0] + n3 : nullptr);
  f_save_.assign(nall ? f[0] : nullptr, nall ? f[0] + n3 : nullptr);
  if (torque)
    t_save_.assign(nall ? atom->torque[0] : nullptr, nall ? atom->torque[0] + n3 : nullptr);
  const PairFlags flags(pair);
  std::string what;
  const double budget = settings_.steps > 0 ? reference(nlocal, what) : 0.0;

  const double alpha = settings_.alpha, cap = settings_.cap;
  for (int step = 1; step <= settings_.steps; ++step) {
    if (nall > 0)
      std::fill(f[0], f[0] + n3, 0.0);
    pair->compute(0, 0);
    if (force->newton_pair)
      comm->reverse_comm(owner);
    for (int i = 0; i < nlocal; ++i) {
      if (!std::isfinite(f[i][0]) || !std::isfinite(f[i][1]) || !std::isfinite(f[i][2]))
        error->one(FLERR,
                   "compute {} symgnn: relax step {}: the pair style's force on atom {} is not "
                   "finite ({}, {}, {})",
                   id_, step, atom->tag_enable ? static_cast<bigint>(atom->tag[i]) : i, f[i][0],
                   f[i][1], f[i][2]);
      const double dx = alpha * f[i][0], dy = alpha * f[i][1], dz = alpha * f[i][2];
      const double n = std::sqrt(dx * dx + dy * dy + dz * dz);
      const double s = n > cap ? cap / n : 1.0;
      x[i][0] += dx * s;
      x[i][1] += dy * s;
      x[i][2] += dz * s;
    }
    comm->forward_comm();
    check_moves(step, nlocal, budget, what);
  }
  moved_.assign(nall ? x[0] : nullptr, nall ? x[0] + n3 : nullptr);
  if (at_moved)
    at_moved();

  // the simulation as it was: positions, the pair's own per-atom state at them (a force call
  // on the restored positions), forces, torques, the pair's flags
  if (nall > 0)
    std::copy(x_save_.begin(), x_save_.end(), x[0]);
  pair->compute(0, 0);
  if (nall > 0)
    std::copy(f_save_.begin(), f_save_.end(), f[0]);
  if (torque && nall > 0)
    std::copy(t_save_.begin(), t_save_.end(), atom->torque[0]);
  flags.restore(pair);
  seconds_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return moved_.data();
}

/* ---------------------------------------------------------------------- */

int SymGNNRelax::reverse_pack(int n, int first, double *buf) const {
  double **f = atom->f;
  int m = 0;
  for (int i = first; i < first + n; ++i) {
    buf[m++] = f[i][0];
    buf[m++] = f[i][1];
    buf[m++] = f[i][2];
  }
  return m;
}

void SymGNNRelax::reverse_unpack(int n, const int *list, const double *buf) {
  double **f = atom->f;
  int m = 0;
  for (int k = 0; k < n; ++k) {
    const int j = list[k];
    f[j][0] += buf[m++];
    f[j][1] += buf[m++];
    f[j][2] += buf[m++];
  }
}

double SymGNNRelax::memory_usage() const {
  return static_cast<double>(x_save_.capacity() + f_save_.capacity() + t_save_.capacity() +
                             moved_.capacity() + ref_.capacity()) *
         sizeof(double);
}
