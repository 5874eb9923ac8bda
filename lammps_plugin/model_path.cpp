// Model lookup for `compute symgnn` (see model_path.h).
#include "model_path.h"

#include "symgnn_format.h"

#include <dlfcn.h>

#include <cstdlib>
#include <fstream>
#include <sys/stat.h>

namespace symgnn::plugin {

bool is_file(const std::string &path) {
  struct stat st{};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

namespace {

std::string dirname_of(const std::string &path) {
  auto slash = path.find_last_of('/');
  if (slash == std::string::npos)
    return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

// The folder holding this plugin library (found with dladdr), or "".
std::string plugin_folder() {
  Dl_info info{};
  if (dladdr(reinterpret_cast<void *>(&plugin_folder), &info) != 0 && info.dli_fname != nullptr) {
    std::string file(info.dli_fname);
    char *real = ::realpath(file.c_str(), nullptr);
    if (real != nullptr) {
      file = real;
      std::free(real);
    }
    return dirname_of(file);
  }
  return "";
}

// Where bundled models may live: $SYMGNN_MODELS_DIR, models/ next to the
// plugin (a wheel install), the source tree's models/ (an editable install).
std::vector<std::string> model_folders() {
  std::vector<std::string> out;
  if (const char *env = std::getenv(symgnn::format::kModelsDirEnv); env != nullptr && *env != '\0')
    out.emplace_back(env);
  std::string here = plugin_folder();
  if (!here.empty())
    out.push_back(here + "/" + symgnn::format::kModelsFolder);
#ifdef SYMGNN_SOURCE_MODELS_DIR
  out.emplace_back(SYMGNN_SOURCE_MODELS_DIR);
#endif
  return out;
}

std::string read_first_word(const std::string &path) {
  std::ifstream in(path);
  std::string word;
  in >> word;
  return word;
}

} // namespace

std::string join(const std::vector<std::string> &items, const std::string &sep) {
  std::string out;
  for (size_t k = 0; k < items.size(); ++k)
    out += (k ? sep : "") + items[k];
  return out;
}

std::string resolve_model(const std::string &model, std::string &why) {
  if (is_file(model))
    return model;
  using namespace symgnn::format;
  const auto folders = model_folders();
  for (const auto &dir : folders) {
    if (model == kDefaultModel) {
      std::string stem = read_first_word(dir + "/" + kDefaultFile);
      if (!stem.empty() && is_file(dir + "/" + stem + kModelSuffix))
        return dir + "/" + stem + kModelSuffix;
    } else if (model.find('/') == std::string::npos && is_file(dir + "/" + model + kModelSuffix)) {
      return dir + "/" + model + kModelSuffix;
    }
  }
  if (model == kDefaultModel)
    why = "MODEL `default` names the model bundled with the symgnn package, but none was "
          "found (looked for DEFAULT naming a .pt file in: " +
          (folders.empty() ? std::string("no folder") : join(folders, ", ")) +
          "); pass the path of an exported model instead";
  return model;
}

} // namespace symgnn::plugin
