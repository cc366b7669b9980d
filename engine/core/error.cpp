#include "engine/core/error.hpp"

namespace diffpool {

void throw_internal(const char* file, int line, const std::string& message) {
  throw Error(fmt::format("{}:{}: {}", file, line, message));
}

}  // namespace diffpool
