#pragma once
// `diffpool train`: one model on one fold of a stratified k-fold split, one line per epoch.
// A thin layer over the engine; the experiment runner (`diffpool run`) reuses the same pieces.
#include <string>
#include <vector>

namespace diffpool {

struct TrainCommandOptions {
  std::string config_path;             // optional experiment file
  std::vector<std::string> overrides;  // key=value, applied after the file
  int fold = 0;
  bool quiet = false;                  // only the final line
};

// Returns the process exit code.
int run_train_command(const TrainCommandOptions& options);

}  // namespace diffpool
