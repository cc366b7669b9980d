#include "engine/core/error.hpp"

namespace diffpool {

std::string escape_unprintable(std::string_view text) {
  std::string escaped;
  escaped.reserve(text.size());
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if ((byte < 0x20 && c != '\n' && c != '\t') || byte == 0x7f) escaped += fmt::format("\\x{:02x}", byte);
    else escaped += c;
  }
  return escaped;
}

void throw_internal(const char* file, int line, const std::string& message) {
  throw Error(fmt::format("{}:{}: {}", file, line, message));
}

}  // namespace diffpool
