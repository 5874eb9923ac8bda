// compute symgnn: the LAMMPS side (see compute_symgnn.h). No torch headers
// here; the model runs in symgnn_model.cpp.
#include "compute_symgnn.h"

#include "model_path.h"
#include "node_inputs.h"
#include "relax.h"
#include "symgnn_format.h"
#include "symgnn_model.h"

#include "atom.h"
#include "comm.h"
#include "domain.h"
#include "error.h"
#include "force.h"
#include "json.h"
#include "memory.h"
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
#include <fstream>
#include <functional>
#include <sys/stat.h>

using namespace LAMMPS_NS;
using symgnn::plugin::join;

namespace {

const char kSyntax[] =
    "compute ID group-ID symgnn MODEL TYPE1 ... TYPEn [device cpu|cuda] [std yes|no] "
    "[relax_steps N] [relax_alpha A] [relax_cap C]";

// Unphysical input, refused (the same limits as symgnn_ase.calculator.MAX_NEIGHBORS and
// MIN_DISTANCE; tests/python/test_hostile_inputs.py checks that they agree): more neighbors
// within r_max than any condensed phase has (~30-60 in a metallic glass), atoms closer than
// 0.5 A (the shortest metallic bonds are above 2 A).
constexpr int64_t kMaxNeighbors = 500;
constexpr double kMinDistance = 0.5;
constexpr double kPi = 3.14159265358979323846;

// Thrown inside the model loop for a problem of this rank's atoms, reported with error->one.
struct InputProblem {
  std::string what;
};

} // namespace

/* ---------------------------------------------------------------------- */

ComputeSymGNN::ComputeSymGNN(LAMMPS *lmp, int narg, char **arg) : Compute(lmp, narg, arg) {
  if (narg < 5)
    error->all(FLERR,
               "Illegal compute symgnn command: expected `{}`, got {} argument(s) after "
               "`symgnn`",
               kSyntax, narg - 3);
  if (std::strcmp(update->unit_style, "metal") != 0)
    error->all(FLERR,
               "compute symgnn requires `units metal` (Å, eV: the model's units); this input "
               "has `units {}`",
               update->unit_style);
  if (domain->dimension != 3)
    error->all(FLERR, "compute symgnn requires a 3d simulation (`dimension 3`)");
  if (atom->type == nullptr || atom->ntypes < 1)
    error->all(FLERR, "compute symgnn requires atom types: define the simulation box first "
                      "(read_data, create_box or read_restart), with an atom style that has "
                      "types (e.g. `atom_style atomic`)");

  const int ntypes = atom->ntypes;
  const std::string model_arg = arg[3];

  // TYPE1 ... TYPEn: exactly one per LAMMPS atom type
  int ngiven = 0;
  const auto is_keyword = [](const std::string &word) {
    return word == "device" || word == "std" || SymGNNRelax::is_keyword(word);
  };
  while (ngiven < ntypes && 4 + ngiven < narg && !is_keyword(arg[4 + ngiven]))
    ++ngiven;
  if (ngiven != ntypes) {
    std::vector<std::string> given(arg + 4, arg + 4 + ngiven);
    error->all(FLERR,
               "compute symgnn: expected {} type name(s) after MODEL `{}` (one per LAMMPS atom "
               "type, like `pair_coeff * * Cu Zr`), got {}{}{}; syntax: `{}`",
               ntypes, model_arg, ngiven, ngiven ? ": " : "", join(given, " "), kSyntax);
  }
  type_args_.assign(arg + 4, arg + 4 + ntypes);

  device_ = "cpu";
  relax_ = std::make_unique<SymGNNRelax>(lmp, id);
  for (int iarg = 4 + ntypes; iarg < narg; iarg += 2) {
    const std::string key = arg[iarg];
    if (key == "device") {
      if (iarg + 1 >= narg)
        error->all(FLERR, "compute symgnn: keyword `device` needs a value: `device cpu` or "
                          "`device cuda`");
      device_ = arg[iarg + 1];
      if (device_ != "cpu" && device_ != "cuda")
        error->all(FLERR,
                   "compute symgnn: unknown device `{}`; expected `device cpu` or `device cuda`",
                   device_);
    } else if (key == "std") {
      const std::string value = iarg + 1 < narg ? arg[iarg + 1] : "";
      if (value != "yes" && value != "no")
        error->all(FLERR,
                   "compute symgnn: keyword `std` needs `yes` or `no`, got `{}` (`std yes` with "
                   "an ensemble file makes c_ID[1] the mean and c_ID[2] the standard deviation)",
                   value);
      std_ = value == "yes";
    } else if (SymGNNRelax::is_keyword(key)) {
      relax_->set_keyword(key, iarg + 1 < narg ? arg[iarg + 1] : nullptr);
    } else {
      error->all(
          FLERR,
          "compute symgnn: unknown keyword `{}` after the {} type name(s) (LAMMPS has {} "
          "atom type(s)); expected `device cpu|cuda`, `std yes|no` or relax_steps/alpha/cap; "
          "syntax: `{}`",
          key, ntypes, ntypes, kSyntax);
    }
  }

  // the model
  std::string why;
  const std::string path = symgnn::plugin::resolve_model(model_arg, why);
  if (!why.empty())
    error->all(FLERR, "compute symgnn: {}", why);
  {
    struct stat st{};
    if (::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode))
      error->all(FLERR,
                 "compute symgnn: cannot read model file `{}`: it is a directory (MODEL must be "
                 "the path of an exported symgnn model, .pt, or `default`)",
                 path);
    std::ifstream probe(path, std::ios::binary);
    if (!probe)
      error->all(FLERR,
                 "compute symgnn: cannot read model file `{}`: {} (MODEL must be the path of an "
                 "exported symgnn model, .pt, or `default`)",
                 path, std::strerror(errno));
  }
  try {
    model_ = std::make_unique<symgnn::Model>(path, device_);
  } catch (const std::exception &err) {
    error->all(FLERR, "compute symgnn: {}", err.what());
  }
  const symgnn::ModelInfo &info = model_->info();
  {
    auto meta = json::parse(info.info, nullptr, false);
    if (meta.is_discarded() || !meta.is_object())
      error->all(FLERR, "compute symgnn: `{}`: metadata `info` must be a JSON object, got `{}`",
                 path, info.info.substr(0, 200));
  }
  if (std_ && info.ensemble_size < 2)
    error->all(FLERR,
               "compute symgnn: `std yes` needs an ensemble file (several models in one, made "
               "by `symgnn ensemble MODEL1 MODEL2 ... -o ens.pt`); `{}` is a single model",
               path);
  relax_->configure(info.relax, path);
  inputs_ = std::make_unique<SymGNNNodeInputs>(lmp, id);
  inputs_->configure(info.node_inputs, path, info.type_names);
  r_max_ = info.r_max;
  n_layers_ = info.n_layers;
  feature_dim_ = info.feature_dim;

  species_of_type_.assign(ntypes + 1, -1);
  for (int t = 1; t <= ntypes; ++t) {
    const auto &name = type_args_[t - 1];
    auto it = std::find(info.type_names.begin(), info.type_names.end(), name);
    if (it == info.type_names.end())
      error->all(FLERR,
                 "compute symgnn: LAMMPS type {} maps to `{}`, which is not in the model's "
                 "type_names [{}] (model {})",
                 t, name, join(info.type_names, ", "), path);
    species_of_type_[t] = it - info.type_names.begin();
  }

  peratom_flag = 1;
  size_peratom_cols = std_ ? 2 : 0; // `std yes`: c_ID[1] mean, c_ID[2] standard deviation
  comm_forward = std::max(feature_dim_, inputs_->count()); // features, or node inputs
  comm_reverse = 3; // the relax's pair forces (or per-atom energies) on ghost atoms

  const char *dbg = std::getenv("SYMGNN_LAMMPS_DEBUG");
  debug_ = dbg != nullptr && *dbg != '\0' && std::strcmp(dbg, "0") != 0;

  if (comm->me == 0)
    print_model_info();
}

/* ---------------------------------------------------------------------- */

ComputeSymGNN::~ComputeSymGNN() {
  memory->destroy(barrier_);
  memory->destroy(stddev_);
  memory->destroy(values_);
  memory->destroy(features_);
}

/* ---------------------------------------------------------------------- */

void ComputeSymGNN::print_model_info() const {
  const symgnn::ModelInfo &info = model_->info();
  std::vector<std::string> map;
  for (size_t t = 0; t < type_args_.size(); ++t)
    map.push_back(std::to_string(t + 1) + " -> " + type_args_[t]);
  std::string text = fmt::format("compute {} symgnn: model {}\n", id, info.path);
  text += fmt::format("  output {} ({}), dtype {}, r_max {} A, {} layers, feature_dim {}, "
                      "type_names [{}]\n",
                      info.output, info.unit, info.dtype, info.r_max, info.n_layers,
                      info.feature_dim, join(info.type_names, ", "));
  if (info.ensemble_size > 1)
    text += fmt::format("  ensemble of {} models; per-atom {}\n", info.ensemble_size,
                        std_ ? "array: [1] mean, [2] standard deviation (std yes)"
                             : "vector: their mean (std yes adds the standard deviation)");
  text += fmt::format("  LAMMPS types: {}; device {}, torch {}\n", join(map, ", "), device_,
                      symgnn::Model::torch_version());
  text += relax_->describe();
  text += inputs_->describe();
  auto meta = json::parse(info.info, nullptr, false);
  if (!meta.is_discarded() && meta.is_object()) {
    std::vector<std::string> items;
    for (auto it = meta.begin(); it != meta.end(); ++it) {
      std::string value =
          it.value().is_string() ? it.value().get<std::string>() : it.value().dump();
      if (value.size() > 160)
        value = value.substr(0, 157) + "...";
      items.push_back(it.key() + ": " + value);
    }
    text += "  info: " + join(items, "\n        ") + "\n";
  } else {
    text += "  info: " + info.info.substr(0, 300) + "\n";
  }
  utils::logmesg(lmp, text);
}

/* ---------------------------------------------------------------------- */

void ComputeSymGNN::init() {
  if (comm->mode != Comm::SINGLE)
    error->all(FLERR, "compute symgnn requires `comm_modify mode single` (the default)");

  // ghost atoms must reach r_max beyond the subdomain, plus the skin they
  // may move before the next reneighboring (force->init() ran already, so
  // the pair cutoff is current; neighbor->init() and comm->setup() follow)
  const double need = r_max_ + neighbor->skin;
  double have = comm->cutghostuser;
  if (force->pair != nullptr && force->pair->cutforce > 0.0)
    have = std::max(have, force->pair->cutforce + neighbor->skin);
  if (have < need) {
    if (comm->me == 0)
      utils::logmesg(lmp,
                     "compute {} symgnn: raising the ghost-atom cutoff (comm_modify cutoff) "
                     "from {:.4g} to {:.4g} A = r_max {:.4g} + skin {:.4g}\n",
                     id, have, need, r_max_, neighbor->skin);
    comm->cutghostuser = need;
  }

  // torch intra-op threads follow LAMMPS's OpenMP threads per rank
  // (OMP_NUM_THREADS, or `package omp N`) while the model runs; torch's own
  // setting is restored after each call (symgnn_model.h)
  const int threads = std::max(1, comm->nthreads);
  model_->set_num_threads(threads);
  if (comm->me == 0 && debug_)
    utils::logmesg(lmp, "compute {} symgnn: {} torch thread(s) per MPI rank\n", id,
                   model_->num_threads());

  relax_->init(inputs_->active());
  inputs_->init();
  cached_step_ = -1;
  cached_builds_ = -1;
}

/* ---------------------------------------------------------------------- */

void ComputeSymGNN::setup() {
  cached_step_ = -1;
  cached_builds_ = -1;
}

/* ---------------------------------------------------------------------- */

void ComputeSymGNN::grow() {
  if (atom->nmax <= nmax_)
    return;
  nmax_ = atom->nmax;
  memory->destroy(barrier_);
  memory->destroy(stddev_);
  memory->destroy(values_);
  memory->destroy(features_);
  memory->create(barrier_, nmax_, "symgnn:barrier");
  memory->create(features_, nmax_, feature_dim_, "symgnn:features");
  if (std_) {
    memory->create(stddev_, nmax_, "symgnn:stddev");
    memory->create(values_, nmax_, 2, "symgnn:values");
    array_atom = values_;
  } else {
    vector_atom = barrier_;
  }
}

/* ---------------------------------------------------------------------- */

void ComputeSymGNN::exchange_features(int nlocal) {
  if (nlocal > 0)
    model_->get_local_features(features_[0]);
  comm->forward_comm(this);
  if (nlocal > 0)
    model_->set_ghost_features(features_[nlocal]);
}

/* ---------------------------------------------------------------------- */

void ComputeSymGNN::compute_peratom() {
  invoked_peratom = update->ntimestep;
  // one model call per timestep, however many consumers ask
  if (cached_step_ == update->ntimestep && cached_builds_ == neighbor->ncalls)
    return;

  // Ghost positions as of now: fixes acting at end_of_step (fix deform with
  // remap x, which moves local atoms and the box) run after this step's
  // forward communication and before output, so ghosts can lag behind their
  // owners when a dump or a thermo output calls this compute.
  comm->forward_comm();

  grow();
  const int nlocal = atom->nlocal;
  const int nall = nlocal + atom->nghost;
  const int *type = atom->type;
  species_.resize(nall);
  for (int i = 0; i < nall; ++i)
    species_[i] = species_of_type_[type[i]];

  using clock = std::chrono::steady_clock;
  const auto seconds = [](clock::time_point a, clock::time_point b) {
    return std::chrono::duration<double>(b - a).count();
  };
  double t_graph = 0.0, t_layers = 0.0, t_comm = 0.0;
  check_density();
  // the relax protocol: the model sees a private copy moved along the pair forces; the
  // simulation is restored before run() returns. Node inputs: the pair style's per-atom
  // energies on that copy (or the step's positions), then sent to the ghost atoms.
  const double *positions = nall ? atom->x[0] : nullptr;
  if (relax_->active() || inputs_->active()) {
    std::function<void()> at_moved;
    if (inputs_->active())
      at_moved = [this] {
        reverse_inputs_ = true;
        inputs_->evaluate(this);
        reverse_inputs_ = false;
      };
    positions = relax_->run(this, at_moved);
  }
  if (inputs_->active()) {
    forward_inputs_ = true;
    comm->forward_comm(this);
    forward_inputs_ = false;
    inputs_->check_range(species_.data(), nlocal);
  }
  try {
    // every rank takes part in every forward_comm, also one without atoms
    auto t0 = clock::now();
    if (nlocal > 0) {
      model_->begin(positions, nall, nlocal, species_.data(), comm->nthreads,
                    inputs_->active() ? inputs_->values() : nullptr, inputs_->count());
      check_geometry();
    }
    auto t1 = clock::now();
    t_graph = seconds(t0, t1);
    exchange_features(nlocal);
    t_comm += seconds(t1, clock::now());
    for (int layer = 0; layer < n_layers_; ++layer) {
      t0 = clock::now();
      if (nlocal > 0)
        model_->interact(layer);
      t1 = clock::now();
      t_layers += seconds(t0, t1);
      if (layer + 1 < n_layers_)
        exchange_features(nlocal);
      t_comm += seconds(t1, clock::now());
    }
    t0 = clock::now();
    if (nlocal > 0) {
      if (std_)
        model_->readout_std(barrier_, stddev_);
      else
        model_->readout(barrier_);
    }
    t_layers += seconds(t0, clock::now());
    if (nlocal > 0)
      check_finite(nlocal);
  } catch (const InputProblem &problem) {
    error->one(FLERR, "compute symgnn: {} (rank {}, step {})", problem.what, comm->me,
               update->ntimestep);
  } catch (const std::exception &err) {
    error->one(FLERR, "compute symgnn: model evaluation failed on rank {} at step {}: {}", comm->me,
               update->ntimestep, err.what());
  }

  const int *mask = atom->mask;
  for (int i = 0; i < nlocal; ++i)
    if (!(mask[i] & groupbit))
      barrier_[i] = 0.0;
  if (std_)
    for (int i = 0; i < nlocal; ++i) {
      values_[i][0] = barrier_[i];
      values_[i][1] = (mask[i] & groupbit) ? stddev_[i] : 0.0;
    }

  cached_step_ = update->ntimestep;
  cached_builds_ = neighbor->ncalls;
  ++n_evaluations_;
  if (debug_ && comm->me == 0)
    utils::logmesg(lmp,
                   "compute {} symgnn: evaluation {} at step {}: rank 0 has {} local + {} ghost "
                   "atoms, {} edges; relax {:.4f} s, neighbors {:.4f} s, embed {:.4f} s, "
                   "layers+readout {:.4f} s, exchange {:.4f} s\n",
                   id, n_evaluations_, update->ntimestep, nlocal, nall - nlocal, model_->n_edges(),
                   relax_->active() ? relax_->seconds() : 0.0, model_->neighbor_seconds(),
                   t_graph - model_->neighbor_seconds(), t_layers, t_comm);
}

/* ---------------------------------------------------------------------- */

std::string ComputeSymGNN::atom_name(int i) const {
  if (atom->tag_enable && atom->tag != nullptr)
    return "atom " + std::to_string(static_cast<long long>(atom->tag[i]));
  return "local atom " + std::to_string(i);
}

/* ---------------------------------------------------------------------- */

void ComputeSymGNN::check_density() {
  // before any neighbor list: the box's mean density, the same on every rank
  const double volume = domain->xprd * domain->yprd * domain->zprd;
  if (volume <= 0.0 || atom->natoms == 0)
    return;
  const double expected =
      static_cast<double>(atom->natoms) / volume * 4.0 / 3.0 * kPi * r_max_ * r_max_ * r_max_;
  if (expected > static_cast<double>(kMaxNeighbors))
    error->all(FLERR,
               "compute symgnn: {} atoms in a {:.4g} A^3 box: about {:.0f} neighbors per atom "
               "within r_max = {} A (at most {} allowed; a metallic glass has ~30-60): the "
               "density is unphysical (box too small, or coordinates not in Angstrom?) at step {}",
               atom->natoms, volume, expected, r_max_, kMaxNeighbors, update->ntimestep);
}

/* ---------------------------------------------------------------------- */

void ComputeSymGNN::check_geometry() const {
  const symgnn::GraphStats &g = model_->graph_stats();
  if (g.max_neighbors > kMaxNeighbors)
    throw InputProblem{fmt::format(
        "{} has {} neighbors within r_max = {} A (at most {} allowed; a metallic glass has "
        "~30-60): the density is unphysical (box too small, or coordinates not in Angstrom?)",
        atom_name(static_cast<int>(g.max_neighbors_atom)), g.max_neighbors, r_max_, kMaxNeighbors)};
  if (g.min_distance >= 0.0 && g.min_distance < kMinDistance) {
    const int i = static_cast<int>(g.closest_receiver);
    const int j = static_cast<int>(g.closest_sender);
    std::string a = atom_name(i), b = atom_name(j);
    std::string pair = a == b ? a + " and its own periodic image" : a + " and " + b;
    if (a != b && atom->tag_enable)
      pair = "atoms " + std::to_string(static_cast<long long>(atom->tag[i])) + " and " +
             std::to_string(static_cast<long long>(atom->tag[j]));
    throw InputProblem{fmt::format("{} are {:.3g} A apart (closer than {} A): coincident or "
                                   "overlapping atoms",
                                   pair, g.min_distance, kMinDistance)};
  }
}

/* ---------------------------------------------------------------------- */

void ComputeSymGNN::check_finite(int nlocal) const {
  std::vector<long long> bad; // atom ids (or local indices without ids)
  const bool ids = atom->tag_enable && atom->tag != nullptr;
  for (int i = 0; i < nlocal; ++i)
    if (!std::isfinite(barrier_[i]))
      bad.push_back(ids ? static_cast<long long>(atom->tag[i]) : i);
  if (bad.empty())
    return;
  std::sort(bad.begin(), bad.end());
  std::vector<std::string> first;
  for (size_t k = 0; k < bad.size() && k < 5; ++k)
    first.push_back(std::to_string(bad[k]));
  throw InputProblem{fmt::format(
      "the model returned non-finite barriers for {} of {} atom(s) of this rank, first {} {}: "
      "the structure is outside what the model handles, or the model file is broken",
      bad.size(), nlocal, ids ? "atom ids" : "local atoms", join(first, " "))};
}

/* ---------------------------------------------------------------------- */

int ComputeSymGNN::pack_forward_comm(int n, int *list, double *buf, int /*pbc_flag*/,
                                     int * /*pbc*/) {
  if (forward_inputs_)
    return inputs_->forward_pack(n, list, buf);
  const int width = feature_dim_;
  double *out = buf;
  for (int k = 0; k < n; ++k) {
    const double *row = features_[list[k]];
    std::copy(row, row + width, out);
    out += width;
  }
  return n * width;
}

/* ---------------------------------------------------------------------- */

void ComputeSymGNN::unpack_forward_comm(int n, int first, double *buf) {
  if (forward_inputs_)
    return inputs_->forward_unpack(n, first, buf);
  const int width = feature_dim_;
  const double *in = buf;
  for (int k = 0; k < n; ++k) {
    std::copy(in, in + width, features_[first + k]);
    in += width;
  }
}

/* ---------------------------------------------------------------------- */

int ComputeSymGNN::pack_reverse_comm(int n, int first, double *buf) {
  return reverse_inputs_ ? inputs_->reverse_pack(n, first, buf)
                         : relax_->reverse_pack(n, first, buf);
}

void ComputeSymGNN::unpack_reverse_comm(int n, int *list, double *buf) {
  if (reverse_inputs_)
    inputs_->reverse_unpack(n, list, buf);
  else
    relax_->reverse_unpack(n, list, buf);
}

/* ---------------------------------------------------------------------- */

double ComputeSymGNN::memory_usage() {
  return relax_->memory_usage() + inputs_->memory_usage() +
         static_cast<double>(nmax_) * (1.0 + (std_ ? 3.0 : 0.0) + feature_dim_) * sizeof(double) +
         static_cast<double>(species_.capacity()) * sizeof(int64_t);
}
