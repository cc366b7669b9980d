#pragma once
// Fast reading of plain or gzip-compressed text files, line by line, with hand-written number
// parsing. Used by the TU dataset reader (tu_dataset.cpp).
//
// Why not iostreams or std::getline: COLLAB_A.txt.gz is 49 M lines (725 MB of text) and must load in
// seconds. Here the file is read in multi-megabyte blocks (fread / gzread), lines are string_views
// into that block (no allocation per line), and integers are parsed by hand. For gzip files a
// second thread inflates the next block while the caller parses the current one, so the load time
// is about the time zlib needs to inflate the file.
//
// Every error is an InputError whose message starts with "<path>:<line>: ".
//
// Limits (engine/README.md, "Dataset files"), so that a hostile file cannot exhaust memory or time:
// a line may hold at most kMaxLineBytes (so the line buffer never grows past one block), and a
// gzip file may inflate to at most max(kGzipFloorBytes, kMaxGzipRatio x its compressed size) and
// never more than kMaxGzipBytes. Real TU files stay far below them (the highest ratio among the
// official datasets is REDDIT-BINARY_graph_indicator at 383x, but only 3.7 MB of text; the largest
// text is COLLAB_A at 725 MB, 10x).
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace diffpool::text {

inline constexpr std::size_t kMaxLineBytes = std::size_t{1} << 20;     // 1 MiB
inline constexpr uint64_t kMaxGzipRatio = 200;                          // inflated / compressed bytes
inline constexpr uint64_t kGzipFloorBytes = uint64_t{64} << 20;         // 64 MiB: no ratio check below
inline constexpr uint64_t kMaxGzipBytes = uint64_t{16} << 30;           // 16 GiB, whatever the ratio

// The limits of one InputFile; the defaults are the constants above (tests use smaller ones).
struct InputLimits {
  std::size_t max_line_bytes = kMaxLineBytes;
  uint64_t max_gzip_ratio = kMaxGzipRatio;
  uint64_t gzip_floor_bytes = kGzipFloorBytes;
  uint64_t max_gzip_bytes = kMaxGzipBytes;
};

// "<path>:<line>: <message>" as an InputError.
[[noreturn]] void throw_at(const std::string& path, int64_t line, const std::string& message);

// The line as it appears in messages: in single quotes, shortened to 80 characters.
std::string quote(std::string_view line);

// A text file opened for reading, plain or gzip. Owns the handle (and, for gzip, the thread that
// inflates ahead); the destructor never throws. Opening and reading errors throw InputError.
class InputFile {
 public:
  InputFile(const std::string& path, bool gzip, const InputLimits& limits = {});
  ~InputFile();
  InputFile(const InputFile&) = delete;
  InputFile& operator=(const InputFile&) = delete;

  // Copies up to `capacity` bytes into `buffer`; returns 0 at the end of the file. `line` is the
  // line number the caller has reached, for the message of a read error (e.g. a corrupt .gz).
  std::size_t read(char* buffer, std::size_t capacity, int64_t line);
  const std::string& path() const { return path_; }
  const InputLimits& limits() const { return limits_; }
  // A good size for the caller's buffer: a block, smaller for a small file.
  std::size_t block_bytes() const;

 private:
  struct Impl;
  std::string path_;
  InputLimits limits_;
  std::unique_ptr<Impl> impl_;
};

// Splits a file into lines. Lines are views into an internal buffer, valid until the next call.
class LineReader {
 public:
  explicit LineReader(InputFile& file);

  // The next line without its terminator ("\n" or "\r\n"); false at the end of the file.
  bool next(std::string_view& line) {
    for (;;) {
      if (begin_ < end_) {
        auto* newline = static_cast<const char*>(std::memchr(begin_, '\n', static_cast<std::size_t>(end_ - begin_)));
        if (newline) {
          if (static_cast<std::size_t>(newline - begin_) > max_line_bytes_) [[unlikely]] line_too_long();
          line = trim_carriage_return(begin_, newline);
          begin_ = newline + 1;
          ++line_number_;
          return true;
        }
      }
      if (!refill()) {
        if (begin_ == end_) return false;
        if (static_cast<std::size_t>(end_ - begin_) > max_line_bytes_) [[unlikely]] line_too_long();
        line = trim_carriage_return(begin_, end_);  // last line without a final newline
        begin_ = end_;
        ++line_number_;
        return true;
      }
    }
  }
  int64_t line_number() const { return line_number_; }

 private:
  static std::string_view trim_carriage_return(const char* begin, const char* end) {
    if (end > begin && end[-1] == '\r') --end;
    return {begin, static_cast<std::size_t>(end - begin)};
  }
  bool refill();  // moves the partial line to the front and reads more; false when nothing was read
  [[noreturn]] void line_too_long() const;

  InputFile& file_;
  std::size_t max_line_bytes_;
  std::vector<char> buffer_;
  const char* begin_ = nullptr;  // unread part of buffer_
  const char* end_ = nullptr;
  bool at_end_ = false;
  int64_t line_number_ = 0;
};

inline bool is_blank(char c) { return c == ' ' || c == '\t'; }
inline const char* skip_blanks(const char* p, const char* end) {
  while (p < end && is_blank(*p)) ++p;
  return p;
}
inline bool is_blank_line(std::string_view line) {
  return skip_blanks(line.data(), line.data() + line.size()) == line.data() + line.size();
}
inline std::string_view trim(std::string_view text) {
  const char* begin = skip_blanks(text.data(), text.data() + text.size());
  const char* end = text.data() + text.size();
  while (end > begin && is_blank(end[-1])) --end;
  return {begin, static_cast<std::size_t>(end - begin)};
}

// A decimal integer with an optional sign at p (no leading blanks); p moves past it. False when
// there is no digit or more than 18 digits (so the value always fits in int64_t).
inline bool parse_integer(const char*& p, const char* end, int64_t& value) {
  const char* q = p;
  bool negative = false;
  if (q < end && (*q == '-' || *q == '+')) negative = *q++ == '-';
  const char* digits = q;
  int64_t v = 0;
  for (; q < end && static_cast<unsigned>(*q - '0') < 10u; ++q) {
    if (q - digits < 18) v = v * 10 + (*q - '0');  // more digits fail below; no overflow meanwhile
  }
  if (q == digits || q - digits > 18) return false;
  value = negative ? -v : v;
  p = q;
  return true;
}

// A finite decimal floating-point number at p (no leading blanks; "1", "-0.5", "2.5e-3", "+1");
// p moves past it. False when there is none, or it is nan/inf or out of range.
bool parse_real(const char*& p, const char* end, double& value);

// Calls on_line(std::string_view line, int64_t line_number) for every line of the file; on_line may
// return bool, and false stops the reading. Blank lines are accepted only at the end of the file
// (editors add them); one in the middle throws, because it would shift every later row by one.
// Returns the number of lines read (trailing blank lines not counted).
template <class OnLine>
int64_t for_each_line(InputFile& file, OnLine&& on_line) {
  LineReader reader(file);
  std::string_view line;
  int64_t first_blank = 0;
  while (reader.next(line)) {
    if (line.empty() || is_blank(line.front())) {
      if (is_blank_line(line)) {
        if (first_blank == 0) first_blank = reader.line_number();
        continue;
      }
    }
    if (first_blank != 0) throw_at(file.path(), first_blank, "empty line in the middle of the file");
    if constexpr (std::is_same_v<decltype(on_line(line, int64_t{})), bool>) {
      if (!on_line(line, reader.line_number())) return reader.line_number();
    } else {
      on_line(line, reader.line_number());
    }
  }
  return first_blank != 0 ? first_blank - 1 : reader.line_number();
}

}  // namespace diffpool::text
