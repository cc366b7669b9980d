#pragma once
// Helpers shared by the tests.
#include <cstdlib>
#include <string>

namespace diffpool::testing {

// The TU datasets: $DIFFPOOL_DATA, else the folder configured at build time (../shared/datasets).
inline std::string data_dir() {
  if (const char* env = std::getenv("DIFFPOOL_DATA"); env && *env) return env;
  return DIFFPOOL_TEST_DATA_DIR;
}
inline std::string source_dir() { return DIFFPOOL_SOURCE_DIR; }
inline std::string binary_dir() { return DIFFPOOL_BINARY_DIR; }

}  // namespace diffpool::testing
