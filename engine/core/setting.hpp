#pragma once
// What a setting may hold: the names of an enum's values and a numeric range. One table per enum
// and one Range per numeric setting, shared by the engine's option structs (their validate()) and
// the runner's settings schema (runner/config.cpp), so a name or a bound is written once.
#include <fmt/format.h>

#include <initializer_list>
#include <string>
#include <utility>
#include <vector>

#include "engine/core/error.hpp"

namespace diffpool {

// "a", "a or b", "a, b or c".
inline std::string join_choices(const std::vector<std::string>& items, const char* last = "or") {
  std::string out;
  for (std::size_t i = 0; i < items.size(); ++i)
    out += fmt::format("{}{}", i == 0 ? "" : (i + 1 == items.size() ? fmt::format(" {} ", last) : std::string(", ")), items[i]);
  return out;
}

// The names of an enum's values: name(value), parse(text) (which throws InputError
// "unknown <what> '<text>': expected a, b or c"), and the list of names. Aliases are accepted by
// parse but never printed; `normalize` (optional) rewrites the text before matching.
template <class E>
class EnumNames {
 public:
  using Entry = std::pair<const char*, E>;
  EnumNames(const char* what, std::initializer_list<Entry> names, std::initializer_list<Entry> aliases = {},
            std::string (*normalize)(const std::string&) = nullptr)
      : what_(what), names_(names), aliases_(aliases), normalize_(normalize) {}

  const char* name(E value) const {
    for (const auto& [n, v] : names_)
      if (v == value) return n;
    return "invalid";
  }
  E parse(const std::string& text) const {
    const std::string t = normalize_ ? normalize_(text) : text;
    for (const auto& [n, v] : names_)
      if (t == n) return v;
    for (const auto& [n, v] : aliases_)
      if (t == n) return v;
    throw InputError(fmt::format("unknown {} '{}': expected {}", what_, text, choices()));
  }
  std::vector<std::string> list() const {
    std::vector<std::string> out;
    for (const auto& entry : names_) out.emplace_back(entry.first);
    return out;
  }
  std::string choices() const { return join_choices(list()); }
  const char* what() const { return what_; }

 private:
  const char* what_;
  std::vector<Entry> names_;
  std::vector<Entry> aliases_;
  std::string (*normalize_)(const std::string&);
};

// The allowed values of an integer setting: lo to hi, both included.
struct IntRange {
  long long lo = 0, hi = 0;

  bool contains(long long x) const { return x >= lo && x <= hi; }
  std::string text() const { return fmt::format("{} to {}", lo, hi); }
  // Throws InputError "<key> = <value>: allowed <lo> to <hi>" when x is outside.
  void check(const char* key, long long x) const {
    if (!contains(x)) throw InputError(fmt::format("{} = {}: allowed {}", key, x, text()));
  }
};

// The allowed values of a real setting: lo to hi, each end open or closed.
struct Range {
  double lo = 0, hi = 0;
  bool lo_open = false, hi_open = false;

  bool contains(double x) const { return (lo_open ? x > lo : x >= lo) && (hi_open ? x < hi : x <= hi); }
  std::string text() const { return fmt::format("{}{}, {}{}", lo_open ? "(" : "[", lo, hi, hi_open ? ")" : "]"); }
  void check(const char* key, double x) const {
    if (!contains(x)) throw InputError(fmt::format("{} = {}: allowed {}", key, x, text()));
  }
};

}  // namespace diffpool
