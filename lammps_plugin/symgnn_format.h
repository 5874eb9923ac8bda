// The symgnn model-file contract, C++ side: format version, metadata keys,
// output name and unit, and where bundled models are found. Mirrors
// python/symgnn_ase/format.py; tests/python/test_format.py parses this file
// and checks that the two agree. The contract is written up in
// docs/contracts.md. No torch and no LAMMPS headers: both sides of the plugin
// include it.
#ifndef SYMGNN_FORMAT_H
#define SYMGNN_FORMAT_H

namespace symgnn::format {

// value of the `symgnn_format` metadata entry the plugin reads
inline constexpr char kFormatVersion[] = "1";
// the `_extra_files` entries of an exported model, all required
inline constexpr const char *kMetadataKeys[] = {"symgnn_format", "r_max",       "n_layers",
                                                "type_names",    "feature_dim", "output",
                                                "unit",          "dtype",       "info"};
// optional `_extra_files` entries: `ensemble_size` (K >= 2) marks an ensemble file, whose
// module also exports readout_std (mean and standard deviation, [2, N]); `relax` (a JSON
// object {"steps", "alpha", "cap", "potential", "pair_style"}) is the relax protocol the
// model predicts with (docs/contracts.md; absent: no relax); `node_inputs` declares per-atom
// inputs from the simulation's potential, which the compute gets from the pair style
inline constexpr char kEnsembleSizeKey[] = "ensemble_size";
inline constexpr char kRelaxKey[] = "relax";
inline constexpr char kNodeInputsKey[] = "node_inputs";
inline constexpr const char *kOptionalMetadataKeys[] = {"ensemble_size", "relax", "node_inputs"};
// what forward/readout return per atom, and its unit
inline constexpr char kOutputName[] = "energy_barrier";
inline constexpr char kOutputUnit[] = "eV";
// metadata `dtype` values
inline constexpr const char *kDtypes[] = {"float32", "float64"};

// environment variable naming a folder of models searched first
inline constexpr char kModelsDirEnv[] = "SYMGNN_MODELS_DIR";
// the models folder beside the plugin (an install) or in the package sources
inline constexpr char kModelsFolder[] = "models";
// the model name meaning "the one DEFAULT names"
inline constexpr char kDefaultModel[] = "default";
// file in a models folder whose first word is the stem of the default model
inline constexpr char kDefaultFile[] = "DEFAULT";
inline constexpr char kModelSuffix[] = ".pt";

} // namespace symgnn::format

#endif
