// Per-atom inputs of `compute symgnn` from the pair style (see node_inputs.h).
#include "node_inputs.h"

#include "atom.h"
#include "comm.h"
#include "compute.h"
#include "error.h"
#include "force.h"
#include "json.h"
#include "pair.h"
#include "utils.h"

#include <algorithm>
#include <cmath>

using namespace LAMMPS_NS;

namespace {

// the inputs this plugin computes (symgnn_ase.potential.inputs.NODE_INPUT_KINDS)
const char kKnown[] = "pe (the pair style's per-atom potential energy, eV)";
const char *const kFields[] = {"names", "potential", "pair_style", "stats"};
// a per-species mean further than this many training std is warned about
// (symgnn_ase.potential.inputs.OUT_OF_RANGE_STD)
constexpr double kOutOfRangeStd = 3.0;

// Pair keeps the size of its per-atom energy array and its tally computes in protected
// members; pointers to them, formed through a derived class, read and set them.
struct PairEnergyHold : Pair {
  static int Pair::*maxeatom_member() { return &PairEnergyHold::maxeatom; }
  static int Pair::*tallies_member() { return &PairEnergyHold::num_tally_compute; }
};

} // namespace

/* ---------------------------------------------------------------------- */

SymGNNNodeInputs::SymGNNNodeInputs(LAMMPS *lmp, const std::string &compute_id)
    : Pointers(lmp), id_(compute_id) {}

/* ---------------------------------------------------------------------- */

void SymGNNNodeInputs::configure(const std::string &metadata, const std::string &model_path,
                                 const std::vector<std::string> &type_names) {
  names_.clear();
  stats_.clear();
  type_names_ = type_names;
  if (metadata.find_first_not_of(" \t\r\n") == std::string::npos)
    return;
  const auto bad = [&](const std::string &why) {
    error->all(FLERR, "compute symgnn: `{}`: metadata `node_inputs` {}, got `{}`", model_path, why,
               metadata.substr(0, 300));
  };
  auto obj = json::parse(metadata, nullptr, false);
  if (obj.is_discarded() || !obj.is_object())
    bad("must be a JSON object like {\"names\": [\"pe\"], \"stats\": {...}}");
  for (auto it = obj.begin(); it != obj.end(); ++it)
    if (std::find_if(std::begin(kFields), std::end(kFields),
                     [&](const char *f) { return it.key() == f; }) == std::end(kFields))
      bad(fmt::format("has an unknown entry `{}` (known: names, potential, pair_style, stats)",
                      it.key()));
  if (!obj.contains("names") || !obj["names"].is_array() || obj["names"].empty())
    bad("entry `names` must be a non-empty list of input names");
  for (const auto &name : obj["names"]) {
    if (!name.is_string())
      bad("entry `names` must be a list of strings");
    const std::string text = name.get<std::string>();
    if (text != "pe")
      error->all(FLERR,
                 "compute symgnn: `{}` takes the per-atom input `{}` (metadata `node_inputs`), "
                 "which compute symgnn cannot compute; it supplies only: {}",
                 model_path, text, kKnown);
    if (std::find(names_.begin(), names_.end(), text) != names_.end())
      bad(fmt::format("lists the input `{}` twice", text));
    names_.push_back(text);
  }
  for (const char *key : {"potential", "pair_style"}) {
    if (!obj.contains(key) || obj[key].is_null())
      continue;
    if (!obj[key].is_string())
      bad(fmt::format("entry `{}` must be a string or null", key));
    (std::string(key) == "potential" ? potential_ : pair_style_) = obj[key].get<std::string>();
  }
  stats_.assign(names_.size(), {});
  if (obj.contains("stats") && !obj["stats"].is_null()) {
    const auto &stats = obj["stats"];
    if (!stats.is_object())
      bad("entry `stats` must map each input to {species: [mean, std]}");
    for (size_t k = 0; k < names_.size(); ++k) {
      if (!stats.contains(names_[k]))
        continue;
      const auto &per = stats[names_[k]];
      if (!per.is_object())
        bad(fmt::format("entry `stats` of `{}` must map species to [mean, std]", names_[k]));
      for (auto it = per.begin(); it != per.end(); ++it) {
        const auto &pair = it.value();
        if (!pair.is_array() || pair.size() != 2 || !pair[0].is_number() || !pair[1].is_number() ||
            !std::isfinite(pair[0].get<double>()) || !std::isfinite(pair[1].get<double>()) ||
            pair[1].get<double>() < 0.0)
          bad(fmt::format("entry `stats` of `{}` for `{}` must be [mean, std] (finite, std >= 0)",
                          names_[k], it.key()));
        stats_[k].push_back({it.key(), pair[0].get<double>(), pair[1].get<double>()});
      }
    }
  }
}

/* ---------------------------------------------------------------------- */

std::string SymGNNNodeInputs::describe() const {
  if (!active())
    return "";
  std::string text = "  node inputs:";
  for (const auto &name : names_)
    text += " " + name;
  text += " (per-atom energy of the pair style, on the positions the model sees)";
  if (!potential_.empty() || !pair_style_.empty())
    text +=
        fmt::format("; trained with potential {} (pair_style {})",
                    potential_.empty() ? "?" : potential_, pair_style_.empty() ? "?" : pair_style_);
  return text + "\n";
}

/* ---------------------------------------------------------------------- */

void SymGNNNodeInputs::init() {
  if (!active())
    return;
  // SymGNNRelax::init(true) already refused what gives no forces or energies on request
  if (utils::strmatch(force->pair_style, "^hybrid"))
    error->all(FLERR,
               "compute {} symgnn: the model takes per-atom energies from the pair style "
               "(metadata node_inputs), but pair style {} keeps them in its sub-styles, whose "
               "per-atom energies an extra call would overwrite; use a single pair style",
               id_, force->pair_style);
  if (comm->me == 0 && !pair_style_.empty() &&
      std::string(force->pair_style).compare(0, pair_style_.size(), pair_style_) != 0)
    error->warning(FLERR,
                   "compute {} symgnn: the model's per-atom inputs come from pair style {}, but "
                   "its training values came from pair_style {} (potential {}): barriers may "
                   "be less accurate",
                   id_, force->pair_style, pair_style_, potential_.empty() ? "?" : potential_);
}

/* ---------------------------------------------------------------------- */

void SymGNNNodeInputs::evaluate(Compute *owner) {
  Pair *pair = force->pair;
  const int nlocal = atom->nlocal;
  const int nall = nlocal + atom->nghost;
  const int nmax = std::max(atom->nmax, 1);
  const size_t need = static_cast<size_t>(std::max(1, comm->nthreads)) * nmax;
  if (eatom_.size() < need)
    eatom_.resize(need);

  // the pair's own per-atom energy array, accumulators and tally computes are put aside
  double *const eatom_hold = pair->eatom;
  const int maxeatom_hold = pair->*PairEnergyHold::maxeatom_member();
  const int tallies_hold = pair->*PairEnergyHold::tallies_member();
  const double vdwl = pair->eng_vdwl, coul = pair->eng_coul;
  double virial[6];
  std::copy(pair->virial, pair->virial + 6, virial);
  pair->eatom = eatom_.data();
  pair->*PairEnergyHold::maxeatom_member() = nmax;
  pair->*PairEnergyHold::tallies_member() = 0;
  std::fill(eatom_.begin(), eatom_.begin() + nall, 0.0);

  pair->compute(ENERGY_ATOM, 0);

  pair->eatom = eatom_hold;
  pair->*PairEnergyHold::maxeatom_member() = maxeatom_hold;
  pair->*PairEnergyHold::tallies_member() = tallies_hold;
  pair->eng_vdwl = vdwl;
  pair->eng_coul = coul;
  std::copy(virial, virial + 6, pair->virial);

  // newton_pair on: the ghosts' shares of pair energies go to their owners
  if (force->newton_pair)
    comm->reverse_comm(owner);
  const int n = count();
  values_.assign(static_cast<size_t>(nall) * n, 0.0);
  for (int i = 0; i < nlocal; ++i)
    for (int k = 0; k < n; ++k)
      values_[static_cast<size_t>(i) * n + k] = eatom_[i];
  for (int i = 0; i < nlocal; ++i)
    if (!std::isfinite(eatom_[i]))
      error->one(FLERR,
                 "compute {} symgnn: the pair style's per-atom energy of atom {} is not "
                 "finite ({})",
                 id_, atom->tag_enable ? static_cast<bigint>(atom->tag[i]) : i, eatom_[i]);
}

/* ---------------------------------------------------------------------- */

void SymGNNNodeInputs::check_range(const int64_t *species, int nlocal) {
  if (warned_ || !active())
    return;
  const int n = count();
  const int ns = static_cast<int>(type_names_.size());
  std::vector<double> sums(static_cast<size_t>(n * ns + ns), 0.0), all(sums.size());
  for (int i = 0; i < nlocal; ++i) {
    const int s = static_cast<int>(species[i]);
    for (int k = 0; k < n; ++k)
      sums[k * ns + s] += values_[static_cast<size_t>(i) * n + k];
    sums[n * ns + s] += 1.0;
  }
  MPI_Allreduce(sums.data(), all.data(), static_cast<int>(sums.size()), MPI_DOUBLE, MPI_SUM, world);
  warned_ = true; // every rank decides alike
  std::vector<std::string> far;
  for (int k = 0; k < n; ++k)
    for (const Stat &stat : stats_[k]) {
      auto it = std::find(type_names_.begin(), type_names_.end(), stat.species);
      if (it == type_names_.end())
        continue;
      const int s = static_cast<int>(it - type_names_.begin());
      const double atoms = all[n * ns + s];
      if (atoms <= 0.0)
        continue;
      const double mean = all[k * ns + s] / atoms;
      if (std::fabs(mean - stat.mean) > kOutOfRangeStd * stat.std)
        far.push_back(fmt::format("node input `{}` of {}: mean {:.4f} over {:.0f} atoms, the "
                                  "model was trained on {:.4f} +- {:.4f} ({}): more than {:g} "
                                  "std away",
                                  names_[k], stat.species, mean, atoms, stat.mean, stat.std,
                                  potential_.empty() ? "its potential" : potential_,
                                  kOutOfRangeStd));
    }
  if (far.empty()) {
    warned_ = false;
    return;
  }
  if (comm->me == 0) {
    std::string text;
    for (const auto &line : far)
      text += (text.empty() ? "" : "; ") + line;
    error->warning(FLERR,
                   "compute {} symgnn: the pair style's per-atom inputs are far from the model's "
                   "training data ({}); its barriers may be off (warned once)",
                   id_, text);
  }
}

/* ---------------------------------------------------------------------- */

int SymGNNNodeInputs::forward_pack(int n, const int *list, double *buf) const {
  const size_t width = names_.size();
  for (int k = 0; k < n; ++k)
    std::copy(values_.data() + list[k] * width, values_.data() + (list[k] + 1) * width,
              buf + k * width);
  return static_cast<int>(n * width);
}

void SymGNNNodeInputs::forward_unpack(int n, int first, const double *buf) {
  const size_t width = names_.size();
  std::copy(buf, buf + n * width, values_.data() + first * width);
}

/* ---------------------------------------------------------------------- */

int SymGNNNodeInputs::reverse_pack(int n, int first, double *buf) const {
  int m = 0;
  for (int i = first; i < first + n; ++i)
    buf[m++] = eatom_[i];
  return m;
}

void SymGNNNodeInputs::reverse_unpack(int n, const int *list, const double *buf) {
  for (int k = 0; k < n; ++k)
    eatom_[list[k]] += buf[k];
}

double SymGNNNodeInputs::memory_usage() const {
  return static_cast<double>(eatom_.capacity() + values_.capacity()) * sizeof(double);
}
