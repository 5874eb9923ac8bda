// Where `compute symgnn` finds its model: MODEL is a file path, `default` or the stem of a
// bundled model, looked up in $SYMGNN_MODELS_DIR, models/ beside the plugin (a wheel install)
// and the source tree's models/ (an editable install). No LAMMPS and no torch headers.
#ifndef LMP_SYMGNN_MODEL_PATH_H
#define LMP_SYMGNN_MODEL_PATH_H

#include <string>
#include <vector>

namespace symgnn::plugin {

bool is_file(const std::string &path);
std::string join(const std::vector<std::string> &items, const std::string &sep);
// MODEL argument -> a file path. An existing file wins; otherwise `default`
// and other bundled names (file stems in a models folder) are looked up.
// Returns "" with `why` set when `default` cannot be resolved.
std::string resolve_model(const std::string &model, std::string &why);

} // namespace symgnn::plugin

#endif
