// The torch side of `compute symgnn` (see symgnn_model.h). No LAMMPS headers
// here: LAMMPS bundles its own {fmt} and must not meet torch's.
#include "symgnn_model.h"

#include "symgnn_format.h"

#ifndef SYMGNN_VERSION
#define SYMGNN_VERSION "unknown"
#endif
#include "symgnn_nl.h"

#include <ATen/Parallel.h>
#include <torch/csrc/jit/runtime/graph_executor.h>
#include <torch/cuda.h>
#include <torch/script.h>
#include <torch/version.h>

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <utility>

namespace symgnn {

namespace {

using format::kFormatVersion;
using format::kMetadataKeys;
const char kExportHint[] = "export one with `symgnn export RUN -o model.pt`";

// Owns what symgnn_neighbors_* stored; frees it on every path out.
struct NeighborsGuard {
  SymgnnNeighbors nl{};
  NeighborsGuard() = default;
  NeighborsGuard(const NeighborsGuard &) = delete;
  NeighborsGuard &operator=(const NeighborsGuard &) = delete;
  ~NeighborsGuard() { symgnn_neighbors_free(&nl); }
};

std::string first_line(const std::string &text) {
  auto end = text.find('\n');
  return end == std::string::npos ? text : text.substr(0, end);
}

std::vector<std::string> split_words(const std::string &text) {
  std::istringstream in(text);
  std::vector<std::string> out;
  std::string word;
  while (in >> word)
    out.push_back(word);
  return out;
}

double parse_double(const std::string &path, const char *key, const std::string &value) {
  try {
    size_t used = 0;
    double x = std::stod(value, &used);
    if (used == value.size() && std::isfinite(x))
      return x;
  } catch (const std::exception &) {
  }
  throw ModelError("model `" + path + "`: metadata `" + key + "` must be a finite number, got `" +
                   value + "`");
}

int parse_positive_int(const std::string &path, const char *key, const std::string &value) {
  try {
    size_t used = 0;
    long x = std::stol(value, &used);
    if (used == value.size() && x > 0 && x < (1L << 30))
      return static_cast<int>(x);
  } catch (const std::exception &) {
  }
  throw ModelError("model `" + path + "`: metadata `" + key +
                   "` must be a positive integer, got `" + value + "`");
}

std::pair<torch::Tensor, torch::Tensor> two_tensors(const c10::IValue &value, const char *method) {
  if (!value.isTuple())
    throw ModelError(std::string("model method `") + method + "` did not return a tuple (h, e)");
  const auto &items = value.toTupleRef().elements();
  if (items.size() != 2 || !items[0].isTensor() || !items[1].isTensor())
    throw ModelError(std::string("model method `") + method +
                     "` must return two tensors (h, e), got " + std::to_string(items.size()) +
                     " values");
  return {items[0].toTensor(), items[1].toTensor()};
}

// torch's process-wide settings for the duration of one call into the model:
// set on construction, restored on destruction.
class TorchSettings {
public:
  TorchSettings(int n_threads, bool optimize)
      : threads_(at::get_num_threads()), optimize_(torch::jit::getGraphExecutorOptimize()) {
    if (n_threads > 0 && n_threads != threads_)
      at::set_num_threads(n_threads);
    if (optimize != optimize_)
      torch::jit::setGraphExecutorOptimize(optimize);
  }
  ~TorchSettings() {
    if (at::get_num_threads() != threads_)
      at::set_num_threads(threads_);
    if (torch::jit::getGraphExecutorOptimize() != optimize_)
      torch::jit::setGraphExecutorOptimize(optimize_);
  }
  TorchSettings(const TorchSettings &) = delete;
  TorchSettings &operator=(const TorchSettings &) = delete;

private:
  int threads_;
  bool optimize_;
};

} // namespace

struct Model::Impl {
  ModelInfo info;
  int n_threads = 0;         // torch intra-op threads during calls (<= 0: torch's)
  bool jit_optimize = false; // the graph executor's optimize flag during calls
  torch::jit::Module module;
  torch::Device device{torch::kCPU};
  torch::ScalarType dtype = torch::kFloat32;

  // the graph of the current evaluation
  int64_t n_all = 0;
  int64_t n_local = 0;
  int64_t n_edges = 0;
  GraphStats stats;
  double neighbor_seconds = 0.0;
  torch::Tensor edge_index, h, e;

  void check_h(const char *method) const {
    if (h.dim() != 2 || h.size(0) != n_all || h.size(1) != info.feature_dim)
      throw ModelError(std::string("model method `") + method +
                       "` returned node features of shape " + c10::str(h.sizes()) + ", expected [" +
                       std::to_string(n_all) + ", " + std::to_string(info.feature_dim) +
                       "] (feature_dim from the metadata)");
  }

  // drops the graph; n_edges and neighbor_seconds stay for messages
  void clear() {
    edge_index = h = e = torch::Tensor();
    n_all = n_local = 0;
  }
};

Model::Model(const std::string &path, const std::string &device) : impl_(new Impl) {
  ModelInfo &info = impl_->info;
  info.path = path;

  {
    std::ifstream file(path, std::ios::binary);
    if (!file)
      throw ModelError("cannot read model file `" + path + "`: " + std::strerror(errno));
    char magic[4] = {0, 0, 0, 0};
    file.read(magic, 4);
    if (file.gcount() != 4 || std::memcmp(magic, "PK\x03\x04", 4) != 0)
      throw ModelError("`" + path +
                       "` is not a symgnn model: not a TorchScript archive (zip file); " +
                       kExportHint);
  }

  if (device == "cuda") {
    if (!torch_has_cuda())
      throw ModelError("device cuda: this torch (" + torch_version() +
                       ") sees no CUDA device: it is a CPU-only build or the machine has no "
                       "GPU. Install a CUDA build of torch and rebuild the plugin, or use "
                       "`device cpu`");
    if (!neighbors_have_cuda())
      throw ModelError(
          "device cuda: symgnn was built without CUDA support (or its CUDA neighbor list sees "
          "no device); rebuild with nvcc on PATH (CMAKE_ARGS=-DSYMGNN_CUDA=ON), or use "
          "`device cpu`");
    impl_->device = torch::Device(torch::kCUDA);
  } else if (device != "cpu") {
    throw ModelError("unknown device `" + device + "`, expected cpu or cuda");
  }

  // The profiling graph executor re-specializes on every new atom and edge count (they
  // change every call here); the plain interpreter runs the same ops without that.
  // Applied per call (TorchSettings), not process-wide.
  {
    const char *opt = std::getenv("SYMGNN_JIT_OPTIMIZE");
    impl_->jit_optimize = opt != nullptr && std::strcmp(opt, "1") == 0;
  }

  torch::jit::ExtraFilesMap extra;
  for (const char *key : kMetadataKeys)
    extra[key] = "";
  for (const char *key : format::kOptionalMetadataKeys)
    extra[key] = "";
  try {
    impl_->module = torch::jit::load(path, impl_->device, extra);
  } catch (const c10::Error &err) {
    throw ModelError("`" + path + "` is not a loadable TorchScript model: " +
                     first_line(err.what_without_backtrace()));
  } catch (const std::exception &err) {
    throw ModelError("`" + path +
                     "` is not a loadable TorchScript model: " + first_line(err.what()));
  }

  info.format = extra["symgnn_format"];
  if (info.format.empty())
    throw ModelError("`" + path +
                     "` is not a symgnn model: a TorchScript file without `symgnn_format` "
                     "metadata; " +
                     kExportHint);
  if (info.format != kFormatVersion) {
    // a larger number: a newer symgnn made the file
    bool newer = info.format.find_first_not_of("0123456789") == std::string::npos &&
                 info.format.size() < 9 && std::stoi(info.format) > std::stoi(kFormatVersion);
    if (newer)
      throw ModelError("`" + path + "` was made by a newer symgnn: its model format is " +
                       info.format + ", this plugin (symgnn " + SYMGNN_VERSION + ") reads format " +
                       kFormatVersion +
                       "; upgrade symgnn (pip install -U symgnn-ase), or export the model "
                       "with this version");
    throw ModelError("`" + path + "`: symgnn_format is `" + info.format + "`, this plugin reads `" +
                     kFormatVersion + "`; update symgnn or re-export the model");
  }
  std::string missing;
  for (const char *key : kMetadataKeys)
    if (extra[key].empty())
      missing += std::string(missing.empty() ? "" : ", ") + key;
  if (!missing.empty())
    throw ModelError("`" + path + "`: symgnn model metadata lacks " + missing);

  info.r_max = parse_double(path, "r_max", extra["r_max"]);
  if (info.r_max <= 0.0)
    throw ModelError("`" + path + "`: metadata r_max must be > 0, got " + extra["r_max"]);
  info.n_layers = parse_positive_int(path, "n_layers", extra["n_layers"]);
  info.feature_dim = parse_positive_int(path, "feature_dim", extra["feature_dim"]);
  info.type_names = split_words(extra["type_names"]);
  info.output = extra["output"];
  info.unit = extra["unit"];
  info.dtype = extra["dtype"];
  info.info = extra["info"];
  info.relax = extra[format::kRelaxKey];
  info.node_inputs = extra[format::kNodeInputsKey];
  static_assert(sizeof(format::kDtypes) / sizeof(format::kDtypes[0]) == 2,
                "one torch dtype per format::kDtypes entry");
  if (info.dtype == format::kDtypes[0])
    impl_->dtype = torch::kFloat32;
  else if (info.dtype == format::kDtypes[1])
    impl_->dtype = torch::kFloat64;
  else
    throw ModelError("`" + path + "`: metadata dtype must be " + format::kDtypes[0] + " or " +
                     format::kDtypes[1] + ", got `" + info.dtype + "`");
  if (info.type_names.empty())
    throw ModelError("`" + path + "`: metadata `type_names` is empty");
  for (size_t a = 0; a < info.type_names.size(); ++a)
    for (size_t b = a + 1; b < info.type_names.size(); ++b)
      if (info.type_names[a] == info.type_names[b])
        throw ModelError("`" + path +
                         "`: metadata `type_names` must be distinct species names, got `" +
                         extra["type_names"] + "`");
  if (info.output != format::kOutputName)
    throw ModelError("`" + path + "`: metadata `output` is `" + info.output + "`, not `" +
                     format::kOutputName +
                     "`: this model does not predict energy barriers, and compute symgnn reads "
                     "only models that do");
  if (info.unit != format::kOutputUnit)
    throw ModelError("`" + path + "`: metadata `unit` is `" + info.unit + "`, not `" +
                     format::kOutputUnit + "`: compute symgnn reports barriers in " +
                     format::kOutputUnit + " and does not convert; re-export the model in " +
                     format::kOutputUnit);

  for (const char *method : {"embed", "interact", "readout"})
    if (!impl_->module.find_method(method))
      throw ModelError("`" + path + "` is not a symgnn model: it has no `" + method +
                       "` method (the exported contract has embed, interact, readout)");
  {
    // embed(self, species, edge_index, edge_vec[, node_inputs]): the 5th argument exactly
    // when the file declares node inputs
    const size_t n_args =
        impl_->module.get_method("embed").function().getSchema().arguments().size();
    const bool declared = !info.node_inputs.empty();
    if (declared != (n_args == 5))
      throw ModelError("`" + path + "`: " +
                       (declared ? "metadata `node_inputs` declares per-atom inputs, but the "
                                   "module's `embed` takes none"
                                 : "the module's `embed` takes per-atom inputs, but the file "
                                   "declares none (metadata `node_inputs`)") +
                       "; re-export the model");
  }
  if (!extra[format::kEnsembleSizeKey].empty()) {
    info.ensemble_size =
        parse_positive_int(path, format::kEnsembleSizeKey, extra[format::kEnsembleSizeKey]);
    if (info.ensemble_size < 2)
      throw ModelError("`" + path + "`: metadata `" + format::kEnsembleSizeKey +
                       "` must be an integer >= 2, got `" + extra[format::kEnsembleSizeKey] + "`");
    if (!impl_->module.find_method("readout_std"))
      throw ModelError("`" + path + "`: metadata `" + format::kEnsembleSizeKey + "` says " +
                       std::to_string(info.ensemble_size) +
                       " members but the module has no `readout_std` method: not a symgnn "
                       "ensemble file (`symgnn ensemble MODEL... -o ens.pt` makes one)");
  }
  impl_->module.eval();
}

Model::~Model() = default;

const ModelInfo &Model::info() const { return impl_->info; }

int64_t Model::n_edges() const { return impl_->n_edges; }

const GraphStats &Model::graph_stats() const { return impl_->stats; }

double Model::neighbor_seconds() const { return impl_->neighbor_seconds; }

void Model::begin(const double *positions, int64_t n_all, int64_t n_local, const int64_t *species,
                  int n_threads, const double *node_inputs, int n_inputs) {
  Impl &m = *impl_;
  m.clear();
  m.n_edges = 0;
  m.stats = GraphStats();
  TorchSettings settings(m.n_threads, m.jit_optimize);
  c10::InferenceMode guard;
  const auto device = m.device;
  const auto f64 = torch::TensorOptions().dtype(torch::kFloat64);
  const auto i64 = torch::TensorOptions().dtype(torch::kInt64);

  NeighborsGuard nb;
  const char *err = nullptr;
  const bool pbc[3] = {false, false, false};
  int rc = 0;
  const auto start = std::chrono::steady_clock::now();
  if (device.is_cuda()) {
    torch::Tensor pos = torch::from_blob(const_cast<double *>(positions), {n_all, 3}, f64)
                            .to(device, torch::kFloat64, false, true);
    rc = symgnn_neighbors_cuda(pos.data_ptr<double>(), n_all, nullptr, pbc, m.info.r_max, n_local,
                               nullptr, &nb.nl, &err);
  } else {
    rc = symgnn_neighbors_cpu(positions, n_all, nullptr, pbc, m.info.r_max, n_local, n_threads,
                              &nb.nl, &err);
  }
  if (rc != 0)
    throw ModelError(std::string("neighbor list failed: ") + (err ? err : "unknown error"));
  m.neighbor_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  const int64_t n_edges = nb.nl.length;
  const auto on_nl = [&](torch::TensorOptions opt) {
    return opt.device(nb.nl.device == SYMGNN_CUDA ? torch::Device(torch::kCUDA) : torch::kCPU);
  };
  torch::Tensor edge_vec;
  if (n_edges > 0) {
    torch::Tensor senders = torch::from_blob(nb.nl.senders, {n_edges}, on_nl(i64));
    torch::Tensor receivers = torch::from_blob(nb.nl.receivers, {n_edges}, on_nl(i64));
    torch::Tensor vectors = torch::from_blob(nb.nl.vectors, {n_edges, 3}, on_nl(f64));
    // the structure's tells of unphysical input, in float64: neighbors per atom, closest pair
    {
      auto counts = torch::bincount(receivers, {}, n_local);
      auto most = counts.max(0);
      auto d2 = (vectors * vectors).sum(1);
      auto closest = d2.min(0);
      const int64_t k = std::get<1>(closest).item<int64_t>();
      m.stats.max_neighbors = std::get<0>(most).item<int64_t>();
      m.stats.max_neighbors_atom = std::get<1>(most).item<int64_t>();
      m.stats.min_distance = std::sqrt(std::get<0>(closest).item<double>());
      m.stats.closest_receiver = receivers[k].item<int64_t>();
      m.stats.closest_sender = senders[k].item<int64_t>();
    }
    // copies: the neighbor arrays are freed when `nb` goes
    m.edge_index = torch::stack({senders, receivers}).to(device);
    edge_vec = vectors.to(device, m.dtype, false, /*copy=*/true);
  } else {
    m.edge_index = torch::empty({2, 0}, i64.device(device));
    edge_vec = torch::empty({0, 3}, f64.dtype(m.dtype).device(device));
  }
  torch::Tensor species_t = torch::from_blob(const_cast<int64_t *>(species), {n_all}, i64)
                                .to(device, torch::kInt64, false, true);
  m.n_all = n_all;
  m.n_local = n_local;
  m.n_edges = n_edges;

  std::vector<c10::IValue> args{species_t, m.edge_index, edge_vec};
  if (!m.info.node_inputs.empty()) {
    if (node_inputs == nullptr || n_inputs <= 0)
      throw ModelError("the model takes per-atom inputs (metadata node_inputs), none given");
    args.emplace_back(torch::from_blob(const_cast<double *>(node_inputs), {n_all, n_inputs}, f64)
                          .to(device, torch::kFloat64, false, /*copy=*/true));
  }
  auto out = m.module.get_method("embed")(std::move(args));
  std::tie(m.h, m.e) = two_tensors(out, "embed");
  m.check_h("embed");
}

void Model::interact(int layer) {
  Impl &m = *impl_;
  TorchSettings settings(m.n_threads, m.jit_optimize);
  c10::InferenceMode guard;
  auto out = m.module.get_method("interact")(
      {c10::IValue(static_cast<int64_t>(layer)), m.h, m.e, m.edge_index});
  std::tie(m.h, m.e) = two_tensors(out, "interact");
  m.check_h("interact");
}

void Model::get_local_features(double *dst) const {
  const Impl &m = *impl_;
  if (m.n_local == 0)
    return;
  c10::InferenceMode guard;
  torch::Tensor out = torch::from_blob(dst, {m.n_local, m.info.feature_dim},
                                       torch::TensorOptions().dtype(torch::kFloat64));
  out.copy_(m.h.narrow(0, 0, m.n_local));
}

void Model::set_ghost_features(const double *src) {
  Impl &m = *impl_;
  const int64_t n_ghost = m.n_all - m.n_local;
  if (n_ghost == 0)
    return;
  c10::InferenceMode guard;
  torch::Tensor in = torch::from_blob(const_cast<double *>(src), {n_ghost, m.info.feature_dim},
                                      torch::TensorOptions().dtype(torch::kFloat64));
  if (!m.h.is_contiguous())
    m.h = m.h.contiguous();
  m.h.narrow(0, m.n_local, n_ghost).copy_(in);
}

void Model::readout(double *out) {
  Impl &m = *impl_;
  TorchSettings settings(m.n_threads, m.jit_optimize);
  c10::InferenceMode guard;
  if (m.n_local > 0) {
    auto value = m.module.get_method("readout")({m.h.narrow(0, 0, m.n_local)});
    if (!value.isTensor())
      throw ModelError("model method `readout` did not return a tensor");
    torch::Tensor r = value.toTensor();
    if (r.dim() != 1 || r.size(0) != m.n_local)
      throw ModelError("model method `readout` returned shape " + c10::str(r.sizes()) +
                       ", expected [" + std::to_string(m.n_local) + "]");
    torch::from_blob(out, {m.n_local}, torch::TensorOptions().dtype(torch::kFloat64)).copy_(r);
  }
  m.clear();
}

void Model::readout_std(double *mean, double *std) {
  Impl &m = *impl_;
  if (m.info.ensemble_size < 2)
    throw ModelError("model `" + m.info.path +
                     "` is a single model: the standard deviation needs an ensemble file "
                     "(`symgnn ensemble MODEL... -o ens.pt`)");
  TorchSettings settings(m.n_threads, m.jit_optimize);
  c10::InferenceMode guard;
  if (m.n_local > 0) {
    auto value = m.module.get_method("readout_std")({m.h.narrow(0, 0, m.n_local)});
    if (!value.isTensor())
      throw ModelError("model method `readout_std` did not return a tensor");
    torch::Tensor r = value.toTensor();
    if (r.dim() != 2 || r.size(0) != 2 || r.size(1) != m.n_local)
      throw ModelError("model method `readout_std` returned shape " + c10::str(r.sizes()) +
                       ", expected [2, " + std::to_string(m.n_local) + "]");
    const auto f64 = torch::TensorOptions().dtype(torch::kFloat64);
    torch::from_blob(mean, {m.n_local}, f64).copy_(r[0]);
    torch::from_blob(std, {m.n_local}, f64).copy_(r[1]);
  }
  m.clear();
}

std::string Model::torch_version() {
  return std::to_string(TORCH_VERSION_MAJOR) + "." + std::to_string(TORCH_VERSION_MINOR) + "." +
         std::to_string(TORCH_VERSION_PATCH);
}

bool Model::torch_has_cuda() {
  try {
    return torch::cuda::is_available();
  } catch (const std::exception &) {
    return false;
  }
}

bool Model::neighbors_have_cuda() { return symgnn_cuda_available() != 0; }

void Model::set_num_threads(int n) { impl_->n_threads = n; }

int Model::num_threads() const {
  return impl_->n_threads > 0 ? impl_->n_threads : at::get_num_threads();
}

} // namespace symgnn
