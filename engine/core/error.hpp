#pragma once
// Errors in three tiers (see engine/README.md):
//   * input errors (config files, datasets): diffpool::InputError, message names file:line and value;
//   * internal invariants: DP_CHECK, message names __FILE__:__LINE__ and the values;
//   * library calls (BLAS, CUDA, HDF5, MPI): diffpool::LibraryError with the library's own text.
// Library code throws; it never exits, so one failed job cannot end a sweep.
#include <fmt/format.h>

#include <stdexcept>
#include <string>
#include <string_view>

namespace diffpool {

// `text` with every byte a terminal would not show as itself (NUL, control characters, DEL)
// written as \xNN; newlines and tabs stay. A message is printed through what(), a C string, so
// an unescaped NUL would end it there.
std::string escape_unprintable(std::string_view text);

// Every message is stored escaped (escape_unprintable): a file name or key holding a NUL or a
// control character is printed whole and visible.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(escape_unprintable(message)) {}
  explicit Error(const char* message) : Error(std::string(message)) {}
};

// Bad user input: a malformed dataset file, an invalid setting. The message is meant for users.
class InputError : public Error {
 public:
  using Error::Error;
};

// A call into an external library failed; the message carries the library's text.
class LibraryError : public Error {
 public:
  using Error::Error;
};

// A numerical failure during training (NaN/Inf loss); the job is recorded as failed.
class NumericalError : public Error {
 public:
  using Error::Error;
};

[[noreturn]] void throw_internal(const char* file, int line, const std::string& message);

}  // namespace diffpool

// DP_CHECK(condition, "format {}", values...): an internal invariant. Throws diffpool::Error
// with the source location and the formatted values when the condition is false.
#define DP_CHECK(condition, ...)                                                      \
  do {                                                                                \
    if (!(condition)) [[unlikely]] {                                                  \
      ::diffpool::throw_internal(__FILE__, __LINE__,                                  \
                                 std::string("check failed: " #condition ": ") +     \
                                     ::fmt::format(__VA_ARGS__));                     \
    }                                                                                 \
  } while (0)
