#pragma once
// Helpers shared by the tests.
#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <utility>

namespace diffpool::testing {

// The TU datasets: $DIFFPOOL_DATA, else the folder configured at build time (../shared/datasets).
inline std::string data_dir() {
  if (const char* env = std::getenv("DIFFPOOL_DATA"); env && *env) return env;
  return DIFFPOOL_TEST_DATA_DIR;
}
inline std::string source_dir() { return DIFFPOOL_SOURCE_DIR; }
inline std::string binary_dir() { return DIFFPOOL_BINARY_DIR; }

// Runs a shell command; its exit status (-1 when it did not exit normally) and its output,
// stderr included.
inline std::pair<int, std::string> run_command(const std::string& command) {
  std::string output;
  FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  if (!pipe) return {-1, "popen failed"};
  char buffer[4096];
  while (std::size_t n = std::fread(buffer, 1, sizeof buffer, pipe)) output.append(buffer, n);
  const int status = ::pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, output};
}

// A path in single quotes, for a shell command line (the test folders have no quotes in them).
inline std::string quoted(const std::filesystem::path& path) {
  std::string out(1, '\'');
  out += path.string();
  out += '\'';
  return out;
}

}  // namespace diffpool::testing
