// libFuzzer target: the experiment loader, parse_experiment(text, source, overrides) of
// runner/config.hpp, with --set overrides.
//
// Input layout: the YAML text; if a line "#--set" occurs, each line after it is one --set
// argument ("key=value"). tests/fuzz/corpus/experiment/ holds the repository's experiment files.
// Every outcome but InputError (ConfigError) is a finding.
#include <string>
#include <vector>

#include "runner/config.hpp"
#include "tests/fuzz/fuzz_util.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace diffpool;
  std::string_view input(reinterpret_cast<const char*>(data), size);
  std::string_view text = input;
  std::vector<std::string> overrides;
  if (std::size_t at = input.find("#--set\n"); at != std::string_view::npos) {
    text = input.substr(0, at);
    for (std::string_view line : fuzz::split(input.substr(at + 7), "\n")) {
      if (!line.empty()) overrides.emplace_back(line);
    }
  }
  try {
    ExperimentConfig config = parse_experiment(std::string(text), "fuzz.yaml", overrides);
    (void)config.canonical_settings();  // job ids are computed from it for every valid experiment
  } catch (const InputError&) {
  }
  return 0;
}
